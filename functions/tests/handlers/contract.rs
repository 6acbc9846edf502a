//! The embedded adapters against the port contract suite (`functions::contract`),
//! on a temporary database and on a file that is closed and opened again.

use crate::support::body;
use domain::notification::Notification;
use functions::command::load;
use functions::contract::{self, TestTokens};
use functions::embedded::{Database, SimulatedProcessor};
use functions::ports::{AppendStream, EventStore, Notifier, Sent, ViewDoc, ViewStore};
use functions::registry::BoxFuture;
use serde_json::json;
use std::sync::Arc;

fn temporary() -> Arc<Database> {
    Database::temporary().expect("a temporary database opens")
}

fn sent_to(database: &Arc<Database>) -> impl Fn(&str) -> BoxFuture<'static, Vec<Notification>> + use<> {
    let database = database.clone();
    move |customer: &str| -> BoxFuture<'static, Vec<Notification>> {
        let received = database.notifications(customer).expect("notifications read back");
        Box::pin(async move { received })
    }
}

#[tokio::test]
async fn temporary_database_event_store_keeps_the_contract() {
    contract::event_store(temporary().as_ref()).await;
}

#[tokio::test]
async fn temporary_database_view_store_keeps_the_contract() {
    contract::view_store(temporary().as_ref()).await;
}

#[tokio::test]
async fn temporary_database_notifier_keeps_the_contract() {
    let database = temporary();
    contract::notifier(database.as_ref(), sent_to(&database)).await;
}

#[tokio::test]
async fn simulated_processor_keeps_the_payment_contract() {
    let processor = Arc::new(SimulatedProcessor::default());
    let ledger = processor.clone();
    contract::payment_gateway(processor.as_ref(), TestTokens::SIMULATED, move |charge_id: &str| -> BoxFuture<'static, usize> {
        let refunds = usize::from(ledger.is_refunded(charge_id));
        Box::pin(async move { refunds })
    })
    .await;
}

#[tokio::test]
async fn a_processor_with_a_file_ledger_keeps_the_contract_and_its_charges_across_a_restart() {
    use functions::embedded::SimulatorSettings;
    use functions::ports::{ChargeRequest, PaymentGateway};
    let directory = tempfile::tempdir().expect("a temporary directory");
    let path = directory.path().join("ledger.db");
    let open = || {
        let ledger = Database::open(&path).expect("the ledger file opens");
        Arc::new(SimulatedProcessor::with_ledger(ledger, SimulatorSettings::default()).expect("the ledger table is created"))
    };
    let processor = open();
    let ledger = processor.clone();
    contract::payment_gateway(processor.as_ref(), TestTokens::SIMULATED, move |charge_id: &str| -> BoxFuture<'static, usize> {
        let refunds = usize::from(ledger.is_refunded(charge_id));
        Box::pin(async move { refunds })
    })
    .await;
    let request = ChargeRequest {
        order_id: domain::OrderId("order-restart".into()),
        customer_id: domain::CustomerId("customer-1".into()),
        token: "tok_visa".into(),
        amount: domain::Money(1500),
    };
    let kept = ChargeRequest { order_id: domain::OrderId("order-restart-kept".into()), ..request.clone() };
    let charge_id = processor.charge(&request).await.unwrap().charge_id;
    processor.refund(&charge_id, request.amount).await.unwrap();
    let kept_id = processor.charge(&kept).await.unwrap().charge_id;
    let charges = processor.charge_count();
    drop(processor);

    let restarted = open();
    assert_eq!(restarted.charge_count(), charges, "the charges survive a restart");
    assert!(restarted.is_refunded(&charge_id), "and so do the refunds");
    assert_eq!(restarted.charge(&kept).await.unwrap().charge_id, kept_id, "a retried charge after a restart is the same charge");
    assert!(
        matches!(restarted.charge(&request).await, Err(functions::ports::PaymentError::Declined(_))),
        "and a refunded one is not taken again"
    );
}

/// The suite runs again and again against one shared database: every run
/// uses fresh ids, so earlier runs never get in the way.
#[tokio::test]
async fn the_suite_runs_twice_against_one_database() {
    let database = temporary();
    for _ in 0..2 {
        contract::event_store(database.as_ref()).await;
        contract::view_store(database.as_ref()).await;
        contract::notifier(database.as_ref(), sent_to(&database)).await;
    }
}

#[tokio::test]
async fn file_database_keeps_the_contract() {
    let directory = tempfile::tempdir().expect("a temporary directory");
    let database = Database::open(&directory.path().join("contract.db")).expect("a file database opens");
    contract::event_store(database.as_ref()).await;
    contract::view_store(database.as_ref()).await;
    contract::notifier(database.as_ref(), sent_to(&database)).await;
}

