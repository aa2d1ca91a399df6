//! `PipelineRun`: one game date's pipeline, pinned to one release of the processor code.

use std::collections::BTreeMap;

use k8s_openapi::apimachinery::pkg::apis::meta::v1::Time;
use kube::CustomResource;
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use crate::conditions::Condition;
use crate::rules;

/// One game date's run of the pipeline: which date, in which mode, with which code.
///
/// The operator creates one `PhaseCompletion` per phase and one Job per processor attempt,
/// all owned by the run; its status is recomputed from those children on every reconcile.
// `printcolumn(...)` repeats `type_ = ...` by design; clippy reads that as a duplicated attribute.
#[allow(clippy::duplicated_attributes)]
#[derive(CustomResource, Serialize, Deserialize, Clone, Debug, PartialEq, JsonSchema)]
#[kube(
    group = "tipoff.dev",
    version = "v1alpha1",
    kind = "PipelineRun",
    namespaced,
    status = "PipelineRunStatus",
    shortname = "tpr",
    shortname = "tipoffrun",
    category = "tipoff",
    derive = "PartialEq",
    doc = "One game date's run of the tipoff pipeline, pinned to one release of the processor code.",
    printcolumn(
        name = "Date",
        type_ = "string",
        json_path = ".spec.date",
        description = "Game date (America/New_York)"
    ),
    printcolumn(
        name = "Mode",
        type_ = "string",
        json_path = ".spec.mode",
        description = "Production, SameDay or Backfill"
    ),
    printcolumn(
        name = "Phase",
        type_ = "integer",
        json_path = ".status.currentPhase",
        description = "The phase running now, or the last one reached"
    ),
    printcolumn(
        name = "Done",
        type_ = "string",
        json_path = ".status.progress",
        description = "Processors succeeded / expected over the whole run"
    ),
    printcolumn(
        name = "Drift",
        type_ = "string",
        json_path = ".status.conditions[?(@.type==\"CodeDrift\")].status",
        description = "True when the code that ran is not the code that was pinned"
    ),
    printcolumn(
        name = "State",
        type_ = "string",
        json_path = ".status.state",
        description = "Pending, Running, Blocked, Suspended, Succeeded or Failed"
    ),
    printcolumn(
        name = "Age",
        type_ = "date",
        json_path = ".metadata.creationTimestamp"
    )
)]
#[serde(rename_all = "camelCase")]
#[schemars(transform = spec_rules)]
pub struct PipelineRunSpec {
    /// The game date this run processes, as a calendar day in America/New_York (`YYYY-MM-DD`).
    /// Immutable: a run for another date is another PipelineRun.
    #[schemars(length(max = 10), transform = rules::date)]
    pub date: String,

    /// How the run treats time and missing data. `Production` is the next-day run after the
    /// games finished (strict checks); `SameDay` predicts games that have not been played yet
    /// (defensive gap checks relaxed; see the catalog's gates); `Backfill` reprocesses a past
    /// date and takes its players from who actually played. Immutable.
    pub mode: Mode,

    /// The code this run is pinned to. Immutable: the operator reports `CodeDrift` when the
    /// code that ran differs from it.
    pub release: Release,

    /// Restricts the run to some phases or processors (e.g. re-running phase 4 only). Omitted
    /// means every phase and processor in the catalog.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub subset: Option<Subset>,

    /// Audited relaxations of the run's checks. Each is recorded as a condition and an Event.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    #[schemars(length(max = 16))]
    pub overrides: Vec<Override>,

    /// How failed processors are retried. Omitted fields take the catalog's values.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub retry: Option<RetryPolicy>,

    /// Seconds after the run's creation by which it must have finished; past it, running
    /// processors are stopped and the run fails with reason `DeadlineExceeded`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(range(min = 60, max = 604800))]
    pub deadline_seconds: Option<i64>,

    /// Pauses the run: no new Jobs are created while true. Running Jobs finish.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub suspend: bool,

    /// Requests to run one processor again (optionally for one game) as a new attempt, e.g.
    /// after an upstream fixed a missing box score. Each runs once, in order per processor,
    /// once the processor's current attempt has ended; `status.reruns` shows how each went.
    /// Entries can be added but not changed or removed (`tipoff rerun` appends one).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    #[schemars(length(max = 16), transform = rules::list_map_name)]
    pub reruns: Vec<Rerun>,
}

impl PipelineRunSpec {
    /// A run of every in-scope processor for `date` in `mode`, pinned to `release`, with no
    /// subset, override, retry policy, deadline or rerun.
    pub fn new(date: impl Into<String>, mode: Mode, release: Release) -> Self {
        Self {
            date: date.into(),
            mode,
            release,
            subset: None,
            overrides: vec![],
            retry: None,
            deadline_seconds: None,
            suspend: false,
            reruns: vec![],
        }
    }
}

