//! Listing a tenant's agreements: newest first, by page, filtered by lookup key and status.

use super::*;

/// Every page of a listing, following `next` until it is `None`. Checks what holds for any page:
/// at most `limit` items, and a `next` only after a full page, pointing at its last item.
async fn list_pages<S: Store + ?Sized>(store: &S, query: ListQuery) -> Vec<Vec<Agreement>> {
    let mut query = query;
    let mut pages = Vec::new();
    loop {
        assert!(pages.len() < 100, "listing does not end: {query:?}");
        let ListPage { agreements, next } = store
            .list_agreements(&query)
            .await
            .unwrap_or_else(|error| panic!("list_agreements({query:?}) failed: {error:?}"));
        assert!(
            agreements.len() <= query.limit,
            "page larger than its limit"
        );
        match next {
            Some(next) => {
                assert_eq!(agreements.len(), query.limit, "a page with a next is full");
                assert_eq!(agreements.last().map(ListPosition::of), Some(next.clone()));
                pages.push(agreements);
                query.after = Some(next);
            }
            None => {
                pages.push(agreements);
                return pages;
            }
        }
    }
}

fn page_sizes(pages: &[Vec<Agreement>]) -> Vec<usize> {
    pages.iter().map(Vec::len).collect()
}

fn page_ids(pages: &[Vec<Agreement>]) -> Vec<String> {
    pages
        .iter()
        .flatten()
        .map(|agreement| agreement.id.clone())
        .collect()
}

