//! Document bytes (SPEC sections 1 and 9): where an agreement's documents are read from before a
//! provider gets them (`s3://` on AWS, `file://` under a folder locally), checked against their
//! `size` and `sha256`; and where signed documents are kept, with short-lived links to them.

use std::collections::BTreeMap;

use async_trait::async_trait;
use chrono::{DateTime, Duration, Utc};
use countersign_domain::{Agreement, FileRef};
use countersign_provider::{DocumentBytes, SignedFile};
use sha2::{Digest, Sha256};
use thiserror::Error;

/// How long a signed-document link works.
pub const LINK_TTL: Duration = Duration::minutes(5);

#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum DocumentError {
    /// The document cannot be had, and retrying will not change that (no such file, a `uri`
    /// this deployment does not read, a path outside the documents folder, too large).
    #[error("{0}")]
    Unreadable(String),
    /// The storage failed or could not be reached: retry later.
    #[error("{0}")]
    Unavailable(String),
}

/// Reads documents' bytes by `uri`.
#[async_trait]
pub trait DocumentSource: Send + Sync {
    /// The bytes at `uri`; more than `max_bytes` is refused without reading them all.
    async fn read(&self, uri: &str, max_bytes: u64) -> Result<Vec<u8>, DocumentError>;
}

/// A short-lived link to a stored document.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DocumentLink {
    pub url: String,
    pub expires_at: DateTime<Utc>,
}

/// Keeps signed documents and hands out links to them.
#[async_trait]
pub trait SignedDocumentStore: Send + Sync {
    /// Stores `file` (whose hex sha256 is `sha256`) for the agreement; returns its `uri`. Storing
    /// the same bytes again is harmless (the key is derived from them).
    async fn store(
        &self,
        agreement_id: &str,
        file: &SignedFile,
        sha256: &str,
    ) -> Result<String, DocumentError>;

    /// A link to the stored document at `uri` valid until `expires_at`; `Unreadable` for a `uri`
    /// this store did not write.
    async fn link(
        &self,
        uri: &str,
        expires_at: DateTime<Utc>,
    ) -> Result<DocumentLink, DocumentError>;
}

/// Hex SHA-256, lower case, as file references carry it.
pub fn sha256_hex(bytes: &[u8]) -> String {
    hex::encode(Sha256::digest(bytes))
}

/// Reads the main document and every attachment, checking each against its `size` and `sha256`
/// before anything reaches a provider. The error says which document and why, in words fit for
/// the agreement's history.
pub async fn read_checked(
    source: &dyn DocumentSource,
    agreement: &Agreement,
) -> Result<DocumentBytes, DocumentError> {
    let mut bytes = BTreeMap::new();
    let files = agreement
        .documents
        .main
        .iter()
        .chain(&agreement.documents.attachments);
    for file in files {
        let read = source
            .read(&file.uri, file.size)
            .await
            .map_err(|error| match error {
                DocumentError::Unreadable(why) => DocumentError::Unreadable(format!(
                    "document `{}` ({}) cannot be read: {why}",
                    file.id, file.filename
                )),
                DocumentError::Unavailable(why) => DocumentError::Unavailable(format!(
                    "document `{}` could not be read now: {why}",
                    file.id
                )),
            })?;
        check(file, &read)?;
        bytes.insert(file.id.clone(), read);
    }
    Ok(bytes)
}

fn check(file: &FileRef, bytes: &[u8]) -> Result<(), DocumentError> {
    let size = u64::try_from(bytes.len()).unwrap_or(u64::MAX);
    if size != file.size {
        return Err(DocumentError::Unreadable(format!(
            "document `{}` ({}) has {size} bytes, not the {} its reference says",
            file.id, file.filename, file.size
        )));
    }
    let sha256 = sha256_hex(bytes);
    if !sha256.eq_ignore_ascii_case(&file.sha256) {
        return Err(DocumentError::Unreadable(format!(
            "document `{}` ({}) does not match its sha256",
            file.id, file.filename
        )));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn file(id: &str, bytes: &[u8], uri: &str) -> FileRef {
        FileRef {
            id: id.to_owned(),
            filename: format!("{id}.pdf"),
            mime_type: "application/pdf".to_owned(),
            size: bytes.len() as u64,
            sha256: sha256_hex(bytes),
            uri: uri.to_owned(),
        }
    }

    #[test]
    fn sha256_is_lower_hex() {
        assert_eq!(
            sha256_hex(b"test"),
            "9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08"
        );
    }

    #[test]
    fn checks_size_then_sha256() {
        let good = file("main", b"%PDF-1.7 lease", "memory://main");
        assert_eq!(check(&good, b"%PDF-1.7 lease"), Ok(()));
        let error = check(&good, b"%PDF-1.7 lease!").unwrap_err().to_string();
        assert!(error.contains("has 15 bytes, not the 14"), "{error}");
        let error = check(&good, b"%PDF-1.7 LEASE").unwrap_err().to_string();
        assert!(error.contains("does not match its sha256"), "{error}");
    }
}
