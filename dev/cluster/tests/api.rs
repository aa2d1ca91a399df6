//! Conformance of the core API semantics with the real `kube` client:
//! CRUD, resourceVersion and conflicts, generation and the status
//! subresource, patches and server-side apply, selectors, generateName,
//! errors as Status objects, finalizers and cascading deletion.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::collections::BTreeMap;
use std::time::Duration;

use common::*;
use k8s_openapi::api::core::v1::{ConfigMap, Namespace, Pod};
use kube::api::{
    DeleteParams, DynamicObject, ListParams, Patch, PatchParams, PostParams, PropagationPolicy,
};
use kube::{Api, ResourceExt};
use serde_json::json;

fn cm(name: &str, labels: &[(&str, &str)]) -> ConfigMap {
    ConfigMap {
        metadata: kube::api::ObjectMeta {
            name: Some(name.into()),
            labels: Some(
                labels
                    .iter()
                    .map(|(k, v)| (k.to_string(), v.to_string()))
                    .collect(),
            ),
            ..Default::default()
        },
        data: Some(BTreeMap::from([("k".to_string(), "v".to_string())])),
        ..Default::default()
    }
}

fn api_error(err: kube::Error) -> kube::core::Status {
    match err {
        kube::Error::Api(status) => *status,
        other => panic!("expected an API error, got {other:?}"),
    }
}

#[tokio::test]
async fn create_get_list_update_delete_with_monotonic_versions() {
    let cluster = start().await;
    let cms: Api<ConfigMap> = Api::namespaced(client(&cluster), "default");
    let a = cms
        .create(&PostParams::default(), &cm("a", &[]))
        .await
        .unwrap();
    let b = cms
        .create(&PostParams::default(), &cm("b", &[]))
        .await
        .unwrap();
    let rv = |o: &ConfigMap| o.resource_version().unwrap().parse::<u64>().unwrap();
    assert!(rv(&b) > rv(&a));
    assert!(a.uid().is_some() && a.uid() != b.uid());
    assert!(a.metadata.creation_timestamp.is_some());
    let got = cms.get("a").await.unwrap();
    assert_eq!(got.data, a.data);
    let list = cms.list(&ListParams::default()).await.unwrap();
    assert_eq!(
        list.items.iter().map(|c| c.name_any()).collect::<Vec<_>>(),
        ["a", "b"]
    );
    assert!(
        list.metadata
            .resource_version
            .unwrap()
            .parse::<u64>()
            .unwrap()
            >= rv(&b)
    );

    let mut changed = got.clone();
    changed.data = Some(BTreeMap::from([("k".into(), "w".into())]));
    let updated = cms
        .replace("a", &PostParams::default(), &changed)
        .await
        .unwrap();
    assert!(rv(&updated) > rv(&b));
    assert_eq!(updated.uid(), a.uid());
    // Replacing with the stale version conflicts.
    let status = api_error(
        cms.replace("a", &PostParams::default(), &changed)
            .await
            .unwrap_err(),
    );
    assert_eq!((status.code, status.reason.as_str()), (409, "Conflict"));

    let status = api_error(
        cms.create(&PostParams::default(), &cm("a", &[]))
            .await
            .unwrap_err(),
    );
    assert_eq!(
        (status.code, status.reason.as_str()),
        (409, "AlreadyExists")
    );
    cms.delete("a", &DeleteParams::default()).await.unwrap();
    let status = api_error(cms.get("a").await.unwrap_err());
    assert_eq!((status.code, status.reason.as_str()), (404, "NotFound"));
    assert_eq!(status.message, "configmaps \"a\" not found");
    cluster.shutdown().await;
}

