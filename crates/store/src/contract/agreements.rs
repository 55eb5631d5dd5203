//! Agreements and their history: create, read, commit a transition, refuse a stale or
//! refused one, apply a provider event once, and commits racing on one agreement.

use super::*;

/// Case 1: a created agreement reads back as it was written, with its `AgreementCreated` entry; a
/// second create of the same id is a `Conflict` and changes nothing (not even its idempotency
/// record is stored).
pub async fn create_then_get<S: Store + ?Sized>(store: &S) {
    let tenant = unique("tenant");
    let id = unique("agr");
    let now = time(2040, 0);

    assert_eq!(get(store, &id).await, None, "unknown id");
    assert!(
        history(store, &id).await.is_empty(),
        "unknown id has history"
    );

    let creation = created(&id, &tenant, input(2, Some("lookup"), None), now);
    write(store, create_commit(creation.clone())).await;
    assert_eq!(get(store, &id).await.as_ref(), Some(&creation.agreement));
    let entries = history(store, &id).await;
    assert_eq!(entries, creation.entries);
    assert_eq!(entries.len(), 1);
    assert_eq!(entries[0].entry_type, EntryType::AgreementCreated);

    let before = snapshot(store, &id).await;
    let other_tenant = unique("tenant");
    let key = unique("key");
    let again = Commit {
        idempotency: Some(idempotency_record(&other_tenant, &key, now, "again")),
        ..create_commit(created(
            &id,
            &other_tenant,
            input(1, None, None),
            now + Duration::seconds(HOUR),
        ))
    };
    assert_eq!(store.commit(again).await, Err(CommitError::Conflict));
    assert_eq!(
        snapshot(store, &id).await,
        before,
        "a refused create changed the agreement"
    );
    assert_eq!(
        live_record(store, &other_tenant, &key, now).await,
        None,
        "a refused create stored its idempotency record"
    );
}

/// Case 2: each transition stores the agreement and appends its entries; the history reads oldest
/// first, sequences 1..n without gaps, including an ignored provider event (a history-only write
/// that keeps the version).
pub async fn transition_appends_history<S: Store + ?Sized>(store: &S) {
    let tenant = unique("tenant");
    let now = time(2041, 0);
    let provider = unique("provider");

    let creation = created(&unique("agr"), &tenant, input(2, None, None), now);
    let mut expected_entries = creation.entries.clone();
    let draft = write(store, create_commit(creation)).await;

    let sending = send(&draft, now + Duration::seconds(MINUTE));
    assert_eq!(sending.entries.len(), 2, "sent and group invited");
    expected_entries.extend(sending.entries.clone());
    let pending = write(store, change_commit(&draft, sending)).await;

    let event = unique("event");
    let signing = changed(sign(&pending, "p1", &event, now + Duration::seconds(HOUR)));
    expected_entries.extend(signing.entries.clone());
    let signed = write(
        store,
        Commit {
            provider_event: Some(mark(&provider, &event, &pending.id, now)),
            ..change_commit(&pending, signing)
        },
    )
    .await;

    // The same participant again: final already, so only a `ProviderEventIgnored` entry.
    let ignoring = ignored(sign(
        &signed,
        "p1",
        &unique("event"),
        now + Duration::seconds(2 * HOUR),
    ));
    expected_entries.extend(ignoring.entries.clone());
    let recorded = write(store, change_commit(&signed, ignoring)).await;
    assert_eq!(
        recorded.version, signed.version,
        "an ignored event keeps the version"
    );

    let stored = get(store, &recorded.id).await;
    assert_eq!(stored.as_ref(), Some(&recorded));
    let entries = history(store, &recorded.id).await;
    assert_eq!(entries, expected_entries, "history, oldest first");
    assert_eq!(entries.len(), 5);
    assert_gapless(&recorded, &entries);
    assert_eq!(recorded.version, 3);
    assert_eq!(
        entries.last().map(|entry| entry.entry_type),
        Some(EntryType::ProviderEventIgnored)
    );
}

