//! countersign-local's event bus: the published events go out through the same ordered
//! publisher as on AWS (`publish_in_order`), to standard output instead of EventBridge, one JSON
//! line each as EventBridge would carry it; then the ones the provider acts on go to the
//! dispatcher, as the bus's rule hands them to the dispatcher's queue on AWS.

use std::io::Write;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use async_trait::async_trait;

use countersign_domain::PublishedEvent;
use countersign_service::dispatcher::{DispatchEvent, Dispatcher, DISPATCHED_EVENT_TYPES};
use countersign_service::outbox::{event_json, publish_in_order, EventBatchSender, SinkError};
use countersign_service::RetryPolicy;
use countersign_store::{AgreementCommit, AgreementGet, ProviderProgressStore};

/// Attempts at one dispatch (1 s, 2 s, 4 s ... up to a minute apart: about 10 minutes in all).
const DISPATCH_ATTEMPTS: u32 = 14;

type Dispatch = Box<dyn Fn(DispatchEvent) + Send + Sync>;

/// The sender of countersign-local: standard output, then the dispatcher.
pub struct StdoutBus {
    bus: String,
    out: Mutex<Box<dyn Write + Send>>,
    dispatch: Dispatch,
}

impl StdoutBus {
    /// Prints on standard output; each dispatch runs on its own task, retried with backoff while
    /// it is retryable, so a slow provider never holds up the events.
    pub fn new<S>(bus: String, dispatcher: Arc<Dispatcher<S>>) -> Self
    where
        S: AgreementGet + AgreementCommit + ProviderProgressStore + ?Sized + 'static,
    {
        StdoutBus::with_output(
            bus,
            Box::new(std::io::stdout()),
            Box::new(move |event| {
                let dispatcher = dispatcher.clone();
                tokio::spawn(async move { dispatch_with_retries(&dispatcher, event).await });
            }),
        )
    }

    fn with_output(bus: String, out: Box<dyn Write + Send>, dispatch: Dispatch) -> Self {
        StdoutBus {
            bus,
            out: Mutex::new(out),
            dispatch,
        }
    }
}

#[async_trait]
impl EventBatchSender for StdoutBus {
    /// All the call's lines in one write: a failed print is a failed call (nothing taken, the
    /// publisher tries again), never half a batch.
    async fn send_batch(&self, events: &[&PublishedEvent]) -> Result<Vec<bool>, SinkError> {
        let mut lines = String::new();
        for event in events {
            lines.push_str(&event_json(event, &self.bus).to_string());
            lines.push('\n');
        }
        {
            let mut out = self
                .out
                .lock()
                .map_err(|_| SinkError("standard output is poisoned".to_owned()))?;
            out.write_all(lines.as_bytes())
                .and_then(|()| out.flush())
                .map_err(|error| SinkError(format!("printing events failed: {error}")))?;
        }
        for event in events {
            if DISPATCHED_EVENT_TYPES
                .iter()
                .any(|kind| kind.as_str() == event.detail_type)
            {
                (self.dispatch)(DispatchEvent::from(*event));
            }
        }
        Ok(vec![true; events.len()])
    }
}

/// Publishes `events` (read off a feed that will not hand them over again), retrying what was
/// not taken every `pause` until everything is: nothing is dropped, and each agreement's events
/// still go out in order.
pub async fn publish_until_done(
    sender: &dyn EventBatchSender,
    events: Vec<PublishedEvent>,
    pause: Duration,
) {
    let retry = RetryPolicy::default();
    let mut pending = events;
    while !pending.is_empty() {
        let report = publish_in_order(sender, &pending, &retry).await;
        // An agreement's unpublished events are the tail of its own: keeping them in the order
        // given keeps its order.
        pending = pending
            .into_iter()
            .zip(report.published)
            .filter_map(|(event, published)| (!published).then_some(event))
            .collect();
        if !pending.is_empty() {
            tracing::warn!(
                left = pending.len(),
                "events not published yet; trying again"
            );
            tokio::time::sleep(pause).await;
        }
    }
}