#[tokio::test]
async fn error_bodies_are_status_objects() {
    let cluster = start().await;
    let (code, body) = get_json(&cluster, "/api/v1/namespaces/default/configmaps/missing").await;
    assert_eq!(code, 404);
    assert_eq!(body["kind"], "Status");
    assert_eq!(body["apiVersion"], "v1");
    assert_eq!(body["status"], "Failure");
    assert_eq!(body["reason"], "NotFound");
    assert_eq!(body["code"], 404);
    assert_eq!(body["details"]["name"], "missing");
    assert_eq!(body["details"]["kind"], "configmaps");
    // A namespaced create in a namespace that does not exist.
    let cms: Api<ConfigMap> = Api::namespaced(client(&cluster), "nowhere");
    let status = api_error(
        cms.create(&PostParams::default(), &cm("x", &[]))
            .await
            .unwrap_err(),
    );
    assert_eq!(status.code, 404);
    assert_eq!(status.message, "namespaces \"nowhere\" not found");
    cluster.shutdown().await;
}

#[tokio::test]
async fn generate_name_and_cluster_scope() {
    let cluster = start().await;
    let c = client(&cluster);
    let namespaces: Api<Namespace> = Api::all(c.clone());
    let ns = namespaces
        .create(
            &PostParams::default(),
            &serde_json::from_value(json!({"metadata": {"name": "team"}})).unwrap(),
        )
        .await
        .unwrap();
    assert_eq!(ns.metadata.namespace, None);
    assert_eq!(ns.status.and_then(|s| s.phase).as_deref(), Some("Active"));
    let cms: Api<ConfigMap> = Api::namespaced(c.clone(), "team");
    let mut generated = cm("", &[]);
    generated.metadata.name = None;
    generated.metadata.generate_name = Some("gen-".into());
    let one = cms
        .create(&PostParams::default(), &generated)
        .await
        .unwrap();
    let two = cms
        .create(&PostParams::default(), &generated)
        .await
        .unwrap();
    assert!(one.name_any().starts_with("gen-") && one.name_any().len() == 9);
    assert_ne!(one.name_any(), two.name_any());
    let all: Api<ConfigMap> = Api::all(c);
    assert_eq!(
        all.list(&ListParams::default()).await.unwrap().items.len(),
        2
    );
    cluster.shutdown().await;
}

#[tokio::test]
async fn label_and_field_selectors() {
    let cluster = start().await;
    let cms: Api<ConfigMap> = Api::namespaced(client(&cluster), "default");
    for (name, labels) in [
        ("web", vec![("app", "web"), ("tier", "front")]),
        ("db", vec![("app", "db"), ("tier", "back")]),
        ("bare", vec![]),
    ] {
        cms.create(&PostParams::default(), &cm(name, &labels))
            .await
            .unwrap();
    }
    let names = |sel: &'static str, field: bool| {
        let cms = cms.clone();
        async move {
            let lp = if field {
                ListParams::default().fields(sel)
            } else {
                ListParams::default().labels(sel)
            };
            cms.list(&lp)
                .await
                .unwrap()
                .items
                .iter()
                .map(|c| c.name_any())
                .collect::<Vec<_>>()
        }
    };
    assert_eq!(names("app=web", false).await, ["web"]);
    assert_eq!(names("app!=web", false).await, ["bare", "db"]);
    assert_eq!(names("app in (web,db)", false).await, ["db", "web"]);
    assert_eq!(names("app notin (web)", false).await, ["bare", "db"]);
    assert_eq!(names("tier", false).await, ["db", "web"]);
    assert_eq!(names("!tier", false).await, ["bare"]);
    assert_eq!(names("app=db,tier=back", false).await, ["db"]);
    assert_eq!(names("metadata.name=db", true).await, ["db"]);
    assert_eq!(names("metadata.name!=db", true).await, ["bare", "web"]);
    cluster.shutdown().await;
}

#[tokio::test]
async fn pagination_with_limit_and_continue() {
    let cluster = start().await;
    let cms: Api<ConfigMap> = Api::namespaced(client(&cluster), "default");
    for i in 0..25 {
        cms.create(&PostParams::default(), &cm(&format!("cm-{i:02}"), &[]))
            .await
            .unwrap();
    }
    let mut seen = Vec::new();
    let mut lp = ListParams::default().limit(10);
    loop {
        let page = cms.list(&lp).await.unwrap();
        assert!(page.items.len() <= 10);
        seen.extend(page.items.iter().map(|c| c.name_any()));
        match page.metadata.continue_ {
            Some(token) if !token.is_empty() => lp = lp.continue_token(&token),
            _ => break,
        }
    }
    assert_eq!(seen.len(), 25);
    assert_eq!(seen.first().map(String::as_str), Some("cm-00"));
    assert_eq!(seen.last().map(String::as_str), Some("cm-24"));
    cluster.shutdown().await;
}

