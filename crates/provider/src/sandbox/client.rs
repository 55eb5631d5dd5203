//! The sandbox provider's outbound side: nothing leaves the system. It logs each call; a
//! recording one also keeps them, so tests can see what a live provider would have been asked.

use std::sync::Mutex;

use async_trait::async_trait;
use countersign_domain::{Agreement, Delivery};

use crate::outbound::{DocumentBytes, OutboundError, ProgressLog, ProviderClient, SignedFile};

use super::PROVIDER_NAME;

/// One call the sandbox was asked, by agreement id.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SandboxCall {
    Send {
        agreement_id: String,
    },
    Invite {
        agreement_id: String,
        step: u32,
        participant_ids: Vec<String>,
    },
    Reopen {
        agreement_id: String,
    },
    Cancel {
        agreement_id: String,
    },
}

pub struct SandboxClient {
    recorded: Option<Mutex<Vec<SandboxCall>>>,
}

impl SandboxClient {
    /// Logs only: what a long-running process uses.
    pub fn logging() -> Self {
        SandboxClient { recorded: None }
    }

    /// Also keeps every call, for tests to read back (feature `test-doubles`).
    #[cfg(any(test, feature = "test-doubles"))]
    pub fn recording() -> Self {
        SandboxClient {
            recorded: Some(Mutex::new(Vec::new())),
        }
    }

    /// What a recording client was asked, in order.
    #[cfg(any(test, feature = "test-doubles"))]
    pub fn calls(&self) -> Vec<SandboxCall> {
        self.recorded.as_ref().map_or_else(Vec::new, |calls| {
            calls
                .lock()
                .unwrap_or_else(|poisoned| poisoned.into_inner())
                .clone()
        })
    }

    fn record(&self, call: SandboxCall) {
        tracing::info!(?call, "sandbox provider: call recorded, nothing sent");
        if let Some(calls) = &self.recorded {
            calls
                .lock()
                .unwrap_or_else(|poisoned| poisoned.into_inner())
                .push(call);
        }
    }
}

#[async_trait]
impl ProviderClient for SandboxClient {
    fn name(&self) -> &str {
        PROVIDER_NAME
    }

    fn reads_documents(&self) -> bool {
        false
    }

    /// The sandbox knows participants by countersign's ids: it records no delivery.
    async fn send(
        &self,
        agreement: &Agreement,
        _documents: &DocumentBytes,
        _log: &dyn ProgressLog,
    ) -> Result<Option<Delivery>, OutboundError> {
        self.record(SandboxCall::Send {
            agreement_id: agreement.id.clone(),
        });
        Ok(None)
    }

    async fn invite(&self, agreement: &Agreement, step: u32) -> Result<(), OutboundError> {
        self.record(SandboxCall::Invite {
            agreement_id: agreement.id.clone(),
            step,
            participant_ids: agreement
                .participants_of_step(step)
                .map(|participant| participant.id.clone())
                .collect(),
        });
        Ok(())
    }

    async fn reopen(
        &self,
        agreement: &Agreement,
        _log: &dyn ProgressLog,
    ) -> Result<(), OutboundError> {
        self.record(SandboxCall::Reopen {
            agreement_id: agreement.id.clone(),
        });
        Ok(())
    }

    /// Only a round that was sent (and not reopened since) has anything to cancel.
    async fn cancel(
        &self,
        agreement: &Agreement,
        _log: &dyn ProgressLog,
    ) -> Result<bool, OutboundError> {
        if agreement.sent_at.is_none() {
            return Ok(false);
        }
        self.record(SandboxCall::Cancel {
            agreement_id: agreement.id.clone(),
        });
        Ok(true)
    }

    /// The sandbox's signed documents arrive in its `agreement.signed_document` events.
    async fn signed_document(
        &self,
        _agreement: &Agreement,
        _log: &dyn ProgressLog,
    ) -> Result<Option<SignedFile>, OutboundError> {
        Ok(None)
    }
}
