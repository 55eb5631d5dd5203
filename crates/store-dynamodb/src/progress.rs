//! Provider progress on the table (SPEC section 9): how far an adapter got with an agreement,
//! and the key from the provider's own reference to the agreement, written together.
//!
//! | kind | `pk` | `sk` | other attributes |
//! |---|---|---|---|
//! | `provider_progress` | `AGREEMENT#<id>` | `PROGRESS` | `provider`, `state`, `reference`?, `revision` (N), `updated_at` |
//! | `provider_reference` | `PROVREF#<len(provider)>#<provider>#<reference>` | `R` | `agreement_id` |
//! | `dispatch_lease` | `AGREEMENT#<id>` | `LEASE` | `holder`, `until` (time key) |
//!
//! Neither carries index keys, and their kinds keep them out of the outbox stream's filter.

use async_trait::async_trait;
use aws_sdk_dynamodb::error::SdkError;
use aws_sdk_dynamodb::operation::transact_write_items::TransactWriteItemsError;
use aws_sdk_dynamodb::types::{AttributeValue, Put, TransactWriteItem};
use chrono::{DateTime, Utc};
use countersign_store::{CommitError, ProviderProgress, ProviderProgressStore, StoreError};

use crate::error::{condition_failed, unavailable};
use crate::item::{agreement_pk, n, s, string, time_key, Item, KIND, PK, SK};
use crate::store::{new_commit_token, DynamoStore, COMMIT_TOKEN};

const PROGRESS_SK: &str = "PROGRESS";
const LEASE_SK: &str = "LEASE";
const HOLDER: &str = "holder";
const UNTIL: &str = "until";
const REFERENCE_SK: &str = "R";
const REVISION: &str = "revision";

/// The provider's name is length-prefixed so that no provider can forge another's key.
fn reference_pk(provider: &str, reference: &str) -> String {
    format!("PROVREF#{}#{provider}#{reference}", provider.len())
}

fn progress_item(progress: &ProviderProgress, token: &str) -> Item {
    let mut item = Item::from([
        (PK.to_owned(), s(agreement_pk(&progress.agreement_id))),
        (SK.to_owned(), s(PROGRESS_SK)),
        (KIND.to_owned(), s("provider_progress")),
        ("provider".to_owned(), s(&progress.provider)),
        ("state".to_owned(), s(&progress.state)),
        (REVISION.to_owned(), n(progress.revision)),
        ("updated_at".to_owned(), s(time_key(progress.updated_at))),
        (COMMIT_TOKEN.to_owned(), s(token)),
    ]);
    if let Some(reference) = &progress.reference {
        item.insert("reference".to_owned(), s(reference));
    }
    item
}

fn decode_progress(agreement_id: &str, item: &Item) -> Result<ProviderProgress, StoreError> {
    let text = |name: &str| {
        string(item, name).map(str::to_owned).ok_or_else(|| {
            StoreError::Corrupt(format!("a provider progress item without `{name}`"))
        })
    };
    let revision = item
        .get(REVISION)
        .and_then(|value| value.as_n().ok())
        .and_then(|value| value.parse().ok())
        .ok_or_else(|| {
            StoreError::Corrupt(format!("a provider progress item without `{REVISION}`"))
        })?;
    let updated_at = text("updated_at")?;
    Ok(ProviderProgress {
        agreement_id: agreement_id.to_owned(),
        provider: text("provider")?,
        state: text("state")?,
        reference: string(item, "reference").map(str::to_owned),
        revision,
        updated_at: DateTime::parse_from_rfc3339(&updated_at)
            .map_err(|error| {
                StoreError::Corrupt(format!("provider progress `updated_at`: {error}"))
            })?
            .with_timezone(&Utc),
    })
}

fn malformed(error: impl std::fmt::Display) -> CommitError {
    CommitError::Store(StoreError::Unavailable(format!("malformed Put: {error}")))
}

#[async_trait]
impl ProviderProgressStore for DynamoStore {
    async fn get_provider_progress(
        &self,
        agreement_id: &str,
    ) -> Result<Option<ProviderProgress>, StoreError> {
        let output = self
            .client()
            .get_item()
            .table_name(self.table())
            .key(PK, s(agreement_pk(agreement_id)))
            .key(SK, s(PROGRESS_SK))
            .consistent_read(true)
            .send()
            .await
            .map_err(|error| unavailable("GetItem", &error))?;
        output
            .item()
            .map(|item| decode_progress(agreement_id, item))
            .transpose()
    }

