//! The port contract suite: what every adapter of a port must do, checked
//! through the port trait alone. The embedded SQLite adapters pass it in this
//! crate's tests; the DynamoDB, EventBridge and SNS adapters must pass the very
//! same functions, so a handler never notices which adapter it runs on.
//!
//! Each public function runs every rule of one port and panics with a message
//! naming the broken rule. It is test support kept in the library on purpose,
//! so any crate's tests can call it:
//!
//! ```no_run
//! # async fn run() -> Result<(), Box<dyn std::error::Error>> {
//! use functions::embedded::Database;
//! use ports::contract;
//! let database = Database::temporary()?;
//! contract::event_store(database.as_ref()).await;
//! contract::view_store(database.as_ref()).await;
//! # Ok(())
//! # }
//! ```
//!
//! Every call works on fresh, unique ids, so the suite can run again and again
//! against one shared database or table. On AWS, give it a table of its own:
//! the events it writes are probes (aggregate type `ContractProbe`), not
//! domain events, and must never reach a live event bus.
//!
//! Where a rule needs to see an effect the port itself does not report (what a
//! customer actually received, how many refunds a charge has), the caller
//! passes a small observation closure that looks at the real backend.

use crate::BoxFuture;
use crate::EventPage;
use crate::{
    AppendStream, ChargeRecord, ChargeRequest, EventStore, LoadedStream, Notifier, PaymentError, PaymentGateway, Sent, Snapshot,
    StoreError, ViewDoc, ViewError, ViewStore,
};
use chrono::{DateTime, Duration, TimeZone, Utc};
use domain::notification::Notification;
use domain::ordering::{Order, OrderEvent};
use domain::{CustomerId, Envelope, Metadata, Money, OrderId, StoreId};
use serde_json::{Value, json};

/// The aggregate type of every stream the suite writes.
pub const PROBE_TYPE: &str = "ContractProbe";

fn unique(prefix: &str) -> String {
    format!("{prefix}-{}", uuid::Uuid::new_v4().simple())
}

// ================================================================ event store

/// Runs every event store rule.
pub async fn event_store(store: &dyn EventStore) {
    unknown_stream_loads_empty(store).await;
    appended_events_load_exactly(store).await;
    wrong_expected_version_conflicts_and_writes_nothing(store).await;
    concurrent_appends_at_one_version_let_exactly_one_win(store).await;
    multi_stream_append_is_all_or_nothing(store).await;
    multi_stream_append_writes_every_stream(store).await;
    snapshot_replaces_the_events_it_covers(store).await;
    long_stream_loads_completely_in_order(store).await;
    aggregate_types_separate_streams(store).await;
    versions_that_do_not_follow_are_refused(store).await;
    every_event_is_read_whole_once_page_by_page(store).await;
    a_cursor_the_store_did_not_give_is_refused(store).await;
}

/// A JSON payload that exercises what a lossy encoding would get wrong:
/// nesting, unicode and escapes, the integer extremes, exact decimals,
/// empty containers, empty strings and nulls.
fn awkward_data(n: u64) -> Value {
    json!({
        "n": n,
        "text": "smørrebrød – 寿司 🍣 \"quoted\" \\ back\nslash\ttab",
        "empty": "",
        "nothing": null,
        "flags": [true, false],
        "max": u64::MAX,
        "min": i64::MIN,
        "half": 2.5,
        "nested": { "list": [1, [2, [3, {}]], []], "object": {} },
    })
}

/// An envelope for `version` of a probe stream. Times keep sub-second
/// precision (an adapter must not round them).
fn probe_event(aggregate_type: &str, aggregate_id: &str, version: u64, data: Value) -> Envelope {
    let time: DateTime<Utc> = Utc.with_ymd_and_hms(2025, 3, 14, 15, 9, 26).unwrap() + Duration::nanoseconds(535_897_932);
    Envelope {
        event_id: domain::envelope::event_id(aggregate_type, aggregate_id, version),
        event_type: if version % 2 == 1 { "ProbeOdd".into() } else { "ProbeEven".into() },
        event_version: 1 + (version % 3) as u32,
        aggregate_type: aggregate_type.to_owned(),
        aggregate_id: aggregate_id.to_owned(),
        version,
        correlation_id: format!("correlation-{aggregate_id}"),
        causation_id: format!("request/{aggregate_id}/{version}"),
        time: time + Duration::milliseconds(version as i64),
        data: serde_json::value::to_raw_value(&data).expect("the probe data is JSON"),
    }
}

/// Events `first..=last` of a probe stream.
fn probe_events(aggregate_id: &str, first: u64, last: u64) -> Vec<Envelope> {
    (first..=last).map(|version| probe_event(PROBE_TYPE, aggregate_id, version, awkward_data(version))).collect()
}

fn write(aggregate_id: &str, expected_version: u64, events: Vec<Envelope>) -> AppendStream {
    AppendStream { aggregate_type: PROBE_TYPE.to_owned(), aggregate_id: aggregate_id.to_owned(), expected_version, events, snapshot: None }
}

async fn load(store: &dyn EventStore, aggregate_type: &str, aggregate_id: &str) -> LoadedStream {
    store.load(aggregate_type, aggregate_id).await.unwrap_or_else(|error| panic!("loading {aggregate_type}-{aggregate_id} failed: {error}"))
}

async fn append_ok(store: &dyn EventStore, streams: Vec<AppendStream>, rule: &str) {
    if let Err(error) = store.append(streams).await {
        panic!("{rule}: a valid append failed: {error}");
    }
}

/// A stream that was never written loads as nothing: no snapshot, no events.
async fn unknown_stream_loads_empty(store: &dyn EventStore) {
    let loaded = load(store, PROBE_TYPE, &unique("never-written")).await;
    assert_eq!(loaded, LoadedStream::default(), "an unknown stream must load with no snapshot and no events");
}

/// Appending to a new stream at expected version 0 stores the envelopes, and
/// loading gives them back exactly: every field, the data JSON equal.
async fn appended_events_load_exactly(store: &dyn EventStore) {
    let id = unique("exact");
    let events = probe_events(&id, 1, 3);
    append_ok(store, vec![write(&id, 0, events.clone())], "append to a new stream").await;
    let loaded = load(store, PROBE_TYPE, &id).await;
    assert_eq!(loaded.snapshot, None, "a stream written without a snapshot must load without one");
    assert_eq!(loaded.events.len(), events.len(), "every appended event must load back");
    for (got, sent) in loaded.events.iter().zip(&events) {
        assert_eq!(got, sent, "an event must load back exactly as appended (every field, data JSON equal)");
    }
}

