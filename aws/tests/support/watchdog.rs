//! Starting an emulator that can never outlive the tests: `sh` runs it in the
//! background and polls twice a second; once the test process (or the
//! emulator) is gone, it kills the emulator and exits, however the tests
//! ended, even by `kill -9`.

use std::path::Path;
use std::process::{Child, Command, Stdio};

/// $1 = the test process; the rest is the command to run.
const WATCHDOG: &str = r#"parent=$1
shift
"$@" &
server=$!
trap 'kill "$server" 2>/dev/null' EXIT INT TERM HUP
while kill -0 "$parent" 2>/dev/null && kill -0 "$server" 2>/dev/null; do sleep 0.5; done"#;

/// Runs `program args…` under the watchdog, its output going to `log`.
pub fn spawn(program: &Path, args: &[&str], log: &Path) -> Child {
    let output = std::fs::File::create(log).unwrap_or_else(|error| panic!("cannot create {}: {error}", log.display()));
    let errors = output.try_clone().unwrap_or_else(|error| panic!("cannot share {}: {error}", log.display()));
    Command::new("sh")
        .arg("-c")
        .arg(WATCHDOG)
        .arg("watchdog")
        .arg(std::process::id().to_string())
        .arg(program)
        .args(args)
        .stdin(Stdio::null())
        .stdout(output)
        .stderr(errors)
        .spawn()
        .unwrap_or_else(|error| panic!("cannot start {} through sh: {error}", program.display()))
}

pub fn free_port() -> u16 {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap_or_else(|error| panic!("no free local port: {error}"));
    listener.local_addr().map(|address| address.port()).unwrap_or_else(|error| panic!("no local port: {error}"))
}
