//! The SQS callback queue and the EventBridge sender against a real AWS API (moto_server).

use std::collections::{HashMap, HashSet};
use std::time::Duration;

use aws_sdk_eventbridge::types::Target;
use chrono::{TimeZone, Utc};
use countersign_aws::callback_queue::event_from_message;
use countersign_aws::{EventBridgeSender, SqsCallbackQueue};
use countersign_domain::{EventDetail, Journey, PublishedEvent, SignatureStatus, Status};
use countersign_provider::VerifiedEvent;
use countersign_service::callbacks::CallbackQueue;
use countersign_service::outbox::{publish_in_order, EventBatchSender};
use countersign_service::RetryPolicy;
use countersign_test_kit::faults::{FaultInjector, FaultKind, FaultPlan};
use countersign_test_kit::moto;
use serde_json::Value;

fn sqs() -> aws_sdk_sqs::Client {
    aws_sdk_sqs::Client::new(&moto::sdk_config())
}

fn events_client() -> aws_sdk_eventbridge::Client {
    aws_sdk_eventbridge::Client::new(&moto::sdk_config())
}

fn verified(event_id: &str) -> VerifiedEvent {
    countersign_provider::sandbox::SandboxEvent {
        id: event_id.to_owned(),
        event_type: "participant.signed".to_owned(),
        created_at: Utc.with_ymd_and_hms(2026, 11, 23, 10, 0, 0).unwrap(),
        data: countersign_provider::sandbox::SandboxEventData {
            agreement_id: "abc".to_owned(),
            participant_id: Some("ada".to_owned()),
            signed_document: None,
        },
    }
    .into_verified("sandbox")
}

#[tokio::test]
async fn a_queued_callback_arrives_whole() {
    let (url, _) = moto::queue("callbacks").await;
    let queue = SqsCallbackQueue::new(sqs(), &url);
    let events = [verified("evt_1"), verified("evt_2")];
    for event in &events {
        queue.enqueue(event).await.expect("enqueue");
    }
    let bodies: Vec<String> = moto::drain(&url, 2)
        .await
        .iter()
        .map(|message| message.body().unwrap_or_default().to_owned())
        .collect();
    let mut received: Vec<VerifiedEvent> = bodies
        .iter()
        .map(|body| event_from_message(body).expect("an event"))
        .collect();
    received.sort_by(|a, b| a.event_id.cmp(&b.event_id));
    assert_eq!(received, events);
}

#[tokio::test]
async fn an_unreachable_queue_is_an_error_not_a_panic() {
    let queue = SqsCallbackQueue::new(
        sqs(),
        format!("{}/123456789012/no-such-queue", moto::endpoint()),
    );
    let error = queue
        .enqueue(&verified("evt_1"))
        .await
        .expect_err("no such queue");
    assert!(error.to_string().contains("queue"), "{error}");
}

fn published(agreement: &str, sequence: u64) -> PublishedEvent {
    PublishedEvent {
        detail_type: "ParticipantSigned",
        detail: EventDetail {
            agreement_id: agreement.to_owned(),
            tenant: "tenant-1".to_owned(),
            sequence,
            history_sequence: sequence,
            version: sequence,
            status: Status::Pending,
            signature_status: Some(SignatureStatus::SignatureOngoing),
            journey: Journey::Waiting,
            lookup_key: Some("lease-42".to_owned()),
            participant_id: Some("ada".to_owned()),
            signing_group: None,
            reason: None,
            occurred_at: Utc.with_ymd_and_hms(2026, 11, 23, 10, 0, 0).unwrap(),
        },
    }
}

