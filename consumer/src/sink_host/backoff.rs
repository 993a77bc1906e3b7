//! Exponential backoff with jitter.
use std::time::Duration;

use super::config::RetryConfig;

/// The delay before retry number `attempt` (1-based): `initial * 2^(attempt-1)` capped at
/// `max`, then "equal jitter": a uniformly random value in `[d/2, d]`, so retries of many
/// sinks do not synchronise while the delay still grows.
pub fn delay(cfg: &RetryConfig, attempt: u32) -> Duration {
    let exp = attempt.saturating_sub(1).min(30);
    let base = cfg
        .initial_backoff_ms
        .saturating_mul(1u64 << exp)
        .min(cfg.max_backoff_ms);
    let half = base / 2;
    let jitter = if base > half {
        fastrand::u64(0..=(base - half))
    } else {
        0
    };
    Duration::from_millis(half + jitter)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn grows_exponentially_within_jitter_bounds_and_caps() {
        let cfg = RetryConfig {
            initial_backoff_ms: 100,
            max_backoff_ms: 1000,
            max_attempts: 0,
        };
        for _ in 0..200 {
            let d1 = delay(&cfg, 1).as_millis();
            assert!((50..=100).contains(&d1), "{d1}");
            let d3 = delay(&cfg, 3).as_millis();
            assert!((200..=400).contains(&d3), "{d3}");
            let d10 = delay(&cfg, 10).as_millis();
            assert!((500..=1000).contains(&d10), "{d10}");
            let huge = delay(&cfg, u32::MAX).as_millis();
            assert!((500..=1000).contains(&huge), "{huge}");
        }
        let spread: std::collections::HashSet<u128> =
            (0..50).map(|_| delay(&cfg, 4).as_millis()).collect();
        assert!(spread.len() > 5, "jitter should vary the delay");
    }
}
