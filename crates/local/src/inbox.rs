//! `countersign-local`'s stand-in for the SQS callback queue: a verified callback is kept in the
//! store's inbox before it is answered 202 (on DynamoDB, an item of the table), and a worker claims,
//! applies and removes what the inbox holds, so what was acknowledged survives a crash or a
//! `kill -9`: the next start picks up whatever is left.

use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use tokio::sync::Notify;

use countersign_provider::VerifiedEvent;
use countersign_service::callbacks::QueueError;
use countersign_service::{CallbackProcessor, CallbackQueue, Clock, RetryPolicy, ServiceError};
use countersign_store::{
    AgreementCommit, AgreementGet, CallbackInbox, InboxEvent, ProviderProgressStore,
};

/// How long a claim holds an event: longer than applying a batch with every retry usually takes
/// (the retries below wait at most about 8 s in all), so no other worker takes it meanwhile; and
/// short, because after a crash what the dead process held waits this long to be claimed again.
const CLAIM_HOLD: chrono::TimeDelta = chrono::TimeDelta::seconds(10);
/// Events claimed at once: few, so that one claim's hold covers them all.
const CLAIM_BATCH: usize = 8;
/// How often an idle worker looks anyway: for claims that ran out and events kept by another
/// process on the same table.
const IDLE_POLL: Duration = Duration::from_secs(1);

/// Keeps each verified callback in the store's inbox, then wakes the worker.
pub struct InboxQueue<S: ?Sized> {
    store: Arc<S>,
    clock: Arc<dyn Clock>,
    wake: Arc<Notify>,
}

impl<S: ?Sized> InboxQueue<S> {
    pub fn new(store: Arc<S>, clock: Arc<dyn Clock>, wake: Arc<Notify>) -> Self {
        InboxQueue { store, clock, wake }
    }
}

#[async_trait]
impl<S: CallbackInbox + ?Sized> CallbackQueue for InboxQueue<S> {
    async fn enqueue(&self, event: &VerifiedEvent) -> Result<(), QueueError> {
        let payload = serde_json::to_string(event)
            .map_err(|error| QueueError(format!("the event does not encode: {error}")))?;
        self.store
            .put_inbox(&InboxEvent {
                provider: event.provider.clone(),
                event_id: event.event_id.clone(),
                received_at: self.clock.now(),
                payload,
                receives: 0,
            })
            .await
            .map_err(|error| QueueError(error.to_string()))?;
        self.wake.notify_one();
        Ok(())
    }
}

/// Applies what the inbox holds, forever: each event with up to `max_receives` attempts (each
/// attempt itself retrying conflicts), then removed; one that keeps failing, or that was claimed
/// `max_receives` times without being applied (it crashed the process, say), is dead-lettered:
/// set aside with its error and logged, like SQS with a redrive policy.
pub async fn run_inbox_worker<S>(
    store: Arc<S>,
    processor: Arc<CallbackProcessor<S>>,
    clock: Arc<dyn Clock>,
    wake: Arc<Notify>,
    max_receives: u32,
) where
    S: CallbackInbox + AgreementGet + AgreementCommit + ProviderProgressStore + ?Sized + 'static,
{
    let backoff = RetryPolicy {
        max_attempts: max_receives,
        base_delay: Duration::from_millis(50),
        max_delay: Duration::from_secs(2),
    };
    loop {
        let now = clock.now();
        match store.claim_inbox(now, now + CLAIM_HOLD, CLAIM_BATCH).await {
            Ok(events) if !events.is_empty() => {
                for event in events {
                    apply(&*store, &processor, &backoff, max_receives, event).await;
                }
                continue;
            }
            Ok(_) => {}
            Err(error) => tracing::error!(%error, "reading the callback inbox failed; retrying"),
        }
        tokio::select! {
            () = wake.notified() => {}
            () = tokio::time::sleep(IDLE_POLL) => {}
        }
    }
}

async fn apply<S>(
    store: &S,
    processor: &CallbackProcessor<S>,
    backoff: &RetryPolicy,
    max_receives: u32,
    kept: InboxEvent,
) where
    S: CallbackInbox + AgreementGet + AgreementCommit + ProviderProgressStore + ?Sized + 'static,
{
    let event: VerifiedEvent = match serde_json::from_str(&kept.payload) {
        Ok(event) => event,
        Err(error) => {
            return dead_letter(store, &kept, &format!("not a provider event: {error}")).await;
        }
    };
    if kept.receives > max_receives {
        let error = format!("claimed {} times without being applied", kept.receives - 1);
        return dead_letter(store, &kept, &error).await;
    }
    let mut attempts = 0;
    loop {
        attempts += 1;
        match processor.process(&event).await {
            Ok(outcome) => {
                tracing::info!(event_id = %event.event_id, agreement = ?event.agreement, ?outcome, "provider event processed");
                if let Err(error) = store.remove_inbox(&kept.provider, &kept.event_id).await {
                    // Claimed again later, it meets its provider-event mark: applied once.
                    tracing::warn!(event_id = %kept.event_id, %error, "an applied event stays in the inbox for now");
                }
                return;
            }
            Err(ServiceError::NotYet(why)) => {
                // Early, not wrong: left in the inbox, claimed again once its hold runs out, and
                // dead-lettered after `max_receives` claims like any other failure.
                tracing::info!(event_id = %event.event_id, %why, receives = kept.receives, "provider event not applicable yet; it stays in the inbox");
                return;
            }
            Err(error) if attempts < max_receives => {
                tracing::warn!(event_id = %event.event_id, %error, attempts, "provider event failed; retrying");
                backoff.pause(attempts).await;
            }
            Err(error) => {
                return dead_letter(store, &kept, &error.to_string()).await;
            }
        }
    }
}

async fn dead_letter<S: CallbackInbox + ?Sized>(store: &S, kept: &InboxEvent, error: &str) {
    tracing::error!(provider = %kept.provider, event_id = %kept.event_id, %error, receives = kept.receives, "provider event dead-lettered");
    if let Err(store_error) = store.dead_letter_inbox(kept, error).await {
        // Left in the inbox, it is claimed again once its claim runs out: nothing is lost.
        tracing::error!(event_id = %kept.event_id, error = %store_error, "dead-lettering failed; the event stays in the inbox");
    }
}
