//! The `/_dev/faults` admin endpoint: a thin JSON shell over [`crate::faults::Faults`].

use std::sync::Arc;
use std::time::Duration;

use axum::Router;
use axum::extract::{Json, State};
use axum::response::Response;
use axum::routing::{get, post};
use serde::Deserialize;
use serde_json::json;

use super::{AppState, json_response};
use crate::faults::{FailRule, LatencyRule};

#[derive(Debug, Deserialize)]
struct Millis {
    millis: u64,
}

#[derive(Debug, Deserialize)]
struct PodRef {
    #[serde(default = "default_namespace")]
    namespace: String,
    name: String,
}

fn default_namespace() -> String {
    "default".into()
}

fn ok() -> Response {
    json_response(200, &json!({"ok": true}))
}

pub(super) fn routes() -> Router<Arc<AppState>> {
    Router::new()
        .route(
            "/_dev/faults",
            get(|State(app): State<Arc<AppState>>| async move {
                json_response(200, &app.faults.describe())
            })
            .delete(|State(app): State<Arc<AppState>>| async move {
                app.faults.clear();
                ok()
            }),
        )
        .route(
            "/_dev/faults/fail",
            post(
                |State(app): State<Arc<AppState>>, Json(rule): Json<FailRule>| async move {
                    app.faults.fail_next(
                        rule.count,
                        rule.method.as_deref(),
                        &rule.path,
                        rule.status,
                    );
                    ok()
                },
            ),
        )
        .route(
            "/_dev/faults/latency",
            post(
                |State(app): State<Arc<AppState>>, Json(rule): Json<LatencyRule>| async move {
                    app.faults.add_latency(
                        Duration::from_millis(rule.millis),
                        rule.method.as_deref(),
                        &rule.path,
                    );
                    ok()
                },
            ),
        )
        .route(
            "/_dev/faults/watch-delay",
            post(
                |State(app): State<Arc<AppState>>, Json(m): Json<Millis>| async move {
                    app.faults.set_watch_delay(Duration::from_millis(m.millis));
                    ok()
                },
            ),
        )
        .route(
            "/_dev/faults/drop-watches",
            post(|State(app): State<Arc<AppState>>| async move {
                app.faults.drop_watches();
                ok()
            }),
        )
        .route(
            "/_dev/faults/compact",
            post(|State(app): State<Arc<AppState>>| async move {
                app.faults.compact();
                ok()
            }),
        )
        .route(
            "/_dev/faults/kill-pod",
            post(
                |State(app): State<Arc<AppState>>, Json(pod): Json<PodRef>| async move {
                    let killed = app.faults.kill_pod(&pod.namespace, &pod.name);
                    json_response(if killed { 200 } else { 404 }, &json!({"killed": killed}))
                },
            ),
        )
        .route(
            "/_dev/faults/runner/pause",
            post(|State(app): State<Arc<AppState>>| async move {
                app.faults.pause_runner();
                ok()
            }),
        )
        .route(
            "/_dev/faults/runner/resume",
            post(|State(app): State<Arc<AppState>>| async move {
                app.faults.resume_runner();
                ok()
            }),
        )
}
