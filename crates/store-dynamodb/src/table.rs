//! The one definition of the table, as data: what `create_table` creates (tests, local runs) and
//! what the CloudFormation fragment `infra/table.json` says (the SAM template), so they cannot
//! drift apart. A test compares the fragment with the checked-in file.

use std::time::Duration;

use aws_sdk_dynamodb::client::Waiters;
use aws_sdk_dynamodb::types::{
    AttributeDefinition, BillingMode, GlobalSecondaryIndex, KeySchemaElement, KeyType, Projection,
    ProjectionType, ScalarAttributeType, StreamSpecification, StreamViewType,
    TimeToLiveSpecification,
};
use aws_sdk_dynamodb::Client;
use serde_json::{json, Value};

use crate::item::{
    BY_EXPIRY, BY_LOOKUP_KEY, BY_TENANT, CREATED_SK, EXPIRY_PK, EXPIRY_SK, LOOKUP_PK, PK, SK,
    TENANT_PK, TTL,
};

/// A global secondary index: string keys, every attribute projected (the agreement is read from
/// the index itself, with no second read of the table).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct IndexDefinition {
    pub name: &'static str,
    pub partition_key: &'static str,
    pub sort_key: &'static str,
}

/// The table: string keys `pk`/`sk`, on-demand capacity, three sparse indexes, a stream of new
/// images (the outbox: the publisher takes the inserted history items), a time-to-live
/// attribute that clears expired idempotency records and provider-event marks, and, deployed,
/// point-in-time recovery and deletion protection.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TableDefinition {
    pub name: String,
    pub partition_key: &'static str,
    pub sort_key: &'static str,
    pub indexes: Vec<IndexDefinition>,
    /// `NEW_IMAGE`: a history item's insert carries the whole entry.
    pub stream_view: &'static str,
    pub ttl_attribute: &'static str,
    /// Deployed tables can be restored to any second of the last 35 days.
    pub point_in_time_recovery: bool,
    /// Deployed tables refuse `DeleteTable` until protection is turned off.
    pub deletion_protection: bool,
}

/// The definition of the countersign table named `name`.
pub fn table_definition(name: impl Into<String>) -> TableDefinition {
    TableDefinition {
        name: name.into(),
        partition_key: PK,
        sort_key: SK,
        indexes: vec![
            IndexDefinition {
                name: BY_TENANT,
                partition_key: TENANT_PK,
                sort_key: CREATED_SK,
            },
            IndexDefinition {
                name: BY_LOOKUP_KEY,
                partition_key: LOOKUP_PK,
                sort_key: CREATED_SK,
            },
            IndexDefinition {
                name: BY_EXPIRY,
                partition_key: EXPIRY_PK,
                sort_key: EXPIRY_SK,
            },
        ],
        stream_view: "NEW_IMAGE",
        ttl_attribute: TTL,
        point_in_time_recovery: true,
        deletion_protection: true,
    }
}

/// Lambda event-source filter for the outbox publisher: only inserted history items.
pub const OUTBOX_STREAM_FILTER: &str =
    r#"{"eventName":["INSERT"],"dynamodb":{"NewImage":{"kind":{"S":["history"]}}}}"#;

/// Why the table could not be created.
#[derive(Debug, thiserror::Error)]
#[error("could not create table `{table}`: {message}")]
pub struct CreateTableError {
    pub table: String,
    pub message: String,
}

