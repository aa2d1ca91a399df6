//! Replays the fixture corpus in `crds/tests/fixtures/` against the committed CRDs, offline:
//! OpenAPI schema checks plus CEL rules (including transition rules on `oldSelf`).
//!
//! Each fixture is a YAML file. Header comments say what it tests:
//! `# expect: <text>` (invalid fixtures: the text the API server's message must contain) and
//! `# operation: update` (the file holds two documents, the stored object then the update).
//! `dev/cluster/tests/fixture_corpus.rs` replays the same corpus against the local API server.

#![allow(clippy::unwrap_used, clippy::expect_used)] // test code: a panic is a test failure

use std::path::{Path, PathBuf};

use serde_json::Value;
use tipoff_crds::validation::{FieldError, Options, SchemaChecker, invalid_message};

/// One parsed fixture.
struct Fixture {
    name: String,
    expect: Vec<String>,
    old: Option<Value>,
    object: Value,
}

fn fixtures(kind: &str) -> Vec<Fixture> {
    let dir = PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures")
        .join(kind);
    let mut paths: Vec<PathBuf> = std::fs::read_dir(&dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|e| e == "yaml"))
        .collect();
    paths.sort();
    paths.iter().map(|p| parse(p)).collect()
}

fn parse(path: &Path) -> Fixture {
    let text = std::fs::read_to_string(path).unwrap();
    let expect = text
        .lines()
        .filter_map(|l| l.strip_prefix("# expect: "))
        .map(str::to_owned)
        .collect();
    let update = text.lines().any(|l| l.trim() == "# operation: update");
    let mut docs: Vec<Value> = serde_yaml::Deserializer::from_str(&text)
        .map(|d| serde::Deserialize::deserialize(d).unwrap())
        .collect();
    let object = docs.pop().unwrap();
    let old = if update {
        Some(
            docs.pop()
                .expect("update fixtures hold the old object first"),
        )
    } else {
        None
    };
    Fixture {
        name: path.file_name().unwrap().to_string_lossy().into_owned(),
        expect,
        old,
        object,
    }
}

fn checker_for(kind: &str) -> SchemaChecker {
    let file = match kind {
        "PipelineRun" => "pipelineruns.tipoff.dev.yaml",
        "PhaseCompletion" => "phasecompletions.tipoff.dev.yaml",
        "PipelineBackfill" => "pipelinebackfills.tipoff.dev.yaml",
        "PipelineSchedule" => "pipelineschedules.tipoff.dev.yaml",
        other => panic!("no CRD for kind {other}"),
    };
    let path = PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("generated")
        .join(file);
    let crd: Value = serde_yaml::from_str(&std::fs::read_to_string(path).unwrap()).unwrap();
    SchemaChecker::for_crd(&crd, "v1alpha1").unwrap()
}

fn admit(f: &Fixture) -> Result<Value, Vec<FieldError>> {
    let kind = f.object["kind"].as_str().unwrap();
    let checker = checker_for(kind);
    if let Some(old) = &f.old {
        checker
            .admit(old, None, Options { strict: true })
            .unwrap_or_else(|e| panic!("{}: the old object must itself be valid: {e:?}", f.name));
    }
    checker.admit(&f.object, f.old.as_ref(), Options { strict: true })
}

#[test]
fn every_valid_fixture_is_accepted() {
    let all = fixtures("valid");
    assert!(all.len() >= 5, "the valid corpus shrank to {}", all.len());
    let rejected: Vec<String> = all
        .iter()
        .filter_map(|f| {
            admit(f)
                .err()
                .map(|e| format!("{}: {}", f.name, invalid_message("X", "x", &e)))
        })
        .collect();
    assert!(
        rejected.is_empty(),
        "valid fixtures rejected:\n{}",
        rejected.join("\n")
    );
}

#[test]
fn every_invalid_fixture_is_rejected_with_its_expected_message() {
    let all = fixtures("invalid");
    assert!(
        all.len() >= 25,
        "the issue asks for at least 25 invalid cases, found {}",
        all.len()
    );
    let mut failures = Vec::new();
    for f in &all {
        assert!(!f.expect.is_empty(), "{} has no '# expect:' line", f.name);
        let kind = f.object["kind"].as_str().unwrap();
        let name = f.object["metadata"]["name"].as_str().unwrap();
        match admit(f) {
            Ok(_) => failures.push(format!("{}: accepted, expected {:?}", f.name, f.expect)),
            Err(errors) => {
                let message = invalid_message(kind, name, &errors);
                assert!(message.starts_with(&format!("The {kind} \"{name}\" is invalid: ")));
                for e in &f.expect {
                    if !message.contains(e.as_str()) {
                        failures.push(format!(
                            "{}:\n  expected: {e}\n  got:      {message}",
                            f.name
                        ));
                    }
                }
            }
        }
    }
    assert!(
        failures.is_empty(),
        "{} fixture(s) failed:\n{}",
        failures.len(),
        failures.join("\n")
    );
}
