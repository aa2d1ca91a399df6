//! Shared helpers for the integration tests: starting a cluster, a kube
//! client for it, the Widget CRD, and polling with a deadline.

#![allow(dead_code, clippy::unwrap_used, clippy::expect_used)]

use std::future::Future;
use std::time::{Duration, Instant};

use kube::api::{ApiResource, DynamicObject, GroupVersionKind, PostParams};
use kube::{Api, Client};
use serde_json::Value;
use tipoff_devcluster::{Config, DevCluster, RunnerConfig};

pub const WIDGET_CRD: &str = include_str!("../fixtures/widget-crd.yaml");

/// Starts a cluster on an ephemeral port.
pub async fn start() -> DevCluster {
    start_with(Config::default()).await
}

/// Starts a cluster with a custom config (port forced to 0).
pub async fn start_with(config: Config) -> DevCluster {
    let _ = tracing_subscriber::fmt()
        .with_env_filter("warn")
        .with_test_writer()
        .try_init();
    DevCluster::start(Config { port: 0, ..config })
        .await
        .expect("start dev cluster")
}

/// Starts a cluster whose runner maps `busybox` (any tag) to `/bin/sh -c`.
pub async fn start_with_runner(yaml: &str) -> DevCluster {
    let runner = RunnerConfig::from_yaml(yaml).expect("runner config");
    start_with(Config {
        runner,
        ..Config::default()
    })
    .await
}

/// A kube client for the cluster.
pub fn client(cluster: &DevCluster) -> Client {
    // The workspace links both rustls providers; pick one, as every kube-client process must.
    let _ = rustls::crypto::ring::default_provider().install_default();
    let config = kube::Config::new(cluster.url().parse().expect("url"));
    Client::try_from(config).expect("client")
}

/// Creates the Widget CRD and waits until the resource is served.
pub async fn install_widgets(client: &Client) -> ApiResource {
    let crds: Api<k8s_openapi::apiextensions_apiserver::pkg::apis::apiextensions::v1::CustomResourceDefinition> =
        Api::all(client.clone());
    let crd = serde_yaml::from_str(WIDGET_CRD).expect("crd yaml");
    crds.create(&PostParams::default(), &crd)
        .await
        .expect("create crd");
    widget_resource()
}

/// The Widget resource.
pub fn widget_resource() -> ApiResource {
    ApiResource::from_gvk_with_plural(
        &GroupVersionKind::gvk("example.com", "v1", "Widget"),
        "widgets",
    )
}

/// A Widget object.
pub fn widget(name: &str, size: i64) -> DynamicObject {
    serde_json::from_value(serde_json::json!({
        "apiVersion": "example.com/v1",
        "kind": "Widget",
        "metadata": {"name": name},
        "spec": {"size": size},
    }))
    .expect("widget")
}

/// Polls `check` until it returns `Some`, failing after `timeout`.
pub async fn eventually<T, F, Fut>(timeout: Duration, what: &str, mut check: F) -> T
where
    F: FnMut() -> Fut,
    Fut: Future<Output = Option<T>>,
{
    let deadline = Instant::now() + timeout;
    loop {
        if let Some(value) = check().await {
            return value;
        }
        if Instant::now() > deadline {
            panic!("timed out after {timeout:?} waiting for {what}");
        }
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
}

/// Raw JSON GET against the server.
pub async fn get_json(cluster: &DevCluster, path: &str) -> (u16, Value) {
    raw(cluster, "GET", path, None, "application/json").await
}

/// A raw HTTP request without a client library (for wire-level checks).
pub async fn raw(
    cluster: &DevCluster,
    method: &str,
    path: &str,
    body: Option<&Value>,
    accept: &str,
) -> (u16, Value) {
    let (code, text) = raw_text(cluster, method, path, body, accept).await;
    (
        code,
        serde_json::from_str(&text).unwrap_or(Value::String(text)),
    )
}

/// A raw HTTP/1.1 request returning status and body text.
pub async fn raw_text(
    cluster: &DevCluster,
    method: &str,
    path: &str,
    body: Option<&Value>,
    accept: &str,
) -> (u16, String) {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let mut stream = tokio::net::TcpStream::connect(cluster.addr())
        .await
        .expect("connect");
    let body = body.map(|b| b.to_string()).unwrap_or_default();
    let request = format!(
        "{method} {path} HTTP/1.1\r\nHost: localhost\r\nAccept: {accept}\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
        body.len()
    );
    stream.write_all(request.as_bytes()).await.expect("write");
    let mut response = Vec::new();
    stream.read_to_end(&mut response).await.expect("read");
    let text = String::from_utf8_lossy(&response).into_owned();
    let (head, rest) = text.split_once("\r\n\r\n").unwrap_or((&text, ""));
    let code: u16 = head
        .split_whitespace()
        .nth(1)
        .and_then(|c| c.parse().ok())
        .unwrap_or(0);
    let body = if head
        .to_ascii_lowercase()
        .contains("transfer-encoding: chunked")
    {
        dechunk(rest)
    } else {
        rest.to_string()
    };
    (code, body)
}

fn dechunk(mut input: &str) -> String {
    let mut out = String::new();
    while let Some((size, rest)) = input.split_once("\r\n") {
        let Ok(n) = usize::from_str_radix(size.trim(), 16) else {
            break;
        };
        if n == 0 || rest.len() < n {
            break;
        }
        out.push_str(&rest[..n]);
        input = rest[n..].trim_start_matches("\r\n");
    }
    out
}
