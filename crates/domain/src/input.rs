//! What a client may set on an agreement (create and edit), and the checks that input must pass
//! whatever the agreement's status (422 `VALIDATION_FAILED`).

use std::collections::HashSet;
use std::str::FromStr;

use serde::{Deserialize, Serialize};

use crate::error::{Issue, IssueCode};
use crate::model::{
    BankInformation, Communication, Contract, FileRef, Issuer, Metadata, ObserverScope,
    ParticipantRole, SigningOrder, TrustLevel,
};

/// Makes new opaque identifiers (participants, observers, files). Injected so the domain stays pure.
pub trait IdSource {
    fn new_id(&mut self) -> String;
}

pub const MAX_PARTICIPANTS: usize = 50;
pub const MAX_OBSERVERS: usize = 50;
pub const MAX_ATTACHMENTS: usize = 50;
pub const MAX_TEXT_CHARS: usize = 255;
pub const MAX_ID_CHARS: usize = 64;
pub const EXPIRES_IN_DAYS: std::ops::RangeInclusive<u16> = 1..=365;

/// The editable fields of an agreement: the body of `POST /v1/agreements`, and the document a
/// `PATCH` merge patch applies to. Server-owned fields are unknown fields here (400).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(deny_unknown_fields)]
pub struct AgreementInput {
    /// Fixed at creation.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub test_mode: Option<bool>,
    #[serde(default)]
    pub trust_level: Option<TrustLevel>,
    #[serde(default)]
    pub contract: Option<Contract>,
    #[serde(default)]
    pub issuer: Option<Issuer>,
    #[serde(default)]
    pub participants: Vec<ParticipantInput>,
    #[serde(default)]
    pub observers: Vec<ObserverInput>,
    #[serde(default)]
    pub signing_order: Option<SigningOrder>,
    #[serde(default)]
    pub documents: Option<DocumentsInput>,
    #[serde(default)]
    pub communication: Option<Communication>,
    #[serde(default)]
    pub metadata: Option<Metadata>,
    #[serde(default)]
    pub expires_in_days: Option<u16>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ParticipantInput {
    #[serde(default)]
    pub id: Option<String>,
    #[serde(default)]
    pub name: Option<String>,
    #[serde(default)]
    pub email: Option<String>,
    #[serde(default)]
    pub role: ParticipantRole,
    #[serde(default = "first_group")]
    pub signing_group: u32,
}

fn first_group() -> u32 {
    1
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ObserverInput {
    #[serde(default)]
    pub id: Option<String>,
    #[serde(default)]
    pub name: Option<String>,
    #[serde(default)]
    pub email: Option<String>,
    #[serde(default)]
    pub scope: ObserverScope,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(deny_unknown_fields)]
pub struct DocumentsInput {
    #[serde(default)]
    pub main: Option<FileRefInput>,
    #[serde(default)]
    pub attachments: Vec<FileRefInput>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FileRefInput {
    #[serde(default)]
    pub id: Option<String>,
    pub filename: String,
    pub mime_type: String,
    pub size: u64,
    pub sha256: String,
    pub uri: String,
}

impl FileRefInput {
    pub(crate) fn into_file_ref(self, ids: &mut dyn IdSource) -> FileRef {
        FileRef {
            id: self.id.unwrap_or_else(|| ids.new_id()),
            filename: self.filename,
            mime_type: self.mime_type,
            size: self.size,
            sha256: self.sha256.to_ascii_lowercase(),
            uri: self.uri,
        }
    }
}

impl From<&FileRef> for FileRefInput {
    fn from(file: &FileRef) -> Self {
        FileRefInput {
            id: Some(file.id.clone()),
            filename: file.filename.clone(),
            mime_type: file.mime_type.clone(),
            size: file.size,
            sha256: file.sha256.clone(),
            uri: file.uri.clone(),
        }
    }
}

/// Normalises what has one canonical form (IBAN and BIC without spaces, upper case) and reports
/// every field that can never be right. Completeness is checked later, before `pending`.
pub fn check_input(input: &mut AgreementInput) -> Vec<Issue> {
    let mut issues = Vec::new();
    let mut invalid = |field: String, message: String| {
        issues.push(Issue::new(IssueCode::ValidationFailed, field, message))
    };

    if let Some(days) = input.expires_in_days {
        if !EXPIRES_IN_DAYS.contains(&days) {
            invalid(
                "expires_in_days".into(),
                format!("must be between 1 and 365, got {days}"),
            );
        }
    }

    if let Some(contract) = input.contract.as_mut() {
        check_text(
            &mut invalid,
            "contract.contract_id",
            contract.contract_id.as_deref(),
        );
        check_text(
            &mut invalid,
            "contract.proposal_id",
            contract.proposal_id.as_deref(),
        );
        if let Some(bank) = contract.bank_information.as_mut() {
            check_bank_information(&mut invalid, bank);
        }
    }

    if let Some(issuer) = &input.issuer {
        check_text(&mut invalid, "issuer.name", issuer.name.as_deref());
        check_text(&mut invalid, "issuer.email", issuer.email.as_deref());
        if let Some(participant_id) = &issuer.participant_id {
            let known = input
                .participants
                .iter()
                .any(|participant| participant.id.as_deref() == Some(participant_id));
            if !known {
                invalid(
                    "issuer.participant_id".into(),
                    format!("`{participant_id}` is not the id of a participant"),
                );
            }
        }
    }

    if input.participants.len() > MAX_PARTICIPANTS {
        invalid(
            "participants".into(),
            format!("at most {MAX_PARTICIPANTS} participants"),
        );
    }
    let mut participant_ids = HashSet::new();
    for (index, participant) in input.participants.iter().enumerate() {
        let field = format!("participants[{index}]");
        check_person(
            &mut invalid,
            &field,
            [&participant.id, &participant.name, &participant.email],
            &mut participant_ids,
        );
        if participant.signing_group == 0 {
            invalid(
                format!("{field}.signing_group"),
                "signing groups are numbered from 1".into(),
            );
        }
    }

    if input.observers.len() > MAX_OBSERVERS {
        invalid(
            "observers".into(),
            format!("at most {MAX_OBSERVERS} observers"),
        );
    }
    let mut observer_ids = HashSet::new();
    for (index, observer) in input.observers.iter().enumerate() {
        let field = format!("observers[{index}]");
        check_person(
            &mut invalid,
            &field,
            [&observer.id, &observer.name, &observer.email],
            &mut observer_ids,
        );
    }

    if let Some(documents) = &input.documents {
        if let Some(main) = &documents.main {
            check_file(&mut invalid, "documents.main", main);
        }
        if documents.attachments.len() > MAX_ATTACHMENTS {
            invalid(
                "documents.attachments".into(),
                format!("at most {MAX_ATTACHMENTS} attachments"),
            );
        }
        for (index, attachment) in documents.attachments.iter().enumerate() {
            check_file(
                &mut invalid,
                &format!("documents.attachments[{index}]"),
                attachment,
            );
        }
    }

    if let Some(communication) = &input.communication {
        if language_tags::LanguageTag::parse(&communication.default_locale).is_err() {
            invalid(
                "communication.default_locale".into(),
                format!(
                    "`{}` is not a BCP 47 language tag",
                    communication.default_locale
                ),
            );
        }
    }

    if let Some(metadata) = &input.metadata {
        check_text(
            &mut invalid,
            "metadata.lookup_key",
            metadata.lookup_key.as_deref(),
        );
        if let Some(callback) = &metadata.success_callback_url {
            let is_web_url = url::Url::parse(callback)
                .map(|url| matches!(url.scheme(), "http" | "https") && url.has_host())
                .unwrap_or(false);
            if !is_web_url {
                invalid(
                    "metadata.success_callback_url".into(),
                    "must be an absolute http(s) URL".into(),
                );
            }
        }
    }

    issues
}

/// A participant's or an observer's `[id, name, email]`: the id unique among its kind, the texts
/// within bounds (emails are checked as emails before `pending`).
fn check_person(
    invalid: &mut impl FnMut(String, String),
    field: &str,
    [id, name, email]: [&Option<String>; 3],
    seen_ids: &mut HashSet<String>,
) {
    check_id(invalid, field, id.as_deref(), seen_ids);
    check_text(invalid, &format!("{field}.name"), name.as_deref());
    check_text(invalid, &format!("{field}.email"), email.as_deref());
}

fn check_text(invalid: &mut impl FnMut(String, String), field: &str, value: Option<&str>) {
    if let Some(value) = value {
        if value.chars().count() > MAX_TEXT_CHARS {
            invalid(field.into(), format!("at most {MAX_TEXT_CHARS} characters"));
        }
    }
}

fn check_id(
    invalid: &mut impl FnMut(String, String),
    field: &str,
    id: Option<&str>,
    seen: &mut HashSet<String>,
) {
    let Some(id) = id else { return };
    let url_safe = id
        .chars()
        .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_');
    if id.is_empty() || id.len() > MAX_ID_CHARS || !url_safe {
        invalid(
            format!("{field}.id"),
            format!("ids have 1 to {MAX_ID_CHARS} characters among letters, digits, `-` and `_`"),
        );
    } else if !seen.insert(id.to_owned()) {
        invalid(format!("{field}.id"), format!("id `{id}` is used twice"));
    }
}

fn check_bank_information(invalid: &mut impl FnMut(String, String), bank: &mut BankInformation) {
    check_text(
        invalid,
        "contract.bank_information.account_holder",
        bank.account_holder.as_deref(),
    );
    if let Some(iban) = bank.iban.as_mut() {
        let electronic: String = iban
            .chars()
            .filter(|c| !c.is_whitespace())
            .collect::<String>()
            .to_ascii_uppercase();
        match iban::Iban::from_str(&electronic) {
            Ok(_) => *iban = electronic,
            Err(error) => invalid(
                "contract.bank_information.iban".into(),
                format!("not a valid IBAN (ISO 13616): {error}"),
            ),
        }
    }
    if let Some(bic) = bank.bic.as_mut() {
        let normalised = bic.trim().to_ascii_uppercase();
        if is_bic(&normalised) {
            *bic = normalised;
        } else {
            invalid(
                "contract.bank_information.bic".into(),
                "not a valid BIC (ISO 9362: 8 or 11 characters)".into(),
            );
        }
    }
}

/// ISO 9362: 4 letters (institution), 2 letters (country), 2 alphanumerics (location), and an
/// optional 3-alphanumeric branch code.
fn is_bic(bic: &str) -> bool {
    let bytes = bic.as_bytes();
    (bytes.len() == 8 || bytes.len() == 11)
        && bytes[..6].iter().all(u8::is_ascii_uppercase)
        && bytes[6..]
            .iter()
            .all(|b| b.is_ascii_uppercase() || b.is_ascii_digit())
}

fn check_file(invalid: &mut impl FnMut(String, String), field: &str, file: &FileRefInput) {
    if file.filename.trim().is_empty() || file.filename.chars().count() > MAX_TEXT_CHARS {
        invalid(
            format!("{field}.filename"),
            format!("1 to {MAX_TEXT_CHARS} characters"),
        );
    }
    let mime_ok = file
        .mime_type
        .split_once('/')
        .is_some_and(|(kind, sub)| !kind.is_empty() && !sub.is_empty());
    if !mime_ok {
        invalid(
            format!("{field}.mime_type"),
            "a media type such as application/pdf".into(),
        );
    }
    if file.size == 0 {
        invalid(
            format!("{field}.size"),
            "a file has at least one byte".into(),
        );
    }
    if file.sha256.len() != 64 || !file.sha256.chars().all(|c| c.is_ascii_hexdigit()) {
        invalid(
            format!("{field}.sha256"),
            "64 hexadecimal characters".into(),
        );
    }
    if url::Url::parse(&file.uri).is_err() {
        invalid(format!("{field}.uri"), "an absolute URI".into());
    }
    if let Some(id) = &file.id {
        let url_safe = id
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_');
        if id.is_empty() || id.len() > MAX_ID_CHARS || !url_safe {
            invalid(
                format!("{field}.id"),
                format!(
                    "ids have 1 to {MAX_ID_CHARS} characters among letters, digits, `-` and `_`"
                ),
            );
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn with_bank(iban: &str, bic: Option<&str>) -> AgreementInput {
        AgreementInput {
            contract: Some(Contract {
                contract_id: None,
                proposal_id: None,
                bank_information: Some(BankInformation {
                    account_holder: Some("Ada".into()),
                    iban: Some(iban.into()),
                    bic: bic.map(str::to_owned),
                }),
            }),
            ..AgreementInput::default()
        }
    }

    #[test]
    fn a_valid_iban_is_normalised_to_its_electronic_form() {
        let mut input = with_bank("fr14 2004 1010 0505 0001 3m02 606", Some("bnpafrpp"));
        assert_eq!(check_input(&mut input), vec![]);
        let bank = input.contract.unwrap().bank_information.unwrap();
        assert_eq!(bank.iban.as_deref(), Some("FR1420041010050500013M02606"));
        assert_eq!(bank.bic.as_deref(), Some("BNPAFRPP"));
    }

    #[test]
    fn an_iban_failing_mod_97_is_invalid() {
        // Same IBAN with its check digits changed: mod-97 fails.
        let mut input = with_bank("FR1520041010050500013M02606", None);
        let issues = check_input(&mut input);
        assert_eq!(issues.len(), 1);
        assert_eq!(issues[0].code, IssueCode::ValidationFailed);
        assert_eq!(issues[0].field, "contract.bank_information.iban");
    }

    #[test]
    fn a_malformed_bic_is_invalid() {
        let mut input = with_bank("DE89370400440532013000", Some("BNP1"));
        let issues = check_input(&mut input);
        assert_eq!(issues.len(), 1);
        assert_eq!(issues[0].field, "contract.bank_information.bic");
    }

    #[test]
    fn expiry_out_of_range_and_bad_locale_are_all_reported() {
        let mut input = AgreementInput {
            expires_in_days: Some(366),
            communication: Some(Communication {
                send_emails: true,
                default_locale: "not a tag!".into(),
            }),
            ..AgreementInput::default()
        };
        let fields: Vec<String> = check_input(&mut input)
            .into_iter()
            .map(|i| i.field)
            .collect();
        assert_eq!(
            fields,
            vec!["expires_in_days", "communication.default_locale"]
        );
        input.expires_in_days = Some(0);
        assert!(check_input(&mut input)
            .iter()
            .any(|i| i.field == "expires_in_days"));
        input.expires_in_days = Some(365);
        input.communication = Some(Communication::default());
        assert!(check_input(&mut input).is_empty());
    }

    #[test]
    fn duplicate_participant_ids_and_group_zero_are_invalid() {
        let participant = |id: &str, group: u32| ParticipantInput {
            id: Some(id.into()),
            name: Some("A".into()),
            email: Some("a@example.com".into()),
            role: ParticipantRole::Signer,
            signing_group: group,
        };
        let mut input = AgreementInput {
            participants: vec![participant("p1", 1), participant("p1", 0)],
            ..AgreementInput::default()
        };
        let fields: Vec<String> = check_input(&mut input)
            .into_iter()
            .map(|i| i.field)
            .collect();
        assert_eq!(
            fields,
            vec!["participants[1].id", "participants[1].signing_group"]
        );
    }

    #[test]
    fn file_references_are_checked_field_by_field() {
        let mut input = AgreementInput {
            documents: Some(DocumentsInput {
                main: Some(FileRefInput {
                    id: None,
                    filename: "".into(),
                    mime_type: "pdf".into(),
                    size: 0,
                    sha256: "abc".into(),
                    uri: "not a uri".into(),
                }),
                attachments: vec![],
            }),
            ..AgreementInput::default()
        };
        assert_eq!(check_input(&mut input).len(), 5);
    }

    #[test]
    fn a_callback_url_must_be_http() {
        let mut input = AgreementInput {
            metadata: Some(Metadata {
                lookup_key: Some("k".into()),
                success_callback_url: Some("ftp://example.com/x".into()),
            }),
            ..AgreementInput::default()
        };
        assert_eq!(check_input(&mut input).len(), 1);
        input.metadata.as_mut().unwrap().success_callback_url =
            Some("https://example.com/done".into());
        assert!(check_input(&mut input).is_empty());
    }
}
