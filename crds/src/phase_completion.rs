//! `PhaseCompletion`: one phase of one run, the Kubernetes-native replacement of the legacy
//! Firestore `phaseN_completion/{date}` documents.
//!
//! Unlike those documents, nothing here is a flag written in advance: every field of the status
//! is recomputed from the Jobs and Pods that exist, so `nextPhaseTriggered` is true only once
//! the next phase's Jobs are observed.

use std::collections::BTreeMap;

use k8s_openapi::apimachinery::pkg::apis::meta::v1::Time;
use kube::CustomResource;
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use crate::conditions::Condition;
use crate::rules;

/// One phase of one PipelineRun: which processors it expects and what each of them did.
// `printcolumn(...)` repeats `type_ = ...` by design; clippy reads that as a duplicated attribute.
#[allow(clippy::duplicated_attributes)]
#[derive(CustomResource, Serialize, Deserialize, Clone, Debug, PartialEq, JsonSchema)]
#[kube(
    group = "tipoff.dev",
    version = "v1alpha1",
    kind = "PhaseCompletion",
    namespaced,
    status = "PhaseCompletionStatus",
    shortname = "tpc",
    shortname = "phasecomp",
    category = "tipoff",
    derive = "PartialEq",
    doc = "One phase of one tipoff PipelineRun: the processors it expects and what each did.",
    printcolumn(
        name = "Date",
        type_ = "string",
        json_path = ".spec.date",
        description = "Game date"
    ),
    printcolumn(
        name = "Phase",
        type_ = "integer",
        json_path = ".spec.phase",
        description = "Phase number"
    ),
    printcolumn(
        name = "Phase Name",
        type_ = "string",
        json_path = ".spec.phaseName",
        description = "Phase name"
    ),
    printcolumn(
        name = "Done",
        type_ = "string",
        json_path = ".status.progress",
        description = "Processors succeeded / expected"
    ),
    printcolumn(
        name = "State",
        type_ = "string",
        json_path = ".status.state",
        description = "Phase state"
    ),
    printcolumn(
        name = "Age",
        type_ = "date",
        json_path = ".metadata.creationTimestamp"
    )
)]
#[serde(rename_all = "camelCase")]
#[schemars(transform = spec_rules)]
pub struct PhaseCompletionSpec {
    /// The PipelineRun this phase belongs to (also its owner).
    #[schemars(length(min = 1, max = 253))]
    pub run: String,
    /// The run's game date (`YYYY-MM-DD`).
    #[schemars(length(max = 10), transform = rules::date)]
    pub date: String,
    /// The phase number (1-6).
    #[schemars(range(min = 1, max = 6))]
    pub phase: u8,
    /// The phase's name from the catalog, e.g. `precompute`.
    #[schemars(length(min = 1, max = 63))]
    pub phase_name: String,
    /// The processors this phase expects for this run, after the run's subset was applied.
    #[schemars(length(max = 64), inner(length(max = 63)), transform = rules::processor_names)]
    pub expected: Vec<String>,
}

fn spec_rules(schema: &mut schemars::Schema) {
    rules::add_rule(
        schema,
        "self == oldSelf",
        "a PhaseCompletion's spec is fixed when the operator creates it; delete the object to rebuild it",
    );
}

/// The observed state of one phase.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, Default, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct PhaseCompletionStatus {
    /// The phase's state.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub state: Option<PhaseState>,
    /// Expected processors that succeeded.
    #[serde(default)]
    pub done: u32,
    /// Processors the phase expects.
    #[serde(default)]
    pub expected: u32,
    /// `done/expected`, e.g. `3/5`, for `kubectl get`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(length(max = 16))]
    pub progress: Option<String>,
    /// Processors whose latest attempt succeeded.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    #[schemars(length(max = 64), transform = rules::list_map_processor)]
    pub completed: Vec<ProcessorRecord>,
    /// Processors whose latest attempt failed (they may still be retried).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    #[schemars(length(max = 64), transform = rules::list_map_processor)]
    pub failed: Vec<ProcessorRecord>,
    /// Processors with a live attempt now.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    #[schemars(length(max = 64), transform = rules::list_map_processor)]
    pub running: Vec<RunningAttempt>,
    /// True once the next phase's Jobs are observed to exist. Derived, never written ahead of
    /// the fact: the legacy `_triggered` flag was set before the trigger succeeded.
    #[serde(default)]
    pub next_phase_triggered: bool,
    /// `Ready`, `Stalled`, `Complete` and `GatesPassed` (see docs/crd-reference.md).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    #[schemars(length(max = 16), transform = rules::list_map_type)]
    pub conditions: Vec<Condition>,
}