fn spec_rules(schema: &mut schemars::Schema) {
    rules::add_rule_value(
        schema,
        serde_json::json!({
            "rule": "!has(oldSelf.reruns) || (has(self.reruns) && oldSelf.reruns.all(o, self.reruns.exists(r, r == o)))",
            "message": "reruns can only be added: an existing rerun cannot be changed or removed (it is the record of an attempt)",
            "fieldPath": ".reruns",
            "reason": "FieldValueForbidden",
        }),
    );
    for (field, message) in [
        (
            "date",
            "date is immutable: create a new PipelineRun for another date",
        ),
        (
            "mode",
            "mode is immutable: create a new PipelineRun to run the date in another mode",
        ),
        (
            "release",
            "release is immutable: the run is pinned to the code it started with; create a new PipelineRun for a new release",
        ),
    ] {
        rules::add_rule_value(
            schema,
            serde_json::json!({
                "rule": format!("self.{field} == oldSelf.{field}"),
                "message": message,
                "fieldPath": format!(".{field}"),
                "reason": "FieldValueForbidden",
            }),
        );
    }
}

/// How a run treats time and missing data.
#[derive(
    Serialize, Deserialize, Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, JsonSchema,
)]
pub enum Mode {
    /// The next-day run after the games finished: every check is strict.
    Production,
    /// A run for games that have not been played yet: gap checks relaxed per the catalog.
    SameDay,
    /// Reprocessing a past date: players come from who actually played.
    Backfill,
}

impl Mode {
    /// The spelling used on the command line and in processor arguments.
    pub fn as_arg(self) -> &'static str {
        match self {
            Mode::Production => "production",
            Mode::SameDay => "same-day",
            Mode::Backfill => "backfill",
        }
    }
}

/// The code a run is pinned to.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, Eq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct Release {
    /// The processor image, pinned by digest (`<repository>@sha256:<64 hex>`).
    #[schemars(length(max = 512), transform = rules::image)]
    pub image: String,
    /// The git commit the image was built from; processors report the commit compiled into
    /// them and a mismatch is drift.
    #[schemars(length(max = 40), transform = rules::commit)]
    pub commit: String,
    /// A human-readable version label such as `v0.4.2`; informational only.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(length(max = 64))]
    pub version: Option<String>,
    /// Per-processor exceptions to `image`/`commit`, e.g. a hotfix build for one processor.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    #[schemars(length(max = 32), transform = rules::list_map_processor)]
    pub processors: Vec<ProcessorRelease>,
}

impl Release {
    /// `image` (pinned by digest) built from `commit`, for every processor.
    pub fn pinned(image: impl Into<String>, commit: impl Into<String>) -> Self {
        Self {
            image: image.into(),
            commit: commit.into(),
            version: None,
            processors: vec![],
        }
    }

    /// The image and commit `processor` is pinned to: its exception if it has one, else the
    /// release's.
    pub fn for_processor(&self, processor: &str) -> (&str, &str) {
        match self.processors.iter().find(|p| p.processor == processor) {
            Some(p) => (&p.image, &p.commit),
            None => (&self.image, &self.commit),
        }
    }
}

/// A per-processor exception to the run's release.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, Eq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct ProcessorRelease {
    /// The processor this exception applies to.
    #[schemars(length(max = 63), transform = rules::processor_name)]
    pub processor: String,
    /// The image for this processor, pinned by digest.
    #[schemars(length(max = 512), transform = rules::image)]
    pub image: String,
    /// The commit that image was built from.
    #[schemars(length(max = 40), transform = rules::commit)]
    pub commit: String,
    /// Why this processor does not run the run's release.
    #[schemars(length(max = 512), transform = rules::reason)]
    pub reason: String,
}

/// A restriction of the run to some phases or processors.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, Eq, Default, JsonSchema)]
#[serde(rename_all = "camelCase")]
#[schemars(transform = subset_rules)]
pub struct Subset {
    /// Phase numbers (1-6) to run; omitted means all.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    #[schemars(length(max = 6), inner(range(min = 1, max = 6)), transform = rules::unique_items)]
    pub phases: Vec<u8>,
    /// Processor names to run; omitted means all in the selected phases.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    #[schemars(length(max = 64), inner(length(max = 63)), transform = rules::processor_names)]
    pub processors: Vec<String>,
}

fn subset_rules(schema: &mut schemars::Schema) {
    rules::add_rule(
        schema,
        "(has(self.phases) && size(self.phases) > 0) || (has(self.processors) && size(self.processors) > 0)",
        "a subset must name at least one phase or processor; omit subset to run everything",
    );
}

