//! Zigned as a [`ProviderClient`]: the calls of SPEC section 9 over [`ZignedClient`], with the
//! send's [`SendProgress`] kept in the agreement's [`ProgressLog`].

use async_trait::async_trait;
use countersign_domain::{Agreement, CancellationReason, Delivery};

use crate::outbound::{
    DocumentBytes, OutboundError, ProgressLog, ProviderClient, SignedFile, StoredProgress,
};

use super::{SendProgress, ZignedClient, ZignedError, PROVIDER_NAME};

/// The live provider of SPEC section 9.
#[derive(Debug)]
pub struct ZignedProvider {
    client: ZignedClient,
}

impl ZignedProvider {
    pub fn new(client: ZignedClient) -> Self {
        ZignedProvider { client }
    }
}

fn outbound(error: ZignedError) -> OutboundError {
    if error.is_transient() {
        OutboundError::Retryable(error.to_string())
    } else {
        OutboundError::Permanent(error.to_string())
    }
}

async fn load(log: &dyn ProgressLog) -> Result<SendProgress, OutboundError> {
    match log.load().await? {
        None => Ok(SendProgress::default()),
        Some(stored) => serde_json::from_str(&stored.state).map_err(|error| {
            OutboundError::Permanent(format!(
                "the recorded Zigned progress is unreadable: {error}"
            ))
        }),
    }
}

async fn save(log: &dyn ProgressLog, progress: &SendProgress) -> Result<(), OutboundError> {
    let state = serde_json::to_string(progress).map_err(|error| {
        OutboundError::Permanent(format!("the Zigned progress cannot be recorded: {error}"))
    })?;
    log.save(StoredProgress {
        state,
        reference: progress.agreement_reference.clone(),
    })
    .await
}

#[async_trait]
impl ProviderClient for ZignedProvider {
    fn name(&self) -> &str {
        PROVIDER_NAME
    }

    fn reads_documents(&self) -> bool {
        true
    }

    async fn send(
        &self,
        agreement: &Agreement,
        documents: &DocumentBytes,
        log: &dyn ProgressLog,
    ) -> Result<Option<Delivery>, OutboundError> {
        let mut progress = load(log).await?;
        if progress.round != agreement.sent_at {
            if progress.sent && !progress.cancelled {
                // The previous round is still live at Zigned (its reopen was not dispatched
                // yet): pause and reset it before it is rebuilt.
                progress = self.client.reopen(&progress).await.map_err(outbound)?;
            } else if progress.agreement_reference.is_some() && !progress.reopened {
                // A round abandoned halfway: what it built is replaced.
                progress = progress.reopened();
            }
            progress.round = agreement.sent_at;
            save(log, &progress).await?;
        }
        let done = self
            .client
            .run_send(agreement, documents, progress, |next| async move {
                save(log, &next).await
            })
            .await
            .map_err(|error| match error {
                Ok((zigned, _)) => outbound(zigned),
                Err(recording) => recording,
            })?;
        Ok(Some(Delivery {
            reference: done.agreement_reference.clone(),
            participants: done.participants.clone(),
            signing_room_urls: Default::default(),
        }))
    }

    /// Zigned releases signing groups itself.
    async fn invite(&self, _agreement: &Agreement, _step: u32) -> Result<(), OutboundError> {
        Ok(())
    }

    async fn reopen(
        &self,
        _agreement: &Agreement,
        log: &dyn ProgressLog,
    ) -> Result<(), OutboundError> {
        let progress = load(log).await?;
        if !progress.sent || progress.cancelled {
            return Ok(());
        }
        let reopened = self.client.reopen(&progress).await.map_err(outbound)?;
        save(log, &reopened).await
    }

    async fn cancel(
        &self,
        agreement: &Agreement,
        log: &dyn ProgressLog,
    ) -> Result<bool, OutboundError> {
        let reason = match &agreement.cancellation_reason {
            // Zigned cancelled it itself.
            Some(CancellationReason::ProviderCancelled) => return Ok(false),
            Some(reason) => reason.clone(),
            None => {
                return Err(OutboundError::Permanent(
                    "the agreement has no cancellation reason".to_owned(),
                ))
            }
        };
        let mut progress = load(log).await?;
        let Some(reference) = progress.agreement_reference.clone() else {
            return Ok(false);
        };
        if progress.cancelled {
            return Ok(true);
        }
        self.client
            .cancel(&reference, &reason)
            .await
            .map_err(outbound)?;
        progress.cancelled = true;
        save(log, &progress).await?;
        Ok(true)
    }

    async fn signed_document(
        &self,
        agreement: &Agreement,
        log: &dyn ProgressLog,
    ) -> Result<Option<SignedFile>, OutboundError> {
        let progress = load(log).await?;
        let Some(reference) = progress
            .agreement_reference
            .or_else(|| agreement.provider.reference.clone())
        else {
            return Err(OutboundError::Permanent(
                "the agreement was never sent to Zigned".to_owned(),
            ));
        };
        let Some(url) = self
            .client
            .signed_document_url(&reference)
            .await
            .map_err(outbound)?
        else {
            return Ok(None);
        };
        let bytes = self
            .client
            .download_signed_document(&url)
            .await
            .map_err(outbound)?;
        let stem = agreement
            .documents
            .main
            .as_ref()
            .map(|main| main.filename.trim_end_matches(".pdf").to_owned())
            .unwrap_or_else(|| agreement.id.clone());
        Ok(Some(SignedFile {
            bytes,
            filename: format!("{stem}-signed.pdf"),
            mime_type: "application/pdf".to_owned(),
        }))
    }
}
