//! Idempotency records: kept with the commit they answer, found again, never overwritten.

use super::*;

/// Case 6: idempotency records: stored with a commit, read back while live and not once expired,
/// a live key refuses another commit or put, an expired one is replaced, keys are per tenant.
pub async fn idempotency_records<S: Store + ?Sized>(store: &S) {
    let tenant = unique("tenant");
    let other_tenant = unique("tenant");
    let key = unique("key");
    let now = time(2045, 0);
    let at = |seconds: i64| now + Duration::seconds(seconds);

    let record = idempotency_record(&tenant, &key, now, "created");
    write(
        store,
        Commit {
            idempotency: Some(record.clone()),
            ..create_commit(created(&unique("agr"), &tenant, input(1, None, None), now))
        },
    )
    .await;
    assert_eq!(
        live_record(store, &tenant, &key, now).await,
        Some(record.clone())
    );
    assert_eq!(
        live_record(store, &tenant, &key, at(HOUR)).await,
        Some(record.clone())
    );
    assert_eq!(
        live_record(store, &tenant, &key, record.expires_at).await,
        None,
        "a record is live only before its expires_at"
    );
    assert_eq!(
        live_record(store, &tenant, &key, at(DAY + HOUR)).await,
        None
    );

    // While live, the key refuses another commit and a put.
    let creation = created(&unique("agr"), &tenant, input(1, None, None), at(2 * HOUR));
    let refused_id = creation.agreement.id.clone();
    let refused = Commit {
        idempotency: Some(idempotency_record(&tenant, &key, at(2 * HOUR), "again")),
        ..create_commit(creation)
    };
    assert_eq!(
        store.commit(refused).await,
        Err(CommitError::IdempotencyKeyTaken)
    );
    assert_eq!(get(store, &refused_id).await, None);
    assert_eq!(
        store
            .put_idempotency(
                idempotency_record(&tenant, &key, at(3 * HOUR), "put"),
                at(3 * HOUR)
            )
            .await,
        Err(CommitError::IdempotencyKeyTaken)
    );
    assert_eq!(
        live_record(store, &tenant, &key, at(3 * HOUR)).await,
        Some(record.clone())
    );

    // Keys are per tenant.
    let elsewhere = idempotency_record(&other_tenant, &key, at(3 * HOUR), "elsewhere");
    assert_eq!(
        store.put_idempotency(elsewhere.clone(), at(3 * HOUR)).await,
        Ok(())
    );
    assert_eq!(
        live_record(store, &other_tenant, &key, at(3 * HOUR)).await,
        Some(elsewhere)
    );
    assert_eq!(
        live_record(store, &tenant, &key, at(3 * HOUR)).await,
        Some(record.clone())
    );

    // Once expired, a put replaces it ...
    let replacement = idempotency_record(&tenant, &key, at(DAY + HOUR), "replacement");
    assert_eq!(
        store
            .put_idempotency(replacement.clone(), at(DAY + HOUR))
            .await,
        Ok(())
    );
    assert_eq!(
        live_record(store, &tenant, &key, at(DAY + 2 * HOUR)).await,
        Some(replacement.clone())
    );
    // ... and so does a commit.
    let third = idempotency_record(&tenant, &key, replacement.expires_at, "third");
    write(
        store,
        Commit {
            idempotency: Some(third.clone()),
            ..create_commit(created(
                &unique("agr"),
                &tenant,
                input(1, None, None),
                replacement.expires_at,
            ))
        },
    )
    .await;
    assert_eq!(
        live_record(store, &tenant, &key, replacement.expires_at).await,
        Some(third)
    );

    // A put on its own, on a fresh key, then the same key again while live.
    let alone_key = unique("key");
    let alone = idempotency_record(&tenant, &alone_key, now, "alone");
    assert_eq!(store.put_idempotency(alone.clone(), now).await, Ok(()));
    assert_eq!(
        live_record(store, &tenant, &alone_key, at(MINUTE)).await,
        Some(alone.clone())
    );
    assert_eq!(
        store
            .put_idempotency(
                idempotency_record(&tenant, &alone_key, at(MINUTE), "twice"),
                at(MINUTE)
            )
            .await,
        Err(CommitError::IdempotencyKeyTaken)
    );
    assert_eq!(
        live_record(store, &tenant, &alone_key, at(MINUTE)).await,
        Some(alone)
    );
}