/// An audited relaxation of a run's checks.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, Eq, JsonSchema)]
#[serde(rename_all = "camelCase")]
#[schemars(transform = override_rules)]
pub struct Override {
    /// What is relaxed.
    #[serde(rename = "type")]
    pub type_: OverrideType,
    /// The processor it applies to; omitted means every processor in the run.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(length(max = 63), transform = rules::processor_name)]
    pub processor: Option<String>,
    /// For `RelaxGate`: the gate (a check name from the catalog) that becomes a warning.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(length(max = 63))]
    pub gate: Option<String>,
    /// Why the override is needed and who asked; recorded in the run's conditions and Events.
    #[schemars(length(max = 512), transform = rules::reason)]
    pub reason: String,
}

fn override_rules(schema: &mut schemars::Schema) {
    rules::add_rule_value(
        schema,
        serde_json::json!({
            "rule": "self.type != 'RelaxGate' || has(self.gate)",
            "message": "a RelaxGate override must name the gate it relaxes in 'gate'",
            "fieldPath": ".gate",
            "reason": "FieldValueRequired",
        }),
    );
    rules::add_rule_value(
        schema,
        serde_json::json!({
            "rule": "self.type == 'RelaxGate' || !has(self.gate)",
            "message": "'gate' only applies to RelaxGate overrides",
            "fieldPath": ".gate",
        }),
    );
}

/// A request to run one processor of the run again as a new attempt.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, Eq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct Rerun {
    /// A name for this rerun, unique in the run (e.g. `r1`; letters and digits); it names the
    /// rerun's Job, so applying the same rerun twice runs it once.
    #[schemars(length(min = 1, max = 20), transform = rules::rerun_name)]
    pub name: String,
    /// The processor to run again; it must be in the run's catalog and scope.
    #[schemars(length(max = 63), transform = rules::processor_name)]
    pub processor: String,
    /// Limit the attempt to one game: an NBA game id (`0022500123`) or `AWY@HOM`. Processors
    /// that work per game honour it (`TIPOFF_GAME`); the others process the whole date.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(length(min = 1, max = 32), transform = rules::game)]
    pub game: Option<String>,
    /// Why the rerun is needed and who asked; recorded in an Event.
    #[schemars(length(max = 512), transform = rules::reason)]
    pub reason: String,
}

/// What an override relaxes.
#[derive(
    Serialize, Deserialize, Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, JsonSchema,
)]
pub enum OverrideType {
    /// Start processors without waiting for their dependencies (the legacy
    /// `skip_dependency_check`); needed for same-day runs whose inputs cannot exist yet.
    SkipDependencyCheck,
    /// Treat one blocking gate as a warning.
    RelaxGate,
    /// Let the pipeline advance past code drift in a Production run.
    AcceptDrift,
}

/// How failed processors are retried.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, Eq, Default, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct RetryPolicy {
    /// Attempts per processor, the first included.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(range(min = 1, max = 10))]
    pub max_attempts: Option<u32>,
    /// Seconds to wait before the second attempt; doubles for each further attempt.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(range(min = 0, max = 3600))]
    pub backoff_seconds: Option<u32>,
    /// Upper bound of the wait between attempts, in seconds.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(range(min = 0, max = 21600))]
    pub max_backoff_seconds: Option<u32>,
}

/// The observed state of a run, recomputed from its children on every reconcile.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, Default, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct PipelineRunStatus {
    /// The `metadata.generation` this status was computed from.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub observed_generation: Option<i64>,
    /// The run's overall state.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub state: Option<RunState>,
    /// The phase running now, or the last phase reached.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(range(min = 1, max = 6))]
    pub current_phase: Option<u8>,
    /// Processors succeeded over processors expected for the whole run, e.g. `7/14`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(length(max = 16))]
    pub progress: Option<String>,
    /// When the first Job of the run was observed.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub start_time: Option<Time>,
    /// When the run reached `Succeeded` or `Failed`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub completion_time: Option<Time>,
    /// One entry per phase of the run, in order.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    #[schemars(length(max = 6), transform = rules::list_map_phase)]
    pub phases: Vec<PhaseSummary>,
    /// Every place where the code that ran is not the code that was pinned.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    #[schemars(length(max = 32))]
    pub drift: Vec<DriftFinding>,
    /// `Ready`, `Stalled` (kstatus), `Succeeded`, `CodeDrift`, `GatesPassed`, `AttemptLost`,
    /// `Blocked` and `OverridesApplied` (see docs/crd-reference.md).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    #[schemars(length(max = 16), transform = rules::list_map_type)]
    pub conditions: Vec<Condition>,
    /// What the run produced.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub summary: Option<RunSummary>,
    /// How each of `spec.reruns` went, in spec order.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    #[schemars(length(max = 16), transform = rules::list_map_name)]
    pub reruns: Vec<RerunStatus>,
}

