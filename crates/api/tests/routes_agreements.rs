//! The agreement routes of SPEC section 3: create, get, list, patch, lifecycle, history, with
//! `ETag` / `If-Match` and `Idempotency-Key`.

mod support;

use std::collections::HashSet;

use chrono::Duration;
use http::Method;
use serde_json::{json, Value};

use support::*;

// ---------------------------------------------------------------------------------------------
// POST /v1/agreements

#[tokio::test]
async fn create_answers_201_with_location_etag_and_a_draft() {
    let h = Harness::new();
    let reply = h.post("/v1/agreements", &ready_body(true)).await;
    let data = reply.expect_agreement(201);

    let id = data["id"].as_str().unwrap();
    assert_eq!(
        reply.header("location"),
        Some(format!("/v1/agreements/{id}").as_str())
    );
    assert_eq!(reply.header("etag"), Some("\"1\""));
    assert!(
        id.len() >= 20
            && id
                .bytes()
                .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit()),
        "opaque, URL-safe, unguessable id: {id}"
    );
    expect_row(data, "draft", Value::Null, "WAITING");
    assert_eq!(data["journey_stopped_reason"], Value::Null);
    assert_eq!(data["version"], 1);
    assert_eq!(data["test_mode"], true);
    assert_eq!(data["trust_level"], "AES");
    assert_eq!(data["cancellation_reason"], Value::Null);
    assert_eq!(data["contract"]["contract_id"], "C-1");
    assert_eq!(data["contract"]["proposal_id"], "P-1");
    assert_eq!(
        data["contract"]["bank_information"]["account_holder"],
        "Ada Lovelace"
    );
    assert_eq!(data["issuer"]["role"], "observer");
    assert_eq!(data["observers"][0]["scope"], "cc");
    assert_eq!(data["documents"]["main"]["filename"], "lease.pdf");
    assert_eq!(data["documents"]["signed_document"], Value::Null);
    assert_eq!(data["communication"]["default_locale"], "fr-FR");
    assert_eq!(data["metadata"]["lookup_key"], "lease-42");
    assert_eq!(data["expires_in_days"], 120, "SPEC default: 120 days");
    assert_eq!(data["sent_at"], Value::Null);
    assert_eq!(data["expires_at"], Value::Null);
    assert_eq!(data["completed_at"], Value::Null);
    assert_eq!(parse_time(&data["created_at"]), h.now());
    assert_eq!(parse_time(&data["updated_at"]), h.now());
    assert!(
        data["created_at"].as_str().unwrap().ends_with('Z'),
        "UTC ISO 8601"
    );
    for participant in data["participants"].as_array().unwrap() {
        assert_eq!(participant["status"], "SIGNATURE_PENDING");
        assert_eq!(participant["identity_check_failures"], 0);
        assert_eq!(participant["signed_at"], Value::Null);
        assert_eq!(participant["signing_group"], 1);
    }
    assert_eq!(participant(data, "bob")["role"], "approver");
    // Internal fields are not part of the resource.
    assert!(data.get("tenant").is_none(), "{data:#}");
    assert!(data.get("history_len").is_none(), "{data:#}");

    // The Location names the agreement as GET shows it.
    let fetched = h.agreement(id).await;
    assert_eq!(&fetched, data);
}

#[tokio::test]
async fn create_with_an_empty_body_makes_a_default_draft() {
    let h = Harness::new();
    for body in ["", "{}"] {
        let reply = h
            .send(Call::new(Method::POST, "/v1/agreements").text(body))
            .await;
        let data = reply.expect_agreement(201);
        expect_row(data, "draft", Value::Null, "WAITING");
        assert_eq!(data["test_mode"], false);
        assert_eq!(data["participants"], json!([]));
        assert_eq!(data["expires_in_days"], 120);
    }
}

#[tokio::test]
async fn the_iban_is_stored_in_its_electronic_form() {
    assert!(mod97_holds(IBAN) && mod97_holds(IBAN_DE) && !mod97_holds(BAD_IBAN));
    let h = Harness::new();
    let data = h.create(&ready_body(false)).await;
    assert_eq!(
        data["contract"]["bank_information"]["iban"],
        "FR1420041010050500013M02606"
    );
}

#[tokio::test]
async fn server_generated_ids_are_distinct() {
    let h = Harness::new();
    let mut ids = HashSet::new();
    for _ in 0..20 {
        assert!(ids.insert(h.create_id(&json!({})).await));
    }
}

// ---------------------------------------------------------------------------------------------
// GET /v1/agreements/{id}

#[tokio::test]
async fn get_returns_the_agreement_with_its_etag() {
    let h = Harness::new();
    let id = h.create_id(&ready_body(false)).await;
    let reply = h.get(&format!("/v1/agreements/{id}")).await;
    let data = reply.expect_agreement(200);
    assert_eq!(data["id"], id.as_str());
    assert_eq!(reply.header("etag"), Some("\"1\""));
    assert!(
        reply.header("location").is_none(),
        "Location is for 201 only"
    );
}

#[tokio::test]
async fn get_of_an_unknown_id_is_agreement_not_found() {
    let h = Harness::new();
    for id in ["doesnotexist0000000000000", "x", "a-b_c"] {
        let reply = h.get(&format!("/v1/agreements/{id}")).await;
        reply.expect_error(404, "AGREEMENT_NOT_FOUND");
    }
}

// ---------------------------------------------------------------------------------------------
// GET /v1/agreements

async fn list(h: &Harness, query: &str) -> Reply {
    h.get(&format!("/v1/agreements{query}")).await
}

fn ids_of(reply: &Reply) -> Vec<String> {
    assert_eq!(reply.status, 200, "{}", reply.text);
    assert_eq!(reply.json["version"], "1.0");
    assert_eq!(reply.json["result_type"], "list");
    assert_eq!(reply.json["resource_type"], "agreement");
    assert!(
        reply.json.get("next_cursor").is_some(),
        "lists carry next_cursor"
    );
    reply
        .data()
        .as_array()
        .unwrap()
        .iter()
        .map(|a| a["id"].as_str().unwrap().to_owned())
        .collect()
}

/// Creates `n` agreements one second apart; returns their ids oldest first.
async fn create_series(h: &Harness, n: usize, body: &Value) -> Vec<String> {
    let mut ids = Vec::new();
    for _ in 0..n {
        ids.push(h.create_id(body).await);
        h.advance(Duration::seconds(1));
    }
    ids
}

