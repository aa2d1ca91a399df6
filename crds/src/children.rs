//! A PipelineRun's children as the operator makes them and everyone reads them: their names,
//! their labels, the processor's container, and how a Job ended. The operator and the CLI both
//! read children through this module, so they cannot disagree about them.
//!
//! **Names.** A Job is named `<run>-<phase>-<processor>-a<attempt>`. When that is not a valid
//! DNS label of at most 63 characters (a long run name, or a run name with dots), the run part
//! is cut and a hash of the full, unshortened name is inserted, so the name stays unique,
//! stable across operator restarts, and still readable. Creating a name that exists is
//! adoption.
//!
//! Unshortened names cannot collide: the attempt is the last `-`-separated part, and the
//! catalog forbids all-digit parts in processor names, so `-<phase>-<processor>` is found
//! from the right and the rest is the run. Shortened names carry 48 bits of the full name's
//! SHA-256. Nobody parses names; children are identified by their labels.
//!
//! **How a Job ended** ([`JobEnd`]) is read from its conditions only: `Complete` is success;
//! `FailureTarget` (the Job controller has decided the Job fails, its Pods may still be
//! terminating) and `Failed` (they have) are failure. The attempt's outcome is decided by
//! either failure condition; the Job is *final* (nothing more will happen to it or its Pods)
//! only once `Complete` or `Failed` is set. `SuccessCriteriaMet` is not read: it exists only
//! for Jobs with a success policy, which tipoff's Jobs do not have.

use k8s_openapi::api::batch::v1::{Job, JobCondition};
use k8s_openapi::api::core::v1::{ContainerStatus, Pod};

use sha2::{Digest, Sha256};

/// Label on every child: the owning PipelineRun's name (or its hashed form when too long).
pub const LABEL_RUN: &str = "tipoff.dev/run";
/// Label on every child: the phase number.
pub const LABEL_PHASE: &str = "tipoff.dev/phase";
/// Label on Jobs and Pods: the processor.
pub const LABEL_PROCESSOR: &str = "tipoff.dev/processor";
/// Label on Jobs and Pods: the attempt number, from 1.
pub const LABEL_ATTEMPT: &str = "tipoff.dev/attempt";
/// Label on every child: the run's game date (`YYYY-MM-DD`, a valid label value by the CRD's
/// rule), so `kubectl get jobs,phasecompletions -l tipoff.dev/date=2026-01-29` finds a date's
/// work across runs.
pub const LABEL_DATE: &str = "tipoff.dev/date";
/// Label on Jobs and Pods: the commit the Job was pinned to (7-40 hex digits by the CRD's rule),
/// so the Jobs of one release can be selected; what actually ran is in the result and status.
pub const LABEL_COMMIT: &str = "tipoff.dev/commit";

/// Label on Jobs and Pods of a rerun: the rerun's name (`spec.reruns[].name`).
pub const LABEL_RERUN: &str = "tipoff.dev/rerun";

/// The Kubernetes recommended label for the application's name; on every child `tipoff`.
pub const LABEL_APP_NAME: &str = "app.kubernetes.io/name";
/// The recommended label for the instance: the owning run's [`LABEL_RUN`] value on a run's
/// children, the owning schedule's or backfill's label value on the runs they create.
pub const LABEL_APP_INSTANCE: &str = "app.kubernetes.io/instance";
/// The recommended label for what the child is: [`COMPONENT_PROCESSOR`],
/// [`COMPONENT_PHASE_COMPLETION`] or [`COMPONENT_PIPELINE_RUN`].
pub const LABEL_APP_COMPONENT: &str = "app.kubernetes.io/component";
/// The recommended label for the larger application; on every child `tipoff`.
pub const LABEL_APP_PART_OF: &str = "app.kubernetes.io/part-of";
/// The recommended label for the tool that manages the object; on every child
/// [`MANAGED_BY`].
pub const LABEL_APP_MANAGED_BY: &str = "app.kubernetes.io/managed-by";
/// The value of [`LABEL_APP_MANAGED_BY`] on everything the operator creates. The operator's
/// Job and Pod watches select on it, so it must not change between releases.
pub const MANAGED_BY: &str = "tipoff";
/// [`LABEL_APP_COMPONENT`] of processor Jobs and their Pods.
pub const COMPONENT_PROCESSOR: &str = "processor";
/// [`LABEL_APP_COMPONENT`] of PhaseCompletions.
pub const COMPONENT_PHASE_COMPLETION: &str = "phase-completion";
/// [`LABEL_APP_COMPONENT`] of PipelineRuns created by a schedule or a backfill.
pub const COMPONENT_PIPELINE_RUN: &str = "pipeline-run";

