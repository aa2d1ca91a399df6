//! What the watch caches keep of each object.
//!
//! The planner reads a few fields of Jobs and Pods. A `k8s_openapi` `Job` is 2.8 KiB before it
//! holds anything (its Pod template is inline) and a `Pod` 2.5 KiB, and with 1,000 runs in
//! flight the caches hold thousands of each. So Jobs and Pods are watched as [`CachedJob`] and
//! [`CachedPod`]: the same API objects, deserialized into types that have only the fields the
//! planner reads (the rest of the JSON is skipped while parsing, never allocated). A reconcile
//! turns its own run's few objects back into `Job`s and `Pod`s for the planner, which stays
//! written against the Kubernetes types.
//!
//! Kept, and why:
//! - metadata: name, namespace, uid, resourceVersion, creation and deletion
//!   timestamps, owner references (Pod -> Job -> PipelineRun), only the labels the planner reads (run, phase,
//!   processor, attempt and rerun; a Job keeps them outside its metadata, in [`ReadLabels`])
//!   and the Pod's completion-index annotation. Managed fields, the other labels (a label map
//!   costs about 0.5 KiB before its first entry, each entry two strings more) and every other
//!   annotation are dropped.
//! - Job: `completions`, `parallelism`, `activeDeadlineSeconds`, and of its status the start and
//!   completion times and the conditions.
//! - Pod: each container's name, `imageID` and termination state (exit code, message, times),
//!   and only once its processor container has ended ([`pod_event_matters`]): before that a Pod
//!   says nothing the Job does not. With 1,000 runs in flight thousands of Pods run at once;
//!   caching them cost 7 MiB of the operator's 33 MiB heap at its peak (heaptrack).
//!
//! PipelineRuns and PhaseCompletions keep their spec, and their metadata less the managed
//! fields and the `last-applied-configuration` annotation (a second copy of the spec when a
//! person uses client-side `kubectl apply`); their status, which only their own run's
//! reconciles read, is kept as deflated JSON ([`Deflated`]). A PhaseCompletion also loses its
//! labels ([`CachedPhaseCompletion`]); a PipelineRun keeps its state apart, which other runs'
//! reconciles read ([`CachedPipelineRun`]).

use std::borrow::Cow;
use std::collections::BTreeMap;
use std::marker::PhantomData;

use k8s_openapi::api::batch::v1::{Job, JobCondition, JobSpec, JobStatus};
use k8s_openapi::api::core::v1::{
    ContainerState, ContainerStateTerminated, ContainerStatus, Pod, PodStatus,
};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::Time;
use k8s_openapi::{Metadata, NamespaceResourceScope, Resource};
use kube::api::ObjectMeta;
use kube::runtime::watcher::Event;
use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};
use tipoff_crds::{
    PhaseCompletion, PhaseCompletionSpec, PhaseCompletionStatus, PipelineRun, PipelineRunSpec,
    PipelineRunStatus, RunState,
};

use tipoff_crds::children::{
    JobEnd, LABEL_ATTEMPT, LABEL_PHASE, LABEL_PROCESSOR, LABEL_RERUN, LABEL_RUN,
    processor_container_of,
};

/// The labels the planner reads (the Job builder sets more: date, commit).
const READ_LABELS: [&str; 5] = [
    LABEL_RUN,
    LABEL_PHASE,
    LABEL_PROCESSOR,
    LABEL_ATTEMPT,
    LABEL_RERUN,
];
/// The annotation the Job controller sets on an Indexed Job's Pods.
pub const COMPLETION_INDEX: &str = "batch.kubernetes.io/job-completion-index";
/// The annotation client-side `kubectl apply` keeps the whole applied object in.
const LAST_APPLIED: &str = "kubectl.kubernetes.io/last-applied-configuration";

/// The values of the labels the planner reads ([`READ_LABELS`], in that order), kept apart
/// from the metadata: a label map costs about 0.5 KiB before its first entry, and with 1,000
/// runs in flight thousands of Jobs are cached at once.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct ReadLabels([Option<Box<str>>; READ_LABELS.len()]);

impl ReadLabels {
    /// Moves the labels the planner reads out of `meta`, dropping the others.
    fn take(meta: &mut ObjectMeta) -> Self {
        let mut labels = meta.labels.take().unwrap_or_default();
        Self(READ_LABELS.map(|k| labels.remove(k).map(String::into_boxed_str)))
    }

    fn get(&self, key: &str) -> Option<&str> {
        let i = READ_LABELS.iter().position(|k| *k == key)?;
        self.0[i].as_deref()
    }

