//! Leader election on a `coordination.k8s.io/v1` Lease, so two replicas never reconcile at once
//! and a standby takes over within one lease duration of the leader's death.
//!
//! The protocol is the one client-go uses: the holder renews `renewTime` every renew period;
//! a candidate takes the Lease once it has seen the same Lease record, unchanged, for a whole
//! `leaseDurationSeconds` by its own monotonic clock (never by comparing the holder's
//! `renewTime` with its own wall clock, so clock skew between replicas cannot make two
//! leaders), and every write carries the Lease's `resourceVersion`, so of two candidates racing
//! for an expired Lease exactly one wins (the other gets 409 Conflict). A leader that has not
//! renewed within the renew deadline, which is shorter than the lease duration, stops
//! reconciling before any candidate may take over; the binary exits and Kubernetes restarts it
//! as a candidate. Every Lease call has a timeout, so a hung API call cannot keep a leader
//! that can no longer renew.

use std::sync::Mutex;
use std::time::Duration;

use jiff::Timestamp;
use k8s_openapi::api::coordination::v1::{Lease, LeaseSpec};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::MicroTime;
use kube::api::{Api, ObjectMeta, PostParams};
use tokio::time::Instant;
use tracing::{info, warn};

/// Leader election settings.
#[derive(Clone, Debug)]
pub struct LeaseConfig {
    /// The Lease's name.
    pub name: String,
    /// This replica's identity (usually the Pod name).
    pub identity: String,
    /// How long a Lease is valid without renewal.
    pub lease_duration: Duration,
    /// How long the leader keeps leading without a successful renewal; below
    /// `lease_duration`, so it has stopped before a candidate may take over.
    pub renew_deadline: Duration,
    /// How often the holder renews, and how often a candidate retries.
    pub renew_period: Duration,
}

impl LeaseConfig {
    /// Checks `renew_period < renew_deadline < lease_duration`.
    pub fn validate(&self) -> Result<(), String> {
        if self.renew_deadline >= self.lease_duration {
            return Err(format!(
                "the renew deadline ({:?}) must be shorter than the lease duration ({:?})",
                self.renew_deadline, self.lease_duration
            ));
        }
        if self.renew_period >= self.renew_deadline {
            return Err(format!(
                "the renew period ({:?}) must be shorter than the renew deadline ({:?})",
                self.renew_period, self.renew_deadline
            ));
        }
        Ok(())
    }
}

/// The Lease record as last seen, and when this replica first saw it (monotonic clock).
struct Observation {
    record: (Option<String>, Option<MicroTime>, Option<i32>, Option<i32>),
    since: Instant,
}

/// Campaigns for and holds one Lease.
pub struct LeaderElector {
    api: Api<Lease>,
    config: LeaseConfig,
    observed: Mutex<Option<Observation>>,
}

/// Why a Lease call did not answer.
fn timed_out(what: &str, after: Duration) -> kube::Error {
    kube::Error::Service(format!("{what} did not answer within {after:?}").into())
}

fn micro(t: Timestamp) -> MicroTime {
    MicroTime(t)
}

impl LeaderElector {
    /// An elector for the Lease in `api`'s namespace.
    pub fn new(api: Api<Lease>, config: LeaseConfig) -> Self {
        Self {
            api,
            config,
            observed: Mutex::new(None),
        }
    }

    /// Whether the Lease record `spec` has gone unchanged for a lease duration since this
    /// replica first saw it, by its own clock. A new record restarts the count.
    fn expired_locally(&self, spec: &LeaseSpec, now: Instant) -> bool {
        let record = (
            spec.holder_identity.clone(),
            spec.renew_time.clone(),
            spec.lease_duration_seconds,
            spec.lease_transitions,
        );
        let duration = spec
            .lease_duration_seconds
            .and_then(|s| u64::try_from(s).ok())
            .map_or(self.config.lease_duration, Duration::from_secs);
        let Ok(mut observed) = self.observed.lock() else {
            return false;
        };
        match observed.as_ref() {
            Some(o) if o.record == record => now.saturating_duration_since(o.since) >= duration,
            _ => {
                *observed = Some(Observation { record, since: now });
                false
            }
        }
    }

    /// [`Self::try_acquire_or_renew`] bounded by `limit` (a hung call is an error).
    pub async fn try_within(&self, limit: Duration) -> Result<bool, kube::Error> {
        tokio::time::timeout(limit, self.try_acquire_or_renew())
            .await
            .map_err(|_| timed_out("the Lease API", limit))?
    }

    /// The settings.
    pub fn config(&self) -> &LeaseConfig {
        &self.config
    }