#[tokio::test]
async fn list_is_newest_first() {
    let h = Harness::new();
    let mut ids = create_series(&h, 4, &json!({})).await;
    ids.reverse();
    let reply = list(&h, "").await;
    assert_eq!(ids_of(&reply), ids);
    assert_eq!(reply.json["next_cursor"], Value::Null);
    // Agreements in the list look as GET shows them.
    assert_eq!(reply.data()[0], h.agreement(&ids[0]).await);
}

#[tokio::test]
async fn list_of_a_tenant_without_agreements_is_empty() {
    let h = Harness::new();
    h.create(&json!({})).await;
    let reply = h
        .send(Call::new(Method::GET, "/v1/agreements").key(KEY_B))
        .await;
    assert!(ids_of(&reply).is_empty());
    assert_eq!(reply.json["next_cursor"], Value::Null);
}

#[tokio::test]
async fn list_filters_by_lookup_key_and_by_status() {
    let h = Harness::new();
    let mut ready_a = ready_body(true);
    ready_a["metadata"]["lookup_key"] = json!("customer-a");
    let mut ready_b = ready_body(true);
    ready_b["metadata"]["lookup_key"] = json!("customer-b");

    let a_draft = h.create_id(&ready_a).await;
    h.advance(Duration::seconds(1));
    let a_pending = h.sent(&ready_a).await;
    h.advance(Duration::seconds(1));
    let b_pending = h.sent(&ready_b).await;
    h.advance(Duration::seconds(1));
    let no_key = h.create_id(&json!({})).await;

    assert_eq!(
        ids_of(&list(&h, "?lookup_key=customer-a").await),
        vec![a_pending.clone(), a_draft.clone()]
    );
    assert_eq!(
        ids_of(&list(&h, "?status=pending").await),
        vec![b_pending.clone(), a_pending.clone()]
    );
    assert_eq!(
        ids_of(&list(&h, "?status=draft").await),
        vec![no_key.clone(), a_draft.clone()]
    );
    assert_eq!(
        ids_of(&list(&h, "?lookup_key=customer-a&status=pending").await),
        vec![a_pending.clone()]
    );
    assert!(ids_of(&list(&h, "?lookup_key=customer-c").await).is_empty());
    assert!(ids_of(&list(&h, "?status=fulfilled").await).is_empty());
    // Percent-encoded values are decoded as lambda_http decodes rawQueryString.
    let spaced = json!({"metadata": {"lookup_key": "lease 7/a"}});
    let spaced_id = h.create_id(&spaced).await;
    assert_eq!(
        ids_of(&list(&h, "?lookup_key=lease%207%2Fa").await),
        vec![spaced_id]
    );
}

#[tokio::test]
async fn list_status_filter_follows_the_current_status() {
    let h = Harness::new();
    let id = h.sent(&ready_body(true)).await;
    assert_eq!(ids_of(&list(&h, "?status=pending").await), vec![id.clone()]);
    h.lifecycle(
        &id,
        &json!({"lifecycle_state": "cancelled", "input": {"reason": "invalid_email"}}),
    )
    .await
    .expect_agreement(200);
    assert!(ids_of(&list(&h, "?status=pending").await).is_empty());
    assert_eq!(ids_of(&list(&h, "?status=cancelled").await), vec![id]);
}

#[tokio::test]
async fn list_paginates_with_a_cursor_across_pages() {
    let h = Harness::new();
    let mut all = create_series(&h, 5, &json!({"metadata": {"lookup_key": "k"}})).await;
    all.reverse();

    for query in ["?limit=2", "?limit=2&lookup_key=k"] {
        let mut seen = Vec::new();
        let mut pages = 0;
        let mut path = query.to_owned();
        loop {
            let reply = list(&h, &path).await;
            let page = ids_of(&reply);
            assert!(page.len() <= 2, "{page:?}");
            seen.extend(page);
            pages += 1;
            match reply.json["next_cursor"].as_str() {
                Some(cursor) => {
                    assert!(
                        cursor
                            .bytes()
                            .all(|b| b.is_ascii_alphanumeric() || b"-_.~".contains(&b)),
                        "cursor needs no escaping in a query: {cursor}"
                    );
                    path = format!("{query}&cursor={cursor}");
                }
                None => break,
            }
            assert!(pages < 10, "pagination does not end");
        }
        assert_eq!(pages, 3, "{query}");
        assert_eq!(seen, all, "{query}: every agreement once, newest first");
    }
}

#[tokio::test]
async fn a_page_exactly_full_at_the_end_has_no_next_cursor_or_an_empty_next_page() {
    let h = Harness::new();
    create_series(&h, 4, &json!({})).await;
    let first = list(&h, "?limit=2").await;
    let cursor = first.json["next_cursor"].as_str().unwrap().to_owned();
    let second = list(&h, &format!("?limit=2&cursor={cursor}")).await;
    assert_eq!(ids_of(&second).len(), 2);
    match second.json["next_cursor"].as_str() {
        None => {}
        Some(cursor) => {
            let third = list(&h, &format!("?limit=2&cursor={cursor}")).await;
            assert!(ids_of(&third).is_empty());
            assert_eq!(third.json["next_cursor"], Value::Null);
        }
    }
}

#[tokio::test]
async fn list_pagination_is_stable_when_agreements_are_created_meanwhile() {
    let h = Harness::new();
    let mut older = create_series(&h, 3, &json!({})).await;
    older.reverse();
    let first = list(&h, "?limit=2").await;
    assert_eq!(ids_of(&first), older[..2].to_vec());
    let cursor = first.json["next_cursor"].as_str().unwrap().to_owned();
    // A newer agreement does not shift the pages already walked.
    h.create(&json!({})).await;
    let second = list(&h, &format!("?limit=2&cursor={cursor}")).await;
    assert_eq!(ids_of(&second), older[2..].to_vec());
}

