//! Judges the checks a processor reported against the catalog's gates for the run's mode.
//!
//! A gate is `blocking`, `warning` or `off` per mode (SameDay turns the defensive gap checks
//! off). A blocking gate that failed, or that the processor did not report, holds the run at
//! that processor; an audited `RelaxGate` override turns it into a warning.

use tipoff_crds::{Check, GateOutcome, GatePolicy, Mode, Override, OverrideType};

use crate::catalog::{Enforcement, Processor};

use super::overrides::{Applied, applies};

/// The gates of one successful attempt, judged.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Verdict {
    /// One outcome per catalog gate of the processor, in catalog order.
    pub outcomes: Vec<GateOutcome>,
    /// Blocking gates that failed, described for people.
    pub blocking: Vec<String>,
    /// Warning gates that failed, described for people.
    pub warnings: Vec<String>,
    /// Overrides that turned a blocking failure into a warning.
    pub applied: Vec<Applied>,
}

/// Judges `checks` (as reported) for `processor` in `mode`.
pub fn judge(
    processor: &Processor,
    mode: Mode,
    overrides: &[Override],
    checks: &[Check],
) -> Verdict {
    let mut verdict = Verdict::default();
    for gate in &processor.gates {
        let mut policy = gate.policy.get(mode);
        let check = checks.iter().find(|c| c.name == gate.name);
        let passed =
            check.is_none_or(|c| c.passed) && (check.is_some() || policy == Enforcement::Off);
        if !passed
            && policy == Enforcement::Blocking
            && let Some(index) = overrides.iter().position(|o| {
                o.type_ == OverrideType::RelaxGate
                    && applies(o, &processor.name)
                    && o.gate.as_deref() == Some(gate.name.as_str())
            })
        {
            policy = Enforcement::Warning;
            verdict.applied.push(Applied {
                index,
                effect: format!("gate {} of {} is a warning", gate.name, processor.name),
            });
        }
        if !passed {
            let text = describe(&processor.name, &gate.name, check);
            match policy {
                Enforcement::Blocking => verdict.blocking.push(text),
                Enforcement::Warning => verdict.warnings.push(text),
                Enforcement::Off => {}
            }
        }
        verdict.outcomes.push(GateOutcome {
            name: gate.name.clone(),
            passed,
            policy: GatePolicy::from(policy),
            observed: check.and_then(|c| c.observed),
            expected: check.and_then(|c| c.expected),
            missing: check
                .map(|c| c.missing.iter().take(20).cloned().collect())
                .unwrap_or_default(),
        });
    }
    verdict
}

fn describe(processor: &str, gate: &str, check: Option<&Check>) -> String {
    let Some(check) = check else {
        return format!("{processor}: gate {gate} was not reported");
    };
    let mut text = format!("{processor}: gate {gate} failed");
    if let (Some(o), Some(e)) = (check.observed, check.expected) {
        text.push_str(&format!(" ({o} of {e})"));
    }
    if !check.missing.is_empty() {
        let shown: Vec<&str> = check.missing.iter().take(5).map(String::as_str).collect();
        text.push_str(&format!(", missing {}", shown.join(", ")));
        if check.missing.len() > 5 {
            text.push_str(&format!(" and {} more", check.missing.len() - 5));
        }
    }
    text
}