/// Case 3: a transition computed from an old read is a `Conflict` once another commit went in,
/// whether the version moved or only the history (an ignored event); nothing of it is written:
/// not the agreement, not its entries, not its idempotency record, not its provider-event mark.
/// An expected revision for an agreement that does not exist is a `Conflict` too.
pub async fn stale_revision_is_refused<S: Store + ?Sized>(store: &S) {
    let tenant = unique("tenant");
    let now = time(2042, 0);
    let provider = unique("provider");
    let stale = create_pending(store, &tenant, 3, now).await;

    // Another writer goes first.
    let first_event = unique("event");
    let current = write(
        store,
        Commit {
            provider_event: Some(mark(&provider, &first_event, &stale.id, now)),
            ..change_commit(&stale, changed(sign(&stale, "p1", &first_event, now)))
        },
    )
    .await;
    let before = snapshot(store, &stale.id).await;

    let key = unique("key");
    let late_event = unique("event");
    let late = Commit {
        idempotency: Some(idempotency_record(&tenant, &key, now, "late")),
        provider_event: Some(mark(&provider, &late_event, &stale.id, now)),
        ..change_commit(&stale, changed(sign(&stale, "p2", &late_event, now)))
    };
    assert_eq!(store.commit(late).await, Err(CommitError::Conflict));
    assert_eq!(
        snapshot(store, &stale.id).await,
        before,
        "a stale commit changed the agreement"
    );
    assert_eq!(
        live_record(store, &tenant, &key, now).await,
        None,
        "a stale commit stored its idempotency record"
    );
    // Its mark was not stored either: the same event, decided on a fresh read, goes in.
    let current = write(
        store,
        Commit {
            provider_event: Some(mark(&provider, &late_event, &stale.id, now)),
            ..change_commit(&current, changed(sign(&current, "p2", &late_event, now)))
        },
    )
    .await;
    // And its key is free.
    let record = idempotency_record(&tenant, &key, now, "alone");
    assert_eq!(store.put_idempotency(record.clone(), now).await, Ok(()));
    assert_eq!(live_record(store, &tenant, &key, now).await, Some(record));

    // Same version, longer history: the guard covers history_len too.
    let ignoring = ignored(sign(&current, "p1", &unique("event"), now));
    let after_ignored = write(store, change_commit(&current, ignoring)).await;
    assert_eq!(after_ignored.version, current.version);
    let before = snapshot(store, &current.id).await;
    let late = change_commit(
        &current,
        changed(sign(&current, "p3", &unique("event"), now)),
    );
    assert_eq!(store.commit(late).await, Err(CommitError::Conflict));
    assert_eq!(snapshot(store, &current.id).await, before);

    // The guard is the exact revision: a transition that continues the history correctly is
    // still refused when the expected version or history_len is off.
    let fresh = changed(sign(&after_ignored, "p3", &unique("event"), now));
    let read = Revision::of(&after_ignored);
    for expected in [
        Revision {
            history_len: read.history_len - 1,
            ..read
        },
        Revision {
            version: read.version - 1,
            ..read
        },
        Revision {
            version: read.version + 1,
            ..read
        },
    ] {
        let off = Commit {
            expected: Some(expected),
            ..change_commit(&after_ignored, fresh.clone())
        };
        assert_eq!(
            store.commit(off).await,
            Err(CommitError::Conflict),
            "{expected:?}"
        );
        assert_eq!(snapshot(store, &current.id).await, before);
    }

    // An update of an agreement that was never created.
    let ghost = created(&unique("agr"), &tenant, input(1, None, None), now);
    let ghost_id = ghost.agreement.id.clone();
    let update = Commit {
        expected: Some(Revision {
            version: 1,
            history_len: 0,
        }),
        ..create_commit(ghost)
    };
    assert_eq!(store.commit(update).await, Err(CommitError::Conflict));
    assert_eq!(
        snapshot(store, &ghost_id).await,
        Snapshot {
            agreement: None,
            history: Vec::new()
        }
    );
}

