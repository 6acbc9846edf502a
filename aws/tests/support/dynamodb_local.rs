//! DynamoDB Local for the tests: `DYNAMODB_ENDPOINT` if set, otherwise one
//! JVM per test binary from `.tools/dynamodb` (installed by
//! `scripts/install-tools`), on a free port, in memory, under the watchdog
//! that kills it as soon as the test process is gone. Never skips: a missing or dead DynamoDB
//! Local is a panic that says what to do.

#![allow(dead_code)] // Each test binary uses its own part of the support.

use super::watchdog;

use aws_sdk_dynamodb::config::{BehaviorVersion, Credentials, Region};
use std::path::{Path, PathBuf};
use std::process::Child;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};
use tokio::sync::OnceCell;

const START_WITHIN: Duration = Duration::from_secs(30);
const REGION: &str = "us-east-1";

static ENDPOINT: OnceCell<String> = OnceCell::const_new();

/// The endpoint of a DynamoDB Local that answers, started on first use.
pub async fn endpoint() -> &'static str {
    ENDPOINT
        .get_or_init(|| async {
            match std::env::var("DYNAMODB_ENDPOINT") {
                Ok(endpoint) => {
                    if let Err(error) = wait_until_answering(&endpoint, None).await {
                        panic!("DYNAMODB_ENDPOINT={endpoint} does not answer within {START_WITHIN:?}: {error}");
                    }
                    endpoint
                }
                Err(_) => start().await,
            }
        })
        .await
}

/// A DynamoDB client of DynamoDB Local, for this test's runtime.
pub async fn client() -> aws_sdk_dynamodb::Client {
    aws_sdk_dynamodb::Client::from_conf(config(endpoint().await))
}

/// A DynamoDB Streams client of DynamoDB Local, for this test's runtime.
pub async fn streams_client() -> aws_sdk_dynamodbstreams::Client {
    let config = aws_sdk_dynamodbstreams::Config::builder()
        .behavior_version(aws_sdk_dynamodbstreams::config::BehaviorVersion::latest())
        .region(aws_sdk_dynamodbstreams::config::Region::new(REGION))
        .credentials_provider(aws_sdk_dynamodbstreams::config::Credentials::new("test", "test", None, None, "dynamodb-local"))
        .endpoint_url(endpoint().await)
        .build();
    aws_sdk_dynamodbstreams::Client::from_conf(config)
}

fn config(endpoint: &str) -> aws_sdk_dynamodb::Config {
    aws_sdk_dynamodb::Config::builder()
        .behavior_version(BehaviorVersion::latest())
        .region(Region::new(REGION))
        .credentials_provider(Credentials::new("test", "test", None, None, "dynamodb-local"))
        .endpoint_url(endpoint)
        .build()
}

/// A table name no other test (or earlier run against a shared endpoint) uses.
pub fn unique_table(prefix: &str) -> String {
    static NEXT: AtomicU64 = AtomicU64::new(0);
    let nanos = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map_or(0, |since| since.as_nanos());
    format!("{prefix}-{}-{nanos}-{}", std::process::id(), NEXT.fetch_add(1, Ordering::Relaxed))
}

fn install_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../.tools/dynamodb")
}

async fn start() -> String {
    let dir = install_dir();
    if !dir.join("DynamoDBLocal.jar").is_file() || !dir.join("DynamoDBLocal_lib").is_dir() {
        panic!("DynamoDB Local is not installed: run scripts/install-tools (no DynamoDBLocal.jar in {})", dir.display());
    }
    let port = watchdog::free_port();
    let log = std::env::temp_dir().join(format!("dynamodb-local-{}-{port}.log", std::process::id()));
    let library = format!("-Djava.library.path={}", dir.join("DynamoDBLocal_lib").display());
    let jar = dir.join("DynamoDBLocal.jar");
    let jar = jar.to_string_lossy();
    let port_text = port.to_string();
    let mut child = watchdog::spawn(Path::new("java"), &[&library, "-jar", &jar, "-inMemory", "-port", &port_text], &log);
    let endpoint = format!("http://127.0.0.1:{port}");
    if let Err(error) = wait_until_answering(&endpoint, Some(&mut child)).await {
        let output = std::fs::read_to_string(&log).unwrap_or_default();
        panic!("DynamoDB Local did not start within {START_WITHIN:?} ({error}); its output:\n{output}");
    }
    // Only needed to explain a failed start; the JVM may keep writing to it unlinked.
    let _ = std::fs::remove_file(&log);
    endpoint
}

/// Polls ListTables until it answers, the JVM exits, or the time is up.
async fn wait_until_answering(endpoint: &str, mut child: Option<&mut Child>) -> Result<(), String> {
    let probe = aws_sdk_dynamodb::Client::from_conf(
        config(endpoint)
            .to_builder()
            .retry_config(aws_sdk_dynamodb::config::retry::RetryConfig::disabled())
            .timeout_config(aws_sdk_dynamodb::config::timeout::TimeoutConfig::builder().operation_timeout(Duration::from_secs(2)).build())
            .build(),
    );
    let started = Instant::now();
    let mut last_error = String::from("no attempt");
    while started.elapsed() < START_WITHIN {
        if let Some(Ok(Some(status))) = child.as_deref_mut().map(Child::try_wait) {
            return Err(format!("the JVM exited with {status}"));
        }
        match probe.list_tables().send().await {
            Ok(_) => return Ok(()),
            Err(error) => last_error = aws_sdk_dynamodb::error::DisplayErrorContext(&error).to_string(),
        }
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
    Err(last_error)
}