/// The five `app.kubernetes.io/` labels every child carries, so generic tools (Argo CD,
/// dashboards, `kubectl get -l app.kubernetes.io/managed-by=tipoff`) can group them.
/// `instance` must be a valid label value (a [`run_label`] or owner label is).
pub fn standard_labels(instance: &str, component: &str) -> [(String, String); 5] {
    [
        (LABEL_APP_NAME.to_owned(), "tipoff".to_owned()),
        (LABEL_APP_INSTANCE.to_owned(), instance.to_owned()),
        (LABEL_APP_COMPONENT.to_owned(), component.to_owned()),
        (LABEL_APP_PART_OF.to_owned(), "tipoff".to_owned()),
        (LABEL_APP_MANAGED_BY.to_owned(), MANAGED_BY.to_owned()),
    ]
}

/// The longest Kubernetes DNS label (and label value).
pub const MAX_LABEL: usize = 63;
/// Hex characters of the hash used in shortened names (48 bits).
const HASH_LEN: usize = 12;

/// The container in every processor Pod. Its termination message carries the processor
/// result; a Pod without a container of this name is read through its first container.
pub const PROCESSOR_CONTAINER: &str = "processor";

/// How a Job ended, from one of its conditions. See the module doc.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum JobEnd {
    /// `Complete`: every completion succeeded.
    Succeeded,
    /// `FailureTarget`: the Job controller has decided the Job fails; `Failed` follows once its
    /// Pods have terminated.
    Failing,
    /// `Failed`: the Job failed and its Pods have terminated.
    Failed,
}

impl JobEnd {
    /// What a condition of `type_` with `status` says, if it says the Job ended.
    pub fn from_condition(type_: &str, status: &str) -> Option<Self> {
        if status != "True" {
            return None;
        }
        match type_ {
            "Complete" => Some(Self::Succeeded),
            "FailureTarget" => Some(Self::Failing),
            "Failed" => Some(Self::Failed),
            _ => None,
        }
    }

    /// Whether the attempt failed (`Failing` or `Failed`).
    pub fn is_failure(self) -> bool {
        !matches!(self, Self::Succeeded)
    }

    /// Whether nothing more will happen to the Job or its Pods (`Succeeded` or `Failed`).
    pub fn is_final(self) -> bool {
        !matches!(self, Self::Failing)
    }
}

/// How `job` ended and the condition that says so: the first true condition that says it
/// ended, in the order the Job's status lists them. `None` while it runs.
pub fn job_end(job: &Job) -> Option<(JobEnd, &JobCondition)> {
    job.status
        .as_ref()?
        .conditions
        .iter()
        .flatten()
        .find_map(|c| JobEnd::from_condition(&c.type_, &c.status).map(|end| (end, c)))
}

/// The processor's container in `statuses` (by [`PROCESSOR_CONTAINER`], else the first), for
/// any representation of a container status that can give its name.
pub fn processor_container_of<T>(statuses: &[T], name: impl Fn(&T) -> &str) -> Option<&T> {
    statuses
        .iter()
        .find(|c| name(c) == PROCESSOR_CONTAINER)
        .or_else(|| statuses.first())
}

/// The status of `pod`'s processor container.
pub fn processor_container(pod: &Pod) -> Option<&ContainerStatus> {
    let statuses = pod.status.as_ref()?.container_statuses.as_ref()?;
    processor_container_of(statuses, |c| c.name.as_str())
}

/// The name of the Job running `attempt` of `processor` (in `phase`) for `run`.
pub fn job_name(run: &str, phase: u8, processor: &str, attempt: u32) -> String {
    let tail = format!("-{phase}-{processor}-a{attempt}");
    shorten(run, &tail)
}

/// The name of the Job running rerun `rerun` of `processor` (in `phase`) for `run`:
/// `<run>-<phase>-<processor>-r<rerun>`. It does not depend on the attempt number, so a rerun
/// planned twice (a cache that lags) is one Job. Rerun names are letters and digits only, so
/// the last part (`r<rerun>`) is never an attempt's (`a<n>`) nor another rerun's.
pub fn rerun_job_name(run: &str, phase: u8, processor: &str, rerun: &str) -> String {
    shorten(run, &format!("-{phase}-{processor}-r{rerun}"))
}

/// The name of the PhaseCompletion of `phase` for `run`.
pub fn phase_completion_name(run: &str, phase: u8) -> String {
    shorten(run, &format!("-p{phase}"))
}

