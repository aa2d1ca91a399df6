//! Publishing the planner's transition Events (`events.k8s.io/v1`).
//!
//! kube-runtime's `Recorder` folds Events into a series by type, reason, action and object,
//! leaving the note out of the key: the second `PhaseStateChanged` of a run within six minutes
//! became a count bump on the first Event, with the first Event's note. So `kubectl describe
//! pipelinerun` showed "phase 1 ... Succeeded; phase 2 ... Running" three times over and never
//! the later phases. It also kept every Event it published for six minutes (thousands, with
//! 1,000 runs in flight). The planner emits an Event only on a transition, and two transitions
//! are never the same occurrence, so each is its own Event here and nothing is kept. (client-go's
//! correlator, by contrast, keys on the message too.)

use k8s_openapi::api::core::v1::ObjectReference;
use k8s_openapi::api::events::v1::Event;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::MicroTime;
use kube::api::{Api, ObjectMeta, PostParams};
use kube::{Client, Resource};
use tipoff_crds::PipelineRun;

use crate::planner::{EventIntent, EventType};

/// The longest note the API server accepts (`events.k8s.io/v1` validation).
pub const MAX_NOTE: usize = 1024;

/// Publishes Events as one controller replica.
#[derive(Clone)]
pub struct Publisher {
    client: Client,
    controller: String,
    instance: String,
}

impl Publisher {
    /// Publishes as `controller` (the field manager) from replica `instance`.
    pub fn new(client: Client, controller: &str, instance: &str) -> Self {
        Self {
            client,
            controller: controller.to_owned(),
            instance: instance.to_owned(),
        }
    }

    /// Creates one Event about `run`.
    pub async fn publish(&self, run: &PipelineRun, intent: &EventIntent) -> kube::Result<()> {
        let event = self.event(run, intent, jiff::Timestamp::now());
        let ns = event.metadata.namespace.clone().unwrap_or_default();
        Api::<Event>::namespaced(self.client.clone(), &ns)
            .create(&PostParams::default(), &event)
            .await
            .map(|_| ())
    }

    /// Creates one Event of `type_` (`Normal` or `Warning`) about any tipoff object with a
    /// fixed `reason` (a reconcile's failure category, a schedule's skip or miss).
    pub async fn publish_about<K: Resource<DynamicType = ()>>(
        &self,
        object: &K,
        type_: &str,
        reason: &str,
        note: &str,
    ) -> kube::Result<()> {
        let event = self.build(object, type_, reason, note, jiff::Timestamp::now());
        let ns = event.metadata.namespace.clone().unwrap_or_default();
        Api::<Event>::namespaced(self.client.clone(), &ns)
            .create(&PostParams::default(), &event)
            .await
            .map(|_| ())
    }

    /// The Event for `intent` about `run` at `now`.
    fn event(&self, run: &PipelineRun, intent: &EventIntent, now: jiff::Timestamp) -> Event {
        let type_ = match intent.type_ {
            EventType::Normal => "Normal",
            EventType::Warning => "Warning",
        };
        self.build(run, type_, intent.reason.as_str(), &intent.message, now)
    }

    fn build<K: Resource<DynamicType = ()>>(
        &self,
        run: &K,
        type_: &str,
        reason: &str,
        note: &str,
        now: jiff::Timestamp,
    ) -> Event {
        let regarding: ObjectReference = run.object_ref(&());
        let run_name = regarding.name.clone().unwrap_or_default();
        Event {
            metadata: ObjectMeta {
                // Like client-go: the object's name and a unique suffix.
                name: Some(format!("{run_name}.{:x}", unique())),
                namespace: regarding.namespace.clone(),
                ..ObjectMeta::default()
            },
            event_time: Some(MicroTime(now)),
            type_: Some(type_.to_owned()),
            reason: Some(reason.to_owned()),
            action: Some("Reconcile".to_owned()),
            note: Some(truncate(note, MAX_NOTE)),
            reporting_controller: Some(self.controller.clone()),
            reporting_instance: Some(self.instance.clone()),
            regarding: Some(regarding),
            ..Event::default()
        }
    }
}

/// `s` cut to at most `max` bytes, on a character boundary.
fn truncate(s: &str, max: usize) -> String {
    let mut end = s.len().min(max);
    while !s.is_char_boundary(end) {
        end -= 1;
    }
    s[..end].to_owned()
}

/// A suffix no other Event of this process has: the time in nanoseconds, made unique.
fn unique() -> u128 {
    use std::sync::atomic::{AtomicU64, Ordering};
    static SEQ: AtomicU64 = AtomicU64::new(0);
    let nanos = jiff::Timestamp::now().as_nanosecond().unsigned_abs();
    nanos.wrapping_add(u128::from(SEQ.fetch_add(1, Ordering::Relaxed)))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::planner::EventReason;

    fn run() -> PipelineRun {
        serde_json::from_value(serde_json::json!({
            "apiVersion": "tipoff.dev/v1alpha1", "kind": "PipelineRun",
            "metadata": {"name": "nba-2026-01-29", "namespace": "ns", "uid": "u1"},
            "spec": {"date": "2026-01-29", "mode": "Production",
                     "release": {"image": "img@sha256:1", "commit": "abc1234"}}
        }))
        .unwrap()
    }

    #[tokio::test]
    async fn each_transition_is_its_own_event_with_its_own_note() {
        // A client is needed to build a Publisher; nothing is sent.
        let config = kube::Config::new("http://127.0.0.1:1".parse().unwrap());
        crate::install_crypto_provider();
        let client = Client::try_from(config).unwrap();
        let publisher = Publisher::new(client, "tipoff-operator", "op-a");
        let intent = |message: &str| EventIntent {
            type_: EventType::Normal,
            reason: EventReason::PhaseStateChanged,
            message: message.to_owned(),
        };
        let now = jiff::Timestamp::now();
        let a = publisher.event(&run(), &intent("phase 1 is Succeeded"), now);
        let b = publisher.event(&run(), &intent("phase 2 is Succeeded"), now);
        assert_ne!(a.metadata.name, b.metadata.name);
        assert!(a.metadata.name.unwrap().starts_with("nba-2026-01-29."));
        assert_eq!(a.note.as_deref(), Some("phase 1 is Succeeded"));
        assert_eq!(b.note.as_deref(), Some("phase 2 is Succeeded"));
        assert_eq!(a.reason.as_deref(), Some("PhaseStateChanged"));
        assert_eq!(a.metadata.namespace.as_deref(), Some("ns"));
        let regarding = a.regarding.unwrap();
        assert_eq!(regarding.kind.as_deref(), Some("PipelineRun"));
        assert_eq!(regarding.uid.as_deref(), Some("u1"));
        assert_eq!(a.reporting_instance.as_deref(), Some("op-a"));
        assert!(a.series.is_none());
    }

    #[test]
    fn a_long_note_is_cut_on_a_character_boundary() {
        let note = "é".repeat(MAX_NOTE);
        let cut = truncate(&note, MAX_NOTE);
        assert!(cut.len() <= MAX_NOTE);
        assert_eq!(cut.chars().count(), MAX_NOTE / 2);
    }
}