async fn dispatch_with_retries<S>(dispatcher: &Dispatcher<S>, event: DispatchEvent)
where
    S: AgreementGet + AgreementCommit + ProviderProgressStore + ?Sized + 'static,
{
    let agreement_id = event.detail.agreement_id.clone();
    for attempt in 1..=DISPATCH_ATTEMPTS {
        match dispatcher.dispatch(&event).await {
            Ok(outcome) => {
                tracing::info!(%agreement_id, detail_type = %event.detail_type, ?outcome, "dispatched");
                return;
            }
            Err(error) if attempt < DISPATCH_ATTEMPTS => {
                let wait =
                    Duration::from_secs(1u64 << (attempt - 1).min(6)).min(Duration::from_secs(60));
                tracing::warn!(%agreement_id, detail_type = %event.detail_type, %error, attempt, "dispatch failed; retrying");
                tokio::time::sleep(wait).await;
            }
            Err(error) => {
                tracing::error!(%agreement_id, detail_type = %event.detail_type, %error, "dispatch failed for good");
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use countersign_domain::{EventDetail, Journey, Status};
    use serde_json::Value;

    fn event(agreement: &str, sequence: u64, detail_type: &'static str) -> PublishedEvent {
        PublishedEvent {
            detail_type,
            detail: EventDetail {
                agreement_id: agreement.to_owned(),
                tenant: "t".to_owned(),
                sequence,
                history_sequence: sequence,
                version: sequence,
                status: Status::Pending,
                signature_status: None,
                journey: Journey::Waiting,
                lookup_key: None,
                participant_id: None,
                signing_group: None,
                reason: None,
                occurred_at: chrono::DateTime::UNIX_EPOCH,
            },
        }
    }

    /// Output that fails its first `failures` writes, then keeps what it is given.
    #[derive(Clone)]
    struct Flaky {
        failures: Arc<Mutex<usize>>,
        kept: Arc<Mutex<Vec<u8>>>,
    }

    impl Write for Flaky {
        fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
            let mut failures = self.failures.lock().unwrap();
            if *failures > 0 {
                *failures -= 1;
                return Err(std::io::Error::new(
                    std::io::ErrorKind::BrokenPipe,
                    "stdout is gone",
                ));
            }
            self.kept.lock().unwrap().extend_from_slice(buf);
            Ok(buf.len())
        }

        fn flush(&mut self) -> std::io::Result<()> {
            Ok(())
        }
    }

    fn bus(failures: usize) -> (StdoutBus, Flaky, Arc<Mutex<Vec<String>>>) {
        let out = Flaky {
            failures: Arc::new(Mutex::new(failures)),
            kept: Arc::default(),
        };
        let dispatched = Arc::new(Mutex::new(Vec::new()));
        let seen = dispatched.clone();
        let bus = StdoutBus::with_output(
            "countersign-local".to_owned(),
            Box::new(out.clone()),
            Box::new(move |event: DispatchEvent| {
                seen.lock().unwrap().push(event.detail_type.to_string());
            }),
        );
        (bus, out, dispatched)
    }

    fn printed(out: &Flaky) -> Vec<(String, u64)> {
        String::from_utf8(out.kept.lock().unwrap().clone())
            .unwrap()
            .lines()
            .map(|line| {
                let event: Value = serde_json::from_str(line).unwrap();
                (
                    event["detail"]["agreement_id"].as_str().unwrap().to_owned(),
                    event["detail"]["sequence"].as_u64().unwrap(),
                )
            })
            .collect()
    }

    #[tokio::test]
    async fn every_event_is_one_line_as_eventbridge_carries_it_and_only_dispatched_types_dispatch()
    {
        let (bus, out, dispatched) = bus(0);
        let sent = countersign_domain::EntryType::AgreementSentForSignature.as_str();
        let events = [event("a", 1, "AgreementCreated"), event("a", 2, sent)];
        let refs: Vec<&PublishedEvent> = events.iter().collect();
        assert_eq!(bus.send_batch(&refs).await.unwrap(), vec![true, true]);
        let text = String::from_utf8(out.kept.lock().unwrap().clone()).unwrap();
        let first: Value = serde_json::from_str(text.lines().next().unwrap()).unwrap();
        assert_eq!(first["source"], "countersign");
        assert_eq!(first["detail-type"], "AgreementCreated");
        assert_eq!(first["event-bus-name"], "countersign-local");
        assert_eq!(printed(&out), vec![("a".into(), 1), ("a".into(), 2)]);
        assert_eq!(*dispatched.lock().unwrap(), vec![sent.to_owned()]);
    }

    #[tokio::test]
    async fn a_print_that_fails_for_a_while_loses_nothing_and_keeps_the_order() {
        // More failures than one publish_in_order makes attempts: the events outlive it.
        let (bus, out, _) = bus(RetryPolicy::default().max_attempts as usize + 5);
        let events: Vec<PublishedEvent> = (1..=4)
            .flat_map(|sequence| {
                [
                    event("a", sequence, "AgreementUpdated"),
                    event("b", sequence, "AgreementUpdated"),
                ]
            })
            .collect();
        publish_until_done(&bus, events, Duration::ZERO).await;
        let printed = printed(&out);
        for agreement in ["a", "b"] {
            let sequences: Vec<u64> = printed
                .iter()
                .filter(|(id, _)| id == agreement)
                .map(|(_, sequence)| *sequence)
                .collect();
            assert_eq!(sequences, vec![1, 2, 3, 4], "{agreement}: {printed:?}");
        }
    }
}
