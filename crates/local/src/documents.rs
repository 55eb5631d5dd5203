//! Documents on this machine (SPEC sections 1 and 9): `file://` documents read from under
//! `COUNTERSIGN_DOCUMENTS_DIR` only, signed documents kept in its `signed/` folder, and served
//! by countersign-local itself at short-lived, HMAC-signed links.

use std::path::{Component, Path, PathBuf};

use async_trait::async_trait;
use axum::body::Body;
use axum::response::Response;
use chrono::{DateTime, Utc};
use hmac::{Hmac, Mac};
use http::{Method, StatusCode, Uri};
use sha2::Sha256;
use subtle::ConstantTimeEq;

use countersign_provider::SignedFile;
use countersign_service::documents::{
    DocumentError, DocumentLink, DocumentSource, SignedDocumentStore,
};

/// Where links to signed documents point.
pub const LINK_PATH: &str = "/local/signed-documents/";

pub struct FolderDocuments {
    /// Canonical: every path read or written is checked to stay inside it.
    root: PathBuf,
    /// `http://127.0.0.1:PORT`, the server that serves the links.
    base_url: String,
    /// Signs the links; new for each process, so links die with it (they live minutes anyway).
    link_key: [u8; 32],
}

impl FolderDocuments {
    /// Creates the folder (and `signed/`) if needed.
    pub fn open(root: &Path, base_url: String) -> std::io::Result<Self> {
        std::fs::create_dir_all(root.join("signed"))?;
        Ok(FolderDocuments {
            root: root.canonicalize()?,
            base_url,
            link_key: rand::random(),
        })
    }

    /// The file a `file://` URI names, if it is inside the folder: absolute paths must be under
    /// it, relative ones are taken from it; `..` is refused outright.
    fn path_of(&self, uri: &str) -> Result<PathBuf, DocumentError> {
        let Some(path) = uri.strip_prefix("file://") else {
            return Err(DocumentError::Unreadable(
                "countersign-local reads only file:// documents".to_owned(),
            ));
        };
        let path = Path::new(path);
        if path
            .components()
            .any(|part| matches!(part, Component::ParentDir))
        {
            return Err(DocumentError::Unreadable(
                "`..` is not allowed in a document path".to_owned(),
            ));
        }
        let full = if path.is_absolute() {
            path.to_path_buf()
        } else {
            self.root.join(path)
        };
        let canonical = full
            .canonicalize()
            .map_err(|_| DocumentError::Unreadable("no such file".to_owned()))?;
        if !canonical.starts_with(&self.root) {
            return Err(DocumentError::Unreadable(
                "the file is outside COUNTERSIGN_DOCUMENTS_DIR".to_owned(),
            ));
        }
        Ok(canonical)
    }

    /// Empty when HMAC refused the key, which it never does (any length is fine): such a link
    /// matches no signature, so it is refused rather than accepted.
    fn signature(&self, relative: &str, expires: i64) -> String {
        let Ok(mut mac) = <Hmac<Sha256>>::new_from_slice(&self.link_key) else {
            return String::new();
        };
        mac.update(relative.as_bytes());
        mac.update(b"|");
        mac.update(expires.to_string().as_bytes());
        hex::encode(mac.finalize().into_bytes())
    }

    /// Answers `GET /local/signed-documents/...?expires=&signature=`: the bytes, if the link is
    /// genuine and not expired; 404 otherwise (nothing says which check failed).
    pub async fn serve(&self, method: &Method, uri: &Uri, now: DateTime<Utc>) -> Response {
        let not_found = || {
            Response::builder()
                .status(StatusCode::NOT_FOUND)
                .header("content-type", "text/plain")
                .body(Body::from("no such document link, or it has expired"))
                .unwrap_or_default()
        };
        if method != Method::GET {
            return not_found();
        }
        let Some(relative) = uri.path().strip_prefix(LINK_PATH) else {
            return not_found();
        };
        let query: Vec<(String, String)> = uri
            .query()
            .unwrap_or_default()
            .split('&')
            .filter_map(|pair| pair.split_once('='))
            .map(|(key, value)| (key.to_owned(), value.to_owned()))
            .collect();
        let param = |name: &str| {
            query
                .iter()
                .find(|(key, _)| key == name)
                .map(|(_, value)| value.as_str())
        };
        let (Some(expires), Some(signature)) = (
            param("expires").and_then(|value| value.parse::<i64>().ok()),
            param("signature"),
        ) else {
            return not_found();
        };
        let expected = self.signature(relative, expires);
        let genuine: bool =
            !expected.is_empty() && bool::from(expected.as_bytes().ct_eq(signature.as_bytes()));
        if !genuine || expires < now.timestamp() {
            return not_found();
        }
        let Ok(path) = self.path_of(&format!("file://signed/{relative}")) else {
            return not_found();
        };
        match tokio::fs::read(&path).await {
            Ok(bytes) => Response::builder()
                .status(StatusCode::OK)
                .header("content-type", "application/pdf")
                .header("cache-control", "no-store")
                .body(Body::from(bytes))
                .unwrap_or_default(),
            Err(_) => not_found(),
        }
    }
}

/// An id fit for a path segment: letters, digits, `-` and `_` only.
fn is_segment(text: &str) -> bool {
    !text.is_empty()
        && text
            .bytes()
            .all(|byte| byte.is_ascii_alphanumeric() || matches!(byte, b'-' | b'_'))
}

