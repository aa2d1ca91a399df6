//! Watch semantics with the real `kube` client and on the wire: events from
//! a resourceVersion, bookmarks, 410 Gone for expired versions, timeouts,
//! selectors, and a kube-runtime watcher that survives dropped watches and
//! 410 by re-listing, over 1,000 objects.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::collections::BTreeMap;
use std::time::Duration;

use common::*;
use futures::{StreamExt, TryStreamExt};
use k8s_openapi::api::core::v1::ConfigMap;
use kube::api::{
    DeleteParams, ListParams, Patch, PatchParams, PostParams, WatchEvent, WatchParams,
};
use kube::runtime::watcher;
use kube::{Api, ResourceExt};
use serde_json::json;
use tipoff_devcluster::Config;

fn cm(name: &str) -> ConfigMap {
    ConfigMap {
        metadata: kube::api::ObjectMeta {
            name: Some(name.into()),
            ..Default::default()
        },
        data: Some(BTreeMap::from([("k".to_string(), "v".to_string())])),
        ..Default::default()
    }
}

#[tokio::test]
async fn watch_from_resource_version_sees_added_modified_deleted() {
    let cluster = start().await;
    let cms: Api<ConfigMap> = Api::namespaced(client(&cluster), "default");
    let before = cms
        .create(&PostParams::default(), &cm("before"))
        .await
        .unwrap();
    let rv = before.resource_version().unwrap();
    let wp = WatchParams::default().timeout(10);
    let mut stream = cms.watch(&wp, &rv).await.unwrap().boxed();
    cms.create(&PostParams::default(), &cm("a")).await.unwrap();
    cms.patch(
        "a",
        &PatchParams::default(),
        &Patch::Merge(json!({"data": {"k": "w"}})),
    )
    .await
    .unwrap();
    cms.delete("a", &DeleteParams::default()).await.unwrap();
    let mut seen = Vec::new();
    while seen.len() < 3 {
        match tokio::time::timeout(Duration::from_secs(5), stream.try_next())
            .await
            .unwrap()
            .unwrap()
        {
            Some(WatchEvent::Added(o)) => seen.push(format!("ADDED {}", o.name_any())),
            Some(WatchEvent::Modified(o)) => seen.push(format!(
                "MODIFIED {} {}",
                o.name_any(),
                o.data.unwrap()["k"]
            )),
            Some(WatchEvent::Deleted(o)) => seen.push(format!("DELETED {}", o.name_any())),
            Some(WatchEvent::Bookmark(_)) => {}
            Some(WatchEvent::Error(e)) => panic!("watch error {e:?}"),
            None => panic!("stream ended early"),
        }
    }
    assert_eq!(seen, ["ADDED a", "MODIFIED a w", "DELETED a"]);
    cluster.shutdown().await;
}

#[tokio::test]
async fn watch_with_label_selector_translates_transitions() {
    let cluster = start().await;
    let cms: Api<ConfigMap> = Api::namespaced(client(&cluster), "default");
    let start_rv = cms
        .list(&ListParams::default())
        .await
        .unwrap()
        .metadata
        .resource_version
        .unwrap();
    let wp = WatchParams::default().labels("team=a").timeout(10);
    let mut stream = cms.watch(&wp, &start_rv).await.unwrap().boxed();
    cms.create(&PostParams::default(), &cm("x")).await.unwrap();
    let label = |v: Option<&str>| Patch::Merge(json!({"metadata": {"labels": {"team": v}}}));
    cms.patch("x", &PatchParams::default(), &label(Some("a")))
        .await
        .unwrap();
    cms.patch("x", &PatchParams::default(), &label(Some("b")))
        .await
        .unwrap();
    let mut seen = Vec::new();
    while seen.len() < 2 {
        match tokio::time::timeout(Duration::from_secs(5), stream.try_next())
            .await
            .unwrap()
            .unwrap()
        {
            Some(WatchEvent::Added(_)) => seen.push("ADDED"),
            Some(WatchEvent::Modified(_)) => seen.push("MODIFIED"),
            Some(WatchEvent::Deleted(_)) => seen.push("DELETED"),
            Some(_) => {}
            None => panic!("stream ended early"),
        }
    }
    assert_eq!(seen, ["ADDED", "DELETED"]);
    cluster.shutdown().await;
}

