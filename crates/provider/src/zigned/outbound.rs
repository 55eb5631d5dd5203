//! The calls of SPEC section 9, with bodies as Zigned's OpenAPI document defines them.

use std::collections::BTreeMap;
use std::future::Future;

use countersign_domain::{
    Agreement, CancellationReason, FileRef, IssuerRole, ObserverScope, ParticipantRole, TrustLevel,
};
use reqwest::Method;
use serde_json::{json, Map, Value};

use super::config::ZignedConfig;
use super::error::ZignedError;
use super::http::{RequestBody, ResponseObserver, ZignedHttp};
use super::progress::{SendProgress, UploadedFile};

use crate::outbound::DocumentBytes;

/// What one [`ZignedClient::advance_send`] did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SendStep {
    /// One call succeeded: record this progress, then call again.
    Progressed(SendProgress),
    /// The round is sent (`pending` accepted); nothing was called if it already was.
    Done(SendProgress),
}

/// Zigned's REST API v3 for one account. Cheap to share (`Arc`); the token cache is inside.
pub struct ZignedClient {
    http: ZignedHttp,
}

impl std::fmt::Debug for ZignedClient {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ZignedClient")
            .field("config", self.http.config())
            .finish_non_exhaustive()
    }
}

/// Zigned's locales are `sv-SE` and `en-US`: Swedish for a Swedish BCP 47 tag, English otherwise.
pub fn zigned_locale(bcp47: &str) -> &'static str {
    let language = bcp47.split(['-', '_']).next().unwrap_or_default();
    if language.eq_ignore_ascii_case("sv") {
        "sv-SE"
    } else {
        "en-US"
    }
}

impl ZignedClient {
    pub fn new(config: ZignedConfig) -> Result<Self, ZignedError> {
        Ok(ZignedClient {
            http: ZignedHttp::new(config)?,
        })
    }

    /// Every HTTP answer is shown to `observer` first (tests: Prism's `sl-violations`).
    pub fn with_response_observer(mut self, observer: ResponseObserver) -> Self {
        self.http.set_observer(observer);
        self
    }

    /// Drives [`ZignedClient::advance_send`] to the end, awaiting `persist` with each new
    /// progress before the next step. A `persist` error stops the send (`Err(Err(_))`); a
    /// Zigned error stops it with the last persisted progress (`Err(Ok((error, progress)))`).
    pub async fn run_send<F, Fut, E>(
        &self,
        agreement: &Agreement,
        documents: &DocumentBytes,
        mut progress: SendProgress,
        mut persist: F,
    ) -> Result<SendProgress, Result<(ZignedError, SendProgress), E>>
    where
        F: FnMut(SendProgress) -> Fut,
        Fut: Future<Output = Result<(), E>>,
    {
        loop {
            match self.advance_send(agreement, documents, &progress).await {
                Ok(SendStep::Progressed(next)) => {
                    persist(next.clone()).await.map_err(Err)?;
                    progress = next;
                }
                Ok(SendStep::Done(done)) => {
                    if done != progress {
                        persist(done.clone()).await.map_err(Err)?;
                    }
                    return Ok(done);
                }
                Err(error) => return Err(Ok((error, progress))),
            }
        }
    }

