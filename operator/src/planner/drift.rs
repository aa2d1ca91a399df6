//! Compares the code that ran with the code the run is pinned to.
//!
//! Three comparisons: the pinned image digest against the Pod's `imageID`, the pinned commit
//! against the commit the processor reports, and the processor the Job was for against the
//! processor that answered (the seeds' "prediction-coordinator ran analytics code").

use tipoff_crds::{DriftField, DriftFinding};

use super::observe::Evidence;

/// The `sha256:<hex>` digest of an image reference or `imageID`, if it has one.
pub fn digest(reference: &str) -> Option<&str> {
    let start = reference.find("sha256:")?;
    Some(&reference[start..])
}

/// The pinned identity of one processor.
pub struct Pinned<'a> {
    /// The processor the Job was for.
    pub processor: &'a str,
    /// The pinned image (`repo@sha256:...`).
    pub image: &'a str,
    /// The pinned commit.
    pub commit: &'a str,
}

/// Every mismatch between `pinned` and `evidence` for `attempt`.
pub fn findings(pinned: &Pinned<'_>, attempt: u32, evidence: &Evidence) -> Vec<DriftFinding> {
    let mut out = Vec::new();
    for reported in &evidence.processors {
        if reported != pinned.processor {
            out.push(make(
                pinned.processor,
                attempt,
                DriftField::Processor,
                pinned.processor,
                reported,
            ));
        }
    }
    for commit in &evidence.commits {
        if !same_commit(pinned.commit, commit) {
            out.push(make(
                pinned.processor,
                attempt,
                DriftField::Commit,
                pinned.commit,
                commit,
            ));
        }
    }
    if let Some(pinned_digest) = digest(pinned.image) {
        for image_id in &evidence.image_ids {
            if digest(image_id) != Some(pinned_digest) {
                out.push(make(
                    pinned.processor,
                    attempt,
                    DriftField::Image,
                    pinned.image,
                    image_id,
                ));
            }
        }
    }
    out
}

fn make(
    processor: &str,
    attempt: u32,
    field: DriftField,
    pinned: &str,
    observed: &str,
) -> DriftFinding {
    DriftFinding {
        processor: processor.to_owned(),
        attempt,
        field,
        pinned: pinned.to_owned(),
        observed: observed.to_owned(),
    }
}

/// Commits match when one is a prefix of the other (short and full hashes), case-insensitive.
pub fn same_commit(a: &str, b: &str) -> bool {
    let (a, b) = (a.to_ascii_lowercase(), b.to_ascii_lowercase());
    !a.is_empty() && !b.is_empty() && (a.starts_with(&b) || b.starts_with(&a))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn digests_are_found_in_references_and_image_ids() {
        assert_eq!(digest("ghcr.io/tipoff/p@sha256:ab12"), Some("sha256:ab12"));
        assert_eq!(
            digest("docker-pullable://ghcr.io/tipoff/p@sha256:ab12"),
            Some("sha256:ab12")
        );
        assert_eq!(digest("sha256:ab12"), Some("sha256:ab12"));
        assert_eq!(digest("ghcr.io/tipoff/p:latest"), None);
    }

    #[test]
    fn short_and_full_commits_match() {
        assert!(same_commit("c4f8f339", "c4f8f3391234abcd"));
        assert!(!same_commit("c4f8f339", "68d1e707"));
    }
}
