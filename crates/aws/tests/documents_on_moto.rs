//! The S3 documents adapter against a real S3 API (moto_server): documents read with their size
//! bound, signed documents kept under `signed/`, and presigned links that return their bytes.

use chrono::{Duration, Utc};
use countersign_aws::S3Documents;
use countersign_provider::SignedFile;
use countersign_service::documents::{
    sha256_hex, DocumentError, DocumentSource, SignedDocumentStore,
};
use countersign_test_kit::moto;

/// The client the functions build (`aws_sdk_s3::Client::new` on the shared configuration).
async fn bucket_with(objects: &[(&str, &[u8])]) -> (S3Documents, String) {
    let client = aws_sdk_s3::Client::new(&moto::sdk_config());
    let bucket = moto::unique_name("documents").to_lowercase();
    client
        .create_bucket()
        .bucket(&bucket)
        .send()
        .await
        .expect("bucket");
    for (key, bytes) in objects {
        client
            .put_object()
            .bucket(&bucket)
            .key(*key)
            .body(bytes.to_vec().into())
            .send()
            .await
            .expect("object");
    }
    (S3Documents::new(client, &bucket), bucket)
}

#[tokio::test]
async fn documents_are_read_within_their_size_and_missing_ones_are_unreadable() {
    let lease = b"%PDF-1.7 the lease".as_slice();
    let (documents, bucket) = bucket_with(&[("documents/lease.pdf", lease)]).await;
    let uri = format!("s3://{bucket}/documents/lease.pdf");
    assert_eq!(documents.read(&uri, 1024).await.expect("read"), lease);
    assert!(
        matches!(
            documents.read(&uri, 4).await,
            Err(DocumentError::Unreadable(reason)) if reason.contains("more than")
        ),
        "a document larger than its reference says is refused"
    );
    assert!(matches!(
        documents
            .read(&format!("s3://{bucket}/documents/missing.pdf"), 1024)
            .await,
        Err(DocumentError::Unreadable(_))
    ));
    assert!(matches!(
        documents.read("https://example.com/lease.pdf", 1024).await,
        Err(DocumentError::Unreadable(_))
    ));
}

#[tokio::test]
async fn a_signed_document_is_kept_and_its_link_returns_its_bytes() {
    let (documents, bucket) = bucket_with(&[("documents/lease.pdf", b"original")]).await;
    let file = SignedFile {
        bytes: b"%PDF-1.7 signed by everyone".to_vec(),
        filename: "lease-signed.pdf".to_owned(),
        mime_type: "application/pdf".to_owned(),
    };
    let sha256 = sha256_hex(&file.bytes);
    let uri = documents
        .store("agr-1", &file, &sha256)
        .await
        .expect("stored");
    assert_eq!(uri, format!("s3://{bucket}/signed/agr-1/{sha256}.pdf"));
    assert_eq!(
        documents
            .store("agr-1", &file, &sha256)
            .await
            .expect("again"),
        uri,
        "storing the same bytes again gives the same place"
    );

    let expires_at = Utc::now() + Duration::minutes(5);
    let link = documents.link(&uri, expires_at).await.expect("a link");
    assert_eq!(link.expires_at, expires_at);
    assert!(link.url.contains("X-Amz-Signature="), "{}", link.url);
    let reply = countersign_test_kit::http_client()
        .get(&link.url)
        .send()
        .await
        .expect("the link answers");
    assert_eq!(reply.status(), 200);
    assert_eq!(
        reply.headers()["content-disposition"],
        "attachment; filename=\"lease-signed.pdf\""
    );
    let bytes = reply.bytes().await.expect("bytes");
    assert_eq!(sha256_hex(&bytes), sha256);

    // Links are only handed out for what countersign kept.
    for foreign in [
        format!("s3://{bucket}/documents/lease.pdf"),
        format!("s3://another-bucket/signed/agr-1/{sha256}.pdf"),
    ] {
        assert!(
            matches!(
                documents.link(&foreign, expires_at).await,
                Err(DocumentError::Unreadable(_))
            ),
            "{foreign}"
        );
    }
}
