//! When a failed processor may be tried again: exponential backoff up to the attempt limit.

use jiff::{SignedDuration, Timestamp};
use tipoff_crds::{ProcessorRecord, RetryPolicy};

use crate::catalog::Retry;

use super::observe::is_permanent_exit;

/// The catalog's retry policy with the run's `spec.retry` fields laid over it.
pub fn effective(catalog: Retry, run: Option<&RetryPolicy>) -> Retry {
    let Some(run) = run else { return catalog };
    Retry {
        max_attempts: run.max_attempts.unwrap_or(catalog.max_attempts).max(1),
        backoff_seconds: run.backoff_seconds.unwrap_or(catalog.backoff_seconds),
        max_backoff_seconds: run
            .max_backoff_seconds
            .unwrap_or(catalog.max_backoff_seconds),
    }
}

/// The wait after failed attempt `attempt` (from 1): `min(base * 2^(attempt-1), cap)`.
pub fn backoff(policy: Retry, attempt: u32) -> SignedDuration {
    let exp = attempt.saturating_sub(1).min(30);
    let secs = u64::from(policy.backoff_seconds).saturating_mul(1u64 << exp);
    let secs = secs.min(u64::from(policy.max_backoff_seconds));
    SignedDuration::from_secs(i64::try_from(secs).unwrap_or(i64::MAX))
}

/// What to do after a failed attempt.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Next {
    /// Try again, not before the given time.
    RetryAt(Timestamp),
    /// No attempt left (or a permanent failure): the processor has failed for good.
    GiveUp(String),
}

/// Decides the next step after `failure`, under `policy`.
pub fn after_failure(policy: Retry, failure: &ProcessorRecord) -> Next {
    let reason = failure.reason.as_deref().unwrap_or("Failed");
    if failure.exit_code.is_some_and(is_permanent_exit) || reason == "ExitPermanent" {
        return Next::GiveUp(format!(
            "attempt {} failed permanently ({reason}); not retried",
            failure.attempt
        ));
    }
    if failure.attempt >= policy.max_attempts {
        return Next::GiveUp(format!(
            "{reason} on attempt {} of {}; no attempts left",
            failure.attempt, policy.max_attempts
        ));
    }
    let finished = failure
        .finish_time
        .as_ref()
        .map(|t| t.0)
        .unwrap_or(Timestamp::UNIX_EPOCH);
    Next::RetryAt(super::later(finished, backoff(policy, failure.attempt)))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backoff_doubles_up_to_the_cap() {
        let p = Retry {
            max_attempts: 10,
            backoff_seconds: 30,
            max_backoff_seconds: 100,
        };
        let secs: Vec<i64> = (1..=4).map(|a| backoff(p, a).as_secs()).collect();
        assert_eq!(secs, [30, 60, 100, 100]);
    }

    #[test]
    fn run_policy_overrides_catalog_fields_it_sets() {
        let catalog = Retry {
            max_attempts: 3,
            backoff_seconds: 30,
            max_backoff_seconds: 600,
        };
        let run = RetryPolicy {
            max_attempts: Some(5),
            ..Default::default()
        };
        assert_eq!(
            effective(catalog, Some(&run)),
            Retry {
                max_attempts: 5,
                ..catalog
            }
        );
    }
}
