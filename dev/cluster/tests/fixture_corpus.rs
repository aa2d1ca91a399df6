//! Replays the tipoff CRD fixture corpus (`crds/tests/fixtures/`) against dev/cluster over
//! HTTP with the real kube client, the way a person's `kubectl apply` reaches an API server:
//! every valid fixture is stored, every invalid one is refused with 422 and the expected
//! message. Update fixtures create the first document, then replace it with the second.
//! A fixture whose invalid part is in `status` is created without it and then written through
//! the `/status` subresource, because a real server ignores `status` on create.

#![allow(clippy::unwrap_used, clippy::expect_used)] // test code: a panic is a test failure

mod common;

use std::path::{Path, PathBuf};

use k8s_openapi::apiextensions_apiserver::pkg::apis::apiextensions::v1::CustomResourceDefinition;
use kube::api::{Api, ApiResource, DynamicObject, GroupVersionKind, PostParams};
use serde_json::Value;

fn repo() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../..")
}

struct Fixture {
    name: String,
    expect: Vec<String>,
    docs: Vec<Value>,
}

fn corpus(kind: &str) -> Vec<Fixture> {
    let mut paths: Vec<PathBuf> = std::fs::read_dir(repo().join("crds/tests/fixtures").join(kind))
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|e| e == "yaml"))
        .collect();
    paths.sort();
    paths
        .iter()
        .map(|p| {
            let text = std::fs::read_to_string(p).unwrap();
            Fixture {
                name: p.file_name().unwrap().to_string_lossy().into_owned(),
                expect: text
                    .lines()
                    .filter_map(|l| l.strip_prefix("# expect: "))
                    .map(str::to_owned)
                    .collect(),
                docs: serde_yaml::Deserializer::from_str(&text)
                    .map(|d| serde::Deserialize::deserialize(d).unwrap())
                    .collect(),
            }
        })
        .collect()
}

fn api_for(client: &kube::Client, doc: &Value) -> Api<DynamicObject> {
    let kind = doc["kind"].as_str().unwrap();
    let plural = match kind {
        "PipelineRun" => "pipelineruns",
        "PhaseCompletion" => "phasecompletions",
        "PipelineBackfill" => "pipelinebackfills",
        "PipelineSchedule" => "pipelineschedules",
        other => panic!("unexpected kind {other}"),
    };
    let gvk = GroupVersionKind::gvk("tipoff.dev", "v1alpha1", kind);
    Api::namespaced_with(
        client.clone(),
        "default",
        &ApiResource::from_gvk_with_plural(&gvk, plural),
    )
}

/// Applies a fixture's documents; returns the API server's refusal, if any.
async fn replay(client: &kube::Client, f: &Fixture) -> Result<(), String> {
    let pp = PostParams::default();
    let (last, earlier) = f.docs.split_last().unwrap();
    let api = api_for(client, last);
    let name = last["metadata"]["name"].as_str().unwrap().to_owned();
    let refused = |e: kube::Error| match e {
        kube::Error::Api(s) if s.code == 422 => s.message,
        other => panic!("{}: expected 422 Invalid, got {other}", f.name),
    };
    if let Some(old) = earlier.last() {
        let old: DynamicObject = serde_json::from_value(old.clone()).unwrap();
        api.create(&pp, &old)
            .await
            .unwrap_or_else(|e| panic!("{}: old object refused: {e}", f.name));
        let mut new: DynamicObject = serde_json::from_value(last.clone()).unwrap();
        new.metadata.resource_version = api.get(&name).await.unwrap().metadata.resource_version;
        return api
            .replace(&name, &pp, &new)
            .await
            .map(drop)
            .map_err(refused);
    }
    let mut obj = last.clone();
    let status = obj.as_object_mut().unwrap().remove("status");
    let created: DynamicObject = serde_json::from_value(obj).unwrap();
    api.create(&pp, &created).await.map_err(refused)?;
    if let Some(status) = status {
        let mut with_status = api.get(&name).await.unwrap();
        with_status.data["status"] = status;
        api.replace_status(&name, &pp, &with_status)
            .await
            .map(drop)
            .map_err(refused)?;
    }
    Ok(())
}

async fn cleanup(client: &kube::Client, f: &Fixture) {
    let last = f.docs.last().unwrap();
    let api = api_for(client, last);
    let _ = api
        .delete(
            last["metadata"]["name"].as_str().unwrap(),
            &Default::default(),
        )
        .await;
}

#[tokio::test]
async fn the_crd_fixture_corpus_replays_against_the_api_server() {
    let cluster = common::start().await;
    let client = common::client(&cluster);
    let crds: Api<CustomResourceDefinition> = Api::all(client.clone());
    for file in [
        "pipelineruns.tipoff.dev.yaml",
        "phasecompletions.tipoff.dev.yaml",
        "pipelinebackfills.tipoff.dev.yaml",
        "pipelineschedules.tipoff.dev.yaml",
    ] {
        let text = std::fs::read_to_string(repo().join("crds/generated").join(file)).unwrap();
        crds.create(
            &PostParams::default(),
            &serde_yaml::from_str(&text).unwrap(),
        )
        .await
        .unwrap();
    }

    let valid = corpus("valid");
    assert!(valid.len() >= 5);
    for f in &valid {
        if let Err(message) = replay(&client, f).await {
            panic!("{}: a valid fixture was refused: {message}", f.name);
        }
        cleanup(&client, f).await;
    }

    let invalid = corpus("invalid");
    assert!(invalid.len() >= 25);
    let mut failures = Vec::new();
    for f in &invalid {
        match replay(&client, f).await {
            Ok(()) => failures.push(format!("{}: accepted", f.name)),
            Err(message) => {
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
        cleanup(&client, f).await;
    }
    assert!(
        failures.is_empty(),
        "{} fixture(s) failed:\n{}",
        failures.len(),
        failures.join("\n")
    );
    cluster.shutdown().await;
}