#[tokio::test]
async fn list_limit_bounds() {
    let h = Harness::new();
    create_series(&h, 3, &json!({})).await;
    assert_eq!(ids_of(&list(&h, "?limit=1").await).len(), 1);
    assert_eq!(ids_of(&list(&h, "?limit=100").await).len(), 3);
    assert_eq!(ids_of(&list(&h, "").await).len(), 3);
    for bad in [
        "?limit=0",
        "?limit=-1",
        "?limit=abc",
        "?limit=",
        "?limit=2.5",
        "?limit=1000000",
        "?limit=99999999999999999999999",
    ] {
        let reply = list(&h, bad).await;
        let error = reply.expect_error(400, "INVALID_REQUEST");
        assert!(
            error["message"].as_str().unwrap().contains("limit"),
            "{bad}: {error}"
        );
    }
}

#[tokio::test]
async fn list_with_a_bad_cursor_or_status_is_invalid_request() {
    let h = Harness::new();
    create_series(&h, 3, &json!({})).await;
    for bad in [
        "?cursor=garbage",
        "?cursor=",
        "?cursor=eyJ4IjoxfQ", // base64url of {"x":1}
        "?cursor=%00%01",
        "?status=signed",
        "?status=PENDING",
        "?status=",
    ] {
        list(&h, bad).await.expect_error(400, "INVALID_REQUEST");
    }
}

// ---------------------------------------------------------------------------------------------
// PATCH /v1/agreements/{id}

#[tokio::test]
async fn patch_merges_into_the_agreement_and_bumps_version_and_etag() {
    let h = Harness::new();
    let id = h.create_id(&ready_body(true)).await;
    let reply = h
        .patch(
            &format!("/v1/agreements/{id}"),
            &json!({
                "metadata": {"lookup_key": "lease-43"},
                "contract": {"bank_information": {"iban": IBAN_DE, "bic": null}},
                "observers": [],
                "issuer": null,
                "trust_level": "QES",
                "expires_in_days": 30
            }),
        )
        .await;
    let data = reply.expect_agreement(200);
    assert_eq!(data["version"], 2);
    assert_eq!(reply.header("etag"), Some("\"2\""));
    // Changed.
    assert_eq!(data["metadata"]["lookup_key"], "lease-43");
    assert_eq!(data["contract"]["bank_information"]["iban"], IBAN_DE);
    assert_eq!(data["contract"]["bank_information"]["bic"], Value::Null);
    assert_eq!(data["observers"], json!([]));
    assert_eq!(data["issuer"], Value::Null);
    assert_eq!(data["trust_level"], "QES");
    assert_eq!(data["expires_in_days"], 30);
    // Kept: merge patch leaves what it does not name.
    assert_eq!(
        data["metadata"]["success_callback_url"],
        "https://leasing.example/done"
    );
    assert_eq!(
        data["contract"]["bank_information"]["account_holder"],
        "Ada Lovelace"
    );
    assert_eq!(data["contract"]["contract_id"], "C-1");
    assert_eq!(data["participants"].as_array().unwrap().len(), 2);
    assert_eq!(participant(data, "ada")["email"], "ada@example.com");
    assert_eq!(data["documents"]["main"]["filename"], "lease.pdf");
    assert_eq!(data["communication"]["default_locale"], "fr-FR");
    assert_eq!(data["test_mode"], true);
    assert_eq!(data["status"], "draft");

    assert_eq!(h.agreement(&id).await, *data);
    let history = h.history(&id).await;
    assert_eq!(types(&history), ["AgreementCreated", "AgreementUpdated"]);
    assert_eq!(history[1]["version"], 2);
}

#[tokio::test]
async fn patch_replaces_arrays_whole() {
    let h = Harness::new();
    let id = h.create_id(&ready_body(true)).await;
    let reply = h
        .patch(
            &format!("/v1/agreements/{id}"),
            &json!({"participants": [
                {"id": "cyd", "name": "Cyd", "email": "cyd@example.com", "signing_group": 2}
            ]}),
        )
        .await;
    let data = reply.expect_agreement(200);
    let participants = data["participants"].as_array().unwrap();
    assert_eq!(participants.len(), 1);
    assert_eq!(participants[0]["id"], "cyd");
    assert_eq!(participants[0]["role"], "signer", "role defaults to signer");
    assert_eq!(participants[0]["signing_group"], 2);
}

/// Fixed in this change: the patch used to be shape-checked against an empty agreement, so this
/// was refused with 400 `missing field mime_type`.
#[tokio::test]
async fn patch_can_change_one_field_of_a_nested_object_with_required_fields() {
    let h = Harness::new();
    let id = h.create_id(&ready_body(true)).await;
    let reply = h
        .patch(
            &format!("/v1/agreements/{id}"),
            &json!({"documents": {"main": {"filename": "lease-v2.pdf"}}}),
        )
        .await;
    let data = reply.expect_agreement(200);
    assert_eq!(data["documents"]["main"]["filename"], "lease-v2.pdf");
    assert_eq!(data["documents"]["main"]["mime_type"], "application/pdf");

    let reply = h
        .patch(
            &format!("/v1/agreements/{id}"),
            &json!({"communication": {"default_locale": "de-DE"}}),
        )
        .await;
    let data = reply.expect_agreement(200);
    assert_eq!(data["communication"]["default_locale"], "de-DE");
    assert_eq!(data["communication"]["send_emails"], false);
}

#[tokio::test]
async fn patch_that_changes_nothing_keeps_the_version() {
    let h = Harness::new();
    let id = h.create_id(&ready_body(true)).await;
    let reply = h
        .patch(
            &format!("/v1/agreements/{id}"),
            &json!({"metadata": {"lookup_key": "lease-42"}}),
        )
        .await;
    assert_eq!(reply.expect_agreement(200)["version"], 1);
    assert_eq!(h.history_types(&id).await, ["AgreementCreated"]);
}

#[tokio::test]
async fn patch_is_allowed_while_open_and_refused_once_pending_or_terminal() {
    let h = Harness::new();
    let id = h.sent(&ready_body(true)).await;
    let path = format!("/v1/agreements/{id}");
    let patch = json!({"metadata": {"lookup_key": "later"}});

    let before = h.agreement(&id).await;
    let reply = h.patch(&path, &patch).await;
    reply.expect_error(409, "AGREEMENT_NOT_EDITABLE");
    assert_eq!(h.agreement(&id).await, before, "nothing changed");

    h.lifecycle(&id, &json!({"lifecycle_state": "open"}))
        .await
        .expect_agreement(200);
    let reply = h.patch(&path, &patch).await;
    assert_eq!(
        reply.expect_agreement(200)["metadata"]["lookup_key"],
        "later"
    );

    h.lifecycle(
        &id,
        &json!({"lifecycle_state": "cancelled", "input": {"reason": "invalid_document"}}),
    )
    .await
    .expect_agreement(200);
    h.patch(&path, &patch)
        .await
        .expect_error(409, "AGREEMENT_NOT_EDITABLE");
}