/// An append at a version the stream is not at fails with `Conflict` (behind
/// it, ahead of it, or 0 on an existing stream) and writes nothing.
async fn wrong_expected_version_conflicts_and_writes_nothing(store: &dyn EventStore) {
    let id = unique("conflict");
    let original = probe_events(&id, 1, 2);
    append_ok(store, vec![write(&id, 0, original.clone())], "seed the stream").await;
    for expected in [0, 1, 3, 7] {
        let events =
            (expected + 1..=expected + 2).map(|version| probe_event(PROBE_TYPE, &id, version, json!({ "intruder": expected }))).collect();
        match store.append(vec![write(&id, expected, events)]).await {
            Err(StoreError::Conflict(_)) => {}
            other => panic!("appending at expected version {expected} to a stream at version 2 must be a Conflict, got {other:?}"),
        }
    }
    let loaded = load(store, PROBE_TYPE, &id).await;
    assert_eq!(loaded.events, original, "a conflicting append must write nothing");
}

/// Two appends racing at the same expected version: exactly one wins, and the
/// stream holds the winner's events only. (On DynamoDB a failed condition and
/// a transaction conflict must both come back as `Conflict`.)
async fn concurrent_appends_at_one_version_let_exactly_one_win(store: &dyn EventStore) {
    let id = unique("race");
    append_ok(store, vec![write(&id, 0, probe_events(&id, 1, 1))], "seed the stream").await;
    let contender = |name: &str| {
        let events = (2..=3).map(|version| probe_event(PROBE_TYPE, &id, version, json!({ "writer": name }))).collect();
        write(&id, 1, events)
    };
    let (left, right) = (contender("left"), contender("right"));
    let (left_events, right_events) = (left.events.clone(), right.events.clone());
    let (left, right) = tokio::join!(store.append(vec![left]), store.append(vec![right]));
    let winner = match (&left, &right) {
        (Ok(()), Err(StoreError::Conflict(_))) => left_events,
        (Err(StoreError::Conflict(_)), Ok(())) => right_events,
        _ => panic!("of two appends at the same expected version exactly one must succeed and the other conflict: {left:?}, {right:?}"),
    };
    let loaded = load(store, PROBE_TYPE, &id).await;
    assert_eq!(loaded.events[1..], winner[..], "the stream must hold exactly the winning append's events");
    assert_eq!(loaded.events.len(), 3, "the losing append must write nothing");
}

/// An append to several streams where one conflicts writes none of them:
/// neither the events nor the snapshot of the streams that would have fit.
async fn multi_stream_append_is_all_or_nothing(store: &dyn EventStore) {
    let (fresh, busy) = (unique("atomic-fresh"), unique("atomic-busy"));
    let busy_events = probe_events(&busy, 1, 2);
    append_ok(store, vec![write(&busy, 0, busy_events.clone())], "seed the busy stream").await;
    let mut fits = write(&fresh, 0, probe_events(&fresh, 1, 2));
    fits.snapshot = Some(Snapshot { version: 2, state: json!({ "fits": true }) });
    let stale = write(&busy, 1, probe_events(&busy, 2, 2));
    match store.append(vec![fits, stale]).await {
        Err(StoreError::Conflict(_)) => {}
        other => panic!("a multi-stream append with one stale stream must be a Conflict, got {other:?}"),
    }
    assert_eq!(
        load(store, PROBE_TYPE, &fresh).await,
        LoadedStream::default(),
        "a multi-stream append that conflicts must not write the streams that would have fit"
    );
    assert_eq!(load(store, PROBE_TYPE, &busy).await.events, busy_events, "the conflicting stream must be unchanged");
}

/// An append to several streams that all fit writes every one of them.
async fn multi_stream_append_writes_every_stream(store: &dyn EventStore) {
    let (first, second) = (unique("together-1"), unique("together-2"));
    let (first_events, second_events) = (probe_events(&first, 1, 1), probe_events(&second, 1, 2));
    append_ok(store, vec![write(&first, 0, first_events.clone()), write(&second, 0, second_events.clone())], "a multi-stream append").await;
    assert_eq!(load(store, PROBE_TYPE, &first).await.events, first_events, "the first stream of a multi-stream append");
    assert_eq!(load(store, PROBE_TYPE, &second).await.events, second_events, "the second stream of a multi-stream append");
}

/// A snapshot written with an append is what load returns, followed by only
/// the events after it; a newer snapshot replaces the older one.
async fn snapshot_replaces_the_events_it_covers(store: &dyn EventStore) {
    let id = unique("snapshot");
    append_ok(store, vec![write(&id, 0, probe_events(&id, 1, 3))], "append before the snapshot").await;
    let first = Snapshot { version: 5, state: json!({ "state": "after five", "items": [1, 2, 3, 4, 5] }) };
    let mut with_snapshot = write(&id, 3, probe_events(&id, 4, 5));
    with_snapshot.snapshot = Some(first.clone());
    append_ok(store, vec![with_snapshot], "append with a snapshot").await;
    let loaded = load(store, PROBE_TYPE, &id).await;
    assert_eq!(loaded.snapshot.as_ref(), Some(&first), "load must return the snapshot written with the append");
    assert!(loaded.events.is_empty(), "load must return no event the snapshot covers, got versions {:?}", versions(&loaded));

    let tail = probe_events(&id, 6, 7);
    append_ok(store, vec![write(&id, 5, tail.clone())], "append after the snapshot").await;
    let loaded = load(store, PROBE_TYPE, &id).await;
    assert_eq!(loaded.snapshot.as_ref(), Some(&first), "a later append without a snapshot must keep the snapshot");
    assert_eq!(loaded.events, tail, "load must return exactly the events after the snapshot");

    let second = Snapshot { version: 8, state: json!({ "state": "after eight" }) };
    let mut newer = write(&id, 7, probe_events(&id, 8, 8));
    newer.snapshot = Some(second.clone());
    append_ok(store, vec![newer], "append with a newer snapshot").await;
    let loaded = load(store, PROBE_TYPE, &id).await;
    assert_eq!(loaded.snapshot, Some(second), "a newer snapshot must replace the older one");
    assert!(loaded.events.is_empty(), "nothing follows the newer snapshot, got versions {:?}", versions(&loaded));
}

fn versions(loaded: &LoadedStream) -> Vec<u64> {
    loaded.events.iter().map(|event| event.version).collect()
}

