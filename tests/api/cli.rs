//! The `ballpark` binary's own output: its help, and how a fatal error is reported.

use std::process::Command;

fn ballpark(args: &[&str]) -> (bool, String, String) {
    let output = Command::new(env!("CARGO_BIN_EXE_ballpark"))
        .args(args)
        .env_remove("BALLPARK_CONFIG")
        .env("NO_COLOR", "1")
        .output()
        .expect("the ballpark binary runs");
    (
        output.status.success(),
        String::from_utf8_lossy(&output.stdout).into_owned(),
        String::from_utf8_lossy(&output.stderr).into_owned(),
    )
}

/// The help text of `flag` in `help`: the rest of its line and the next one.
fn help_of<'a>(help: &'a str, flag: &str) -> &'a str {
    let start = help
        .find(flag)
        .unwrap_or_else(|| panic!("{flag} in {help}"));
    let rest = &help[start + flag.len()..];
    let end = rest.find("\n  -").unwrap_or(rest.len());
    &rest[..end]
}

#[test]
fn every_database_url_and_bind_flag_says_what_it_takes() {
    for command in ["serve", "worker", "migrate", "queue", "user"] {
        // Act
        let (ok, help, _) = ballpark(&[command, "--help"]);

        // Assert
        assert!(ok);
        let text = help_of(&help, "--database-url <DATABASE_URL>");
        assert!(text.contains("postgres://"), "{command}: {help}");
    }
    let (_, help, _) = ballpark(&["serve", "--help"]);
    assert!(help_of(&help, "--bind <BIND>").contains("listen"), "{help}");
}

#[test]
fn a_typo_in_the_config_file_is_reported_once_with_the_setting_it_resembles() {
    // Arrange
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("ballpark.toml");
    std::fs::write(&file, "bindd = \"127.0.0.1:0\"\n").unwrap();
    let database = format!("sqlite://{}", dir.path().join("db.sqlite").display());

    // Act
    let (ok, stdout, stderr) = ballpark(&[
        "--config",
        file.to_str().unwrap(),
        "migrate",
        "--database-url",
        &database,
    ]);

    // Assert
    assert!(!ok);
    let all = format!("{stdout}{stderr}");
    assert_eq!(all.matches("bindd").count(), 1, "{all}");
    assert!(all.contains("did you mean `bind`?"), "{all}");
    assert!(!all.contains("database_max_connections"), "{all}");
}