impl TableDefinition {
    /// Every key attribute, once, sorted by name: what `AttributeDefinitions` lists.
    pub fn key_attributes(&self) -> Vec<&'static str> {
        let mut names: Vec<&'static str> = [self.partition_key, self.sort_key]
            .into_iter()
            .chain(
                self.indexes
                    .iter()
                    .flat_map(|index| [index.partition_key, index.sort_key]),
            )
            .collect();
        names.sort_unstable();
        names.dedup();
        names
    }

    /// The `Properties` of an `AWS::DynamoDB::Table` resource, without `TableName` (CloudFormation
    /// names the table; the functions get the name from the template).
    pub fn cloudformation_properties(&self) -> Value {
        let key_schema = |partition: &str, sort: &str| {
            json!([
                {"AttributeName": partition, "KeyType": "HASH"},
                {"AttributeName": sort, "KeyType": "RANGE"},
            ])
        };
        json!({
            "BillingMode": "PAY_PER_REQUEST",
            "AttributeDefinitions": self
                .key_attributes()
                .into_iter()
                .map(|name| json!({"AttributeName": name, "AttributeType": "S"}))
                .collect::<Vec<_>>(),
            "KeySchema": key_schema(self.partition_key, self.sort_key),
            "GlobalSecondaryIndexes": self
                .indexes
                .iter()
                .map(|index| json!({
                    "IndexName": index.name,
                    "KeySchema": key_schema(index.partition_key, index.sort_key),
                    "Projection": {"ProjectionType": "ALL"},
                }))
                .collect::<Vec<_>>(),
            "StreamSpecification": {"StreamViewType": self.stream_view},
            "TimeToLiveSpecification": {"AttributeName": self.ttl_attribute, "Enabled": true},
            "PointInTimeRecoverySpecification": {
                "PointInTimeRecoveryEnabled": self.point_in_time_recovery,
            },
            "DeletionProtectionEnabled": self.deletion_protection,
        })
    }

    /// The fragment as it is checked in at `infra/table.json`: pretty JSON, one final newline.
    pub fn cloudformation_json(&self) -> String {
        let mut text = serde_json::to_string_pretty(&self.cloudformation_properties())
            .unwrap_or_else(|_| String::from("{}"));
        text.push('\n');
        text
    }

    /// Creates the table, waits until it is active, then turns its time-to-live on. Recovery and
    /// deletion protection are left to CloudFormation: the tables made here (tests, local runs,
    /// moto) are disposable, and a protected one could not be dropped.
    pub async fn create(&self, client: &Client) -> Result<(), CreateTableError> {
        let failed = |message: String| CreateTableError {
            table: self.name.clone(),
            message,
        };
        let key = |name: &str, key_type: KeyType| {
            KeySchemaElement::builder()
                .attribute_name(name)
                .key_type(key_type)
                .build()
                .map_err(|error| failed(error.to_string()))
        };
        let mut request = client
            .create_table()
            .table_name(&self.name)
            .billing_mode(BillingMode::PayPerRequest)
            .key_schema(key(self.partition_key, KeyType::Hash)?)
            .key_schema(key(self.sort_key, KeyType::Range)?)
            .stream_specification(
                StreamSpecification::builder()
                    .stream_enabled(true)
                    .stream_view_type(StreamViewType::from(self.stream_view))
                    .build()
                    .map_err(|error| failed(error.to_string()))?,
            );
        for name in self.key_attributes() {
            request = request.attribute_definitions(
                AttributeDefinition::builder()
                    .attribute_name(name)
                    .attribute_type(ScalarAttributeType::S)
                    .build()
                    .map_err(|error| failed(error.to_string()))?,
            );
        }
        for index in &self.indexes {
            request = request.global_secondary_indexes(
                GlobalSecondaryIndex::builder()
                    .index_name(index.name)
                    .key_schema(key(index.partition_key, KeyType::Hash)?)
                    .key_schema(key(index.sort_key, KeyType::Range)?)
                    .projection(
                        Projection::builder()
                            .projection_type(ProjectionType::All)
                            .build(),
                    )
                    .build()
                    .map_err(|error| failed(error.to_string()))?,
            );
        }
        request
            .send()
            .await
            .map_err(|error| failed(crate::error::describe(&error)))?;
        client
            .wait_until_table_exists()
            .table_name(&self.name)
            .wait(Duration::from_secs(300))
            .await
            .map_err(|error| failed(format!("not active: {error}")))?;
        client
            .update_time_to_live()
            .table_name(&self.name)
            .time_to_live_specification(
                TimeToLiveSpecification::builder()
                    .attribute_name(self.ttl_attribute)
                    .enabled(true)
                    .build()
                    .map_err(|error| failed(error.to_string()))?,
            )
            .send()
            .await
            .map_err(|error| failed(crate::error::describe(&error)))?;
        Ok(())
    }
}

/// Creates the countersign table named `name` (see [`TableDefinition::create`]).
pub async fn create_table(client: &Client, name: &str) -> Result<(), CreateTableError> {
    table_definition(name).create(client).await
}