/// The name of the run that `owner` (a PipelineSchedule or PipelineBackfill) creates for game
/// date `date`: `<owner>-<date><suffix>` (the suffix tells modes apart, e.g. `-sameday`),
/// shortened like every child name when too long, so it still ends with the date and suffix.
/// The date is the key: one name per owner, date and mode, whatever the clock says.
pub fn dated_run_name(owner: &str, date: &str, suffix: &str) -> String {
    shorten(owner, &format!("-{date}{suffix}"))
}

/// The labels that name the object that created a run, each with the kind `tipoff status`
/// shows it as: a run created by a schedule reads `schedule/<name>`.
pub const CREATOR_LABELS: [(&str, &str); 2] = [
    (crate::pipeline_schedule::LABEL_SCHEDULE, "schedule"),
    (crate::pipeline_backfill::LABEL_BACKFILL, "backfill"),
];

/// Which object created a run, from its labels (`schedule/nba`), if one did.
pub fn created_by(labels: &std::collections::BTreeMap<String, String>) -> Option<String> {
    CREATOR_LABELS
        .iter()
        .find_map(|(label, kind)| labels.get(*label).map(|name| format!("{kind}/{name}")))
}

/// The value of a label naming the object that created a run (`tipoff.dev/schedule`,
/// `tipoff.dev/backfill`): the name itself when it is a valid label value, else its shortened
/// form.
pub fn owner_label(owner: &str) -> String {
    shorten(owner, "")
}

/// The value of [`LABEL_RUN`] for `run`: the name itself when it is a valid label value.
pub fn run_label(run: &str) -> String {
    shorten(run, "")
}

/// Whether `name` is a DNS-1123 label: 1-63 of `[a-z0-9-]`, alphanumeric at both ends.
pub fn is_dns_label(name: &str) -> bool {
    !name.is_empty()
        && name.len() <= MAX_LABEL
        && name
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
        && !name.starts_with('-')
        && !name.ends_with('-')
}

/// `run + tail` when that is a valid label; otherwise `<run prefix>-<hash>` + `tail`, with
/// the hash taken over the unshortened `run + tail`. If `tail` alone is too long the whole
/// sanitized name is cut instead.
fn shorten(run: &str, tail: &str) -> String {
    let full = format!("{run}{tail}");
    if is_dns_label(&full) {
        return full;
    }
    let hash = short_hash(&full);
    let clean_run = sanitize(run);
    // Room for the run prefix: the label minus "-<hash>" minus the tail.
    let room = MAX_LABEL.saturating_sub(HASH_LEN + 1 + tail.len());
    if room >= 1 {
        let prefix = trim_dashes(cut(&clean_run, room));
        let name = if prefix.is_empty() {
            format!("x-{hash}{tail}")
        } else {
            format!("{prefix}-{hash}{tail}")
        };
        if is_dns_label(&name) {
            return name;
        }
    }
    let clean_full = sanitize(&full);
    let prefix = trim_dashes(cut(&clean_full, MAX_LABEL - HASH_LEN - 1));
    if prefix.is_empty() {
        format!("x-{hash}")
    } else {
        format!("{prefix}-{hash}")
    }
}

fn short_hash(text: &str) -> String {
    let digest = Sha256::digest(text.as_bytes());
    let mut hex = String::with_capacity(HASH_LEN);
    for byte in digest.iter().take(HASH_LEN / 2) {
        hex.push_str(&format!("{byte:02x}"));
    }
    hex
}

/// Lowercases and replaces every character outside `[a-z0-9-]` with `-`.
fn sanitize(text: &str) -> String {
    text.chars()
        .map(|c| {
            let c = c.to_ascii_lowercase();
            if c.is_ascii_lowercase() || c.is_ascii_digit() {
                c
            } else {
                '-'
            }
        })
        .collect()
}

fn cut(text: &str, max: usize) -> &str {
    // `text` is ASCII after `sanitize`, so any byte index is a char boundary.
    &text[..text.len().min(max)]
}