    /// Makes the next call of the send sequence and returns the progress it made: upload each
    /// document, create the agreement, [after a reopen: update its fields, delete the previous
    /// round's groups, participants, observers, attachments and main document], main document,
    /// attachments, participants, observers, signing groups, then `lifecycle` `pending`. At most
    /// one write call per step, so recording each step's progress before the next makes the
    /// sequence resumable (see [`SendProgress`]).
    pub async fn advance_send(
        &self,
        agreement: &Agreement,
        documents: &DocumentBytes,
        progress: &SendProgress,
    ) -> Result<SendStep, ZignedError> {
        if progress.sent {
            return Ok(SendStep::Done(progress.clone()));
        }
        let mut next = progress.clone();
        let main = agreement
            .documents
            .main
            .as_ref()
            .ok_or_else(|| ZignedError::NotSendable("it has no main document".to_owned()))?;

        for file in std::iter::once(main).chain(&agreement.documents.attachments) {
            let uploaded = next
                .files
                .get(&file.id)
                .is_some_and(|uploaded| uploaded.sha256.eq_ignore_ascii_case(&file.sha256));
            if !uploaded {
                let file_id = self.upload(file, documents).await?;
                next.files.insert(
                    file.id.clone(),
                    UploadedFile {
                        sha256: file.sha256.clone(),
                        file_id,
                    },
                );
                return Ok(SendStep::Progressed(next));
            }
        }

        let Some(reference) = next.agreement_reference.clone() else {
            let created = self
                .create(
                    "POST /agreements",
                    Method::POST,
                    "/agreements",
                    agreement_body(agreement),
                )
                .await?;
            next.agreement_reference = Some(created);
            return Ok(SendStep::Progressed(next));
        };
        let base = format!("/agreements/{}", path_segment(&reference));

        if next.reopened && !next.fields_updated {
            self.http
                .api(
                    "PUT /agreements/{id}",
                    Method::PUT,
                    &base,
                    &RequestBody::Json(agreement_update_body(agreement)),
                )
                .await?;
            next.fields_updated = true;
            return Ok(SendStep::Progressed(next));
        }

        if let Some(stale) = next.stale.signing_groups.first().cloned() {
            let path = format!("{base}/signing_groups/{}", path_segment(&stale));
            self.delete("DELETE /agreements/{id}/signing_groups/{id}", &path)
                .await?;
            next.stale.signing_groups.remove(0);
            return Ok(SendStep::Progressed(next));
        }
        if let Some(stale) = next.stale.participants.first().cloned() {
            let path = format!("{base}/participants/{}", path_segment(&stale));
            self.delete("DELETE /agreements/{id}/participants/{id}", &path)
                .await?;
            next.stale.participants.remove(0);
            return Ok(SendStep::Progressed(next));
        }
        if let Some(stale) = next.stale.observers.first().cloned() {
            let path = format!("{base}/observers/{}", path_segment(&stale));
            self.delete("DELETE /agreements/{id}/observers/{id}", &path)
                .await?;
            next.stale.observers.remove(0);
            return Ok(SendStep::Progressed(next));
        }
        if let Some(stale) = next.stale.attachments.first().cloned() {
            let path = format!("{base}/documents/attachments/{}", path_segment(&stale));
            self.delete("DELETE /agreements/{id}/documents/attachments/{id}", &path)
                .await?;
            next.stale.attachments.remove(0);
            return Ok(SendStep::Progressed(next));
        }
        if next.stale.main_document {
            self.delete(
                "DELETE /agreements/{id}/documents/main",
                &format!("{base}/documents/main"),
            )
            .await?;
            next.stale.main_document = false;
            return Ok(SendStep::Progressed(next));
        }

        if next.main_document.as_deref() != Some(main.id.as_str()) {
            let file_id = uploaded_file_id(&next, main)?;
            self.http
                .api(
                    "POST /agreements/{id}/documents/main",
                    Method::POST,
                    &format!("{base}/documents/main"),
                    &RequestBody::Json(json!({ "file_id": file_id })),
                )
                .await?;
            next.main_document = Some(main.id.clone());
            return Ok(SendStep::Progressed(next));
        }

        for (position, attachment) in agreement.documents.attachments.iter().enumerate() {
            if next.attachments.contains_key(&attachment.id) {
                continue;
            }
            let file_id = uploaded_file_id(&next, attachment)?;
            let created = self
                .create(
                    "POST /agreements/{id}/documents/attachments",
                    Method::POST,
                    &format!("{base}/documents/attachments"),
                    json!({ "file_id": file_id, "order": position + 1 }),
                )
                .await?;
            next.attachments.insert(attachment.id.clone(), created);
            return Ok(SendStep::Progressed(next));
        }

        let locale = zigned_locale(&agreement.communication.default_locale);
        let group_ranks = group_ranks(agreement);
        for (position, participant) in agreement.participants.iter().enumerate() {
            if next.participants.contains_key(&participant.id) {
                continue;
            }
            let mut body = Map::new();
            insert_text(&mut body, "email", participant.email.as_deref());
            insert_text(&mut body, "name", participant.name.as_deref());
            body.insert("role".into(), json!(participant_role(participant.role)));
            body.insert("locale".into(), json!(locale));
            if agreement.signing_order.enabled {
                let order = if agreement.signing_order.grouped {
                    group_ranks
                        .get(&participant.signing_group)
                        .copied()
                        .unwrap_or(1)
                } else {
                    position + 1
                };
                body.insert("order".into(), json!(order));
            }
            let created = self
                .create(
                    "POST /agreements/{id}/participants",
                    Method::POST,
                    &format!("{base}/participants"),
                    Value::Object(body),
                )
                .await?;
            next.participants.insert(participant.id.clone(), created);
            return Ok(SendStep::Progressed(next));
        }

        for observer in &agreement.observers {
            if next.observers.contains_key(&observer.id) {
                continue;
            }
            let mut body = Map::new();
            insert_text(&mut body, "email", observer.email.as_deref());
            insert_text(&mut body, "name", observer.name.as_deref());
            body.insert(
                "observer_scope".into(),
                json!(observer_scope(observer.scope)),
            );
            body.insert("locale".into(), json!(locale));
            let created = self
                .create(
                    "POST /agreements/{id}/observers",
                    Method::POST,
                    &format!("{base}/observers"),
                    Value::Object(body),
                )
                .await?;
            next.observers.insert(observer.id.clone(), created);
            return Ok(SendStep::Progressed(next));
        }

        if uses_signing_groups(agreement) {
            for (group, rank) in &group_ranks {
                if next.signing_groups.contains_key(group) {
                    continue;
                }
                let members = agreement
                    .participants
                    .iter()
                    .filter(|participant| participant.signing_group == *group)
                    .map(|participant| {
                        next.participants
                            .get(&participant.id)
                            .cloned()
                            .ok_or_else(|| {
                                ZignedError::NotSendable(format!(
                                    "participant `{}` has no Zigned id",
                                    participant.id
                                ))
                            })
                    })
                    .collect::<Result<Vec<_>, _>>()?;
                let created = self
                    .create(
                        "POST /agreements/{id}/signing_groups",
                        Method::POST,
                        &format!("{base}/signing_groups"),
                        json!({
                            "name": format!("Signing group {rank}"),
                            "order": rank,
                            "participants": members,
                        }),
                    )
                    .await?;
                next.signing_groups.insert(*group, created);
                return Ok(SendStep::Progressed(next));
            }
        }

        self.lifecycle(&reference, json!({ "status": "pending" }))
            .await?;
        next.sent = true;
        next.reopened = false;
        next.fields_updated = false;
        Ok(SendStep::Done(next))
    }