#[tokio::test]
async fn patch_with_a_bad_iban_is_validation_failed_and_changes_nothing() {
    let h = Harness::new();
    let id = h.create_id(&ready_body(true)).await;
    let before = h.agreement(&id).await;
    let reply = h
        .patch(
            &format!("/v1/agreements/{id}"),
            &json!({"contract": {"bank_information": {"iban": BAD_IBAN}}}),
        )
        .await;
    let error = reply.expect_error(422, "VALIDATION_FAILED");
    assert_eq!(
        error["details"][0]["field"],
        "contract.bank_information.iban"
    );
    assert_eq!(error["details"][0]["type"], "VALIDATION_FAILED");
    assert_eq!(h.agreement(&id).await, before);
    assert_eq!(h.history_types(&id).await, ["AgreementCreated"]);
}

#[tokio::test]
async fn patch_refuses_server_owned_and_unknown_fields_and_wrong_types() {
    let h = Harness::new();
    let id = h.create_id(&ready_body(true)).await;
    let path = format!("/v1/agreements/{id}");
    for patch in [
        json!({"status": "fulfilled"}),
        json!({"version": 7}),
        json!({"id": "other"}),
        json!({"created_at": "2020-01-01T00:00:00Z"}),
        json!({"signature_status": "SIGNATURE_COMPLETE"}),
        json!({"documents": {"signed_document": main_document()}}),
        json!({"colour": "blue"}),
        json!({"expires_in_days": "ten"}),
        json!({"participants": {"id": "x"}}),
        json!({"trust_level": "XES"}),
        json!({"participants": [{"name": "Z", "role": "witness"}]}),
    ] {
        let reply = h.patch(&path, &patch).await;
        reply.expect_error(400, "INVALID_REQUEST");
    }
    for body in ["[]", "\"x\"", "{", "null"] {
        let reply = h.send(Call::new(Method::PATCH, &path).text(body)).await;
        reply.expect_error(400, "INVALID_REQUEST");
    }
    assert_eq!(h.agreement(&id).await["version"], 1);
}

#[tokio::test]
async fn patch_cannot_switch_test_mode() {
    let h = Harness::new();
    let id = h.create_id(&ready_body(false)).await;
    let reply = h
        .patch(&format!("/v1/agreements/{id}"), &json!({"test_mode": true}))
        .await;
    reply.expect_error(422, "VALIDATION_FAILED");
    assert_eq!(h.agreement(&id).await["test_mode"], false);
}

#[tokio::test]
async fn patch_of_an_unknown_agreement_is_not_found() {
    let h = Harness::new();
    h.patch(
        "/v1/agreements/nosuchagreement0000000000",
        &json!({"metadata": {"lookup_key": "x"}}),
    )
    .await
    .expect_error(404, "AGREEMENT_NOT_FOUND");
}

// ---------------------------------------------------------------------------------------------
// If-Match

#[tokio::test]
async fn if_match_with_the_current_version_succeeds_and_a_stale_one_is_412() {
    let h = Harness::new();
    let id = h.create_id(&ready_body(true)).await;
    let path = format!("/v1/agreements/{id}");

    let ok = h
        .send(
            Call::new(Method::PATCH, &path)
                .header("if-match", "\"1\"")
                .json(&json!({"metadata": {"lookup_key": "v2"}})),
        )
        .await;
    assert_eq!(ok.expect_agreement(200)["version"], 2);

    // The same If-Match again is now stale.
    let stale = h
        .send(
            Call::new(Method::PATCH, &path)
                .header("if-match", "\"1\"")
                .json(&json!({"metadata": {"lookup_key": "v3"}})),
        )
        .await;
    stale.expect_error(412, "VERSION_MISMATCH");
    assert_eq!(h.agreement(&id).await["metadata"]["lookup_key"], "v2");

    // Lifecycle honours it too.
    let stale = h
        .send(
            Call::new(Method::POST, &format!("{path}/lifecycle"))
                .header("if-match", "\"1\"")
                .json(&json!({"lifecycle_state": "pending"})),
        )
        .await;
    stale.expect_error(412, "VERSION_MISMATCH");
    assert_eq!(h.agreement(&id).await["status"], "draft");
    let ok = h
        .send(
            Call::new(Method::POST, &format!("{path}/lifecycle"))
                .header("if-match", "\"2\"")
                .json(&json!({"lifecycle_state": "pending"})),
        )
        .await;
    let data = ok.expect_agreement(200);
    assert_eq!(data["status"], "pending");
    assert_eq!(ok.header("etag"), Some("\"3\""));
}

#[tokio::test]
async fn if_match_takes_the_etag_as_sent_weak_or_star() {
    let h = Harness::new();
    let id = h.create_id(&ready_body(true)).await;
    let path = format!("/v1/agreements/{id}");
    let etag = h.get(&path).await.header("etag").unwrap().to_owned();
    // The ETag exactly as received.
    let reply = h
        .send(
            Call::new(Method::PATCH, &path)
                .header("if-match", &etag)
                .json(&json!({"metadata": {"lookup_key": "a"}})),
        )
        .await;
    assert_eq!(reply.expect_agreement(200)["version"], 2);
    let reply = h
        .send(
            Call::new(Method::PATCH, &path)
                .header("if-match", "*")
                .json(&json!({"metadata": {"lookup_key": "b"}})),
        )
        .await;
    assert_eq!(reply.expect_agreement(200)["version"], 3);
    let reply = h
        .send(
            Call::new(Method::PATCH, &path)
                .header("if-match", "W/\"3\"")
                .json(&json!({"metadata": {"lookup_key": "c"}})),
        )
        .await;
    assert_eq!(reply.expect_agreement(200)["version"], 4);
    let reply = h
        .send(
            Call::new(Method::PATCH, &path)
                .header("if-match", "\"not-a-version\"")
                .json(&json!({"metadata": {"lookup_key": "d"}})),
        )
        .await;
    reply.expect_error(400, "INVALID_REQUEST");
    assert_eq!(h.agreement(&id).await["version"], 4);
}

