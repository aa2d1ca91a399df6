//! The release file the release workflow publishes (written by `scripts/release-file.sh`)
//! is what `tipoff run --release FILE` reads (`tipoff_crds::Release`, as the CLI's
//! `read_release` parses it) and what a PipelineRun's and a PipelineSchedule's `spec.release`
//! accept under the CRDs' rules (digest-pinned image, hex commit).

#![allow(clippy::unwrap_used, clippy::expect_used)] // test code: a panic is a test failure

use std::path::PathBuf;
use std::process::Command;

use serde_json::{Value, json};
use tipoff_crds::Release;
use tipoff_crds::validation::{Options, SchemaChecker, invalid_message};

const DIGEST: &str = "sha256:9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08";
const COMMIT: &str = "4f1c2e9a0b7d3c5e6f8a9b0c1d2e3f4a5b6c7d8e";

fn workspace() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("..")
}

fn release_file(args: &[&str]) -> std::process::Output {
    Command::new(workspace().join("scripts/release-file.sh"))
        .args(args)
        .output()
        .unwrap()
}

fn checker(file: &str) -> SchemaChecker {
    let path = workspace().join(format!("crds/generated/{file}.tipoff.dev.yaml"));
    let crd: Value = serde_yaml::from_str(&std::fs::read_to_string(path).unwrap()).unwrap();
    SchemaChecker::for_crd(&crd, "v1alpha1").unwrap()
}

#[test]
fn the_release_file_parses_and_pins_runs_and_schedules() {
    let out = release_file(&[
        "ghcr.io/tipoff-dev/tipoff-processor",
        DIGEST,
        COMMIT,
        "v0.4.2",
    ]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let text = String::from_utf8(out.stdout).unwrap();
    let release: Release = serde_yaml::from_str(&text).unwrap();
    assert_eq!(
        release.image,
        format!("ghcr.io/tipoff-dev/tipoff-processor@{DIGEST}")
    );
    assert_eq!(release.commit, COMMIT);
    assert_eq!(release.version.as_deref(), Some("v0.4.2"));

    let run = json!({
        "apiVersion": "tipoff.dev/v1alpha1", "kind": "PipelineRun",
        "metadata": {"name": "nba-2026-01-29"},
        "spec": {"date": "2026-01-29", "mode": "Production", "release": release},
    });
    let schedule = json!({
        "apiVersion": "tipoff.dev/v1alpha1", "kind": "PipelineSchedule",
        "metadata": {"name": "nba"},
        "spec": {"gameDays": {"configMap": "games"}, "release": release},
    });
    for (file, obj) in [("pipelineruns", run), ("pipelineschedules", schedule)] {
        if let Err(e) = checker(file).admit(&obj, None, Options { strict: true }) {
            panic!("{}", invalid_message(file, "x", &e));
        }
    }
}

#[test]
fn the_release_file_script_refuses_what_a_run_could_not_pin() {
    for (args, why) in [
        (["ghcr.io/x/p", "sha256:abc", COMMIT, "v1"], "digest"),
        (["ghcr.io/x/p", DIGEST, "HEAD", "v1"], "commit"),
        (["ghcr.io/x/p@sha256:1", DIGEST, COMMIT, "v1"], "repository"),
    ] {
        let out = release_file(&args);
        assert!(!out.status.success(), "{args:?} accepted");
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(err.contains(why), "{args:?}: {err}");
    }
}

#[test]
fn the_release_workflow_writes_the_release_file_with_the_script() {
    let workflow =
        std::fs::read_to_string(workspace().join(".github/workflows/release.yaml")).unwrap();
    assert!(
        workflow.contains("scripts/release-file.sh \"$REGISTRY/tipoff-processor\" \"$(cat tipoff-processor.digest)\""),
        "the workflow must write release.yaml from the pushed processor digest"
    );
    assert!(workflow.contains("buildah push --digestfile"));
    assert!(workflow.contains("TIPOFF_COMMIT: ${{ github.sha }}"));
}
