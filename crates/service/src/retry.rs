//! Bounded retries with jittered exponential backoff, for optimistic-concurrency conflicts.

use std::time::Duration;

use rand::Rng;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RetryPolicy {
    /// Attempts in all, the first included.
    pub max_attempts: u32,
    pub base_delay: Duration,
    pub max_delay: Duration,
}

impl Default for RetryPolicy {
    fn default() -> Self {
        RetryPolicy {
            max_attempts: 10,
            base_delay: Duration::from_millis(5),
            max_delay: Duration::from_millis(250),
        }
    }
}

impl RetryPolicy {
    /// "Full jitter": uniform in [0, min(max, base * 2^attempt)], so racing writers spread out.
    pub fn delay_before_retry(&self, attempt: u32) -> Duration {
        let ceiling = self
            .base_delay
            .saturating_mul(1u32 << attempt.min(16))
            .min(self.max_delay);
        let millis = u64::try_from(ceiling.as_millis()).unwrap_or(u64::MAX);
        Duration::from_millis(rand::thread_rng().gen_range(0..=millis))
    }

    pub async fn pause(&self, attempt: u32) {
        tokio::time::sleep(self.delay_before_retry(attempt)).await;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn delays_stay_within_the_exponential_ceiling_and_the_cap() {
        let policy = RetryPolicy::default();
        for attempt in 0..20 {
            let ceiling = (policy.base_delay * 2u32.pow(attempt.min(16))).min(policy.max_delay);
            for _ in 0..50 {
                assert!(policy.delay_before_retry(attempt) <= ceiling);
            }
        }
    }
}
