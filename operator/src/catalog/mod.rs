//! The pipeline catalog: which phases exist, which processors run in each, what they depend
//! on, how long they may run, how they are retried and which of their checks gate the run.
//!
//! The catalog is read from `config/pipeline.yaml` (or a test profile) and validated once;
//! after [`Catalog::from_yaml`] returns, every dependency names a known processor in the same
//! or an earlier phase, no mode's dependency graph has a cycle, and every gate a processor uses
//! is defined. The planner relies on these facts and never re-checks them. This module does
//! file reading only in [`Catalog::load`]; it knows nothing about runs, Jobs or the cluster.

mod error;
mod raw;
mod validate;

use std::collections::BTreeMap;
use std::path::Path;

use serde::{Deserialize, Serialize};

pub use error::CatalogError;
pub use validate::check_resource;

pub use tipoff_crds::Mode;

/// Every mode, in a fixed order, for checks that must hold in each.
pub const MODES: [Mode; 3] = [Mode::Production, Mode::SameDay, Mode::Backfill];

/// How a gate (or drift) is enforced in one mode.
#[derive(Serialize, Deserialize, Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
#[serde(rename_all = "camelCase")]
pub enum Enforcement {
    /// A failed check stops the run from advancing past the processor.
    Blocking,
    /// A failed check is recorded as a warning; the run advances.
    Warning,
    /// The check is not evaluated, and the processor is told not to run it.
    Off,
}

impl From<Enforcement> for tipoff_crds::GatePolicy {
    fn from(value: Enforcement) -> Self {
        match value {
            Enforcement::Blocking => tipoff_crds::GatePolicy::Blocking,
            Enforcement::Warning => tipoff_crds::GatePolicy::Warning,
            Enforcement::Off => tipoff_crds::GatePolicy::Off,
        }
    }
}

/// One value per mode.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ModeMap<T> {
    /// The value in `Production` runs.
    pub production: T,
    /// The value in `SameDay` runs.
    pub same_day: T,
    /// The value in `Backfill` runs.
    pub backfill: T,
}

impl<T: Copy> ModeMap<T> {
    /// The same value in every mode.
    pub fn all(value: T) -> Self {
        Self {
            production: value,
            same_day: value,
            backfill: value,
        }
    }

    /// The value for `mode`.
    pub fn get(&self, mode: Mode) -> T {
        match mode {
            Mode::Production => self.production,
            Mode::SameDay => self.same_day,
            Mode::Backfill => self.backfill,
        }
    }
}

/// How a processor's failed attempts are retried.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Retry {
    /// Attempts in total, the first included (at least 1).
    pub max_attempts: u32,
    /// Seconds before the second attempt; doubled for each further attempt.
    pub backoff_seconds: u32,
    /// Upper bound of the wait between attempts, in seconds.
    pub max_backoff_seconds: u32,
}

/// A named check processors report, defined once for the whole catalog.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Gate {
    /// The check's name as processors report it, e.g. `history-gap`.
    pub name: String,
    /// What the check verifies, for people.
    pub description: String,
    /// How a failure is enforced in each mode.
    pub policy: ModeMap<Enforcement>,
}

/// A gate as one processor uses it (its policy may differ from the catalog-wide one).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ProcessorGate {
    /// The gate's name; always one of [`Catalog::gates`].
    pub name: String,
    /// How a failure of this processor's check is enforced in each mode.
    pub policy: ModeMap<Enforcement>,
}

/// One edge of the dependency graph.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Dependency {
    /// The processor that must have succeeded first.
    pub processor: String,
    /// The modes in which the dependency holds; `None` means every mode.
    pub modes: Option<Vec<Mode>>,
}

impl Dependency {
    /// Whether the dependency holds in `mode`.
    pub fn applies_in(&self, mode: Mode) -> bool {
        self.modes
            .as_ref()
            .is_none_or(|modes| modes.contains(&mode))
    }
}

/// One processor: a unit of work that runs as one Kubernetes Job per attempt.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Processor {
    /// The processor's name, unique in the catalog and a valid DNS label.
    pub name: String,
    /// What it does, for people.
    pub description: String,
    /// The number of the phase it belongs to.
    pub phase: u8,
    /// Whether its phase needs it to succeed, per mode (e.g. a processor that cannot have
    /// data for games not yet played is optional in SameDay).
    pub required: ModeMap<bool>,
    /// The Job's `activeDeadlineSeconds`.
    pub deadline_seconds: i64,
    /// How failed attempts are retried.
    pub retry: Retry,
    /// The Job's parallelism; above 1 the Job uses Indexed completions.
    pub parallelism: u32,
    /// The tables it writes (`dataset.table`).
    pub outputs: Vec<String>,
    /// Processors that must succeed before it starts, within and across phases.
    pub depends_on: Vec<Dependency>,
    /// The checks it reports that the catalog enforces.
    pub gates: Vec<ProcessorGate>,
    /// Its container's resource requests and limits, each over the operator's default for
    /// the same resource (`--processor-cpu-request` and the like).
    pub resources: Resources,
}