/// Case 7: a tenant's agreements list newest first in keyset pages, without duplicates or
/// omissions, `next` only while more match; other tenants' never appear; the lookup-key and
/// status filters return only what matches, in the same order and pages.
pub async fn listing_pages_newest_first<S: Store + ?Sized>(store: &S) {
    let tenant = unique("tenant");
    let other_tenant = unique("tenant");
    let key_a = unique("lookup");
    let key_b = unique("lookup");
    let now = time(2046, 0);
    let query = |limit: usize| ListQuery {
        tenant: tenant.clone(),
        lookup_key: None,
        status: None,
        limit,
        after: None,
    };

    // 25 agreements a minute apart: lookup key a, b or none in turn; every 4th sent.
    let mut stored: HashMap<String, Agreement> = HashMap::new();
    let mut oldest_first = Vec::new();
    for i in 0..25_i64 {
        let lookup_key = match i % 3 {
            0 => Some(key_a.as_str()),
            1 => Some(key_b.as_str()),
            _ => None,
        };
        let created_at = now + Duration::seconds(i * MINUTE);
        let creation = created(
            &unique("agr"),
            &tenant,
            input(1, lookup_key, None),
            created_at,
        );
        let mut agreement = write(store, create_commit(creation)).await;
        if i % 4 == 0 {
            let sending = send(&agreement, created_at + Duration::seconds(1));
            agreement = write(store, change_commit(&agreement, sending)).await;
        }
        oldest_first.push((i, agreement.id.clone()));
        stored.insert(agreement.id.clone(), agreement);
    }
    // Another tenant, same times, same lookup key.
    let mut foreign = HashSet::new();
    for i in 0..5_i64 {
        let creation = created(
            &unique("agr"),
            &other_tenant,
            input(1, Some(&key_a), None),
            now + Duration::seconds(i * MINUTE),
        );
        foreign.insert(write(store, create_commit(creation)).await.id);
    }
    let newest_first = |keep: &dyn Fn(i64) -> bool| -> Vec<String> {
        oldest_first
            .iter()
            .rev()
            .filter(|(i, _)| keep(*i))
            .map(|(_, id)| id.clone())
            .collect()
    };

    // Wait until both indexes show every agreement of the case, as it was last written.
    let everything = newest_first(&|_| true);
    eventually("the tenant's listing shows its 25 agreements", || async {
        let listed: Vec<Agreement> = list_pages(store, query(100))
            .await
            .into_iter()
            .flatten()
            .collect();
        let current = listed
            .iter()
            .filter(|agreement| stored.get(&agreement.id) == Some(*agreement))
            .count();
        same(
            (
                listed
                    .iter()
                    .map(|agreement| agreement.id.clone())
                    .collect::<Vec<_>>(),
                current,
            ),
            (everything.clone(), everything.len()),
        )
    })
    .await;
    let key_a_ids = newest_first(&|i| i % 3 == 0);
    eventually("the lookup-key listing shows its agreements", || async {
        let by_key_a = ListQuery {
            lookup_key: Some(key_a.clone()),
            ..query(100)
        };
        same(
            page_ids(&list_pages(store, by_key_a).await),
            key_a_ids.clone(),
        )
    })
    .await;
    for lookup_key in [None, Some(key_a.clone())] {
        eventually(
            "the other tenant's listings show its agreements",
            || async {
                let theirs = ListQuery {
                    tenant: other_tenant.clone(),
                    lookup_key: lookup_key.clone(),
                    ..query(100)
                };
                let ids: HashSet<String> = page_ids(&list_pages(store, theirs).await)
                    .into_iter()
                    .collect();
                same(ids, foreign.clone())
            },
        )
        .await;
    }

    let pages = list_pages(store, query(10)).await;
    assert_eq!(page_sizes(&pages), vec![10, 10, 5]);
    assert_eq!(page_ids(&pages), newest_first(&|_| true));
    for agreement in pages.iter().flatten() {
        assert_eq!(
            Some(agreement),
            stored.get(&agreement.id),
            "listed as stored"
        );
    }
    assert_eq!(page_sizes(&list_pages(store, query(5)).await), vec![5; 5]);
    assert_eq!(page_sizes(&list_pages(store, query(25)).await), vec![25]);
    assert_eq!(page_sizes(&list_pages(store, query(100)).await), vec![25]);

    let by_key_a = ListQuery {
        lookup_key: Some(key_a.clone()),
        ..query(4)
    };
    let pages = list_pages(store, by_key_a.clone()).await;
    assert_eq!(page_sizes(&pages), vec![4, 4, 1]);
    assert_eq!(page_ids(&pages), newest_first(&|i| i % 3 == 0));

    let pending = ListQuery {
        status: Some(Status::Pending),
        ..query(3)
    };
    let pages = list_pages(store, pending).await;
    assert_eq!(page_sizes(&pages), vec![3, 3, 1]);
    assert_eq!(page_ids(&pages), newest_first(&|i| i % 4 == 0));
    assert!(pages
        .iter()
        .flatten()
        .all(|agreement| agreement.status == Status::Pending));

    let drafts = ListQuery {
        status: Some(Status::Draft),
        ..query(10)
    };
    let pages = list_pages(store, drafts).await;
    assert_eq!(page_sizes(&pages), vec![10, 8]);
    assert_eq!(page_ids(&pages), newest_first(&|i| i % 4 != 0));

    let pending_with_key_a = ListQuery {
        status: Some(Status::Pending),
        ..by_key_a.clone()
    };
    let pages = list_pages(
        store,
        ListQuery {
            limit: 2,
            ..pending_with_key_a
        },
    )
    .await;
    assert_eq!(page_sizes(&pages), vec![2, 1]);
    assert_eq!(page_ids(&pages), newest_first(&|i| i % 12 == 0));

    let unknown_key = ListQuery {
        lookup_key: Some(unique("lookup")),
        ..query(10)
    };
    assert_eq!(page_sizes(&list_pages(store, unknown_key).await), vec![0]);
    let nobody = ListQuery {
        tenant: unique("tenant"),
        ..query(10)
    };
    assert_eq!(page_sizes(&list_pages(store, nobody).await), vec![0]);

    // The other tenant sees its own only, through both indexes.
    let theirs = ListQuery {
        tenant: other_tenant.clone(),
        ..query(10)
    };
    let ids: HashSet<String> = page_ids(&list_pages(store, theirs.clone()).await)
        .into_iter()
        .collect();
    assert_eq!(ids, foreign);
    let theirs_by_key = ListQuery {
        lookup_key: Some(key_a.clone()),
        ..theirs
    };
    let ids: HashSet<String> = page_ids(&list_pages(store, theirs_by_key).await)
        .into_iter()
        .collect();
    assert_eq!(ids, foreign);

    // Same created_at: the id breaks the tie, descending.
    let tied_tenant = unique("tenant");
    let base = unique("agr");
    for suffix in ["b", "c", "a"] {
        let creation = created(
            &format!("{base}-{suffix}"),
            &tied_tenant,
            input(1, None, None),
            now,
        );
        write(store, create_commit(creation)).await;
    }
    eventually(
        "the tied tenant's listing shows its 3 agreements",
        || async {
            let tied = ListQuery {
                tenant: tied_tenant.clone(),
                ..query(100)
            };
            same(page_sizes(&list_pages(store, tied).await), vec![3])
        },
    )
    .await;
    let pages = list_pages(
        store,
        ListQuery {
            tenant: tied_tenant,
            ..query(2)
        },
    )
    .await;
    assert_eq!(page_sizes(&pages), vec![2, 1]);
    assert_eq!(
        page_ids(&pages),
        vec![
            format!("{base}-c"),
            format!("{base}-b"),
            format!("{base}-a")
        ]
    );
}