/// Case 4: a commit refused for its idempotency record or its provider-event mark writes nothing
/// else: the agreement, its history, the other record or mark it carried all stay as they were.
pub async fn refused_commit_writes_nothing<S: Store + ?Sized>(store: &S) {
    let tenant = unique("tenant");
    let now = time(2043, 0);
    let provider = unique("provider");
    let pending = create_pending(store, &tenant, 3, now).await;

    let taken_key = unique("key");
    let taken_event = unique("event");
    let first_record = idempotency_record(&tenant, &taken_key, now, "first");
    let current = write(
        store,
        Commit {
            idempotency: Some(first_record.clone()),
            provider_event: Some(mark(&provider, &taken_event, &pending.id, now)),
            ..change_commit(&pending, changed(sign(&pending, "p1", &taken_event, now)))
        },
    )
    .await;
    let before = snapshot(store, &current.id).await;
    let later = now + Duration::seconds(MINUTE);

    // Refused for the key: its mark is not stored.
    let free_event = unique("event");
    let refused = Commit {
        idempotency: Some(idempotency_record(&tenant, &taken_key, later, "second")),
        provider_event: Some(mark(&provider, &free_event, &current.id, later)),
        ..change_commit(&current, changed(sign(&current, "p2", &free_event, later)))
    };
    assert_eq!(
        store.commit(refused).await,
        Err(CommitError::IdempotencyKeyTaken)
    );
    assert_eq!(snapshot(store, &current.id).await, before);
    assert_eq!(
        live_record(store, &tenant, &taken_key, later).await,
        Some(first_record.clone()),
        "the live record was replaced"
    );

    // Refused for the mark: its record is not stored.
    let free_key = unique("key");
    let refused = Commit {
        idempotency: Some(idempotency_record(&tenant, &free_key, later, "third")),
        provider_event: Some(mark(&provider, &taken_event, &current.id, later)),
        ..change_commit(&current, changed(sign(&current, "p2", &taken_event, later)))
    };
    assert_eq!(
        store.commit(refused).await,
        Err(CommitError::DuplicateProviderEvent)
    );
    assert_eq!(snapshot(store, &current.id).await, before);
    assert_eq!(live_record(store, &tenant, &free_key, later).await, None);

    // A create refused for its key creates nothing.
    let creation = created(&unique("agr"), &tenant, input(1, None, None), later);
    let new_id = creation.agreement.id.clone();
    let refused = Commit {
        idempotency: Some(idempotency_record(&tenant, &taken_key, later, "create")),
        ..create_commit(creation)
    };
    assert_eq!(
        store.commit(refused).await,
        Err(CommitError::IdempotencyKeyTaken)
    );
    assert_eq!(
        get(store, &new_id).await,
        None,
        "a refused create stored the agreement"
    );
    assert!(history(store, &new_id).await.is_empty());

    // Both refused commits left the free key and the free event id free.
    let record = idempotency_record(&tenant, &free_key, later, "fourth");
    let after = write(
        store,
        Commit {
            idempotency: Some(record.clone()),
            provider_event: Some(mark(&provider, &free_event, &current.id, later)),
            ..change_commit(&current, changed(sign(&current, "p2", &free_event, later)))
        },
    )
    .await;
    assert_eq!(
        live_record(store, &tenant, &free_key, later).await,
        Some(record)
    );
    assert_eq!(get(store, &after.id).await.as_ref(), Some(&after));
    assert_eq!(
        history(store, &after.id).await.len() as u64,
        after.history_len
    );
}

/// Case 5: a (provider, event id) pair is applied once: a second commit carrying it is a
/// `DuplicateProviderEvent`; another event id, or the same id from another provider, goes in.
pub async fn provider_event_applied_once<S: Store + ?Sized>(store: &S) {
    let tenant = unique("tenant");
    let now = time(2044, 0);
    let provider = unique("provider");
    let other_provider = unique("provider");
    let pending = create_pending(store, &tenant, 3, now).await;

    let event = unique("event");
    let current = write(
        store,
        Commit {
            provider_event: Some(mark(&provider, &event, &pending.id, now)),
            ..change_commit(&pending, changed(sign(&pending, "p1", &event, now)))
        },
    )
    .await;
    let before = snapshot(store, &current.id).await;

    // Decided again on a fresh read, as a redelivered callback would be: still refused.
    let again = Commit {
        provider_event: Some(mark(&provider, &event, &current.id, now)),
        ..change_commit(&current, changed(sign(&current, "p2", &event, now)))
    };
    assert_eq!(
        store.commit(again).await,
        Err(CommitError::DuplicateProviderEvent)
    );
    assert_eq!(snapshot(store, &current.id).await, before);

    let other_event = unique("event");
    let current = write(
        store,
        Commit {
            provider_event: Some(mark(&provider, &other_event, &current.id, now)),
            ..change_commit(&current, changed(sign(&current, "p2", &other_event, now)))
        },
    )
    .await;
    let current = write(
        store,
        Commit {
            provider_event: Some(mark(&other_provider, &event, &current.id, now)),
            ..change_commit(&current, changed(sign(&current, "p3", &event, now)))
        },
    )
    .await;
    assert_eq!(current.status, Status::Fulfilled);
    assert_eq!(get(store, &current.id).await.as_ref(), Some(&current));
}

