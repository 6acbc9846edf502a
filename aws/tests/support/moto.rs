//! moto server for the tests: `MOTO_ENDPOINT` if set, otherwise one server
//! per test binary from `.tools/bin/moto_server` (installed by
//! `scripts/install-tools`), on a free port, under the watchdog that kills
//! it as soon as the test process is gone. Never skips: a missing or dead moto is a panic that says
//! what to do.
//!
//! Every test makes its own resources (unique names), so tests run in
//! parallel against one server, and against a shared `MOTO_ENDPOINT` again
//! and again.

#![allow(dead_code)] // Each test binary uses its own part of the support.

use super::watchdog;

use aws_config::{BehaviorVersion, Region, SdkConfig};
use std::io::{Read, Write};
use std::net::TcpStream;
use std::path::{Path, PathBuf};
use std::process::Child;
use std::sync::OnceLock;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

const START_WITHIN: Duration = Duration::from_secs(60);
pub const REGION: &str = "us-east-1";

static ENDPOINT: OnceLock<String> = OnceLock::new();

/// The endpoint of a moto server that answers, started on first use.
pub fn endpoint() -> &'static str {
    ENDPOINT.get_or_init(|| match std::env::var("MOTO_ENDPOINT") {
        Ok(endpoint) => {
            if let Err(error) = wait_until_answering(&endpoint, None) {
                panic!("MOTO_ENDPOINT={endpoint} does not answer within {START_WITHIN:?}: {error}");
            }
            endpoint
        }
        Err(_) => start(),
    })
}

/// SDK configuration for moto: region us-east-1, static test credentials.
pub async fn config() -> SdkConfig {
    let endpoint = endpoint();
    aws_config::defaults(BehaviorVersion::latest())
        .region(Region::new(REGION))
        .credentials_provider(aws_sdk_sqs::config::Credentials::new("testing", "testing", None, None, "moto"))
        .endpoint_url(endpoint)
        .load()
        .await
}

/// A resource name no other test (or earlier run against a shared endpoint) uses.
pub fn unique(prefix: &str) -> String {
    static NEXT: AtomicU64 = AtomicU64::new(0);
    let nanos = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map_or(0, |since| since.as_nanos() % 1_000_000_000_000);
    format!("{prefix}-{}-{nanos}-{}", std::process::id(), NEXT.fetch_add(1, Ordering::Relaxed))
}

fn binary() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../.tools/bin/moto_server")
}

fn start() -> String {
    let binary = binary();
    if !binary.is_file() {
        panic!(
            "moto server is not installed: run scripts/install-tools (no {}), or set MOTO_ENDPOINT to a running moto server",
            binary.display()
        );
    }
    let port = watchdog::free_port();
    let log = std::env::temp_dir().join(format!("moto-{}-{port}.log", std::process::id()));
    let port_text = port.to_string();
    let mut child = watchdog::spawn(&binary, &["-H", "127.0.0.1", "-p", &port_text], &log);
    let endpoint = format!("http://127.0.0.1:{port}");
    if let Err(error) = wait_until_answering(&endpoint, Some(&mut child)) {
        let output = std::fs::read_to_string(&log).unwrap_or_default();
        let tail: Vec<&str> = output.lines().rev().take(20).collect::<Vec<_>>().into_iter().rev().collect();
        panic!("moto server ({}) did not start on port {port}: {error}\n{}", binary.display(), tail.join("\n"));
    }
    endpoint
}

/// Until an HTTP request gets an HTTP answer; fails early if the server exited.
fn wait_until_answering(endpoint: &str, mut child: Option<&mut Child>) -> Result<(), String> {
    let address = endpoint.trim_start_matches("http://").trim_end_matches('/').to_owned();
    let deadline = Instant::now() + START_WITHIN;
    let mut last = String::from("not tried");
    while Instant::now() < deadline {
        if let Some(Ok(Some(status))) = child.as_deref_mut().map(Child::try_wait) {
            return Err(format!("it exited ({status})"));
        }
        match answers(&address) {
            Ok(()) => return Ok(()),
            Err(error) => last = error,
        }
        std::thread::sleep(Duration::from_millis(200));
    }
    Err(format!("no answer within {START_WITHIN:?} (last: {last})"))
}

fn answers(address: &str) -> Result<(), String> {
    let mut stream = TcpStream::connect(address).map_err(|e| e.to_string())?;
    stream.set_read_timeout(Some(Duration::from_secs(5))).map_err(|e| e.to_string())?;
    stream.write_all(format!("GET /moto-api/ HTTP/1.0\r\nHost: {address}\r\n\r\n").as_bytes()).map_err(|e| e.to_string())?;
    let mut head = [0u8; 5];
    stream.read_exact(&mut head).map_err(|e| e.to_string())?;
    if &head == b"HTTP/" { Ok(()) } else { Err(format!("not HTTP: {:?}", String::from_utf8_lossy(&head))) }
}