    /// `lifecycle` `open` (pause and reset), then the progress to record: the round is stale and
    /// the next send brings the Zigned agreement in line with the edited one.
    pub async fn reopen(&self, progress: &SendProgress) -> Result<SendProgress, ZignedError> {
        let reference = progress
            .agreement_reference
            .as_deref()
            .ok_or_else(|| ZignedError::NotSendable("it was never sent to Zigned".to_owned()))?;
        self.lifecycle(reference, json!({ "status": "open" }))
            .await?;
        Ok(progress.clone().reopened())
    }

    /// `lifecycle` `cancelled` with countersign's reason: a code as `cancellation_type`, or
    /// `custom` with the description as `reason` (10 to 255 characters, as countersign checks).
    pub async fn cancel(
        &self,
        agreement_reference: &str,
        reason: &CancellationReason,
    ) -> Result<(), ZignedError> {
        let input = match reason {
            CancellationReason::InvalidDocument => {
                json!({ "cancellation_type": "invalid_document" })
            }
            CancellationReason::InvalidParticipant => {
                json!({ "cancellation_type": "invalid_participant" })
            }
            CancellationReason::InvalidEmail => json!({ "cancellation_type": "invalid_email" }),
            CancellationReason::Custom(text) => {
                json!({ "cancellation_type": "custom", "reason": text })
            }
            CancellationReason::ProviderCancelled => {
                return Err(ZignedError::NotSendable(
                    "it was cancelled by Zigned itself".to_owned(),
                ))
            }
        };
        self.lifecycle(
            agreement_reference,
            json!({ "status": "cancelled", "input": input }),
        )
        .await
    }

    /// The signed read URL of the finalized document (`GET /agreements/{id}`,
    /// `data.documents.signed_document`), or `None` while Zigned has none. When Zigned gives the
    /// file's id instead of the file, the file is read (`GET /files/{id}`).
    pub async fn signed_document_url(
        &self,
        agreement_reference: &str,
    ) -> Result<Option<String>, ZignedError> {
        let operation = "GET /agreements/{id}";
        let agreement = self
            .http
            .api(
                operation,
                Method::GET,
                &format!("/agreements/{}", path_segment(agreement_reference)),
                &RequestBody::Empty,
            )
            .await?;
        let signed = agreement
            .pointer("/data/documents/signed_document")
            .ok_or_else(|| unexpected(operation, "no `data.documents.signed_document`"))?;
        match signed {
            Value::Null => Ok(None),
            Value::String(file_id) => {
                let operation = "GET /files/{id}";
                let file = self
                    .http
                    .api(
                        operation,
                        Method::GET,
                        &format!("/files/{}", path_segment(file_id)),
                        &RequestBody::Empty,
                    )
                    .await?;
                file_url(operation, &file).map(Some)
            }
            Value::Object(_) => file_url(operation, signed).map(Some),
            Value::Bool(_) | Value::Number(_) | Value::Array(_) => Err(unexpected(
                operation,
                "`data.documents.signed_document` is neither a file nor an id",
            )),
        }
    }

