//! Why a catalog was rejected. Every message names the offending entry.

/// A catalog that cannot be used.
#[derive(Debug, thiserror::Error)]
pub enum CatalogError {
    /// The file could not be read.
    #[error("cannot read catalog {path}: {source}")]
    Read {
        /// The path that was tried.
        path: String,
        /// The I/O error.
        source: std::io::Error,
    },
    /// The text is not YAML of the catalog's shape (includes unknown fields).
    #[error("catalog does not match the catalog format: {0}")]
    Parse(String),
    /// A phase, processor or gate name is not a DNS label.
    #[error("{kind} name {name:?} is invalid: {why}")]
    InvalidName {
        /// `phase`, `processor` or `gate`.
        kind: &'static str,
        /// The name as written.
        name: String,
        /// What is wrong with it.
        why: &'static str,
    },
    /// A phase number outside 1-6.
    #[error("phase {number} ({name}): phase numbers run from 1 to 6")]
    PhaseNumberOutOfRange {
        /// The number as written.
        number: u8,
        /// The phase's name.
        name: String,
    },
    /// Two phases share a number.
    #[error("duplicate phase number {number}: declared by {first:?} and {second:?}")]
    DuplicatePhase {
        /// The shared number.
        number: u8,
        /// The first phase's name.
        first: String,
        /// The second phase's name.
        second: String,
    },
    /// Phases are not listed in ascending order.
    #[error(
        "phase {number} ({name}) is listed after phase {previous}: list phases in ascending order"
    )]
    PhaseOrder {
        /// The misplaced phase's number.
        number: u8,
        /// Its name.
        name: String,
        /// The number of the phase before it.
        previous: u8,
    },
    /// Two phases share a name.
    #[error("duplicate phase name {name:?} (phases {first} and {second})")]
    DuplicatePhaseName {
        /// The shared name.
        name: String,
        /// The first phase's number.
        first: u8,
        /// The second phase's number.
        second: u8,
    },
    /// A phase without processors.
    #[error(
        "phase {number} ({name}) has no processors: declare a phase only once its processors exist"
    )]
    EmptyPhase {
        /// The phase's number.
        number: u8,
        /// Its name.
        name: String,
    },
    /// A phase with more processors than its PhaseCompletion can list.
    #[error(
        "phase {number} ({name}) has {count} processors; at most {max} fit in its PhaseCompletion"
    )]
    TooManyProcessors {
        /// The phase's number.
        number: u8,
        /// Its name.
        name: String,
        /// How many it declares.
        count: usize,
        /// The limit.
        max: usize,
    },
    /// Two processors share a name.
    #[error("duplicate processor {name:?} (phase {first} and phase {second})")]
    DuplicateProcessor {
        /// The shared name.
        name: String,
        /// The first declaration's phase.
        first: u8,
        /// The second declaration's phase.
        second: u8,
    },
    /// Two gates share a name.
    #[error("duplicate gate {name:?} under `gates:`")]
    DuplicateGate {
        /// The shared name.
        name: String,
    },
    /// A processor lists a gate twice.
    #[error("processor {processor:?} lists gate {gate:?} twice")]
    DuplicateProcessorGate {
        /// The processor.
        processor: String,
        /// The gate.
        gate: String,
    },
    /// A processor uses a gate the catalog does not define.
    #[error("processor {processor:?} uses unknown gate {gate:?}: define it under `gates:` first")]
    UnknownGate {
        /// The processor.
        processor: String,
        /// The undefined gate.
        gate: String,
    },
    /// A processor depends on a processor the catalog does not declare.
    #[error("processor {processor:?} depends on unknown processor {dependency:?}")]
    UnknownDependency {
        /// The dependent processor.
        processor: String,
        /// The undeclared dependency.
        dependency: String,
    },
    /// A processor lists one dependency twice.
    #[error("processor {processor:?} lists dependency {dependency:?} twice")]
    DuplicateDependency {
        /// The dependent processor.
        processor: String,
        /// The repeated dependency.
        dependency: String,
    },
    /// A processor depends on one that runs in a later phase.
    #[error(
        "processor {processor:?} (phase {phase}) depends on {dependency:?} in later phase {dependency_phase}: \
         a processor may depend only on its own or earlier phases"
    )]
    LaterPhaseDependency {
        /// The dependent processor.
        processor: String,
        /// Its phase.
        phase: u8,
        /// The dependency.
        dependency: String,
        /// The dependency's (later) phase.
        dependency_phase: u8,
    },
    /// The dependency graph of some mode has a cycle.
    #[error("dependency cycle in {mode:?} mode: {}", cycle.join(" -> "))]
    Cycle {
        /// The mode whose graph has the cycle.
        mode: super::Mode,
        /// The processors on the cycle, the first repeated at the end.
        cycle: Vec<String>,
    },
    /// A setting of one processor is out of range.
    #[error("processor {processor:?}: {message}")]
    InvalidProcessor {
        /// The processor.
        processor: String,
        /// What is wrong.
        message: String,
    },
    /// A catalog-wide default is out of range.
    #[error("defaults: {0}")]
    InvalidDefaults(String),
}