#[async_trait]
impl DocumentSource for FolderDocuments {
    async fn read(&self, uri: &str, max_bytes: u64) -> Result<Vec<u8>, DocumentError> {
        let path = self.path_of(uri)?;
        let metadata = tokio::fs::metadata(&path)
            .await
            .map_err(|_| DocumentError::Unreadable("no such file".to_owned()))?;
        if !metadata.is_file() {
            return Err(DocumentError::Unreadable("not a file".to_owned()));
        }
        if metadata.len() > max_bytes {
            return Err(DocumentError::Unreadable(format!(
                "it has {} bytes, more than the {max_bytes} its reference says",
                metadata.len()
            )));
        }
        tokio::fs::read(&path)
            .await
            .map_err(|error| DocumentError::Unavailable(error.kind().to_string()))
    }
}

#[async_trait]
impl SignedDocumentStore for FolderDocuments {
    async fn store(
        &self,
        agreement_id: &str,
        file: &SignedFile,
        sha256: &str,
    ) -> Result<String, DocumentError> {
        if !is_segment(agreement_id) || !is_segment(sha256) {
            return Err(DocumentError::Unreadable(
                "not a storable document name".to_owned(),
            ));
        }
        let folder = self.root.join("signed").join(agreement_id);
        let path = folder.join(format!("{sha256}.pdf"));
        let partial = folder.join(format!(".{sha256}.partial"));
        let io = |error: std::io::Error| DocumentError::Unavailable(error.kind().to_string());
        tokio::fs::create_dir_all(&folder).await.map_err(io)?;
        // Written whole, then renamed: a crash never leaves half a document under its name.
        tokio::fs::write(&partial, &file.bytes).await.map_err(io)?;
        tokio::fs::rename(&partial, &path).await.map_err(io)?;
        Ok(format!("file://{}", path.display()))
    }

    async fn link(
        &self,
        uri: &str,
        expires_at: DateTime<Utc>,
    ) -> Result<DocumentLink, DocumentError> {
        let path = self.path_of(uri)?;
        let signed_root = self.root.join("signed");
        let relative = path
            .strip_prefix(&signed_root)
            .map_err(|_| DocumentError::Unreadable("not a signed document kept here".to_owned()))?
            .to_string_lossy()
            .replace('\\', "/");
        let expires = expires_at.timestamp();
        let signature = self.signature(&relative, expires);
        Ok(DocumentLink {
            url: format!(
                "{}{LINK_PATH}{relative}?expires={expires}&signature={signature}",
                self.base_url
            ),
            expires_at,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn folder() -> (FolderDocuments, PathBuf) {
        let root = std::env::temp_dir().join(format!(
            "countersign-documents-test-{}-{}",
            std::process::id(),
            rand::random::<u32>()
        ));
        let documents = FolderDocuments::open(&root, "http://127.0.0.1:9".to_owned()).unwrap();
        (documents, root.canonicalize().unwrap())
    }

    #[tokio::test]
    async fn reads_only_inside_the_folder() {
        let (documents, root) = folder();
        std::fs::write(root.join("lease.pdf"), b"%PDF lease").unwrap();
        assert_eq!(
            documents.read("file://lease.pdf", 100).await.unwrap(),
            b"%PDF lease"
        );
        let absolute = format!("file://{}", root.join("lease.pdf").display());
        assert_eq!(documents.read(&absolute, 100).await.unwrap(), b"%PDF lease");
        for uri in [
            "file://../etc/passwd",
            "file:///etc/passwd",
            "s3://bucket/lease.pdf",
            "file://missing.pdf",
        ] {
            assert!(
                matches!(
                    documents.read(uri, 100).await,
                    Err(DocumentError::Unreadable(_))
                ),
                "{uri}"
            );
        }
        assert!(matches!(
            documents.read("file://lease.pdf", 3).await,
            Err(DocumentError::Unreadable(_))
        ));
    }

    #[tokio::test]
    async fn stored_documents_are_served_only_by_a_genuine_live_link() {
        let (documents, _root) = folder();
        let file = SignedFile {
            bytes: b"%PDF signed".to_vec(),
            filename: "lease-signed.pdf".to_owned(),
            mime_type: "application/pdf".to_owned(),
        };
        let uri = documents.store("agr1", &file, "abc123").await.unwrap();
        let now = Utc::now();
        let link = documents
            .link(&uri, now + chrono::Duration::minutes(5))
            .await
            .unwrap();
        let uri = |url: &str| -> http::Uri {
            url.strip_prefix("http://127.0.0.1:9")
                .unwrap()
                .parse()
                .unwrap()
        };
        let answer = documents.serve(&Method::GET, &uri(&link.url), now).await;
        assert_eq!(answer.status(), StatusCode::OK);
        let bytes = axum::body::to_bytes(answer.into_body(), usize::MAX)
            .await
            .unwrap();
        assert_eq!(bytes.as_ref(), b"%PDF signed");
        assert_eq!(
            documents
                .serve(&Method::POST, &uri(&link.url), now)
                .await
                .status(),
            StatusCode::NOT_FOUND
        );
        let tampered = link.url.replace("signature=", "signature=0");
        assert_eq!(
            documents
                .serve(&Method::GET, &uri(&tampered), now)
                .await
                .status(),
            StatusCode::NOT_FOUND
        );
        let later = now + chrono::Duration::minutes(6);
        assert_eq!(
            documents
                .serve(&Method::GET, &uri(&link.url), later)
                .await
                .status(),
            StatusCode::NOT_FOUND
        );
        assert!(matches!(
            documents.link("file://elsewhere.pdf", now).await,
            Err(DocumentError::Unreadable(_))
        ));
    }
}
