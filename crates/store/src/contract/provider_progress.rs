//! Provider progress and the dispatch lease: guarded writes, one holder at a time.

use super::*;

/// Provider progress: each write guarded by the revision before it, the provider's reference
/// keyed to its agreement (and to no other), read back strongly.
pub async fn provider_progress_is_guarded_and_keyed<S: ProviderProgressStore + ?Sized>(store: &S) {
    let at = |seconds| time(2032, seconds);
    let agreement_id = unique("progress-agreement");
    let other_agreement = unique("progress-other");
    let provider = unique("progress-provider");
    let reference = unique("zigned-ref");
    let progress = |agreement_id: &str, revision: u64, state: &str, reference: Option<&str>| {
        ProviderProgress {
            agreement_id: agreement_id.to_owned(),
            provider: provider.clone(),
            state: state.to_owned(),
            reference: reference.map(str::to_owned),
            revision,
            updated_at: at(i64::try_from(revision).unwrap_or(0)),
        }
    };
    assert_eq!(
        store
            .get_provider_progress(&agreement_id)
            .await
            .expect("get"),
        None
    );
    assert_eq!(
        store
            .put_provider_progress(&progress(&agreement_id, 2, "{}", None))
            .await,
        Err(CommitError::Conflict),
        "revision 2 needs revision 1 first"
    );
    let first = progress(&agreement_id, 1, r#"{"files":1}"#, None);
    store.put_provider_progress(&first).await.expect("first");
    assert_eq!(
        store
            .put_provider_progress(&progress(&agreement_id, 1, "{}", None))
            .await,
        Err(CommitError::Conflict),
        "two writers of revision 1: one wins"
    );
    assert_eq!(
        store
            .get_provider_progress(&agreement_id)
            .await
            .expect("get"),
        Some(first)
    );
    assert_eq!(
        store
            .find_by_provider_reference(&provider, &reference)
            .await
            .expect("find"),
        None
    );
    let second = progress(&agreement_id, 2, r#"{"created":true}"#, Some(&reference));
    store.put_provider_progress(&second).await.expect("second");
    assert_eq!(
        store
            .find_by_provider_reference(&provider, &reference)
            .await
            .expect("find"),
        Some(agreement_id.clone())
    );
    assert_eq!(
        store
            .find_by_provider_reference(&unique("another-provider"), &reference)
            .await
            .expect("find"),
        None,
        "references are per provider"
    );
    // Another agreement cannot take the reference, and the refused write leaves nothing.
    assert_eq!(
        store
            .put_provider_progress(&progress(&other_agreement, 1, "{}", Some(&reference)))
            .await,
        Err(CommitError::Conflict)
    );
    assert_eq!(
        store
            .get_provider_progress(&other_agreement)
            .await
            .expect("get"),
        None
    );
    let third = progress(&agreement_id, 3, r#"{"sent":true}"#, Some(&reference));
    store
        .put_provider_progress(&third)
        .await
        .expect("the same reference again");
    assert_eq!(
        store
            .get_provider_progress(&agreement_id)
            .await
            .expect("get"),
        Some(third)
    );
    assert_eq!(
        store
            .find_by_provider_reference(&provider, &reference)
            .await
            .expect("find"),
        Some(agreement_id)
    );
}

/// The dispatch lease: one holder at a time, even among concurrent takers; renewed by its holder;
/// free again once released or run out; released only by its holder.
pub async fn dispatch_lease_is_held_by_one_until_it_runs_out<S: ProviderProgressStore + ?Sized>(
    store: &S,
) {
    let at = |seconds| time(2033, seconds);
    let agreement_id = unique("lease-agreement");
    let other_agreement = unique("lease-other");
    let takers: Vec<String> = (0..6).map(|n| format!("dispatch-{n}")).collect();
    let granted = join_all(
        takers
            .iter()
            .map(|holder| store.take_dispatch_lease(&agreement_id, holder, at(0), at(60))),
    )
    .await;
    let winners: Vec<&String> = takers
        .iter()
        .zip(&granted)
        .filter(|(_, granted)| matches!(granted, Ok(true)))
        .map(|(holder, _)| holder)
        .collect();
    assert_eq!(
        winners.len(),
        1,
        "one of concurrent takers holds it: {granted:?}"
    );
    let holder = winners[0].clone();
    let loser = takers
        .iter()
        .find(|other| **other != holder)
        .unwrap()
        .clone();

    assert!(
        !store
            .take_dispatch_lease(&agreement_id, &loser, at(30), at(90))
            .await
            .expect("take"),
        "held until 60"
    );
    assert!(
        store
            .take_dispatch_lease(&other_agreement, &loser, at(30), at(90))
            .await
            .expect("take"),
        "each agreement has its own lease"
    );
    assert!(
        store
            .take_dispatch_lease(&agreement_id, &holder, at(30), at(120))
            .await
            .expect("renew"),
        "its holder renews it"
    );
    assert!(
        !store
            .take_dispatch_lease(&agreement_id, &loser, at(90), at(150))
            .await
            .expect("take"),
        "renewed until 120"
    );
    store
        .release_dispatch_lease(&agreement_id, &loser)
        .await
        .expect("release by another");
    assert!(
        !store
            .take_dispatch_lease(&agreement_id, &loser, at(90), at(150))
            .await
            .expect("take"),
        "only its holder releases it"
    );
    store
        .release_dispatch_lease(&agreement_id, &holder)
        .await
        .expect("release");
    store
        .release_dispatch_lease(&agreement_id, &holder)
        .await
        .expect("a second release changes nothing");
    assert!(
        store
            .take_dispatch_lease(&agreement_id, &loser, at(91), at(150))
            .await
            .expect("take"),
        "free once released"
    );
    assert!(
        store
            .take_dispatch_lease(&agreement_id, &holder, at(151), at(200))
            .await
            .expect("take"),
        "free once run out"
    );
    assert!(
        !store
            .take_dispatch_lease(&agreement_id, &loser, at(152), at(210))
            .await
            .expect("take"),
        "and held again by whoever took it"
    );
}