/// Views changed in memory and written back in batches, as the local
/// runner's projections are, keep the same contract, and a second round runs on what the first left.
#[tokio::test]
async fn a_database_that_writes_its_views_back_keeps_the_view_contract() {
    let directory = tempfile::tempdir().expect("a temporary directory");
    let database = Database::open_with_view_write_back(&directory.path().join("views.db"), |_| true).expect("a file database opens");
    contract::view_store(database.as_ref()).await;
    contract::view_store(database.as_ref()).await;
}

/// What was committed is still there after the database is closed and the
/// file opened again: events, snapshots, views and sent notifications.
#[tokio::test]
async fn file_database_keeps_everything_across_close_and_reopen() {
    use domain::catalog::{MenuItem, Store, StoreCommand};
    use domain::{MenuItemId, Metadata, Money, OwnerId, Region, StoreId, Versioned};

    let directory = tempfile::tempdir().expect("a temporary directory");
    let path = directory.path().join("durable.db");

    // A real aggregate with a snapshot and a tail, a view and a notification.
    let meta = Metadata { correlation_id: "store-1".into(), causation_id: "request/1".into(), time: chrono::Utc::now() };
    let mut store = Versioned::<Store>::default();
    let menu = |price| vec![MenuItem { id: MenuItemId("m1".into()), name: "Ramen".into(), price: Money(price) }];
    let mut decided = store
        .execute(&StoreCommand::Register {
            store_id: StoreId("store-1".into()),
            owner: OwnerId("owner-1".into()),
            name: "Noodle Bar".into(),
            region: Region("north".into()),
            menu: menu(1000),
        })
        .unwrap();
    for price in 1001..=1011 {
        decided.extend(store.execute(&StoreCommand::ChangeMenu { owner: OwnerId("owner-1".into()), menu: menu(price) }).unwrap());
    }
    assert_eq!(store.version, 12);
    let accepted = domain::ordering::OrderEvent::OrderAccepted {
        customer_id: domain::CustomerId("customer-1".into()),
        store_id: StoreId("store-1".into()),
    };
    let envelope = domain::Envelope::wrap::<domain::ordering::Order>("order-1", 2, &accepted, &meta);
    let notification = domain::notification::for_order_event(&envelope, &accepted);
    let view = ViewDoc { key: "store-1".into(), partition: "north".into(), revision: 1, body: body(json!({ "name": "Noodle Bar" })) };
    {
        let database = Database::open(&path).expect("a file database opens");
        // Versions 1..=10 with a snapshot at 10, then 11..=12 as a tail.
        let (head, tail) = decided.split_at(10);
        let at_ten = Versioned::<Store>::replay(head.iter().map(|(_, event)| event));
        let first = functions::command::stream_write("store-1", 0, &at_ten, head, &meta, 10);
        assert_eq!(first.snapshot.as_ref().map(|snapshot| snapshot.version), Some(10), "crossing version 10 writes a snapshot");
        database.append(vec![first]).await.unwrap();
        let second: AppendStream = functions::command::stream_write("store-1", 10, &store, tail, &meta, 10);
        database.append(vec![second]).await.unwrap();
        database.put("catalog", &view, 0).await.unwrap();
        assert_eq!(database.notify(&notification).await.unwrap(), Sent::New);
    } // closed: the last handle is dropped here

    let reopened = Database::open(&path).expect("the file opens again");
    let loaded = reopened.load("Store", "store-1").await.unwrap();
    assert_eq!(loaded.snapshot.map(|snapshot| snapshot.version), Some(10), "the snapshot survives a reopen");
    assert_eq!(loaded.events.iter().map(|e| e.version).collect::<Vec<_>>(), [11, 12], "the tail survives a reopen");
    assert_eq!(load::<Store>(reopened.as_ref(), "store-1").await.unwrap(), store, "the aggregate loads as it was");
    assert_eq!(reopened.events_after(0, 100).unwrap().len(), 12, "every event is still on the change stream");
    assert_eq!(reopened.get("catalog", "store-1").await.unwrap(), Some(view), "the view survives a reopen");
    assert_eq!(reopened.notifications("customer-1").unwrap(), vec![notification.clone()], "sent notifications survive");
    assert_eq!(reopened.notify(&notification).await.unwrap(), Sent::Duplicate, "a reopened database still knows what it sent");
}

/// A stored view body that is not JSON reads back as it is stored, by get
/// and by query, and fails where it is decoded: no reader gets a made-up view.
#[tokio::test]
async fn a_stored_body_that_is_not_json_fails_to_decode() {
    let database = temporary();
    database
        .write_blocking(|c| {
            c.execute("INSERT INTO views (view, key, partition, revision, body) VALUES ('v', 'k', 'p', 1, '{not json')", [])
        })
        .expect("the row is written");
    let got = database.get("v", "k").await.expect("the row reads").expect("it is there");
    assert_eq!(got.body, "{not json");
    assert!(got.decode::<serde_json::Value>().is_err(), "get");
    let queried = database.query("v", "p").await.expect("the rows read");
    assert!(queried.len() == 1 && queried[0].decode::<serde_json::Value>().is_err(), "query");
}

