//! Test doubles of the service's ports, for the tests of this workspace (feature
//! `test-doubles`; never in a binary): a clock that moves when told, a callback queue that
//! records, documents in memory.

use std::collections::BTreeMap;
use std::sync::Mutex;

use async_trait::async_trait;
use chrono::{DateTime, Duration, Utc};
use countersign_provider::{SignedFile, VerifiedEvent};

use crate::callbacks::{CallbackQueue, QueueError};
use crate::clock::Clock;
use crate::documents::{DocumentError, DocumentLink, DocumentSource, SignedDocumentStore};

/// A clock that only moves when told: for tests of expiry and time windows.
#[derive(Debug)]
pub struct ManualClock(Mutex<DateTime<Utc>>);

impl ManualClock {
    pub fn new(start: DateTime<Utc>) -> Self {
        ManualClock(Mutex::new(start))
    }

    pub fn advance(&self, by: Duration) {
        let mut now = self
            .0
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner());
        *now += by;
    }

    pub fn set(&self, to: DateTime<Utc>) {
        *self
            .0
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner()) = to;
    }
}

impl Clock for ManualClock {
    fn now(&self) -> DateTime<Utc> {
        *self
            .0
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }
}

/// A queue that only records: for handler tests, which then apply what was queued themselves.
#[derive(Default)]
pub struct RecordingQueue(Mutex<Vec<VerifiedEvent>>);

impl RecordingQueue {
    pub fn take(&self) -> Vec<VerifiedEvent> {
        std::mem::take(
            &mut *self
                .0
                .lock()
                .unwrap_or_else(|poisoned| poisoned.into_inner()),
        )
    }
}

#[async_trait]
impl CallbackQueue for RecordingQueue {
    async fn enqueue(&self, event: &VerifiedEvent) -> Result<(), QueueError> {
        self.0
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
            .push(event.clone());
        Ok(())
    }
}

/// Documents and signed documents in memory, for tests: `memory://` URIs.
#[derive(Default)]
pub struct MemoryDocuments {
    files: Mutex<BTreeMap<String, Vec<u8>>>,
}

impl MemoryDocuments {
    pub fn new() -> Self {
        Self::default()
    }

    pub fn put(&self, uri: &str, bytes: Vec<u8>) {
        self.lock().insert(uri.to_owned(), bytes);
    }

    pub fn get(&self, uri: &str) -> Option<Vec<u8>> {
        self.lock().get(uri).cloned()
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, BTreeMap<String, Vec<u8>>> {
        self.files
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }
}

#[async_trait]
impl DocumentSource for MemoryDocuments {
    async fn read(&self, uri: &str, max_bytes: u64) -> Result<Vec<u8>, DocumentError> {
        let bytes = self
            .get(uri)
            .ok_or_else(|| DocumentError::Unreadable(format!("nothing at `{uri}`")))?;
        if u64::try_from(bytes.len()).unwrap_or(u64::MAX) > max_bytes {
            return Err(DocumentError::Unreadable(format!(
                "more than {max_bytes} bytes"
            )));
        }
        Ok(bytes)
    }
}

#[async_trait]
impl SignedDocumentStore for MemoryDocuments {
    async fn store(
        &self,
        agreement_id: &str,
        file: &SignedFile,
        sha256: &str,
    ) -> Result<String, DocumentError> {
        let uri = format!("memory://signed/{agreement_id}/{sha256}");
        self.put(&uri, file.bytes.clone());
        Ok(uri)
    }

    async fn link(
        &self,
        uri: &str,
        expires_at: DateTime<Utc>,
    ) -> Result<DocumentLink, DocumentError> {
        if self.get(uri).is_none() {
            return Err(DocumentError::Unreadable(format!("nothing at `{uri}`")));
        }
        Ok(DocumentLink {
            url: uri.to_owned(),
            expires_at,
        })
    }
}