/// A long stream loads completely and in version order: 150 events of about
/// 7.5 KB each, more than 100 items and more than 1 MB, so an adapter that
/// reads in pages (DynamoDB Query returns at most 1 MB) must follow them all.
async fn long_stream_loads_completely_in_order(store: &dyn EventStore) {
    const EVENTS: u64 = 150;
    let id = unique("long");
    let filler = "0123456789abcdef".repeat(470);
    let event = |version: u64| probe_event(PROBE_TYPE, &id, version, json!({ "n": version, "filler": filler }));
    // In appends of ten, as commands write: one write never holds 150 items.
    for first in (1..=EVENTS).step_by(10) {
        let events = (first..first + 10).map(event).collect();
        append_ok(store, vec![write(&id, first - 1, events)], "append to a long stream").await;
    }
    let loaded = load(store, PROBE_TYPE, &id).await;
    assert_eq!(versions(&loaded), (1..=EVENTS).collect::<Vec<_>>(), "a long stream must load every event, in version order");
    for loaded in &loaded.events {
        // Not assert_eq: printing 150 × 7.5 KB on failure would bury the message.
        assert!(loaded == &event(loaded.version), "event {} of a long stream must load exactly", loaded.event_id);
    }
}

/// The same aggregate id under two aggregate types names two streams.
async fn aggregate_types_separate_streams(store: &dyn EventStore) {
    let id = unique("shared-id");
    let other_type = format!("{PROBE_TYPE}Twin");
    let probe = probe_events(&id, 1, 2);
    let twin: Vec<Envelope> = (1..=1).map(|version| probe_event(&other_type, &id, version, json!({ "twin": true }))).collect();
    append_ok(store, vec![write(&id, 0, probe.clone())], "append to the first type").await;
    let twin_write = AppendStream {
        aggregate_type: other_type.clone(),
        aggregate_id: id.clone(),
        expected_version: 0,
        events: twin.clone(),
        snapshot: None,
    };
    append_ok(store, vec![twin_write], "append to the second type at version 0").await;
    assert_eq!(load(store, PROBE_TYPE, &id).await.events, probe, "a stream must not see another type's events");
    assert_eq!(load(store, &other_type, &id).await.events, twin, "the second type's stream must hold only its own events");
}

/// Events whose versions do not follow the expected version one by one, or
/// that name another stream, are refused (`Refused`, not `Conflict`: it is the
/// caller's bug, not a race) and nothing is written.
async fn versions_that_do_not_follow_are_refused(store: &dyn EventStore) {
    let id = unique("refused");
    let seeded = probe_events(&id, 1, 1);
    append_ok(store, vec![write(&id, 0, seeded.clone())], "seed the stream").await;
    let other = unique("elsewhere");
    let wrong: [(&str, Vec<Envelope>); 5] = [
        ("a gap after the expected version", probe_events(&id, 3, 3)),
        ("a repeat of the expected version", probe_events(&id, 1, 1)),
        ("a gap inside the batch", vec![probe_events(&id, 2, 2).remove(0), probe_events(&id, 4, 4).remove(0)]),
        ("versions out of order", probe_events(&id, 2, 3).into_iter().rev().collect()),
        ("an event of another stream", probe_events(&other, 2, 2)),
    ];
    for (what, events) in wrong {
        match store.append(vec![write(&id, 1, events)]).await {
            Err(StoreError::Refused(_)) => {}
            other => panic!("an append with {what} must be Refused, got {other:?}"),
        }
    }
    assert_eq!(load(store, PROBE_TYPE, &id).await.events, seeded, "a refused append must write nothing");
    assert_eq!(load(store, PROBE_TYPE, &other).await, LoadedStream::default(), "a refused append must write nothing");
}

/// Reading the whole store: pages of at most `limit` events, followed from
/// cursor to cursor until there is none. Panics if it never ends.
async fn read_everything(store: &dyn EventStore, limit: usize) -> Vec<Envelope> {
    const MAX_PAGES: usize = 100_000;
    let (mut events, mut after) = (Vec::new(), None::<String>);
    for _ in 0..MAX_PAGES {
        let page: EventPage =
            store.read_all(after.as_deref(), limit).await.unwrap_or_else(|error| panic!("read_all in pages of {limit} failed: {error}"));
        assert!(page.events.len() <= limit, "a page of read_all must hold at most {limit} events, got {}", page.events.len());
        events.extend(page.events);
        match page.next {
            None => return events,
            Some(next) if after.as_ref() == Some(&next) => panic!("read_all must move on: it gave back the cursor {next} it was given"),
            next => after = next,
        }
    }
    panic!("read_all in pages of {limit} did not end within {MAX_PAGES} pages");
}

/// Reading the whole store returns every stored event exactly once and
/// exactly as appended, versions ascending within each stream, including the
/// events a snapshot covers (a rebuild needs them all), whatever the page
/// size: small pages must be followed, large ones must not drop anything.
async fn every_event_is_read_whole_once_page_by_page(store: &dyn EventStore) {
    let (snapshotted, plain) = (unique("read-all-snapshot"), unique("read-all-plain"));
    let twin_type = format!("{PROBE_TYPE}Twin");
    let mut first = write(&snapshotted, 0, probe_events(&snapshotted, 1, 3));
    first.snapshot = Some(Snapshot { version: 3, state: json!({ "covers": [1, 2, 3] }) });
    append_ok(store, vec![first], "append with a snapshot").await;
    append_ok(store, vec![write(&snapshotted, 3, probe_events(&snapshotted, 4, 5))], "append after the snapshot").await;
    append_ok(store, vec![write(&plain, 0, probe_events(&plain, 1, 2))], "append to a second stream").await;
    let twin = vec![probe_event(&twin_type, &plain, 1, json!({ "twin": true }))];
    let twin_write = AppendStream {
        aggregate_type: twin_type.clone(),
        aggregate_id: plain.clone(),
        expected_version: 0,
        events: twin.clone(),
        snapshot: None,
    };
    append_ok(store, vec![twin_write], "append to the same id under another type").await;
    let expected = [
        ((PROBE_TYPE.to_owned(), snapshotted.clone()), probe_events(&snapshotted, 1, 5)),
        ((PROBE_TYPE.to_owned(), plain.clone()), probe_events(&plain, 1, 2)),
        ((twin_type, plain.clone()), twin),
    ];
    for limit in [3, 1000] {
        let everything = read_everything(store, limit).await;
        let mut seen = std::collections::HashSet::new();
        if let Some(twice) = everything.iter().find(|event| !seen.insert(event.event_id.as_str())) {
            panic!("read_all in pages of {limit} must return each event once, {} came twice", twice.event_id);
        }
        for ((aggregate_type, aggregate_id), events) in &expected {
            let read: Vec<&Envelope> =
                everything.iter().filter(|e| &e.aggregate_type == aggregate_type && &e.aggregate_id == aggregate_id).collect();
            let versions: Vec<u64> = read.iter().map(|e| e.version).collect();
            assert_eq!(
                versions,
                events.iter().map(|e| e.version).collect::<Vec<_>>(),
                "read_all in pages of {limit} must return every event of {aggregate_type}-{aggregate_id}, those a snapshot covers \
                 included, in version order"
            );
            assert!(read.iter().zip(events).all(|(read, sent)| *read == sent), "read_all must return each event exactly as appended");
        }
    }
}

