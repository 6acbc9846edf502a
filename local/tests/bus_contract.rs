//! The local runner's bus (`LocalBus`) against the event bus contract
//! (`ports::contract::event_bus`): wired from a small template whose one rule
//! routes the contract's source prefix to a function, and observed through the
//! deliveries the bus stores for that function (no dispatcher runs, so they
//! stay in the table).

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
        let events: Vec<String> = database
            .read(|connection| {
                connection
                    .prepare("SELECT event FROM deliveries WHERE target = ?1 ORDER BY id")?
                    .query_map([SINK], |row| row.get(0))?
                    .collect()
            })
            .expect("the deliveries table reads");
        let received = events
            .iter()
            .map(|event| serde_json::from_str::<Value>(event).expect("a stored delivery is JSON"))
            .filter_map(|event| BusDelivery::from_event(&event))
            .collect();
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
