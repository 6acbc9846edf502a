//! Every adapter built from the environment `template.yaml` gives each
//! function. The SDK's own configuration chain applies too, so
//! `AWS_ENDPOINT_URL` points them all at local emulators.

use crate::dynamodb::{DynamoEventStore, DynamoViewStore};
use crate::eventbridge::EventBridgeBus;
use crate::sns::SnsNotifier;
use aws_config::BehaviorVersion;
use thiserror::Error;

pub struct Adapters {
    pub events: DynamoEventStore,
    pub views: DynamoViewStore,
    pub bus: EventBridgeBus,
    pub notifier: SnsNotifier,
}

#[derive(Debug, Error)]
#[error("{0} is not set: template.yaml sets it on every function")]
pub struct MissingVariable(&'static str);

/// Clients are cheap to build and make no call until used, so every function
/// builds all four and pays nothing for the ones it does not touch.
pub async fn from_env() -> Result<Adapters, MissingVariable> {
    let var = |name: &'static str| std::env::var(name).map_err(|_| MissingVariable(name));
    let (event_table, view_table, bus_name, topic_arn) =
        (var("EVENT_TABLE")?, var("VIEW_TABLE")?, var("EVENT_BUS")?, var("NOTIFICATION_TOPIC")?);
    let config = aws_config::load_defaults(BehaviorVersion::latest()).await;
    let dynamodb = aws_sdk_dynamodb::Client::new(&config);
    Ok(Adapters {
        events: DynamoEventStore::new(dynamodb.clone(), event_table),
        views: DynamoViewStore::new(dynamodb.clone(), view_table.clone()),
        bus: EventBridgeBus::new(aws_sdk_eventbridge::Client::new(&config), bus_name),
        notifier: SnsNotifier { sns: aws_sdk_sns::Client::new(&config), topic_arn, dedupe: dynamodb, table: view_table },
    })
}