// ---------------------------------------------------------------------------------------------
// POST /v1/agreements/{id}/lifecycle

#[tokio::test]
async fn pending_sends_for_signature() {
    let h = Harness::new();
    let id = h.create_id(&ready_body(true)).await;
    let reply = h
        .lifecycle(&id, &json!({"lifecycle_state": "pending"}))
        .await;
    let data = reply.expect_agreement(200);
    expect_row(data, "pending", json!("SIGNATURE_ONGOING"), "WAITING");
    assert_eq!(data["version"], 2);
    assert_eq!(parse_time(&data["sent_at"]), h.now());
    assert_eq!(
        parse_time(&data["expires_at"]),
        h.now() + Duration::days(120),
        "expires_at = sent_at + expires_in_days"
    );
    for p in data["participants"].as_array().unwrap() {
        assert_eq!(p["status"], "SIGNATURE_PENDING");
    }
    let history = h.history(&id).await;
    assert_eq!(
        types(&history),
        [
            "AgreementCreated",
            "AgreementSentForSignature",
            "SigningGroupInvited"
        ]
    );
}

#[tokio::test]
async fn pending_uses_expires_in_days() {
    let h = Harness::new();
    let mut body = ready_body(true);
    body["expires_in_days"] = json!(7);
    let id = h.sent(&body).await;
    let data = h.agreement(&id).await;
    assert_eq!(
        parse_time(&data["expires_at"]) - parse_time(&data["sent_at"]),
        Duration::days(7)
    );
}

#[tokio::test]
async fn expires_in_days_outside_1_to_365_is_validation_failed() {
    let h = Harness::new();
    for days in [0, 366, 1000] {
        let reply = h
            .post("/v1/agreements", &json!({"expires_in_days": days}))
            .await;
        let error = reply.expect_error(422, "VALIDATION_FAILED");
        assert_eq!(error["details"][0]["field"], "expires_in_days");
    }
    for days in [1, 365] {
        let data = h.create(&json!({"expires_in_days": days})).await;
        assert_eq!(data["expires_in_days"], days);
    }
}

#[tokio::test]
async fn open_pauses_and_resets_the_signing() {
    let h = Harness::new();
    let id = h.sent(&ready_body(true)).await;
    h.act(&id, "ada", "sign").await;
    h.act(&id, "bob", "fail-identity").await;
    let signed = h.agreement(&id).await;
    assert_eq!(participant(&signed, "ada")["status"], "SIGNATURE_COMPLETE");
    assert_eq!(participant(&signed, "bob")["identity_check_failures"], 1);

    let reply = h.lifecycle(&id, &json!({"lifecycle_state": "open"})).await;
    let data = reply.expect_agreement(200);
    expect_row(data, "open", Value::Null, "WAITING");
    assert_eq!(data["expires_at"], Value::Null);
    for p in data["participants"].as_array().unwrap() {
        assert_eq!(p["status"], "SIGNATURE_PENDING", "{p}");
        assert_eq!(p["identity_check_failures"], 0, "{p}");
        assert_eq!(p["signed_at"], Value::Null, "{p}");
    }
    assert_eq!(
        h.history_types(&id).await.last().map(String::as_str),
        Some("AgreementReopened")
    );

    // Editable again, and can be sent again.
    h.patch(
        &format!("/v1/agreements/{id}"),
        &json!({"metadata": {"lookup_key": "second-round"}}),
    )
    .await
    .expect_agreement(200);
    let reply = h
        .lifecycle(&id, &json!({"lifecycle_state": "pending"}))
        .await;
    let data = reply.expect_agreement(200);
    assert_eq!(data["status"], "pending");
    assert_eq!(parse_time(&data["sent_at"]), h.now());
}

#[tokio::test]
async fn cancel_from_draft_open_and_pending_with_every_reason() {
    let h = Harness::new();
    let reasons = [
        (json!({"reason": "invalid_document"}), "invalid_document"),
        (
            json!({"reason": "invalid_participant"}),
            "invalid_participant",
        ),
        (json!({"reason": "invalid_email"}), "invalid_email"),
        (
            json!({"reason": "custom", "description": "customer withdrew the lease request"}),
            "customer withdrew the lease request",
        ),
    ];
    for (from, (input, shown)) in ["draft", "open", "pending", "draft"].iter().zip(reasons) {
        let id = h.create_id(&ready_body(true)).await;
        if *from != "draft" {
            h.lifecycle(&id, &json!({"lifecycle_state": "pending"}))
                .await
                .expect_agreement(200);
        }
        if *from == "open" {
            h.lifecycle(&id, &json!({"lifecycle_state": "open"}))
                .await
                .expect_agreement(200);
        }
        assert_eq!(h.agreement(&id).await["status"], *from);
        let reply = h
            .lifecycle(
                &id,
                &json!({"lifecycle_state": "cancelled", "input": input}),
            )
            .await;
        let data = reply.expect_agreement(200);
        expect_row(data, "cancelled", json!("SIGNATURE_CANCELLED"), "STOPPED");
        assert_eq!(data["cancellation_reason"], shown, "from {from}");
        assert_eq!(data["journey_stopped_reason"], "SIGNATURE_CANCELLED");
        let history = h.history(&id).await;
        let last = history.last().unwrap();
        assert_eq!(last["type"], "AgreementCancelled");
        assert_eq!(last["reason"], shown);
    }
}

#[tokio::test]
async fn the_state_it_is_already_in_is_200_without_change() {
    let h = Harness::new();
    let id = h.sent(&ready_body(true)).await;
    let before = h.agreement(&id).await;
    let reply = h
        .lifecycle(&id, &json!({"lifecycle_state": "pending"}))
        .await;
    assert_eq!(reply.expect_agreement(200), &before);
    assert_eq!(
        reply.header("etag"),
        Some(format!("\"{}\"", before["version"]).as_str())
    );

    h.lifecycle(&id, &json!({"lifecycle_state": "open"}))
        .await
        .expect_agreement(200);
    let before = h.agreement(&id).await;
    let reply = h.lifecycle(&id, &json!({"lifecycle_state": "open"})).await;
    assert_eq!(reply.expect_agreement(200), &before);
    assert_eq!(h.history(&id).await.len(), 4);
}

