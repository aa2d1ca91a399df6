//! The operator's HTTP endpoints: `/healthz` (the process serves), `/readyz` (watch caches
//! synced and, for the leader, the Lease held) and `/metrics` (Prometheus text format).

use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use axum::Router;
use axum::extract::State;
use axum::http::{StatusCode, header};
use axum::response::IntoResponse;
use axum::routing::get;

use crate::metrics::Metrics;

/// Shared readiness flags.
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
}

impl Health {
    fn ready(&self) -> bool {
        self.lease_ok.load(Ordering::Relaxed)
            && (!self.leading.load(Ordering::Relaxed) || self.synced.load(Ordering::Relaxed))
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
        }
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
        .route("/healthz", get(|| async { "ok" }))
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

async fn metrics_text(State(s): State<AppState>) -> impl IntoResponse {
    (
        [(
            header::CONTENT_TYPE,
            "application/openmetrics-text; version=1.0.0; charset=utf-8",
        )],
        s.metrics.encode(),
    )
}