/// A cursor the store never gave is refused (`Refused`), not read as the
/// beginning or the end of the store.
async fn a_cursor_the_store_did_not_give_is_refused(store: &dyn EventStore) {
    for cursor in ["not a cursor", "{\"pk\": 1}", ""] {
        match store.read_all(Some(cursor), 10).await {
            Err(StoreError::Refused(_)) => {}
            other => panic!("read_all after the made-up cursor {cursor:?} must be Refused, got {other:?}"),
        }
    }
}

// ================================================================= view store

/// Runs every view store rule.
pub async fn view_store(views: &dyn ViewStore) {
    missing_document_is_none(views).await;
    put_at_zero_creates_revision_one(views).await;
    put_at_zero_on_an_existing_document_conflicts(views).await;
    put_at_the_current_revision_advances_and_stale_ones_conflict(views).await;
    put_at_a_revision_of_a_missing_document_conflicts(views).await;
    concurrent_creates_let_exactly_one_win(views).await;
    query_returns_exactly_the_partition_in_key_order(views).await;
    document_moving_partition_is_found_only_under_the_new_one(views).await;
    bodies_round_trip_exactly(views).await;
    expiring_documents_read_back_until_removed(views).await;
}

/// The view name the suite writes to, unique per call.
fn probe_view() -> String {
    unique("contract-view")
}

fn doc(key: &str, partition: &str, revision: u64, body: Value) -> ViewDoc {
    let body = body.to_string();
    ViewDoc { key: key.to_owned(), partition: partition.to_owned(), revision, body }
}

/// A stored body as the JSON it says.
fn parsed(doc: ViewDoc) -> Value {
    doc.decode().unwrap_or_else(|error| panic!("the body of {} must be JSON: {error}", doc.key))
}

async fn get(views: &dyn ViewStore, view: &str, key: &str) -> Option<ViewDoc> {
    views.get(view, key).await.unwrap_or_else(|error| panic!("get {view}/{key} failed: {error}"))
}

async fn put_ok(views: &dyn ViewStore, view: &str, doc: &ViewDoc, expected: u64, rule: &str) {
    if let Err(error) = views.put(view, doc, expected).await {
        panic!("{rule}: put of {view}/{} at expected revision {expected} failed: {error}", doc.key);
    }
}

async fn query(views: &dyn ViewStore, view: &str, partition: &str) -> Vec<ViewDoc> {
    views.query(view, partition).await.unwrap_or_else(|error| panic!("query {view}/{partition} failed: {error}"))
}

/// Getting a document that was never written gives `None`.
async fn missing_document_is_none(views: &dyn ViewStore) {
    let view = probe_view();
    assert_eq!(get(views, &view, "missing").await, None, "a document never written must get as None");
}

/// A put at expected revision 0 creates the document at revision 1.
async fn put_at_zero_creates_revision_one(views: &dyn ViewStore) {
    let view = probe_view();
    let created = doc("k", "p", 1, json!({ "count": 1 }));
    put_ok(views, &view, &created, 0, "create").await;
    assert_eq!(get(views, &view, "k").await, Some(created), "a created document must get back at revision 1 with its body");
}

/// A put at expected revision 0 on a document that exists is a `Conflict`
/// and leaves it as it was.
async fn put_at_zero_on_an_existing_document_conflicts(views: &dyn ViewStore) {
    let view = probe_view();
    let first = doc("k", "p", 1, json!({ "writer": "first" }));
    put_ok(views, &view, &first, 0, "create").await;
    match views.put(&view, &doc("k", "p", 1, json!({ "writer": "second" })), 0).await {
        Err(ViewError::Conflict(_)) => {}
        other => panic!("creating a document that exists must be a Conflict, got {other:?}"),
    }
    assert_eq!(get(views, &view, "k").await, Some(first), "a conflicting create must leave the document unchanged");
}

/// A put at the stored revision stores the next revision; a put at a stale
/// revision is a `Conflict` and the stored document stays as it was.
async fn put_at_the_current_revision_advances_and_stale_ones_conflict(views: &dyn ViewStore) {
    let view = probe_view();
    put_ok(views, &view, &doc("k", "p", 1, json!({ "step": 1 })), 0, "create").await;
    let second = doc("k", "p", 2, json!({ "step": 2 }));
    put_ok(views, &view, &second, 1, "update at the current revision").await;
    assert_eq!(get(views, &view, "k").await, Some(second.clone()), "an update must store revision + 1 with the new body");
    for stale in [1, 3] {
        match views.put(&view, &doc("k", "p", stale + 1, json!({ "step": "stale" })), stale).await {
            Err(ViewError::Conflict(_)) => {}
            other => panic!("a put at revision {stale} on a document at revision 2 must be a Conflict, got {other:?}"),
        }
    }
    assert_eq!(get(views, &view, "k").await, Some(second), "a stale put must leave the stored document unchanged");
}

/// A put expecting a revision of a document that does not exist is a
/// `Conflict` and creates nothing.
async fn put_at_a_revision_of_a_missing_document_conflicts(views: &dyn ViewStore) {
    let view = probe_view();
    match views.put(&view, &doc("ghost", "p", 4, json!({})), 3).await {
        Err(ViewError::Conflict(_)) => {}
        other => panic!("updating a document that does not exist must be a Conflict, got {other:?}"),
    }
    assert_eq!(get(views, &view, "ghost").await, None, "a conflicting update must not create the document");
}