#[tokio::test]
async fn impossible_transitions_are_409_invalid_transition() {
    let h = Harness::new();
    // draft -> open
    let draft = h.create_id(&ready_body(true)).await;
    h.lifecycle(&draft, &json!({"lifecycle_state": "open"}))
        .await
        .expect_error(409, "INVALID_TRANSITION");
    assert_eq!(h.agreement(&draft).await["version"], 1);

    // anything from a terminal status, the one it is in included
    let cancelled = h.create_id(&ready_body(true)).await;
    h.lifecycle(
        &cancelled,
        &json!({"lifecycle_state": "cancelled", "input": {"reason": "invalid_email"}}),
    )
    .await
    .expect_agreement(200);
    let fulfilled = h.sent(&ready_body(true)).await;
    h.act(&fulfilled, "ada", "sign").await;
    h.act(&fulfilled, "bob", "sign").await;
    assert_eq!(h.agreement(&fulfilled).await["status"], "fulfilled");

    for id in [&cancelled, &fulfilled] {
        let before = h.agreement(id).await;
        for body in [
            json!({"lifecycle_state": "pending"}),
            json!({"lifecycle_state": "open"}),
            json!({"lifecycle_state": "cancelled", "input": {"reason": "invalid_email"}}),
        ] {
            h.lifecycle(id, &body)
                .await
                .expect_error(409, "INVALID_TRANSITION");
        }
        assert_eq!(h.agreement(id).await, before);
    }
}

#[tokio::test]
async fn pending_reports_every_readiness_failure_at_once_and_changes_nothing() {
    let h = Harness::new();
    let id = h
        .create_id(&json!({
            "participants": [
                {"id": "a1", "name": "Approver One", "email": "one@example.com", "role": "approver"},
                {"id": "a2", "email": "not-an-email", "role": "approver"},
                {"id": "a3", "name": "Dup", "email": "ONE@example.com", "role": "approver"}
            ]
        }))
        .await;
    let before = h.agreement(&id).await;
    let history_before = h.history(&id).await;

    let reply = h
        .lifecycle(&id, &json!({"lifecycle_state": "pending"}))
        .await;
    assert_eq!(reply.status, 422, "{}", reply.text);
    let types: HashSet<String> = reply.detail_types().into_iter().collect();
    for expected in [
        "SIGNATORIES_UNDEFINED",
        "BANK_INFORMATION_UNDEFINED",
        "DOCUMENT_UNDEFINED",
        "INVALID_EMAIL",
        "INVALID_PARTICIPANT",
    ] {
        assert!(types.contains(expected), "{expected} in {}", reply.text);
    }
    // The type is one of the failures (SPEC lists the validation types as the 422 types).
    let error_type = reply.error()["type"].as_str().unwrap().to_owned();
    assert!(types.contains(&error_type), "{error_type}");
    reply.expect_error(422, &error_type);
    // Each detail says which field.
    for detail in reply.error()["details"].as_array().unwrap() {
        assert!(
            detail["field"].as_str().is_some_and(|f| !f.is_empty()),
            "{detail}"
        );
        assert!(
            detail["message"].as_str().is_some_and(|m| !m.is_empty()),
            "{detail}"
        );
    }
    let participants_fields: Vec<&str> = reply.error()["details"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|d| d["field"].as_str())
        .collect();
    assert!(
        participants_fields.contains(&"participants[1].name"),
        "{participants_fields:?}"
    );
    assert!(
        participants_fields.contains(&"participants[1].email"),
        "{participants_fields:?}"
    );
    assert!(
        participants_fields.contains(&"participants[2].email"),
        "duplicate email, case-insensitively: {participants_fields:?}"
    );

    assert_eq!(
        h.agreement(&id).await,
        before,
        "a failed request changes nothing"
    );
    assert_eq!(h.history(&id).await, history_before);
}

/// An edit of a request body.
type Edit = fn(&mut Value);

#[tokio::test]
async fn each_readiness_failure_alone_is_its_own_422_type() {
    let h = Harness::new();
    let cases: [(&str, Edit); 5] = [
        ("SIGNATORIES_UNDEFINED", |b: &mut Value| {
            b["participants"] =
                json!([{"id": "a", "name": "A", "email": "a@example.com", "role": "approver"}]);
        }),
        ("BANK_INFORMATION_UNDEFINED", |b: &mut Value| {
            b["contract"]["bank_information"] = Value::Null;
        }),
        ("DOCUMENT_UNDEFINED", |b: &mut Value| {
            b["documents"] = json!({"attachments": [main_document()]});
        }),
        ("INVALID_EMAIL", |b: &mut Value| {
            b["participants"][1]["email"] = json!("bob at example.com");
        }),
        ("INVALID_PARTICIPANT", |b: &mut Value| {
            b["participants"][1]["email"] = json!("Ada@Example.com");
        }),
    ];
    for (expected, edit) in cases {
        let mut body = ready_body(true);
        edit(&mut body);
        let id = h.create_id(&body).await;
        let reply = h
            .lifecycle(&id, &json!({"lifecycle_state": "pending"}))
            .await;
        reply.expect_error(422, expected);
        assert_eq!(
            reply.detail_types(),
            vec![expected.to_owned()],
            "{}",
            reply.text
        );
        assert_eq!(h.agreement(&id).await["status"], "draft");
    }
}

#[tokio::test]
async fn an_empty_signing_group_is_invalid_participant() {
    let h = Harness::new();
    let body = ready_with(
        json!([
            {"id": "a", "name": "A", "email": "a@example.com", "signing_group": 1},
            {"id": "c", "name": "C", "email": "c@example.com", "signing_group": 3}
        ]),
        json!({"enabled": true, "grouped": true}),
    );
    let id = h.create_id(&body).await;
    let reply = h
        .lifecycle(&id, &json!({"lifecycle_state": "pending"}))
        .await;
    reply.expect_error(422, "INVALID_PARTICIPANT");
}

