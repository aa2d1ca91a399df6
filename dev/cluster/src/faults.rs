//! Fault injection: failing requests, added latency, delayed or dropped
//! watches, killed Pod processes, a paused Job runner and forced watch-window
//! compaction. Used through [`Faults`] in-process or `/_dev/faults` over HTTP.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use serde::{Deserialize, Serialize};

use crate::runner::Processes;
use crate::store::Store;

/// Fail the next `count` requests matching method and path pattern (a substring, `*` matching
/// any run of characters).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct FailRule {
    /// HTTP method to match (any when absent).
    #[serde(default)]
    pub method: Option<String>,
    /// Substring of the request path to match, `*` matching any run of characters (any path
    /// when empty).
    #[serde(default)]
    pub path: String,
    /// Status code to answer with (e.g. 409, 500, 503, 429).
    pub status: u16,
    /// How many requests to fail.
    pub count: u32,
}

/// Delay matching requests.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct LatencyRule {
    /// HTTP method to match (any when absent).
    #[serde(default)]
    pub method: Option<String>,
    /// Substring of the request path to match (any when empty).
    #[serde(default)]
    pub path: String,
    /// Milliseconds to add.
    pub millis: u64,
}

#[derive(Debug, Default, Clone, Serialize)]
struct State {
    fail: Vec<FailRule>,
    latency: Vec<LatencyRule>,
    watch_delay_millis: u64,
}

/// Shared fault-injection switchboard.
pub struct Faults {
    state: Mutex<State>,
    drop_watches: tokio::sync::watch::Sender<u64>,
    runner_paused: AtomicBool,
    processes: Arc<Processes>,
    store: Arc<Store>,
}

fn matches(method: &Option<String>, path: &str, req_method: &str, req_path: &str) -> bool {
    method
        .as_deref()
        .is_none_or(|m| m.eq_ignore_ascii_case(req_method))
        && path_matches(path, req_path)
}

/// Whether `req_path` contains `pattern`, where each `*` in the pattern stands for any run of
/// characters: the pieces between the stars must appear in order (`/jobs/*/status` matches a
/// Job's status subresource but not `/jobs/x`). Without a star this is a substring test.
fn path_matches(pattern: &str, req_path: &str) -> bool {
    let mut rest = req_path;
    for piece in pattern.split('*') {
        match rest.find(piece) {
            Some(at) => rest = &rest[at + piece.len()..],
            None => return false,
        }
    }
    true
}

impl Faults {
    pub(crate) fn new(store: Arc<Store>, processes: Arc<Processes>) -> Self {
        Self {
            state: Mutex::new(State::default()),
            drop_watches: tokio::sync::watch::channel(0).0,
            runner_paused: AtomicBool::new(false),
            processes,
            store,
        }
    }

    fn state(&self) -> std::sync::MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Fails the next `count` requests whose method matches (any if `None`)
    /// and whose path contains `path` (`*` matching any run of characters), with `status`.
    pub fn fail_next(&self, count: u32, method: Option<&str>, path: &str, status: u16) {
        self.state().fail.push(FailRule {
            method: method.map(String::from),
            path: path.to_string(),
            status,
            count,
        });
    }

    /// Adds latency to matching requests until cleared.
    pub fn add_latency(&self, latency: Duration, method: Option<&str>, path: &str) {
        self.state().latency.push(LatencyRule {
            method: method.map(String::from),
            path: path.to_string(),
            millis: u64::try_from(latency.as_millis()).unwrap_or(u64::MAX),
        });
    }

    /// Delays every watch event by `delay` (zero to stop).
    pub fn set_watch_delay(&self, delay: Duration) {
        self.state().watch_delay_millis = u64::try_from(delay.as_millis()).unwrap_or(u64::MAX);
    }

    /// Ends every open watch stream (clients see the connection close).
    pub fn drop_watches(&self) {
        self.drop_watches.send_modify(|n| *n += 1);
    }

    /// Forgets the retained watch window, so resuming from an older
    /// resourceVersion answers 410 Gone.
    pub fn compact(&self) {
        self.store.compact();
    }

    /// Kills the process of a running Pod; returns whether one was running.
    pub fn kill_pod(&self, namespace: &str, name: &str) -> bool {
        self.processes.kill(namespace, name)
    }

    /// Stops the Job runner from creating Pods or starting processes.
    pub fn pause_runner(&self) {
        self.runner_paused.store(true, Ordering::SeqCst);
    }

    /// Resumes the Job runner.
    pub fn resume_runner(&self) {
        self.runner_paused.store(false, Ordering::SeqCst);
        self.store.changed.notify_waiters();
    }

    /// Whether the runner is paused.
    pub fn runner_paused(&self) -> bool {
        self.runner_paused.load(Ordering::SeqCst)
    }

    /// Clears failure, latency and watch-delay rules and resumes the runner.
    pub fn clear(&self) {
        *self.state() = State::default();
        self.resume_runner();
    }

    /// The current rules as JSON (for `GET /_dev/faults`).
    pub fn describe(&self) -> serde_json::Value {
        let state = self.state().clone();
        serde_json::json!({
            "fail": state.fail,
            "latency": state.latency,
            "watchDelayMillis": state.watch_delay_millis,
            "runnerPaused": self.runner_paused(),
        })
    }

    /// Consumes one matching failure rule, returning the status to answer with.
    pub(crate) fn take_failure(&self, method: &str, path: &str) -> Option<u16> {
        let mut state = self.state();
        let rule = state
            .fail
            .iter_mut()
            .find(|r| r.count > 0 && matches(&r.method, &r.path, method, path))?;
        rule.count -= 1;
        let status = rule.status;
        state.fail.retain(|r| r.count > 0);
        Some(status)
    }

    /// Total latency to add to a request.
    pub(crate) fn latency_for(&self, method: &str, path: &str) -> Duration {
        let millis: u64 = self
            .state()
            .latency
            .iter()
            .filter(|r| matches(&r.method, &r.path, method, path))
            .map(|r| r.millis)
            .sum();
        Duration::from_millis(millis)
    }

    /// Delay for each watch event.
    pub(crate) fn watch_delay(&self) -> Duration {
        Duration::from_millis(self.state().watch_delay_millis)
    }

    /// A receiver that changes whenever watches must drop.
    pub(crate) fn watch_drops(&self) -> tokio::sync::watch::Receiver<u64> {
        self.drop_watches.subscribe()
    }
}

#[cfg(test)]
mod tests {
    use super::path_matches;

    #[test]
    fn a_path_pattern_is_a_substring_whose_stars_match_any_run_of_characters() {
        let status = "/apis/tipoff.dev/v1alpha1/namespaces/d/phasecompletions/r-p1/status";
        let apply = "/apis/tipoff.dev/v1alpha1/namespaces/d/phasecompletions/r-p1";
        assert!(path_matches("", apply));
        assert!(path_matches("/phasecompletions/", apply));
        assert!(path_matches("/phasecompletions/", status));
        assert!(path_matches("/phasecompletions/*/status", status));
        assert!(!path_matches("/phasecompletions/*/status", apply));
        assert!(path_matches("*phasecompletions*", apply));
        assert!(
            !path_matches("/status*/phasecompletions/", status),
            "pieces match in order"
        );
        assert!(!path_matches("/pipelineruns/*/status", status));
    }
}
