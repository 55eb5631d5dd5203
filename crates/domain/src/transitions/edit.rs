//! Edits (PATCH) of a `draft` or `open` agreement, and the input a merge patch applies to.

use super::*;

impl Agreement {
    /// The editable fields as a client would send them: the document a merge patch applies to.
    pub fn editable_input(&self) -> AgreementInput {
        AgreementInput {
            test_mode: None,
            trust_level: Some(self.trust_level),
            contract: self.contract.clone(),
            issuer: self.issuer.clone(),
            participants: self
                .participants
                .iter()
                .map(|participant| ParticipantInput {
                    id: Some(participant.id.clone()),
                    name: participant.name.clone(),
                    email: participant.email.clone(),
                    role: participant.role,
                    signing_group: participant.signing_group,
                })
                .collect(),
            observers: self
                .observers
                .iter()
                .map(|observer| ObserverInput {
                    id: Some(observer.id.clone()),
                    name: observer.name.clone(),
                    email: observer.email.clone(),
                    scope: observer.scope,
                })
                .collect(),
            signing_order: Some(self.signing_order),
            documents: Some(DocumentsInput {
                main: self.documents.main.as_ref().map(Into::into),
                attachments: self.documents.attachments.iter().map(Into::into).collect(),
            }),
            communication: Some(self.communication.clone()),
            metadata: Some(self.metadata.clone()),
            expires_in_days: Some(self.expires_in_days),
        }
    }

    /// An edit (PATCH) of a `draft` or `open` agreement. Participants are rebuilt from the input:
    /// in these statuses none has signed or failed anything yet.
    pub fn decide_edit(
        &self,
        mut input: AgreementInput,
        now: DateTime<Utc>,
        rules: &Rules,
        ids: &mut dyn IdSource,
    ) -> Result<Decision, DomainError> {
        if !self.status.is_editable() {
            return Err(DomainError::NotEditable {
                status: self.status,
            });
        }
        let mut issues = check_input(&mut input);
        if input
            .test_mode
            .is_some_and(|test_mode| test_mode != self.test_mode)
        {
            issues.push(crate::error::Issue::new(
                crate::error::IssueCode::ValidationFailed,
                "test_mode",
                "fixed when the agreement is created",
            ));
        }
        if !issues.is_empty() {
            return Err(DomainError::Invalid(issues));
        }
        let mut edited = self.clone();
        edited.set_editable(input, rules, ids);
        if edited == *self {
            return Ok(Decision::Unchanged);
        }
        Ok(Decision::Changed(self.change_to(edited, now, None, |_| {
            vec![EntryDraft::new(EntryType::AgreementUpdated)]
        })))
    }

    pub(super) fn set_editable(
        &mut self,
        input: AgreementInput,
        rules: &Rules,
        ids: &mut dyn IdSource,
    ) {
        self.trust_level = input.trust_level.unwrap_or_default();
        self.contract = input.contract;
        self.issuer = input.issuer;
        self.participants = input
            .participants
            .into_iter()
            .map(|participant| Participant {
                id: participant.id.unwrap_or_else(|| ids.new_id()),
                name: participant.name,
                email: participant.email,
                role: participant.role,
                signing_group: participant.signing_group,
                status: ParticipantStatus::SignaturePending,
                identity_check_failures: 0,
                signed_at: None,
                invited_at: None,
                signing_room_url: None,
                provider_reference: None,
            })
            .collect();
        self.observers = input
            .observers
            .into_iter()
            .map(|observer| Observer {
                id: observer.id.unwrap_or_else(|| ids.new_id()),
                name: observer.name,
                email: observer.email,
                scope: observer.scope,
            })
            .collect();
        self.signing_order = input.signing_order.unwrap_or_default();
        let documents = input.documents.unwrap_or_default();
        self.documents.main = documents.main.map(|file| file.into_file_ref(ids));
        self.documents.attachments = documents
            .attachments
            .into_iter()
            .map(|file| file.into_file_ref(ids))
            .collect();
        self.communication = input.communication.unwrap_or_default();
        self.metadata = input.metadata.unwrap_or_default();
        self.expires_in_days = input
            .expires_in_days
            .unwrap_or(rules.default_expires_in_days);
    }
}