/// Two creates racing on one key: exactly one wins.
async fn concurrent_creates_let_exactly_one_win(views: &dyn ViewStore) {
    let view = probe_view();
    let (left, right) = (doc("k", "p", 1, json!({ "writer": "left" })), doc("k", "p", 1, json!({ "writer": "right" })));
    let (left_result, right_result) = tokio::join!(views.put(&view, &left, 0), views.put(&view, &right, 0));
    let winner = match (&left_result, &right_result) {
        (Ok(()), Err(ViewError::Conflict(_))) => left,
        (Err(ViewError::Conflict(_)), Ok(())) => right,
        _ => panic!("of two racing creates exactly one must succeed and the other conflict: {left_result:?}, {right_result:?}"),
    };
    assert_eq!(get(views, &view, "k").await, Some(winner), "the document must be the winner's");
}

/// A query returns exactly the documents of one partition of one view, in key
/// order (byte order of the key, as DynamoDB sorts string keys), whatever
/// order they were written in.
async fn query_returns_exactly_the_partition_in_key_order(views: &dyn ViewStore) {
    let (view, other_view) = (probe_view(), probe_view());
    let (partition, neighbour) = (unique("partition"), unique("neighbour"));
    for key in ["b", "a2", "B", "a10", "a"] {
        put_ok(views, &view, &doc(key, &partition, 1, json!({ "key": key })), 0, "fill the partition").await;
    }
    put_ok(views, &view, &doc("a1", &neighbour, 1, json!({})), 0, "fill a neighbouring partition").await;
    put_ok(views, &other_view, &doc("a0", &partition, 1, json!({})), 0, "fill the same partition of another view").await;
    let found = query(views, &view, &partition).await;
    let keys: Vec<&str> = found.iter().map(|doc| doc.key.as_str()).collect();
    assert_eq!(keys, ["B", "a", "a10", "a2", "b"], "a query must return exactly the partition's documents, in key order");
    for found in &found {
        assert_eq!(found, &doc(&found.key, &partition, 1, json!({ "key": found.key })), "a queried document must be complete");
    }
    assert!(query(views, &view, &unique("empty")).await.is_empty(), "an empty partition must query as nothing");
}

/// A document rewritten under another partition is found only under the new one.
async fn document_moving_partition_is_found_only_under_the_new_one(views: &dyn ViewStore) {
    let view = probe_view();
    let (old, new) = (unique("old"), unique("new"));
    put_ok(views, &view, &doc("mover", &old, 1, json!({ "at": "old" })), 0, "create in the old partition").await;
    let moved = doc("mover", &new, 2, json!({ "at": "new" }));
    put_ok(views, &view, &moved, 1, "move to the new partition").await;
    assert!(query(views, &view, &old).await.is_empty(), "a moved document must no longer be found under its old partition");
    assert_eq!(query(views, &view, &new).await, vec![moved.clone()], "a moved document must be found under its new partition");
    assert_eq!(get(views, &view, "mover").await, Some(moved), "a moved document must get with its new partition");
}

/// JSON bodies come back exactly as written, by get and by query.
async fn bodies_round_trip_exactly(views: &dyn ViewStore) {
    let view = probe_view();
    let partition = unique("bodies");
    let bodies = [
        awkward_data(7),
        json!({ "timeline": [{ "version": 1, "status": "placed" }, { "version": 2, "note": null }], "": "empty key" }),
        json!([1, "two", { "three": [3.25] }]),
        json!("just a string"),
        json!(null),
    ];
    for (index, body) in bodies.iter().enumerate() {
        let key = format!("body-{index}");
        put_ok(views, &view, &doc(&key, &partition, 1, body.clone()), 0, "write a body").await;
        let stored = get(views, &view, &key).await.map(parsed);
        assert_eq!(stored.as_ref(), Some(body), "a body must get back exactly as written");
    }
    let queried: Vec<Value> = query(views, &view, &partition).await.into_iter().map(parsed).collect();
    assert_eq!(queried, bodies.to_vec(), "bodies must query back exactly as written");
}

/// A body with a top-level `expiresAt` (Unix seconds) is stored, updated,
/// read and queried exactly like any other until its time has come: the
/// store only marks it for removal (DynamoDB: its TTL attribute).
async fn expiring_documents_read_back_until_removed(views: &dyn ViewStore) {
    let view = probe_view();
    let partition = unique("expiring");
    let tomorrow = Utc::now().timestamp() + 24 * 3600;
    let first = doc("k", &partition, 1, json!({ "state": "claimed", "expiresAt": tomorrow }));
    put_ok(views, &view, &first, 0, "create an expiring document").await;
    assert_eq!(get(views, &view, "k").await, Some(first), "an expiring document must get back exactly, expiresAt included");
    let later = doc("k", &partition, 2, json!({ "state": "done", "expiresAt": tomorrow + 3600 }));
    put_ok(views, &view, &later, 1, "extend an expiring document").await;
    let kept = doc("kept", &partition, 1, json!({ "expiresAt": "not a time" }));
    put_ok(views, &view, &kept, 0, "a document whose expiresAt is no time").await;
    assert_eq!(query(views, &view, &partition).await, vec![later, kept], "expiring documents must query back exactly");
}

// =================================================================== notifier

/// Runs every notifier rule. `sent_to(customer)` must return what the
/// customer really received (locally the stored messages; on AWS, for example,
/// what a test subscription of the topic collected), in any order.
pub async fn notifier(notifier: &dyn Notifier, sent_to: impl Fn(&str) -> BoxFuture<'static, Vec<Notification>>) {
    first_notification_is_new(notifier, &sent_to).await;
    same_id_again_is_a_duplicate_and_sent_once(notifier, &sent_to).await;
    different_ids_are_different_notifications(notifier, &sent_to).await;
}

/// The notification of event `version` of a fresh order of `customer`, made
/// as the notify-customer policy makes it (so its id is the event's id).
fn notification(customer: &str, order_id: &str, version: u64) -> Notification {
    let (customer_id, store_id) = (CustomerId(customer.to_owned()), StoreId("store-contract".into()));
    let event = match version {
        2 => OrderEvent::OrderAccepted { customer_id, store_id },
        _ => OrderEvent::OrderRejected { customer_id, store_id, reason: format!("smørrebrød 🍣 sold out ({version})") },
    };
    let meta = Metadata {
        correlation_id: order_id.to_owned(),
        causation_id: "request/contract".into(),
        time: Utc.with_ymd_and_hms(2025, 3, 14, 15, 9, 26).unwrap() + Duration::milliseconds(535),
    };
    let envelope = Envelope::wrap::<Order>(order_id, version, &event, &meta);
    domain::notification::for_order_event(&envelope, &event)
}