    /// The bytes at a signed read URL Zigned gave (no bearer token is sent there), up to the
    /// configured `max_download_bytes`.
    pub async fn download_signed_document(&self, url: &str) -> Result<Vec<u8>, ZignedError> {
        self.http
            .download("the signed document download", url)
            .await
    }

    async fn lifecycle(&self, reference: &str, state: Value) -> Result<(), ZignedError> {
        self.http
            .api(
                "POST /agreements/{id}/lifecycle",
                Method::POST,
                &format!("/agreements/{}/lifecycle", path_segment(reference)),
                &RequestBody::Json(json!({ "lifecycle_state": state })),
            )
            .await
            .map(drop)
    }

    async fn upload(
        &self,
        file: &FileRef,
        documents: &DocumentBytes,
    ) -> Result<String, ZignedError> {
        let bytes = documents.get(&file.id).ok_or_else(|| {
            ZignedError::NotSendable(format!("no bytes were given for document `{}`", file.id))
        })?;
        let operation = "POST /files";
        let answer = self
            .http
            .api(
                operation,
                Method::POST,
                "/files",
                &RequestBody::File {
                    bytes,
                    filename: &file.filename,
                    mime_type: &file.mime_type,
                    lookup_key: &file.id,
                },
            )
            .await?;
        data_id(operation, &answer)
    }

    /// A call that creates something: its `data.id`.
    async fn create(
        &self,
        operation: &str,
        method: Method,
        path: &str,
        body: Value,
    ) -> Result<String, ZignedError> {
        let answer = self
            .http
            .api(operation, method, path, &RequestBody::Json(body))
            .await?;
        data_id(operation, &answer)
    }

    /// A delete; a 404 means it is already gone (a repeated step after a lost answer).
    async fn delete(&self, operation: &str, path: &str) -> Result<(), ZignedError> {
        match self
            .http
            .api(operation, Method::DELETE, path, &RequestBody::Empty)
            .await
        {
            Ok(_) => Ok(()),
            Err(ZignedError::Rejected { status: 404, .. }) => Ok(()),
            Err(error) => Err(error),
        }
    }
}

/// `POST /agreements`: everything Zigned keeps on the agreement itself.
fn agreement_body(agreement: &Agreement) -> Value {
    let mut body = Map::new();
    if let Some(issuer) = issuer_body(agreement) {
        body.insert("issuer".into(), issuer);
    }
    body.insert(
        "send_emails".into(),
        json!(agreement.communication.send_emails),
    );
    body.insert(
        "trust_level".into(),
        json!(trust_level(agreement.trust_level)),
    );
    body.insert(
        "signing_order".into(),
        json!(agreement.signing_order.enabled),
    );
    body.insert(
        "default_locale".into(),
        json!(zigned_locale(&agreement.communication.default_locale)),
    );
    insert_text(
        &mut body,
        "lookup_key",
        agreement.metadata.lookup_key.as_deref(),
    );
    insert_text(
        &mut body,
        "success_callback_url",
        agreement.metadata.success_callback_url.as_deref(),
    );
    if let Some(expires_at) = agreement.expires_at {
        body.insert("expires_at".into(), json!(zigned_time(expires_at)));
    }
    Value::Object(body)
}

/// `PUT /agreements/{id}` after a reopen: the same fields, and `{"remove": true}` for optional
/// ones the edited agreement no longer has.
fn agreement_update_body(agreement: &Agreement) -> Value {
    let mut body = match agreement_body(agreement) {
        Value::Object(body) => body,
        _ => Map::new(),
    };
    for field in ["lookup_key", "success_callback_url", "expires_at"] {
        body.entry(field)
            .or_insert_with(|| json!({ "remove": true }));
    }
    Value::Object(body)
}

/// The issuer as Zigned sees it. An issuer who is also one of the participants
/// (`participant_id`) is an observer at Zigned, so that they are not invited twice.
fn issuer_body(agreement: &Agreement) -> Option<Value> {
    let issuer = agreement.issuer.as_ref()?;
    if issuer.name.is_none() && issuer.email.is_none() {
        return None;
    }
    let role = match (issuer.participant_id.is_some(), issuer.role) {
        (true, _) | (false, IssuerRole::Observer) => "observer",
        (false, IssuerRole::Signer) => "signer",
        (false, IssuerRole::Approver) => "approver",
    };
    let mut body = Map::new();
    insert_text(&mut body, "name", issuer.name.as_deref());
    insert_text(&mut body, "email", issuer.email.as_deref());
    body.insert("role".into(), json!(role));
    body.insert(
        "locale".into(),
        json!(zigned_locale(&agreement.communication.default_locale)),
    );
    Some(Value::Object(body))
}

