//! Watch streams: newline-delimited JSON events (ADDED, MODIFIED, DELETED,
//! BOOKMARK, ERROR) from a resourceVersion, with selectors, bookmarks,
//! `timeoutSeconds`, `410 Gone` for expired versions, and the fault hooks
//! that delay or drop them.

use std::sync::Arc;
use std::time::Duration;

use axum::body::{Body, Bytes};
use axum::http::{HeaderValue, header};
use axum::response::Response;
use serde_json::{Value, json};
use tokio::sync::{broadcast, mpsc};

use super::AppState;
use super::resource::{Params, Repr, partial_metadata};
use crate::error::{ApiError, ApiResult};
use crate::resources::ResourceInfo;
use crate::store::{ListOptions, with_version};
use crate::table::{self, IncludeObject};
use crate::watch::{EventType, WatchEvent};

struct Encoder {
    info: ResourceInfo,
    repr: Repr,
    include: IncludeObject,
}

impl Encoder {
    /// An event line, reusing the event's shared serialization when the
    /// object is served exactly as stored.
    fn event_line(&self, type_: &str, event: &WatchEvent) -> Bytes {
        let as_stored = self.repr == Repr::Object
            && self.info.group != "events.k8s.io"
            && event.object["apiVersion"].as_str() == Some(self.info.api_version().as_str());
        if !as_stored {
            return self.line(type_, &event.object);
        }
        let object = event
            .encoded
            .get_or_init(|| Bytes::from(serde_json::to_vec(&*event.object).unwrap_or_default()));
        let mut line = Vec::with_capacity(object.len() + 32);
        line.extend_from_slice(b"{\"type\":\"");
        line.extend_from_slice(type_.as_bytes());
        line.extend_from_slice(b"\",\"object\":");
        line.extend_from_slice(object);
        line.extend_from_slice(b"}\n");
        Bytes::from(line)
    }

    fn line(&self, type_: &str, object: &Value) -> Bytes {
        let object = with_version(object, &self.info);
        let object = match self.repr {
            Repr::Table => table::table(&self.info, &[object], None, None, self.include),
            Repr::Metadata => partial_metadata(&object),
            Repr::Object => object,
        };
        let mut bytes =
            serde_json::to_vec(&json!({"type": type_, "object": object})).unwrap_or_default();
        bytes.push(b'\n');
        Bytes::from(bytes)
    }

    fn bookmark(&self, rv: u64, initial_end: bool) -> Bytes {
        let mut metadata = json!({"resourceVersion": rv.to_string()});
        if initial_end {
            metadata["annotations"] = json!({"k8s.io/initial-events-end": "true"});
        }
        let object = json!({"kind": self.info.kind, "apiVersion": self.info.api_version(), "metadata": metadata});
        let mut bytes =
            serde_json::to_vec(&json!({"type": "BOOKMARK", "object": object})).unwrap_or_default();
        bytes.push(b'\n');
        Bytes::from(bytes)
    }
}

fn error_line(err: &ApiError) -> Bytes {
    let mut bytes = serde_json::to_vec(&json!({"type": "ERROR", "object": err.to_status()}))
        .unwrap_or_default();
    bytes.push(b'\n');
    Bytes::from(bytes)
}

/// Which event (if any) a watcher with `options` sees for `event`.
fn visible(options: &ListOptions, event: &WatchEvent) -> Option<EventType> {
    let now = options.matches(&event.namespace, &event.object);
    let before = event
        .old
        .as_ref()
        .is_some_and(|o| options.matches(&event.namespace, o));
    match event.type_ {
        EventType::Added => now.then_some(EventType::Added),
        EventType::Deleted => (now || before).then_some(EventType::Deleted),
        EventType::Modified => match (before, now) {
            (true, true) => Some(EventType::Modified),
            (false, true) => Some(EventType::Added),
            (true, false) => Some(EventType::Deleted),
            (false, false) => None,
        },
    }
}

fn response(rx: mpsc::Receiver<Bytes>) -> Response {
    let stream = futures::stream::unfold(rx, |mut rx| async move {
        rx.recv()
            .await
            .map(|b| (Ok::<_, std::convert::Infallible>(b), rx))
    });
    let mut response = Response::new(Body::from_stream(stream));
    response.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/json"),
    );
    response
}

/// Starts a watch and returns the streaming response.
pub(super) fn serve(
    app: Arc<AppState>,
    info: ResourceInfo,
    options: ListOptions,
    params: &Params,
    repr: Repr,
) -> ApiResult<Response> {
    let since = match params.get("resourceVersion").map(String::as_str) {
        None | Some("") => None,
        Some(rv) => Some(
            rv.parse::<u64>()
                .map_err(|_| ApiError::bad_request(format!("invalid resourceVersion {rv:?}")))?,
        ),
    };
    let send_initial = params.get("sendInitialEvents").is_some_and(|v| v == "true");
    let bookmarks = params
        .get("allowWatchBookmarks")
        .is_some_and(|v| v == "true" || v == "1");
    let timeout = params
        .get("timeoutSeconds")
        .and_then(|t| t.parse::<u64>().ok())
        .map(Duration::from_secs)
        .unwrap_or(Duration::from_secs(1800));
    let encoder = Encoder {
        info: info.clone(),
        repr,
        include: IncludeObject::parse(params.get("includeObject").map(String::as_str)),
    };
    let (tx, rx) = mpsc::channel::<Bytes>(256);
    let start = if send_initial { Some(0) } else { since };
    let (initial, mut events, current_rv) = match app.store.watch(&info, &options, start) {
        Ok(started) => started,
        Err(err) => {
            // Like the real server: 200, then one ERROR event with the Status.
            let _ = tx.try_send(error_line(&err));
            return Ok(response(rx));
        }
    };
    let mut drops = app.faults.watch_drops();
    let faults = app.faults.clone();
    let bookmark_interval = app.bookmark_interval;
    tokio::spawn(async move {
        let deadline = tokio::time::sleep(timeout);
        tokio::pin!(deadline);
        let mut last_rv = current_rv;
        for event in initial {
            if tx.send(encoder.event_line("ADDED", &event)).await.is_err() {
                return;
            }
        }
        if send_initial && bookmarks && tx.send(encoder.bookmark(last_rv, true)).await.is_err() {
            return;
        }
        let mut ticker = tokio::time::interval(bookmark_interval);
        ticker.tick().await;
        loop {
            tokio::select! {
                received = events.recv() => match received {
                    Ok(event) => {
                        if event.rv <= last_rv {
                            continue;
                        }
                        last_rv = event.rv;
                        if event.gr != info.group_resource() {
                            continue;
                        }
                        let Some(type_) = visible(&options, &event) else { continue };
                        let delay = faults.watch_delay();
                        if !delay.is_zero() {
                            tokio::select! {
                                _ = tokio::time::sleep(delay) => {}
                                _ = drops.changed() => return,
                            }
                        }
                        if tx.send(encoder.event_line(type_.as_str(), &event)).await.is_err() {
                            return;
                        }
                    }
                    Err(broadcast::error::RecvError::Lagged(_)) => {
                        let err = ApiError::expired("watch fell behind; too old resource version");
                        let _ = tx.send(error_line(&err)).await;
                        return;
                    }
                    Err(broadcast::error::RecvError::Closed) => return,
                },
                _ = ticker.tick(), if bookmarks => {
                    if tx.send(encoder.bookmark(last_rv, false)).await.is_err() {
                        return;
                    }
                }
                _ = drops.changed() => return,
                _ = &mut deadline => return,
                _ = tx.closed() => return,
            }
        }
    });
    Ok(response(rx))
}
