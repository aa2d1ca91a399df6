//! The condition type shared by every tipoff resource, with Kubernetes merge semantics.
//!
//! Conditions are a list-map keyed on `type`. Setting a condition keeps its
//! `lastTransitionTime` unless its `status` flips, so a reconcile loop that re-derives the same
//! condition every pass does not produce a new status write each time.

use k8s_openapi::apimachinery::pkg::apis::meta::v1::Time;
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

/// `Ready`, on every tipoff resource: `True` once the resource reached the state its spec asks
/// for (a run or phase succeeded, a backfill's dates all succeeded, a schedule is scheduling).
/// `kubectl wait --for=condition=Ready` and kstatus (Flux, cli-utils) read it.
pub const READY: &str = "Ready";

/// `Stalled`, on every tipoff resource, in kstatus's sense: `True` only when the resource
/// cannot make progress without someone changing something (a failed run, a blocking gate,
/// an invalid spec). Waiting for a retry, another run or a due time is not stalled.
pub const STALLED: &str = "Stalled";

/// `True` or `False`.
pub fn status_of(holds: bool) -> ConditionStatus {
    if holds {
        ConditionStatus::True
    } else {
        ConditionStatus::False
    }
}

/// The three values a condition's status can take.
#[derive(Serialize, Deserialize, Clone, Copy, Debug, PartialEq, Eq, JsonSchema)]
pub enum ConditionStatus {
    /// The condition holds.
    True,
    /// The condition does not hold.
    False,
    /// The controller cannot tell yet.
    Unknown,
}

/// One observation about a resource, in the shape of the Kubernetes `metav1.Condition`, with
/// bounded strings.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct Condition {
    /// The condition's type in CamelCase, e.g. `Succeeded`, `CodeDrift`, `Blocked`.
    #[serde(rename = "type")]
    #[schemars(length(min = 1, max = 64))]
    pub type_: String,
    /// Whether the condition holds: `True`, `False` or `Unknown`.
    pub status: ConditionStatus,
    /// A CamelCase category for the last transition, stable enough for alerts to match on.
    #[schemars(length(min = 1, max = 64))]
    pub reason: String,
    /// A sentence for people saying what was observed and what to do about it.
    #[serde(default)]
    #[schemars(length(max = 1024))]
    pub message: String,
    /// When `status` last changed. Unchanged when a condition is re-set with the same status.
    pub last_transition_time: Time,
    /// The `metadata.generation` the condition was computed from.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub observed_generation: Option<i64>,
}

impl Condition {
    /// A condition with the given type, status, reason and message, stamped with `now`.
    pub fn new(
        type_: &str,
        status: ConditionStatus,
        reason: &str,
        message: impl Into<String>,
        now: jiff::Timestamp,
    ) -> Self {
        Self {
            type_: type_.to_owned(),
            status,
            reason: reason.to_owned(),
            message: message.into(),
            last_transition_time: Time(now),
            observed_generation: None,
        }
    }

    /// Whether the condition's status is `True`.
    pub fn is_true(&self) -> bool {
        self.status == ConditionStatus::True
    }
}

/// Inserts or updates `new` in `conditions` (keyed on `type`), keeping the existing
/// `lastTransitionTime` when the status did not flip. Returns whether the status flipped or the
/// condition is new: the moment an Event is worth emitting.
pub fn set_condition(conditions: &mut Vec<Condition>, mut new: Condition) -> bool {
    match conditions.iter_mut().find(|c| c.type_ == new.type_) {
        Some(existing) => {
            let flipped = existing.status != new.status;
            if !flipped {
                new.last_transition_time = existing.last_transition_time.clone();
            }
            *existing = new;
            flipped
        }
        None => {
            conditions.push(new);
            true
        }
    }
}

/// The condition of the given type, if present.
pub fn find_condition<'a>(conditions: &'a [Condition], type_: &str) -> Option<&'a Condition> {
    conditions.iter().find(|c| c.type_ == type_)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(secs: i64) -> jiff::Timestamp {
        jiff::Timestamp::from_second(secs).unwrap()
    }

    #[test]
    fn same_status_keeps_transition_time_and_updates_message() {
        let mut conds = vec![Condition::new(
            "Stalled",
            ConditionStatus::False,
            "Progressing",
            "a",
            at(100),
        )];
        let flipped = set_condition(
            &mut conds,
            Condition::new(
                "Stalled",
                ConditionStatus::False,
                "Progressing",
                "b",
                at(200),
            ),
        );
        assert!(!flipped);
        assert_eq!(conds.len(), 1);
        assert_eq!(conds[0].last_transition_time, Time(at(100)));
        assert_eq!(conds[0].message, "b");
    }

    #[test]
    fn flipped_status_moves_transition_time() {
        let mut conds = vec![Condition::new(
            "CodeDrift",
            ConditionStatus::False,
            "NoDrift",
            "",
            at(100),
        )];
        let flipped = set_condition(
            &mut conds,
            Condition::new(
                "CodeDrift",
                ConditionStatus::True,
                "ImageMismatch",
                "x",
                at(300),
            ),
        );
        assert!(flipped);
        assert_eq!(conds[0].last_transition_time, Time(at(300)));
        assert!(find_condition(&conds, "CodeDrift").unwrap().is_true());
    }

    #[test]
    fn new_type_is_appended_and_counts_as_transition() {
        let mut conds = Vec::new();
        assert!(set_condition(
            &mut conds,
            Condition::new("Blocked", ConditionStatus::True, "X", "", at(1))
        ));
        assert!(set_condition(
            &mut conds,
            Condition::new("Stalled", ConditionStatus::False, "Y", "", at(1))
        ));
        assert_eq!(conds.len(), 2);
    }
}