/// How one requested rerun went.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, Eq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct RerunStatus {
    /// The rerun's name (`spec.reruns[].name`).
    #[schemars(length(max = 20))]
    pub name: String,
    /// The processor it runs.
    #[schemars(length(max = 63))]
    pub processor: String,
    /// The game it is limited to, if any.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(length(max = 32))]
    pub game: Option<String>,
    /// Where it stands.
    pub state: RerunState,
    /// The attempt number it runs as, once started.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub attempt: Option<u32>,
    /// The Job running it, once started.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(length(max = 63))]
    pub job: Option<String>,
    /// Why it waits or how it failed, for people.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(length(max = 1024))]
    pub message: Option<String>,
}

/// Where a rerun stands.
#[derive(Serialize, Deserialize, Clone, Copy, Debug, PartialEq, Eq, Hash, JsonSchema)]
pub enum RerunState {
    /// Not started: the processor's current attempt has not ended, or its phase not reached.
    Pending,
    /// Its Job is live.
    Running,
    /// Its attempt succeeded.
    Succeeded,
    /// Its attempt failed (a rerun is not retried; add another to try again).
    Failed,
    /// It ran, and a later attempt of the processor has replaced its outcome.
    Superseded,
}

/// A run's overall state.
#[derive(Serialize, Deserialize, Clone, Copy, Debug, PartialEq, Eq, Hash, JsonSchema)]
pub enum RunState {
    /// Accepted; no Job created yet.
    Pending,
    /// At least one processor Job is live or waiting for its retry backoff.
    Running,
    /// Cannot proceed without a change: a failed dependency check, drift in Production, or
    /// another run for the same date still writing. The `Blocked` condition says which.
    Blocked,
    /// `spec.suspend` is true and no Job is live.
    Suspended,
    /// Every required processor in every phase succeeded and blocking gates passed.
    Succeeded,
    /// A required processor used up its attempts or exited with a permanent error, or the
    /// deadline passed. (A failed blocking gate makes the run `Blocked`: an override can lift
    /// it.)
    Failed,
}

impl RunState {
    /// The state's name as it appears in the status (`Running`, `Failed`, ...), for messages,
    /// log fields and metric labels.
    pub fn as_str(self) -> &'static str {
        match self {
            RunState::Pending => "Pending",
            RunState::Running => "Running",
            RunState::Blocked => "Blocked",
            RunState::Suspended => "Suspended",
            RunState::Succeeded => "Succeeded",
            RunState::Failed => "Failed",
        }
    }

    /// Whether the run has ended.
    pub fn is_terminal(self) -> bool {
        matches!(self, RunState::Succeeded | RunState::Failed)
    }
}

/// The state of one phase of a run.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct PhaseSummary {
    /// The phase number (1-6).
    #[schemars(range(min = 1, max = 6))]
    pub phase: u8,
    /// The phase's name from the catalog, e.g. `analytics`.
    #[schemars(length(max = 63))]
    pub name: String,
    /// The phase's state.
    pub state: crate::phase_completion::PhaseState,
    /// Processors of the phase that succeeded.
    pub done: u32,
    /// Processors the phase expects.
    pub expected: u32,
    /// When the phase's first Job was observed.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub start_time: Option<Time>,
    /// When the phase reached a final state.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub completion_time: Option<Time>,
}

/// One difference between the pinned code and the code that ran.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, Eq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct DriftFinding {
    /// The processor whose run differed.
    #[schemars(length(max = 63))]
    pub processor: String,
    /// The attempt in which it was observed.
    pub attempt: u32,
    /// What differed.
    pub field: DriftField,
    /// The pinned value.
    #[schemars(length(max = 512))]
    pub pinned: String,
    /// The observed value.
    #[schemars(length(max = 512))]
    pub observed: String,
}

/// What a drift finding compares.
#[derive(
    Serialize, Deserialize, Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, JsonSchema,
)]
pub enum DriftField {
    /// The pinned image digest vs the Pod's `imageID`.
    Image,
    /// The pinned commit vs the commit compiled into the processor.
    Commit,
    /// The processor the Job was for vs the processor (service) that answered.
    Processor,
}

impl DriftField {
    /// The field's name as it appears in the status (`Image`, `Commit`, `Processor`).
    pub fn as_str(self) -> &'static str {
        match self {
            DriftField::Image => "Image",
            DriftField::Commit => "Commit",
            DriftField::Processor => "Processor",
        }
    }
}

/// What a run produced.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, Default, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct RunSummary {
    /// Rows written per table (`dataset.table`), summed over the run's processors.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    #[schemars(extend("maxProperties" = 64))]
    pub rows_written: BTreeMap<String, i64>,
    /// Retries used over the run.
    #[serde(default)]
    pub retries: u32,
    /// A one-line account of the run for people.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(length(max = 1024))]
    pub message: Option<String>,
}
