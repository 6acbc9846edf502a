//! Structured JSON logs, one object per line: the event's level and fields,
//! and the fields of the span it happened in (the invocation: function name,
//! correlation id). The lines read like `tracing-subscriber`'s JSON format
//! with the current span; this layer is lighter. That one serializes every
//! span's fields to JSON when the span opens, and parses them back and
//! writes them again whenever a field is recorded, for every invocation,
//! whether or not it logs anything. This one keeps a span's few fields as
//! encoded values and writes JSON only for a line.
//!
//! An invocation's own fields (its function, its correlation id) are no span
//! at all: they live in a task-local ([`invocation`], [`correlate`]) and are
//! written as the line's span. A span costs a slot in the registry, the
//! encoding of its fields, and an enter and an exit on every poll, for each
//! of the forty-odd invocations of an order's lifecycle, whether or not it
//! logs a line: 7 % of the local runner's CPU (BENCHMARKS.md, step 23).

use std::cell::RefCell;
use std::fmt::{self, Write as _};
use std::io::Write;
use tracing::field::{Field, Visit};
use tracing::span::{Attributes, Id, Record};
use tracing::{Event, Level, Subscriber};
use tracing_subscriber::EnvFilter;
use tracing_subscriber::fmt::MakeWriter;
use tracing_subscriber::layer::SubscriberExt;
use tracing_subscriber::layer::{Context, Layer};
use tracing_subscriber::registry::LookupSpan;
use tracing_subscriber::util::SubscriberInitExt;

/// Sets the process's subscriber: `filter`, then JSON lines to `make_writer`.
pub fn init<W>(filter: EnvFilter, make_writer: W)
where
    W: for<'w> MakeWriter<'w> + Send + Sync + 'static,
{
    let _ = tracing_subscriber::registry().with(filter).with(JsonLines::new(make_writer)).try_init();
}

tokio::task_local! {
    static INVOCATION: Invocation;
}

/// The function an invocation runs and, once known, the order it is about.
struct Invocation {
    function: String,
    correlation_id: RefCell<Option<String>>,
}

impl Invocation {
    /// `"function":"...","correlation_id":"...","name":"invocation"`, the
    /// members an `invocation` span with those fields would show.
    fn write_members(&self, line: &mut String) {
        line.push_str("\"function\":");
        push_json_str(line, &self.function);
        if let Some(correlation_id) = self.correlation_id.borrow().as_deref() {
            line.push_str(",\"correlation_id\":");
            push_json_str(line, correlation_id);
        }
        line.push_str(",\"name\":\"invocation\"");
    }
}

/// Runs `work` as an invocation of `function`: every line it logs carries
/// the function's name, and the correlation id once [`correlate`] gave it.
pub async fn invocation<F: Future>(function: &str, work: F) -> F::Output {
    INVOCATION.scope(Invocation { function: function.to_owned(), correlation_id: RefCell::new(None) }, work).await
}

/// Names the order the current invocation is about; outside one, nothing.
pub fn correlate(correlation_id: &str) {
    let _ = INVOCATION.try_with(|invocation| *invocation.correlation_id.borrow_mut() = Some(correlation_id.to_owned()));
}

/// Writes every event as one JSON line to what `make_writer` gives.
pub struct JsonLines<W> {
    make_writer: W,
}

impl<W> JsonLines<W> {
    pub fn new(make_writer: W) -> Self {
        JsonLines { make_writer }
    }
}

