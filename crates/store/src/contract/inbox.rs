//! The callback inbox: each provider event kept once until it is applied or dead-lettered.

use super::*;

/// The callback inbox: a redelivered event is kept once with its first payload; a claim holds an
/// event until it runs out, then it can be claimed again (receives counted); removed and
/// dead-lettered events are claimed no more, and dead letters keep their event and error.
pub async fn inbox_keeps_each_event_once_until_applied<S: CallbackInbox + ?Sized>(store: &S) {
    let at = |seconds| time(2031, seconds);
    let provider = unique("inbox-provider");
    let event = |event_id: &str, seconds: i64, payload: &str| InboxEvent {
        provider: provider.clone(),
        event_id: event_id.to_owned(),
        received_at: at(seconds),
        payload: payload.to_owned(),
        receives: 0,
    };
    let first = event("evt-1", 10, r#"{"n":1}"#);
    let second = event("evt-2", 20, r#"{"n":2}"#);
    store.put_inbox(&second).await.expect("put");
    store.put_inbox(&first).await.expect("put");
    store
        .put_inbox(&event("evt-1", 30, r#"{"n":"redelivered"}"#))
        .await
        .expect("a redelivery is no error");

    // Other runs may share the store: look only at this case's provider.
    let ours = |claimed: Vec<InboxEvent>| -> Vec<(String, String, u32)> {
        claimed
            .into_iter()
            .filter(|event| event.provider == provider)
            .map(|event| (event.event_id, event.payload, event.receives))
            .collect()
    };
    let claim = |now: i64, hold: i64| store.claim_inbox(at(now), at(now + hold), 1000);

    let claimed = ours(claim(100, 30).await.expect("claim"));
    assert_eq!(
        claimed,
        [
            ("evt-1".to_owned(), r#"{"n":1}"#.to_owned(), 1),
            ("evt-2".to_owned(), r#"{"n":2}"#.to_owned(), 1),
        ],
        "oldest first, kept once with the first payload"
    );
    assert_eq!(
        ours(claim(110, 30).await.expect("claim")),
        [],
        "held while the claim runs"
    );
    let again = ours(claim(131, 30).await.expect("claim"));
    assert_eq!(
        again
            .iter()
            .map(|(id, _, receives)| (id.as_str(), *receives))
            .collect::<Vec<_>>(),
        [("evt-1", 2), ("evt-2", 2)],
        "claimable again once the claim ran out, each receive counted"
    );

    store
        .remove_inbox(&provider, "evt-1")
        .await
        .expect("remove");
    let mut dead = second.clone();
    dead.receives = 2;
    store
        .dead_letter_inbox(&dead, "kept failing: store unavailable")
        .await
        .expect("dead letter");
    assert_eq!(
        ours(claim(200, 30).await.expect("claim")),
        [],
        "none left to claim"
    );
    let dead_letters: Vec<(InboxEvent, String)> = store
        .dead_lettered_inbox(1000)
        .await
        .expect("dead letters")
        .into_iter()
        .filter(|(event, _)| event.provider == provider)
        .collect();
    assert_eq!(
        dead_letters,
        [(dead, "kept failing: store unavailable".to_owned())]
    );

    // Delivered again after it was applied, it is kept again: the provider-event mark, not the
    // inbox, makes it apply once.
    store.put_inbox(&first).await.expect("put");
    assert_eq!(
        ours(claim(300, 30).await.expect("claim")),
        [("evt-1".to_owned(), r#"{"n":1}"#.to_owned(), 1)]
    );
    store
        .remove_inbox(&provider, "evt-1")
        .await
        .expect("remove");
}
