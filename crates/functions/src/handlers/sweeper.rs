//! The expiry sweeper, run on a schedule: expires what is due until shortly before the
//! invocation's deadline, and leaves the rest to the next run.

use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use countersign_service::{ServiceError, SweepReport, Sweeper};
use countersign_store::{AgreementCommit, AgreementGet, ExpiryIndex};

/// Time kept back from the invocation's deadline to finish the agreement in hand and return.
pub const DEADLINE_MARGIN: Duration = Duration::from_secs(5);

/// When to stop: `DEADLINE_MARGIN` before the invocation's deadline (`deadline_ms`, milliseconds
/// since the Unix epoch, as the Lambda context gives it), and never later than `budget` from
/// now. A deadline already past says nothing usable (local runtime emulators send a duration
/// there): then only the budget counts.
pub fn stop_at(deadline_ms: u64, budget: Duration) -> Instant {
    let now_ms = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|elapsed| elapsed.as_millis() as u64)
        .unwrap_or_default();
    let start = Instant::now();
    if deadline_ms <= now_ms {
        tracing::warn!(
            deadline_ms,
            "the invocation deadline is already past; the sweep uses its budget alone"
        );
        return start + budget;
    }
    let left = Duration::from_millis(deadline_ms - now_ms).saturating_sub(DEADLINE_MARGIN);
    start + left.min(budget)
}

pub async fn sweep<S: ExpiryIndex + AgreementGet + AgreementCommit + ?Sized>(
    sweeper: &Sweeper<S>,
    deadline_ms: u64,
    budget: Duration,
) -> Result<SweepReport, ServiceError> {
    let report = sweeper.sweep(Some(stop_at(deadline_ms, budget))).await?;
    tracing::info!(
        expired = report.expired,
        skipped = report.skipped,
        pages = report.pages,
        stopped_at_deadline = report.stopped_at_deadline,
        "sweep finished"
    );
    Ok(report)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn epoch_ms_in(from_now: Duration) -> u64 {
        (SystemTime::now() + from_now)
            .duration_since(UNIX_EPOCH)
            .unwrap()
            .as_millis() as u64
    }

    #[test]
    fn the_sweep_stops_before_the_deadline_and_within_its_budget() {
        let budget = Duration::from_secs(240);
        let stop = stop_at(epoch_ms_in(Duration::from_secs(60)), budget);
        let left = stop.saturating_duration_since(Instant::now());
        assert!(
            left <= Duration::from_secs(55) && left > Duration::from_secs(50),
            "{left:?}"
        );

        let stop = stop_at(epoch_ms_in(Duration::from_secs(900)), budget);
        let left = stop.saturating_duration_since(Instant::now());
        assert!(
            left <= budget && left > budget - Duration::from_secs(5),
            "{left:?}"
        );

        // Inside the margin already: no time at all.
        let stop = stop_at(epoch_ms_in(Duration::from_secs(2)), budget);
        assert_eq!(
            stop.saturating_duration_since(Instant::now()),
            Duration::ZERO
        );
    }

    #[test]
    fn a_deadline_in_the_past_falls_back_to_the_budget() {
        let stop = stop_at(600_000, Duration::from_secs(30));
        let left = stop.saturating_duration_since(Instant::now());
        assert!(
            left > Duration::from_secs(25) && left <= Duration::from_secs(30),
            "{left:?}"
        );
    }
}
