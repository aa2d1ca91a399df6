//! Test double: an API server behind a `kube::Client` that answers in-process and records
//! every call, in the spirit of controller-rs's `ApiServerVerifier` (a `tower_test::mock`
//! service). It sits where no real component can be reached cheaply: between a reconcile and
//! the API server, so a test can assert the exact sequence of API calls a reconcile makes.
//!
//! It keeps the objects written to it (server-side apply stores the applied object; a status
//! patch replaces the stored object's status; a create stores it, or answers 409 when the name
//! exists; a delete removes it), answers a GET from them (404 when absent), bumps a
//! `resourceVersion` on each write, and answers an Event create with the Event. A test can script a failure for a call
//! ([`ScriptedApi::fail_next`]). Nothing reaches the caches by itself: the test delivers watch
//! events when it wants them ([`super::view::Feed`]), so it can also let the caches lag.

use std::collections::{BTreeMap, VecDeque};
use std::convert::Infallible;
use std::future::Future;
use std::pin::Pin;
use std::sync::{Arc, Mutex};
use std::task::{Context as TaskContext, Poll};

use http::{Request, Response};
use kube::client::Body;
use serde_json::{Value, json};

/// One API call: the method and the path below the namespace (`jobs/r-1-a-a1`,
/// `pipelineruns/r/status`), without the query; an Event create also names its reason
/// (`POST events RunStateChanged`).
pub(crate) type Call = String;

#[derive(Default)]
struct State {
    calls: Vec<Call>,
    objects: BTreeMap<String, Value>,
    version: u64,
    failures: VecDeque<(String, u16)>,
}

/// The scripted API server (cheap to clone; clones share their state).
#[derive(Clone, Default)]
pub(crate) struct ScriptedApi {
    state: Arc<Mutex<State>>,
}

impl ScriptedApi {
    /// A client whose every request this server answers.
    pub(crate) fn client(&self) -> kube::Client {
        kube::Client::new(self.clone(), "default")
    }

    /// Stores `object` at `path` (e.g. `pipelineruns/r`), as if someone had created it.
    pub(crate) fn put(&self, path: &str, mut object: Value) -> Value {
        let mut state = self.lock();
        state.version += 1;
        object["metadata"]["resourceVersion"] = json!(state.version.to_string());
        state.objects.insert(path.to_owned(), object.clone());
        object
    }

    /// The object stored at `path`.
    pub(crate) fn get(&self, path: &str) -> Option<Value> {
        self.lock().objects.get(path).cloned()
    }

    /// The calls made since the last time this was asked, in order.
    pub(crate) fn take_calls(&self) -> Vec<Call> {
        std::mem::take(&mut self.lock().calls)
    }

    /// The next call whose `METHOD path` starts with `call` fails with HTTP `code`.
    pub(crate) fn fail_next(&self, call: &str, code: u16) {
        self.lock().failures.push_back((call.to_owned(), code));
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, State> {
        self.state
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    fn answer(&self, method: &str, path: &str, body: Value) -> (u16, Value) {
        let mut state = self.lock();
        let call = match body["reason"].as_str() {
            Some(reason) if path == "events" => format!("{method} {path} {reason}"),
            _ => format!("{method} {path}"),
        };
        state.calls.push(call.clone());
        if let Some(i) = state.failures.iter().position(|(c, _)| call.starts_with(c)) {
            let code = state.failures.remove(i).map_or(500, |(_, code)| code);
            return (
                code,
                json!({"kind": "Status", "apiVersion": "v1", "status": "Failure",
                       "message": "scripted failure", "reason": "Conflict", "code": code}),
            );
        }
        state.version += 1;
        let version = state.version.to_string();
        match (method, path.strip_suffix("/status")) {
            ("PATCH", Some(object)) => {
                let Some(stored) = state.objects.get_mut(object) else {
                    return (404, json!({"kind": "Status", "code": 404}));
                };
                stored["status"] = body["status"].clone();
                stored["metadata"]["resourceVersion"] = json!(version);
                (200, stored.clone())
            }
            ("PATCH", None) => {
                let mut object = body;
                let stored = state.objects.get(path).cloned();
                if let Some(status) = stored.and_then(|s| s.get("status").cloned()) {
                    object["status"] = status;
                }
                object["metadata"]["resourceVersion"] = json!(version);
                object["metadata"]["namespace"] = json!("nba");
                object["metadata"]["creationTimestamp"] = json!(now());
                state.objects.insert(path.to_owned(), object.clone());
                (200, object)
            }
            ("GET", None) => match state.objects.get(path) {
                Some(stored) => (200, stored.clone()),
                None => (
                    404,
                    json!({"kind": "Status", "apiVersion": "v1", "status": "Failure",
                           "message": format!("{path} not found"), "reason": "NotFound", "code": 404}),
                ),
            },
            // A create (not an Event): stored under its name; a name that exists is a 409.
            ("POST", None) if path != "events" => {
                let key = format!(
                    "{path}/{}",
                    body["metadata"]["name"].as_str().unwrap_or_default()
                );
                if state.objects.contains_key(&key) {
                    return (
                        409,
                        json!({"kind": "Status", "apiVersion": "v1", "status": "Failure",
                               "message": format!("{key} already exists"), "reason": "AlreadyExists", "code": 409}),
                    );
                }
                let mut object = body;
                object["metadata"]["resourceVersion"] = json!(version);
                object["metadata"]["namespace"] = json!("nba");
                object["metadata"]["creationTimestamp"] = json!(now());
                state.objects.insert(key, object.clone());
                (201, object)
            }
            ("DELETE", None) => match state.objects.remove(path) {
                Some(_) => (
                    200,
                    json!({"kind": "Status", "apiVersion": "v1", "status": "Success", "code": 200}),
                ),
                None => (
                    404,
                    json!({"kind": "Status", "apiVersion": "v1", "status": "Failure", "reason": "NotFound", "code": 404}),
                ),
            },
            _ => (201, body),
        }
    }
}

/// The current time as the API server writes it (whole seconds).
pub(crate) fn now() -> String {
    jiff::Timestamp::now()
        .round(jiff::Unit::Second)
        .map(|t| t.to_string())
        .unwrap_or_default()
}

impl tower_service::Service<Request<Body>> for ScriptedApi {
    type Response = Response<Body>;
    type Error = Infallible;
    type Future = Pin<Box<dyn Future<Output = Result<Response<Body>, Infallible>> + Send>>;

    fn poll_ready(&mut self, _: &mut TaskContext<'_>) -> Poll<Result<(), Infallible>> {
        Poll::Ready(Ok(()))
    }

    fn call(&mut self, request: Request<Body>) -> Self::Future {
        let api = self.clone();
        Box::pin(async move {
            let (parts, body) = request.into_parts();
            let bytes = body.collect_bytes().await.unwrap_or_default();
            let body: Value = serde_json::from_slice(&bytes).unwrap_or(Value::Null);
            let path = parts.uri.path();
            let path = path
                .split_once("/namespaces/nba/")
                .map_or(path, |(_, rest)| rest);
            let (code, answer) = api.answer(parts.method.as_str(), path, body);
            let response = Response::builder()
                .status(code)
                .header("content-type", "application/json")
                .body(Body::from(answer.to_string().into_bytes()))
                .unwrap_or_else(|_| Response::new(Body::empty()));
            Ok(response)
        })
    }
}
