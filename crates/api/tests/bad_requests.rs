//! 400 `INVALID_REQUEST` in the API's own words (issue 8): for every field of every request body
//! (create, patch, lifecycle, sandbox callback) and every list query parameter, a value that does
//! not fit is answered with one `error.details` entry naming the field (JSON pointer and dotted
//! path) and what it must be, and no response says anything in Rust or serde vocabulary.

mod support;

use http::Method;
use serde_json::{json, Value};

use support::*;

/// Words and phrases of Rust and serde that must never reach a client, matched as whole words
/// (case-sensitive: `String` is a type name, "a string" would be English).
const FORBIDDEN_WORDS: &[&str] = &[
    "struct",
    "enum",
    "variant",
    "map",
    "sequence",
    "tuple",
    "newtype",
    "u8",
    "u16",
    "u32",
    "u64",
    "u128",
    "usize",
    "i8",
    "i16",
    "i32",
    "i64",
    "isize",
    "f32",
    "f64",
    "String",
    "Option",
    "Vec",
    "Value",
    "DateTime",
    "AgreementInput",
    "ParticipantInput",
    "ObserverInput",
    "DocumentsInput",
    "FileRefInput",
    "BankInformation",
    "Contract",
    "Issuer",
    "SigningOrder",
    "Communication",
    "Metadata",
    "TrustLevel",
    "ParticipantRole",
    "IssuerRole",
    "ObserverScope",
    "LifecycleBody",
    "CancellationInput",
    "SandboxEvent",
    "SandboxEventData",
];
const FORBIDDEN_PHRASES: &[&str] = &[
    "invalid type",
    "invalid value",
    "floating point",
    "expected one of",
    "unknown variant",
    "expected a",
];

fn assert_in_api_words(what: &str, text: &str) {
    for word in text.split(|c: char| !(c.is_ascii_alphanumeric() || c == '_')) {
        assert!(
            !FORBIDDEN_WORDS.contains(&word),
            "{what}: `{word}` in {text}"
        );
    }
    for phrase in FORBIDDEN_PHRASES {
        assert!(!text.contains(phrase), "{what}: `{phrase}` in {text}");
    }
}

/// The 400 answer names `field` at `pointer` (a body) in a message that quotes the field, and says
/// nothing in Rust words.
fn expect_problem_at(what: &str, reply: &Reply, pointer: &str, field: &str) {
    let error = reply.expect_error(400, "INVALID_REQUEST");
    assert_in_api_words(what, &reply.text);
    let details = error["details"].as_array().unwrap();
    let detail = details
        .iter()
        .find(|detail| detail["pointer"] == pointer)
        .unwrap_or_else(|| panic!("{what}: no detail at {pointer:?} in {}", reply.text));
    assert_eq!(detail["type"], "INVALID_REQUEST", "{what}: {}", reply.text);
    assert_eq!(detail["field"], field, "{what}: {}", reply.text);
    let message = detail["message"].as_str().unwrap_or_default();
    assert!(
        message.contains(&format!("`{field}`")),
        "{what}: the message names `{field}`: {message}"
    );
    assert!(
        error["message"].as_str().is_some_and(|m| !m.is_empty()),
        "{what}"
    );
    if let [only] = details.as_slice() {
        assert_eq!(
            error["message"], only["message"],
            "{what}: one problem is the summary"
        );
    }
}

/// One bad value: where to put it in a valid body, the value, and where the answer must point.
struct Case {
    /// JSON pointer of the value to replace (or remove, with `None`) in the valid body.
    at: &'static str,
    value: Option<Value>,
    pointer: &'static str,
    field: &'static str,
}

fn case(at: &'static str, value: Value, field: &'static str) -> Case {
    Case {
        at,
        value: Some(value),
        pointer: at,
        field,
    }
}

fn missing(at: &'static str, field: &'static str) -> Case {
    Case {
        at,
        value: None,
        pointer: at,
        field,
    }
}

/// Sets (or removes) `pointer` in `body`, creating nothing: the parent must exist.
fn put(body: &mut Value, pointer: &str, value: Option<Value>) {
    let (parent, last) = pointer.rsplit_once('/').unwrap();
    let parent = body
        .pointer_mut(parent)
        .unwrap_or_else(|| panic!("no {parent} in the valid body"));
    match (parent, value) {
        (Value::Object(object), Some(value)) => {
            object.insert(last.to_owned(), value);
        }
        (Value::Object(object), None) => {
            object.remove(last);
        }
        (Value::Array(array), Some(value)) => array[last.parse::<usize>().unwrap()] = value,
        (other, _) => panic!("cannot put {pointer} into {other}"),
    }
}