/// Field names with their values already encoded as JSON.
#[derive(Default)]
struct Fields(Vec<(&'static str, String)>);

impl Fields {
    fn set(&mut self, name: &'static str, json: String) {
        match self.0.iter_mut().find(|(known, _)| *known == name) {
            Some((_, value)) => *value = json,
            None => self.0.push((name, json)),
        }
    }

    /// `"a":1,"b":"x"`, in the order the fields were first recorded.
    fn write_members(&self, line: &mut String) {
        for (index, (name, json)) in self.0.iter().enumerate() {
            if index > 0 {
                line.push(',');
            }
            push_json_str(line, name);
            line.push(':');
            line.push_str(json);
        }
    }
}

impl Visit for Fields {
    fn record_str(&mut self, field: &Field, value: &str) {
        let mut json = String::with_capacity(value.len() + 2);
        push_json_str(&mut json, value);
        self.set(field.name(), json);
    }

    fn record_i64(&mut self, field: &Field, value: i64) {
        self.set(field.name(), value.to_string());
    }

    fn record_u64(&mut self, field: &Field, value: u64) {
        self.set(field.name(), value.to_string());
    }

    fn record_bool(&mut self, field: &Field, value: bool) {
        self.set(field.name(), value.to_string());
    }

    fn record_f64(&mut self, field: &Field, value: f64) {
        // JSON has no NaN nor infinity.
        let json = if value.is_finite() { value.to_string() } else { "null".to_owned() };
        self.set(field.name(), json);
    }

    fn record_error(&mut self, field: &Field, value: &(dyn std::error::Error + 'static)) {
        self.record_str(field, &value.to_string());
    }

    fn record_debug(&mut self, field: &Field, value: &dyn fmt::Debug) {
        let mut text = String::new();
        let _ = write!(text, "{value:?}");
        self.record_str(field, &text);
    }
}

impl<S, W> Layer<S> for JsonLines<W>
where
    S: Subscriber + for<'a> LookupSpan<'a>,
    W: for<'w> MakeWriter<'w> + 'static,
{
    fn on_new_span(&self, attributes: &Attributes<'_>, id: &Id, context: Context<'_, S>) {
        let Some(span) = context.span(id) else { return };
        let mut fields = Fields::default();
        attributes.record(&mut fields);
        span.extensions_mut().insert(fields);
    }

    fn on_record(&self, id: &Id, values: &Record<'_>, context: Context<'_, S>) {
        let Some(span) = context.span(id) else { return };
        let mut extensions = span.extensions_mut();
        match extensions.get_mut::<Fields>() {
            Some(fields) => values.record(fields),
            None => {
                let mut fields = Fields::default();
                values.record(&mut fields);
                extensions.insert(fields);
            }
        }
    }

    fn on_event(&self, event: &Event<'_>, context: Context<'_, S>) {
        let mut fields = Fields::default();
        event.record(&mut fields);
        let mut line = String::with_capacity(256);
        line.push_str("{\"level\":\"");
        line.push_str(level_name(*event.metadata().level()));
        line.push_str("\",\"fields\":{");
        fields.write_members(&mut line);
        line.push('}');
        // An invocation's fields before any span's: on AWS the Lambda
        // runtime's own span is open around every invocation.
        let invoked = INVOCATION
            .try_with(|invocation| {
                line.push_str(",\"span\":{");
                invocation.write_members(&mut line);
                line.push('}');
            })
            .is_ok();
        if !invoked && let Some(span) = context.event_span(event) {
            line.push_str(",\"span\":{");
            if let Some(fields) = span.extensions().get::<Fields>()
                && !fields.0.is_empty()
            {
                fields.write_members(&mut line);
                line.push(',');
            }
            line.push_str("\"name\":");
            push_json_str(&mut line, span.name());
            line.push('}');
        }
        line.push_str("}\n");
        // A log line that cannot be written is dropped: logging never fails the work.
        let _ = self.make_writer.make_writer_for(event.metadata()).write_all(line.as_bytes());
    }
}

fn level_name(level: Level) -> &'static str {
    match level {
        Level::ERROR => "ERROR",
        Level::WARN => "WARN",
        Level::INFO => "INFO",
        Level::DEBUG => "DEBUG",
        Level::TRACE => "TRACE",
    }
}

/// Appends `text` as a JSON string literal.
fn push_json_str(line: &mut String, text: &str) {
    line.push('"');
    let mut plain = 0;
    for (at, character) in text.char_indices() {
        let escaped = match character {
            '"' => "\\\"",
            '\\' => "\\\\",
            '\n' => "\\n",
            '\r' => "\\r",
            '\t' => "\\t",
            c if (c as u32) < 0x20 => {
                line.push_str(&text[plain..at]);
                let _ = write!(line, "\\u{:04x}", c as u32);
                plain = at + 1;
                continue;
            }
            _ => continue,
        };
        line.push_str(&text[plain..at]);
        line.push_str(escaped);
        plain = at + character.len_utf8();
    }
    line.push_str(&text[plain..]);
    line.push('"');
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::{Value, json};
    use std::sync::{Arc, Mutex};

    #[derive(Clone, Default)]
    struct Captured(Arc<Mutex<Vec<u8>>>);

    impl Write for Captured {
        fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
            self.0.lock().map_err(|_| std::io::Error::other("poisoned"))?.extend_from_slice(buf);
            Ok(buf.len())
        }
        fn flush(&mut self) -> std::io::Result<()> {
            Ok(())
        }
    }

    fn lines(run: impl FnOnce()) -> Vec<Value> {
        let captured = Captured::default();
        let sink = captured.clone();
        let subscriber = tracing_subscriber::registry().with(JsonLines::new(move || sink.clone()));
        tracing::subscriber::with_default(subscriber, run);
        let bytes = captured.0.lock().map(|b| b.clone()).unwrap_or_default();
        let text = String::from_utf8(bytes).expect("log lines are UTF-8");
        text.lines().map(|line| serde_json::from_str(line).unwrap_or_else(|e| panic!("{line:?} is not JSON: {e}"))).collect()
    }

    #[test]
    fn a_line_carries_the_event_and_the_fields_of_its_span_as_recorded_later() {
        let logged = lines(|| {
            let span = tracing::info_span!("invocation", function = "notify-customer", correlation_id = tracing::field::Empty);
            let _entered = span.enter();
            tracing::info!(count = 3, ok = true, "before the id is known");
            span.record("correlation_id", "order-1");
            tracing::warn!(error = %"a \"quoted\"\nline\u{1}", ratio = 0.5, "after");
        });
        assert_eq!(
            logged,
            vec![
                json!({"level": "INFO", "fields": {"message": "before the id is known", "count": 3, "ok": true},
                       "span": {"function": "notify-customer", "name": "invocation"}}),
                json!({"level": "WARN", "fields": {"message": "after", "error": "a \"quoted\"\nline\u{1}", "ratio": 0.5},
                       "span": {"function": "notify-customer", "correlation_id": "order-1", "name": "invocation"}}),
            ]
        );
    }

    #[test]
    fn a_line_of_an_invocation_carries_its_function_and_the_correlation_id_given_later() {
        let captured = Captured::default();
        let sink = captured.clone();
        let subscriber = tracing_subscriber::registry().with(JsonLines::new(move || sink.clone()));
        let _default = tracing::subscriber::set_default(subscriber);
        let runtime = tokio::runtime::Builder::new_current_thread().build().expect("a runtime");
        runtime.block_on(invocation("notify-customer", async {
            tracing::info!(count = 3, "before the id is known");
            correlate("order-1");
            // A span opened inside an invocation does not hide it.
            tracing::info_span!("inner", b = 1).in_scope(|| tracing::warn!("after"));
        }));
        tracing::info!("after the invocation");
        let bytes = captured.0.lock().map(|b| b.clone()).unwrap_or_default();
        let logged: Vec<Value> = String::from_utf8(bytes)
            .expect("log lines are UTF-8")
            .lines()
            .map(|line| serde_json::from_str(line).unwrap_or_else(|e| panic!("{line:?} is not JSON: {e}")))
            .collect();
        assert_eq!(
            logged,
            vec![
                json!({"level": "INFO", "fields": {"message": "before the id is known", "count": 3},
                       "span": {"function": "notify-customer", "name": "invocation"}}),
                json!({"level": "WARN", "fields": {"message": "after"},
                       "span": {"function": "notify-customer", "correlation_id": "order-1", "name": "invocation"}}),
                json!({"level": "INFO", "fields": {"message": "after the invocation"}}),
            ]
        );
    }

    #[test]
    fn an_event_outside_any_span_has_no_span_and_the_innermost_span_is_the_one_shown() {
        let logged = lines(|| {
            tracing::error!(reason = ?Some("x"), "alone");
            let outer = tracing::info_span!("outer", a = 1);
            let inner = tracing::info_span!(parent: &outer, "inner", b = u64::MAX);
            inner.in_scope(|| tracing::info!(unicode = "é ✓", "inside"));
        });
        assert_eq!(
            logged,
            vec![
                json!({"level": "ERROR", "fields": {"message": "alone", "reason": "Some(\"x\")"}}),
                json!({"level": "INFO", "fields": {"message": "inside", "unicode": "é ✓"}, "span": {"b": u64::MAX, "name": "inner"}}),
            ]
        );
    }
}
