//! Audited overrides: which override applies to which processor, and a record of each
//! decision one of them changed (reported as the `OverridesApplied` condition and an Event).

use tipoff_crds::Override;

/// One decision an override changed.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub struct Applied {
    /// The override's index in `spec.overrides`.
    pub index: usize,
    /// What it changed, for people.
    pub effect: String,
}

/// Whether `o` applies to `processor` (an override without `processor` applies to all).
pub fn applies(o: &Override, processor: &str) -> bool {
    o.processor.as_deref().is_none_or(|p| p == processor)
}
