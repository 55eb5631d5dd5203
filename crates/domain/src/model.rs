//! The agreement resource (SPEC section 1) and its parts.

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use crate::status::{Journey, SignatureStatus, Status};

/// Minimum trust level of the signatures.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, Default)]
pub enum TrustLevel {
    #[default]
    #[serde(rename = "SES")]
    Ses,
    #[serde(rename = "AES")]
    Aes,
    #[serde(rename = "QES")]
    Qes,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(rename_all = "snake_case")]
pub enum ParticipantRole {
    #[default]
    Signer,
    Approver,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(rename_all = "snake_case")]
pub enum IssuerRole {
    #[default]
    Signer,
    Approver,
    Observer,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(rename_all = "snake_case")]
pub enum ObserverScope {
    #[default]
    Viewer,
    Cc,
}

/// A signatory's status (the seed's "Signatory" table). All but `SignaturePending` are final.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum ParticipantStatus {
    #[default]
    SignaturePending,
    SignatureComplete,
    SignatoryDeliveryFailed,
    IdentityCheckFailed,
    SignatureRefused,
}

impl ParticipantStatus {
    pub fn is_final(self) -> bool {
        self != ParticipantStatus::SignaturePending
    }

    /// A participant in one of these stops the customer journey while the agreement stays pending.
    pub fn stops_journey(self) -> bool {
        matches!(
            self,
            ParticipantStatus::SignatoryDeliveryFailed | ParticipantStatus::IdentityCheckFailed
        )
    }

    pub fn as_str(self) -> &'static str {
        match self {
            ParticipantStatus::SignaturePending => "SIGNATURE_PENDING",
            ParticipantStatus::SignatureComplete => "SIGNATURE_COMPLETE",
            ParticipantStatus::SignatoryDeliveryFailed => "SIGNATORY_DELIVERY_FAILED",
            ParticipantStatus::IdentityCheckFailed => "IDENTITY_CHECK_FAILED",
            ParticipantStatus::SignatureRefused => "SIGNATURE_REFUSED",
        }
    }
}

/// A reference to a file held elsewhere (countersign renders and stores no documents).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FileRef {
    pub id: String,
    pub filename: String,
    pub mime_type: String,
    pub size: u64,
    pub sha256: String,
    pub uri: String,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, Default)]