/// Case 9: commits computed from the same revision race: exactly one goes in, the others are
/// `Conflict`s that wrote nothing. Then 16 writers each apply their own participant's signature
/// with read, decide, commit and retry on conflict: every signature lands exactly once.
///
/// The racing commits run as concurrent futures of one task, yielding between read and commit,
/// so they interleave on any store; against a networked store their requests overlap in flight.
pub async fn concurrent_commits<S: Store + ?Sized>(store: &S) {
    const WRITERS: usize = 16;
    let tenant = unique("tenant");
    let now = time(2047, 0);
    let provider = unique("provider");

    // Same revision, 16 different events.
    let read = create_pending(store, &tenant, 2, now).await;
    let events: Vec<String> = (0..WRITERS).map(|_| unique("event")).collect();
    let commits = events.iter().map(|event| Commit {
        provider_event: Some(mark(&provider, event, &read.id, now)),
        ..change_commit(&read, changed(sign(&read, "p1", event, now)))
    });
    let results = join_all(commits.map(|commit| async move {
        tokio::task::yield_now().await;
        store.commit(commit).await
    }))
    .await;
    let winners: Vec<usize> = (0..WRITERS).filter(|i| results[*i].is_ok()).collect();
    assert_eq!(winners.len(), 1, "exactly one commit wins: {results:?}");
    assert!(results
        .iter()
        .all(|result| matches!(result, Ok(()) | Err(CommitError::Conflict))));
    let winner = winners[0];
    let current = get(store, &read.id).await.expect("the agreement exists");
    assert_eq!(
        current,
        changed(sign(&read, "p1", &events[winner], now)).agreement
    );
    assert_eq!(
        history(store, &read.id).await.len() as u64,
        read.history_len + 1
    );
    // A loser's mark was not written: its event id still goes in.
    let loser = (winner + 1) % WRITERS;
    write(
        store,
        Commit {
            provider_event: Some(mark(&provider, &events[loser], &read.id, now)),
            ..change_commit(&current, changed(sign(&current, "p2", &events[loser], now)))
        },
    )
    .await;

    // 16 signers, each signature applied by its own writer with retries.
    let pending = create_pending(store, &tenant, WRITERS, now).await;
    let id = pending.id.as_str();
    let writers = (1..=WRITERS).map(|i| {
        let provider = provider.as_str();
        async move {
            let participant = format!("p{i}");
            let event = unique("event");
            for attempt in 1..=200_u32 {
                let read = get(store, id).await.expect("the agreement exists");
                let at = now + Duration::seconds(HOUR);
                let transition = changed(sign(&read, &participant, &event, at));
                // Let the other writers read the same revision before this one commits.
                tokio::task::yield_now().await;
                let commit = Commit {
                    provider_event: Some(mark(provider, &event, id, at)),
                    ..change_commit(&read, transition)
                };
                match store.commit(commit).await {
                    Ok(()) => return attempt,
                    Err(CommitError::Conflict) => continue,
                    Err(error) => panic!("{participant}: commit failed: {error:?}"),
                }
            }
            panic!("{participant}: still conflicting after 200 attempts");
        }
    });
    let attempts = join_all(writers).await;

    let last = get(store, id).await.expect("the agreement exists");
    assert_eq!(last.status, Status::Fulfilled, "attempts: {attempts:?}");
    assert_eq!(last.version, 1 + 1 + WRITERS as u64);
    assert!(last
        .participants
        .iter()
        .all(|participant| participant.status == ParticipantStatus::SignatureComplete));
    let entries = history(store, id).await;
    // Created, sent, group invited, 16 signed, fulfilled.
    assert_eq!(entries.len(), 3 + WRITERS + 1);
    assert_gapless(&last, &entries);
    let signers: Vec<&str> = entries
        .iter()
        .filter(|entry| entry.entry_type == EntryType::ParticipantSigned)
        .filter_map(|entry| entry.participant_id.as_deref())
        .collect();
    let distinct: HashSet<&str> = signers.iter().copied().collect();
    assert_eq!(signers.len(), WRITERS, "one ParticipantSigned per signer");
    assert_eq!(distinct.len(), WRITERS);
    assert_eq!(
        entries.last().map(|entry| entry.entry_type),
        Some(EntryType::AgreementFulfilled)
    );
}
