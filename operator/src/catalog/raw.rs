//! The catalog file's wire shape, exactly as written in YAML, before any check.
//!
//! Every struct denies unknown fields so a typo (`dependson:`) is an error rather than a
//! silently ignored setting. Nothing here is validated; `validate` turns these into the typed
//! [`Catalog`](super::Catalog).

use serde::Deserialize;

use super::{Enforcement, Mode};

/// The whole file.
#[derive(Deserialize, Debug, Default)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub(super) struct RawCatalog {
    #[serde(default)]
    pub defaults: RawDefaults,
    #[serde(default)]
    pub drift: Option<PerMode<Enforcement>>,
    #[serde(default)]
    pub gates: Vec<RawGate>,
    #[serde(default)]
    pub phases: Vec<RawPhase>,
}

/// Values a processor takes when it does not set its own.
#[derive(Deserialize, Debug, Default)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub(super) struct RawDefaults {
    pub deadline_seconds: Option<i64>,
    #[serde(default)]
    pub retry: RawRetry,
    pub parallelism: Option<u32>,
}

/// A retry policy with every field optional (merged over the defaults).
#[derive(Deserialize, Debug, Default, Clone)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub(super) struct RawRetry {
    pub max_attempts: Option<u32>,
    pub backoff_seconds: Option<u32>,
    pub max_backoff_seconds: Option<u32>,
}

/// A named check processors report, with its enforcement per mode.
#[derive(Deserialize, Debug)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub(super) struct RawGate {
    pub name: String,
    #[serde(default)]
    pub description: String,
    pub policy: PerMode<Enforcement>,
}

/// One phase.
#[derive(Deserialize, Debug)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub(super) struct RawPhase {
    pub number: u8,
    pub name: String,
    #[serde(default)]
    pub processors: Vec<RawProcessor>,
}

/// One processor.
#[derive(Deserialize, Debug)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub(super) struct RawProcessor {
    pub name: String,
    #[serde(default)]
    pub description: String,
    pub required: Option<PerMode<bool>>,
    pub deadline_seconds: Option<i64>,
    #[serde(default)]
    pub retry: RawRetry,
    pub parallelism: Option<u32>,
    #[serde(default)]
    pub outputs: Vec<String>,
    #[serde(default)]
    pub depends_on: Vec<RawDependency>,
    #[serde(default)]
    pub gates: Vec<RawGateRef>,
    #[serde(default)]
    pub resources: RawResources,
}

/// `resources: {requests: {cpu: 500m}, limits: {memory: 2Gi}}`, over the operator's defaults.
#[derive(Deserialize, Debug, Default)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub(super) struct RawResources {
    #[serde(default)]
    pub requests: std::collections::BTreeMap<String, String>,
    #[serde(default)]
    pub limits: std::collections::BTreeMap<String, String>,
}

/// `- other-processor` or `- {processor: other, modes: [Backfill]}`.
#[derive(Deserialize, Debug)]
#[serde(untagged)]
pub(super) enum RawDependency {
    Always(String),
    InModes(RawModalDependency),
}

/// A dependency that holds only in some modes.
#[derive(Deserialize, Debug)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub(super) struct RawModalDependency {
    pub processor: String,
    pub modes: Vec<Mode>,
}

/// `- gate-name` or `- {name: gate-name, policy: warning}`.
#[derive(Deserialize, Debug)]
#[serde(untagged)]
pub(super) enum RawGateRef {
    Named(String),
    WithPolicy(RawGateRefPolicy),
}

/// A gate reference that overrides the gate's catalog-wide policy for one processor.
#[derive(Deserialize, Debug)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub(super) struct RawGateRefPolicy {
    pub name: String,
    pub policy: PerMode<Enforcement>,
}

/// One value for every mode (`blocking`) or one per mode (`{Production: blocking, ...}`).
#[derive(Deserialize, Debug, Clone, Copy)]
#[serde(untagged)]
pub(super) enum PerMode<T> {
    All(T),
    Each {
        #[serde(rename = "Production")]
        production: T,
        #[serde(rename = "SameDay")]
        same_day: T,
        #[serde(rename = "Backfill")]
        backfill: T,
    },
}