    /// One `TransactWriteItems` (progress guarded by its revision, reference key guarded by its
    /// holder) with a client request token, so that the SDK's own retry of a write that committed
    /// is not mistaken for a lost race.
    async fn put_provider_progress(&self, progress: &ProviderProgress) -> Result<(), CommitError> {
        if progress.revision == 0 {
            return Err(CommitError::Conflict);
        }
        let token = new_commit_token();
        let mut put = Put::builder()
            .table_name(self.table())
            .set_item(Some(progress_item(progress, &token)));
        put = if progress.revision == 1 {
            put.condition_expression("attribute_not_exists(#pk)")
                .expression_attribute_names("#pk", PK)
        } else {
            put.condition_expression("#revision = :previous")
                .expression_attribute_names("#revision", REVISION)
                .expression_attribute_values(":previous", n(progress.revision - 1))
        };
        let mut items = vec![TransactWriteItem::builder()
            .put(put.build().map_err(malformed)?)
            .build()];
        if let Some(reference) = &progress.reference {
            let key = Put::builder()
                .table_name(self.table())
                .set_item(Some(Item::from([
                    (
                        PK.to_owned(),
                        s(reference_pk(&progress.provider, reference)),
                    ),
                    (SK.to_owned(), s(REFERENCE_SK)),
                    (KIND.to_owned(), s("provider_reference")),
                    ("agreement_id".to_owned(), s(&progress.agreement_id)),
                ])))
                .condition_expression("attribute_not_exists(#pk) OR #agreement = :agreement")
                .expression_attribute_names("#pk", PK)
                .expression_attribute_names("#agreement", "agreement_id")
                .expression_attribute_values(
                    ":agreement",
                    AttributeValue::S(progress.agreement_id.clone()),
                )
                .build()
                .map_err(malformed)?;
            items.push(TransactWriteItem::builder().put(key).build());
        }
        let refused = match self
            .client()
            .transact_write_items()
            .set_transact_items(Some(items))
            .client_request_token(&token)
            .send()
            .await
        {
            Ok(_) => return Ok(()),
            Err(SdkError::ServiceError(service))
                if matches!(
                    service.err(),
                    TransactWriteItemsError::TransactionCanceledException(_)
                ) =>
            {
                CommitError::Conflict
            }
            Err(error) => CommitError::Store(unavailable("TransactWriteItems", &error)),
        };
        // A write whose answer was lost may have committed, and a retry of it then meets its own
        // condition: read back whether the stored revision is this very write.
        match self
            .commit_token_at(&agreement_pk(&progress.agreement_id), PROGRESS_SK)
            .await
        {
            Ok(Some(written)) if written == token => Ok(()),
            _ => Err(refused),
        }
    }

    /// One conditional `PutItem`. Time keys are fixed-width UTC, so they compare as strings.
    async fn take_dispatch_lease(
        &self,
        agreement_id: &str,
        holder: &str,
        now: DateTime<Utc>,
        until: DateTime<Utc>,
    ) -> Result<bool, StoreError> {
        let result = self
            .client()
            .put_item()
            .table_name(self.table())
            .set_item(Some(Item::from([
                (PK.to_owned(), s(agreement_pk(agreement_id))),
                (SK.to_owned(), s(LEASE_SK)),
                (KIND.to_owned(), s("dispatch_lease")),
                (HOLDER.to_owned(), s(holder)),
                (UNTIL.to_owned(), s(time_key(until))),
            ])))
            .condition_expression("attribute_not_exists(#pk) OR #until < :now OR #holder = :holder")
            .expression_attribute_names("#pk", PK)
            .expression_attribute_names("#until", UNTIL)
            .expression_attribute_names("#holder", HOLDER)
            .expression_attribute_values(":now", s(time_key(now)))
            .expression_attribute_values(":holder", s(holder))
            .send()
            .await;
        match result {
            Ok(_) => Ok(true),
            Err(error) if condition_failed(&error) => Ok(false),
            Err(error) => Err(unavailable("PutItem", &error)),
        }
    }

    async fn release_dispatch_lease(
        &self,
        agreement_id: &str,
        holder: &str,
    ) -> Result<(), StoreError> {
        let result = self
            .client()
            .delete_item()
            .table_name(self.table())
            .key(PK, s(agreement_pk(agreement_id)))
            .key(SK, s(LEASE_SK))
            .condition_expression("#holder = :holder")
            .expression_attribute_names("#holder", HOLDER)
            .expression_attribute_values(":holder", s(holder))
            .send()
            .await;
        match result {
            Ok(_) => Ok(()),
            // Released already (a retried delete), run out and taken by another: not ours.
            Err(error) if condition_failed(&error) => Ok(()),
            Err(error) => Err(unavailable("DeleteItem", &error)),
        }
    }

    async fn find_by_provider_reference(
        &self,
        provider: &str,
        reference: &str,
    ) -> Result<Option<String>, StoreError> {
        let output = self
            .client()
            .get_item()
            .table_name(self.table())
            .key(PK, s(reference_pk(provider, reference)))
            .key(SK, s(REFERENCE_SK))
            .consistent_read(true)
            .send()
            .await
            .map_err(|error| unavailable("GetItem", &error))?;
        Ok(output
            .item()
            .and_then(|item| string(item, "agreement_id"))
            .map(str::to_owned))
    }
}
