//! The callback inbox on the table (`countersign-local` on DynamoDB): a verified provider event is
//! written here before its 202, claimed by the callback worker, and removed once applied, so an
//! acknowledged event survives a crash. On AWS the SQS callback queue is the inbox instead.
//!
//! | kind | `pk` | `sk` | other attributes |
//! |---|---|---|---|
//! | `inbox` | `INBOX` | `<len(provider)>#<provider>#<event id>` | `provider`, `event_id`, `received_at`, `payload`, `receives` (N), `claimed_until`? |
//! | `inbox_dead` | `INBOX#DEAD` | the same | the same, `error` |
//!
//! One partition serves one local process: claiming reads it whole (strongly consistent) and
//! takes the oldest free events. The items carry none of the index keys, so no index holds them,
//! and their `kind` keeps them out of the outbox stream's filter.

use async_trait::async_trait;
use aws_sdk_dynamodb::types::{Delete, Put, ReturnValue, TransactWriteItem};
use chrono::{DateTime, Utc};
use countersign_store::{CallbackInbox, InboxEvent, StoreError};

use crate::error::{condition_failed, unavailable};
use crate::item::{n, s, string, time_key, Item, KIND, PK, SK};
use crate::store::DynamoStore;

const INBOX_PK: &str = "INBOX";
const DEAD_PK: &str = "INBOX#DEAD";
const RECEIVED_AT: &str = "received_at";
const PAYLOAD: &str = "payload";
const RECEIVES: &str = "receives";
const CLAIMED_UNTIL: &str = "claimed_until";
const ERROR: &str = "error";

/// The sort key: the provider's name is length-prefixed so no provider can forge another's key.
fn inbox_sk(provider: &str, event_id: &str) -> String {
    format!("{}#{provider}#{event_id}", provider.len())
}

fn inbox_item(pk: &str, kind: &str, event: &InboxEvent) -> Item {
    Item::from([
        (PK.to_owned(), s(pk)),
        (SK.to_owned(), s(inbox_sk(&event.provider, &event.event_id))),
        (KIND.to_owned(), s(kind)),
        ("provider".to_owned(), s(&event.provider)),
        ("event_id".to_owned(), s(&event.event_id)),
        (RECEIVED_AT.to_owned(), s(time_key(event.received_at))),
        (PAYLOAD.to_owned(), s(&event.payload)),
        (RECEIVES.to_owned(), n(event.receives)),
    ])
}

fn decode_inbox_event(item: &Item) -> Result<InboxEvent, StoreError> {
    let text = |name: &str| {
        string(item, name)
            .map(str::to_owned)
            .ok_or_else(|| StoreError::Corrupt(format!("an inbox item without `{name}`")))
    };
    let received_at = text(RECEIVED_AT)?;
    let receives = item
        .get(RECEIVES)
        .and_then(|value| value.as_n().ok())
        .and_then(|value| value.parse().ok())
        .ok_or_else(|| StoreError::Corrupt(format!("an inbox item without `{RECEIVES}`")))?;
    Ok(InboxEvent {
        provider: text("provider")?,
        event_id: text("event_id")?,
        received_at: DateTime::parse_from_rfc3339(&received_at)
            .map_err(|error| StoreError::Corrupt(format!("inbox `{RECEIVED_AT}`: {error}")))?
            .with_timezone(&Utc),
        payload: text(PAYLOAD)?,
        receives,
    })
}

impl DynamoStore {
    /// Every item of an inbox partition, strongly consistent, page by page.
    async fn inbox_items(&self, pk: &str) -> Result<Vec<Item>, StoreError> {
        let mut items = Vec::new();
        let mut start = None;
        loop {
            let output = self
                .client()
                .query()
                .table_name(self.table())
                .consistent_read(true)
                .key_condition_expression("#pk = :pk")
                .expression_attribute_names("#pk", PK)
                .expression_attribute_values(":pk", s(pk))
                .set_exclusive_start_key(start)
                .send()
                .await
                .map_err(|error| unavailable("Query", &error))?;
            items.extend(output.items().iter().cloned());
            match output.last_evaluated_key() {
                Some(key) if !key.is_empty() => start = Some(key.clone()),
                _ => return Ok(items),
            }
        }
    }
}

#[async_trait]
impl CallbackInbox for DynamoStore {
    async fn put_inbox(&self, event: &InboxEvent) -> Result<(), StoreError> {
        let kept = InboxEvent {
            receives: 0,
            ..event.clone()
        };
        let result = self
            .client()
            .put_item()
            .table_name(self.table())
            .set_item(Some(inbox_item(INBOX_PK, "inbox", &kept)))
            .condition_expression("attribute_not_exists(#pk)")
            .expression_attribute_names("#pk", PK)
            .send()
            .await;
        match result {
            Ok(_) => Ok(()),
            // Already kept: a redelivery, applied once with the first.
            Err(error) if condition_failed(&error) => Ok(()),
            Err(error) => Err(unavailable("PutItem", &error)),
        }
    }