    fn to_map(&self) -> Option<BTreeMap<String, String>> {
        let map: BTreeMap<String, String> = READ_LABELS
            .iter()
            .zip(&self.0)
            .filter_map(|(k, v)| Some(((*k).to_owned(), v.as_deref()?.to_owned())))
            .collect();
        (!map.is_empty()).then_some(map)
    }
}

/// A `batch/v1` Job as the cache keeps it. Read from the API only: it does not serialize,
/// since a trimmed one keeps its labels outside its metadata.
#[derive(Clone, Debug, Default, Deserialize)]
pub struct CachedJob {
    /// Trimmed by [`CachedJob::trim`], which moves the labels to `labels`.
    pub metadata: ObjectMeta,
    /// The labels the planner reads, once trimmed.
    #[serde(skip)]
    pub labels: ReadLabels,
    /// The parts of the spec the planner reads.
    #[serde(default)]
    pub spec: Option<CachedJobSpec>,
    /// The parts of the status the planner reads.
    #[serde(default)]
    pub status: Option<CachedJobStatus>,
}

/// The parts of a Job's status the planner reads: when it started and completed, and its
/// conditions (the served status has eleven fields: Pod counts, indexes, uncounted Pods).
#[derive(Clone, Debug, Default, Deserialize, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct CachedJobStatus {
    /// When the Job controller started the Job.
    #[serde(default)]
    pub start_time: Option<Time>,
    /// When it completed.
    #[serde(default)]
    pub completion_time: Option<Time>,
    /// Its conditions (`Complete`, `Failed`, `FailureTarget`, ...).
    #[serde(default)]
    pub conditions: Option<Vec<CachedJobCondition>>,
}

/// A Job condition, less its probe time.
#[derive(Clone, Debug, Default, Deserialize, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct CachedJobCondition {
    /// `Complete`, `Failed`, ...
    #[serde(rename = "type")]
    pub type_: String,
    /// `True`, `False` or `Unknown`.
    pub status: String,
    /// Why, as a word.
    #[serde(default)]
    pub reason: Option<String>,
    /// Why, for a person.
    #[serde(default)]
    pub message: Option<String>,
    /// When it last changed.
    #[serde(default)]
    pub last_transition_time: Option<Time>,
}

/// The parts of a Job's spec the planner reads.
#[derive(Clone, Debug, Default, Deserialize, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct CachedJobSpec {
    /// Successful Pods needed.
    #[serde(default)]
    pub completions: Option<i32>,
    /// Pods at once.
    #[serde(default)]
    pub parallelism: Option<i32>,
    /// The Job's deadline.
    #[serde(default)]
    pub active_deadline_seconds: Option<i64>,
}

/// A `v1` Pod as the cache keeps it.
#[derive(Clone, Debug, Default, Deserialize, Serialize)]
pub struct CachedPod {
    /// Trimmed by [`trim_meta`].
    pub metadata: ObjectMeta,
    /// The Pod's containers' outcomes.
    #[serde(default)]
    pub status: Option<CachedPodStatus>,
}

/// The parts of a Pod's status the planner reads.
#[derive(Clone, Debug, Default, Deserialize, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct CachedPodStatus {
    /// `Pending`, `Running`, `Succeeded`, `Failed`.
    #[serde(default)]
    pub phase: Option<String>,
    /// One per container.
    #[serde(default)]
    pub container_statuses: Option<Vec<CachedContainerStatus>>,
}

/// A container's image and termination.
#[derive(Clone, Debug, Default, Deserialize, Serialize)]
pub struct CachedContainerStatus {
    /// The container's name.
    pub name: String,
    /// The image the container ran, by digest.
    #[serde(default, rename = "imageID")]
    pub image_id: String,
    /// Its current state: only termination is kept.
    #[serde(default)]
    pub state: Option<CachedContainerState>,
}

/// A container's termination, when it has ended.
#[derive(Clone, Debug, Default, Deserialize, Serialize)]
pub struct CachedContainerState {
    /// Exit code, message and times.
    #[serde(default)]
    pub terminated: Option<ContainerStateTerminated>,
}

impl Resource for CachedJob {
    const API_VERSION: &'static str = Job::API_VERSION;
    const GROUP: &'static str = Job::GROUP;
    const KIND: &'static str = Job::KIND;
    const VERSION: &'static str = Job::VERSION;
    const URL_PATH_SEGMENT: &'static str = Job::URL_PATH_SEGMENT;
    type Scope = NamespaceResourceScope;
}

