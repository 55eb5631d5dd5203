//! SPEC section 2, provider event table, and the provider's delivery of a round (SPEC section 9).

use super::*;

impl Agreement {
    /// SPEC section 2, provider event table. Never fails: what cannot apply is ignored.
    pub fn decide_provider_event(
        &self,
        event: &ProviderEvent,
        rules: &Rules,
        now: DateTime<Utc>,
    ) -> Decision {
        let ignore = |reason: IgnoreReason| self.ignore_event(event, reason, now);
        // Who signed the webhook comes first: another provider's event proves nothing here.
        if event.provider != self.provider.name {
            return ignore(IgnoreReason::NotItsProvider {
                provider: event.provider.clone(),
                provider_of_record: self.provider.name.clone(),
            });
        }
        if event.provider == SANDBOX_PROVIDER && !self.test_mode {
            return ignore(IgnoreReason::SandboxOnLiveAgreement);
        }
        if let ProviderEventKind::Unusable {
            event_type,
            problem,
        } = &event.kind
        {
            return ignore(IgnoreReason::Unusable {
                event_type: event_type.clone(),
                problem: problem.clone(),
            });
        }
        let applies = match &event.kind {
            ProviderEventKind::SignedDocument { .. } => {
                matches!(self.status, Status::Pending | Status::Fulfilled)
            }
            ProviderEventKind::ParticipantSigned { .. }
            | ProviderEventKind::ParticipantRefused { .. }
            | ProviderEventKind::ParticipantDeliveryFailed { .. }
            | ProviderEventKind::ParticipantIdentityCheckFailed { .. }
            | ProviderEventKind::AgreementFailed
            | ProviderEventKind::AgreementCancelled
            | ProviderEventKind::AgreementExpired
            | ProviderEventKind::Unusable { .. } => self.status == Status::Pending,
        };
        if !applies {
            return ignore(IgnoreReason::AgreementNotPending(self.status));
        }
        let event_id = Some(event.event_id.as_str());

        match &event.kind {
            ProviderEventKind::SignedDocument { document } => {
                let mut recorded = self.clone();
                recorded.documents.signed_document = Some(document.clone());
                if recorded == *self {
                    return ignore(IgnoreReason::SignedDocumentAlreadyRecorded);
                }
                Decision::Changed(self.change_to(recorded, now, event_id, |_| {
                    vec![EntryDraft::new(EntryType::SignedDocumentStored)]
                }))
            }
            ProviderEventKind::AgreementFailed => {
                let mut failed = self.clone();
                failed.status = Status::Failed;
                Decision::Changed(self.change_to(failed, now, event_id, |_| {
                    vec![EntryDraft::new(EntryType::AgreementFailed)]
                }))
            }
            ProviderEventKind::AgreementCancelled => {
                let mut cancelled = self.clone();
                cancelled.status = Status::Cancelled;
                cancelled.cancellation_reason = Some(CancellationReason::ProviderCancelled);
                Decision::Changed(self.change_to(cancelled, now, event_id, |_| {
                    vec![EntryDraft::new(EntryType::AgreementCancelled)
                        .reason(CancellationReason::ProviderCancelled.display_text())]
                }))
            }
            ProviderEventKind::AgreementExpired => {
                let mut expired = self.clone();
                expired.status = Status::Expired;
                Decision::Changed(self.change_to(expired, now, event_id, |_| {
                    vec![EntryDraft::new(EntryType::AgreementExpired)
                        .reason("expired at the provider")]
                }))
            }
            ProviderEventKind::ParticipantSigned { participant_id } => {
                self.participant_event(participant_id, ParticipantAction::Signed, event, rules, now)
            }
            ProviderEventKind::ParticipantRefused { participant_id } => self.participant_event(
                participant_id,
                ParticipantAction::Refused,
                event,
                rules,
                now,
            ),
            ProviderEventKind::ParticipantDeliveryFailed { participant_id } => self
                .participant_event(
                    participant_id,
                    ParticipantAction::DeliveryFailed,
                    event,
                    rules,
                    now,
                ),
            ProviderEventKind::ParticipantIdentityCheckFailed { participant_id } => self
                .participant_event(
                    participant_id,
                    ParticipantAction::IdentityCheckFailed,
                    event,
                    rules,
                    now,
                ),
            ProviderEventKind::Unusable { .. } => unreachable_unusable(),
        }
    }

    /// A participant's event: ignored for an unknown, final or not yet invited participant,
    /// else applied as `action` says.
    pub(super) fn participant_event(
        &self,
        participant_id: &str,
        action: ParticipantAction,
        event: &ProviderEvent,
        rules: &Rules,
        now: DateTime<Utc>,
    ) -> Decision {
        let ignore = |reason: IgnoreReason| self.ignore_event(event, reason, now);
        let Some(index) = self
            .participants
            .iter()
            .position(|participant| participant.id == participant_id)
        else {
            return ignore(IgnoreReason::UnknownParticipant(participant_id.to_owned()));
        };
        let participant = &self.participants[index];
        if participant.status.is_final() {
            return ignore(IgnoreReason::ParticipantFinal {
                participant_id: participant_id.to_owned(),
                status: participant.status,
            });
        }
        if participant.invited_at.is_none() {
            return ignore(IgnoreReason::ParticipantNotInvited(
                participant_id.to_owned(),
            ));
        }
        let event_id = Some(event.event_id.as_str());
        Decision::Changed(match action {
            ParticipantAction::Signed => {
                self.participant_signed(index, event.occurred_at, now, event_id)
            }
            ParticipantAction::Refused => self.participant_refused(index, now, event_id),
            ParticipantAction::DeliveryFailed => {
                self.participant_delivery_failed(index, now, event_id)
            }
            ParticipantAction::IdentityCheckFailed => {
                self.identity_check_failed(index, rules, now, event_id)
            }
        })
    }