// ============================================== the suite catches broken adapters

/// Adapters with one classic mistake each: the suite must refuse every one.
mod broken {
    use async_trait::async_trait;
    use chrono::{DateTime, Utc};
    use domain::Money;
    use domain::notification::Notification;
    use functions::embedded::{Database, SimulatedProcessor};
    use functions::ports::*;
    use std::sync::Arc;

    /// Forgets the snapshot it was asked to write.
    pub struct DropsSnapshots(pub Arc<Database>);
    /// Reads one page of 100 events and stops: pagination forgotten.
    pub struct OnePage(pub Arc<Database>);
    /// Reads the whole store as loading does: the events a snapshot covers left out.
    pub struct SkipsCoveredEvents(pub Arc<Database>);
    /// Reads the first page of the whole store and says there is no more.
    pub struct FirstPageOnly(pub Arc<Database>);
    /// Writes the streams of an append one by one: not atomic.
    pub struct StreamByStream(pub Arc<Database>);
    /// Overwrites whatever revision is stored: last writer wins.
    pub struct LastWriterWins(pub Arc<Database>);
    /// Sends every notification, repeated or not.
    pub struct NoDeduplication(pub Arc<Database>);
    /// Charges every request anew, ignoring the idempotency key.
    pub struct NoIdempotency(pub SimulatedProcessor);
    /// Lists every charge as never refunded: reconciliation would refund again.
    pub struct ForgetsRefunds(pub Arc<SimulatedProcessor>);

    #[async_trait]
    impl EventStore for DropsSnapshots {
        async fn load(&self, t: &str, id: &str) -> Result<LoadedStream, StoreError> {
            self.0.load(t, id).await
        }
        async fn append(&self, mut streams: Vec<AppendStream>) -> Result<(), StoreError> {
            streams.iter_mut().for_each(|s| s.snapshot = None);
            self.0.append(streams).await
        }
    }

    #[async_trait]
    impl EventStore for SkipsCoveredEvents {
        async fn load(&self, t: &str, id: &str) -> Result<LoadedStream, StoreError> {
            self.0.load(t, id).await
        }
        async fn append(&self, streams: Vec<AppendStream>) -> Result<(), StoreError> {
            self.0.append(streams).await
        }
        async fn read_all(&self, after: Option<&str>, limit: usize) -> Result<EventPage, StoreError> {
            let mut page = self.0.read_all(after, limit).await?;
            let mut kept = Vec::new();
            for event in page.events {
                let covered =
                    self.0.load(&event.aggregate_type, &event.aggregate_id).await?.snapshot.is_some_and(|s| s.version >= event.version);
                if !covered {
                    kept.push(event);
                }
            }
            page.events = kept;
            Ok(page)
        }
    }

    #[async_trait]
    impl EventStore for FirstPageOnly {
        async fn load(&self, t: &str, id: &str) -> Result<LoadedStream, StoreError> {
            self.0.load(t, id).await
        }
        async fn append(&self, streams: Vec<AppendStream>) -> Result<(), StoreError> {
            self.0.append(streams).await
        }
        async fn read_all(&self, after: Option<&str>, limit: usize) -> Result<EventPage, StoreError> {
            Ok(EventPage { next: None, ..self.0.read_all(after, limit).await? })
        }
    }

    #[async_trait]
    impl EventStore for OnePage {
        async fn load(&self, t: &str, id: &str) -> Result<LoadedStream, StoreError> {
            let mut loaded = self.0.load(t, id).await?;
            loaded.events.truncate(100);
            Ok(loaded)
        }
        async fn append(&self, streams: Vec<AppendStream>) -> Result<(), StoreError> {
            self.0.append(streams).await
        }
    }

    #[async_trait]
    impl EventStore for StreamByStream {
        async fn load(&self, t: &str, id: &str) -> Result<LoadedStream, StoreError> {
            self.0.load(t, id).await
        }
        async fn append(&self, streams: Vec<AppendStream>) -> Result<(), StoreError> {
            for stream in streams {
                self.0.append(vec![stream]).await?;
            }
            Ok(())
        }
    }