#[tokio::test]
async fn status_subresource_and_generation() {
    let cluster = start().await;
    let c = client(&cluster);
    let ar = install_widgets(&c).await;
    let widgets: Api<DynamicObject> = Api::namespaced_with(c, "default", &ar);
    let mut w = widget("w", 1);
    w.data["status"] = json!({"conditions": [{"type": "Ready", "status": "True"}]});
    let created = widgets.create(&PostParams::default(), &w).await.unwrap();
    assert_eq!(created.metadata.generation, Some(1));
    assert!(
        created.data.get("status").is_none(),
        "status is ignored on create"
    );

    // Status writes go through /status and do not bump generation.
    let patched = widgets
        .patch_status(
            "w",
            &PatchParams::default(),
            &Patch::Merge(json!({"status": {"observedGeneration": 1}})),
        )
        .await
        .unwrap();
    assert_eq!(patched.data["status"]["observedGeneration"], 1);
    assert_eq!(patched.metadata.generation, Some(1));
    // Status in a main-resource write is ignored; spec changes bump generation.
    let patched = widgets
        .patch(
            "w",
            &PatchParams::default(),
            &Patch::Merge(json!({"spec": {"size": 2}, "status": {"observedGeneration": 9}})),
        )
        .await
        .unwrap();
    assert_eq!(patched.metadata.generation, Some(2));
    assert_eq!(patched.data["status"]["observedGeneration"], 1);
    // Metadata-only changes do not bump generation.
    let patched = widgets
        .patch(
            "w",
            &PatchParams::default(),
            &Patch::Merge(json!({"metadata": {"labels": {"a": "b"}}})),
        )
        .await
        .unwrap();
    assert_eq!(patched.metadata.generation, Some(2));
    // A no-op write keeps the resourceVersion.
    let again = widgets
        .patch(
            "w",
            &PatchParams::default(),
            &Patch::Merge(json!({"metadata": {"labels": {"a": "b"}}})),
        )
        .await
        .unwrap();
    assert_eq!(again.resource_version(), patched.resource_version());
    cluster.shutdown().await;
}

#[tokio::test]
async fn merge_json_and_strategic_patches_and_conflicts() {
    let cluster = start().await;
    let cms: Api<ConfigMap> = Api::namespaced(client(&cluster), "default");
    let created = cms
        .create(&PostParams::default(), &cm("p", &[]))
        .await
        .unwrap();
    let pp = PatchParams::default();
    let merged = cms
        .patch(
            "p",
            &pp,
            &Patch::Merge(json!({"data": {"x": "1", "k": null}})),
        )
        .await
        .unwrap();
    assert_eq!(
        merged.data,
        Some(BTreeMap::from([("x".into(), "1".into())]))
    );
    let ops: json_patch::Patch =
        serde_json::from_value(json!([{"op": "add", "path": "/data/y", "value": "2"}])).unwrap();
    let jsoned = cms.patch("p", &pp, &Patch::<()>::Json(ops)).await.unwrap();
    assert_eq!(
        jsoned
            .data
            .as_ref()
            .and_then(|d| d.get("y"))
            .map(String::as_str),
        Some("2")
    );
    let strategic = cms
        .patch("p", &pp, &Patch::Strategic(json!({"data": {"z": "3"}})))
        .await
        .unwrap();
    assert_eq!(strategic.data.as_ref().map(|d| d.len()), Some(3));
    // A patch that names a stale resourceVersion conflicts.
    let stale =
        json!({"metadata": {"resourceVersion": created.resource_version()}, "data": {"q": "1"}});
    let status = api_error(cms.patch("p", &pp, &Patch::Merge(stale)).await.unwrap_err());
    assert_eq!(status.code, 409);
    cluster.shutdown().await;
}

