//! Requests carrying an `Idempotency-Key` (SPEC section 3), with one owner: the response kept
//! for the key is looked up first, the record is committed with the change the request makes,
//! and a request that raced another with the same key answers as if it had come second.

use chrono::{DateTime, Duration, Utc};
use countersign_domain::Agreement;
use countersign_store::{IdempotencyRecord, IdempotencyStore};

use crate::error::ServiceError;

/// How long an idempotency key holds its response (SPEC section 3).
pub const IDEMPOTENCY_TTL_HOURS: i64 = 24;

/// The response a request produced, as it is kept for replays.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RenderedResponse {
    pub status: u16,
    pub headers: Vec<(String, String)>,
    pub body: String,
}

/// A request carrying an `Idempotency-Key`: its record is committed with the change it makes.
pub struct IdempotencyIntent<'a> {
    pub key: &'a str,
    pub request_hash: &'a str,
    /// Renders the response from the agreement as committed.
    pub render: &'a (dyn Fn(&Agreement) -> RenderedResponse + Send + Sync),
}

impl IdempotencyIntent<'_> {
    pub(crate) fn record(
        &self,
        tenant: &str,
        agreement: &Agreement,
        now: DateTime<Utc>,
    ) -> IdempotencyRecord {
        let mut response = (self.render)(agreement);
        // Kept for a day: without the room the renderer left for a larger answer.
        response.body.shrink_to_fit();
        IdempotencyRecord {
            tenant: tenant.to_owned(),
            key: self.key.to_owned(),
            request_hash: self.request_hash.to_owned(),
            status: response.status,
            headers: response.headers,
            body: response.body,
            created_at: now,
            expires_at: now + Duration::hours(IDEMPOTENCY_TTL_HOURS),
        }
    }
}

/// What a request got.
#[derive(Debug, Clone, PartialEq, Eq)]
// Passed once and taken apart at once: boxing would only add an allocation.
#[allow(clippy::large_enum_variant)]
pub enum Answer {
    /// The agreement as the request left it (changed, or found as asked).
    Agreement(Agreement),
    /// The same request came before with this key: its response, as it was kept.
    Replayed(RenderedResponse),
}

impl Answer {
    /// The agreement, for callers that sent no key (nothing is replayed for them).
    pub fn agreement(self) -> Option<Agreement> {
        match self {
            Answer::Agreement(agreement) => Some(agreement),
            Answer::Replayed(_) => None,
        }
    }
}

/// Runs `run` as the request with `intent` asks: the kept response when the same request came
/// before, `IdempotencyKeyTaken` when another request holds the key, otherwise what `run` does
/// (it commits the record with its change); if another request with the key committed first,
/// its response.
pub(crate) async fn answer<S, F>(
    store: &S,
    tenant: &str,
    intent: Option<&IdempotencyIntent<'_>>,
    now: DateTime<Utc>,
    run: F,
) -> Result<Answer, ServiceError>
where
    S: IdempotencyStore + ?Sized,
    F: std::future::Future<Output = Result<Agreement, ServiceError>>,
{
    let Some(intent) = intent else {
        return run.await.map(Answer::Agreement);
    };
    if let Some(kept) = kept_response(store, tenant, intent, now).await? {
        return Ok(Answer::Replayed(kept));
    }
    match run.await {
        Ok(agreement) => Ok(Answer::Agreement(agreement)),
        Err(ServiceError::IdempotencyKeyTaken) => {
            match kept_response(store, tenant, intent, now).await? {
                Some(kept) => Ok(Answer::Replayed(kept)),
                // The winner's record is gone already (expired in between): nothing to replay.
                None => Err(ServiceError::IdempotencyRace),
            }
        }
        Err(other) => Err(other),
    }
}

async fn kept_response<S: IdempotencyStore + ?Sized>(
    store: &S,
    tenant: &str,
    intent: &IdempotencyIntent<'_>,
    now: DateTime<Utc>,
) -> Result<Option<RenderedResponse>, ServiceError> {
    match store.get_idempotency(tenant, intent.key, now).await? {
        None => Ok(None),
        Some(record) if record.request_hash == intent.request_hash => Ok(Some(RenderedResponse {
            status: record.status,
            headers: record.headers,
            body: record.body,
        })),
        Some(_) => Err(ServiceError::IdempotencyKeyTaken),
    }
}