impl Metadata for CachedJob {
    type Ty = ObjectMeta;
    fn metadata(&self) -> &ObjectMeta {
        &self.metadata
    }
    fn metadata_mut(&mut self) -> &mut ObjectMeta {
        &mut self.metadata
    }
}

impl Resource for CachedPod {
    const API_VERSION: &'static str = Pod::API_VERSION;
    const GROUP: &'static str = Pod::GROUP;
    const KIND: &'static str = Pod::KIND;
    const VERSION: &'static str = Pod::VERSION;
    const URL_PATH_SEGMENT: &'static str = Pod::URL_PATH_SEGMENT;
    type Scope = NamespaceResourceScope;
}

impl Metadata for CachedPod {
    type Ty = ObjectMeta;
    fn metadata(&self) -> &ObjectMeta {
        &self.metadata
    }
    fn metadata_mut(&mut self) -> &mut ObjectMeta {
        &mut self.metadata
    }
}

impl CachedJob {
    /// Trims the Job for the cache: [`trim_meta`], and its labels moved out of the metadata.
    pub fn trim(&mut self) {
        trim_meta(&mut self.metadata);
        self.labels = ReadLabels::take(&mut self.metadata);
    }

    /// The value of label `key` (one the planner reads), trimmed or not.
    pub fn label(&self, key: &str) -> Option<&str> {
        self.labels.get(key).or_else(|| {
            self.metadata
                .labels
                .as_ref()
                .and_then(|l| l.get(key))
                .map(String::as_str)
        })
    }

    /// The Job the planner reads.
    pub fn to_job(&self) -> Job {
        let mut metadata = self.metadata.clone();
        if let Some(labels) = self.labels.to_map() {
            metadata.labels.get_or_insert_default().extend(labels);
        }
        Job {
            metadata,
            spec: self.spec.as_ref().map(|s| JobSpec {
                completions: s.completions,
                parallelism: s.parallelism,
                active_deadline_seconds: s.active_deadline_seconds,
                ..JobSpec::default()
            }),
            status: self.status.as_ref().map(|s| JobStatus {
                start_time: s.start_time.clone(),
                completion_time: s.completion_time.clone(),
                conditions: s.conditions.as_ref().map(|cs| {
                    cs.iter()
                        .map(|c| JobCondition {
                            type_: c.type_.clone(),
                            status: c.status.clone(),
                            reason: c.reason.clone(),
                            message: c.message.clone(),
                            last_transition_time: c.last_transition_time.clone(),
                            last_probe_time: None,
                        })
                        .collect()
                }),
                ..JobStatus::default()
            }),
        }
    }

    /// Whether nothing more will happen to the Job or its Pods ([`JobEnd::is_final`]).
    pub fn is_finished(&self) -> bool {
        self.status
            .as_ref()
            .and_then(|s| s.conditions.as_ref())
            .is_some_and(|cs| {
                cs.iter()
                    .filter_map(|c| JobEnd::from_condition(&c.type_, &c.status))
                    .any(JobEnd::is_final)
            })
    }
}

impl CachedPod {
    /// The value of label `key`.
    pub fn label(&self, key: &str) -> Option<&str> {
        self.metadata
            .labels
            .as_ref()
            .and_then(|l| l.get(key))
            .map(String::as_str)
    }

    /// The Pod the planner reads.
    pub fn to_pod(&self) -> Pod {
        Pod {
            metadata: self.metadata.clone(),
            spec: None,
            status: self.status.as_ref().map(|s| PodStatus {
                phase: s.phase.clone(),
                container_statuses: s.container_statuses.as_ref().map(|cs| {
                    cs.iter()
                        .map(|c| ContainerStatus {
                            name: c.name.clone(),
                            image_id: c.image_id.clone(),
                            state: c.state.as_ref().map(|st| ContainerState {
                                terminated: st.terminated.clone(),
                                ..ContainerState::default()
                            }),
                            ..ContainerStatus::default()
                        })
                        .collect()
                }),
                ..PodStatus::default()
            }),
        }
    }

    /// Whether the processor container (or, without one of that name, the first) has ended.
    pub fn processor_ended(&self) -> bool {
        let Some(statuses) = self
            .status
            .as_ref()
            .and_then(|s| s.container_statuses.as_ref())
        else {
            return false;
        };
        processor_container_of(statuses, |c| c.name.as_str())
            .and_then(|c| c.state.as_ref())
            .is_some_and(|s| s.terminated.is_some())
    }

    /// The name of the Job that owns the Pod.
    pub fn job_name(&self) -> Option<&str> {
        self.metadata
            .owner_references
            .as_ref()?
            .iter()
            .find(|o| o.kind == "Job")
            .map(|o| o.name.as_str())
    }
}