#[tokio::test]
async fn invalid_cancellation_reasons_are_422_and_change_nothing() {
    let h = Harness::new();
    let id = h.sent(&ready_body(true)).await;
    let before = h.agreement(&id).await;
    for input in [
        json!({"reason": "custom", "description": "too short"}), // 9 characters
        json!({"reason": "custom", "description": "x".repeat(256)}),
        json!({"reason": "custom", "description": "          "}),
        json!({"reason": "custom"}),
        json!({"reason": "changed_my_mind"}),
        json!({"reason": "INVALID_EMAIL"}),
        json!({}),
    ] {
        let reply = h
            .lifecycle(
                &id,
                &json!({"lifecycle_state": "cancelled", "input": input}),
            )
            .await;
        reply.expect_error(422, "INVALID_CANCELLATION_REASON");
    }
    let reply = h
        .lifecycle(&id, &json!({"lifecycle_state": "cancelled"}))
        .await;
    reply.expect_error(422, "INVALID_CANCELLATION_REASON");
    assert_eq!(h.agreement(&id).await, before);
}

#[tokio::test]
async fn custom_descriptions_of_10_and_255_characters_are_accepted() {
    let h = Harness::new();
    for description in [
        "ten chars!".to_owned(),
        "y".repeat(255),
        // Characters, not bytes: ten accented letters are 20 bytes.
        "éééééééééé".to_owned(),
    ] {
        let id = h.create_id(&ready_body(true)).await;
        let reply = h
            .lifecycle(
                &id,
                &json!({"lifecycle_state": "cancelled",
                        "input": {"reason": "custom", "description": description}}),
            )
            .await;
        let data = reply.expect_agreement(200);
        assert_eq!(data["cancellation_reason"], description.as_str());
    }
}

#[tokio::test]
async fn lifecycle_bodies_that_are_not_requests_are_400() {
    let h = Harness::new();
    let id = h.create_id(&ready_body(true)).await;
    for body in [
        json!({"lifecycle_state": "signed"}),
        json!({"lifecycle_state": "PENDING"}),
        json!({"lifecycle_state": 1}),
        json!({}),
        json!({"lifecycle_state": "pending", "force": true}),
        json!([]),
        // serde reads a struct from an array by position: not a request of this API.
        json!(["pending"]),
        json!(["cancelled", {"reason": "invalid_email"}]),
    ] {
        h.lifecycle(&id, &body)
            .await
            .expect_error(400, "INVALID_REQUEST");
    }
    for text in ["", "{", "lifecycle_state=pending"] {
        h.send(Call::new(Method::POST, &format!("/v1/agreements/{id}/lifecycle")).text(text))
            .await
            .expect_error(400, "INVALID_REQUEST");
    }
    assert_eq!(h.agreement(&id).await["version"], 1);
}

#[tokio::test]
async fn lifecycle_of_an_unknown_agreement_is_not_found() {
    let h = Harness::new();
    h.lifecycle(
        "nosuchagreement0000000000",
        &json!({"lifecycle_state": "pending"}),
    )
    .await
    .expect_error(404, "AGREEMENT_NOT_FOUND");
}

// ---------------------------------------------------------------------------------------------
// GET /v1/agreements/{id}/history

#[tokio::test]
async fn history_is_oldest_first_with_gapless_sequences_and_versions() {
    let h = Harness::new();
    let id = h.create_id(&ready_body(true)).await;
    h.advance(Duration::minutes(1));
    h.patch(
        &format!("/v1/agreements/{id}"),
        &json!({"metadata": {"lookup_key": "x"}}),
    )
    .await
    .expect_agreement(200);
    h.advance(Duration::minutes(1));
    h.lifecycle(&id, &json!({"lifecycle_state": "pending"}))
        .await
        .expect_agreement(200);
    h.advance(Duration::minutes(1));
    h.act(&id, "ada", "sign").await;
    h.advance(Duration::minutes(1));
    h.act(&id, "bob", "sign").await;

    let reply = h.get(&format!("/v1/agreements/{id}/history")).await;
    assert_eq!(reply.status, 200);
    assert_eq!(reply.json["version"], "1.0");
    assert_eq!(reply.json["result_type"], "list");
    let history = reply.data().as_array().unwrap();
    assert_eq!(
        types(history),
        [
            "AgreementCreated",
            "AgreementUpdated",
            "AgreementSentForSignature",
            "SigningGroupInvited",
            "ParticipantSigned",
            "ParticipantSigned",
            "AgreementFulfilled",
        ]
    );
    for (index, entry) in history.iter().enumerate() {
        assert_eq!(entry["sequence"], json!(index as u64 + 1), "{entry}");
        assert!(entry["occurred_at"].as_str().unwrap().ends_with('Z'));
    }
    let versions: Vec<u64> = history
        .iter()
        .map(|e| e["version"].as_u64().unwrap())
        .collect();
    assert_eq!(
        versions,
        [1, 2, 3, 3, 4, 5, 5],
        "entries of one write share its version"
    );
    let times: Vec<_> = history
        .iter()
        .map(|e| parse_time(&e["occurred_at"]))
        .collect();
    assert!(times.windows(2).all(|w| w[0] <= w[1]), "oldest first");
    assert_eq!(history[4]["participant_id"], "ada");
    assert_eq!(history[5]["participant_id"], "bob");
    assert!(history[0].get("participant_id").is_none_or(Value::is_null));
    let agreement = h.agreement(&id).await;
    assert_eq!(agreement["version"], 5);
}

#[tokio::test]
async fn history_of_an_unknown_agreement_is_not_found() {
    let h = Harness::new();
    h.get("/v1/agreements/nosuchagreement0000000000/history")
        .await
        .expect_error(404, "AGREEMENT_NOT_FOUND");
}

// ---------------------------------------------------------------------------------------------
// Idempotency-Key

#[tokio::test]
async fn the_same_key_and_body_replay_the_first_response() {
    let h = Harness::new();
    let body = ready_body(true);
    let first = h
        .send(
            Call::new(Method::POST, "/v1/agreements")
                .header("idempotency-key", "order-1")
                .json(&body),
        )
        .await;
    let first_data = first.expect_agreement(201).clone();
    assert!(first.header("idempotent-replayed").is_none());

    h.advance(Duration::hours(1));
    let again = h
        .send(
            Call::new(Method::POST, "/v1/agreements")
                .header("idempotency-key", "order-1")
                .json(&body),
        )
        .await;
    let again_data = again.expect_agreement(201);
    assert_eq!(again_data, &first_data, "the first response, byte for byte");
    assert_eq!(again.text, first.text);
    assert_eq!(again.header("location"), first.header("location"));
    assert_eq!(again.header("etag"), first.header("etag"));
    assert_eq!(again.header("idempotent-replayed"), Some("true"));
    assert_ne!(
        again.request_id(),
        first.request_id(),
        "each response has its own request id"
    );

    // Only one agreement exists.
    let list = h.get("/v1/agreements").await;
    assert_eq!(list.data().as_array().unwrap().len(), 1);
}