/// A new bus and a queue subscribed to every countersign event on it: the bus name and the
/// queue's URL.
async fn bus_with_subscriber(events_client: &aws_sdk_eventbridge::Client) -> (String, String) {
    let bus = moto::unique_name("bus");
    events_client
        .create_event_bus()
        .name(&bus)
        .send()
        .await
        .expect("create bus");
    let (url, arn) = moto::queue("subscriber").await;
    let rule = moto::unique_name("rule");
    events_client
        .put_rule()
        .name(&rule)
        .event_bus_name(&bus)
        .event_pattern(r#"{"source":["countersign"]}"#)
        .send()
        .await
        .expect("put rule");
    events_client
        .put_targets()
        .rule(&rule)
        .event_bus_name(&bus)
        .targets(
            Target::builder()
                .id("subscriber")
                .arn(&arn)
                .build()
                .expect("a target"),
        )
        .send()
        .await
        .expect("put targets");
    (bus, url)
}

/// Three agreements, 23 events, interleaved as a stream batch carries them.
fn interleaved_events() -> Vec<PublishedEvent> {
    let mut events = Vec::new();
    for sequence in 1..=10 {
        for (agreement, last) in [("agr-a", 10), ("agr-b", 8), ("agr-c", 5)] {
            if sequence <= last {
                events.push(published(agreement, sequence));
            }
        }
    }
    events
}

#[tokio::test]
async fn events_reach_a_queue_subscribed_to_the_bus_in_order_per_agreement() {
    let events_client = events_client();
    let (bus, url) = bus_with_subscriber(&events_client).await;
    let events = interleaved_events();
    let sender = EventBridgeSender::new(events_client, &bus);
    let report = publish_in_order(&sender, &events, &RetryPolicy::default()).await;
    assert_eq!(report.first_unpublished(), None, "{report:?}");
    assert_delivered_once_in_order(&url, events.len()).await;
}

/// What the subscriber queue holds: each of [`interleaved_events`] once, in order per agreement.
async fn assert_delivered_once_in_order(url: &str, expected: usize) {
    let bodies: Vec<String> = moto::drain(url, expected)
        .await
        .iter()
        .map(|message| message.body().unwrap_or_default().to_owned())
        .collect();
    assert_eq!(bodies.len(), expected, "every event delivered once");
    let mut sequences: HashMap<String, Vec<u64>> = HashMap::new();
    let mut seen = HashSet::new();
    for body in &bodies {
        let envelope: Value = serde_json::from_str(body).expect("an EventBridge event");
        assert_eq!(envelope["source"], "countersign");
        assert_eq!(envelope["detail-type"], "ParticipantSigned");
        let detail = &envelope["detail"];
        assert_eq!(detail["tenant"], "tenant-1");
        assert_eq!(detail["status"], "pending");
        assert_eq!(detail["signature_status"], "SIGNATURE_ONGOING");
        let agreement = detail["agreement_id"]
            .as_str()
            .expect("agreement_id")
            .to_owned();
        let sequence = detail["sequence"].as_u64().expect("sequence");
        assert!(
            seen.insert((agreement.clone(), sequence)),
            "delivered twice: {body}"
        );
        sequences.entry(agreement).or_default().push(sequence);
    }
    assert_eq!(sequences["agr-a"], (1..=10).collect::<Vec<_>>());
    assert_eq!(sequences["agr-b"], (1..=8).collect::<Vec<_>>());
    assert_eq!(sequences["agr-c"], (1..=5).collect::<Vec<_>>());
}

/// Half the entries of every `PutEvents` failing (really not delivered), no SDK retries: the
/// failed ones are retried, each alone ahead of its agreement's next, until all went out once.
#[tokio::test]
async fn with_half_the_entries_failing_every_event_goes_out_once_in_order() {
    let faults = FaultInjector::new(
        11,
        FaultPlan {
            put_events_entry_failure: 0.5,
            ..FaultPlan::default()
        },
    );
    let (bus, url) = bus_with_subscriber(&events_client()).await;
    let sender = EventBridgeSender::new(
        aws_sdk_eventbridge::Client::new(&faults.sdk_config(1)),
        &bus,
    );
    let events = interleaved_events();
    let retry = RetryPolicy {
        max_attempts: 30,
        base_delay: Duration::ZERO,
        max_delay: Duration::ZERO,
    };
    let report = publish_in_order(&sender, &events, &retry).await;
    assert_eq!(report.first_unpublished(), None, "{report:?}");
    assert!(faults.injected_of(FaultKind::PutEventsEntryFailed) >= 10);
    assert_delivered_once_in_order(&url, events.len()).await;
}

/// A partly failed call answers, per entry, exactly what was delivered.
#[tokio::test]
async fn a_partial_failure_names_exactly_the_entries_not_delivered() {
    let faults = FaultInjector::new(
        12,
        FaultPlan {
            put_events_entry_failure: 0.5,
            ..FaultPlan::default()
        },
    );
    let (bus, url) = bus_with_subscriber(&events_client()).await;
    let sender = EventBridgeSender::new(
        aws_sdk_eventbridge::Client::new(&faults.sdk_config(1)),
        &bus,
    );
    let events: Vec<PublishedEvent> = (0..10).map(|i| published(&format!("agr-{i}"), 1)).collect();
    let refs: Vec<&PublishedEvent> = events.iter().collect();
    let accepted = sender.send_batch(&refs).await.expect("a partial success");
    let failed = accepted.iter().filter(|accepted| !**accepted).count();
    assert_eq!(
        failed as u64,
        faults.injected_of(FaultKind::PutEventsEntryFailed)
    );
    assert!(failed > 0 && failed < 10, "{accepted:?}");
    let expected: HashSet<String> = events
        .iter()
        .zip(&accepted)
        .filter(|(_, accepted)| **accepted)
        .map(|(event, _)| event.detail.agreement_id.clone())
        .collect();
    let delivered: HashSet<String> = moto::drain(&url, expected.len())
        .await
        .iter()
        .map(|message| {
            let envelope: Value = serde_json::from_str(message.body().unwrap_or_default())
                .expect("an EventBridge event");
            envelope["detail"]["agreement_id"]
                .as_str()
                .expect("agreement_id")
                .to_owned()
        })
        .collect();
    assert_eq!(delivered, expected);
}

/// `SendMessage` failing: with no SDK retry, the queue says so (the callback route answers 503,
/// never 202) and nothing was queued; with retries, the event is queued once.
#[tokio::test]
async fn a_failed_send_message_is_an_error_and_queues_nothing() {
    let (url, _) = moto::queue("callbacks").await;
    let failing = FaultInjector::new(
        13,
        FaultPlan {
            sqs_send_failure: 1.0,
            ..FaultPlan::default()
        },
    );
    let queue = SqsCallbackQueue::new(aws_sdk_sqs::Client::new(&failing.sdk_config(1)), &url);
    queue
        .enqueue(&verified("evt_1"))
        .await
        .expect_err("SendMessage failed");
    assert_eq!(failing.injected_of(FaultKind::SqsSendFailure), 1);
    assert!(moto::drain(&url, 0).await.is_empty());

    let recovering = FaultInjector::new(
        13,
        FaultPlan {
            sqs_send_failure: 1.0,
            spare_retries: true,
            ..FaultPlan::default()
        },
    );
    let queue = SqsCallbackQueue::new(aws_sdk_sqs::Client::new(&recovering.sdk_config(3)), &url);
    queue.enqueue(&verified("evt_2")).await.expect("retried");
    assert_eq!(recovering.injected_of(FaultKind::SqsSendFailure), 1);
    let queued = moto::drain(&url, 1).await;
    assert_eq!(queued.len(), 1);
    assert_eq!(
        event_from_message(queued[0].body().unwrap_or_default()).expect("an event"),
        verified("evt_2")
    );
}

#[tokio::test]
async fn events_for_a_missing_bus_are_reported_unpublished() {
    let sender = EventBridgeSender::new(events_client(), moto::unique_name("no-such-bus"));
    let events = vec![published("agr-x", 1), published("agr-x", 2)];
    let retry = RetryPolicy {
        max_attempts: 2,
        base_delay: Duration::ZERO,
        max_delay: Duration::ZERO,
    };
    let report = publish_in_order(&sender, &events, &retry).await;
    assert_eq!(report.published, vec![false, false]);
}