/// Drops what no reader needs from a Job's or Pod's metadata: managed fields, labels other
/// than those the planner reads, annotations other than the completion index.
pub fn trim_meta(meta: &mut ObjectMeta) {
    meta.managed_fields = None;
    meta.labels = keep(meta.labels.take(), |k| READ_LABELS.contains(&k));
    meta.annotations = keep(meta.annotations.take(), |k| k == COMPLETION_INDEX);
}

/// Whether a Pod watch event matters to the planner: a Pod is read for its processor
/// container's termination (result, exit code, image), so one whose processor has not ended is
/// neither cached nor a reason to reconcile. (Jobs' Pods never restart a container: their
/// restart policy is `Never`.) Deletions and relist markers always pass.
pub fn pod_event_matters(event: &Event<CachedPod>) -> bool {
    match event {
        Event::Apply(pod) | Event::InitApply(pod) => pod.processor_ended(),
        Event::Delete(_) | Event::Init | Event::InitDone => true,
    }
}

fn keep(
    map: Option<BTreeMap<String, String>>,
    wanted: impl Fn(&str) -> bool,
) -> Option<BTreeMap<String, String>> {
    let kept: BTreeMap<String, String> = map?.into_iter().filter(|(k, _)| wanted(k)).collect();
    (!kept.is_empty()).then_some(kept)
}

/// Trims a PhaseCompletion's metadata for the cache; its labels go too (the planner finds a
/// PhaseCompletion's run and phase in its spec).
pub fn phase_completion(pc: &mut PhaseCompletion) {
    trim_phase_completion_meta(&mut pc.metadata);
}

fn trim_phase_completion_meta(meta: &mut ObjectMeta) {
    trim_whole(meta);
    meta.labels = None;
}

/// A status as the cache keeps it: JSON, deflated. A status is a ledger (of a phase's
/// processors, of a run's phases) that repeats its keys, image digest and commit in every
/// record, so it deflates to a fifth (the tests below measure a sample); and it is read only by
/// its own run's reconciles, which inflate and parse it in microseconds. Deflating happens
/// once per watch event, at the fastest level.
#[derive(Clone)]
pub struct Deflated<S> {
    bytes: Box<[u8]>,
    status: PhantomData<fn() -> S>,
}

/// Deflate's fastest level: the repetition in a ledger is long and obvious.
const DEFLATE_LEVEL: u8 = 1;
/// The most a status may inflate to: far more than any status the API server stores (its
/// objects are at most 1.5 MiB), so a limit hit means corrupt data, not a large ledger.
const INFLATE_LIMIT: usize = 4 << 20;

impl<S: Serialize + DeserializeOwned> Deflated<S> {
    /// `status` deflated; `None` if it does not serialize.
    fn new(status: &S) -> Option<Self> {
        let json = serde_json::to_vec(status).ok()?;
        Some(Self {
            bytes: miniz_oxide::deflate::compress_to_vec(&json, DEFLATE_LEVEL).into_boxed_slice(),
            status: PhantomData,
        })
    }

    /// The status back. One that does not inflate and parse (it was deflated by this same
    /// code, so it cannot) reads as none, which the planner rebuilds.
    fn inflate(&self) -> Option<S> {
        let json =
            miniz_oxide::inflate::decompress_to_vec_with_limit(&self.bytes, INFLATE_LIMIT).ok()?;
        serde_json::from_slice(&json).ok()
    }
}

impl<S> std::fmt::Debug for Deflated<S> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Deflated({} bytes)", self.bytes.len())
    }
}

/// Moves `status` into `deflated`, leaving it in place if it does not serialize.
fn deflate_into<S: Serialize + DeserializeOwned>(
    status: &mut Option<Box<S>>,
    deflated: &mut Option<Deflated<S>>,
) {
    if let Some(d) = status.as_deref().and_then(Deflated::new) {
        *deflated = Some(d);
        *status = None;
    }
}

/// The status of a cached object: the deflated one once trimmed, else as served.
fn status_of<S: Serialize + DeserializeOwned + Clone>(
    status: &Option<Box<S>>,
    deflated: &Option<Deflated<S>>,
) -> Option<S> {
    match deflated {
        Some(d) => d.inflate(),
        None => status.as_deref().cloned(),
    }
}

