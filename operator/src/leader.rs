//! Leader election on a `coordination.k8s.io/v1` Lease, so two replicas never reconcile at once
//! and a standby takes over within one lease duration of the leader's death.
//!
//! The protocol is the one client-go uses: the holder renews `renewTime` every renew period;
//! a candidate takes the Lease when `renewTime + leaseDurationSeconds` has passed, and every
//! write carries the Lease's `resourceVersion`, so of two candidates racing for an expired Lease
//! exactly one wins (the other gets 409 Conflict). A leader that cannot renew within the lease
//! duration must stop reconciling; the binary exits and Kubernetes restarts it as a candidate.

use std::time::Duration;

use jiff::Timestamp;
use k8s_openapi::api::coordination::v1::{Lease, LeaseSpec};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::MicroTime;
use kube::api::{Api, ObjectMeta, PostParams};
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
    /// How often the holder renews, and how often a candidate retries.
    pub renew_period: Duration,
}

/// Campaigns for and holds one Lease.
pub struct LeaderElector {
    api: Api<Lease>,
    config: LeaseConfig,
}

fn micro(t: Timestamp) -> MicroTime {
    MicroTime(t)
}

impl LeaderElector {
    /// An elector for the Lease in `api`'s namespace.
    pub fn new(api: Api<Lease>, config: LeaseConfig) -> Self {
        Self { api, config }
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
        let expired = match (&spec.renew_time, spec.lease_duration_seconds) {
            (Some(renewed), Some(secs)) => {
                renewed.0 + Duration::from_secs(u64::try_from(secs).unwrap_or(0)) < now
            }
            _ => true,
        } || spec.holder_identity.as_deref().is_none_or(str::is_empty);
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
            match self.try_acquire_or_renew().await {
                Ok(true) => return,
                Ok(false) => {}
                Err(e) => warn!(error = %e, "leader election: could not reach the Lease"),
            }
            tokio::time::sleep(self.config.renew_period).await;
        }
    }

    /// Renews the Lease until a renewal has not succeeded for a whole lease duration, then
    /// returns: leadership is lost.
    pub async fn hold(&self) {
        let mut last_ok = tokio::time::Instant::now();
        loop {
            tokio::time::sleep(self.config.renew_period).await;
            match self.try_acquire_or_renew().await {
                Ok(true) => last_ok = tokio::time::Instant::now(),
                Ok(false) => {
                    warn!("leader election: another replica holds the Lease");
                    return;
                }
                Err(e) => warn!(error = %e, "leader election: renewal failed"),
            }
            if last_ok.elapsed() >= self.config.lease_duration {
                warn!("leader election: could not renew within the lease duration");
                return;
            }
        }
    }

    /// Gives the Lease up (on graceful shutdown), so a standby takes over at once.
    pub async fn release(&self) {
        let Ok(Some(mut lease)) = self.api.get_opt(&self.config.name).await else {
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
        if let Err(e) = self
            .api
            .replace(&self.config.name, &PostParams::default(), &lease)
            .await
        {
            warn!(error = %e, "leader election: could not release the Lease");
        }
    }
}
