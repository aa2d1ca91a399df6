//! The HTTP front: routing of Kubernetes API paths, content negotiation,
//! the request log, metrics and fault-injection middleware. Handlers for
//! resources, watches, discovery and the admin endpoint live in submodules.

mod admin;
pub mod authz;
mod path;
mod resource;
mod review;
mod watch;

use std::sync::Arc;
use std::time::Instant;

use axum::Router;
use axum::body::Body;
use axum::extract::{Request, State};
use axum::http::{HeaderValue, StatusCode, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use serde_json::Value;

use crate::auth::Auth;
use crate::error::ApiError;
use crate::faults::Faults;
use crate::metrics::Metrics;
use crate::runner::Processes;
use crate::store::Store;

pub use path::{ApiPath, Target, parse};

/// Everything request handlers share.
pub struct AppState {
    /// The object store.
    pub store: Arc<Store>,
    /// Fault injection.
    pub faults: Arc<Faults>,
    /// Metrics registry.
    pub metrics: Arc<Metrics>,
    /// Running Pod processes (for logs).
    pub processes: Arc<Processes>,
    /// Interval between watch bookmarks.
    pub bookmark_interval: std::time::Duration,
    /// Issued tokens and RBAC decisions.
    pub auth: Arc<Auth>,
}

/// A JSON response with a status code.
pub fn json_response(code: u16, body: &Value) -> Response {
    let bytes = serde_json::to_vec(body).unwrap_or_default();
    let mut response = Response::new(Body::from(bytes));
    *response.status_mut() =
        StatusCode::from_u16(code).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
    response.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/json"),
    );
    response
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        json_response(self.code, &self.to_status())
    }
}

fn reason_for(code: u16) -> &'static str {
    match code {
        400 => "BadRequest",
        401 => "Unauthorized",
        403 => "Forbidden",
        404 => "NotFound",
        409 => "Conflict",
        410 => "Expired",
        422 => "Invalid",
        429 => "TooManyRequests",
        504 => "Timeout",
        503 => "ServiceUnavailable",
        _ => "InternalError",
    }
}

async fn observe(State(app): State<Arc<AppState>>, request: Request, next: Next) -> Response {
    let start = Instant::now();
    let method = request.method().to_string();
    let path = request.uri().path().to_string();
    let is_api = path.starts_with("/api");
    if is_api {
        let delay = app.faults.latency_for(&method, &path);
        if !delay.is_zero() {
            tokio::time::sleep(delay).await;
        }
    }
    let injected = if is_api {
        app.faults.take_failure(&method, &path)
    } else {
        None
    };
    let response = match injected {
        Some(code) => ApiError::new(
            code,
            reason_for(code),
            format!("injected fault: {method} {path}"),
        )
        .into_response(),
        None => next.run(request).await,
    };
    let status = response.status().as_u16();
    let elapsed = start.elapsed();
    let resource = resource_label(&app.store, &path);
    app.metrics
        .observe(&method, &resource, status, elapsed.as_secs_f64());
    tracing::info!(
        method = %method,
        path = %path,
        status,
        latency_ms = elapsed.as_secs_f64() * 1000.0,
        injected = injected.is_some(),
        "request"
    );
    response
}

/// A bounded metric label: the registered resource, or the kind of endpoint.
fn resource_label(store: &Store, path: &str) -> String {
    match parse(path) {
        Some(Target::Resource(p)) => match store.resource(&p.group, &p.version, &p.resource) {
            Some(info) => match &p.subresource {
                Some(sub) if sub == "status" || sub == "log" => format!("{}/{sub}", info.plural),
                _ => info.plural,
            },
            None => "unknown".into(),
        },
        Some(_) => "discovery".into(),
        None if path.starts_with("/_dev") => "admin".into(),
        None => "other".into(),
    }
}

async fn metrics(State(app): State<Arc<AppState>>) -> Response {
    let mut response = Response::new(Body::from(app.metrics.encode()));
    response.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/openmetrics-text; version=1.0.0; charset=utf-8"),
    );
    response
}

/// The full router.
pub fn router(state: Arc<AppState>) -> Router {
    Router::new()
        .route("/metrics", axum::routing::get(metrics))
        .route("/healthz", axum::routing::get(|| async { "ok" }))
        .route("/readyz", axum::routing::get(|| async { "ok" }))
        .route("/livez", axum::routing::get(|| async { "ok" }))
        .merge(admin::routes())
        .fallback(resource::dispatch)
        // The real server's request size limit (3 MiB).
        .layer(axum::extract::DefaultBodyLimit::max(3 * 1024 * 1024))
        .layer(axum::middleware::from_fn_with_state(
            state.clone(),
            authz::enforce,
        ))
        .layer(axum::middleware::from_fn_with_state(state.clone(), observe))
        .with_state(state)
}