#[tokio::test]
async fn server_side_apply_creates_updates_and_prunes_owned_fields() {
    let cluster = start().await;
    let c = client(&cluster);
    let ar = install_widgets(&c).await;
    let widgets: Api<DynamicObject> = Api::namespaced_with(c, "default", &ar);
    let pp = PatchParams::apply("tipoff-operator").force();
    let first = json!({"apiVersion": "example.com/v1", "kind": "Widget", "metadata": {"name": "a", "labels": {"x": "1", "y": "2"}}, "spec": {"size": 1, "color": "red"}});
    let created = widgets
        .patch("a", &pp, &Patch::Apply(&first))
        .await
        .unwrap();
    assert_eq!(created.data["spec"]["size"], 1);
    assert_eq!(
        created.metadata.managed_fields.as_ref().map(Vec::len),
        Some(1)
    );
    let second = json!({"apiVersion": "example.com/v1", "kind": "Widget", "metadata": {"name": "a", "labels": {"x": "1"}}, "spec": {"size": 2}});
    let updated = widgets
        .patch("a", &pp, &Patch::Apply(&second))
        .await
        .unwrap();
    assert_eq!(
        updated.data["spec"],
        json!({"size": 2, "mode": "fast"}),
        "color dropped, default kept"
    );
    assert_eq!(updated.labels().get("y"), None);
    assert_eq!(updated.metadata.generation, Some(2));
    let status = json!({"apiVersion": "example.com/v1", "kind": "Widget", "metadata": {"name": "a"}, "status": {"conditions": [{"type": "Ready", "status": "True"}]}});
    let with_status = widgets
        .patch_status("a", &pp, &Patch::Apply(&status))
        .await
        .unwrap();
    assert_eq!(
        with_status.data["status"]["conditions"][0]["status"],
        "True"
    );
    assert_eq!(with_status.data["spec"], json!({"size": 2, "mode": "fast"}));
    cluster.shutdown().await;
}

#[tokio::test]
async fn finalizers_hold_deletion_until_removed() {
    let cluster = start().await;
    let cms: Api<ConfigMap> = Api::namespaced(client(&cluster), "default");
    let mut object = cm("held", &[]);
    object.metadata.finalizers = Some(vec!["example.com/cleanup".into()]);
    cms.create(&PostParams::default(), &object).await.unwrap();
    let deleted = cms.delete("held", &DeleteParams::default()).await.unwrap();
    let pending = deleted
        .left()
        .expect("object returned while finalizers remain");
    assert!(pending.metadata.deletion_timestamp.is_some());
    assert!(cms.get("held").await.is_ok());
    cms.patch(
        "held",
        &PatchParams::default(),
        &Patch::Merge(json!({"metadata": {"finalizers": null}})),
    )
    .await
    .unwrap();
    let status = api_error(cms.get("held").await.unwrap_err());
    assert_eq!(status.code, 404);
    cluster.shutdown().await;
}

fn owned_pod(name: &str, owner: &ConfigMap) -> Pod {
    serde_json::from_value(json!({
        "metadata": {"name": name, "ownerReferences": [{
            "apiVersion": "v1", "kind": "ConfigMap", "name": owner.name_any(),
            "uid": owner.uid().unwrap(), "blockOwnerDeletion": true}]},
        "spec": {"containers": [{"name": "c", "image": "unmapped"}]},
    }))
    .unwrap()
}