/// A processor attempt whose Job is live.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, Eq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct RunningAttempt {
    /// The processor's name from the catalog.
    #[schemars(length(max = 63))]
    pub processor: String,
    /// The attempt number, from 1.
    #[schemars(range(min = 1))]
    pub attempt: u32,
    /// The Job running the attempt.
    #[schemars(length(max = 63))]
    pub job: String,
    /// When the Job started.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub start_time: Option<Time>,
    /// The rerun (`spec.reruns[].name` of the run) this attempt is, if it is one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(length(max = 20))]
    pub rerun: Option<String>,
}

/// A phase's state.
#[derive(Serialize, Deserialize, Clone, Copy, Debug, PartialEq, Eq, Hash, JsonSchema)]
pub enum PhaseState {
    /// Waiting for an earlier phase.
    Pending,
    /// At least one processor is live or waiting for its retry.
    Running,
    /// Cannot proceed without a change (dependency check, drift, blocking gate).
    Blocked,
    /// Every required processor succeeded and the blocking gates passed.
    Succeeded,
    /// A required processor used up its attempts or exited with a permanent error. (A failed
    /// blocking gate makes the phase `Blocked`, because an override can still lift it.)
    Failed,
    /// Not part of this run (excluded by the run's subset).
    Skipped,
}

impl PhaseState {
    /// The state's name as it appears in the status, for condition reasons and messages.
    pub fn as_str(self) -> &'static str {
        match self {
            PhaseState::Pending => "Pending",
            PhaseState::Running => "Running",
            PhaseState::Blocked => "Blocked",
            PhaseState::Succeeded => "Succeeded",
            PhaseState::Failed => "Failed",
            PhaseState::Skipped => "Skipped",
        }
    }
}

/// What one processor's latest attempt did.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct ProcessorRecord {
    /// The processor's name from the catalog.
    #[schemars(length(max = 63))]
    pub processor: String,
    /// The attempt number, from 1.
    #[schemars(range(min = 1))]
    pub attempt: u32,
    /// The Job that ran the attempt.
    #[schemars(length(max = 63))]
    pub job: String,
    /// When the attempt's Job started.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub start_time: Option<Time>,
    /// When the attempt finished.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub finish_time: Option<Time>,
    /// The processor name the result reported, when it is not `processor`: the wrong program
    /// answered (drift), kept here so the finding outlives the Job.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(length(max = 63))]
    pub reported_processor: Option<String>,
    /// The commit the processor reported (compiled into the binary that ran).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(length(max = 40))]
    pub commit: Option<String>,
    /// The image the Pod actually ran (`imageID`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(length(max = 512))]
    pub image: Option<String>,
    /// Rows written per table (`dataset.table`).
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    #[schemars(extend("maxProperties" = 32))]
    pub rows: BTreeMap<String, i64>,
    /// The gates evaluated on the processor's checks.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    #[schemars(length(max = 32))]
    pub gates: Vec<GateOutcome>,
    /// For a failure: a CamelCase category such as `ExitPermanent`, `DeadlineExceeded`,
    /// `JobVanished`, `MalformedResult`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(length(max = 64))]
    pub reason: Option<String>,
    /// For a failure: what happened, for people.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(length(max = 1024))]
    pub message: Option<String>,
    /// The processor's exit code, when it exited.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub exit_code: Option<i32>,
    /// The rerun (`spec.reruns[].name` of the run) this attempt was, if it was one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(length(max = 20))]
    pub rerun: Option<String>,
}

/// A processor check judged against the catalog's gate policy for the run's mode.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct GateOutcome {
    /// The check's name, as the catalog declares it.
    #[schemars(length(max = 63))]
    pub name: String,
    /// Whether the check passed.
    pub passed: bool,
    /// How the gate counted in this run's mode.
    pub policy: GatePolicy,
    /// The observed value (e.g. games with box scores).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub observed: Option<i64>,
    /// The expected value (e.g. games scheduled).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub expected: Option<i64>,
    /// Entities that are missing, named (e.g. `CLE@LAC`); at most 20 are listed.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    #[schemars(length(max = 20), inner(length(max = 128)))]
    pub missing: Vec<String>,
}

/// How a failing check counts in a given mode.
#[derive(Serialize, Deserialize, Clone, Copy, Debug, PartialEq, Eq, Hash, JsonSchema)]
pub enum GatePolicy {
    /// A failing check stops the pipeline before the next phase.
    Blocking,
    /// A failing check is reported; the pipeline continues.
    Warning,
    /// The check is not evaluated in this mode.
    Off,
}
