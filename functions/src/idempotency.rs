//! `Idempotency-Key` on every command route: a client that retries a request
//! with the same key gets the first answer back instead of a second order or
//! charge.
//!
//! One record per (caller, key) in the view store (view `idempotency`):
//!
//! 1. claim: create the record `inProgress` (a put at revision 0; a lost race
//!    re-reads it). A record found `completed` is replayed, one `inProgress`
//!    is 409 unless its claim is older than [`Policy::stale_after`] (its
//!    Lambda timed out or crashed), which is taken over. A different request
//!    under a used key is 422 whatever the state.
//! 2. run the handler, which may derive ids from the record's seed
//!    ([`derived_id`]) so a re-run after a crash names the same order and
//!    the processor recognises the same charge (unless that charge was
//!    refunded, or may have been: see [`retire_derived_ids`] and
//!    `reusable_seed`);
//! 3. store an answer below 500 as `completed`; a 5xx is `released` so a retry
//!    runs again.
//!
//! Records carry `expiresAt` (Unix seconds) for DynamoDB's TTL; until a store
//! removes them (the embedded one keeps them) an expired record counts as
//! absent.

use crate::deps::Deps;
use crate::http::{self, Problem, Request, Response};
use crate::ports::{ViewDoc, ViewError};
use ::http::header::{CONTENT_TYPE, HeaderName, HeaderValue, LOCATION, RETRY_AFTER};
use aws_lambda_events::encodings::Body;
use base64::Engine;
use chrono::Utc;
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use std::collections::BTreeMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

/// The request header naming a retry.
pub const HEADER: &str = "idempotency-key";
/// The response header marking an answer given before.
pub const REPLAYED: &str = "idempotency-replayed";
/// The view holding the records.
pub const VIEW: &str = "idempotency";
/// Longest key accepted, as most payment APIs allow.
pub const MAX_KEY_LENGTH: usize = 255;

/// The headers of an answer that a replay must repeat.
const KEPT_HEADERS: [HeaderName; 3] = [CONTENT_TYPE, LOCATION, RETRY_AFTER];
/// Claims tried before a contended key is answered 409.
const CLAIM_ROUNDS: usize = 3;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Policy {
    /// How old an unfinished claim must be before another request takes it
    /// over: past the Lambda timeout (10 s), so its holder is surely gone.
    pub stale_after: Duration,
    /// How long a key is remembered.
    pub retention: Duration,
}

