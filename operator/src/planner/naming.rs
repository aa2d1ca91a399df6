//! Deterministic names and labels of a run's children.
//!
//! A Job is named `<run>-<phase>-<processor>-a<attempt>`. When that is not a valid DNS label
//! of at most 63 characters (a long run name, or a run name with dots), the run part is cut
//! and a hash of the full, unshortened name is inserted, so the name stays unique, stable
//! across operator restarts, and still readable. Creating a name that exists is adoption.
//!
//! Unshortened names cannot collide: the attempt is the last `-`-separated part, and the
//! catalog forbids all-digit parts in processor names, so `-<phase>-<processor>` is found
//! from the right and the rest is the run. Shortened names carry 48 bits of the full name's
//! SHA-256. The planner never parses names; it identifies children by their labels.

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

/// The longest Kubernetes DNS label (and label value).
pub const MAX_LABEL: usize = 63;
/// Hex characters of the hash used in shortened names (48 bits).
const HASH_LEN: usize = 12;

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
}