async fn notify(notifier: &dyn Notifier, notification: &Notification) -> Sent {
    notifier.notify(notification).await.unwrap_or_else(|error| panic!("notify {} failed: {error}", notification.id))
}

async fn received(sent_to: &impl Fn(&str) -> BoxFuture<'static, Vec<Notification>>, customer: &str) -> Vec<Notification> {
    let mut received = sent_to(customer).await;
    received.sort_by(|a, b| a.id.cmp(&b.id));
    received
}

/// The first notification with an id is sent (`Sent::New`) and received as sent.
async fn first_notification_is_new(notifier: &dyn Notifier, sent_to: &impl Fn(&str) -> BoxFuture<'static, Vec<Notification>>) {
    let customer = unique("customer");
    let first = notification(&customer, &unique("order"), 2);
    assert_eq!(notify(notifier, &first).await, Sent::New, "the first notification with an id must be Sent::New");
    assert_eq!(received(sent_to, &customer).await, vec![first], "the customer must receive the notification as sent");
}

/// The same id again is `Sent::Duplicate` and the customer has it once.
async fn same_id_again_is_a_duplicate_and_sent_once(
    notifier: &dyn Notifier,
    sent_to: &impl Fn(&str) -> BoxFuture<'static, Vec<Notification>>,
) {
    let customer = unique("customer");
    let once = notification(&customer, &unique("order"), 2);
    assert_eq!(notify(notifier, &once).await, Sent::New, "the first notification with an id must be Sent::New");
    assert_eq!(notify(notifier, &once).await, Sent::Duplicate, "the same notification id again must be Sent::Duplicate");
    assert_eq!(received(sent_to, &customer).await, vec![once], "a repeated notification must reach the customer once");
}

/// Two different ids are two notifications, both received.
async fn different_ids_are_different_notifications(
    notifier: &dyn Notifier,
    sent_to: &impl Fn(&str) -> BoxFuture<'static, Vec<Notification>>,
) {
    let (customer, order_id) = (unique("customer"), unique("order"));
    let mut both = vec![notification(&customer, &order_id, 2), notification(&customer, &order_id, 3)];
    for one in &both {
        assert_eq!(notify(notifier, one).await, Sent::New, "a notification with a new id must be Sent::New");
    }
    both.sort_by(|a, b| a.id.cmp(&b.id));
    assert_eq!(received(sent_to, &customer).await, both, "two notification ids must reach the customer as two messages");
}

// ============================================================ payment gateway

/// The payment tokens of the processor under test. Tokens are the processor's
/// own test-mode cards: `SIMULATED` are those of the embedded
/// `SimulatedProcessor`; a real adapter's test run passes its sandbox's tokens
/// (for Stripe's test mode, `tok_visa` and `tok_chargeDeclined`).
#[derive(Debug, Clone, Copy)]
pub struct TestTokens {
    /// Always approved.
    pub approved: &'static str,
    /// Always declined by the card issuer.
    pub declined: &'static str,
}

impl TestTokens {
    pub const SIMULATED: TestTokens = TestTokens { approved: "tok_visa", declined: "tok_decline" };
}

/// Runs every payment gateway rule. `refunds_of(charge_id)` must say how
/// many refunds the processor really recorded for a charge (the simulator's
/// ledger; a sandbox's refund list).
pub async fn payment_gateway(gateway: &dyn PaymentGateway, tokens: TestTokens, refunds_of: impl Fn(&str) -> BoxFuture<'static, usize>) {
    approved_token_charges(gateway, tokens).await;
    declined_token_is_declined(gateway, tokens).await;
    same_order_charged_twice_is_one_charge(gateway, tokens).await;
    refunding_twice_refunds_once(gateway, tokens, &refunds_of).await;
    a_refunded_order_is_not_charged_again(gateway, tokens, &refunds_of).await;
    refunding_an_unknown_charge_fails(gateway).await;
    charges_are_listed_by_time_window(gateway, tokens).await;
}

fn charge_request(token: &str, cents: u64) -> ChargeRequest {
    ChargeRequest {
        order_id: OrderId(unique("order")),
        customer_id: CustomerId(unique("customer")),
        token: token.to_owned(),
        amount: Money(cents),
    }
}

async fn charge_ok(gateway: &dyn PaymentGateway, request: &ChargeRequest) -> String {
    match gateway.charge(request).await {
        Ok(receipt) => {
            assert!(!receipt.charge_id.is_empty(), "an approved charge must have a charge id");
            receipt.charge_id
        }
        Err(error) => panic!("charging the approved token {} must succeed: {error}", request.token),
    }
}

/// A charge with an approved token succeeds with a charge id.
async fn approved_token_charges(gateway: &dyn PaymentGateway, tokens: TestTokens) {
    charge_ok(gateway, &charge_request(tokens.approved, 1250)).await;
}

/// A charge with a declined token is `Declined` (the customer's card, not an
/// outage: it must not be retried).
async fn declined_token_is_declined(gateway: &dyn PaymentGateway, tokens: TestTokens) {
    match gateway.charge(&charge_request(tokens.declined, 1250)).await {
        Err(PaymentError::Declined(_)) => {}
        other => panic!("charging the declined token {} must be Declined, got {other:?}", tokens.declined),
    }
}

/// The order id is the idempotency key: charging one order twice returns the
/// same charge id, so a retried request never charges twice.
async fn same_order_charged_twice_is_one_charge(gateway: &dyn PaymentGateway, tokens: TestTokens) {
    let request = charge_request(tokens.approved, 990);
    let first = charge_ok(gateway, &request).await;
    let again = charge_ok(gateway, &request).await;
    assert_eq!(first, again, "charging the same order twice must return the same charge id");
    let other = charge_ok(gateway, &charge_request(tokens.approved, 990)).await;
    assert_ne!(first, other, "two orders must be two charges");
}

/// Refunding a charge twice succeeds both times and returns the money once.
async fn refunding_twice_refunds_once(
    gateway: &dyn PaymentGateway,
    tokens: TestTokens,
    refunds_of: &impl Fn(&str) -> BoxFuture<'static, usize>,
) {
    let request = charge_request(tokens.approved, 2400);
    let charge_id = charge_ok(gateway, &request).await;
    assert_eq!(refunds_of(&charge_id).await, 0, "a fresh charge must have no refund");
    for attempt in ["first", "second"] {
        if let Err(error) = gateway.refund(&charge_id, request.amount).await {
            panic!("the {attempt} refund of a charge must succeed: {error}");
        }
    }
    assert_eq!(refunds_of(&charge_id).await, 1, "refunding a charge twice must refund it once");
}

