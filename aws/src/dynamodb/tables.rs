//! Creating the two tables with the key schema of `template.yaml`, for tests
//! and local tooling (the deployed tables come from the template).

use super::error::describe;
use super::view_store::BY_PARTITION;
use aws_sdk_dynamodb::Client;
use aws_sdk_dynamodb::client::Waiters;
use aws_sdk_dynamodb::operation::create_table::builders::CreateTableFluentBuilder;
use aws_sdk_dynamodb::types::{
    AttributeDefinition, BillingMode, GlobalSecondaryIndex, KeySchemaElement, KeyType, Projection, ProjectionType, ScalarAttributeType,
    StreamSpecification, StreamViewType,
};
use std::time::Duration;
use thiserror::Error;

/// How long a new table may take to become active.
const ACTIVE_WITHIN: Duration = Duration::from_secs(120);

#[derive(Debug, Error)]
#[error("could not create table {table}: {reason}")]
pub struct CreateTableError {
    pub table: String,
    pub reason: String,
}

/// The `EventTable`: `pk` S + `sk` N, streaming new images.
pub async fn create_event_table(client: &Client, table: &str) -> Result<(), CreateTableError> {
    let failed = |reason: String| CreateTableError { table: table.to_owned(), reason };
    let stream = StreamSpecification::builder()
        .stream_enabled(true)
        .stream_view_type(StreamViewType::NewImage)
        .build()
        .map_err(|error| failed(error.to_string()))?;
    let request = client
        .create_table()
        .table_name(table)
        .billing_mode(BillingMode::PayPerRequest)
        .attribute_definitions(attribute("pk", ScalarAttributeType::S).map_err(failed)?)
        .attribute_definitions(attribute("sk", ScalarAttributeType::N).map_err(failed)?)
        .key_schema(key("pk", KeyType::Hash).map_err(failed)?)
        .key_schema(key("sk", KeyType::Range).map_err(failed)?)
        .stream_specification(stream);
    create(client, table, request).await
}

/// The `ViewTable`: `pk` S, with the GSI `by-partition` on `gsi1pk` S / `gsi1sk` S.
pub async fn create_view_table(client: &Client, table: &str) -> Result<(), CreateTableError> {
    let failed = |reason: String| CreateTableError { table: table.to_owned(), reason };
    let index = GlobalSecondaryIndex::builder()
        .index_name(BY_PARTITION)
        .key_schema(key("gsi1pk", KeyType::Hash).map_err(failed)?)
        .key_schema(key("gsi1sk", KeyType::Range).map_err(failed)?)
        .projection(Projection::builder().projection_type(ProjectionType::All).build())
        .build()
        .map_err(|error| failed(error.to_string()))?;
    let request = client
        .create_table()
        .table_name(table)
        .billing_mode(BillingMode::PayPerRequest)
        .attribute_definitions(attribute("pk", ScalarAttributeType::S).map_err(failed)?)
        .attribute_definitions(attribute("gsi1pk", ScalarAttributeType::S).map_err(failed)?)
        .attribute_definitions(attribute("gsi1sk", ScalarAttributeType::S).map_err(failed)?)
        .key_schema(key("pk", KeyType::Hash).map_err(failed)?)
        .global_secondary_indexes(index);
    create(client, table, request).await
}

async fn create(client: &Client, table: &str, request: CreateTableFluentBuilder) -> Result<(), CreateTableError> {
    let failed = |reason: String| {
        tracing::error!(table, reason, "could not create table");
        CreateTableError { table: table.to_owned(), reason }
    };
    request.send().await.map_err(|error| failed(describe(&error)))?;
    client
        .wait_until_table_exists()
        .table_name(table)
        .wait(ACTIVE_WITHIN)
        .await
        .map_err(|error| failed(format!("not active within {ACTIVE_WITHIN:?}: {error}")))?;
    Ok(())
}

fn attribute(name: &str, kind: ScalarAttributeType) -> Result<AttributeDefinition, String> {
    AttributeDefinition::builder().attribute_name(name).attribute_type(kind).build().map_err(|error| error.to_string())
}

fn key(name: &str, kind: KeyType) -> Result<KeySchemaElement, String> {
    KeySchemaElement::builder().attribute_name(name).key_type(kind).build().map_err(|error| error.to_string())
}
