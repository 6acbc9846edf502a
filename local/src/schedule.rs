//! The template's `Schedule` events: each scheduled function runs at its
//! `rate(...)`, as EventBridge runs it on AWS. The first run is one period
//! after start, like a freshly deployed rule's.

use functions::Deps;
use functions::registry::{self, ScheduleEvent, ScheduledHandler};
use serde_json::json;
use std::time::Duration;
use tokio::sync::watch;

/// The period of `rate(5 minutes)`, `rate(1 hour)`, `rate(2 days)`; `None`
/// for what is not a rate (a `cron(...)`, which the runner does not run).
pub fn rate(expression: &str) -> Option<Duration> {
    let inner = expression.trim().strip_prefix("rate(")?.strip_suffix(')')?;
    let (count, unit) = inner.trim().split_once(' ')?;
    let count: u64 = count.parse().ok().filter(|count| *count > 0)?;
    let unit = match unit.trim() {
        "minute" | "minutes" => 60,
        "hour" | "hours" => 3600,
        "day" | "days" => 86_400,
        _ => return None,
    };
    Some(Duration::from_secs(count * unit))
}

pub struct Scheduled {
    pub deps: Deps,
    pub function: String,
    pub handler: ScheduledHandler,
    pub every: Duration,
}

impl Scheduled {
    pub async fn run(self, mut shutdown: watch::Receiver<bool>) {
        let start = tokio::time::Instant::now() + self.every;
        let mut ticks = tokio::time::interval_at(start, self.every);
        ticks.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Skip);
        loop {
            tokio::select! {
                _ = ticks.tick() => self.invoke().await,
                changed = shutdown.changed() => if changed.is_err() || *shutdown.borrow() {
                    return;
                },
            }
        }
    }

    /// A failed run is logged; the next tick is its retry.
    async fn invoke(&self) {
        let event = json!({
            "version": "0",
            "id": uuid::Uuid::new_v4().to_string(),
            "detail-type": "Scheduled Event",
            "source": "aws.events",
            "account": "000000000000",
            "time": chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Secs, true),
            "region": "local",
            "resources": [format!("arn:aws:events:local:000000000000:rule/{}", self.function)],
            "detail": {},
        });
        match serde_json::from_value::<ScheduleEvent>(event) {
            Ok(event) => {
                let _ = registry::invoke_event(&self.function, self.handler, &self.deps, &event).await;
            }
            Err(error) => tracing::error!(function = self.function, %error, "cannot build the scheduled event"),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rates_read_as_eventbridge_writes_them() {
        assert_eq!(rate("rate(5 minutes)"), Some(Duration::from_secs(300)));
        assert_eq!(rate("rate(1 minute)"), Some(Duration::from_secs(60)));
        assert_eq!(rate("rate(2 hours)"), Some(Duration::from_secs(7200)));
        assert_eq!(rate("rate(1 day)"), Some(Duration::from_secs(86_400)));
        for other in ["cron(0 12 * * ? *)", "rate(0 minutes)", "rate(5 fortnights)", "5 minutes"] {
            assert_eq!(rate(other), None, "{other}");
        }
    }
}