#[tokio::test]
async fn bookmarks_and_timeout_on_the_wire() {
    let cluster = start_with(Config {
        bookmark_interval: Duration::from_millis(100),
        ..Config::default()
    })
    .await;
    let rv = cluster.store().current_rv();
    let path = format!(
        "/api/v1/namespaces/default/configmaps?watch=1&resourceVersion={rv}&allowWatchBookmarks=true&timeoutSeconds=1"
    );
    let started = std::time::Instant::now();
    let (code, body) = raw_text(&cluster, "GET", &path, None, "application/json").await;
    assert_eq!(code, 200);
    assert!(
        started.elapsed() >= Duration::from_millis(900),
        "stream ended before timeoutSeconds"
    );
    assert!(
        started.elapsed() < Duration::from_secs(5),
        "stream outlived timeoutSeconds"
    );
    let events: Vec<serde_json::Value> = body
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert!(!events.is_empty());
    for e in &events {
        assert_eq!(e["type"], "BOOKMARK");
        assert_eq!(e["object"]["kind"], "ConfigMap");
        assert_eq!(e["object"]["metadata"]["resourceVersion"], rv.to_string());
    }
    cluster.shutdown().await;
}

#[tokio::test]
async fn expired_resource_version_is_410_gone() {
    let cluster = start_with(Config {
        watch_window: 5,
        ..Config::default()
    })
    .await;
    let cms: Api<ConfigMap> = Api::namespaced(client(&cluster), "default");
    let first = cms
        .create(&PostParams::default(), &cm("first"))
        .await
        .unwrap();
    for i in 0..10 {
        cms.create(&PostParams::default(), &cm(&format!("n{i}")))
            .await
            .unwrap();
    }
    let old = first.resource_version().unwrap();
    let mut stream = cms
        .watch(&WatchParams::default().timeout(5), &old)
        .await
        .unwrap()
        .boxed();
    match tokio::time::timeout(Duration::from_secs(5), stream.try_next())
        .await
        .unwrap()
        .unwrap()
    {
        Some(WatchEvent::Error(e)) => {
            assert_eq!(e.code, 410);
            assert_eq!(e.reason, "Expired");
        }
        other => panic!("expected a 410 error event, got {other:?}"),
    }
    // A list at an exact, compacted resourceVersion is 410 too.
    let path = format!(
        "/api/v1/namespaces/default/configmaps?resourceVersion={old}&resourceVersionMatch=Exact"
    );
    let (code, body) = get_json(&cluster, &path).await;
    assert_eq!(code, 410);
    assert_eq!(body["reason"], "Expired");
    cluster.shutdown().await;
}

#[tokio::test]
async fn watch_without_version_starts_with_current_objects() {
    let cluster = start().await;
    let cms: Api<ConfigMap> = Api::namespaced(client(&cluster), "default");
    cms.create(&PostParams::default(), &cm("existing"))
        .await
        .unwrap();
    let mut stream = cms
        .watch(&WatchParams::default().timeout(5), "0")
        .await
        .unwrap()
        .boxed();
    match tokio::time::timeout(Duration::from_secs(5), stream.try_next())
        .await
        .unwrap()
        .unwrap()
    {
        Some(WatchEvent::Added(o)) => assert_eq!(o.name_any(), "existing"),
        other => panic!("expected ADDED, got {other:?}"),
    }
    cluster.shutdown().await;
}

/// The set of names a kube-runtime watcher's stream currently believes exist.
async fn apply_event(
    names: &mut std::collections::BTreeSet<String>,
    pending: &mut Option<std::collections::BTreeSet<String>>,
    event: watcher::Event<ConfigMap>,
) -> u32 {
    match event {
        watcher::Event::Init => {
            *pending = Some(Default::default());
            1
        }
        watcher::Event::InitApply(o) => {
            if let Some(p) = pending.as_mut() {
                p.insert(o.name_any());
            }
            0
        }
        watcher::Event::InitDone => {
            *names = pending.take().unwrap_or_default();
            0
        }
        watcher::Event::Apply(o) => {
            names.insert(o.name_any());
            0
        }
        watcher::Event::Delete(o) => {
            names.remove(&o.name_any());
            0
        }
    }
}

