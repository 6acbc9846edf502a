//! On-demand list prices, us-east-1, first pricing tier, in dollars. From
//! the AWS pricing pages as they stood after DynamoDB's on-demand price cut
//! of 2024-11-01 (the latest revision known here; this machine has no
//! network to check them again on 2026-11-22, the date of the figures).

/// DynamoDB on-demand: per million write request units (1 KB each; 2 per KB
/// in a transaction).
pub const DYNAMODB_WRITE_PER_MILLION: f64 = 0.625;
/// Per million read request units (4 KB each consistent, 8 KB eventually).
pub const DYNAMODB_READ_PER_MILLION: f64 = 0.125;
/// DynamoDB Streams read by a Lambda event source mapping: free.
pub const DYNAMODB_STREAMS_FOR_LAMBDA: f64 = 0.0;
/// Lambda: per million requests.
pub const LAMBDA_PER_MILLION_REQUESTS: f64 = 0.20;
/// Lambda on arm64 (template.yaml's architecture): per GB-second.
pub const LAMBDA_ARM64_PER_GB_SECOND: f64 = 0.000_013_333_4;
/// template.yaml's MemorySize.
pub const LAMBDA_MEMORY_GB: f64 = 128.0 / 1024.0;
/// API Gateway HTTP API: per million requests (up to 512 KB each).
pub const HTTP_API_PER_MILLION: f64 = 1.00;
/// EventBridge custom events: per million (64 KB chunks) put.
pub const EVENTBRIDGE_PER_MILLION: f64 = 1.00;
/// SNS standard topic: per million publishes (64 KB chunks); deliveries to
/// the subscribers are priced by protocol and not counted here.
pub const SNS_PER_MILLION_PUBLISHES: f64 = 0.50;
/// CloudWatch Logs standard ingestion: per GB.
pub const LOGS_PER_GB: f64 = 0.50;
/// Lambda's own START, END and REPORT lines per invocation, in bytes.
pub const PLATFORM_LOG_BYTES: u64 = 280;