/// Charging an order again after its charge was refunded is `Declined`: the
/// idempotency key would answer with the refunded charge, and an order stored
/// on it would be food nobody paid for. The customer pays anew.
async fn a_refunded_order_is_not_charged_again(
    gateway: &dyn PaymentGateway,
    tokens: TestTokens,
    refunds_of: &impl Fn(&str) -> BoxFuture<'static, usize>,
) {
    let request = charge_request(tokens.approved, 1800);
    let charge_id = charge_ok(gateway, &request).await;
    if let Err(error) = gateway.refund(&charge_id, request.amount).await {
        panic!("refunding a charge must succeed: {error}");
    }
    match gateway.charge(&request).await {
        Err(PaymentError::Declined(_)) => {}
        other => panic!("charging an order whose charge was refunded must be Declined, got {other:?}"),
    }
    assert_eq!(refunds_of(&charge_id).await, 1, "the refund stands");
}

/// Refunding a charge the processor never made fails as `Declined`: a
/// permanent refusal, not an outage to retry.
async fn refunding_an_unknown_charge_fails(gateway: &dyn PaymentGateway) {
    match gateway.refund(&unique("ch_unknown"), Money(100)).await {
        Err(PaymentError::Declined(_)) => {}
        other => panic!("refunding an unknown charge must be Declined, got {other:?}"),
    }
}

/// Reconciliation reads the processor's ledger by time: a window lists every
/// charge taken in it once (however often it was retried), with its order,
/// amount and whether it was refunded, oldest first; a declined charge is no
/// charge, and a window before the charges lists none of them. The margins
/// allow for the processor's clock differing from ours by up to a minute.
async fn charges_are_listed_by_time_window(gateway: &dyn PaymentGateway, tokens: TestTokens) {
    let skew = Duration::minutes(1);
    let started = Utc::now();
    let requests: Vec<ChargeRequest> = (0..3).map(|n| charge_request(tokens.approved, 700 + n)).collect();
    let mut charge_ids = Vec::new();
    for request in &requests {
        charge_ids.push(charge_ok(gateway, request).await);
    }
    charge_ok(gateway, &requests[0]).await;
    if let Err(error) = gateway.refund(&charge_ids[1], requests[1].amount).await {
        panic!("refunding a charge must succeed: {error}");
    }
    let declined = charge_request(tokens.declined, 500);
    let _ = gateway.charge(&declined).await;

    let listed = match gateway.charges_between(started - skew, Utc::now() + skew).await {
        Ok(listed) => listed,
        Err(error) => panic!("listing the charges of a window must succeed: {error}"),
    };
    for ((request, charge_id), refunded) in requests.iter().zip(&charge_ids).zip([false, true, false]) {
        let mine: Vec<&ChargeRecord> = listed.iter().filter(|charge| charge.order_id == request.order_id).collect();
        assert_eq!(mine.len(), 1, "a window must list each charge of an order once, however often it was charged: {mine:?}");
        let charge = mine[0];
        assert_eq!(&charge.charge_id, charge_id, "a listed charge must carry the charge id the charge returned");
        assert_eq!(charge.amount, request.amount, "a listed charge must carry its amount");
        assert_eq!(charge.refunded, refunded, "a listed charge must say whether it was refunded: {charge:?}");
        assert!(
            charge.created_at >= started - skew && charge.created_at <= Utc::now() + skew,
            "a listed charge must carry when it was taken: {charge:?}"
        );
    }
    assert!(listed.iter().all(|charge| charge.order_id != declined.order_id), "a declined charge must not be listed");
    assert!(listed.windows(2).all(|pair| pair[0].created_at <= pair[1].created_at), "charges must be listed oldest first: {listed:?}");
    let before = match gateway.charges_between(started - Duration::hours(2), started - Duration::hours(1)).await {
        Ok(before) => before,
        Err(error) => panic!("listing an earlier window must succeed: {error}"),
    };
    assert!(
        before.iter().all(|charge| requests.iter().all(|request| request.order_id != charge.order_id)),
        "a window before the charges must not list them"
    );
}

// ================================================================== event bus

/// The source prefix the environment under test routes to the observed sink
/// (a rule with the pattern `{"source": [{"prefix": "contract."}]}`).
pub const BUS_SOURCE_PREFIX: &str = "contract.";

/// How long a put event may take to reach the sink.
const DELIVERY_WAIT: std::time::Duration = std::time::Duration::from_secs(10);

/// An event as the sink received it.
#[derive(Debug, Clone, PartialEq)]
pub struct BusDelivery {
    pub source: String,
    pub detail_type: String,
    pub detail: Value,
}

impl BusDelivery {
    /// Reads the event EventBridge hands to a rule's target (`source`,
    /// `detail-type`, `detail`); `None` if it is not one.
    pub fn from_event(event: &Value) -> Option<BusDelivery> {
        Some(BusDelivery {
            source: event.get("source")?.as_str()?.to_owned(),
            detail_type: event.get("detail-type")?.as_str()?.to_owned(),
            detail: event.get("detail")?.clone(),
        })
    }

    fn sort_key(&self) -> (String, String, String) {
        (self.source.clone(), self.detail_type.clone(), self.detail.to_string())
    }
}

/// Runs every event bus rule. The environment routes every event whose source
/// starts with [`BUS_SOURCE_PREFIX`], and no other, to one sink;
/// `received()` returns everything that sink has received so far, in any
/// order (locally the stored deliveries; on AWS, for example, what a queue
/// targeted by the rule collected). Every rule marks its details with a fresh
/// probe id, so the sink may be shared with earlier runs.
pub async fn event_bus(bus: &dyn crate::EventBus, received: impl Fn() -> BoxFuture<'static, Vec<BusDelivery>>) {
    put_entries_are_received_exactly(bus, &received).await;
    ten_entries_in_one_call_are_all_received(bus, &received).await;
    other_sources_do_not_reach_the_sink(bus, &received).await;
    malformed_details_are_refused_by_index(bus, &received).await;
}

fn bus_entry(source: &str, detail_type: &str, detail: &Value) -> crate::BusEntry {
    crate::BusEntry { source: source.to_owned(), detail_type: detail_type.to_owned(), detail: detail.to_string() }
}

