//! Benchmark (not a test): latency of get, create and status patch with
//! 10,000 stored objects, and of watch event delivery to 200 watchers,
//! through the real `kube` client on loopback.
//!
//! Run: `cargo run --release -p tipoff-devcluster --example bench_devcluster`
//! (`-- --objects N --watchers N` to change the sizes).

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::sync::OnceLock;
use std::time::{Duration, Instant};

use futures::{StreamExt, TryStreamExt};
use kube::api::{
    ApiResource, DynamicObject, GroupVersionKind, Patch, PatchParams, PostParams, WatchEvent,
    WatchParams,
};
use kube::{Api, Client};
use serde_json::json;
use tipoff_devcluster::{Config, DevCluster};

static START: OnceLock<Instant> = OnceLock::new();

fn micros_now() -> u64 {
    START.get_or_init(Instant::now).elapsed().as_micros() as u64
}

fn report(name: &str, mut samples: Vec<Duration>, target: Option<Duration>) {
    samples.sort();
    let pct = |p: f64| samples[((samples.len() as f64 - 1.0) * p).round() as usize];
    let (p50, p99) = (pct(0.50), pct(0.99));
    let verdict = match target {
        Some(t) if p99 <= t => format!("  (target p99 < {t:?}: met)"),
        Some(t) => format!("  (target p99 < {t:?}: MISSED)"),
        None => String::new(),
    };
    println!(
        "{name:<28} n={:<6} p50={:>9.3} ms  p99={:>9.3} ms  max={:>9.3} ms{verdict}",
        samples.len(),
        p50.as_secs_f64() * 1e3,
        p99.as_secs_f64() * 1e3,
        samples[samples.len() - 1].as_secs_f64() * 1e3,
    );
}

fn arg(name: &str, default: usize) -> usize {
    let args: Vec<String> = std::env::args().collect();
    args.iter()
        .position(|a| a == name)
        .and_then(|i| args.get(i + 1))
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

const CRD: &str = include_str!("../tests/fixtures/widget-crd.yaml");

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let objects = arg("--objects", 10_000);
    let watchers = arg("--watchers", 200);
    START.get_or_init(Instant::now);
    let cluster = DevCluster::start(Config {
        watch_window: 50_000,
        ..Config::default()
    })
    .await?;
    // The workspace links both rustls providers; pick one, as every kube-client process must.
    let _ = rustls::crypto::ring::default_provider().install_default();
    let client = Client::try_from(kube::Config::new(cluster.url().parse()?))?;
    let crds: Api<k8s_openapi::apiextensions_apiserver::pkg::apis::apiextensions::v1::CustomResourceDefinition> =
        Api::all(client.clone());
    crds.create(&PostParams::default(), &serde_yaml::from_str(CRD)?)
        .await?;
    let ar = ApiResource::from_gvk_with_plural(
        &GroupVersionKind::gvk("example.com", "v1", "Widget"),
        "widgets",
    );
    let widgets: Api<DynamicObject> = Api::namespaced_with(client.clone(), "default", &ar);
    let widget = |name: String| -> DynamicObject {
        serde_json::from_value(json!({"apiVersion": "example.com/v1", "kind": "Widget",
            "metadata": {"name": name}, "spec": {"size": 1, "color": "red"}}))
        .expect("widget")
    };
    println!(
        "tipoff-devcluster bench: {objects} stored custom resources (schema + CEL validated), {watchers} watchers, kube client over loopback"
    );

    let mut creates = Vec::with_capacity(objects);
    for i in 0..objects {
        let t = Instant::now();
        widgets
            .create(&PostParams::default(), &widget(format!("w-{i:05}")))
            .await?;
        creates.push(t.elapsed());
    }
    report("create", creates, Some(Duration::from_millis(5)));

    let mut gets = Vec::new();
    for i in 0..2_000 {
        let t = Instant::now();
        widgets
            .get(&format!("w-{:05}", (i * 7919) % objects))
            .await?;
        gets.push(t.elapsed());
    }
    report("get", gets, None);

    let mut patches = Vec::new();
    for i in 0..2_000 {
        let name = format!("w-{:05}", (i * 104_729) % objects);
        let t = Instant::now();
        widgets
            .patch_status(
                &name,
                &PatchParams::default(),
                &Patch::Merge(json!({"status": {"observedGeneration": i}})),
            )
            .await?;
        patches.push(t.elapsed());
    }
    report(
        "status patch (merge)",
        patches,
        Some(Duration::from_millis(5)),
    );

    // Watch delivery: `watchers` watches, 200 updates, latency from the
    // writer's send to each watcher's receipt.
    let updates = 200;
    let rv = widgets
        .list(&kube::api::ListParams::default().limit(1))
        .await?
        .metadata
        .resource_version
        .unwrap_or_default();
    let (tx, mut rx) = tokio::sync::mpsc::unbounded_channel::<Duration>();
    let mut tasks = Vec::new();
    for _ in 0..watchers {
        let widgets = widgets.clone();
        let tx = tx.clone();
        let rv = rv.clone();
        let stream = widgets
            .watch(&WatchParams::default().timeout(120), &rv)
            .await?;
        tasks.push(tokio::spawn(async move {
            let mut stream = stream.boxed();
            let mut seen = 0;
            while seen < updates {
                match stream.try_next().await {
                    Ok(Some(WatchEvent::Modified(o))) => {
                        let sent: u64 = o
                            .annotations()
                            .get("bench/sent")
                            .and_then(|s| s.parse().ok())
                            .unwrap_or(0);
                        let _ = tx.send(Duration::from_micros(micros_now().saturating_sub(sent)));
                        seen += 1;
                    }
                    Ok(Some(_)) => {}
                    _ => break,
                }
            }
        }));
    }
    drop(tx);
    for i in 0..updates {
        let patch = json!({"metadata": {"annotations": {"bench/sent": micros_now().to_string()}}});
        widgets
            .patch(
                &format!("w-{:05}", i % objects),
                &PatchParams::default(),
                &Patch::Merge(patch),
            )
            .await?;
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    let mut deliveries = Vec::new();
    while let Some(d) = rx.recv().await {
        deliveries.push(d);
    }
    for t in tasks {
        t.await?;
    }
    println!(
        "watch deliveries received: {} of {}",
        deliveries.len(),
        watchers * updates
    );
    report(
        "watch delivery (write->recv)",
        deliveries,
        Some(Duration::from_millis(10)),
    );
    cluster.shutdown().await;
    Ok(())
}

use kube::ResourceExt;