#[tokio::test]
async fn the_same_key_with_another_body_is_422_idempotency_key_reused() {
    let h = Harness::new();
    let post = |body: Value| {
        Call::new(Method::POST, "/v1/agreements")
            .header("idempotency-key", "order-2")
            .json(&body)
    };
    h.send(post(json!({"metadata": {"lookup_key": "a"}})))
        .await
        .expect_agreement(201);
    h.send(post(json!({"metadata": {"lookup_key": "b"}})))
        .await
        .expect_error(422, "IDEMPOTENCY_KEY_REUSED");
    let list = h.get("/v1/agreements").await;
    assert_eq!(list.data().as_array().unwrap().len(), 1);
}

#[tokio::test]
async fn an_idempotency_key_lives_24_hours() {
    let h = Harness::new();
    let call = || {
        Call::new(Method::POST, "/v1/agreements")
            .header("idempotency-key", "order-3")
            .json(&json!({}))
    };
    let first = h.send(call()).await.expect_agreement(201)["id"].clone();
    h.advance(Duration::hours(24) - Duration::seconds(1));
    let replay = h.send(call()).await;
    assert_eq!(replay.expect_agreement(201)["id"], first);
    assert_eq!(replay.header("idempotent-replayed"), Some("true"));

    h.advance(Duration::seconds(2));
    let fresh = h.send(call()).await;
    let fresh_id = fresh.expect_agreement(201)["id"].clone();
    assert_ne!(fresh_id, first, "after 24 h the key is free again");
    assert!(fresh.header("idempotent-replayed").is_none());
    // And now the key holds the new response.
    let replay = h.send(call()).await;
    assert_eq!(replay.expect_agreement(201)["id"], fresh_id);

    // A different body after expiry is a new request, not a reuse.
    h.advance(Duration::hours(25));
    let other = h
        .send(
            Call::new(Method::POST, "/v1/agreements")
                .header("idempotency-key", "order-3")
                .json(&json!({"metadata": {"lookup_key": "z"}})),
        )
        .await;
    other.expect_agreement(201);
}

#[tokio::test]
async fn idempotency_keys_belong_to_a_tenant() {
    let h = Harness::new();
    let a = h
        .send(
            Call::new(Method::POST, "/v1/agreements")
                .header("idempotency-key", "shared")
                .json(&json!({})),
        )
        .await;
    let b = h
        .send(
            Call::new(Method::POST, "/v1/agreements")
                .key(KEY_B)
                .header("idempotency-key", "shared")
                .json(&json!({})),
        )
        .await;
    let a_id = a.expect_agreement(201)["id"].as_str().unwrap().to_owned();
    let b_id = b.expect_agreement(201)["id"].as_str().unwrap().to_owned();
    assert_ne!(a_id, b_id, "tenant B does not get tenant A's response");
    assert!(b.header("idempotent-replayed").is_none());
    let b_view = h
        .send(Call::new(Method::GET, &format!("/v1/agreements/{b_id}")).key(KEY_B))
        .await;
    b_view.expect_agreement(200);
}

#[tokio::test]
async fn lifecycle_honours_idempotency_keys() {
    let h = Harness::new();
    let id = h.create_id(&ready_body(true)).await;
    let path = format!("/v1/agreements/{id}/lifecycle");
    let call = |body: Value| {
        Call::new(Method::POST, &path)
            .header("idempotency-key", "send-1")
            .json(&body)
    };
    let first = h.send(call(json!({"lifecycle_state": "pending"}))).await;
    assert_eq!(first.expect_agreement(200)["version"], 2);

    // Meanwhile the agreement moves on.
    h.act(&id, "ada", "sign").await;
    assert_eq!(h.agreement(&id).await["version"], 3);

    let replay = h.send(call(json!({"lifecycle_state": "pending"}))).await;
    assert_eq!(replay.text, first.text, "the first response again");
    assert_eq!(replay.header("etag"), Some("\"2\""));
    assert_eq!(replay.header("idempotent-replayed"), Some("true"));

    h.send(call(json!({"lifecycle_state": "open"})))
        .await
        .expect_error(422, "IDEMPOTENCY_KEY_REUSED");
    assert_eq!(h.agreement(&id).await["status"], "pending");

    // The same key on another route is another request.
    h.send(
        Call::new(Method::POST, "/v1/agreements")
            .header("idempotency-key", "send-1")
            .json(&json!({})),
    )
    .await
    .expect_error(422, "IDEMPOTENCY_KEY_REUSED");
    assert_eq!(
        h.get("/v1/agreements")
            .await
            .data()
            .as_array()
            .unwrap()
            .len(),
        1
    );
}

#[tokio::test]
async fn an_unusable_idempotency_key_is_400() {
    let h = Harness::new();
    for key in ["", "   ", &"k".repeat(300)] {
        let reply = h
            .send(
                Call::new(Method::POST, "/v1/agreements")
                    .header("idempotency-key", key)
                    .json(&json!({})),
            )
            .await;
        reply.expect_error(400, "INVALID_REQUEST");
    }
    assert!(h
        .get("/v1/agreements")
        .await
        .data()
        .as_array()
        .unwrap()
        .is_empty());
}

#[tokio::test]
async fn a_failed_request_does_not_take_the_key() {
    let h = Harness::new();
    let call = |iban: &str| {
        Call::new(Method::POST, "/v1/agreements")
            .header("idempotency-key", "retry-me")
            .json(&json!({"contract": {"bank_information": {"iban": iban}}}))
    };
    h.send(call(BAD_IBAN))
        .await
        .expect_error(422, "VALIDATION_FAILED");
    // The corrected request under the same key goes through.
    let reply = h.send(call(IBAN)).await;
    reply.expect_agreement(201);
    assert!(reply.header("idempotent-replayed").is_none());
}