fn delivery(entry: &crate::BusEntry) -> BusDelivery {
    let detail = serde_json::from_str(&entry.detail).unwrap_or_else(|e| panic!("a probe detail is JSON: {e}"));
    BusDelivery { source: entry.source.clone(), detail_type: entry.detail_type.clone(), detail }
}

fn sorted(mut deliveries: Vec<BusDelivery>) -> Vec<BusDelivery> {
    deliveries.sort_by_key(BusDelivery::sort_key);
    deliveries
}

async fn put(bus: &dyn crate::EventBus, entries: &[crate::BusEntry], rule: &str) -> crate::PutOutcome {
    bus.put_events(entries).await.unwrap_or_else(|error| panic!("{rule}: PutEvents failed: {error}"))
}

/// What the sink received of one probe: waits until `expected` arrived, or
/// until `DELIVERY_WAIT` has passed.
async fn received_of(received: &impl Fn() -> BoxFuture<'static, Vec<BusDelivery>>, probe: &str, expected: usize) -> Vec<BusDelivery> {
    let deadline = tokio::time::Instant::now() + DELIVERY_WAIT;
    loop {
        let mine: Vec<BusDelivery> =
            received().await.into_iter().filter(|d| d.detail.get("probe").and_then(Value::as_str) == Some(probe)).collect();
        if mine.len() >= expected || tokio::time::Instant::now() >= deadline {
            return sorted(mine);
        }
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
}

/// Entries put on the bus are taken (no failures) and received once each,
/// with exactly their source, detail-type and detail (the detail equal as JSON,
/// awkward payloads included).
async fn put_entries_are_received_exactly(bus: &dyn crate::EventBus, received: &impl Fn() -> BoxFuture<'static, Vec<BusDelivery>>) {
    let probe = unique("bus-exact");
    let entries = [
        bus_entry("contract.ordering", "ProbeOdd", &json!({ "probe": probe, "data": awkward_data(1) })),
        bus_entry("contract.catalog.menus", "Probe Even", &json!({ "probe": probe, "data": awkward_data(2) })),
        bus_entry("contract.ordering", "ProbeOdd", &json!({ "probe": probe, "data": { "n": 3, "list": [] } })),
    ];
    let outcome = put(bus, &entries, "put entries").await;
    assert_eq!(outcome, crate::PutOutcome::default(), "valid entries must all be taken (no failures)");
    let sent = sorted(entries.iter().map(delivery).collect());
    assert_eq!(
        received_of(received, &probe, sent.len()).await,
        sent,
        "every entry must be received once, with exactly its source, detail-type and detail"
    );
}

/// Ten entries (`MAX_BATCH`, EventBridge's limit) in one call are all taken
/// and all received.
async fn ten_entries_in_one_call_are_all_received(bus: &dyn crate::EventBus, received: &impl Fn() -> BoxFuture<'static, Vec<BusDelivery>>) {
    let probe = unique("bus-ten");
    let entries: Vec<crate::BusEntry> = (0..crate::MAX_BATCH)
        .map(|n| bus_entry(&format!("contract.batch{}", n % 3), &format!("Probe{n}"), &json!({ "probe": probe, "n": n })))
        .collect();
    let outcome = put(bus, &entries, "put ten entries").await;
    assert_eq!(outcome, crate::PutOutcome::default(), "ten valid entries in one call must all be taken");
    let sent = sorted(entries.iter().map(delivery).collect());
    assert_eq!(received_of(received, &probe, sent.len()).await, sent, "ten entries put in one call must all be received");
}

/// Entries whose source does not start with the prefix (`contract` without
/// the dot, `contractor.`, the prefix further in, another case) are taken but
/// do not reach the prefix's sink.
async fn other_sources_do_not_reach_the_sink(bus: &dyn crate::EventBus, received: &impl Fn() -> BoxFuture<'static, Vec<BusDelivery>>) {
    let probe = unique("bus-routing");
    let detail = json!({ "probe": probe });
    let outsiders = ["contract", "contractor.probe", "other.contract.probe", "Contract.probe"];
    let mut entries: Vec<crate::BusEntry> = outsiders.iter().map(|source| bus_entry(source, "ProbeOutside", &detail)).collect();
    entries.push(bus_entry("contract.routed", "ProbeInside", &detail));
    let outcome = put(bus, &entries, "put entries of several sources").await;
    assert_eq!(outcome, crate::PutOutcome::default(), "valid entries of any source must be taken");
    // The insider arriving shows the call was processed; then a little grace
    // for anything that would wrongly follow.
    let inside = received_of(received, &probe, 1).await;
    assert!(!inside.is_empty(), "the entry with the routed prefix must be received");
    tokio::time::sleep(std::time::Duration::from_millis(500)).await;
    let all = received_of(received, &probe, 0).await; // no wait: whatever is there now
    let sources: Vec<&str> = all.iter().map(|d| d.source.as_str()).collect();
    assert_eq!(sources, ["contract.routed"], "only entries whose source starts with the prefix may reach its sink");
}

/// An entry whose detail is not JSON is refused in the outcome at its index
/// (with a reason: EventBridge's `MalformedDetail`), while the other entries
/// of the call are taken and received: the caller retries exactly the refused
/// ones. (JSON that is not an object is left out: moto takes it.)
async fn malformed_details_are_refused_by_index(bus: &dyn crate::EventBus, received: &impl Fn() -> BoxFuture<'static, Vec<BusDelivery>>) {
    let probe = unique("bus-malformed");
    let good = |n: u32| bus_entry("contract.partial", "ProbeGood", &json!({ "probe": probe, "n": n }));
    let bad = |detail: &str| crate::BusEntry { source: "contract.partial".into(), detail_type: "ProbeBad".into(), detail: detail.into() };
    let entries = [good(0), bad("{not json"), good(2), bad(r#"{"unterminated": "#), good(4)];
    let outcome = put(bus, &entries, "put entries with malformed details").await;
    let indexes: Vec<usize> = outcome.failed.iter().map(|(index, _)| *index).collect();
    assert_eq!(indexes, [1, 3], "exactly the entries with a malformed detail must be reported, at their index");
    for (index, reason) in &outcome.failed {
        assert!(!reason.trim().is_empty(), "a refused entry ({index}) must come with a reason");
    }
    let sent = sorted([&entries[0], &entries[2], &entries[4]].into_iter().map(delivery).collect());
    assert_eq!(received_of(received, &probe, sent.len()).await, sent, "the well-formed entries of a partly refused call must be received");
}