#[tokio::test]
async fn cascading_deletion_background_foreground_orphan() {
    let cluster = start().await;
    let c = client(&cluster);
    let cms: Api<ConfigMap> = Api::namespaced(c.clone(), "default");
    let pods: Api<Pod> = Api::namespaced(c, "default");
    let exists = |name: &'static str| {
        let pods = pods.clone();
        async move { pods.get_opt(name).await.unwrap().is_some() }
    };
    for (owner, policy) in [
        ("bg", PropagationPolicy::Background),
        ("fg", PropagationPolicy::Foreground),
        ("or", PropagationPolicy::Orphan),
    ] {
        let o = cms
            .create(&PostParams::default(), &cm(owner, &[]))
            .await
            .unwrap();
        pods.create(
            &PostParams::default(),
            &owned_pod(&format!("{owner}-child"), &o),
        )
        .await
        .unwrap();
        let dp = DeleteParams {
            propagation_policy: Some(policy),
            ..Default::default()
        };
        cms.delete(owner, &dp).await.unwrap();
    }
    eventually(
        Duration::from_secs(5),
        "background dependents deleted",
        || async { (!exists("bg-child").await).then_some(()) },
    )
    .await;
    eventually(
        Duration::from_secs(5),
        "foreground owner and dependents deleted",
        || async {
            (!exists("fg-child").await && cms.get_opt("fg").await.unwrap().is_none()).then_some(())
        },
    )
    .await;
    let orphan = pods.get("or-child").await.unwrap();
    assert!(
        orphan
            .metadata
            .owner_references
            .unwrap_or_default()
            .is_empty()
    );
    cluster.shutdown().await;
}

#[tokio::test]
async fn foreground_deletion_waits_for_dependents() {
    let cluster = start().await;
    let c = client(&cluster);
    let cms: Api<ConfigMap> = Api::namespaced(c.clone(), "default");
    let pods: Api<Pod> = Api::namespaced(c, "default");
    let owner = cms
        .create(&PostParams::default(), &cm("owner", &[]))
        .await
        .unwrap();
    let mut child = owned_pod("child", &owner);
    child.metadata.finalizers = Some(vec!["example.com/hold".into()]);
    pods.create(&PostParams::default(), &child).await.unwrap();
    let dp = DeleteParams {
        propagation_policy: Some(PropagationPolicy::Foreground),
        ..Default::default()
    };
    cms.delete("owner", &dp).await.unwrap();
    // The dependent is held by its finalizer, so the owner waits.
    let waiting = eventually(
        Duration::from_secs(5),
        "child marked for deletion",
        || async {
            pods.get("child")
                .await
                .ok()
                .filter(|p| p.metadata.deletion_timestamp.is_some())
        },
    )
    .await;
    assert!(
        waiting
            .finalizers()
            .contains(&"example.com/hold".to_string())
    );
    let held_owner = cms.get("owner").await.unwrap();
    assert!(
        held_owner
            .finalizers()
            .contains(&"foregroundDeletion".to_string())
    );
    pods.patch(
        "child",
        &PatchParams::default(),
        &Patch::Merge(json!({"metadata": {"finalizers": null}})),
    )
    .await
    .unwrap();
    eventually(Duration::from_secs(5), "owner deleted", || async {
        cms.get_opt("owner").await.unwrap().is_none().then_some(())
    })
    .await;
    cluster.shutdown().await;
}

#[tokio::test]
async fn namespace_deletion_removes_its_objects() {
    let cluster = start().await;
    let c = client(&cluster);
    let namespaces: Api<Namespace> = Api::all(c.clone());
    namespaces
        .create(
            &PostParams::default(),
            &serde_json::from_value(json!({"metadata": {"name": "gone"}})).unwrap(),
        )
        .await
        .unwrap();
    let cms: Api<ConfigMap> = Api::namespaced(c, "gone");
    cms.create(&PostParams::default(), &cm("x", &[]))
        .await
        .unwrap();
    namespaces
        .delete("gone", &DeleteParams::default())
        .await
        .unwrap();
    eventually(
        Duration::from_secs(5),
        "namespace contents deleted",
        || async { cms.get_opt("x").await.unwrap().is_none().then_some(()) },
    )
    .await;
    cluster.shutdown().await;
}

