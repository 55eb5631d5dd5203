//! Time as a dependency, so services and their tests agree on "now".

use chrono::{DateTime, SubsecRound, Utc};

pub trait Clock: Send + Sync {
    fn now(&self) -> DateTime<Utc>;
}

#[derive(Debug, Default, Clone, Copy)]
pub struct SystemClock;

impl Clock for SystemClock {
    /// Millisecond precision: what the API shows and what every store keeps, so a timestamp
    /// reads back exactly as it was computed.
    fn now(&self) -> DateTime<Utc> {
        Utc::now().trunc_subsecs(3)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::Timelike;

    #[test]
    fn system_time_is_whole_milliseconds() {
        let now = SystemClock.now();
        assert_eq!(now.nanosecond() % 1_000_000, 0, "{now:?}");
    }
}
