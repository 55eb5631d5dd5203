//! The pure domain of countersign: the agreement, its state machine (SPEC section 2), validation
//! and history. No I/O, no clocks, no randomness: time and new ids come in as arguments.

pub mod error;
pub mod history;
pub mod input;
pub mod model;
pub mod readiness;
pub mod status;
pub mod transitions;

pub use error::{DomainError, Issue, IssueCode};
pub use history::{EntryType, EventDetail, HistoryEntry, PublishedEvent};
pub use input::{AgreementInput, IdSource};
pub use model::*;
pub use status::{Journey, SignatureStatus, Status};
pub use transitions::{
    Decision, Delivery, IgnoreReason, LifecycleRequest, ProviderEvent, ProviderEventKind,
    ProviderRouting, Rules, Transition,
};