/// The full agreement body of the fixtures, with an attachment and a signing order so every field
/// of an agreement input is present.
fn full_body() -> Value {
    let mut body = ready_body(true);
    body["documents"]["attachments"] = json!([main_document()]);
    body["documents"]["main"]["id"] = json!("main-doc");
    body["signing_order"] = json!({"enabled": true, "grouped": false});
    body["participants"][0]["signing_group"] = json!(1);
    body["issuer"]["participant_id"] = json!("ada");
    body["expires_in_days"] = json!(30);
    body
}

/// Every field of an agreement input, with wrong-typed and out-of-range values.
fn agreement_cases() -> Vec<Case> {
    vec![
        case("/test_mode", json!("yes"), "test_mode"),
        case("/test_mode", json!(1), "test_mode"),
        case("/trust_level", json!("XES"), "trust_level"),
        case("/trust_level", json!("ses"), "trust_level"),
        case("/trust_level", json!(3), "trust_level"),
        case("/contract", json!("C-1"), "contract"),
        case("/contract", json!([]), "contract"),
        case("/contract/contract_id", json!(5), "contract.contract_id"),
        case("/contract/proposal_id", json!(true), "contract.proposal_id"),
        case(
            "/contract/bank_information",
            json!("FR14"),
            "contract.bank_information",
        ),
        case(
            "/contract/bank_information/account_holder",
            json!(1),
            "contract.bank_information.account_holder",
        ),
        case(
            "/contract/bank_information/iban",
            json!(123),
            "contract.bank_information.iban",
        ),
        case(
            "/contract/bank_information/bic",
            json!([]),
            "contract.bank_information.bic",
        ),
        case(
            "/contract/bank_information/swift",
            json!("X"),
            "contract.bank_information.swift",
        ),
        case("/contract/colour", json!("blue"), "contract.colour"),
        case("/issuer", json!(5), "issuer"),
        case("/issuer/name", json!(1), "issuer.name"),
        case("/issuer/email", json!({}), "issuer.email"),
        case("/issuer/role", json!("boss"), "issuer.role"),
        case("/issuer/role", json!(null), "issuer.role"),
        case("/issuer/participant_id", json!(7), "issuer.participant_id"),
        case("/issuer/phone", json!("+33"), "issuer.phone"),
        case("/participants", json!({"id": "a"}), "participants"),
        case("/participants", json!("ada"), "participants"),
        case("/participants/0", json!("ada"), "participants[0]"),
        case("/participants/0/id", json!(5), "participants[0].id"),
        case("/participants/1/name", json!(5), "participants[1].name"),
        case(
            "/participants/0/email",
            json!(false),
            "participants[0].email",
        ),
        case(
            "/participants/0/role",
            json!("witness"),
            "participants[0].role",
        ),
        case("/participants/1/role", json!(null), "participants[1].role"),
        case(
            "/participants/0/signing_group",
            json!(-1),
            "participants[0].signing_group",
        ),
        case(
            "/participants/0/signing_group",
            json!(1.5),
            "participants[0].signing_group",
        ),
        case(
            "/participants/0/signing_group",
            json!("1"),
            "participants[0].signing_group",
        ),
        case(
            "/participants/0/signing_group",
            json!(4_294_967_296_u64),
            "participants[0].signing_group",
        ),
        case(
            "/participants/0/status",
            json!("SIGNATURE_COMPLETE"),
            "participants[0].status",
        ),
        case("/observers", json!(5), "observers"),
        case("/observers/0", json!([]), "observers[0]"),
        case("/observers/0/id", json!(1), "observers[0].id"),
        case("/observers/0/name", json!(["O"]), "observers[0].name"),
        case("/observers/0/email", json!(2), "observers[0].email"),
        case("/observers/0/scope", json!("spy"), "observers[0].scope"),
        case("/observers/0/colour", json!("red"), "observers[0].colour"),
        case("/signing_order", json!(true), "signing_order"),
        case(
            "/signing_order/enabled",
            json!("yes"),
            "signing_order.enabled",
        ),
        case("/signing_order/grouped", json!(1), "signing_order.grouped"),
        case("/signing_order/strict", json!(true), "signing_order.strict"),
        case("/documents", json!([]), "documents"),
        case("/documents/main", json!("lease.pdf"), "documents.main"),
        case("/documents/main/id", json!(5), "documents.main.id"),
        case(
            "/documents/main/filename",
            json!(5),
            "documents.main.filename",
        ),
        case(
            "/documents/main/mime_type",
            json!(5),
            "documents.main.mime_type",
        ),
        case("/documents/main/size", json!(-1), "documents.main.size"),
        case("/documents/main/size", json!(1.5), "documents.main.size"),
        case(
            "/documents/main/size",
            json!("48213"),
            "documents.main.size",
        ),
        case("/documents/main/sha256", json!(5), "documents.main.sha256"),
        case("/documents/main/uri", json!({}), "documents.main.uri"),
        case("/documents/main/pages", json!(3), "documents.main.pages"),
        case("/documents/attachments", json!({}), "documents.attachments"),
        case(
            "/documents/attachments/0",
            json!(5),
            "documents.attachments[0]",
        ),
        case(
            "/documents/attachments/0/size",
            json!("big"),
            "documents.attachments[0].size",
        ),
        case(
            "/documents/signed_document",
            main_document(),
            "documents.signed_document",
        ),
        case("/communication", json!("fr"), "communication"),
        case(
            "/communication/send_emails",
            json!("true"),
            "communication.send_emails",
        ),
        case(
            "/communication/default_locale",
            json!(5),
            "communication.default_locale",
        ),
        case("/metadata", json!("lease-42"), "metadata"),
        case("/metadata", json!(5), "metadata"),
        case("/metadata/lookup_key", json!(5), "metadata.lookup_key"),
        case(
            "/metadata/success_callback_url",
            json!(false),
            "metadata.success_callback_url",
        ),
        case("/metadata/tags", json!([]), "metadata.tags"),
        case("/expires_in_days", json!(100.0), "expires_in_days"),
        case("/expires_in_days", json!("ten"), "expires_in_days"),
        case("/expires_in_days", json!(-1), "expires_in_days"),
        case("/expires_in_days", json!(1.5), "expires_in_days"),
        case("/expires_in_days", json!(70000), "expires_in_days"),
        case("/colour", json!("blue"), "colour"),
        case("/status", json!("fulfilled"), "status"),
        case("/id", json!("mine"), "id"),
        case("/version", json!(3), "version"),
    ]
}

