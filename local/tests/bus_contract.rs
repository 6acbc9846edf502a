//! The local runner's bus (`LocalBus`) against the event bus contract
//! (`ports::contract::event_bus`): wired from a small template whose one rule
//! routes the contract's source prefix to a function, and observed through the
//! deliveries the bus stores for that function (no dispatcher runs, so they
//! stay stored).

use async_trait::async_trait;
use functions::contract::{self, BUS_SOURCE_PREFIX, BusDelivery};
use functions::embedded::Database;
use functions::ports::{BoxFuture, BusEntry, BusError, EventBus, PutOutcome};
use local::bus::LocalBus;
use local::template::Wiring;
use serde_json::Value;
use std::sync::Arc;

const SINK: &str = "contract-sink";

fn template() -> String {
    format!(
        r#"
Resources:
  ContractSinkFunction:
    Type: AWS::Serverless::Function
    Metadata:
      BuildProperties:
        Binary: bootstrap
    Properties:
      Environment:
        Variables:
          FUNCTION: {SINK}
      Events:
        Contract:
          Type: EventBridgeRule
          Properties:
            Pattern:
              source: [{{"prefix": "{BUS_SOURCE_PREFIX}"}}]
"#
    )
}

fn local_bus() -> (LocalBus, Arc<Database>) {
    let wiring = Wiring::parse(&template()).expect("the contract template parses");
    assert_eq!(wiring.functions.len(), 1, "one function with one rule");
    let database = Database::temporary().expect("a temporary database");
    let bus = LocalBus::new(database.clone(), &wiring).expect("the bus's tables are created");
    (bus, database)
}

/// What the bus stored for the sink function: the EventBridge events it would
/// hand to it.
fn deliveries(database: &Arc<Database>) -> impl Fn() -> BoxFuture<'static, Vec<BusDelivery>> + use<> {
    let database = database.clone();
    move || -> BoxFuture<'static, Vec<BusDelivery>> {
        let stored = local::bus::stored_deliveries(&database).expect("the stored deliveries read");
        let received = stored.iter().filter(|(target, _)| target == SINK).filter_map(|(_, event)| BusDelivery::from_event(event)).collect();
        Box::pin(async move { received })
    }
}

#[tokio::test]
async fn the_local_bus_keeps_the_contract() {
    let (bus, database) = local_bus();
    contract::event_bus(&bus, deliveries(&database)).await;
}

#[tokio::test]
async fn the_suite_runs_twice_against_one_bus() {
    let (bus, database) = local_bus();
    for _ in 0..2 {
        contract::event_bus(&bus, deliveries(&database)).await;
    }
}

/// A bus that takes ten entries but silently drops the last: the suite must
/// refuse it.
struct DropsTheTenth(LocalBus);

#[async_trait]
impl EventBus for DropsTheTenth {
    async fn put_events(&self, entries: &[BusEntry]) -> Result<PutOutcome, BusError> {
        self.0.put_events(&entries[..entries.len().min(9)]).await
    }
}

/// A bus that reports nothing it refused: the suite must refuse it.
struct HidesFailures(LocalBus);

#[async_trait]
impl EventBus for HidesFailures {
    async fn put_events(&self, entries: &[BusEntry]) -> Result<PutOutcome, BusError> {
        self.0.put_events(entries).await.map(|_| PutOutcome::default())
    }
}

#[tokio::test]
#[should_panic(expected = "ten entries put in one call must all be received")]
async fn the_suite_refuses_a_bus_that_loses_entries() {
    let (bus, database) = local_bus();
    contract::event_bus(&DropsTheTenth(bus), deliveries(&database)).await;
}

#[tokio::test]
#[should_panic(expected = "exactly the entries with a malformed detail must be reported")]
async fn the_suite_refuses_a_bus_that_hides_refused_entries() {
    let (bus, database) = local_bus();
    contract::event_bus(&HidesFailures(bus), deliveries(&database)).await;
}

/// The queue holds what the table holds: deliveries stored by a run that
/// stopped before handling them are due again when the next run's bus
/// starts, and a stored event that cannot be read is parked as a dead letter
/// instead of failing forever.
#[tokio::test]
async fn a_new_bus_queues_what_the_last_run_left_and_parks_what_it_cannot_read() {
    let wiring = Wiring::parse(&template()).expect("the contract template parses");
    let directory = tempfile::tempdir().expect("a temporary directory");
    let path = directory.path().join("bus.db");
    let entries: Vec<BusEntry> = (0..3)
        .map(|i| BusEntry {
            source: format!("{BUS_SOURCE_PREFIX}restart"),
            detail_type: "OrderPlaced".into(),
            detail: format!(r#"{{"orderId": "o{i}"}}"#),
        })
        .collect();
    {
        let database = Database::open(&path).expect("the file opens");
        let bus = LocalBus::new(database.clone(), &wiring).expect("the bus's tables are created");
        let outcome = bus.put_events(&entries).await.expect("the entries are taken");
        assert!(outcome.failed.is_empty(), "{:?}", outcome.failed);
        assert_eq!(bus.queue().len(), 3, "queued as they are stored");
        database
            .write_blocking(|c| {
                c.execute(
                    "INSERT INTO deliveries (target, rule, event, max_retries, due_at) VALUES (?1, 'Contract', '{not json', 3, 0)",
                    [SINK],
                )
            })
            .expect("a broken delivery is stored");
    }

    let database = Database::open(&path).expect("the file opens again");
    let bus = LocalBus::new(database.clone(), &wiring).expect("the bus starts on the stored deliveries");
    let queued = bus.queue().take_due(i64::MAX, 10);
    let events: Vec<Value> = queued.iter().map(|d| serde_json::from_str(&d.event.text).expect("a stored event is JSON")).collect();
    let orders: Vec<&str> = events.iter().filter_map(|event| event["detail"]["orderId"].as_str()).collect();
    assert_eq!(orders, ["o0", "o1", "o2"], "every stored delivery is due again, in the order stored");
    let letters = local::bus::dead_letters(&database).expect("the dead letters read");
    assert_eq!(letters.len(), 1, "the unreadable delivery is parked: {letters:?}");
    assert!(letters[0].error.contains("not readable"), "{}", letters[0].error);
    let left = local::bus::stored_deliveries(&database).expect("the stored deliveries read");
    assert_eq!(left.len(), 3, "the parked delivery left the table; the others wait there until handled");
}
