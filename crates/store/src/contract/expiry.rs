//! The expiry index: what is due, oldest first, and nothing that left `pending`.

use super::*;

/// Every due page at `now`, following the cursor. Checks what holds for any page: at most
/// `limit` items, each pending and due.
async fn due_ids<S: Store + ?Sized>(store: &S, now: DateTime<Utc>, limit: usize) -> Vec<String> {
    let mut ids = Vec::new();
    let mut cursor = None;
    for _ in 0..10_000 {
        let page = store
            .due_for_expiry(now, limit, cursor)
            .await
            .unwrap_or_else(|error| panic!("due_for_expiry failed: {error:?}"));
        assert!(page.agreements.len() <= limit, "page larger than its limit");
        for agreement in &page.agreements {
            assert_eq!(
                agreement.status,
                Status::Pending,
                "`{}` is not pending",
                agreement.id
            );
            assert!(
                agreement
                    .expires_at
                    .is_some_and(|expires_at| expires_at <= now),
                "`{}` is not due",
                agreement.id
            );
        }
        ids.extend(page.agreements.into_iter().map(|agreement| agreement.id));
        match page.cursor {
            Some(next) => cursor = Some(next),
            None => return ids,
        }
    }
    panic!("the due pages do not end");
}

/// Where each of `own` appears in `ids` (`None` if absent), asserting none appears twice.
fn positions(ids: &[String], own: &[&str]) -> Vec<Option<usize>> {
    own.iter()
        .map(|id| {
            let found: Vec<usize> = ids
                .iter()
                .enumerate()
                .filter(|(_, listed)| listed.as_str() == *id)
                .map(|(index, _)| index)
                .collect();
            assert!(found.len() <= 1, "`{id}` listed {} times", found.len());
            found.first().copied()
        })
        .collect()
}

/// Case 8: the expiry index returns pending agreements whose `expires_at` has passed, oldest
/// expiry first, each once across pages; not those not yet due, nor any that is not pending (also
/// when it keeps an `expires_at`), and an agreement leaves it when it stops being pending. Only
/// this case's own ids are asserted on: a shared store may hold others.
pub async fn expiry_index<S: Store + ?Sized>(store: &S) {
    let tenant = unique("tenant");
    let base = time(2000, 0);
    let at = |seconds: i64| base + Duration::seconds(seconds);
    let make = |days: u16, signers: usize| {
        created(
            &unique("agr"),
            &tenant,
            input(signers, None, Some(days)),
            base,
        )
    };
    let sent_at = |agreement: Agreement, seconds: i64| async move {
        let sending = send(&agreement, at(seconds));
        write(store, change_commit(&agreement, sending)).await
    };

    // Due at base + 1 day, + 1 day 1 hour, + 1 day 2 hours.
    let mut due = Vec::new();
    for hours in 0..3 {
        let draft = write(store, create_commit(make(1, 1))).await;
        due.push(sent_at(draft, hours * HOUR).await);
    }
    let later = sent_at(write(store, create_commit(make(2, 1))).await, 0).await;
    let draft = write(store, create_commit(make(1, 1))).await;
    // Cancelled and fulfilled ones keep their expires_at; a reopened one loses it.
    let cancelled = sent_at(write(store, create_commit(make(1, 1))).await, 0).await;
    let cancelled = write(
        store,
        change_commit(&cancelled, cancel(&cancelled, at(MINUTE))),
    )
    .await;
    assert!(cancelled.expires_at.is_some());
    let fulfilled = sent_at(write(store, create_commit(make(1, 1))).await, 0).await;
    let signing = changed(sign(&fulfilled, "p1", &unique("event"), at(MINUTE)));
    let fulfilled = write(store, change_commit(&fulfilled, signing)).await;
    assert_eq!(fulfilled.status, Status::Fulfilled);
    let reopened = sent_at(write(store, create_commit(make(1, 1))).await, 0).await;
    let reopening = changed(
        reopened
            .decide_lifecycle(LifecycleRequest::Open, at(MINUTE))
            .expect("a pending agreement reopens"),
    );
    let reopened = write(store, change_commit(&reopened, reopening)).await;

    // `now` is the last due agreement's expires_at exactly: due includes equality.
    let now = due[2].expires_at.expect("sent agreements expire");
    assert_eq!(now, at(DAY + 2 * HOUR));
    let own: Vec<&str> = due.iter().map(|agreement| agreement.id.as_str()).collect();
    let not_due = [
        later.id.as_str(),
        draft.id.as_str(),
        cancelled.id.as_str(),
        fulfilled.id.as_str(),
        reopened.id.as_str(),
    ];
    // Wait until the index shows the due ones, and no longer the ones that stopped being pending.
    eventually("the expiry index shows the case's writes", || async {
        let ids = due_ids(store, now, 1000).await;
        same(
            (
                positions(&ids, &own).iter().all(Option::is_some),
                positions(&ids, &not_due),
            ),
            (true, vec![None; not_due.len()]),
        )
    })
    .await;
    for limit in [1, 2, 1000] {
        let ids = due_ids(store, now, limit).await;
        let found = positions(&ids, &own);
        assert!(
            found.iter().all(Option::is_some),
            "missing due: {found:?} (limit {limit})"
        );
        assert!(
            found.windows(2).all(|pair| pair[0] < pair[1]),
            "oldest expiry first"
        );
        assert_eq!(positions(&ids, &not_due), vec![None; not_due.len()]);
    }
    // A second before the first one is due: none of them.
    let ids = due_ids(store, at(DAY - 1), 10).await;
    assert_eq!(positions(&ids, &own), vec![None; own.len()]);
    // One hour later than `now`, the first two only.
    let ids = due_ids(store, at(DAY + HOUR), 10).await;
    assert_eq!(positions(&ids, &own)[2], None);
    assert!(positions(&ids, &own)[..2].iter().all(Option::is_some));

    // Expired and cancelled ones leave the index.
    let expired = write(
        store,
        change_commit(&due[0], changed(due[0].decide_expiry(now))),
    )
    .await;
    assert_eq!(expired.status, Status::Expired);
    write(store, change_commit(&due[1], cancel(&due[1], now))).await;
    eventually(
        "expired and cancelled agreements leave the expiry index",
        || async {
            same(
                positions(&due_ids(store, now, 1000).await, &own[..2]),
                vec![None, None],
            )
        },
    )
    .await;
    let ids = due_ids(store, now, 2).await;
    let found = positions(&ids, &own);
    assert_eq!(found[..2], [None, None], "no longer pending, still listed");
    assert!(found[2].is_some());

    // Leave nothing pending behind for the next run on a shared store.
    write(store, change_commit(&due[2], cancel(&due[2], now))).await;
    write(store, change_commit(&later, cancel(&later, now))).await;
    let mut all_own = own.clone();
    all_own.push(later.id.as_str());
    eventually("the case leaves nothing in the expiry index", || async {
        same(
            positions(&due_ids(store, at(3 * DAY), 100).await, &all_own),
            vec![None; all_own.len()],
        )
    })
    .await;
}