/// Required fields: absent on create is a problem.
fn required_cases() -> Vec<Case> {
    vec![
        missing("/documents/main/filename", "documents.main.filename"),
        missing("/documents/main/mime_type", "documents.main.mime_type"),
        missing("/documents/main/size", "documents.main.size"),
        missing("/documents/main/sha256", "documents.main.sha256"),
        missing("/documents/main/uri", "documents.main.uri"),
        missing(
            "/documents/attachments/0/uri",
            "documents.attachments[0].uri",
        ),
        missing("/communication/send_emails", "communication.send_emails"),
        missing(
            "/communication/default_locale",
            "communication.default_locale",
        ),
    ]
}

#[tokio::test]
async fn every_field_of_a_create_body_that_does_not_fit_is_named() {
    let h = Harness::new();
    // The valid body is valid: each case below breaks exactly one thing.
    h.create(&full_body()).await;
    for case in agreement_cases().into_iter().chain(required_cases()) {
        let mut body = full_body();
        put(&mut body, case.at, case.value.clone());
        let what = format!("create with {} = {:?}", case.at, case.value);
        let reply = h.post("/v1/agreements", &body).await;
        expect_problem_at(&what, &reply, case.pointer, case.field);
    }
    assert_eq!(
        h.get("/v1/agreements")
            .await
            .data()
            .as_array()
            .unwrap()
            .len(),
        1,
        "only the valid body was created"
    );
}