#[tokio::test]
async fn events_k8s_io_and_core_events_share_storage() {
    let cluster = start().await;
    let body = json!({
        "apiVersion": "events.k8s.io/v1", "kind": "Event",
        "metadata": {"name": "e1"},
        "eventTime": "2026-01-01T00:00:00.000000Z",
        "reportingController": "tipoff.dev/operator", "reportingInstance": "op-1",
        "action": "Reconcile", "reason": "PhaseStarted", "type": "Normal",
        "note": "phase 1 started",
        "regarding": {"apiVersion": "tipoff.dev/v1alpha1", "kind": "PipelineRun", "name": "run", "namespace": "default"},
    });
    let (code, created) = raw(
        &cluster,
        "POST",
        "/apis/events.k8s.io/v1/namespaces/default/events",
        Some(&body),
        "application/json",
    )
    .await;
    assert_eq!(code, 201, "{created}");
    assert_eq!(created["note"], "phase 1 started");
    assert_eq!(created["regarding"]["name"], "run");
    let (code, core) = get_json(&cluster, "/api/v1/namespaces/default/events/e1").await;
    assert_eq!(code, 200);
    assert_eq!(core["apiVersion"], "v1");
    assert_eq!(core["message"], "phase 1 started");
    assert_eq!(core["involvedObject"]["kind"], "PipelineRun");
    assert_eq!(core["source"]["component"], "tipoff.dev/operator");
    let (_, listed) = get_json(
        &cluster,
        "/api/v1/namespaces/default/events?fieldSelector=involvedObject.name%3Drun",
    )
    .await;
    assert_eq!(listed["items"].as_array().map(Vec::len), Some(1));
    cluster.shutdown().await;
}

#[tokio::test]
async fn leases_support_optimistic_renewal() {
    use k8s_openapi::api::coordination::v1::Lease;
    let cluster = start().await;
    let leases: Api<Lease> = Api::namespaced(client(&cluster), "default");
    let lease: Lease = serde_json::from_value(json!({"metadata": {"name": "tipoff-operator"},
        "spec": {"holderIdentity": "a", "leaseDurationSeconds": 15}}))
    .unwrap();
    let mut held = leases.create(&PostParams::default(), &lease).await.unwrap();
    let stale = held.clone();
    held.spec.as_mut().unwrap().holder_identity = Some("a".into());
    held.spec.as_mut().unwrap().lease_transitions = Some(1);
    leases
        .replace("tipoff-operator", &PostParams::default(), &held)
        .await
        .unwrap();
    let mut other = stale;
    other.spec.as_mut().unwrap().holder_identity = Some("b".into());
    let status = api_error(
        leases
            .replace("tipoff-operator", &PostParams::default(), &other)
            .await
            .unwrap_err(),
    );
    assert_eq!(status.code, 409);
    cluster.shutdown().await;
}

#[tokio::test]
async fn kube_runtime_finalizer_helper_adds_and_removes_its_finalizer() {
    use kube::runtime::controller::Action;
    use kube::runtime::finalizer::{Event, finalizer};
    use std::sync::Arc;
    let cluster = start().await;
    let c = client(&cluster);
    let ar = install_widgets(&c).await;
    let widgets: Api<DynamicObject> = Api::namespaced_with(c, "default", &ar);
    widgets
        .create(&PostParams::default(), &widget("fin", 1))
        .await
        .unwrap();
    let run = |obj: DynamicObject| {
        let widgets = widgets.clone();
        async move {
            finalizer(
                &widgets,
                "example.com/cleanup",
                Arc::new(obj),
                |event| async move {
                    match event {
                        Event::Apply(_) | Event::Cleanup(_) => {
                            Ok::<_, kube::Error>(Action::await_change())
                        }
                    }
                },
            )
            .await
        }
    };
    // First pass adds the finalizer.
    run(widgets.get("fin").await.unwrap()).await.unwrap();
    let with = widgets.get("fin").await.unwrap();
    assert_eq!(with.finalizers(), ["example.com/cleanup"]);
    run(with).await.unwrap();
    widgets
        .delete("fin", &DeleteParams::default())
        .await
        .unwrap();
    let deleting = widgets.get("fin").await.unwrap();
    assert!(deleting.metadata.deletion_timestamp.is_some());
    // Cleanup removes the finalizer and the object goes.
    run(deleting).await.unwrap();
    assert!(widgets.get_opt("fin").await.unwrap().is_none());
    cluster.shutdown().await;
}

