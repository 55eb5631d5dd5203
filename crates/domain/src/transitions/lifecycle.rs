//! SPEC section 2, lifecycle table (`pending`, `open`, `cancelled`), signing steps, and expiry.

use super::*;

impl Agreement {
    /// SPEC section 2, lifecycle table.
    pub fn decide_lifecycle(
        &self,
        request: LifecycleRequest,
        now: DateTime<Utc>,
    ) -> Result<Decision, DomainError> {
        use Status::*;
        match (self.status, request) {
            (Draft | Open, LifecycleRequest::Pending) => self.send_for_signature(now),
            (Pending, LifecycleRequest::Open) => Ok(Decision::Changed(self.reopen(now))),
            (Draft | Open | Pending, LifecycleRequest::Cancelled(reason)) => {
                Ok(Decision::Changed(self.cancel(reason, now)))
            }
            (status, request) if !status.is_terminal() && request.target() == status => {
                Ok(Decision::Unchanged)
            }
            (status, request) => Err(DomainError::InvalidTransition {
                from: status,
                requested: request.target().to_string(),
            }),
        }
    }

    pub(super) fn send_for_signature(&self, now: DateTime<Utc>) -> Result<Decision, DomainError> {
        let issues = readiness_issues(self);
        if !issues.is_empty() {
            return Err(DomainError::NotReady(issues));
        }
        let mut sent = self.clone();
        sent.status = Status::Pending;
        sent.reset_signing();
        sent.sent_at = Some(now);
        sent.expires_at = Some(now + Duration::days(i64::from(sent.expires_in_days)));
        let first_step = sent.first_step();
        Ok(Decision::Changed(self.change_to(
            sent,
            now,
            None,
            |agreement| {
                let mut drafts = vec![EntryDraft::new(EntryType::AgreementSentForSignature)];
                if let Some(step) = first_step {
                    drafts.push(agreement.invite_step(step, now));
                }
                drafts
            },
        )))
    }

    pub(super) fn reopen(&self, now: DateTime<Utc>) -> Transition {
        let mut reopened = self.clone();
        reopened.status = Status::Open;
        reopened.reset_signing();
        reopened.sent_at = None;
        reopened.expires_at = None;
        // A document signed in the abandoned round is not the outcome of the next one.
        reopened.documents.signed_document = None;
        self.change_to(reopened, now, None, |_| {
            vec![EntryDraft::new(EntryType::AgreementReopened)]
        })
    }

    pub(super) fn cancel(&self, reason: CancellationReason, now: DateTime<Utc>) -> Transition {
        let mut cancelled = self.clone();
        cancelled.status = Status::Cancelled;
        let text = reason.display_text();
        cancelled.cancellation_reason = Some(reason);
        self.change_to(cancelled, now, None, |_| {
            vec![EntryDraft::new(EntryType::AgreementCancelled).reason(text)]
        })
    }

    /// Every participant back to `SIGNATURE_PENDING`, failures and invitations cleared: the
    /// signing restarts from nothing (`pending` and `open` requests).
    pub(super) fn reset_signing(&mut self) {
        for participant in &mut self.participants {
            participant.status = ParticipantStatus::SignaturePending;
            participant.identity_check_failures = 0;
            participant.signed_at = None;
            participant.invited_at = None;
            participant.signing_room_url = None;
            participant.provider_reference = None;
        }
    }

    /// The step a participant signs in: its signing group (grouped order), its place in the list
    /// (ungrouped order), or 1 for everybody (no order).
    pub(super) fn step_of(&self, index: usize) -> u32 {
        match (self.signing_order.enabled, self.signing_order.grouped) {
            (false, _) => 1,
            (true, true) => self.participants[index].signing_group,
            (true, false) => u32::try_from(index + 1).unwrap_or(u32::MAX),
        }
    }

    /// The participants a `SigningGroupInvited` entry of `step` invites: all of them without
    /// signing order, a signing group with grouped order, one participant (list order) otherwise.
    pub fn participants_of_step(&self, step: u32) -> impl Iterator<Item = &Participant> {
        (0..self.participants.len())
            .filter(move |&index| self.step_of(index) == step)
            .map(|index| &self.participants[index])
    }

    pub(super) fn first_step(&self) -> Option<u32> {
        (0..self.participants.len()).map(|i| self.step_of(i)).min()
    }

    pub(super) fn next_step_after(&self, step: u32) -> Option<u32> {
        (0..self.participants.len())
            .map(|i| self.step_of(i))
            .filter(|s| *s > step)
            .min()
    }

    /// Releases the invitations of one step; its entry names the group.
    pub(super) fn invite_step(&mut self, step: u32, now: DateTime<Utc>) -> EntryDraft {
        for index in 0..self.participants.len() {
            if self.step_of(index) == step {
                self.participants[index].invited_at = Some(now);
            }
        }
        EntryDraft::new(EntryType::SigningGroupInvited).group(step)
    }

    /// Expiry (SPEC section 2): a pending agreement whose `expires_at` has passed. Anything else is
    /// unchanged, so a sweep that races another change is harmless.
    pub fn decide_expiry(&self, now: DateTime<Utc>) -> Decision {
        let due = self.expires_at.is_some_and(|expires_at| expires_at <= now);
        if self.status != Status::Pending || !due {
            return Decision::Unchanged;
        }
        let mut expired = self.clone();
        expired.status = Status::Expired;
        Decision::Changed(self.change_to(expired, now, None, |_| {
            vec![EntryDraft::new(EntryType::AgreementExpired)]
        }))
    }

    /// Sandbox `expire` (SPEC section 6): `expires_at` moves to now so the next sweep expires it.
    pub fn decide_sandbox_expire(&self, now: DateTime<Utc>) -> Result<Decision, DomainError> {
        if !self.test_mode {
            return Err(DomainError::NotInTestMode);
        }
        if self.status != Status::Pending {
            return Err(DomainError::InvalidTransition {
                from: self.status,
                requested: "expired".to_owned(),
            });
        }
        let mut moved = self.clone();
        moved.expires_at = Some(now);
        Ok(Decision::Changed(self.change_to(moved, now, None, |_| {
            vec![EntryDraft::new(EntryType::AgreementUpdated)
                .reason("sandbox: expires_at moved to now")]
        })))
    }
}