#[tokio::test]
async fn every_field_of_a_patch_that_does_not_fit_is_named() {
    let h = Harness::new();
    let id = h.create_id(&full_body()).await;
    let path = format!("/v1/agreements/{id}");
    for case in agreement_cases() {
        // In a merge patch null removes a field: it is never a wrong type there.
        if case.value == Some(Value::Null) {
            continue;
        }
        let mut patch = full_body();
        put(&mut patch, case.at, case.value.clone());
        let what = format!("patch with {} = {:?}", case.at, case.value);
        let reply = h.patch(&path, &patch).await;
        expect_problem_at(&what, &reply, case.pointer, case.field);
    }
    // Removing a required field with null leaves the merged agreement without it.
    let reply = h
        .patch(&path, &json!({"communication": {"default_locale": null}}))
        .await;
    expect_problem_at(
        "patch removing default_locale",
        &reply,
        "/communication/default_locale",
        "communication.default_locale",
    );
    // A patch of one nested field points at it, not at the whole document.
    let reply = h
        .patch(
            &path,
            &json!({"participants": [{"id": "ada", "role": "witness"}]}),
        )
        .await;
    expect_problem_at(
        "patch of one role",
        &reply,
        "/participants/0/role",
        "participants[0].role",
    );
    assert_eq!(h.agreement(&id).await["version"], 1);
}

#[tokio::test]
async fn every_problem_of_a_body_is_listed_and_the_message_counts_them() {
    let h = Harness::new();
    let reply = h
        .post(
            "/v1/agreements",
            &json!({
                "expires_in_days": 100.0,
                "metadata": "x",
                "participants": [{"role": "witness"}],
                "colour": "blue"
            }),
        )
        .await;
    let error = reply.expect_error(400, "INVALID_REQUEST");
    assert_in_api_words("several problems", &reply.text);
    let mut pointers: Vec<&str> = error["details"]
        .as_array()
        .unwrap()
        .iter()
        .map(|detail| detail["pointer"].as_str().unwrap())
        .collect();
    pointers.sort_unstable();
    assert_eq!(
        pointers,
        [
            "/colour",
            "/expires_in_days",
            "/metadata",
            "/participants/0/role"
        ]
    );
    assert!(
        error["message"].as_str().unwrap().contains('4'),
        "the summary counts the problems: {}",
        error["message"]
    );
}

#[tokio::test]
async fn messages_say_what_the_field_must_be() {
    let h = Harness::new();
    for (body, pointer, expected) in [
        (
            json!({"expires_in_days": 100.0}),
            "/expires_in_days",
            "`expires_in_days` must be a whole number from 1 to 365",
        ),
        (
            json!({"participants": [{"role": "witness"}]}),
            "/participants/0/role",
            "`participants[0].role` must be one of `signer`, `approver`",
        ),
        (
            json!({"metadata": 5}),
            "/metadata",
            "`metadata` must be an object",
        ),
        (
            json!({"trust_level": "ses"}),
            "/trust_level",
            "`trust_level` must be one of `SES`, `AES`, `QES`",
        ),
        (
            json!({"test_mode": "yes"}),
            "/test_mode",
            "`test_mode` must be true or false",
        ),
        (
            json!({"documents": {"main": {"filename": "a.pdf"}}}),
            "/documents/main/mime_type",
            "`documents.main.mime_type` is required",
        ),
    ] {
        let reply = h.post("/v1/agreements", &body).await;
        let error = reply.expect_error(400, "INVALID_REQUEST");
        let detail = error["details"]
            .as_array()
            .unwrap()
            .iter()
            .find(|detail| detail["pointer"] == pointer)
            .unwrap_or_else(|| panic!("{body}: {}", reply.text));
        assert_eq!(detail["message"], expected, "{body}");
    }
    // An unknown field lists the known ones.
    let reply = h.post("/v1/agreements", &json!({"colour": "blue"})).await;
    let message = reply.expect_error(400, "INVALID_REQUEST")["details"][0]["message"]
        .as_str()
        .unwrap()
        .to_owned();
    assert!(message.starts_with("`colour` is not a field"), "{message}");
    for known in ["`participants`", "`metadata`", "`expires_in_days`"] {
        assert!(message.contains(known), "{known} in {message}");
    }
}