/// Resource requests and limits by resource name (`cpu`, `memory`, `ephemeral-storage`) as
/// Kubernetes quantities.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Resources {
    /// Requests.
    pub requests: BTreeMap<String, String>,
    /// Limits.
    pub limits: BTreeMap<String, String>,
}

impl Processor {
    /// The names of the processors it depends on in `mode`.
    pub fn dependencies(&self, mode: Mode) -> impl Iterator<Item = &str> {
        self.depends_on
            .iter()
            .filter(move |d| d.applies_in(mode))
            .map(|d| d.processor.as_str())
    }

    /// Whether its phase needs it to succeed in `mode`.
    pub fn required_in(&self, mode: Mode) -> bool {
        self.required.get(mode)
    }

    /// The gate of this processor called `name`.
    pub fn gate(&self, name: &str) -> Option<&ProcessorGate> {
        self.gates.iter().find(|g| g.name == name)
    }
}

/// One phase: processors that run after every earlier phase has finished.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Phase {
    /// The phase number (1-6), unique and ascending through the catalog.
    pub number: u8,
    /// The phase's name, e.g. `analytics`.
    pub name: String,
    /// Its processors, in catalog order.
    pub processors: Vec<Processor>,
}

/// The validated pipeline catalog.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Catalog {
    /// Phases in ascending order of number.
    pub phases: Vec<Phase>,
    /// Every gate processors may use, by name.
    pub gates: BTreeMap<String, Gate>,
    /// How code drift is enforced in each mode.
    pub drift: ModeMap<Enforcement>,
    /// The image repositories a run may pin (the operator's `--allowed-image-repository`,
    /// not part of the catalog file). Empty allows every repository.
    pub allowed_image_repositories: Vec<String>,
}

/// The repository of an image reference: without its digest (`@sha256:...`) and tag.
pub fn image_repository(image: &str) -> &str {
    let name = image.split_once('@').map_or(image, |(name, _)| name);
    match name.rfind(':') {
        // A colon after the last slash is a tag (one before it is a registry port).
        Some(i) if !name[i..].contains('/') => &name[..i],
        _ => name,
    }
}

impl Catalog {
    /// Whether a run may pin `image`: its repository is on the allowlist (an entry ending in
    /// `/` allows every repository under it), or the allowlist is empty.
    pub fn image_allowed(&self, image: &str) -> bool {
        let repository = image_repository(image);
        self.allowed_image_repositories.is_empty()
            || self.allowed_image_repositories.iter().any(|allowed| {
                repository == allowed
                    || (allowed.ends_with('/') && repository.starts_with(allowed.as_str()))
            })
    }

    /// Parses and validates a catalog from YAML text.
    pub fn from_yaml(text: &str) -> Result<Self, CatalogError> {
        let raw: raw::RawCatalog = if text.trim().is_empty() {
            raw::RawCatalog::default()
        } else {
            serde_yaml::from_str(text).map_err(|e| CatalogError::Parse(e.to_string()))?
        };
        validate::validate(raw)
    }

    /// Reads and validates the catalog file at `path`.
    pub fn load(path: &Path) -> Result<Self, CatalogError> {
        let text = std::fs::read_to_string(path).map_err(|source| CatalogError::Read {
            path: path.display().to_string(),
            source,
        })?;
        Self::from_yaml(&text)
    }

    /// The phase with this number.
    pub fn phase(&self, number: u8) -> Option<&Phase> {
        self.phases.iter().find(|p| p.number == number)
    }

    /// The processor with this name.
    pub fn processor(&self, name: &str) -> Option<&Processor> {
        self.processors().find(|p| p.name == name)
    }

    /// Every processor, phase by phase in catalog order.
    pub fn processors(&self) -> impl Iterator<Item = &Processor> {
        self.phases.iter().flat_map(|p| p.processors.iter())
    }
}

/// The drift policy when the catalog does not set one: drift blocks wherever predictions are
/// published for real games (`Production`, `SameDay`) and warns when reprocessing history.
pub const DEFAULT_DRIFT: ModeMap<Enforcement> = ModeMap {
    production: Enforcement::Blocking,
    same_day: Enforcement::Blocking,
    backfill: Enforcement::Warning,
};