    pub(super) fn participant_signed(
        &self,
        index: usize,
        signed_at: DateTime<Utc>,
        now: DateTime<Utc>,
        event_id: Option<&str>,
    ) -> Transition {
        let mut next = self.clone();
        next.participants[index].status = ParticipantStatus::SignatureComplete;
        next.participants[index].signed_at = Some(signed_at);
        let participant_id = next.participants[index].id.clone();
        let all_signed = next
            .participants
            .iter()
            .all(|participant| participant.status == ParticipantStatus::SignatureComplete);
        let step = next.step_of(index);
        let step_done = (0..next.participants.len())
            .filter(|&i| next.step_of(i) == step)
            .all(|i| next.participants[i].status == ParticipantStatus::SignatureComplete);
        if all_signed {
            next.status = Status::Fulfilled;
            next.completed_at = Some(now);
        }
        self.change_to(next, now, event_id, |agreement| {
            let mut drafts =
                vec![EntryDraft::new(EntryType::ParticipantSigned).participant(&participant_id)];
            if all_signed {
                drafts.push(EntryDraft::new(EntryType::AgreementFulfilled));
            } else if step_done {
                if let Some(next_step) = agreement.next_step_after(step) {
                    drafts.push(agreement.invite_step(next_step, now));
                }
            }
            drafts
        })
    }

    pub(super) fn participant_refused(
        &self,
        index: usize,
        now: DateTime<Utc>,
        event_id: Option<&str>,
    ) -> Transition {
        let mut next = self.clone();
        next.participants[index].status = ParticipantStatus::SignatureRefused;
        next.status = Status::Refused;
        let participant_id = next.participants[index].id.clone();
        self.change_to(next, now, event_id, |_| {
            vec![
                EntryDraft::new(EntryType::ParticipantRefused).participant(&participant_id),
                EntryDraft::new(EntryType::AgreementRefused).participant(&participant_id),
            ]
        })
    }

    pub(super) fn participant_delivery_failed(
        &self,
        index: usize,
        now: DateTime<Utc>,
        event_id: Option<&str>,
    ) -> Transition {
        let mut next = self.clone();
        next.participants[index].status = ParticipantStatus::SignatoryDeliveryFailed;
        let participant_id = next.participants[index].id.clone();
        self.change_to(next, now, event_id, |_| {
            vec![EntryDraft::new(EntryType::ParticipantDeliveryFailed).participant(&participant_id)]
        })
    }

    pub(super) fn identity_check_failed(
        &self,
        index: usize,
        rules: &Rules,
        now: DateTime<Utc>,
        event_id: Option<&str>,
    ) -> Transition {
        let mut next = self.clone();
        let participant = &mut next.participants[index];
        participant.identity_check_failures += 1;
        let attempts = participant.identity_check_failures;
        let limit = rules.identity_check_attempts.max(1);
        if attempts >= limit {
            participant.status = ParticipantStatus::IdentityCheckFailed;
        }
        let participant_id = participant.id.clone();
        self.change_to(next, now, event_id, |_| {
            vec![EntryDraft::new(EntryType::ParticipantIdentityCheckFailed)
                .participant(&participant_id)
                .reason(format!("failed identity check {attempts} of {limit}"))]
        })
    }

    /// The provider has the round `round` (the `sent_at` of the `pending` that started it) and
    /// sent its invitations (SPEC section 9): its reference and each participant's are recorded,
    /// with `AgreementDeliveredToProvider`. Unchanged when that round is over (reopened,
    /// cancelled, finished) or the same delivery is already recorded, so a repeat is harmless.
    pub fn decide_delivered(
        &self,
        round: DateTime<Utc>,
        delivery: &Delivery,
        now: DateTime<Utc>,
    ) -> Decision {
        if self.status != Status::Pending || self.sent_at != Some(round) {
            return Decision::Unchanged;
        }
        let mut delivered = self.clone();
        delivered.provider.reference = delivery.reference.clone();
        for participant in &mut delivered.participants {
            if let Some(reference) = delivery.participants.get(&participant.id) {
                participant.provider_reference = Some(reference.clone());
            }
            if let Some(url) = delivery.signing_room_urls.get(&participant.id) {
                participant.signing_room_url = Some(url.clone());
            }
        }
        if delivered == *self && self.delivered_round == Some(round) {
            return Decision::Unchanged;
        }
        delivered.delivered_round = Some(round);
        let provider = self.provider.name.clone();
        Decision::Changed(self.change_to(delivered, now, None, |_| {
            vec![EntryDraft::new(EntryType::AgreementDeliveredToProvider)
                .reason(format!("delivered to {provider}"))]
        }))
    }

    /// The round `round` could not be delivered and retrying cannot fix it (a document that
    /// cannot be read or does not match its `size`/`sha256`, a provider's refusal): `failed`,
    /// with why in the history entry. Unchanged when that round is already over.
    pub fn decide_delivery_failed(
        &self,
        round: DateTime<Utc>,
        reason: &str,
        now: DateTime<Utc>,
    ) -> Decision {
        if self.status != Status::Pending || self.sent_at != Some(round) {
            return Decision::Unchanged;
        }
        let mut failed = self.clone();
        failed.status = Status::Failed;
        Decision::Changed(self.change_to(failed, now, None, |_| {
            vec![EntryDraft::new(EntryType::AgreementFailed).reason(reason)]
        }))
    }

    /// True while the current round is pending and its delivery is not recorded yet: a
    /// provider event naming a participant reference may be early rather than stale.
    pub fn awaits_delivery(&self) -> bool {
        self.status == Status::Pending
            && self.sent_at.is_some()
            && self.delivered_round != self.sent_at
    }
}
