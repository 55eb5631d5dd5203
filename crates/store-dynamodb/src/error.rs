//! From SDK errors to the port's errors. Decisions are made on the SDK's modeled service errors
//! and cancellation-reason codes, never on message text; messages only go into descriptions.

use aws_sdk_dynamodb::error::{ProvideErrorMetadata, SdkError};
use aws_sdk_dynamodb::operation::put_item::PutItemError;
use aws_sdk_dynamodb::operation::transact_write_items::TransactWriteItemsError;
use aws_smithy_types::error::display::DisplayErrorContext;
use countersign_store::{CommitError, StoreError};

/// One line about an SDK error: the service's code and message, or the whole chain of a
/// transport failure.
pub fn describe<E, R>(error: &SdkError<E, R>) -> String
where
    E: ProvideErrorMetadata + std::error::Error + 'static,
    R: std::fmt::Debug,
{
    match error {
        SdkError::ServiceError(service) => {
            let error = service.err();
            format!(
                "{}: {}",
                error.code().unwrap_or("unknown error"),
                error.message().unwrap_or("no message")
            )
        }
        other => DisplayErrorContext(other).to_string(),
    }
}

/// Whether a write was refused by its own condition: the service's modeled
/// `ConditionalCheckFailedException`, whichever operation's error it comes in.
pub fn condition_failed<E, R>(error: &SdkError<E, R>) -> bool
where
    E: ProvideErrorMetadata,
{
    matches!(error, SdkError::ServiceError(service)
        if service.err().code() == Some("ConditionalCheckFailedException"))
}

/// `StoreError::Unavailable` for a failed request of `operation`.
pub fn unavailable<E, R>(operation: &str, error: &SdkError<E, R>) -> StoreError
where
    E: ProvideErrorMetadata + std::error::Error + 'static,
    R: std::fmt::Debug,
{
    StoreError::Unavailable(format!("DynamoDB {operation}: {}", describe(error)))
}

/// What each item of a commit's transaction stands for, by position: a failed condition on it
/// decides the error.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Role {
    /// The agreement, guarded by its revision (or by not existing yet).
    Agreement,
    /// A new history entry: it must not exist.
    History,
    /// The idempotency record: no live record may hold its key.
    Idempotency,
    /// The provider-event mark: the event id must not be marked.
    ProviderEvent,
}

/// The condition code DynamoDB gives an item whose condition failed.
const CONDITIONAL_CHECK_FAILED: &str = "ConditionalCheckFailed";
/// Another transaction was writing one of the items at the same time.
const TRANSACTION_CONFLICT: &str = "TransactionConflict";

/// The port's error for a failed `TransactWriteItems` of items with `roles`.
///
/// A cancelled transaction carries one reason per item, in request order (`None` for items that
/// passed). A failed guard of the agreement or of a history entry means another writer went
/// first: `Conflict`, which also wins over the other reasons (the caller reads again and decides
/// again; a redelivered event then meets its mark on a fresh revision). Otherwise the idempotency
/// record, then the provider-event mark, as the embedded store checks them. A transaction that
/// collided with a concurrent one is a `Conflict` too: reading again and retrying is the cure.
pub fn commit_error<R: std::fmt::Debug>(
    error: &SdkError<TransactWriteItemsError, R>,
    roles: &[Role],
) -> CommitError {
    let SdkError::ServiceError(service) = error else {
        return unavailable("TransactWriteItems", error).into();
    };
    let TransactWriteItemsError::TransactionCanceledException(cancelled) = service.err() else {
        return unavailable("TransactWriteItems", error).into();
    };
    let reasons = cancelled.cancellation_reasons();
    let failed = |wanted: Role| {
        reasons.iter().zip(roles).any(|(reason, role)| {
            *role == wanted && reason.code() == Some(CONDITIONAL_CHECK_FAILED)
        })
    };
    if failed(Role::Agreement) || failed(Role::History) {
        CommitError::Conflict
    } else if failed(Role::Idempotency) {
        CommitError::IdempotencyKeyTaken
    } else if failed(Role::ProviderEvent) {
        CommitError::DuplicateProviderEvent
    } else if reasons
        .iter()
        .any(|reason| reason.code() == Some(TRANSACTION_CONFLICT))
    {
        CommitError::Conflict
    } else {
        let codes: Vec<&str> = reasons
            .iter()
            .map(|reason| reason.code().unwrap_or("None"))
            .collect();
        StoreError::Unavailable(format!(
            "DynamoDB TransactWriteItems cancelled ({}): {}",
            codes.join(", "),
            describe(error)
        ))
        .into()
    }
}

/// The port's error for a refused `PutItem` of an idempotency record on its own.
pub fn put_idempotency_error<R: std::fmt::Debug>(error: &SdkError<PutItemError, R>) -> CommitError {
    if condition_failed(error) {
        CommitError::IdempotencyKeyTaken
    } else {
        unavailable("PutItem", error).into()
    }
}
