//! Validation before `pending` (SPEC section 2): everything an agreement needs to be sent for
//! signature, every failure reported at once.

use std::collections::{BTreeSet, HashMap};

use email_address::EmailAddress;

use crate::error::{Issue, IssueCode};
use crate::model::{Agreement, ParticipantRole};

pub fn readiness_issues(agreement: &Agreement) -> Vec<Issue> {
    let mut issues = Vec::new();

    if !agreement
        .participants
        .iter()
        .any(|participant| participant.role == ParticipantRole::Signer)
    {
        issues.push(Issue::new(
            IssueCode::SignatoriesUndefined,
            "participants",
            "no participant with role signer",
        ));
    }

    let bank = agreement
        .contract
        .as_ref()
        .and_then(|contract| contract.bank_information.as_ref());
    match bank {
        None => issues.push(Issue::new(
            IssueCode::BankInformationUndefined,
            "contract.bank_information",
            "the bank account information has not been set on the contract",
        )),
        Some(bank) => {
            for (value, name) in [
                (&bank.account_holder, "account_holder"),
                (&bank.iban, "iban"),
            ] {
                if value.as_deref().is_none_or(|v| v.trim().is_empty()) {
                    issues.push(Issue::new(
                        IssueCode::BankInformationUndefined,
                        format!("contract.bank_information.{name}"),
                        format!("`{name}` has not been set"),
                    ));
                }
            }
        }
    }

    if agreement.documents.main.is_none() {
        issues.push(Issue::new(
            IssueCode::DocumentUndefined,
            "documents.main",
            "no main document",
        ));
    }

    let mut first_use_of_email: HashMap<String, usize> = HashMap::new();
    for (index, participant) in agreement.participants.iter().enumerate() {
        let field = format!("participants[{index}]");
        if participant
            .name
            .as_deref()
            .is_none_or(|n| n.trim().is_empty())
        {
            issues.push(Issue::new(
                IssueCode::InvalidParticipant,
                format!("{field}.name"),
                "a participant needs a name",
            ));
        }
        match participant.email.as_deref() {
            Some(email) if EmailAddress::is_valid(email) => {
                let key = email.to_lowercase();
                if let Some(first) = first_use_of_email.get(&key) {
                    issues.push(Issue::new(
                        IssueCode::InvalidParticipant,
                        format!("{field}.email"),
                        format!("`{email}` is also the email of participants[{first}]"),
                    ));
                } else {
                    first_use_of_email.insert(key, index);
                }
            }
            Some(email) => issues.push(Issue::new(
                IssueCode::InvalidEmail,
                format!("{field}.email"),
                format!("`{email}` is not a valid email address"),
            )),
            None => issues.push(Issue::new(
                IssueCode::InvalidEmail,
                format!("{field}.email"),
                "a participant needs an email address",
            )),
        }
    }

    for (index, observer) in agreement.observers.iter().enumerate() {
        match observer.email.as_deref() {
            Some(email) if EmailAddress::is_valid(email) => {}
            Some(email) => issues.push(Issue::new(
                IssueCode::InvalidEmail,
                format!("observers[{index}].email"),
                format!("`{email}` is not a valid email address"),
            )),
            None => issues.push(Issue::new(
                IssueCode::InvalidEmail,
                format!("observers[{index}].email"),
                "an observer needs an email address",
            )),
        }
    }

    if let Some(issuer_email) = agreement.issuer.as_ref().and_then(|i| i.email.as_deref()) {
        if !EmailAddress::is_valid(issuer_email) {
            issues.push(Issue::new(
                IssueCode::InvalidEmail,
                "issuer.email",
                format!("`{issuer_email}` is not a valid email address"),
            ));
        }
    }

    // With grouped signing order, groups run 1, 2, ... N: a number with nobody in it would
    // stall the signing forever.
    if agreement.signing_order.enabled && agreement.signing_order.grouped {
        let groups: BTreeSet<u32> = agreement
            .participants
            .iter()
            .map(|participant| participant.signing_group)
            .collect();
        if let Some(&last) = groups.last() {
            for group in 1..=last {
                if !groups.contains(&group) {
                    issues.push(Issue::new(
                        IssueCode::InvalidParticipant,
                        "participants",
                        format!("signing group {group} is empty (groups go from 1 to {last})"),
                    ));
                }
            }
        }
    }

    issues
}
