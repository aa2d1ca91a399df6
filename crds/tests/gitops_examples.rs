//! The tipoff objects of `examples/gitops/` (rendered with `kubectl kustomize`, as Argo CD and
//! Flux render them) pass the committed CRDs' schema and CEL rules, strictly.
//! `scripts/validate-gitops-examples.py` checks the other kinds there.

#![allow(clippy::unwrap_used, clippy::expect_used)] // test code: a panic is a test failure

use std::path::PathBuf;
use std::process::Command;

use serde_json::Value;
use tipoff_crds::validation::{Options, SchemaChecker, invalid_message};

fn workspace() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("..")
}

fn checker(kind: &str) -> SchemaChecker {
    let file = match kind {
        "PipelineRun" => "pipelineruns",
        "PhaseCompletion" => "phasecompletions",
        "PipelineBackfill" => "pipelinebackfills",
        "PipelineSchedule" => "pipelineschedules",
        other => panic!("no CRD for kind {other}"),
    };
    let path = workspace().join(format!("crds/generated/{file}.tipoff.dev.yaml"));
    let crd: Value = serde_yaml::from_str(&std::fs::read_to_string(path).unwrap()).unwrap();
    SchemaChecker::for_crd(&crd, "v1alpha1").unwrap()
}

#[test]
fn the_gitops_examples_tipoff_objects_are_valid() {
    let dir = workspace().join("examples/gitops/schedule");
    let out = Command::new("kubectl")
        .args(["kustomize"])
        .arg(&dir)
        .output()
        .expect("kubectl is needed to render the examples");
    assert!(
        out.status.success(),
        "kubectl kustomize {}: {}",
        dir.display(),
        String::from_utf8_lossy(&out.stderr)
    );
    let text = String::from_utf8(out.stdout).unwrap();
    let mut checked = 0;
    for doc in serde_yaml::Deserializer::from_str(&text) {
        let obj: Value = serde::Deserialize::deserialize(doc).unwrap();
        let Some(kind) = obj["apiVersion"]
            .as_str()
            .filter(|v| v.starts_with("tipoff.dev/"))
            .and(obj["kind"].as_str())
        else {
            continue;
        };
        let name = obj["metadata"]["name"].as_str().unwrap_or_default();
        if let Err(errors) = checker(kind).admit(&obj, None, Options { strict: true }) {
            panic!("{}", invalid_message(kind, name, &errors));
        }
        // And it deserializes into the operator's type.
        if kind == "PipelineSchedule" {
            serde_json::from_value::<tipoff_crds::PipelineSchedule>(obj.clone()).unwrap();
        }
        checked += 1;
    }
    assert!(checked >= 1, "no tipoff object in {}", dir.display());
}
