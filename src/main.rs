//! The `ballpark` binary: parses the command line and hands over to the library.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::ExitCode;

use ballpark::app::{cancel_on_signals, Application};
use ballpark::config::{Config, Environment, Overrides};
use ballpark::db::Db;
use ballpark::vendor_sim::{SimVendor, SimVendorConfig};
use clap::{Parser, Subcommand};
use tracing_subscriber::EnvFilter;

// The request path allocates many small short-lived strings (rows, JSON); mimalloc serves
// them markedly faster than glibc's allocator under concurrency (see docs/benchmarks.md).
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

#[derive(Parser)]
#[command(
    name = "ballpark",
    version,
    about = "A community server for baseball fans"
)]
struct Cli {
    /// TOML configuration file (settings below it: built-in defaults; above it: BALLPARK_*
    /// environment variables, then these flags).
    #[arg(long, global = true, env = "BALLPARK_CONFIG")]
    config: Option<PathBuf>,
    /// Log as JSON lines instead of text.
    #[arg(long, global = true, env = "BALLPARK_LOG_JSON")]
    log_json: bool,
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Run the HTTP server (migrations are applied at start).
    Serve {
        /// Address to listen on, as 127.0.0.1:8080 (setting `bind`).
        #[arg(long)]
        bind: Option<SocketAddr>,
        /// sqlite://path.db or postgres://user@host/db (setting `database_url`).
        #[arg(long)]
        database_url: Option<String>,
        /// Do not load the demo content (fans, articles, reviews, the demo stores).
        #[arg(long)]
        no_demo: bool,
        /// `production` refuses to start without a real JWT secret.
        #[arg(long, value_parser = parse_env)]
        env: Option<Environment>,
        /// amqp://user:password@host:port/vhost: run jobs through RabbitMQ.
        #[arg(long)]
        broker: Option<String>,
        /// Base URL of the vendor API; unset starts the simulated vendor in-process.
        #[arg(long)]
        vendor_url: Option<String>,
    },
    /// Run the simulated snack-bar vendor (its own small HTTP service; steer it with
    /// POST /control). Settings not given here come from the sim_vendor_* configuration.
    Vendor {
        #[arg(long, default_value = "127.0.0.1:8090")]
        bind: SocketAddr,
        /// How long POST /orders takes to answer.
        #[arg(long)]
        response_delay_ms: Option<u64>,
        /// From receiving an order to its accepted/rejected webhook.
        #[arg(long)]
        accept_delay_ms: Option<u64>,
        /// Between the later webhooks (preparing, ready, picked_up).
        #[arg(long)]
        step_delay_ms: Option<u64>,
        /// Share of orders rejected by webhook, 0.0 to 1.0.
        #[arg(long)]
        reject_rate: Option<f64>,
        /// Key to sign webhooks with; must be the server's vendor_webhook_secret (better
        /// given as BALLPARK_VENDOR_WEBHOOK_SECRET, which stays out of `ps`).
        #[arg(long)]
        webhook_secret: Option<String>,
    },
    /// Back up a SQLite database while the server runs (VACUUM INTO) and the local media
    /// directory, into DIR (DIR/ballpark.db, DIR/media/). PostgreSQL: use pg_dump.
    Backup {
        dir: PathBuf,
        #[arg(long)]
        database_url: Option<String>,
    },
    /// Restore a backup made by `ballpark backup`. Stop the server first.
    Restore {
        dir: PathBuf,
        /// Replace the existing database.
        #[arg(long)]
        force: bool,
        #[arg(long)]
        database_url: Option<String>,
    },
    /// Apply database migrations and exit.
    Migrate {
        /// sqlite://path.db or postgres://user@host/db (setting `database_url`).
        #[arg(long)]
        database_url: Option<String>,
    },
    /// Run only the queue workers (no HTTP), as a process of its own, for scaling out.
    Worker {
        /// sqlite://path.db or postgres://user@host/db (setting `database_url`).
        #[arg(long)]
        database_url: Option<String>,
        /// amqp://user:password@host:port/vhost: consume jobs from RabbitMQ.
        #[arg(long)]
        broker: Option<String>,
        /// Where vendors reach `serve` (the base of their webhook URL); required in
        /// production. Unset in development: this worker's `bind`.
        #[arg(long)]
        public_url: Option<String>,
    },
    /// Manage users.
    User {
        #[command(subcommand)]
        command: UserCommand,
        /// sqlite://path.db or postgres://user@host/db (setting `database_url`).
        #[arg(long, global = true)]
        database_url: Option<String>,
    },
    /// Inspect the job queue.
    Queue {
        #[command(subcommand)]
        command: QueueCommand,
        /// sqlite://path.db or postgres://user@host/db (setting `database_url`).
        #[arg(long, global = true)]
        database_url: Option<String>,
    },
}