pub struct Documents {
    pub main: Option<FileRef>,
    #[serde(default)]
    pub attachments: Vec<FileRef>,
    /// Server-owned: recorded when the provider delivers the signed document.
    pub signed_document: Option<FileRef>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct BankInformation {
    pub account_holder: Option<String>,
    pub iban: Option<String>,
    pub bic: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(deny_unknown_fields)]
pub struct Contract {
    pub contract_id: Option<String>,
    pub proposal_id: Option<String>,
    pub bank_information: Option<BankInformation>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Issuer {
    pub name: Option<String>,
    pub email: Option<String>,
    #[serde(default)]
    pub role: IssuerRole,
    pub participant_id: Option<String>,
}

/// A signatory: someone who signs or approves.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Participant {
    pub id: String,
    pub name: Option<String>,
    pub email: Option<String>,
    pub role: ParticipantRole,
    pub signing_group: u32,
    pub status: ParticipantStatus,
    pub identity_check_failures: u32,
    pub signed_at: Option<DateTime<Utc>>,
    /// When this participant's invitation was released (its signing group's turn came).
    pub invited_at: Option<DateTime<Utc>>,
    /// Set by the provider once the envelope is sent; the sandbox sends none.
    pub signing_room_url: Option<String>,
    /// The provider's id for this participant in the current signing round (SPEC section 9),
    /// recorded with `AgreementDeliveredToProvider`; `None` before and after a reopen.
    #[serde(default)]
    pub provider_reference: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Observer {
    pub id: String,
    pub name: Option<String>,
    pub email: Option<String>,
    #[serde(default)]
    pub scope: ObserverScope,
}

/// When `enabled`, group N+1 is invited only once group N has all signed. With `grouped` the
/// participants' `signing_group` numbers form the steps; without it every participant is its own
/// step, in list order.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(deny_unknown_fields)]
pub struct SigningOrder {
    #[serde(default)]
    pub enabled: bool,
    #[serde(default)]
    pub grouped: bool,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Communication {
    pub send_emails: bool,
    /// BCP 47 language tag.
    pub default_locale: String,
}

impl Default for Communication {
    fn default() -> Self {
        Communication {
            send_emails: true,
            default_locale: "en".to_owned(),
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(deny_unknown_fields)]
pub struct Metadata {
    pub lookup_key: Option<String>,
    pub success_callback_url: Option<String>,
}

/// Why an agreement was cancelled.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case", tag = "reason", content = "description")]
pub enum CancellationReason {
    InvalidDocument,
    InvalidParticipant,
    InvalidEmail,
    Custom(String),
    /// Cancelled on the provider's side by its operations team (SPEC section 2), never asked
    /// for by a client.
    ProviderCancelled,
}

impl CancellationReason {
    pub const CUSTOM_MIN_CHARS: usize = 10;
    pub const CUSTOM_MAX_CHARS: usize = 255;

    /// Builds a reason from the request's `reason` and `description`, checking the custom bounds.
    pub fn parse(reason: &str, description: Option<&str>) -> Result<Self, String> {
        match (reason, description) {
            ("invalid_document", None) => Ok(CancellationReason::InvalidDocument),
            ("invalid_participant", None) => Ok(CancellationReason::InvalidParticipant),
            ("invalid_email", None) => Ok(CancellationReason::InvalidEmail),
            ("invalid_document" | "invalid_participant" | "invalid_email", Some(_)) => {
                Err(format!("reason `{reason}` takes no description"))
            }
            ("custom", Some(text)) => {
                let chars = text.trim().chars().count();
                if (Self::CUSTOM_MIN_CHARS..=Self::CUSTOM_MAX_CHARS).contains(&chars) {
                    Ok(CancellationReason::Custom(text.trim().to_owned()))
                } else {
                    Err(format!(
                        "a custom description has {} to {} characters, this one has {chars}",
                        Self::CUSTOM_MIN_CHARS,
                        Self::CUSTOM_MAX_CHARS
                    ))
                }
            }
            ("custom", None) => Err("reason `custom` needs a `description`".to_owned()),
            (other, _) => Err(format!(
                "unknown reason `{other}`: expected invalid_document, invalid_participant, invalid_email or custom"
            )),
        }
    }

    /// What `cancellation_reason` shows: the reason code, or the custom description.
    pub fn display_text(&self) -> String {
        match self {
            CancellationReason::InvalidDocument => "invalid_document".to_owned(),
            CancellationReason::InvalidParticipant => "invalid_participant".to_owned(),
            CancellationReason::InvalidEmail => "invalid_email".to_owned(),
            CancellationReason::Custom(text) => text.clone(),
            CancellationReason::ProviderCancelled => "provider_cancelled".to_owned(),
        }
    }
}

/// The name of the built-in sandbox provider (SPEC section 6): it carries `test_mode` agreements
/// only, and its webhooks can never move a live one.
pub const SANDBOX_PROVIDER: &str = "sandbox";

/// The provider that carries the agreement's signing round (SPEC section 9), fixed when the
/// agreement is created (from `test_mode` and the configured routing). Only this provider's
/// webhooks apply to the agreement.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, Default)]
pub struct ProviderOfRecord {
    pub name: String,
    /// The provider's own id for the signing round; `None` until sent.
    pub reference: Option<String>,
}

/// The agreement (envelope). `signature_status` and `journey` are derived, never stored.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Agreement {
    pub id: String,
    pub tenant: String,
    pub test_mode: bool,
    /// Records written before the field existed read as no provider, which no webhook matches.
    #[serde(default)]
    pub provider: ProviderOfRecord,
    pub status: Status,
    pub trust_level: TrustLevel,
    pub cancellation_reason: Option<CancellationReason>,
    pub contract: Option<Contract>,
    pub issuer: Option<Issuer>,
    pub participants: Vec<Participant>,
    pub observers: Vec<Observer>,
    pub signing_order: SigningOrder,
    pub documents: Documents,
    pub communication: Communication,
    pub metadata: Metadata,
    pub expires_in_days: u16,
    pub sent_at: Option<DateTime<Utc>>,
    pub expires_at: Option<DateTime<Utc>>,
    pub completed_at: Option<DateTime<Utc>>,
    /// The round (its `sent_at`) whose delivery to the provider is recorded
    /// (`AgreementDeliveredToProvider`); internal, not shown by the API.
    #[serde(default)]
    pub delivered_round: Option<DateTime<Utc>>,
    /// +1 on every change; the ETag.
    pub version: u64,
    /// Number of history entries, changes and ignored provider events alike.
    pub history_len: u64,
    /// Number of history entries that were published (changes only).
    pub published_len: u64,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
}

impl Agreement {
    pub fn signature_status(&self) -> Option<SignatureStatus> {
        self.status.signature_status()
    }

    /// `STOPPED` once a participant of a pending agreement failed delivery or identity checks.
    pub fn journey(&self) -> Journey {
        match self.status {
            Status::Draft | Status::Open => Journey::Waiting,
            Status::Pending if self.journey_stopping_participant().is_some() => Journey::Stopped,
            Status::Pending => Journey::Waiting,
            Status::Fulfilled => Journey::Proceed,
            Status::Cancelled | Status::Expired | Status::Refused | Status::Failed => {
                Journey::Stopped
            }
        }
    }

    /// Why the journey stopped: the envelope status, or the participant status that stopped it.
    pub fn journey_stopped_reason(&self) -> Option<&'static str> {
        match self.status {
            Status::Pending => self
                .journey_stopping_participant()
                .map(|participant| participant.status.as_str()),
            Status::Cancelled | Status::Expired | Status::Refused | Status::Failed => {
                self.status.signature_status().map(SignatureStatus::as_str)
            }
            Status::Draft | Status::Open | Status::Fulfilled => None,
        }
    }

    fn journey_stopping_participant(&self) -> Option<&Participant> {
        self.participants
            .iter()
            .find(|participant| participant.status.stops_journey())
    }

    pub fn participant(&self, participant_id: &str) -> Option<&Participant> {
        self.participants
            .iter()
            .find(|participant| participant.id == participant_id)
    }

    pub fn lookup_key(&self) -> Option<&str> {
        self.metadata.lookup_key.as_deref()
    }
}