    #[async_trait]
    impl ViewStore for LastWriterWins {
        async fn get(&self, view: &str, key: &str) -> Result<Option<ViewDoc>, ViewError> {
            self.0.get(view, key).await
        }
        async fn put(&self, view: &str, doc: &ViewDoc, _expected: u64) -> Result<(), ViewError> {
            let current = self.0.get(view, &doc.key).await?.map_or(0, |d| d.revision);
            self.0.put(view, doc, current).await
        }
        async fn query(&self, view: &str, partition: &str) -> Result<Vec<ViewDoc>, ViewError> {
            self.0.query(view, partition).await
        }
    }

    #[async_trait]
    impl Notifier for NoDeduplication {
        async fn notify(&self, notification: &Notification) -> Result<Sent, NotifyError> {
            self.0.notify(notification).await.map(|_| Sent::New)
        }
    }

    #[async_trait]
    impl PaymentGateway for NoIdempotency {
        async fn charge(&self, request: &ChargeRequest) -> Result<ChargeReceipt, PaymentError> {
            let mut fresh = request.clone();
            fresh.order_id.0 = format!("{}-{}", request.order_id.0, uuid::Uuid::new_v4());
            self.0.charge(&fresh).await
        }
        async fn refund(&self, charge_id: &str, amount: Money) -> Result<(), PaymentError> {
            self.0.refund(charge_id, amount).await
        }
        async fn charges_between(&self, from: DateTime<Utc>, until: DateTime<Utc>) -> Result<Vec<ChargeRecord>, PaymentError> {
            self.0.charges_between(from, until).await
        }
    }

    #[async_trait]
    impl PaymentGateway for ForgetsRefunds {
        async fn charge(&self, request: &ChargeRequest) -> Result<ChargeReceipt, PaymentError> {
            self.0.charge(request).await
        }
        async fn refund(&self, charge_id: &str, amount: Money) -> Result<(), PaymentError> {
            self.0.refund(charge_id, amount).await
        }
        async fn charges_between(&self, from: DateTime<Utc>, until: DateTime<Utc>) -> Result<Vec<ChargeRecord>, PaymentError> {
            let listed = self.0.charges_between(from, until).await?;
            Ok(listed.into_iter().map(|charge| ChargeRecord { refunded: false, ..charge }).collect())
        }
    }
}

#[tokio::test]
#[should_panic(expected = "load must return the snapshot written with the append")]
async fn the_suite_refuses_an_event_store_that_drops_snapshots() {
    contract::event_store(&broken::DropsSnapshots(temporary())).await;
}

#[tokio::test]
#[should_panic(expected = "a long stream must load every event")]
async fn the_suite_refuses_an_event_store_that_reads_one_page() {
    contract::event_store(&broken::OnePage(temporary())).await;
}

#[tokio::test]
#[should_panic(expected = "those a snapshot covers included")]
async fn the_suite_refuses_a_read_of_the_whole_store_that_skips_what_snapshots_cover() {
    contract::event_store(&broken::SkipsCoveredEvents(temporary())).await;
}

#[tokio::test]
#[should_panic(expected = "must return every event of")]
async fn the_suite_refuses_a_read_of_the_whole_store_that_stops_after_one_page() {
    contract::event_store(&broken::FirstPageOnly(temporary())).await;
}

#[tokio::test]
#[should_panic(expected = "must not write the streams that would have fit")]
async fn the_suite_refuses_a_multi_stream_append_that_is_not_atomic() {
    contract::event_store(&broken::StreamByStream(temporary())).await;
}

#[tokio::test]
#[should_panic(expected = "must be a Conflict")]
async fn the_suite_refuses_a_view_store_where_the_last_writer_wins() {
    contract::view_store(&broken::LastWriterWins(temporary())).await;
}

#[tokio::test]
#[should_panic(expected = "must be Sent::Duplicate")]
async fn the_suite_refuses_a_notifier_that_sends_repeats() {
    let database = temporary();
    contract::notifier(&broken::NoDeduplication(database.clone()), sent_to(&database)).await;
}

#[tokio::test]
#[should_panic(expected = "must return the same charge id")]
async fn the_suite_refuses_a_processor_without_idempotency() {
    contract::payment_gateway(
        &broken::NoIdempotency(SimulatedProcessor::default()),
        TestTokens::SIMULATED,
        |_: &str| -> BoxFuture<'static, usize> { Box::pin(async { 0 }) },
    )
    .await;
}

#[tokio::test]
#[should_panic(expected = "must say whether it was refunded")]
async fn the_suite_refuses_a_processor_that_lists_refunded_charges_as_standing() {
    let processor = Arc::new(SimulatedProcessor::default());
    let ledger = processor.clone();
    contract::payment_gateway(
        &broken::ForgetsRefunds(processor),
        TestTokens::SIMULATED,
        move |charge_id: &str| -> BoxFuture<'static, usize> {
            let refunds = usize::from(ledger.is_refunded(charge_id));
            Box::pin(async move { refunds })
        },
    )
    .await;
}
