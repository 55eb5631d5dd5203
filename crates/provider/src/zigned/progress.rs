//! How far the send of a signing round has got at Zigned, so that a redelivered or restarted
//! dispatch resumes where the last one stopped instead of starting again.
//!
//! The caller owns persistence: [`super::ZignedClient::advance_send`] makes at most one write
//! call to Zigned and returns the progress it made; the caller records it (a conditional write
//! on the agreement) before asking for the next step. A dispatch that dies between Zigned's
//! answer and that write repeats that one step on resume: for the step that creates the
//! agreement this is the only way a second Zigned agreement could appear, so the reference is
//! recorded before any other step runs.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

/// Zigned ids of what countersign created, by countersign's own ids. Serialised as JSON for the
/// store; every field has a default so that an older record stays readable.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct SendProgress {
    /// Zigned's agreement id: `provider.reference`. Once set, the agreement is never created again.
    pub agreement_reference: Option<String>,
    /// Files uploaded (`POST /files`), by countersign file id; reused by a later round while the
    /// document's sha256 is the same.
    pub files: BTreeMap<String, UploadedFile>,
    /// Set by [`SendProgress::reopened`]: the Zigned agreement holds a previous round, to be
    /// brought in line with the edited agreement before `pending` again.
    pub reopened: bool,
    /// After a reopen: the agreement's own fields were updated (`PUT /agreements/{id}`).
    pub fields_updated: bool,
    /// Objects of the previous round still to delete at Zigned.
    pub stale: StaleObjects,
    /// The countersign file id attached as the main document.
    pub main_document: Option<String>,
    /// Zigned attachment ids by countersign file id.
    pub attachments: BTreeMap<String, String>,
    /// Zigned participant ids by countersign participant id: each participant's `provider_reference`.
    pub participants: BTreeMap<String, String>,
    /// Zigned observer ids by countersign observer id.
    pub observers: BTreeMap<String, String>,
    /// Zigned signing group ids by countersign `signing_group` number.
    pub signing_groups: BTreeMap<u32, String>,
    /// Zigned accepted `lifecycle` `pending`: the round is sent.
    pub sent: bool,
    /// The countersign round (its `sent_at`) this progress is for: a send for another round
    /// first pauses and resets what Zigned holds.
    pub round: Option<chrono::DateTime<chrono::Utc>>,
    /// Zigned accepted `lifecycle` `cancelled`.
    pub cancelled: bool,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct UploadedFile {
    /// The sha256 of the bytes uploaded (hex, as in the file reference).
    pub sha256: String,
    /// Zigned's file id.
    pub file_id: String,
}

/// Zigned objects of a previous round, deleted before the round is rebuilt.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct StaleObjects {
    pub signing_groups: Vec<String>,
    pub participants: Vec<String>,
    pub observers: Vec<String>,
    pub attachments: Vec<String>,
    /// The main document is attached and must be detached first.
    pub main_document: bool,
}

impl StaleObjects {
    pub fn is_empty(&self) -> bool {
        self.signing_groups.is_empty()
            && self.participants.is_empty()
            && self.observers.is_empty()
            && self.attachments.is_empty()
            && !self.main_document
    }
}

impl SendProgress {
    /// The progress after Zigned accepted `lifecycle` `open` (pause and reset): the round's
    /// participants, observers, groups and documents become stale, to be replaced by the edited
    /// agreement's on the next send (so events of the old round name references the agreement
    /// no longer carries). Files and the agreement reference are kept.
    pub fn reopened(mut self) -> SendProgress {
        let mut stale = std::mem::take(&mut self.stale);
        stale
            .signing_groups
            .extend(std::mem::take(&mut self.signing_groups).into_values());
        stale
            .participants
            .extend(std::mem::take(&mut self.participants).into_values());
        stale
            .observers
            .extend(std::mem::take(&mut self.observers).into_values());
        stale
            .attachments
            .extend(std::mem::take(&mut self.attachments).into_values());
        stale.main_document |= self.main_document.take().is_some();
        SendProgress {
            stale,
            reopened: true,
            fields_updated: false,
            sent: false,
            ..self
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_empty_record_reads_as_no_progress() {
        let progress: SendProgress = serde_json::from_str("{}").unwrap();
        assert_eq!(progress, SendProgress::default());
    }

    #[test]
    fn reopening_makes_the_round_stale_and_keeps_the_agreement_and_files() {
        let mut progress = SendProgress {
            agreement_reference: Some("agr".into()),
            main_document: Some("main".into()),
            sent: true,
            ..SendProgress::default()
        };
        progress.files.insert(
            "main".into(),
            UploadedFile {
                sha256: "ab".into(),
                file_id: "f1".into(),
            },
        );
        progress.participants.insert("ada".into(), "p1".into());
        progress.observers.insert("obs".into(), "o1".into());
        progress.signing_groups.insert(1, "g1".into());
        progress.attachments.insert("annex".into(), "a1".into());

        let reopened = progress.clone().reopened();
        assert_eq!(reopened.agreement_reference.as_deref(), Some("agr"));
        assert_eq!(reopened.files, progress.files);
        assert!(reopened.reopened && !reopened.sent && !reopened.fields_updated);
        assert!(reopened.participants.is_empty() && reopened.main_document.is_none());
        assert_eq!(
            reopened.stale,
            StaleObjects {
                signing_groups: vec!["g1".into()],
                participants: vec!["p1".into()],
                observers: vec!["o1".into()],
                attachments: vec!["a1".into()],
                main_document: true,
            }
        );
        let json = serde_json::to_string(&reopened).unwrap();
        assert_eq!(
            serde_json::from_str::<SendProgress>(&json).unwrap(),
            reopened
        );
    }
}