fn uses_signing_groups(agreement: &Agreement) -> bool {
    agreement.signing_order.enabled && agreement.signing_order.grouped
}

/// Each `signing_group` number's rank from 1 (Zigned's `order` must be positive), when groups are used.
fn group_ranks(agreement: &Agreement) -> BTreeMap<u32, usize> {
    if !uses_signing_groups(agreement) {
        return BTreeMap::new();
    }
    let groups: std::collections::BTreeSet<u32> = agreement
        .participants
        .iter()
        .map(|participant| participant.signing_group)
        .collect();
    groups
        .into_iter()
        .enumerate()
        .map(|(index, group)| (group, index + 1))
        .collect()
}

fn trust_level(level: TrustLevel) -> &'static str {
    match level {
        TrustLevel::Ses => "SES",
        TrustLevel::Aes => "AES",
        TrustLevel::Qes => "QES",
    }
}

fn participant_role(role: ParticipantRole) -> &'static str {
    match role {
        ParticipantRole::Signer => "signer",
        ParticipantRole::Approver => "approver",
    }
}

fn observer_scope(scope: ObserverScope) -> &'static str {
    match scope {
        ObserverScope::Viewer => "viewer",
        ObserverScope::Cc => "cc",
    }
}

/// `2027-03-01T10:00:00.000Z`, the `toISOString` form Zigned's pattern takes.
fn zigned_time(at: chrono::DateTime<chrono::Utc>) -> String {
    at.format("%Y-%m-%dT%H:%M:%S%.3fZ").to_string()
}

fn insert_text(body: &mut Map<String, Value>, field: &str, value: Option<&str>) {
    if let Some(value) = value.filter(|value| !value.trim().is_empty()) {
        body.insert(field.to_owned(), json!(value));
    }
}

fn uploaded_file_id(progress: &SendProgress, file: &FileRef) -> Result<String, ZignedError> {
    progress
        .files
        .get(&file.id)
        .map(|uploaded| uploaded.file_id.clone())
        .ok_or_else(|| ZignedError::NotSendable(format!("document `{}` was not uploaded", file.id)))
}

/// Ids come from Zigned; anything but letters, digits, `-` and `_` is still escaped (dots too,
/// against `..`), so that no id can change the path.
fn path_segment(id: &str) -> String {
    id.bytes()
        .map(|byte| {
            if byte.is_ascii_alphanumeric() || matches!(byte, b'-' | b'_') {
                (byte as char).to_string()
            } else {
                format!("%{byte:02X}")
            }
        })
        .collect()
}

fn data_id(operation: &str, answer: &Value) -> Result<String, ZignedError> {
    answer
        .pointer("/data/id")
        .and_then(Value::as_str)
        .filter(|id| !id.is_empty())
        .map(str::to_owned)
        .ok_or_else(|| unexpected(operation, "no `data.id`"))
}

fn file_url(operation: &str, file: &Value) -> Result<String, ZignedError> {
    file.pointer("/data/url")
        .and_then(Value::as_str)
        .filter(|url| !url.is_empty())
        .map(str::to_owned)
        .ok_or_else(|| unexpected(operation, "the signed document has no `data.url`"))
}

fn unexpected(operation: &str, detail: &str) -> ZignedError {
    ZignedError::UnexpectedResponse {
        operation: operation.to_owned(),
        detail: detail.to_owned(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn locales_map_to_the_two_zigned_knows() {
        assert_eq!(zigned_locale("sv"), "sv-SE");
        assert_eq!(zigned_locale("sv-FI"), "sv-SE");
        assert_eq!(zigned_locale("SV_se"), "sv-SE");
        assert_eq!(zigned_locale("en"), "en-US");
        assert_eq!(zigned_locale("fr-FR"), "en-US");
        assert_eq!(zigned_locale(""), "en-US");
    }

    #[test]
    fn path_segments_cannot_escape_their_place() {
        assert_eq!(
            path_segment("c8itw4ybiyldtndi9qnexample"),
            "c8itw4ybiyldtndi9qnexample"
        );
        assert_eq!(path_segment("../files?x=1"), "%2E%2E%2Ffiles%3Fx%3D1");
    }

    #[test]
    fn times_use_the_iso_string_form() {
        let at = "2027-03-01T10:00:00Z".parse().unwrap();
        assert_eq!(zigned_time(at), "2027-03-01T10:00:00.000Z");
    }
}
