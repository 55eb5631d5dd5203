//! The consumer-facing operations: create, read, list, edit, lifecycle, sandbox expiry. Every
//! change is read → decide (domain) → one guarded commit, retried on conflict.

use std::collections::BTreeSet;
use std::sync::Arc;

use chrono::{DateTime, Utc};
use countersign_domain::{
    Agreement, AgreementInput, Decision, DomainError, HistoryEntry, LifecycleRequest, Rules, Status,
};
use countersign_store::{Commit, CommitError, ListPage, ListQuery, Store, StoreError};

use crate::clock::Clock;
use crate::commit::{read_decide_commit, Applied, Start, Step, Write};
use crate::error::ServiceError;
use crate::idempotency::{answer, Answer, IdempotencyIntent};
use crate::ids::{new_id, RandomIds};
use crate::retry::RetryPolicy;

pub struct AgreementService<S: ?Sized> {
    store: Arc<S>,
    clock: Arc<dyn Clock>,
    rules: Rules,
    retry: RetryPolicy,
    /// The providers configured to send; `None`: not checked (handler tests).
    sending_providers: Option<BTreeSet<String>>,
}

impl<S: Store + ?Sized> AgreementService<S> {
    pub fn new(store: Arc<S>, clock: Arc<dyn Clock>, rules: Rules, retry: RetryPolicy) -> Self {
        AgreementService {
            store,
            clock,
            rules,
            retry,
            sending_providers: None,
        }
    }