#[derive(Subcommand)]
enum UserCommand {
    /// Give a user a role: fan, store_owner or admin.
    SetRole { username: String, role: String },
}

#[derive(Subcommand)]
enum QueueCommand {
    /// Per queue: jobs queued (due), scheduled (due later), running, retrying and dead now;
    /// jobs done and dead, failed runs
    /// and run times (p50, p95, max) over the last minutes.
    Stats {
        /// How far back the window of finished jobs goes.
        #[arg(long, default_value_t = 15)]
        minutes: u64,
    },
}

fn load_with_url(file: &Option<PathBuf>, database_url: Option<String>) -> anyhow::Result<Config> {
    let overrides = Overrides {
        database_url,
        ..Overrides::default()
    };
    Ok(Config::load(file.as_deref(), overrides)?)
}

fn print_backup(done: &str, report: &ballpark::backup::Report) {
    println!("{done} the database: {}", report.database.display());
    match report.media_files {
        Some(count) => println!("{done} {count} media files"),
        None => println!("media: not copied (stored in S3, or none in the backup)"),
    }
}

fn parse_env(value: &str) -> Result<Environment, String> {
    match value {
        "development" | "dev" => Ok(Environment::Development),
        "production" | "prod" => Ok(Environment::Production),
        other => Err(format!(
            "unknown environment {other:?}: use development or production"
        )),
    }
}

fn init_logging(json: bool) {
    let filter = EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| EnvFilter::new("info,sqlx=warn,tower_http=info"));
    let builder = tracing_subscriber::fmt().with_env_filter(filter);
    if json {
        builder.json().init();
    } else {
        builder.init();
    }
}

#[tokio::main]
async fn main() -> ExitCode {
    let cli = Cli::parse();
    init_logging(cli.log_json);
    let log_json = cli.log_json;
    match run(cli).await {
        Ok(()) => ExitCode::SUCCESS,
        Err(err) => {
            // Once: into the JSON log when that is what is collected, else plainly on stderr.
            if log_json {
                tracing::error!("{err:#}");
            } else {
                eprintln!("error: {err:#}");
            }
            ExitCode::FAILURE
        }
    }
}

