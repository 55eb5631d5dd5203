//! The Zigned adapter against Zigned's published OpenAPI document, served by Prism: every
//! request the adapter makes must pass Prism's validation. A request Prism refuses is a 4xx
//! the adapter reports as a permanent error, and any request violation in an `sl-violations`
//! answer header (Prism's list of what a request broke, warnings included) fails the test too.

mod common;

use std::sync::{Arc, Mutex};

use countersign_domain::CancellationReason;
use countersign_provider::zigned::{
    ResponseObserver, SendProgress, SendStep, ZignedClient, ZignedConfig,
};
use countersign_test_kit::prism;
use secrecy::SecretString;

/// Every answer's method, path and status, and any violations Prism listed.
#[derive(Default)]
struct Seen {
    calls: Vec<String>,
    violations: Vec<String>,
}

fn client(api_url: String) -> (ZignedClient, Arc<Mutex<Seen>>) {
    let seen = Arc::new(Mutex::new(Seen::default()));
    let sink = seen.clone();
    let observer: ResponseObserver = Arc::new(move |method, path, status, headers| {
        let mut seen = sink.lock().unwrap();
        seen.calls
            .push(format!("{method} {path} {}", status.as_u16()));
        let values = headers
            .get_all(prism::VIOLATIONS_HEADER)
            .iter()
            .map(|value| value.to_str().unwrap_or("(not text)"));
        for violation in prism::request_violations(values) {
            seen.violations
                .push(format!("{method} {path}: {violation}"));
        }
    });
    let config = ZignedConfig::new("client-id", SecretString::from("client-secret"))
        .with_urls(api_url, prism::zigned_token_url());
    let client = ZignedClient::new(config)
        .unwrap()
        .with_response_observer(observer);
    (client, seen)
}

fn assert_all_valid(seen: &Mutex<Seen>) {
    let seen = seen.lock().unwrap();
    assert!(
        seen.violations.is_empty(),
        "Prism found requests that break Zigned's document:\n{}",
        seen.violations.join("\n")
    );
    // A 4xx is Prism refusing the request. A 5xx is Prism failing to generate a dynamic answer
    // (it happens now and then with this document's large schemas): the client retries it like
    // any 5xx, and it says nothing about the request.
    let refused: Vec<_> = seen
        .calls
        .iter()
        .filter(|call| {
            call.rsplit_once(' ')
                .is_some_and(|(_, status)| status.starts_with('4'))
        })
        .collect();
    assert!(refused.is_empty(), "requests Prism refused: {refused:?}");
}

/// Runs the send to its end, checking that each step made progress and that the sequence is
/// finite; returns the final progress and the number of steps.
async fn send_all(
    client: &ZignedClient,
    agreement: &countersign_domain::Agreement,
    mut progress: SendProgress,
) -> (SendProgress, usize) {
    let documents = common::documents();
    for steps in 1..100 {
        match client
            .advance_send(agreement, &documents, &progress)
            .await
            .unwrap_or_else(|error| panic!("step {steps} failed: {error}"))
        {
            SendStep::Progressed(next) => {
                assert_ne!(next, progress, "step {steps} made no progress");
                progress = next;
            }
            SendStep::Done(done) => return (done, steps),
        }
    }
    panic!("the send did not end in 100 steps");
}

/// As the adapter puts an id in a path (generated ids may hold spaces).
fn escaped(id: &str) -> String {
    id.bytes()
        .map(|byte| match byte {
            b'a'..=b'z' | b'A'..=b'Z' | b'0'..=b'9' | b'-' | b'_' => (byte as char).to_string(),
            other => format!("%{other:02X}"),
        })
        .collect()
}

#[tokio::test]
async fn the_whole_send_sequence_passes_zigneds_validation() {
    let (client, seen) = client(prism::zigned_api_dynamic());
    let agreement = common::agreement();

    let (progress, steps) = send_all(&client, &agreement, SendProgress::default()).await;

    // 2 uploads, create, main, 1 attachment, 3 participants, 2 observers, 2 groups, pending.
    assert_eq!(steps, 13);
    assert!(progress.sent);
    assert!(progress.agreement_reference.is_some());
    assert_eq!(progress.files.keys().collect::<Vec<_>>(), ["annex", "main"]);
    assert_eq!(progress.main_document.as_deref(), Some("main"));
    assert_eq!(progress.attachments.len(), 1);
    assert_eq!(
        progress.participants.keys().collect::<Vec<_>>(),
        ["ada", "bank", "bob"]
    );
    assert_eq!(progress.observers.len(), 2);
    assert_eq!(progress.signing_groups.keys().collect::<Vec<_>>(), [&1, &2]);
    assert_all_valid(&seen);
    let calls = seen.lock().unwrap().calls.clone();
    let order: Vec<_> = calls
        .iter()
        .filter_map(|call| call.rsplit_once(' '))
        .filter(|(_, status)| !status.starts_with('5')) // retried
        .map(|(call, _)| call.to_owned())
        .filter(|call| call != "POST /token")
        .collect();
    let reference = progress.agreement_reference.clone().unwrap();
    let base = format!("/agreements/{}", escaped(&reference));
    assert_eq!(
        order[..3],
        ["POST /files", "POST /files", "POST /agreements"]
    );
    assert_eq!(
        order[3..],
        [
            format!("POST {base}/documents/main"),
            format!("POST {base}/documents/attachments"),
            format!("POST {base}/participants"),
            format!("POST {base}/participants"),
            format!("POST {base}/participants"),
            format!("POST {base}/observers"),
            format!("POST {base}/observers"),
            format!("POST {base}/signing_groups"),
            format!("POST {base}/signing_groups"),
            format!("POST {base}/lifecycle"),
        ]
    );

    // Sent is sent: asking again calls nothing.
    let before = seen.lock().unwrap().calls.len();
    let again = client
        .advance_send(&agreement, &common::documents(), &progress)
        .await
        .unwrap();
    assert_eq!(again, SendStep::Done(progress));
    assert_eq!(seen.lock().unwrap().calls.len(), before);
}