#[tokio::test]
async fn partial_object_metadata_for_get_list_and_metadata_watcher() {
    use futures::{StreamExt, TryStreamExt};
    use kube::core::PartialObjectMeta;
    use kube::runtime::{WatchStreamExt, watcher};
    let cluster = start().await;
    let cms: Api<ConfigMap> = Api::namespaced(client(&cluster), "default");
    cms.create(&PostParams::default(), &cm("meta", &[("a", "b")]))
        .await
        .unwrap();
    let got = cms.get_metadata("meta").await.unwrap();
    assert_eq!(
        got.types.as_ref().map(|t| t.kind.as_str()),
        Some("PartialObjectMetadata")
    );
    assert_eq!(got.labels().get("a").map(String::as_str), Some("b"));
    let listed = cms.list_metadata(&ListParams::default()).await.unwrap();
    assert_eq!(listed.items.len(), 1);
    let (_, raw_list) = raw(
        &cluster,
        "GET",
        "/api/v1/namespaces/default/configmaps",
        None,
        "application/json;as=PartialObjectMetadataList;g=meta.k8s.io;v=v1",
    )
    .await;
    assert_eq!(raw_list["kind"], "PartialObjectMetadataList");
    assert!(raw_list["items"][0].get("data").is_none());
    let metas: Api<PartialObjectMeta<ConfigMap>> = Api::namespaced(client(&cluster), "default");
    let mut stream = watcher(metas, watcher::Config::default())
        .applied_objects()
        .boxed();
    let first = tokio::time::timeout(Duration::from_secs(10), stream.try_next())
        .await
        .unwrap()
        .unwrap()
        .unwrap();
    assert_eq!(first.name_any(), "meta");
    cluster.shutdown().await;
}

#[tokio::test]
async fn reapplying_a_job_without_server_defaults_is_a_no_op() {
    use k8s_openapi::api::batch::v1::Job;
    let cluster = start().await;
    let jobs: Api<Job> = Api::namespaced(client(&cluster), "default");
    let job = json!({"apiVersion": "batch/v1", "kind": "Job", "metadata": {"name": "applied", "labels": {"app": "x"}},
        "spec": {"template": {"spec": {"restartPolicy": "Never",
            "containers": [{"name": "main", "image": "unmapped/image", "args": ["run"]}]}}}});
    let pp = PatchParams::apply("tipoff-operator").force();
    let first = jobs
        .patch("applied", &pp, &Patch::Apply(&job))
        .await
        .unwrap();
    let spec = first.spec.clone().unwrap();
    assert_eq!(spec.backoff_limit, Some(6));
    assert!(spec.selector.is_some());
    let container = &spec.template.spec.as_ref().unwrap().containers[0];
    assert_eq!(
        container.termination_message_path.as_deref(),
        Some("/dev/termination-log")
    );
    let second = jobs
        .patch("applied", &pp, &Patch::Apply(&job))
        .await
        .unwrap();
    assert_eq!(second.metadata.generation, Some(1));
    assert_eq!(second.spec, first.spec);
    cluster.shutdown().await;
}

#[tokio::test]
async fn job_template_is_immutable() {
    use k8s_openapi::api::batch::v1::Job;
    let cluster = start().await;
    let jobs: Api<Job> = Api::namespaced(client(&cluster), "default");
    let job: Job = serde_json::from_value(json!({"metadata": {"name": "fixed"},
        "spec": {"template": {"spec": {"restartPolicy": "Never",
            "containers": [{"name": "main", "image": "unmapped/image:1"}]}}}}))
    .unwrap();
    jobs.create(&PostParams::default(), &job).await.unwrap();
    let patch = json!({"spec": {"template": {"spec": {"containers": [{"name": "main", "image": "unmapped/image:2"}]}}}});
    let status = api_error(
        jobs.patch("fixed", &PatchParams::default(), &Patch::Strategic(patch))
            .await
            .unwrap_err(),
    );
    assert_eq!((status.code, status.reason.as_str()), (422, "Invalid"));
    assert_eq!(
        status.message,
        r#"Job.batch "fixed" is invalid: spec.template: Invalid value: "object": field is immutable"#
    );
    // Labels can still change.
    jobs.patch(
        "fixed",
        &PatchParams::default(),
        &Patch::Merge(json!({"metadata": {"labels": {"a": "b"}}})),
    )
    .await
    .unwrap();
    cluster.shutdown().await;
}