    /// One round: creates, renews or takes over the Lease if it may. Returns whether this
    /// replica holds it afterwards. A lost race is `Ok(false)`, not an error.
    pub async fn try_acquire_or_renew(&self) -> Result<bool, kube::Error> {
        let now = Timestamp::now();
        let duration_secs = i32::try_from(self.config.lease_duration.as_secs()).unwrap_or(i32::MAX);
        let existing = match self.api.get_opt(&self.config.name).await? {
            Some(lease) => lease,
            None => {
                let lease = Lease {
                    metadata: ObjectMeta {
                        name: Some(self.config.name.clone()),
                        ..ObjectMeta::default()
                    },
                    spec: Some(LeaseSpec {
                        holder_identity: Some(self.config.identity.clone()),
                        lease_duration_seconds: Some(duration_secs),
                        acquire_time: Some(micro(now)),
                        renew_time: Some(micro(now)),
                        lease_transitions: Some(0),
                        ..LeaseSpec::default()
                    }),
                };
                return match self.api.create(&PostParams::default(), &lease).await {
                    Ok(_) => Ok(true),
                    Err(kube::Error::Api(s)) if s.code == 409 => Ok(false),
                    Err(e) => Err(e),
                };
            }
        };
        let spec = existing.spec.clone().unwrap_or_default();
        let held_by_me = spec.holder_identity.as_deref() == Some(self.config.identity.as_str());
        // Judged by local observation, not by `renewTime` against this replica's clock.
        let expired = spec.holder_identity.as_deref().is_none_or(str::is_empty)
            || self.expired_locally(&spec, Instant::now());
        if !held_by_me && !expired {
            return Ok(false);
        }
        let mut lease = existing;
        let mut new_spec = spec.clone();
        new_spec.renew_time = Some(micro(now));
        new_spec.lease_duration_seconds = Some(duration_secs);
        if !held_by_me {
            info!(
                previous = spec.holder_identity.as_deref().unwrap_or(""),
                "taking over the expired leader Lease"
            );
            new_spec.holder_identity = Some(self.config.identity.clone());
            new_spec.acquire_time = Some(micro(now));
            new_spec.lease_transitions = Some(spec.lease_transitions.unwrap_or(0) + 1);
        }
        lease.spec = Some(new_spec);
        match self
            .api
            .replace(&self.config.name, &PostParams::default(), &lease)
            .await
        {
            Ok(_) => Ok(true),
            Err(kube::Error::Api(s)) if s.code == 409 => Ok(false),
            Err(e) => Err(e),
        }
    }

    /// Waits until this replica holds the Lease.
    pub async fn acquire(&self) {
        loop {
            match self.try_within(self.config.renew_period).await {
                Ok(true) => return,
                Ok(false) => {}
                Err(e) => warn!(error = %e, "leader election: could not reach the Lease"),
            }
            tokio::time::sleep(self.config.renew_period).await;
        }
    }

    /// Renews the Lease until another replica holds it or no renewal has succeeded for the
    /// renew deadline, then returns: leadership is lost. The deadline counts from when the last
    /// successful renewal was sent, and no call outlives it.
    pub async fn hold(&self) {
        let deadline = self.config.renew_deadline;
        let mut last_ok = Instant::now();
        loop {
            let left = deadline.saturating_sub(last_ok.elapsed());
            tokio::time::sleep(self.config.renew_period.min(left)).await;
            let left = deadline.saturating_sub(last_ok.elapsed());
            if left.is_zero() {
                warn!("leader election: could not renew within the renew deadline");
                return;
            }
            let sent = Instant::now();
            match self.try_within(left).await {
                Ok(true) => last_ok = sent,
                Ok(false) => {
                    warn!("leader election: another replica holds the Lease");
                    return;
                }
                Err(e) => warn!(error = %e, "leader election: renewal failed"),
            }
        }
    }

    /// Gives the Lease up (on graceful shutdown), so a standby takes over at once.
    pub async fn release(&self) {
        let limit = self.config.renew_period;
        let Ok(Ok(Some(mut lease))) =
            tokio::time::timeout(limit, self.api.get_opt(&self.config.name)).await
        else {
            return;
        };
        let Some(spec) = lease.spec.as_mut() else {
            return;
        };
        if spec.holder_identity.as_deref() != Some(self.config.identity.as_str()) {
            return;
        }
        spec.holder_identity = None;
        spec.renew_time = None;
        let params = PostParams::default();
        let replace = self.api.replace(&self.config.name, &params, &lease);
        match tokio::time::timeout(limit, replace).await {
            Ok(Ok(_)) => {}
            Ok(Err(e)) => warn!(error = %e, "leader election: could not release the Lease"),
            Err(_) => warn!("leader election: releasing the Lease timed out"),
        }
    }
}
