//! The runner as users start it: a clean stop on SIGTERM, as on Ctrl-C, so
//! the views it wrote back are noted closed and the next start need not
//! rebuild them.

#![cfg(unix)]

use functions::embedded::Database;
use std::io::{BufRead, BufReader};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

#[test]
fn sigterm_stops_the_runner_cleanly() {
    let data = tempfile::tempdir().expect("a temporary directory");
    let template = concat!(env!("CARGO_MANIFEST_DIR"), "/../template.yaml");
    let mut runner = Command::new(env!("CARGO_BIN_EXE_local"))
        .args(["--port", "0", "--template", template, "--data-dir"])
        .arg(data.path())
        .env("RUST_LOG", "warn")
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .expect("the runner starts");
    let stdout = runner.stdout.take().expect("its output");
    let mut lines = BufReader::new(stdout).lines();
    let started = lines.by_ref().map_while(Result::ok).any(|line| line.contains("is running on"));
    assert!(started, "the runner says where it listens");

    let terminated = Command::new("kill").args(["-TERM", &runner.id().to_string()]).status().expect("kill runs");
    assert!(terminated.success());
    let deadline = Instant::now() + Duration::from_secs(20);
    let status = loop {
        if let Some(status) = runner.try_wait().expect("the runner's status") {
            break status;
        }
        assert!(Instant::now() < deadline, "the runner stopped within 20 s");
        std::thread::sleep(Duration::from_millis(20));
    };
    assert!(status.success(), "a clean exit, not death by the signal: {status:?}");
    let said: Vec<String> = lines.map_while(Result::ok).collect();
    assert!(said.iter().any(|line| line.contains("stopping")), "it said it was stopping: {said:?}");

    let reopened = Database::open_with_view_write_back(&data.path().join("food-delivery.db"), |_| true).expect("the file opens");
    assert!(!reopened.views_need_rebuild(), "the views were noted closed");
}