fn trim_dashes(text: &str) -> &str {
    text.trim_matches('-')
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn short_names_are_kept_as_written() {
        assert_eq!(
            job_name("nba-2026-01-29", 4, "ml-feature-store", 2),
            "nba-2026-01-29-4-ml-feature-store-a2"
        );
        assert_eq!(
            phase_completion_name("nba-2026-01-29", 3),
            "nba-2026-01-29-p3"
        );
        assert_eq!(run_label("nba-2026-01-29"), "nba-2026-01-29");
    }

    #[test]
    fn long_names_keep_the_tail_and_gain_a_hash() {
        let run = "backfill-2025-12-21-through-2025-12-25-requested-by-the-data-team";
        let name = job_name(run, 4, "ml-feature-store", 3);
        assert!(is_dns_label(&name), "{name}");
        assert!(name.ends_with("-4-ml-feature-store-a3"), "{name}");
        assert_eq!(
            name,
            job_name(run, 4, "ml-feature-store", 3),
            "deterministic"
        );
        assert_ne!(name, job_name(run, 4, "ml-feature-store", 4));
    }

    #[test]
    fn dated_run_names_end_with_the_date_and_suffix_however_long_the_owner() {
        assert_eq!(dated_run_name("nba", "2026-01-29", ""), "nba-2026-01-29");
        assert_eq!(
            dated_run_name("nba", "2026-01-29", "-sameday"),
            "nba-2026-01-29-sameday"
        );
        let long = "the-nightly-production-schedule-of-the-nba-player-props-pipeline";
        let name = dated_run_name(long, "2026-01-29", "-sameday");
        assert!(is_dns_label(&name), "{name}");
        assert!(name.ends_with("-2026-01-29-sameday"), "{name}");
        assert_ne!(name, dated_run_name(long, "2026-01-30", "-sameday"));
        assert_ne!(name, dated_run_name(long, "2026-01-29", ""));
        assert_ne!(
            dated_run_name(&format!("{long}x"), "2026-01-29", ""),
            dated_run_name(long, "2026-01-29", "")
        );
        assert!(is_dns_label(&owner_label(long)));
        assert_eq!(owner_label("nba"), "nba");
    }

    #[test]
    fn created_by_names_the_creator_from_its_label() {
        let labels = std::collections::BTreeMap::from([(
            crate::pipeline_schedule::LABEL_SCHEDULE.to_owned(),
            "nba".to_owned(),
        )]);
        assert_eq!(created_by(&labels).as_deref(), Some("schedule/nba"));
        let labels = std::collections::BTreeMap::from([(
            crate::pipeline_backfill::LABEL_BACKFILL.to_owned(),
            "jan".to_owned(),
        )]);
        assert_eq!(created_by(&labels).as_deref(), Some("backfill/jan"));
        assert_eq!(created_by(&std::collections::BTreeMap::new()), None);
    }

    #[test]
    fn dotted_run_names_are_hashed_not_merely_replaced() {
        let dotted = job_name("run.a", 1, "p", 1);
        let dashed = job_name("run-a", 1, "p", 1);
        assert!(is_dns_label(&dotted), "{dotted}");
        assert_ne!(dotted, dashed);
    }

    #[test]
    fn a_63_character_processor_still_fits() {
        let processor = "p".repeat(63);
        let name = job_name("run", 6, &processor, 10);
        assert!(is_dns_label(&name), "{name}");
    }

    fn job(conditions: &[(&str, &str)]) -> Job {
        serde_json::from_value(serde_json::json!({
            "metadata": {"name": "j"},
            "status": {"conditions": conditions.iter()
                .map(|(t, s)| serde_json::json!({"type": t, "status": s}))
                .collect::<Vec<_>>()}
        }))
        .unwrap()
    }

    #[test]
    fn a_job_ends_by_its_first_true_ending_condition() {
        let end = |c: &[(&str, &str)]| job_end(&job(c)).map(|(end, _)| end);
        assert_eq!(end(&[]), None);
        assert_eq!(end(&[("Suspended", "True"), ("Complete", "False")]), None);
        assert_eq!(end(&[("Complete", "True")]), Some(JobEnd::Succeeded));
        assert_eq!(end(&[("FailureTarget", "True")]), Some(JobEnd::Failing));
        assert_eq!(
            end(&[("FailureTarget", "True"), ("Failed", "True")]),
            Some(JobEnd::Failing)
        );
        assert_eq!(end(&[("Failed", "True")]), Some(JobEnd::Failed));
        // SuccessCriteriaMet belongs to success policies, which tipoff's Jobs do not have.
        assert_eq!(end(&[("SuccessCriteriaMet", "True")]), None);
    }

    #[test]
    fn failing_is_a_failure_but_not_final() {
        assert!(JobEnd::Failing.is_failure() && !JobEnd::Failing.is_final());
        assert!(JobEnd::Failed.is_failure() && JobEnd::Failed.is_final());
        assert!(!JobEnd::Succeeded.is_failure() && JobEnd::Succeeded.is_final());
    }

    #[test]
    fn the_processor_container_is_found_by_name_else_the_first() {
        let names = ["sidecar", "processor"];
        assert_eq!(processor_container_of(&names, |n| n), Some(&"processor"));
        let names = ["only"];
        assert_eq!(processor_container_of(&names, |n| n), Some(&"only"));
        let none: [&str; 0] = [];
        assert_eq!(processor_container_of(&none, |n| n), None);
    }
}