    /// Only agreements whose provider is among `names` may be sent (`pending`); the others are
    /// refused with `PROVIDER_NOT_CONFIGURED` and nothing changes.
    pub fn with_sending_providers<'a>(mut self, names: impl IntoIterator<Item = &'a str>) -> Self {
        self.sending_providers = Some(names.into_iter().map(str::to_owned).collect());
        self
    }

    pub fn now(&self) -> DateTime<Utc> {
        self.clock.now()
    }

    /// `run` as the request's `Idempotency-Key` asks ([`answer`]).
    async fn answered(
        &self,
        tenant: &str,
        idempotency: Option<&IdempotencyIntent<'_>>,
        run: impl std::future::Future<Output = Result<Agreement, ServiceError>>,
    ) -> Result<Answer, ServiceError> {
        answer(
            self.store.as_ref(),
            tenant,
            idempotency,
            self.clock.now(),
            run,
        )
        .await
    }

    /// A new draft: one commit that must not find the id taken (with the key's record, when
    /// the request carries one).
    pub async fn create(
        &self,
        tenant: &str,
        input: AgreementInput,
        idempotency: Option<&IdempotencyIntent<'_>>,
    ) -> Result<Answer, ServiceError> {
        let run = self.create_draft(tenant, input, idempotency);
        self.answered(tenant, idempotency, run).await
    }

    async fn create_draft(
        &self,
        tenant: &str,
        input: AgreementInput,
        idempotency: Option<&IdempotencyIntent<'_>>,
    ) -> Result<Agreement, ServiceError> {
        for attempt in 0..self.retry.max_attempts {
            let now = self.clock.now();
            let transition = Agreement::create(
                new_id(),
                tenant.to_owned(),
                input.clone(),
                now,
                &self.rules,
                &mut RandomIds,
            )?;
            let idempotency =
                idempotency.map(|intent| intent.record(tenant, &transition.agreement, now));
            let agreement = transition.agreement.clone();
            match self
                .store
                .commit(Commit {
                    transition,
                    expected: None,
                    idempotency,
                    provider_event: None,
                })
                .await
            {
                Ok(()) => return Ok(agreement),
                // A 129-bit id collision: draw another.
                Err(CommitError::Conflict) => self.retry.pause(attempt).await,
                Err(other) => return Err(other.into()),
            }
        }
        Err(ServiceError::Contention)
    }

    /// The tenant's agreement; another tenant's is not found.
    pub async fn get(&self, tenant: &str, id: &str) -> Result<Arc<Agreement>, ServiceError> {
        match self.store.get_agreement(id).await? {
            Some(agreement) if agreement.tenant == tenant => Ok(agreement),
            _ => Err(ServiceError::NotFound),
        }
    }

    pub async fn list(&self, query: &ListQuery) -> Result<ListPage, ServiceError> {
        Ok(self.store.list_agreements(query).await?)
    }

    pub async fn history(&self, tenant: &str, id: &str) -> Result<Vec<HistoryEntry>, ServiceError> {
        self.get(tenant, id).await?;
        Ok(self.store.history(id).await?)
    }

    /// An edit: `make_input` turns the agreement's editable input as read (as JSON) into the
    /// edited input (a merge patch applied to it), again on every retry since the base may have
    /// moved.
    pub async fn edit(
        &self,
        tenant: &str,
        id: &str,
        if_match: Option<u64>,
        make_input: &(dyn Fn(serde_json::Value) -> Result<AgreementInput, ServiceError>
              + Send
              + Sync),
    ) -> Result<Agreement, ServiceError> {
        self.change(tenant, id, if_match, None, |agreement, now| {
            let editable = serde_json::to_value(agreement.editable_input()).map_err(|error| {
                StoreError::Corrupt(format!("agreement {} as an input: {error}", agreement.id))
            })?;
            let input = make_input(editable)?;
            Ok(agreement.decide_edit(input, now, &self.rules, &mut RandomIds)?)
        })
        .await
    }

    pub async fn lifecycle(
        &self,
        tenant: &str,
        id: &str,
        request: LifecycleRequest,
        if_match: Option<u64>,
        idempotency: Option<&IdempotencyIntent<'_>>,
    ) -> Result<Answer, ServiceError> {
        let run = self.change(tenant, id, if_match, idempotency, |agreement, now| {
            let sends = request == LifecycleRequest::Pending
                && matches!(agreement.status, Status::Draft | Status::Open);
            let configured = self
                .sending_providers
                .as_ref()
                .is_none_or(|names| names.contains(&agreement.provider.name));
            if sends && !configured {
                return Err(ServiceError::ProviderNotConfigured {
                    provider: agreement.provider.name.clone(),
                });
            }
            Ok(agreement.decide_lifecycle(request.clone(), now)?)
        });
        self.answered(tenant, idempotency, run).await
    }

    /// Sandbox `expire`: only for test-mode agreements (others are not found).
    pub async fn sandbox_expire(&self, tenant: &str, id: &str) -> Result<Agreement, ServiceError> {
        self.change(tenant, id, None, None, |agreement, now| {
            match agreement.decide_sandbox_expire(now) {
                Err(DomainError::NotInTestMode) => Err(ServiceError::NotFound),
                other => Ok(other?),
            }
        })
        .await
    }

    /// Read, decide, commit guarded by the revision read; on conflict, all over again. A
    /// request that changes nothing still keeps its key's response.
    async fn change(
        &self,
        tenant: &str,
        id: &str,
        if_match: Option<u64>,
        idempotency: Option<&IdempotencyIntent<'_>>,
        decide: impl Fn(&Agreement, DateTime<Utc>) -> Result<Decision, ServiceError>,
    ) -> Result<Agreement, ServiceError> {
        let applied =
            read_decide_commit(self.store.as_ref(), &self.retry, Start::Id(id), |current| {
                if current.tenant != tenant {
                    return Err(ServiceError::NotFound);
                }
                if let Some(expected) = if_match {
                    if expected != current.version {
                        return Err(ServiceError::VersionMismatch {
                            current: current.version,
                        });
                    }
                }
                let now = self.clock.now();
                let transition = match decide(current, now)? {
                    Decision::Unchanged => return Ok(Step::Stop(now)),
                    Decision::Changed(transition) => transition,
                    // Only provider events are ignored, and they do not come this way.
                    Decision::Ignored { transition, .. } => transition,
                };
                let idempotency =
                    idempotency.map(|intent| intent.record(tenant, &transition.agreement, now));
                Ok(Step::Write(
                    Write {
                        transition,
                        idempotency,
                        provider_event: None,
                    },
                    now,
                ))
            })
            .await?;
        match applied {
            Applied::Committed(agreement, _) => Ok(agreement),
            Applied::Stopped(current, now) => {
                if let Some(intent) = idempotency {
                    self.store
                        .put_idempotency(intent.record(tenant, &current, now), now)
                        .await?;
                }
                Ok(current)
            }
            Applied::Missing => Err(ServiceError::NotFound),
        }
    }
}
