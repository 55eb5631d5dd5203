//! An agreement as the dispatcher would hand it to the Zigned adapter, and its document bytes.

#![allow(dead_code)] // each test binary uses its own part

use countersign_domain::*;
use countersign_provider::zigned::DocumentBytes;
use sha2::{Digest, Sha256};

pub const MAIN_BYTES: &[u8] = b"%PDF-1.7 the lease";
pub const ANNEX_BYTES: &[u8] = b"%PDF-1.7 the general terms";

fn file(id: &str, filename: &str, bytes: &[u8]) -> FileRef {
    FileRef {
        id: id.to_owned(),
        filename: filename.to_owned(),
        mime_type: "application/pdf".to_owned(),
        size: bytes.len() as u64,
        sha256: hex::encode(Sha256::digest(bytes)),
        uri: format!("file:///documents/{filename}"),
    }
}

fn participant(id: &str, name: &str, role: ParticipantRole, group: u32) -> Participant {
    Participant {
        id: id.to_owned(),
        name: Some(name.to_owned()),
        email: Some(format!("{id}@example.com")),
        role,
        signing_group: group,
        status: ParticipantStatus::SignaturePending,
        identity_check_failures: 0,
        signed_at: None,
        invited_at: None,
        signing_room_url: None,
        provider_reference: None,
    }
}

/// Two signing groups (Ada and Bob sign first, then the bank approves), an attachment, two
/// observers, Swedish.
pub fn agreement() -> Agreement {
    let now: chrono::DateTime<chrono::Utc> = "2026-11-22T10:00:00Z".parse().unwrap();
    Agreement {
        id: "agr0000000000000000000001".to_owned(),
        tenant: "tenant-a".to_owned(),
        test_mode: false,
        provider: ProviderOfRecord {
            name: "zigned".to_owned(),
            reference: None,
        },
        status: Status::Pending,
        trust_level: TrustLevel::Aes,
        cancellation_reason: None,
        contract: None,
        issuer: Some(Issuer {
            name: Some("Leasing Co".to_owned()),
            email: Some("contracts@leasing.example".to_owned()),
            role: IssuerRole::Observer,
            participant_id: None,
        }),
        participants: vec![
            participant("ada", "Ada Lovelace", ParticipantRole::Signer, 1),
            participant("bob", "Bob Builder", ParticipantRole::Signer, 1),
            participant("bank", "The Bank", ParticipantRole::Approver, 2),
        ],
        observers: vec![
            Observer {
                id: "broker".to_owned(),
                name: Some("Broker".to_owned()),
                email: Some("broker@example.com".to_owned()),
                scope: ObserverScope::Cc,
            },
            Observer {
                id: "audit".to_owned(),
                name: Some("Audit".to_owned()),
                email: Some("audit@example.com".to_owned()),
                scope: ObserverScope::Viewer,
            },
        ],
        signing_order: SigningOrder {
            enabled: true,
            grouped: true,
        },
        documents: Documents {
            main: Some(file("main", "lease.pdf", MAIN_BYTES)),
            attachments: vec![file("annex", "terms.pdf", ANNEX_BYTES)],
            signed_document: None,
        },
        communication: Communication {
            send_emails: true,
            default_locale: "sv-SE".to_owned(),
        },
        metadata: Metadata {
            lookup_key: Some("lease-42".to_owned()),
            success_callback_url: Some("https://journey.example/done".to_owned()),
        },
        expires_in_days: 30,
        sent_at: Some(now),
        expires_at: Some(now + chrono::TimeDelta::days(30)),
        completed_at: None,
        delivered_round: None,
        version: 2,
        history_len: 2,
        published_len: 2,
        created_at: now,
        updated_at: now,
    }
}

pub fn documents() -> DocumentBytes {
    DocumentBytes::from([
        ("main".to_owned(), MAIN_BYTES.to_vec()),
        ("annex".to_owned(), ANNEX_BYTES.to_vec()),
    ])
}
