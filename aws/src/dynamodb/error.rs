//! Reading the SDK's errors: the service's code and message when DynamoDB
//! answered, the whole cause chain when it did not (timeout, connection).

use aws_sdk_dynamodb::error::{DisplayErrorContext, ProvideErrorMetadata, SdkError};

/// `code: message` of a service error, or the full chain of any other failure.
pub fn describe<E, R>(error: &SdkError<E, R>) -> String
where
    E: ProvideErrorMetadata + std::error::Error + 'static,
    R: std::fmt::Debug,
{
    match error.as_service_error() {
        Some(service) => format!("{}: {}", service.code().unwrap_or("unknown error"), service.message().unwrap_or("no message")),
        None => DisplayErrorContext(error).to_string(),
    }
}

/// The service's error code, if DynamoDB answered at all.
pub fn code<E, R>(error: &SdkError<E, R>) -> Option<&str>
where
    E: ProvideErrorMetadata,
{
    error.as_service_error().and_then(ProvideErrorMetadata::code)
}

#[cfg(test)]
mod tests {
    //! Throttling reaches the ports as "unavailable", never as a conflict or a
    //! refusal: callers answer 503 + Retry-After (commands) or fail the
    //! delivery so it is retried (policies, projections), and nothing is lost.
    //! DynamoDB Local never throttles, so a loopback server answers exactly as
    //! DynamoDB does when over capacity; the SDK's own retries are off so each
    //! answer reaches the adapter as sent.

    use crate::dynamodb::{DynamoEventStore, DynamoViewStore};
    use crate::sns::SnsNotifier;
    use aws_sdk_dynamodb::config::retry::RetryConfig;
    use aws_sdk_dynamodb::config::{BehaviorVersion, Credentials, Region};
    use chrono::Utc;
    use domain::Envelope;
    use domain::notification::Notification;
    use ports::{AppendStream, EventStore, Notifier, NotifyError, StoreError, ViewDoc, ViewError, ViewStore};
    use serde_json::json;
    use std::io::{BufRead, BufReader, Read, Write};
    use std::net::TcpListener;
    use std::sync::{Arc, Mutex};

    const PREFIX: &str = "com.amazonaws.dynamodb.v20120810#";

    /// Every way DynamoDB says "too much, too fast": the body of its HTTP 400.
    fn throttling_answers() -> Vec<(&'static str, String)> {
        let plain = |code: &str, message: &str| json!({ "__type": format!("{PREFIX}{code}"), "message": message }).to_string();
        vec![
            (
                "ProvisionedThroughputExceededException",
                plain("ProvisionedThroughputExceededException", "The level of configured provisioned throughput for the table was exceeded."),
            ),
            (
                "ThrottlingException",
                json!({ "__type": "com.amazon.coral.availability#ThrottlingException", "message": "Rate of requests exceeds the allowed throughput." })
                    .to_string(),
            ),
            ("RequestLimitExceeded", plain("RequestLimitExceeded", "Throughput exceeds the current throughput limit for your account.")),
        ]
    }

    /// A transaction cancelled because one of its items was throttled.
    fn cancelled_by_throttling() -> String {
        json!({
            "__type": format!("{PREFIX}TransactionCanceledException"),
            "Message": "Transaction cancelled, please refer cancellation reasons for specific reasons [None, ThrottlingError]",
            "CancellationReasons": [
                { "Code": "None" },
                { "Code": "ThrottlingError", "Message": "Throughput exceeds the current capacity of your table or index." },
            ],
        })
        .to_string()
    }

    /// A loopback HTTP server that answers every request with HTTP 400 and
    /// `body`, recording each request's operation (`X-Amz-Target`, or the
    /// query protocol's `Action`).
    struct Throttler {
        endpoint: String,
        operations: Arc<Mutex<Vec<String>>>,
    }

