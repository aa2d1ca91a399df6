//! The upstream client under faults: API keys never reach a log line or a result, and
//! `Retry-After` is honoured in both of its forms.

#![allow(clippy::unwrap_used, clippy::expect_used)] // test code: a panic is a test failure

mod support;

use std::sync::Arc;
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::{Duration, Instant, SystemTime};

use axum::http::{HeaderMap, HeaderValue, StatusCode};
use serde_json::json;
use support::*;
use tipoff_crds::Mode;
use tipoff_processors::upstream::{Auth, RetryPolicy, Upstream};

/// An odds key that appears nowhere else, so finding it anywhere is a leak.
const SECRET: &str = "odds-secret-7f3a9c2e";

struct Ran {
    code: Option<i32>,
    output: String,
    result: String,
}

/// Runs the `tipoff-processor` binary with the odds key in its key file.
async fn run_bin(w: &World, processor: &str, upstream: &str) -> Ran {
    let date = busy_date();
    let result = w.dir.path().join(format!("{processor}.result"));
    let cfg = w.config();
    let out = tokio::process::Command::new(env!("CARGO_BIN_EXE_tipoff-processor"))
        .args([
            "run",
            processor,
            "--date",
            &date.to_string(),
            "--mode",
            "production",
        ])
        .env("TIPOFF_RESULT_PATH", &result)
        .env("TIPOFF_WAREHOUSE_URL", cfg.warehouse_url.unwrap())
        .env("TIPOFF_STORAGE_URL", cfg.storage_url.unwrap())
        .env("TIPOFF_UPSTREAM_URL", upstream)
        .env("TIPOFF_UPSTREAM_API_KEY_FILE", &w.key_file)
        .env("TIPOFF_UPSTREAM_TIMEOUT_SECS", "1")
        .env("TIPOFF_UPSTREAM_MAX_ATTEMPTS", "2")
        .env("TIPOFF_UPSTREAM_BACKOFF_MS", "10")
        .output()
        .await
        .unwrap();
    Ran {
        code: out.status.code(),
        output: format!(
            "{}\n{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        ),
        result: std::fs::read_to_string(&result).unwrap_or_default(),
    }
}

fn assert_no_key(what: &str, ran: &Ran) {
    assert_eq!(ran.code, Some(75), "{what}: {}", ran.output);
    // The failure is reported (so the assertion below is not vacuous) ...
    assert!(
        ran.output.contains("GET /odds-api/"),
        "{what}: {}",
        ran.output
    );
    // ... and neither the log nor the result (which becomes Pod and run status) has the key.
    for (name, text) in [("output", &ran.output), ("result", &ran.result)] {
        assert!(
            !text.contains(SECRET) && !text.contains("apiKey=odds"),
            "{what}: the API key leaked into the {name}:\n{text}"
        );
    }
    tipoff_crds::ProcessorResult::parse(&ran.result).unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_odds_api_key_never_reaches_logs_or_results_under_network_faults() {
    let date = busy_date();
    let w = World::start(next_day(date)).await;
    w.add_key(SECRET).await;
    std::fs::write(&w.key_file, format!("{SECRET}\n")).unwrap();
    w.ok("scrape-schedule", date, Mode::Production).await;

    // A slow upstream: every odds answer comes after the 1 s timeout.
    w.set_faults(json!({ "odds": { "delay_ms": 2500 } })).await;
    for p in ["scrape-player-props", "scrape-game-lines"] {
        let ran = run_bin(&w, p, &w.base).await;
        assert_no_key(&format!("{p} against a slow upstream"), &ran);
    }

    // An upstream that refuses connections.
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let closed = format!("http://127.0.0.1:{port}");
    for p in ["scrape-player-props", "scrape-game-lines"] {
        let ran = run_bin(&w, p, &closed).await;
        assert_no_key(&format!("{p} against a closed port"), &ran);
    }
}

/// Serves `/x`: the first request gets `status` with `Retry-After: <retry_after()>`, later
/// ones 200.
async fn flaky_server(status: StatusCode, retry_after: fn() -> String) -> (String, Arc<AtomicU32>) {
    let hits = Arc::new(AtomicU32::new(0));
    let h = Arc::clone(&hits);
    let app = axum::Router::new().route(
        "/x",
        axum::routing::get(move || {
            let h = Arc::clone(&h);
            async move {
                let mut headers = HeaderMap::new();
                if h.fetch_add(1, Ordering::SeqCst) == 0 {
                    headers.insert(
                        "retry-after",
                        HeaderValue::from_str(&retry_after()).unwrap(),
                    );
                    (status, headers, "busy")
                } else {
                    (StatusCode::OK, headers, "ok")
                }
            }
        }),
    );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let base = format!("http://{}", listener.local_addr().unwrap());
    tokio::spawn(async move { axum::serve(listener, app).await });
    (base, hits)
}

fn quick_policy() -> RetryPolicy {
    RetryPolicy {
        base_backoff: Duration::from_millis(1),
        max_backoff: Duration::from_millis(5),
        max_retry_after: Duration::from_secs(10),
        timeout: Duration::from_secs(5),
        ..RetryPolicy::default()
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn retry_after_as_an_http_date_is_honoured() {
    // Three seconds ahead, written with one-second resolution: at least two seconds' wait.
    let (base, hits) = flaky_server(StatusCode::TOO_MANY_REQUESTS, || {
        httpdate::fmt_http_date(SystemTime::now() + Duration::from_secs(3))
    })
    .await;
    let up = Upstream::new(&base, None, quick_policy()).unwrap();
    let started = Instant::now();
    let f = up.get("/x", Auth::None).await.unwrap();
    let waited = started.elapsed();
    assert_eq!((f.status, hits.load(Ordering::SeqCst)), (200, 2));
    assert!(
        waited >= Duration::from_secs(2),
        "waited only {waited:?} for a Retry-After date 3 s ahead"
    );
    assert!(waited < Duration::from_secs(6), "waited {waited:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn retry_after_in_seconds_and_dates_in_the_past_still_work() {
    let (base, _) = flaky_server(StatusCode::SERVICE_UNAVAILABLE, || "1".to_owned()).await;
    let up = Upstream::new(&base, None, quick_policy()).unwrap();
    let started = Instant::now();
    assert_eq!(up.get("/x", Auth::None).await.unwrap().status, 200);
    assert!(started.elapsed() >= Duration::from_secs(1));

    let (base, _) = flaky_server(StatusCode::SERVICE_UNAVAILABLE, || {
        httpdate::fmt_http_date(SystemTime::now() - Duration::from_secs(60))
    })
    .await;
    let up = Upstream::new(&base, None, quick_policy()).unwrap();
    let started = Instant::now();
    assert_eq!(up.get("/x", Auth::None).await.unwrap().status, 200);
    assert!(started.elapsed() < Duration::from_secs(1));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_body_over_the_size_limit_is_refused_as_bad_input() {
    let app = axum::Router::new()
        .route("/big", axum::routing::get(|| async { vec![b'x'; 2 << 20] }))
        .route(
            "/fits",
            axum::routing::get(|| async { vec![b'x'; 1 << 20] }),
        );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let base = format!("http://{}", listener.local_addr().unwrap());
    tokio::spawn(async move { axum::serve(listener, app).await });
    let policy = RetryPolicy {
        max_body_bytes: 1 << 20,
        ..quick_policy()
    };
    let up = Upstream::new(&base, None, policy).unwrap();
    assert_eq!(
        up.get("/fits", Auth::None).await.unwrap().body.len(),
        1 << 20
    );
    match up.get("/big", Auth::None).await {
        Err(tipoff_processors::contract::Failure::Permanent(m)) => {
            assert!(m.contains("over the 1048576-byte limit"), "{m}");
        }
        other => panic!("a 2 MiB body passed a 1 MiB limit: {other:?}"),
    }
}

/// A key directory (the operator's mounted Secret volume) holds one key per service: box
/// scores send the balldontlie key, odds requests the Odds API key.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn each_service_sends_its_own_key_from_a_key_directory() {
    use axum::extract::Query;
    use std::collections::HashMap;
    let app = axum::Router::new()
        .route(
            "/bdl",
            axum::routing::get(|headers: HeaderMap| async move {
                headers
                    .get("authorization")
                    .and_then(|v| v.to_str().ok())
                    .unwrap_or_default()
                    .to_owned()
            }),
        )
        .route(
            "/odds",
            axum::routing::get(|Query(q): Query<HashMap<String, String>>| async move {
                q.get("apiKey").cloned().unwrap_or_default()
            }),
        );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let base = format!("http://{}", listener.local_addr().unwrap());
    tokio::spawn(async move { axum::serve(listener, app).await });
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("balldontlie"), "bdl-key\n").unwrap();
    std::fs::write(dir.path().join("odds"), "odds-key\n").unwrap();
    let up = Upstream::new(&base, Some(dir.path().to_owned()), quick_policy()).unwrap();
    let bdl = up.get("/bdl", Auth::Header).await.unwrap();
    let odds = up.get("/odds", Auth::Query).await.unwrap();
    assert_eq!(&bdl.body[..], b"bdl-key");
    assert_eq!(&odds.body[..], b"odds-key");
}