async fn run(cli: Cli) -> anyhow::Result<()> {
    match cli.command {
        Command::Serve {
            bind,
            database_url,
            no_demo,
            env,
            broker,
            vendor_url,
        } => {
            let overrides = Overrides {
                bind,
                database_url,
                env,
                demo: no_demo.then_some(false),
                broker,
                vendor_url,
                ..Overrides::default()
            };
            let config = Config::load(cli.config.as_deref(), overrides)?;
            tracing::info!(
                database = %config.database_url_for_log(),
                env = ?config.env,
                demo = config.demo,
                "starting"
            );
            let app = Application::build(config).await?;
            cancel_on_signals(app.shutdown_token());
            app.run().await
        }
        Command::Worker {
            database_url,
            broker,
            public_url,
        } => {
            let overrides = Overrides {
                database_url,
                broker,
                public_url,
                ..Overrides::default()
            };
            let config = Config::load(cli.config.as_deref(), overrides)?;
            if config.public_url.is_none() {
                // Only right if `serve` listens on this same `bind`; otherwise vendors call
                // back nowhere and paid orders wait until their deadline refunds them.
                tracing::warn!(
                    bind = %config.bind,
                    "public_url is unset: vendors will post webhooks to this worker's bind; set public_url (BALLPARK_PUBLIC_URL or --public-url) to where `serve` is reached"
                );
            }
            let db = Db::connect(
                config.database_url.expose(),
                config.database_max_connections,
            )
            .await?;
            db.migrate().await?;
            let storage = ballpark::media::storage::Storage::from_config(&config)?;
            let shutdown = tokio_util::sync::CancellationToken::new();
            cancel_on_signals(shutdown.clone());
            let tasks = tokio_util::task::TaskTracker::new();
            let vendor =
                ballpark::orders::vendor::connect(&config, &tasks, shutdown.clone()).await?;
            let orders = ballpark::orders::Orders::new(
                &db,
                &config,
                vendor.client,
                &format!("http://{}", config.bind),
                shutdown.clone(),
            );
            let metrics = ballpark::metrics::Metrics::new();
            tasks.spawn(metrics.clone().run_upkeep(shutdown.clone()));
            let queue_metrics = ballpark::queue::QueueMetrics::new(&metrics);
            let services = ballpark::workers::Services {
                db: &db,
                storage: &storage,
                config: &config,
                orders: &orders,
                metrics: &queue_metrics,
            };
            ballpark::workers::start(services, true, &tasks, shutdown.clone()).await?;
            if let Some(bind) = config.metrics_bind {
                let scrape = ballpark::metrics::Scrape {
                    metrics,
                    queue_metrics,
                    db: db.clone(),
                    token: config.metrics_token.clone(),
                    env: config.env,
                };
                ballpark::metrics::spawn_standalone(bind, scrape, &tasks, shutdown).await?;
            }
            tracing::info!(database = %config.database_url_for_log(), "worker started");
            tasks.close();
            tasks.wait().await;
            db.close().await;
            tracing::info!("worker stopped cleanly");
            Ok(())
        }
        Command::Vendor {
            bind,
            response_delay_ms,
            accept_delay_ms,
            step_delay_ms,
            reject_rate,
            webhook_secret,
        } => {
            let overrides = Overrides {
                vendor_webhook_secret: webhook_secret,
                sim_vendor_response_delay_ms: response_delay_ms,
                sim_vendor_accept_delay_ms: accept_delay_ms,
                sim_vendor_step_delay_ms: step_delay_ms,
                sim_vendor_reject_rate: reject_rate,
                ..Overrides::default()
            };
            let config = Config::load(cli.config.as_deref(), overrides)?;
            let shutdown = tokio_util::sync::CancellationToken::new();
            cancel_on_signals(shutdown.clone());
            let tasks = tokio_util::task::TaskTracker::new();
            let sim_config = SimVendorConfig::from_config(&config);
            tracing::info!(
                response_delay = ?sim_config.response_delay,
                accept_delay = ?sim_config.accept_delay,
                step_delay = ?sim_config.step_delay,
                reject_rate = sim_config.reject_rate,
                "starting the simulated vendor"
            );
            SimVendor::bind(sim_config, bind, &tasks, shutdown).await?;
            tasks.close();
            tasks.wait().await;
            Ok(())
        }
        Command::Queue {
            command: QueueCommand::Stats { minutes },
            database_url,
        } => {
            let config = load_with_url(&cli.config, database_url)?;
            let db = Db::connect(config.database_url.expose(), 1).await?;
            db.migrate().await?;
            let window = std::time::Duration::from_secs(minutes.max(1) * 60);
            let report = ballpark::queue::report(&db, window).await?;
            print!("{report}");
            db.close().await;
            Ok(())
        }
        Command::User {
            command: UserCommand::SetRole { username, role },
            database_url,
        } => {
            use ballpark::community::store::users::{set_role, ROLES};
            if !ROLES.contains(&role.as_str()) {
                anyhow::bail!("unknown role {role:?}: use one of {}", ROLES.join(", "));
            }
            let config = load_with_url(&cli.config, database_url)?;
            let db = Db::connect(config.database_url.expose(), 1).await?;
            db.migrate().await?;
            let found = set_role(&db, &username, &role).await?;
            db.close().await;
            if !found {
                anyhow::bail!("no user named {username:?}");
            }
            println!("{username} is now {role}");
            Ok(())
        }
        Command::Backup { dir, database_url } => {
            let config = load_with_url(&cli.config, database_url)?;
            let report = ballpark::backup::backup(&config, &dir).await?;
            print_backup("backed up", &report);
            Ok(())
        }
        Command::Restore {
            dir,
            force,
            database_url,
        } => {
            let config = load_with_url(&cli.config, database_url)?;
            let report = ballpark::backup::restore(&config, &dir, force).await?;
            print_backup("restored", &report);
            Ok(())
        }
        Command::Migrate { database_url } => {
            let config = load_with_url(&cli.config, database_url)?;
            let db = Db::connect(config.database_url.expose(), 1).await?;
            db.migrate().await?;
            tracing::info!(database = %config.database_url_for_log(), "migrations applied");
            Ok(())
        }
    }
}
