//! The tipoff API (`tipoff.dev/v1alpha1`): the custom resources users apply and watch
//! (`PipelineRun`, `PhaseCompletion`, `PipelineBackfill`), the
//! condition type they share, and the processor result contract.
//!
//! This crate owns the wire shape of every object tipoff reads or writes. It holds no logic
//! that talks to a cluster; the operator, the CLI and the processors all depend on it, so a
//! field changed here changes in every binary at once. The CRD YAML in `crds/generated/` is
//! produced from these types by `cargo run -p tipoff-crds --bin crdgen`.

pub mod children;
pub mod conditions;
pub mod game_days;
pub mod generated;
pub mod phase_completion;
pub mod pipeline_backfill;
pub mod pipeline_run;
pub mod pipeline_schedule;
pub mod result;
pub mod rules;
#[cfg(feature = "validation")]
pub mod validation;

pub use conditions::{Condition, ConditionStatus};
pub use phase_completion::{
    GateOutcome, GatePolicy, PhaseCompletion, PhaseCompletionSpec, PhaseCompletionStatus,
    PhaseState, ProcessorRecord, RunningAttempt,
};
pub use pipeline_backfill::{
    BackfillCounts, BackfillState, DateReason, DateState, DateStatus, Order, PipelineBackfill,
    PipelineBackfillSpec, PipelineBackfillStatus, Reprocess,
};
pub use pipeline_run::{
    DriftField, DriftFinding, Mode, Override, OverrideType, PhaseSummary, PipelineRun,
    PipelineRunSpec, PipelineRunStatus, ProcessorRelease, Release, Rerun, RerunState, RerunStatus,
    RetryPolicy, RunState, RunSummary, Subset,
};
pub use pipeline_schedule::{
    ConcurrencyPolicy, GameDaysSource, MissReason, MissedRun, PipelineSchedule,
    PipelineScheduleSpec, PipelineScheduleStatus, ScheduledRun, SkipReason, SkippedDate,
};
pub use result::{
    Check, EXIT_OK, EXIT_PERMANENT, EXIT_TRANSIENT, EXIT_USAGE, ExitClass, ProcessorResult,
    ResultError, TERMINATION_MESSAGE_LIMIT, classify_exit,
};

/// The API group of every tipoff resource.
pub const GROUP: &str = "tipoff.dev";
/// The served and stored API version.
pub const VERSION: &str = "v1alpha1";
/// The `kubectl get <category>` name that lists every tipoff resource.
pub const CATEGORY: &str = "tipoff";
