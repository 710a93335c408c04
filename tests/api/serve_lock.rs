//! Two `serve`s on one SQLite file: the second one warns (SQLite is one server's database);
//! on PostgreSQL several servers are normal and nothing is said.

use std::io::Write;
use std::sync::{Arc, Mutex};

use ballpark::app::Application;
use tracing::instrument::WithSubscriber;
use tracing_subscriber::fmt::MakeWriter;

use crate::helpers::{test_config, Backend, TestApp};

const WARNING: &str = "another `ballpark serve` is already serving this SQLite database";

/// Log output collected in memory.
#[derive(Clone, Default)]
struct Captured(Arc<Mutex<Vec<u8>>>);

impl Write for Captured {
    fn write(&mut self, bytes: &[u8]) -> std::io::Result<usize> {
        self.0.lock().unwrap().extend_from_slice(bytes);
        Ok(bytes.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

impl<'a> MakeWriter<'a> for Captured {
    type Writer = Captured;

    fn make_writer(&'a self) -> Self::Writer {
        self.clone()
    }
}

/// Builds and starts a second server on `app`'s database, stops it, and returns the warnings
/// it logged while starting.
async fn second_server_warnings(app: &TestApp) -> String {
    let logs = Captured::default();
    let subscriber = tracing_subscriber::fmt()
        .with_writer(logs.clone())
        .with_ansi(false)
        .with_max_level(tracing::Level::WARN)
        .finish();
    let media = tempfile::tempdir().expect("temp dir");
    let mut config = test_config(app.database_url.clone());
    config.media_dir = media.path().display().to_string();
    let second = Application::build(config)
        .with_subscriber(subscriber)
        .await
        .expect("the second server builds");
    let shutdown = second.shutdown_token();
    let running = tokio::spawn(second.run());
    shutdown.cancel();
    running
        .await
        .expect("server task")
        .expect("the second server ran");
    let text = String::from_utf8(logs.0.lock().unwrap().clone()).expect("UTF-8 logs");
    text
}

async fn a_second_server_on_the_same_database_warns_on_sqlite_only(app: TestApp) {
    // Act
    let warnings = second_server_warnings(&app).await;

    // Assert
    match app.backend {
        Backend::Sqlite => assert!(warnings.contains(WARNING), "{warnings}"),
        Backend::Postgres => assert!(!warnings.contains(WARNING), "{warnings}"),
    }
}

async fn a_server_started_after_the_first_one_stopped_does_not_warn(mut app: TestApp) {
    // Arrange
    app.stop_keeping_database().await;

    // Act
    let warnings = second_server_warnings(&app).await;

    // Assert
    assert!(!warnings.contains(WARNING), "{warnings}");
}

crate::on_both_backends!(
    a_second_server_on_the_same_database_warns_on_sqlite_only,
    a_server_started_after_the_first_one_stopped_does_not_warn,
);
