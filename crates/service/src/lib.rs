//! Application services of countersign: the operations of the API and the workers, over the
//! storage port, with time, ids and retries as dependencies.

pub mod agreements;
pub mod callbacks;
pub mod clock;
mod commit;
pub mod dispatcher;
pub mod documents;
pub mod error;
pub mod idempotency;
pub mod ids;
pub mod outbox;
pub mod retry;
pub mod sweeper;
#[cfg(any(test, feature = "test-doubles"))]
pub mod test_doubles;

pub use agreements::AgreementService;
pub use callbacks::{CallbackOutcome, CallbackProcessor, CallbackQueue};
pub use clock::{Clock, SystemClock};
pub use error::ServiceError;
pub use idempotency::{Answer, IdempotencyIntent, RenderedResponse};
pub use retry::RetryPolicy;
pub use sweeper::{SweepReport, Sweeper};