#[tokio::test]
async fn bodies_that_are_not_json_objects_say_so_in_api_words() {
    let h = Harness::new();
    let id = h.create_id(&ready_body(true)).await;
    let targets = [
        (Method::POST, "/v1/agreements".to_owned()),
        (Method::PATCH, format!("/v1/agreements/{id}")),
        (Method::POST, format!("/v1/agreements/{id}/lifecycle")),
    ];
    for (method, path) in &targets {
        for (text, says) in [
            ("{", "not valid JSON"),
            ("{\"metadata\": }", "not valid JSON"),
            ("{\"a\":1,}", "not valid JSON"),
            ("lifecycle_state=pending", "not valid JSON"),
            ("[]", "JSON object"),
            ("[true, \"QES\"]", "JSON object"),
            ("null", "JSON object"),
            ("42", "JSON object"),
            ("\"agreement\"", "JSON object"),
        ] {
            let what = format!("{method} {path} with {text}");
            let reply = h.send(Call::new(method.clone(), path).text(text)).await;
            let error = reply.expect_error(400, "INVALID_REQUEST");
            assert_in_api_words(&what, &reply.text);
            assert!(
                error["message"].as_str().unwrap().contains(says),
                "{what}: {}",
                reply.text
            );
            assert_eq!(error["details"][0]["pointer"], "", "{what}: {}", reply.text);
            assert_eq!(error["details"][0]["type"], "INVALID_REQUEST", "{what}");
        }
    }
    // Syntax errors say where.
    let reply = h
        .send(Call::new(Method::POST, "/v1/agreements").text("{\"metadata\": }"))
        .await;
    let message = reply.error()["message"].as_str().unwrap();
    assert!(message.contains("line 1, column 14"), "{message}");
    assert_eq!(h.agreement(&id).await["version"], 1);
}

#[tokio::test]
async fn every_field_of_a_lifecycle_body_that_does_not_fit_is_named() {
    let h = Harness::new();
    let id = h.sent(&ready_body(true)).await;
    let before = h.agreement(&id).await;
    let path = format!("/v1/agreements/{id}/lifecycle");
    let cancel = |input: Value| json!({"lifecycle_state": "cancelled", "input": input});
    for (body, pointer, field) in [
        (
            json!({"lifecycle_state": 1}),
            "/lifecycle_state",
            "lifecycle_state",
        ),
        (
            json!({"lifecycle_state": "signed"}),
            "/lifecycle_state",
            "lifecycle_state",
        ),
        (
            json!({"lifecycle_state": "PENDING"}),
            "/lifecycle_state",
            "lifecycle_state",
        ),
        (
            json!({"lifecycle_state": null}),
            "/lifecycle_state",
            "lifecycle_state",
        ),
        (json!({}), "/lifecycle_state", "lifecycle_state"),
        (
            json!({"lifecycle_state": "pending", "force": true}),
            "/force",
            "force",
        ),
        (
            json!({"lifecycle_state": "open", "input": {"reason": "invalid_email"}}),
            "/input",
            "input",
        ),
        (cancel(json!("invalid_email")), "/input", "input"),
        (cancel(json!(["invalid_email"])), "/input", "input"),
        (
            cancel(json!({"reason": 5})),
            "/input/reason",
            "input.reason",
        ),
        (
            cancel(json!({"reason": ["custom"]})),
            "/input/reason",
            "input.reason",
        ),
        (
            cancel(json!({"reason": "custom", "description": 12345678901_u64})),
            "/input/description",
            "input.description",
        ),
        (
            cancel(json!({"reason": "custom", "description": ["long enough text"]})),
            "/input/description",
            "input.description",
        ),
        (
            cancel(json!({"reason": "invalid_email", "note": "x"})),
            "/input/note",
            "input.note",
        ),
    ] {
        let what = format!("lifecycle {body}");
        let reply = h.post(&path, &body).await;
        expect_problem_at(&what, &reply, pointer, field);
    }
    assert_eq!(h.agreement(&id).await, before);
}

#[tokio::test]
async fn cancellation_reasons_that_are_not_allowed_stay_422_in_api_words() {
    let h = Harness::new();
    let id = h.sent(&ready_body(true)).await;
    for input in [
        json!({"reason": "changed_my_mind"}),
        json!({"reason": "custom"}),
        json!({"reason": "custom", "description": "short"}),
        json!({}),
    ] {
        let reply = h
            .lifecycle(
                &id,
                &json!({"lifecycle_state": "cancelled", "input": input}),
            )
            .await;
        reply.expect_error(422, "INVALID_CANCELLATION_REASON");
        assert_in_api_words(&input.to_string(), &reply.text);
    }
}

