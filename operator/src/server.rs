//! The operator's HTTP endpoints: `/healthz` (the controller makes progress), `/readyz`
//! (watch caches synced and, for the leader, the Lease held) and `/metrics` (Prometheus text
//! format).
//!
//! Liveness: every run is reconciled again at least every 300 s, so a leader with runs in its
//! cache that has finished no reconcile (successful or not) for `stall_after` is wedged, and
//! `/healthz` answers 503 so the kubelet restarts it. With no runs there is nothing to make
//! progress on: an idle operator stays live, as do a standby and a leader still syncing.

use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, OnceLock};
use std::time::{Duration, Instant};

use axum::Router;
use axum::extract::State;
use axum::http::{StatusCode, header};
use axum::response::IntoResponse;
use axum::routing::get;

use kube::runtime::reflector::Store;

use crate::controller::cache::CachedPipelineRun;
use crate::metrics::Metrics;

/// How long a leader with runs may go without finishing a reconcile before `/healthz` fails:
/// three resync periods.
pub const DEFAULT_STALL_AFTER: Duration = Duration::from_secs(900);

/// Shared readiness and liveness state.
#[derive(Default)]
pub struct Health {
    /// The watch caches have listed everything once.
    pub synced: AtomicBool,
    /// This replica may serve: a standby, or the leader holding its Lease.
    pub lease_ok: AtomicBool,
    /// This replica reconciles (it won the Lease, or runs without leader election). Only then
    /// do its watch caches exist, so only then must they be synced for it to be ready: a
    /// standby that waited for caches it never starts would never be ready, and a rolling
    /// update would wait on it forever.
    pub leading: AtomicBool,
    /// The leader's PipelineRun cache (set once the controller exists): runs to make progress on.
    pub runs: OnceLock<Store<CachedPipelineRun>>,
    /// How long without a finished reconcile, with runs present, counts as wedged
    /// ([`DEFAULT_STALL_AFTER`] when unset).
    pub stall_after: OnceLock<Duration>,
    /// Since when the cache has held runs without a break (`None` while it holds none).
    work_since: Mutex<Option<Instant>>,
}

impl Health {
    fn ready(&self) -> bool {
        self.lease_ok.load(Ordering::Relaxed)
            && (!self.leading.load(Ordering::Relaxed) || self.synced.load(Ordering::Relaxed))
    }

    /// Whether the controller makes progress: see the module documentation. `last_finished`
    /// is when a reconcile last finished.
    pub fn live(&self, last_finished: Option<Instant>, now: Instant) -> bool {
        if !self.leading.load(Ordering::Relaxed) || !self.synced.load(Ordering::Relaxed) {
            return true;
        }
        let runs = self.runs.get().map_or(0, |s| s.state().len());
        let Ok(mut since) = self.work_since.lock() else {
            return true;
        };
        if runs == 0 {
            *since = None;
            return true;
        }
        let work_since = *since.get_or_insert(now);
        // Work that appeared after the last reconcile has had since then to be picked up.
        let progress = last_finished.map_or(work_since, |t| t.max(work_since));
        let stall_after = self
            .stall_after
            .get()
            .copied()
            .unwrap_or(DEFAULT_STALL_AFTER);
        now.saturating_duration_since(progress) < stall_after
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn health(lease_ok: bool, leading: bool, synced: bool) -> Health {
        Health {
            synced: AtomicBool::new(synced),
            lease_ok: AtomicBool::new(lease_ok),
            leading: AtomicBool::new(leading),
            ..Health::default()
        }
    }

    #[test]
    #[allow(clippy::unwrap_used)]
    fn liveness_fails_only_for_a_leader_with_runs_and_no_finished_reconcile() {
        use kube::runtime::watcher::Event;
        let h = health(true, true, true);
        h.stall_after.set(Duration::from_secs(60)).unwrap();
        let (reader, mut writer) = kube::runtime::reflector::store::<CachedPipelineRun>();
        h.runs.set(reader).unwrap();
        let t0 = Instant::now();
        let at = |s: u64| t0 + Duration::from_secs(s);
        // Idle: no runs, no reconcile for an hour, still live.
        assert!(h.live(None, at(3600)));
        let run: CachedPipelineRun = serde_json::from_value(serde_json::json!({
            "apiVersion": "tipoff.dev/v1alpha1", "kind": "PipelineRun",
            "metadata": {"name": "a", "namespace": "ns"},
            "spec": {"date": "2026-01-29", "mode": "Production",
                     "release": {"image": "img@sha256:1", "commit": "abc1234"}}
        }))
        .unwrap();
        writer.apply_watcher_event(&Event::Apply(run));
        // A run appears after a long idle spell: it has `stall_after` to be reconciled.
        assert!(h.live(Some(at(0)), at(3600)));
        assert!(h.live(Some(at(0)), at(3650)));
        // Reconciles keep finishing: live.
        assert!(h.live(Some(at(3640)), at(3690)));
        // None finished for longer than stall_after while the run waits: wedged.
        assert!(!h.live(Some(at(3640)), at(3701)));
        // A standby, or a leader still syncing, is never restarted for it.
        let standby = health(true, false, false);
        assert!(standby.live(None, at(100_000)));
    }

    #[test]
    fn a_standby_is_ready_without_watch_caches_and_a_leader_only_once_synced() {
        // Before the CRDs exist: neither flag is set.
        assert!(!health(false, false, false).ready());
        // A standby waiting for the Lease can take over: ready.
        assert!(health(true, false, false).ready());
        // The leader before and after its caches synced.
        assert!(!health(true, true, false).ready());
        assert!(health(true, true, true).ready());
        // A leader that lost its Lease.
        assert!(!health(false, true, true).ready());
    }
}

#[derive(Clone)]
struct AppState {
    health: Arc<Health>,
    metrics: Arc<Metrics>,
}

/// Serves the endpoints on `addr` until the process exits.
pub async fn serve(
    addr: SocketAddr,
    health: Arc<Health>,
    metrics: Arc<Metrics>,
) -> std::io::Result<()> {
    let app = Router::new()
        .route("/healthz", get(healthz))
        .route("/readyz", get(readyz))
        .route("/metrics", get(metrics_text))
        .with_state(AppState { health, metrics });
    let listener = tokio::net::TcpListener::bind(addr).await?;
    // The bound address (with `--listen 127.0.0.1:0`, the port the system chose).
    tracing::info!(addr = %listener.local_addr()?, "serving /healthz, /readyz and /metrics");
    axum::serve(listener, app).await
}

async fn readyz(State(s): State<AppState>) -> impl IntoResponse {
    if s.health.ready() {
        (StatusCode::OK, "ready")
    } else {
        (
            StatusCode::SERVICE_UNAVAILABLE,
            "not ready: watch caches not synced or leader Lease not held",
        )
    }
}

async fn healthz(State(s): State<AppState>) -> impl IntoResponse {
    if s.health.live(s.metrics.last_finished(), Instant::now()) {
        (StatusCode::OK, "ok")
    } else {
        (
            StatusCode::SERVICE_UNAVAILABLE,
            "wedged: runs are waiting and no reconcile has finished within the stall limit",
        )
    }
}

async fn metrics_text(State(s): State<AppState>) -> impl IntoResponse {
    (
        [(
            header::CONTENT_TYPE,
            "application/openmetrics-text; version=1.0.0; charset=utf-8",
        )],
        s.metrics.encode(),
    )
}