/// A PhaseCompletion as the cache keeps it: metadata and spec parsed, the status (the phase's
/// ledger) [`Deflated`], inflated by the reconciles of its run only.
///
/// The cache keeps one for each phase of each run: 2,000 with 1,000 runs. Parsed, a phase of
/// five finished processors takes about 6 KiB (a record's row counts alone are a B-tree node
/// of about 0.4 KiB); as JSON, 2.3 KiB; deflated, 0.45 KiB. Cached as JSON they were the
/// largest item of the operator's heap; deflated, its peak RSS fell by 4.7 MiB at 1,000 runs
/// in flight (docs/operations.md).
#[derive(Clone, Debug, Deserialize)]
pub struct CachedPhaseCompletion {
    /// Trimmed like a PhaseCompletion's ([`phase_completion`]).
    pub metadata: ObjectMeta,
    /// The spec.
    pub spec: PhaseCompletionSpec,
    /// The status as served, until [`CachedPhaseCompletion::trim`] deflates it.
    #[serde(default)]
    status: Option<Box<PhaseCompletionStatus>>,
    /// The status, deflated.
    #[serde(skip)]
    deflated: Option<Deflated<PhaseCompletionStatus>>,
}

impl CachedPhaseCompletion {
    /// Trims it for the cache: metadata as [`phase_completion`], the status deflated.
    pub fn trim(&mut self) {
        trim_phase_completion_meta(&mut self.metadata);
        deflate_into(&mut self.status, &mut self.deflated);
    }

    /// The PhaseCompletion the planner reads.
    pub fn to_phase_completion(&self) -> PhaseCompletion {
        PhaseCompletion {
            metadata: self.metadata.clone(),
            spec: self.spec.clone(),
            status: status_of(&self.status, &self.deflated),
        }
    }
}

/// A PipelineRun as the cache (the controller's own) keeps it: metadata (less managed fields
/// and the `last-applied-configuration` copy) and spec parsed, its state apart (other runs'
/// reconciles read it: two runs for one date never write at once), the rest of its status
/// [`Deflated`], inflated by its own reconciles. Measured within the benchmark's noise, but the
/// 1,000-runs-in-flight profile is that close to its memory target: a run without it peaked at
/// 31.4 MiB against 31 (docs/operations.md).
#[derive(Clone, Debug, Deserialize)]
pub struct CachedPipelineRun {
    /// Trimmed.
    pub metadata: ObjectMeta,
    /// The spec.
    pub spec: PipelineRunSpec,
    /// The status as served, until [`CachedPipelineRun::trim`] deflates it.
    #[serde(default)]
    status: Option<Box<PipelineRunStatus>>,
    /// The status's state, once trimmed.
    #[serde(skip)]
    state: Option<RunState>,
    /// The status, deflated.
    #[serde(skip)]
    deflated: Option<Deflated<PipelineRunStatus>>,
}

impl CachedPipelineRun {
    /// Trims it for the cache: managed fields and the last-applied copy dropped, the status
    /// deflated.
    pub fn trim(&mut self) {
        trim_whole(&mut self.metadata);
        self.state = self.status.as_ref().and_then(|s| s.state);
        deflate_into(&mut self.status, &mut self.deflated);
    }

    /// The run's state (`None` before its first status).
    pub fn state(&self) -> Option<RunState> {
        match &self.status {
            Some(status) => status.state,
            None => self.state,
        }
    }

    /// The PipelineRun the planner reads.
    pub fn to_pipeline_run(&self) -> PipelineRun {
        PipelineRun {
            metadata: self.metadata.clone(),
            spec: self.spec.clone(),
            status: status_of(&self.status, &self.deflated),
        }
    }
}

/// `kube::Resource` for a cached type, as the API type it is read from.
macro_rules! cached_resource {
    ($cached:ty, $api:ty) => {
        impl kube::Resource for $cached {
            type DynamicType = ();
            type Scope = NamespaceResourceScope;

            fn kind(dt: &()) -> Cow<'_, str> {
                <$api>::kind(dt)
            }
            fn group(dt: &()) -> Cow<'_, str> {
                <$api>::group(dt)
            }
            fn version(dt: &()) -> Cow<'_, str> {
                <$api>::version(dt)
            }
            fn plural(dt: &()) -> Cow<'_, str> {
                <$api>::plural(dt)
            }
            fn meta(&self) -> &ObjectMeta {
                &self.metadata
            }
            fn meta_mut(&mut self) -> &mut ObjectMeta {
                &mut self.metadata
            }
        }
    };
}

cached_resource!(CachedPhaseCompletion, PhaseCompletion);
cached_resource!(CachedPipelineRun, PipelineRun);