    impl Throttler {
        fn answering(body: String) -> Throttler {
            let listener = TcpListener::bind("127.0.0.1:0").expect("a loopback port");
            let endpoint = format!("http://{}", listener.local_addr().expect("a bound address"));
            let operations = Arc::new(Mutex::new(Vec::new()));
            let seen = operations.clone();
            std::thread::spawn(move || {
                for stream in listener.incoming() {
                    let Ok(mut stream) = stream else { return };
                    let Some(operation) = read_request(&mut stream) else { continue };
                    seen.lock().expect("the log is never poisoned").push(operation);
                    let answer = format!(
                        "HTTP/1.1 400 Bad Request\r\ncontent-type: application/x-amz-json-1.0\r\nx-amzn-requestid: throttled\r\n\
                         content-length: {}\r\nconnection: close\r\n\r\n{body}",
                        body.len()
                    );
                    let _ = stream.write_all(answer.as_bytes());
                }
            });
            Throttler { endpoint, operations }
        }

        fn dynamodb(&self) -> aws_sdk_dynamodb::Client {
            let config = aws_sdk_dynamodb::Config::builder()
                .behavior_version(BehaviorVersion::latest())
                .region(Region::new("us-east-1"))
                .credentials_provider(Credentials::new("test", "test", None, None, "throttler"))
                .endpoint_url(&self.endpoint)
                .retry_config(RetryConfig::disabled())
                .build();
            aws_sdk_dynamodb::Client::from_conf(config)
        }

        fn sns(&self) -> aws_sdk_sns::Client {
            let config = aws_sdk_sns::Config::builder()
                .behavior_version(aws_sdk_sns::config::BehaviorVersion::latest())
                .region(aws_sdk_sns::config::Region::new("us-east-1"))
                .credentials_provider(aws_sdk_sns::config::Credentials::new("test", "test", None, None, "throttler"))
                .endpoint_url(&self.endpoint)
                .retry_config(aws_sdk_sns::config::retry::RetryConfig::disabled())
                .build();
            aws_sdk_sns::Client::from_conf(config)
        }

        fn operations(&self) -> Vec<String> {
            self.operations.lock().expect("the log is never poisoned").clone()
        }
    }

    /// Reads one request; returns its operation.
    fn read_request(stream: &mut std::net::TcpStream) -> Option<String> {
        let mut reader = BufReader::new(stream.try_clone().ok()?);
        let (mut length, mut target) = (0, None);
        loop {
            let mut line = String::new();
            if reader.read_line(&mut line).ok()? == 0 {
                return None;
            }
            let line = line.trim_end();
            if line.is_empty() {
                break;
            }
            let (name, value) = line.split_once(':').unwrap_or((line, ""));
            match name.to_ascii_lowercase().as_str() {
                "content-length" => length = value.trim().parse().unwrap_or(0),
                "x-amz-target" => target = Some(value.trim().to_owned()),
                _ => {}
            }
        }
        let mut body = vec![0; length];
        reader.read_exact(&mut body).ok()?;
        let action = || String::from_utf8_lossy(&body).split('&').find_map(|pair| pair.strip_prefix("Action=").map(str::to_owned));
        Some(target.or_else(action).unwrap_or_default())
    }

    fn accepted_event(order: &str) -> Envelope {
        Envelope {
            event_id: domain::envelope::event_id("Order", order, 2),
            event_type: "OrderAccepted".into(),
            event_version: 1,
            aggregate_type: "Order".into(),
            aggregate_id: order.into(),
            version: 2,
            correlation_id: order.into(),
            causation_id: "request/r1".into(),
            time: Utc::now(),
            data: serde_json::value::to_raw_value(&json!({ "customerId": "c1", "storeId": "s1" })).unwrap(),
        }
    }

    fn accept(order: &str) -> Vec<AppendStream> {
        vec![AppendStream {
            aggregate_type: "Order".into(),
            aggregate_id: order.into(),
            expected_version: 1,
            events: vec![accepted_event(order)],
            snapshot: None,
        }]
    }

    /// Two streams at once: one transaction.
    fn accept_and_charge(order: &str) -> Vec<AppendStream> {
        let mut charged = accepted_event(order);
        (charged.aggregate_type, charged.event_type, charged.version) = ("Payment".into(), "PaymentApproved".into(), 1);
        charged.event_id = domain::envelope::event_id("Payment", order, 1);
        let mut streams = accept(order);
        streams.push(AppendStream {
            aggregate_type: "Payment".into(),
            aggregate_id: order.into(),
            expected_version: 0,
            events: vec![charged],
            snapshot: None,
        });
        streams
    }