/// A signed sandbox webhook body: the valid event with one change.
fn event_with(h: &Harness, at: &str, value: Option<Value>) -> String {
    let mut event: Value = serde_json::from_str(&event_body(
        "evt_1",
        "participant.signed",
        "agr_1",
        Some("ada"),
        h.now(),
    ))
    .unwrap();
    event["data"]["signed_document"] = json!({"filename": "signed.pdf"});
    put(&mut event, at, value);
    event.to_string()
}

#[tokio::test]
async fn every_field_of_a_signed_sandbox_callback_that_does_not_fit_is_named() {
    let h = Harness::new();
    let t = h.now().timestamp();
    let valid = event_with(&h, "/id", Some(json!("evt_1")));
    let reply = h
        .callback(&valid, Some(&signature(SECRET, t, &valid)))
        .await;
    assert_eq!(
        reply.status, 202,
        "the valid event is valid: {}",
        reply.text
    );
    h.queue.take();
    let cases = [
        case("/id", json!(5), "id"),
        case("/id", json!(""), "id"),
        case("/id", json!(null), "id"),
        missing("/id", "id"),
        case("/type", json!(["participant.signed"]), "type"),
        case("/type", json!(" "), "type"),
        missing("/type", "type"),
        case("/created_at", json!("yesterday"), "created_at"),
        case("/created_at", json!(1_750_000_000), "created_at"),
        missing("/created_at", "created_at"),
        case("/data", json!("agr_1"), "data"),
        case("/data", json!(null), "data"),
        missing("/data", "data"),
        case("/data/agreement_id", json!(42), "data.agreement_id"),
        case("/data/agreement_id", json!(""), "data.agreement_id"),
        missing("/data/agreement_id", "data.agreement_id"),
        case("/data/participant_id", json!(7), "data.participant_id"),
        case("/data/participant_id", json!({}), "data.participant_id"),
    ];
    for case in cases {
        let body = event_with(&h, case.at, case.value.clone());
        let what = format!("callback with {} = {:?}", case.at, case.value);
        let reply = h.callback(&body, Some(&signature(SECRET, t, &body))).await;
        expect_problem_at(&what, &reply, case.pointer, case.field);
    }
    for (text, says) in [("not json", "not valid JSON"), ("[]", "JSON object")] {
        let reply = h.callback(text, Some(&signature(SECRET, t, text))).await;
        let error = reply.expect_error(400, "INVALID_REQUEST");
        assert_in_api_words(text, &reply.text);
        assert!(
            error["message"].as_str().unwrap().contains(says),
            "{}",
            reply.text
        );
        assert_eq!(error["details"][0]["pointer"], "", "{}", reply.text);
    }
    assert!(h.queue.take().is_empty());
}

#[tokio::test]
async fn every_list_query_parameter_that_does_not_fit_is_named() {
    let h = Harness::new();
    h.create(&ready_body(true)).await;
    for (query, parameter) in [
        ("limit=0", "limit"),
        ("limit=101", "limit"),
        ("limit=-1", "limit"),
        ("limit=abc", "limit"),
        ("limit=", "limit"),
        ("limit=2.5", "limit"),
        ("limit=99999999999999999999999", "limit"),
        ("status=signed", "status"),
        ("status=PENDING", "status"),
        ("status=", "status"),
        ("cursor=garbage", "cursor"),
        ("cursor=eyJ4IjoxfQ", "cursor"),
        ("cursor=", "cursor"),
        ("colour=blue", "colour"),
    ] {
        let reply = h.get(&format!("/v1/agreements?{query}")).await;
        let error = reply.expect_error(400, "INVALID_REQUEST");
        assert_in_api_words(query, &reply.text);
        let detail = error["details"]
            .as_array()
            .unwrap()
            .iter()
            .find(|detail| detail["parameter"] == parameter)
            .unwrap_or_else(|| panic!("{query}: no detail for {parameter}: {}", reply.text));
        assert_eq!(detail["type"], "INVALID_REQUEST", "{query}");
        assert_eq!(detail["field"], parameter, "{query}");
        assert!(
            detail["message"]
                .as_str()
                .unwrap()
                .contains(&format!("`{parameter}`")),
            "{query}: {}",
            reply.text
        );
    }
    // Every bad parameter is listed at once.
    let reply = h.get("/v1/agreements?limit=0&status=signed").await;
    let error = reply.expect_error(400, "INVALID_REQUEST");
    assert_eq!(
        error["details"].as_array().unwrap().len(),
        2,
        "{}",
        reply.text
    );
}