#[tokio::test]
async fn reopen_brings_the_agreement_in_line_and_sends_it_again() {
    let (client, seen) = client(prism::zigned_api_dynamic());
    let agreement = common::agreement();
    let (sent, _) = send_all(&client, &agreement, SendProgress::default()).await;

    let reopened = client.reopen(&sent).await.unwrap();
    assert!(!reopened.sent && reopened.reopened);
    assert_eq!(reopened.stale.participants.len(), 3);

    // The edit: Bob leaves, Cy joins the bank's group, no more attachment, one observer, no
    // lookup key, a new main document.
    let mut edited = agreement.clone();
    edited
        .participants
        .retain(|participant| participant.id != "bob");
    let mut cy = edited.participants[1].clone();
    cy.id = "cy".to_owned();
    cy.email = Some("cy@example.com".to_owned());
    edited.participants.push(cy);
    edited.documents.attachments.clear();
    edited.observers.truncate(1);
    edited.metadata.lookup_key = None;
    let main = edited.documents.main.as_mut().unwrap();
    main.sha256 = "00".repeat(32);
    let mut documents = common::documents();
    documents.insert("main".to_owned(), b"%PDF-1.7 the lease, edited".to_vec());

    let mut progress = reopened;
    let mut steps = 0;
    loop {
        steps += 1;
        assert!(steps < 100, "the send did not end");
        match client
            .advance_send(&edited, &documents, &progress)
            .await
            .unwrap()
        {
            SendStep::Progressed(next) => progress = next,
            SendStep::Done(done) => {
                progress = done;
                break;
            }
        }
    }
    assert!(progress.sent && !progress.reopened);
    assert!(progress.stale.is_empty());
    assert_eq!(progress.agreement_reference, sent.agreement_reference);
    assert_eq!(
        progress.participants.keys().collect::<Vec<_>>(),
        ["ada", "bank", "cy"]
    );
    assert!(progress.attachments.is_empty());
    assert_eq!(progress.observers.len(), 1);
    assert_ne!(
        progress.files["main"], sent.files["main"],
        "the new main document is uploaded"
    );
    assert_eq!(progress.files["annex"], sent.files["annex"]);
    assert_all_valid(&seen);

    let calls = seen.lock().unwrap().calls.clone();
    for expected in [
        "PUT /agreements/",
        "DELETE /agreements/",
        "/documents/main 200",
    ] {
        assert!(
            calls.iter().any(|call| call.contains(expected)),
            "no {expected} in {calls:?}"
        );
    }
    // Deletes answered 200: Prism, on a loaded machine, now and then answers a 500 that the
    // adapter retries (seen once in a full run), which is one more attempt, not one more delete.
    let deletes = calls
        .iter()
        .filter(|call| call.starts_with("DELETE ") && call.ends_with(" 200"))
        .count();
    // 2 groups, 3 participants, 2 observers, 1 attachment, the main document.
    assert_eq!(deletes, 9, "{calls:?}");
}

#[tokio::test]
async fn cancel_sends_every_reason_as_zigned_wants_it() {
    let (client, seen) = client(prism::zigned_api());
    for reason in [
        CancellationReason::InvalidDocument,
        CancellationReason::InvalidParticipant,
        CancellationReason::InvalidEmail,
        CancellationReason::Custom("the customer chose another offer".to_owned()),
    ] {
        client
            .cancel("c8itw4ybiyldtndi9qnexample", &reason)
            .await
            .unwrap_or_else(|error| panic!("{reason:?}: {error}"));
    }
    assert_all_valid(&seen);
}

#[tokio::test]
async fn a_body_zigned_refuses_is_a_permanent_error_in_zigneds_words() {
    let (client, _seen) = client(prism::zigned_api());
    // Shorter than Zigned's 10 characters: countersign never sends this (it checks the bounds);
    // here it shows what a refusal looks like.
    let error = client
        .cancel(
            "c8itw4ybiyldtndi9qnexample",
            &CancellationReason::Custom("too short".to_owned()),
        )
        .await
        .unwrap_err();
    assert!(!error.is_transient(), "{error}");
    match &error {
        countersign_provider::zigned::ZignedError::Rejected { status, .. } => {
            assert_eq!(*status, 400)
        }
        other => panic!("expected a rejection, got {other:?}"),
    }
    assert!(!error.to_string().contains("client-secret"));
}

#[tokio::test]
async fn the_signed_document_url_is_read_from_the_agreement_or_its_file() {
    let (client, seen) = client(prism::zigned_api());
    let url = client
        .signed_document_url("c8itw4ybiyldtndi9qnexample")
        .await
        .unwrap();
    // The document's example gives the signed document's file id; its file's example URL.
    assert_eq!(url.as_deref(), Some("https://zigned.se"));
    assert_all_valid(&seen);
    let calls = seen.lock().unwrap().calls.clone();
    assert!(
        calls.iter().any(|call| call.starts_with("GET /files/")),
        "{calls:?}"
    );
}
