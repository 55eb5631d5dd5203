//! Documents on S3 (SPEC sections 1 and 9): `s3://bucket/key` documents read before a provider
//! gets them, signed documents kept in the documents bucket (versioned, encrypted, private:
//! `template.yaml`), and presigned links to them.

use std::time::Duration as StdDuration;

use async_trait::async_trait;
use aws_sdk_s3::config::http::HttpResponse;
use aws_sdk_s3::error::{DisplayErrorContext, SdkError};
use aws_sdk_s3::operation::get_object::GetObjectError;
use aws_sdk_s3::presigning::PresigningConfig;
use aws_sdk_s3::primitives::ByteStream;
use aws_sdk_s3::Client;
use chrono::{DateTime, Utc};

use countersign_provider::SignedFile;
use countersign_service::documents::{
    DocumentError, DocumentLink, DocumentSource, SignedDocumentStore,
};

pub struct S3Documents {
    client: Client,
    /// Where signed documents are kept (`signed/<agreement id>/<sha256>.pdf`).
    bucket: String,
}

impl S3Documents {
    pub fn new(client: Client, bucket: impl Into<String>) -> Self {
        S3Documents {
            client,
            bucket: bucket.into(),
        }
    }
}

/// `s3://bucket/key` as (bucket, key).
fn location(uri: &str) -> Result<(&str, &str), DocumentError> {
    uri.strip_prefix("s3://")
        .and_then(|rest| rest.split_once('/'))
        .filter(|(bucket, key)| !bucket.is_empty() && !key.is_empty())
        .ok_or_else(|| {
            DocumentError::Unreadable("on AWS documents are read from s3://bucket/key".to_owned())
        })
}

/// A missing object or bucket, or one this function may not read (404, 403), will not appear
/// by retrying; anything else might.
fn read_error(error: &SdkError<GetObjectError, HttpResponse>) -> DocumentError {
    let status = error.raw_response().map(|raw| raw.status().as_u16());
    let missing = matches!(error.as_service_error(), Some(GetObjectError::NoSuchKey(_)));
    if missing || matches!(status, Some(403 | 404)) {
        DocumentError::Unreadable("no such object, or it may not be read".to_owned())
    } else {
        DocumentError::Unavailable(DisplayErrorContext(error).to_string())
    }
}

#[async_trait]
impl DocumentSource for S3Documents {
    async fn read(&self, uri: &str, max_bytes: u64) -> Result<Vec<u8>, DocumentError> {
        let (bucket, key) = location(uri)?;
        let object = self
            .client
            .get_object()
            .bucket(bucket)
            .key(key)
            .send()
            .await
            .map_err(|error| read_error(&error))?;
        let length = object.content_length().unwrap_or_default();
        if u64::try_from(length).unwrap_or(u64::MAX) > max_bytes {
            return Err(DocumentError::Unreadable(format!(
                "it has {length} bytes, more than the {max_bytes} its reference says"
            )));
        }
        let bytes = object
            .body
            .collect()
            .await
            .map_err(|error| DocumentError::Unavailable(error.to_string()))?;
        Ok(bytes.into_bytes().to_vec())
    }
}

#[async_trait]
impl SignedDocumentStore for S3Documents {
    async fn store(
        &self,
        agreement_id: &str,
        file: &SignedFile,
        sha256: &str,
    ) -> Result<String, DocumentError> {
        let key = format!("signed/{agreement_id}/{sha256}.pdf");
        self.client
            .put_object()
            .bucket(&self.bucket)
            .key(&key)
            .content_type(&file.mime_type)
            .content_disposition(format!(
                "attachment; filename=\"{}\"",
                file.filename.replace('"', "")
            ))
            .body(ByteStream::from(file.bytes.clone()))
            .send()
            .await
            .map_err(|error| DocumentError::Unavailable(DisplayErrorContext(&error).to_string()))?;
        Ok(format!("s3://{}/{key}", self.bucket))
    }

    async fn link(
        &self,
        uri: &str,
        expires_at: DateTime<Utc>,
    ) -> Result<DocumentLink, DocumentError> {
        let (bucket, key) = location(uri)?;
        if bucket != self.bucket || !key.starts_with("signed/") {
            return Err(DocumentError::Unreadable(
                "not a signed document kept by countersign".to_owned(),
            ));
        }
        let seconds = (expires_at - Utc::now()).num_seconds().clamp(1, 3600);
        let presigning = PresigningConfig::expires_in(StdDuration::from_secs(
            u64::try_from(seconds).unwrap_or(1),
        ))
        .map_err(|error| DocumentError::Unavailable(error.to_string()))?;
        let request = self
            .client
            .get_object()
            .bucket(bucket)
            .key(key)
            .presigned(presigning)
            .await
            .map_err(|error| DocumentError::Unavailable(DisplayErrorContext(&error).to_string()))?;
        Ok(DocumentLink {
            url: request.uri().to_owned(),
            expires_at,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_s3_uris_with_a_bucket_and_a_key_are_read() {
        assert_eq!(
            location("s3://docs/leases/1.pdf").unwrap(),
            ("docs", "leases/1.pdf")
        );
        for uri in [
            "file:///etc/passwd",
            "s3://docs",
            "s3:///key",
            "s3://docs/",
            "https://x/y",
        ] {
            assert!(location(uri).is_err(), "{uri}");
        }
    }
}