    async fn claim_inbox(
        &self,
        now: DateTime<Utc>,
        until: DateTime<Utc>,
        limit: usize,
    ) -> Result<Vec<InboxEvent>, StoreError> {
        let now_key = time_key(now);
        let mut free: Vec<(Item, InboxEvent)> = Vec::new();
        for item in self.inbox_items(INBOX_PK).await? {
            let held = string(&item, CLAIMED_UNTIL).is_some_and(|end| end >= now_key.as_str());
            if !held {
                let event = decode_inbox_event(&item)?;
                free.push((item, event));
            }
        }
        free.sort_by(|(_, a), (_, b)| a.arrival().cmp(&b.arrival()));
        let mut claimed = Vec::new();
        for (item, event) in free.into_iter().take(limit) {
            let Some(sk) = item.get(SK).cloned() else {
                continue;
            };
            // The claim is conditional on nobody holding it now: another worker may have won.
            let result = self
                .client()
                .update_item()
                .table_name(self.table())
                .key(PK, s(INBOX_PK))
                .key(SK, sk)
                .update_expression("SET #claimed = :until ADD #receives :one")
                .condition_expression(
                    "attribute_exists(#pk) AND (attribute_not_exists(#claimed) OR #claimed < :now)",
                )
                .expression_attribute_names("#pk", PK)
                .expression_attribute_names("#claimed", CLAIMED_UNTIL)
                .expression_attribute_names("#receives", RECEIVES)
                .expression_attribute_values(":until", s(time_key(until)))
                .expression_attribute_values(":now", s(&now_key))
                .expression_attribute_values(":one", n(1))
                .return_values(ReturnValue::AllNew)
                .send()
                .await;
            match result {
                Ok(output) => match output.attributes() {
                    Some(attributes) => claimed.push(decode_inbox_event(attributes)?),
                    None => claimed.push(InboxEvent {
                        receives: event.receives + 1,
                        ..event
                    }),
                },
                Err(error) if condition_failed(&error) => {}
                Err(error) => return Err(unavailable("UpdateItem", &error)),
            }
        }
        Ok(claimed)
    }

    async fn remove_inbox(&self, provider: &str, event_id: &str) -> Result<(), StoreError> {
        // Unconditional on purpose: the event is applied (its provider-event mark guards a second
        // apply), so whoever holds it now, it is done.
        self.client()
            .delete_item()
            .table_name(self.table())
            .key(PK, s(INBOX_PK))
            .key(SK, s(inbox_sk(provider, event_id)))
            .send()
            .await
            .map_err(|error| unavailable("DeleteItem", &error))?;
        Ok(())
    }

    async fn dead_letter_inbox(&self, event: &InboxEvent, error: &str) -> Result<(), StoreError> {
        let mut dead = inbox_item(DEAD_PK, "inbox_dead", event);
        dead.insert(ERROR.to_owned(), s(error));
        let put = Put::builder()
            .table_name(self.table())
            .set_item(Some(dead))
            .build()
            .map_err(|error| StoreError::Unavailable(format!("malformed Put: {error}")))?;
        let delete = Delete::builder()
            .table_name(self.table())
            .key(PK, s(INBOX_PK))
            .key(SK, s(inbox_sk(&event.provider, &event.event_id)))
            .build()
            .map_err(|error| StoreError::Unavailable(format!("malformed Delete: {error}")))?;
        // Both or neither: the event is never in neither place.
        self.client()
            .transact_write_items()
            .transact_items(TransactWriteItem::builder().put(put).build())
            .transact_items(TransactWriteItem::builder().delete(delete).build())
            .send()
            .await
            .map_err(|error| unavailable("TransactWriteItems", &error))?;
        Ok(())
    }

    async fn dead_lettered_inbox(
        &self,
        limit: usize,
    ) -> Result<Vec<(InboxEvent, String)>, StoreError> {
        let mut dead = Vec::new();
        for item in self.inbox_items(DEAD_PK).await? {
            let error = string(&item, ERROR).unwrap_or_default().to_owned();
            dead.push((decode_inbox_event(&item)?, error));
        }
        dead.sort_by(|(a, _), (b, _)| a.arrival().cmp(&b.arrival()));
        dead.truncate(limit);
        Ok(dead)
    }
}