    #[tokio::test]
    async fn a_throttled_append_is_unavailable_whatever_the_code() {
        let mut answers = throttling_answers();
        answers.push(("TransactionCanceledException [None, ThrottlingError]", cancelled_by_throttling()));
        for (code, body) in answers {
            let throttler = Throttler::answering(body);
            let store = DynamoEventStore::new(throttler.dynamodb(), "events");
            match store.append(accept_and_charge("o1")).await {
                Err(StoreError::Unavailable(reason)) => {
                    assert!(reason.contains("Throttl") || reason.contains("Exceeded"), "{code}: {reason}")
                }
                other => panic!("a throttled append ({code}) must be Unavailable, got {other:?}"),
            }
            assert_eq!(throttler.operations(), ["DynamoDB_20120810.TransactWriteItems"], "{code}: one attempt reached DynamoDB");
        }
    }

    /// One event on one stream goes without a transaction: its version check
    /// (a read) throttled is unavailable too, and nothing is written.
    #[tokio::test]
    async fn a_throttled_single_event_append_is_unavailable() {
        for (code, body) in throttling_answers() {
            let throttler = Throttler::answering(body);
            let store = DynamoEventStore::new(throttler.dynamodb(), "events");
            match store.append(accept("o1")).await {
                Err(StoreError::Unavailable(reason)) => {
                    assert!(reason.contains("Throttl") || reason.contains("Exceeded"), "{code}: {reason}")
                }
                other => panic!("a throttled append ({code}) must be Unavailable, got {other:?}"),
            }
            assert_eq!(throttler.operations(), ["DynamoDB_20120810.GetItem"], "{code}: the check failed, so no put was tried");
        }
    }

    #[tokio::test]
    async fn a_throttled_load_is_unavailable() {
        for (code, body) in throttling_answers() {
            let throttler = Throttler::answering(body);
            let store = DynamoEventStore::new(throttler.dynamodb(), "events");
            match store.load("Order", "o1").await {
                Err(StoreError::Unavailable(reason)) => assert!(reason.contains(code), "{code}: {reason}"),
                other => panic!("a throttled load ({code}) must be Unavailable, got {other:?}"),
            }
        }
    }

    #[tokio::test]
    async fn throttled_view_reads_and_writes_are_unavailable() {
        for (code, body) in throttling_answers() {
            let throttler = Throttler::answering(body);
            let views = DynamoViewStore::new(throttler.dynamodb(), "views");
            let doc = ViewDoc { key: "o1".into(), partition: "c1".into(), revision: 2, body: json!({ "status": "accepted" }).to_string() };
            for (what, outcome) in [
                ("get", views.get("order-status", "o1").await.map(drop)),
                ("put", views.put("order-status", &doc, 1).await),
                ("query", views.query("order-status", "c1").await.map(drop)),
            ] {
                match outcome {
                    Err(ViewError::Unavailable(reason)) => assert!(reason.contains(code), "{what} {code}: {reason}"),
                    other => panic!("a throttled view {what} ({code}) must be Unavailable, not a conflict: {other:?}"),
                }
            }
        }
    }

    /// A throttled claim sends nothing: the delivery fails, is retried, and
    /// the customer is messaged once when the claim goes through.
    #[tokio::test]
    async fn a_throttled_notification_claim_is_unavailable_and_sends_nothing() {
        for (code, body) in throttling_answers() {
            let throttler = Throttler::answering(body);
            let notifier = SnsNotifier {
                sns: throttler.sns(),
                topic_arn: "arn:aws:sns:us-east-1:1:n".into(),
                dedupe: throttler.dynamodb(),
                table: "views".into(),
            };
            let event = accepted_event("o1");
            let notification: Notification = domain::policy::notify_customer(&event, &event.decode().expect("a valid event"))
                .expect("an order event notifies its customer");
            match notifier.notify(&notification).await {
                Err(NotifyError::Unavailable(reason)) => assert!(reason.contains(code), "{code}: {reason}"),
                other => panic!("a throttled claim ({code}) must be Unavailable, got {other:?}"),
            }
            assert_eq!(throttler.operations(), ["DynamoDB_20120810.PutItem"], "{code}: nothing was published");
        }
    }
}