#[tokio::test]
async fn runtime_watcher_survives_dropped_watches_and_410_over_1000_objects() {
    let cluster = start().await;
    let cms: Api<ConfigMap> = Api::namespaced(client(&cluster), "default");
    for i in 0..1000 {
        cms.create(&PostParams::default(), &cm(&format!("obj-{i:04}")))
            .await
            .unwrap();
    }
    let mut stream = watcher(cms.clone(), watcher::Config::default()).boxed();
    let mut names = std::collections::BTreeSet::new();
    let mut pending = None;
    let mut inits = 0;
    let mut gone_errors = 0;
    let mut next = async |names: &mut std::collections::BTreeSet<String>,
                          pending: &mut Option<_>| {
        loop {
            let item = tokio::time::timeout(Duration::from_secs(10), stream.next())
                .await
                .expect("watcher event in time")
                .expect("watcher stream ended");
            match item {
                Ok(event) => return apply_event(names, pending, event).await,
                // kube-runtime surfaces the 410 once, then re-lists.
                Err(watcher::Error::WatchError(status)) if status.code == 410 => gone_errors += 1,
                Err(other) => panic!("unexpected watcher error: {other:?}"),
            }
        }
    };
    while names.len() < 1000 {
        inits += next(&mut names, &mut pending).await;
    }
    assert_eq!(inits, 1);

    // 1. Drop every watch: the watcher re-watches from its last version.
    cluster.faults().drop_watches();
    cms.create(&PostParams::default(), &cm("after-drop"))
        .await
        .unwrap();
    while !names.contains("after-drop") {
        inits += next(&mut names, &mut pending).await;
    }

    // 2. Hold events back, delete an object, compact, then drop the watch:
    //    the re-watch gets 410 and the watcher re-lists, catching up on a
    //    deletion it never saw as an event.
    cluster.faults().set_watch_delay(Duration::from_secs(60));
    cms.delete("obj-0000", &DeleteParams::default())
        .await
        .unwrap();
    cluster.faults().compact();
    cluster.faults().set_watch_delay(Duration::ZERO);
    cluster.faults().drop_watches();
    let inits_before = inits;
    while names.contains("obj-0000") || pending.is_some() || inits == inits_before {
        inits += next(&mut names, &mut pending).await;
    }
    assert!(inits > inits_before, "watcher re-listed after 410");
    let _ = next;
    assert_eq!(gone_errors, 1, "the re-watch was answered with 410 Gone");
    assert_eq!(names.len(), 1000);
    cluster.shutdown().await;
}

#[derive(Debug, thiserror::Error)]
#[error("never")]
struct Never;

#[tokio::test]
async fn controller_reconciles_1000_objects_and_new_ones() {
    use kube::runtime::Controller;
    use kube::runtime::controller::Action;
    use std::collections::HashSet;
    use std::sync::{Arc, Mutex};

    let cluster = start().await;
    let cms: Api<ConfigMap> = Api::namespaced(client(&cluster), "default");
    for i in 0..1000 {
        cms.create(&PostParams::default(), &cm(&format!("obj-{i:04}")))
            .await
            .unwrap();
    }
    let seen: Arc<Mutex<HashSet<String>>> = Arc::default();
    let controller = Controller::new(cms.clone(), watcher::Config::default())
        .run(
            |obj: Arc<ConfigMap>, seen: Arc<Arc<Mutex<HashSet<String>>>>| async move {
                seen.lock().unwrap().insert(obj.name_any());
                Ok::<_, Never>(Action::await_change())
            },
            |_, _, _| Action::await_change(),
            Arc::new(seen.clone()),
        )
        .for_each(|_| async {});
    let handle = tokio::spawn(controller);
    eventually(Duration::from_secs(30), "1000 reconciles", || async {
        (seen.lock().unwrap().len() == 1000).then_some(())
    })
    .await;
    cms.create(&PostParams::default(), &cm("late"))
        .await
        .unwrap();
    eventually(
        Duration::from_secs(10),
        "reconcile of a new object",
        || async { seen.lock().unwrap().contains("late").then_some(()) },
    )
    .await;
    handle.abort();
    cluster.shutdown().await;
}

#[tokio::test]
async fn streaming_list_watcher_gets_initial_events_and_the_end_bookmark() {
    let cluster = start().await;
    let cms: Api<ConfigMap> = Api::namespaced(client(&cluster), "default");
    for i in 0..20 {
        cms.create(&PostParams::default(), &cm(&format!("s-{i:02}")))
            .await
            .unwrap();
    }
    let mut stream = watcher(cms.clone(), watcher::Config::default().streaming_lists()).boxed();
    let mut names = std::collections::BTreeSet::new();
    let mut pending = None;
    // InitDone only arrives after the initial-events-end bookmark.
    loop {
        let event = tokio::time::timeout(Duration::from_secs(10), stream.try_next())
            .await
            .unwrap()
            .unwrap()
            .unwrap();
        let done = matches!(event, watcher::Event::InitDone);
        apply_event(&mut names, &mut pending, event).await;
        if done {
            break;
        }
    }
    assert_eq!(names.len(), 20);
    cms.create(&PostParams::default(), &cm("later"))
        .await
        .unwrap();
    while !names.contains("later") {
        let event = tokio::time::timeout(Duration::from_secs(10), stream.try_next())
            .await
            .unwrap()
            .unwrap()
            .unwrap();
        apply_event(&mut names, &mut pending, event).await;
    }
    cluster.shutdown().await;
}