impl Default for Policy {
    fn default() -> Self {
        Policy { stale_after: Duration::from_secs(30), retention: Duration::from_secs(24 * 3600) }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
enum State {
    InProgress,
    Completed,
    Released,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
struct Record {
    state: State,
    /// What the key was first used for.
    fingerprint: String,
    /// Seeds the ids a handler derives; renewed once they are retired.
    seed: String,
    /// When the current claim was taken, in Unix milliseconds.
    started_at: i64,
    /// Unix seconds: DynamoDB's TTL removes the record after this.
    expires_at: i64,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    response: Option<StoredResponse>,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
struct StoredResponse {
    status: u16,
    headers: BTreeMap<String, String>,
    /// The body as sent, base64 when binary.
    body: Option<String>,
    #[serde(default)]
    binary: bool,
}

/// What a handler running under a key may derive ids from.
struct Derivation {
    scope: String,
    seed: String,
    retired: AtomicBool,
}

tokio::task_local! {
    static DERIVATION: Arc<Derivation>;
}

/// An id for `prefix` that a re-run of this request under the same
/// Idempotency-Key derives again (`{prefix}-` and 32 hex digits, like
/// [`http::new_id`]); `None` when the request carries no key.
/// It starts with the seed's first 12 digits (a fresh seed's time, as
/// in a version 7 UUID), then 20 of the hash.
pub fn derived_id(prefix: &str) -> Option<String> {
    DERIVATION
        .try_with(|derivation| {
            let time = derivation.seed.get(..12).unwrap_or_default();
            let hash = hex(&sha256(&[&derivation.scope, &derivation.seed, prefix]));
            format!("{prefix}-{time}{}", &hash[..32 - time.len()])
        })
        .ok()
}

/// Says the ids derived so far must not come back on a retry: a payment made
/// under them was refunded, and a processor that honours idempotency keys
/// would hand the refunded charge back.
pub fn retire_derived_ids() {
    let _ = DERIVATION.try_with(|derivation| derivation.retired.store(true, Ordering::SeqCst));
}

/// Runs `run` (the handler, its problems already answers) at most once per
/// caller and key, replaying its answer to retries.
pub async fn guard<F, Fut>(deps: &Deps, request: Request, run: F) -> Response
where
    F: FnOnce(Request) -> Fut,
    Fut: Future<Output = Response>,
{
    let method = request.request_context.http.method.as_str();
    if matches!(method, "GET" | "HEAD" | "OPTIONS") || !request.headers.contains_key(HEADER) {
        return run(request).await;
    }
    // Without a caller there is no scope; the handler refuses such a request.
    let Ok(caller) = http::caller(&request) else { return run(request).await };
    let key = match key(&request) {
        Ok(key) => key,
        Err(problem) => return http::respond(Err(problem)),
    };
    let slot = Slot { key: format!("{}:{}:{key}", caller.id.len(), caller.id), partition: caller.id };
    let (revision, record) = match claim(deps, &slot, &fingerprint(&request)).await {
        Ok(Claim::Ours { revision, record }) => (revision, record),
        Ok(Claim::Answered(response)) => return response,
        Err(problem) => return http::respond(Err(problem)),
    };
    let derivation = Arc::new(Derivation { scope: slot.key.clone(), seed: record.seed.clone(), retired: AtomicBool::new(false) });
    let response = DERIVATION.scope(derivation.clone(), run(request)).await;
    finish(deps, &slot, revision, record, &response, derivation.retired.load(Ordering::SeqCst)).await;
    response
}

/// Where a caller's key is recorded: one document, in the caller's partition.
struct Slot {
    /// The caller and the key, length-prefixed so no two pairs meet.
    key: String,
    partition: String,
}

impl Slot {
    fn doc(&self, record: &Record) -> Result<ViewDoc, Problem> {
        let body = serde_json::to_string(record).map_err(|error| Problem::new(500, format!("idempotency record: {error}")))?;
        Ok(ViewDoc { key: self.key.clone(), partition: self.partition.clone(), revision: 0, body })
    }
}

/// The key of the request, if it is one: 1 to 255 visible ASCII characters.
fn key(request: &Request) -> Result<String, Problem> {
    let mut values = request.headers.get_all(HEADER).iter();
    let (Some(value), None) = (values.next(), values.next()) else {
        return Err(Problem::bad_request("send one Idempotency-Key header"));
    };
    let bytes = value.as_bytes();
    if bytes.is_empty() || bytes.len() > MAX_KEY_LENGTH || !bytes.iter().all(u8::is_ascii_graphic) {
        return Err(Problem::bad_request(format!("the Idempotency-Key must be 1 to {MAX_KEY_LENGTH} visible ASCII characters")));
    }
    Ok(String::from_utf8_lossy(bytes).into_owned())
}

/// Method, path, query and body: what makes two requests the same request.
fn fingerprint(request: &Request) -> String {
    let context = &request.request_context.http;
    let path = request.raw_path.as_deref().or(context.path.as_deref()).unwrap_or("");
    let query = request.raw_query_string.as_deref().unwrap_or("");
    let raw = request.body.as_deref().unwrap_or("");
    let body = if request.is_base64_encoded {
        base64::engine::general_purpose::STANDARD.decode(raw).unwrap_or_else(|_| raw.as_bytes().to_vec())
    } else {
        raw.as_bytes().to_vec()
    };
    let mut hash = Sha256::new();
    for part in [context.method.as_str().as_bytes(), path.as_bytes(), query.as_bytes()] {
        hash.update((part.len() as u64).to_be_bytes());
        hash.update(part);
    }
    hash.update(&body);
    hex(&hash.finalize())
}

enum Claim {
    /// The record is ours at this revision: run the handler.
    Ours { revision: u64, record: Record },
    /// Answered without running: a replay or a refusal.
    Answered(Response),
}

async fn claim(deps: &Deps, slot: &Slot, fingerprint: &str) -> Result<Claim, Problem> {
    let policy = deps.settings.idempotency;
    for _ in 0..CLAIM_ROUNDS {
        let now = Utc::now().timestamp_millis();
        let fresh = |seed: String| Record {
            state: State::InProgress,
            fingerprint: fingerprint.to_owned(),
            seed,
            started_at: now,
            expires_at: expiry(now, policy),
            response: None,
        };
        let (expected, record) = match deps.views.get(VIEW, &slot.key).await? {
            None => (0, fresh(new_seed())),
            Some(doc) => match doc.decode::<Record>() {
                Err(error) => {
                    tracing::error!(%error, "an idempotency record does not decode; starting it afresh");
                    (doc.revision, fresh(new_seed()))
                }
                // Forgotten: the key is new again, and so are its ids.
                Ok(stored) if stored.expires_at.saturating_mul(1000) <= now => (doc.revision, fresh(new_seed())),
                Ok(stored) if stored.fingerprint != fingerprint => {
                    return Err(Problem::new(422, "this Idempotency-Key was used with a different request"));
                }
                Ok(stored) => match stored.state {
                    State::Completed => return Ok(Claim::Answered(replay(stored.response))),
                    State::InProgress if now - stored.started_at < policy.stale_after.as_millis() as i64 => {
                        let mut busy = Problem::new(409, "a request with this Idempotency-Key is in progress; try again shortly");
                        busy.retry_after = Some(1);
                        return Err(busy);
                    }
                    State::InProgress | State::Released => {
                        if stored.state == State::InProgress {
                            tracing::warn!(started_at = stored.started_at, "taking over an idempotency claim whose holder never finished");
                        }
                        (doc.revision, fresh(reusable_seed(deps, stored, now)))
                    }
                },
            },
        };
        match deps.views.put(VIEW, &slot.doc(&record)?, expected).await {
            Ok(()) => return Ok(Claim::Ours { revision: expected + 1, record }),
            Err(ViewError::Conflict(_)) => continue,
            Err(error) => return Err(error.into()),
        }
    }
    let mut busy = Problem::new(409, "this Idempotency-Key is contended; try again shortly");
    busy.retry_after = Some(1);
    Err(busy)
}

/// The seed for a re-run after a run that never answered. Its ids are reused
/// so the processor recognises the charge that run may have taken, but only
/// while the reconcile sweep cannot have refunded that charge as orderless:
/// the sweep waits `grace` after a charge, and the re-run must store its order
/// within that (a whole run takes at most `stale_after`). Later, fresh ids
/// take a fresh charge and the sweep refunds the old one.
fn reusable_seed(deps: &Deps, stored: Record, now: i64) -> String {
    let age = Duration::from_millis(u64::try_from(now - stored.started_at).unwrap_or(0));
    if age.saturating_add(deps.settings.idempotency.stale_after) < deps.settings.reconcile.grace { stored.seed } else { new_seed() }
}

/// Keeps an answer below 500 for replays; releases the key after a 5xx so a
/// retry runs again. Failing to record is logged, never the caller's problem:
/// the claim then goes stale and a retry takes it over.
async fn finish(deps: &Deps, slot: &Slot, revision: u64, mut record: Record, response: &Response, retired: bool) {
    let policy = deps.settings.idempotency;
    let status = u16::try_from(response.status_code).unwrap_or(500);
    if status < 500 {
        record.state = State::Completed;
        record.expires_at = expiry(Utc::now().timestamp_millis(), policy);
        record.response = Some(stored(status, response));
    } else {
        record.state = State::Released;
        if retired {
            record.seed = new_seed();
        }
    }
    let outcome = match slot.doc(&record) {
        Ok(doc) => deps.views.put(VIEW, &doc, revision).await.map_err(|error| error.to_string()),
        Err(problem) => Err(problem.detail),
    };
    if let Err(error) = outcome {
        tracing::warn!(%error, status, "could not record the outcome of an idempotent request");
    }
}

fn stored(status: u16, response: &Response) -> StoredResponse {
    let headers = KEPT_HEADERS
        .iter()
        .filter_map(|name| Some((name.as_str().to_owned(), response.headers.get(name)?.to_str().ok()?.to_owned())))
        .collect();
    let (body, binary) = match &response.body {
        Some(Body::Text(text)) => (Some(text.clone()), false),
        Some(Body::Binary(bytes)) => (Some(base64::engine::general_purpose::STANDARD.encode(bytes)), true),
        _ => (None, false),
    };
    StoredResponse { status, headers, body, binary }
}

fn replay(response: Option<StoredResponse>) -> Response {
    let Some(stored) = response else {
        tracing::error!("a completed idempotency record holds no answer");
        return Problem::new(500, "the first answer to this Idempotency-Key was lost").into_response();
    };
    let mut response = Response::default();
    response.status_code = i64::from(stored.status);
    for (name, value) in &stored.headers {
        if let (Ok(name), Ok(value)) = (HeaderName::try_from(name.as_str()), HeaderValue::from_str(value)) {
            response.headers.insert(name, value);
        }
    }
    response.headers.insert(REPLAYED, HeaderValue::from_static("true"));
    response.body = match (stored.body, stored.binary) {
        (None, _) => None,
        (Some(text), false) => Some(Body::Text(text)),
        (Some(encoded), true) => base64::engine::general_purpose::STANDARD.decode(encoded).ok().map(Body::Binary),
    };
    response
}

fn expiry(now_millis: i64, policy: Policy) -> i64 {
    now_millis / 1000 + policy.retention.as_secs() as i64
}

/// Time first (see [`derived_id`]).
fn new_seed() -> String {
    uuid::Uuid::now_v7().simple().to_string()
}

fn sha256(parts: &[&str]) -> Vec<u8> {
    let mut hash = Sha256::new();
    for part in parts {
        hash.update((part.len() as u64).to_be_bytes());
        hash.update(part.as_bytes());
    }
    hash.finalize().to_vec()
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|byte| format!("{byte:02x}")).collect()
}