fn trim_whole(meta: &mut ObjectMeta) {
    meta.managed_fields = None;
    if let Some(annotations) = meta.annotations.as_mut() {
        annotations.remove(LAST_APPLIED);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A Job as the API server serves it (abridged from dev/cluster's output).
    const JOB: &str = r#"{
      "apiVersion": "batch/v1", "kind": "Job",
      "metadata": {"name": "r-p1-a-1", "namespace": "ns", "uid": "u1", "resourceVersion": "7",
        "labels": {"tipoff.dev/run": "r", "tipoff.dev/attempt": "1",
                   "tipoff.dev/date": "2026-01-01", "tipoff.dev/commit": "abc1234",
                   "app.kubernetes.io/managed-by": "tipoff", "controller-uid": "x"},
        "annotations": {"note": "dropped"},
        "ownerReferences": [{"apiVersion": "tipoff.dev/v1alpha1", "kind": "PipelineRun",
                             "name": "r", "uid": "u0", "controller": true}],
        "managedFields": [{"manager": "tipoff-operator", "operation": "Apply"}]},
      "spec": {"completions": 3, "parallelism": 3, "activeDeadlineSeconds": 60,
               "backoffLimit": 2, "template": {"spec": {"containers": [{"name": "processor",
               "image": "img@sha256:1"}], "restartPolicy": "Never"}}},
      "status": {"conditions": [{"type": "Complete", "status": "True"}], "succeeded": 3}
    }"#;

    const POD: &str = r#"{
      "apiVersion": "v1", "kind": "Pod",
      "metadata": {"name": "r-p1-a-1-0-x", "namespace": "ns",
        "labels": {"tipoff.dev/run": "r", "job-name": "r-p1-a-1"},
        "annotations": {"batch.kubernetes.io/job-completion-index": "0", "other": "x"},
        "ownerReferences": [{"apiVersion": "batch/v1", "kind": "Job", "name": "r-p1-a-1",
                             "uid": "u1", "controller": true}]},
      "spec": {"containers": [{"name": "processor", "image": "img@sha256:1"}]},
      "status": {"phase": "Succeeded", "conditions": [{"type": "Ready", "status": "False"}],
        "containerStatuses": [{"name": "processor", "image": "img", "imageID": "img@sha256:1",
          "ready": false, "restartCount": 0,
          "state": {"terminated": {"exitCode": 0, "message": "{\"rows\":1}"}}}]}
    }"#;

    #[test]
    fn a_cached_job_keeps_what_the_planner_reads() {
        let mut cached: CachedJob = serde_json::from_str(JOB).unwrap();
        cached.trim();
        assert!(cached.metadata.labels.is_none());
        assert_eq!(cached.label(LABEL_RUN), Some("r"));
        assert_eq!(cached.label(LABEL_PHASE), None);
        assert!(cached.is_finished());
        let job = cached.to_job();
        let spec = job.spec.unwrap();
        assert_eq!(spec.completions, Some(3));
        assert_eq!(spec.parallelism, Some(3));
        assert_eq!(spec.active_deadline_seconds, Some(60));
        assert!(spec.template.spec.is_none());
        let status = job.status.unwrap();
        let complete = &status.conditions.unwrap()[0];
        assert_eq!(
            (complete.type_.as_str(), complete.status.as_str()),
            ("Complete", "True")
        );
        assert_eq!(status.succeeded, None, "Pod counts are not kept");
        let meta = job.metadata;
        assert!(meta.managed_fields.is_none());
        assert!(meta.annotations.is_none());
        let labels: Vec<&str> = meta.labels.iter().flatten().map(|(k, _)| &**k).collect();
        assert_eq!(labels, ["tipoff.dev/attempt", "tipoff.dev/run"]);
        // The run is found through the owner's kind and name (the controller's `owns`).
        let owner = &meta.owner_references.unwrap()[0];
        assert_eq!(
            (owner.kind.as_str(), owner.name.as_str()),
            ("PipelineRun", "r")
        );
        assert_eq!(owner.api_version, "tipoff.dev/v1alpha1");
        assert_eq!(owner.uid, "u0", "owner references are kept whole");
    }

    #[test]
    fn a_cached_pod_keeps_its_result_image_and_completion_index() {
        let mut cached: CachedPod = serde_json::from_str(POD).unwrap();
        trim_meta(&mut cached.metadata);
        assert_eq!(cached.job_name(), Some("r-p1-a-1"));
        let pod = cached.to_pod();
        assert!(pod.spec.is_none());
        let annotations = pod.metadata.annotations.unwrap();
        assert_eq!(annotations.len(), 1);
        assert_eq!(annotations[COMPLETION_INDEX], "0");
        let status = pod.status.unwrap();
        assert_eq!(status.phase.as_deref(), Some("Succeeded"));
        let container = &status.container_statuses.unwrap()[0];
        assert_eq!(container.image_id, "img@sha256:1");
        let terminated = container
            .state
            .as_ref()
            .unwrap()
            .terminated
            .as_ref()
            .unwrap();
        assert_eq!(terminated.exit_code, 0);
        assert_eq!(terminated.message.as_deref(), Some("{\"rows\":1}"));
    }

    #[test]
    fn only_a_pod_whose_processor_ended_is_worth_caching() {
        let ended: CachedPod = serde_json::from_str(POD).unwrap();
        let mut running = ended.clone();
        running.status = Some(CachedPodStatus {
            phase: Some("Running".to_owned()),
            container_statuses: Some(vec![CachedContainerStatus {
                name: tipoff_crds::children::PROCESSOR_CONTAINER.to_owned(),
                image_id: "img@sha256:1".to_owned(),
                state: Some(CachedContainerState { terminated: None }),
            }]),
        });
        let pending = CachedPod {
            status: None,
            ..ended.clone()
        };
        assert!(pod_event_matters(&Event::Apply(ended.clone())));
        assert!(pod_event_matters(&Event::InitApply(ended)));
        assert!(!pod_event_matters(&Event::Apply(running.clone())));
        assert!(!pod_event_matters(&Event::InitApply(pending.clone())));
        // A deletion must reach the cache whatever the Pod's state.
        assert!(pod_event_matters(&Event::Delete(running)));
        assert!(pod_event_matters(&Event::Delete(pending)));
        assert!(pod_event_matters(&Event::Init) && pod_event_matters(&Event::InitDone));
    }

    #[test]
    fn a_cached_phase_completion_gives_back_the_status_it_was_served_with() {
        let served: PhaseCompletion = serde_json::from_value(serde_json::json!({
            "apiVersion": "tipoff.dev/v1alpha1", "kind": "PhaseCompletion",
            "metadata": {"name": "r-p1", "namespace": "ns", "resourceVersion": "9",
                         "labels": {"tipoff.dev/run": "r"},
                         "managedFields": [{"manager": "tipoff-operator"}]},
            "spec": {"run": "r", "date": "2026-01-01", "phase": 1, "phaseName": "scrape",
                     "expected": ["a"]},
            "status": {"state": "Succeeded", "done": 1, "expected": 1, "progress": "1/1",
                       "completed": [{"processor": "a", "attempt": 1, "job": "r-1-a-a1",
                                      "commit": "abc1234", "rows": {"t": 3}}]}
        }))
        .unwrap();
        let mut cached: CachedPhaseCompletion =
            serde_json::from_value(serde_json::to_value(&served).unwrap()).unwrap();
        cached.trim();
        assert!(cached.status.is_none() && cached.deflated.is_some());
        let back = cached.to_phase_completion();
        assert_eq!(back.status, served.status);
        assert_eq!(back.spec, served.spec);
        assert!(back.metadata.labels.is_none() && back.metadata.managed_fields.is_none());
        assert_eq!(back.metadata.resource_version.as_deref(), Some("9"));

        let mut without: CachedPhaseCompletion = serde_json::from_value(serde_json::json!({
            "metadata": {"name": "r-p2"},
            "spec": {"run": "r", "date": "2026-01-01", "phase": 2, "phaseName": "raw",
                     "expected": ["b"]}
        }))
        .unwrap();
        without.trim();
        assert!(without.to_phase_completion().status.is_none());
    }

    /// A phase of five finished processors as the operator records it, each with its Job,
    /// times, commit, image digest, rows and gate.
    fn five_processor_ledger() -> serde_json::Value {
        let completed: Vec<_> = ["a", "b", "c", "d", "e"]
            .iter()
            .enumerate()
            .map(|(i, p)| {
                serde_json::json!({
                    "processor": p, "attempt": 1, "job": format!("run-2026-01-01-p1-{p}-a1-x7f3k"),
                    "startTime": "2026-12-06T07:12:03Z", "finishTime": "2026-12-06T07:13:33Z",
                    "reportedProcessor": p, "commit": "3f9c2a1b4d5e6f708192a3b4c5d6e7f8091a2b3c",
                    "image": "ghcr.io/tipoff-dev/tipoff-processors@sha256:4b8e1c2d3f4a5b6c7d8e9f0a1b2c3d4e5f6a7b8c9d0e1f2a3b4c5d6e7f8a9b0c",
                    "rows": {"nba_raw.table": 120 + i},
                    "gates": [{"name": "rows", "passed": true, "policy": "Blocking",
                               "observed": 120 + i, "expected": 100}]
                })
            })
            .collect();
        serde_json::json!({
            "state": "Succeeded", "done": 5, "expected": 5, "progress": "5/5",
            "completed": completed, "nextPhaseTriggered": true
        })
    }

    #[test]
    fn a_ledger_is_cached_in_a_fraction_of_its_json() {
        let served: PhaseCompletion = serde_json::from_value(serde_json::json!({
            "metadata": {"name": "r-p1", "namespace": "ns"},
            "spec": {"run": "r", "date": "2026-01-01", "phase": 1, "phaseName": "scrape",
                     "expected": ["a", "b", "c", "d", "e"]},
            "status": five_processor_ledger()
        }))
        .unwrap();
        let json = serde_json::to_vec(&served.status).unwrap();
        let mut cached: CachedPhaseCompletion =
            serde_json::from_value(serde_json::to_value(&served).unwrap()).unwrap();
        cached.trim();
        let deflated = cached.deflated.as_ref().unwrap().bytes.len();
        // The figure the doc comments of `Deflated` and `CachedPhaseCompletion` give.
        assert!(
            deflated * 3 < json.len(),
            "{deflated} bytes deflated of {} bytes of JSON",
            json.len()
        );
        assert_eq!(cached.to_phase_completion().status, served.status);
    }

    #[test]
    fn a_corrupt_cached_ledger_reads_as_none() {
        let mut cached: CachedPhaseCompletion = serde_json::from_value(serde_json::json!({
            "metadata": {"name": "r-p1"},
            "spec": {"run": "r", "date": "2026-01-01", "phase": 1, "phaseName": "scrape",
                     "expected": ["a"]},
            "status": five_processor_ledger()
        }))
        .unwrap();
        cached.trim();
        cached.deflated = Some(Deflated {
            bytes: b"not deflate".to_vec().into_boxed_slice(),
            status: PhantomData,
        });
        assert!(cached.to_phase_completion().status.is_none());
    }

    #[test]
    fn an_unfinished_job_is_not_finished() {
        let job: CachedJob = serde_json::from_value(serde_json::json!({
            "metadata": {"name": "r-p1-a-1"},
            "status": {"active": 1, "ready": 1, "startTime": "2026-01-01T00:00:00Z",
                       "conditions": [{"type": "Complete", "status": "False"}]}
        }))
        .unwrap();
        assert!(!job.is_finished());
        let status = job.to_job().status.unwrap();
        assert!(status.start_time.is_some() && status.active.is_none());
    }

    #[test]
    fn a_cached_run_loses_its_managed_fields_and_last_applied_copy_only() {
        let served: PipelineRun = serde_json::from_value(serde_json::json!({
            "apiVersion": "tipoff.dev/v1alpha1", "kind": "PipelineRun",
            "metadata": {"name": "r", "annotations": {LAST_APPLIED: "{}", "keep": "me"},
                         "managedFields": [{"manager": "kubectl"}]},
            "spec": {"date": "2026-01-01", "mode": "Production",
                     "release": {"image": "img@sha256:1", "commit": "abc1234"}},
            "status": {"state": "Running", "currentPhase": 2, "progress": "5/10",
                       "phases": [{"phase": 1, "name": "scrape", "state": "Succeeded",
                                   "done": 5, "expected": 5}]}
        }))
        .unwrap();
        let mut cached: CachedPipelineRun =
            serde_json::from_value(serde_json::to_value(&served).unwrap()).unwrap();
        assert_eq!(cached.state(), Some(RunState::Running), "before trimming");
        cached.trim();
        assert!(cached.status.is_none() && cached.deflated.is_some());
        assert_eq!(cached.state(), Some(RunState::Running), "kept apart");
        let back = cached.to_pipeline_run();
        assert_eq!(back.status, served.status);
        assert_eq!(back.spec, served.spec);
        assert!(back.metadata.managed_fields.is_none());
        let annotations = back.metadata.annotations.unwrap();
        assert_eq!(annotations.keys().collect::<Vec<_>>(), ["keep"]);

        let mut new: CachedPipelineRun = serde_json::from_value(serde_json::json!({
            "metadata": {"name": "n"},
            "spec": {"date": "2026-01-01", "mode": "Production",
                     "release": {"image": "img@sha256:1", "commit": "abc1234"}}
        }))
        .unwrap();
        new.trim();
        assert_eq!(new.state(), None);
        assert!(new.to_pipeline_run().status.is_none());
    }
}
