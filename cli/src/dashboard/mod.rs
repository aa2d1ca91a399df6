//! `tipoff dashboard`: a local web page of the season, dates by phases (`docs/dashboard.md`).
//!
//! Like `kubectl proxy`, it serves on 127.0.0.1 with the user's kubeconfig, so the user's own
//! RBAC applies and nothing is exposed in the cluster. The page (hand-written HTML, CSS and JS
//! built into the binary) follows the cluster through server-sent events fed by watches
//! ([`source`]); the matrix is a pure function ([`matrix`]); a cell's drill-down is the CLI's
//! run tree ([`crate::view`]); the backfill dialog applies what [`crate::backfill::manifest`]
//! builds, and only after the user confirmed it.

pub mod matrix;
pub mod source;

use std::convert::Infallible;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use axum::Router;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::sse::{Event, KeepAlive, Sse};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use futures::Stream;
use k8s_openapi::api::core::v1::Event as KubeEvent;
use kube::ResourceExt;
use kube::api::{Api, ListParams};
use serde::{Deserialize, Serialize};
use serde_json::json;
use tipoff_crds::{Mode, Order, PipelineRun};
use tokio::net::TcpListener;

use crate::backfill;
use crate::cluster::{Cluster, parse_date};
use crate::error::{CliError, Result};
use crate::view;
use matrix::Expectation;
use source::{Source, Watches};

const INDEX_HTML: &str = include_str!("assets/index.html");
const APP_JS: &str = include_str!("assets/app.js");
const STYLE_CSS: &str = include_str!("assets/style.css");

/// The header every write must carry: a page of another origin cannot set it without a CORS
/// preflight, which this server never grants.
pub const WRITE_HEADER: &str = "x-tipoff-dashboard";

/// How the dashboard is served.
#[derive(Clone, Debug)]
pub struct Options {
    /// The port on 127.0.0.1 (0 picks a free one).
    pub port: u16,
    /// When a date's run should be finished (for Late); `None` shows nothing as Late.
    pub expectation: Option<Expectation>,
}

impl Options {
    /// Port `port`, runs expected done by 09:00 America/New_York the day after the game date.
    pub fn new(port: u16) -> Self {
        Self {
            port,
            expectation: Some(Expectation {
                expected_by: jiff::civil::Time::constant(9, 0, 0, 0),
                tz: jiff::tz::TimeZone::get("America/New_York").unwrap_or(jiff::tz::TimeZone::UTC),
            }),
        }
    }
}

struct App {
    cluster: Cluster,
    source: Source,
    expectation: Option<Expectation>,
    addr: SocketAddr,
}

/// A running dashboard.
pub struct Dashboard {
    /// Its address.
    pub addr: SocketAddr,
    server: tokio::task::JoinHandle<std::io::Result<()>>,
    watches: Watches,
}

impl Dashboard {
    /// The page's URL.
    pub fn url(&self) -> String {
        format!("http://{}/", self.addr)
    }

    /// Stops serving and watching.
    pub fn stop(&self) {
        self.server.abort();
        self.watches.abort();
    }
}

/// Binds 127.0.0.1:`port`, starts the watches and serves the page in the background.
pub async fn start(cluster: Cluster, options: Options) -> Result<Dashboard> {
    let listener = TcpListener::bind(("127.0.0.1", options.port))
        .await
        .map_err(|e| {
            CliError::Usage(format!(
                "cannot listen on 127.0.0.1:{}: {e}; pick another with --port (0 picks a free one)",
                options.port
            ))
        })?;
    let addr = listener
        .local_addr()
        .map_err(|e| CliError::Other(format!("reading the listening address: {e}")))?;
    let (source, watches) = Source::start(cluster.client.clone(), &cluster.namespace).await;
    source.ready().await;
    let app = Arc::new(App {
        cluster,
        source,
        expectation: options.expectation,
        addr,
    });
    let router = Router::new()
        .route("/", get(index))
        .route("/app.js", get(app_js))
        .route("/style.css", get(style_css))
        .route("/api/matrix", get(matrix_json))
        .route("/api/events", get(events))
        .route("/api/run/{name}", get(run_detail))
        .route("/api/backfill/preview", post(backfill_preview))
        .route("/api/backfill", post(backfill_create))
        .layer(axum::middleware::from_fn_with_state(
            app.clone(),
            only_local,
        ))
        .with_state(app);
    let server = tokio::spawn(async move { axum::serve(listener, router).await });
    Ok(Dashboard {
        addr,
        server,
        watches,
    })
}

/// `tipoff dashboard`: serves until interrupted; `open` opens the page in a browser.
pub async fn dashboard(cluster: Cluster, options: Options, open: bool) -> Result<()> {
    let namespace = cluster.namespace.clone();
    let d = start(cluster, options).await?;
    let url = d.url();
    println!("tipoff dashboard: {url} (namespace {namespace}; Ctrl-C to stop)");
    if open {
        open_browser(&url);
    }
    let Dashboard {
        mut server,
        watches,
        ..
    } = d;
    let result = tokio::select! {
        r = &mut server => match r {
            Ok(Ok(())) => Ok(()),
            Ok(Err(e)) => Err(CliError::Other(format!("serving the dashboard: {e}"))),
            Err(e) => Err(CliError::Other(format!("the dashboard server stopped: {e}"))),
        },
        _ = tokio::signal::ctrl_c() => {
            server.abort();
            Ok(())
        }
    };
    watches.abort();
    result
}

fn open_browser(url: &str) {
    let opener = if cfg!(target_os = "macos") {
        "open"
    } else {
        "xdg-open"
    };
    if let Err(e) = std::process::Command::new(opener).arg(url).spawn() {
        eprintln!("tipoff dashboard: could not run {opener} ({e}); open {url} yourself");
    }
}

/// Refuses requests whose Host is not this server's loopback address (DNS rebinding).
async fn only_local(
    State(app): State<Arc<App>>,
    request: axum::extract::Request,
    next: axum::middleware::Next,
) -> Response {
    let host = request
        .headers()
        .get(header::HOST)
        .and_then(|h| h.to_str().ok())
        .unwrap_or("");
    let port = app.addr.port();
    if host == format!("127.0.0.1:{port}") || host == format!("localhost:{port}") {
        next.run(request).await
    } else {
        (
            StatusCode::FORBIDDEN,
            format!("tipoff dashboard answers only http://127.0.0.1:{port}/"),
        )
            .into_response()
    }
}

fn asset(content_type: &'static str, body: &'static str) -> Response {
    (
        [
            (header::CONTENT_TYPE, content_type),
            (header::CACHE_CONTROL, "no-store"),
        ],
        body,
    )
        .into_response()
}

async fn index() -> Response {
    asset("text/html; charset=utf-8", INDEX_HTML)
}

async fn app_js() -> Response {
    asset("text/javascript; charset=utf-8", APP_JS)
}

async fn style_css() -> Response {
    asset("text/css; charset=utf-8", STYLE_CSS)
}

fn snapshot(app: &App) -> serde_json::Value {
    let (m, errors) = app
        .source
        .matrix(app.expectation.as_ref(), jiff::Timestamp::now());
    json!({ "matrix": m, "errors": errors })
}

async fn matrix_json(State(app): State<Arc<App>>) -> Response {
    axum::Json(snapshot(&app)).into_response()
}

/// Server-sent events: the whole matrix at once, then again after every change (changes
/// within 100 ms are sent once).
async fn events(
    State(app): State<Arc<App>>,
) -> Sse<impl Stream<Item = std::result::Result<Event, Infallible>>> {
    let changes = app.source.changes();
    let stream = futures::stream::unfold((app, changes, true), |(app, mut rx, first)| async move {
        if !first {
            rx.changed().await.ok()?;
            tokio::time::sleep(Duration::from_millis(100)).await;
            rx.borrow_and_update();
        } else {
            rx.borrow_and_update();
        }
        let data = snapshot(&app).to_string();
        Some((
            Ok(Event::default().event("matrix").data(data)),
            (app, rx, false),
        ))
    });
    Sse::new(stream).keep_alive(KeepAlive::default())
}

/// An error for the page: its status and a message to show as is.
struct PageError(StatusCode, String);

impl IntoResponse for PageError {
    fn into_response(self) -> Response {
        (self.0, axum::Json(json!({ "error": self.1 }))).into_response()
    }
}

impl From<CliError> for PageError {
    fn from(e: CliError) -> Self {
        let code = match e {
            CliError::NotFound(_) => StatusCode::NOT_FOUND,
            CliError::Usage(_) => StatusCode::BAD_REQUEST,
            _ => StatusCode::BAD_GATEWAY,
        };
        PageError(code, e.to_string())
    }
}

fn kube_error(context: &str, e: kube::Error) -> PageError {
    match e {
        kube::Error::Api(s) if s.code == 403 => PageError(
            StatusCode::FORBIDDEN,
            format!(
                "403 Forbidden: the cluster refused {context} for your kubeconfig's user: {}",
                s.message
            ),
        ),
        other => CliError::from_kube(context, other).into(),
    }
}

/// One Event of the run or its Jobs.
#[derive(Serialize)]
struct EventLine {
    time: String,
    #[serde(rename = "type")]
    type_: String,
    reason: String,
    object: String,
    message: String,
}

/// The drill-down: the run as `tipoff status DATE` shows it, the last Events, and the
/// commands to read or re-run each processor.
async fn run_detail(
    State(app): State<Arc<App>>,
    Path(name): Path<String>,
) -> std::result::Result<Response, PageError> {
    let run = app.cluster.run(&name).await?;
    let children = app.cluster.children(&run).await?;
    let v = view::build(&run, &children, jiff::Timestamp::now());
    let tree = view::render_tree(&v);
    let events = last_events(&app.cluster, &run).await;
    let mode = match run.spec.mode {
        Mode::Production => String::new(),
        m => format!(" --mode {}", m.as_arg()),
    };
    let commands: Vec<serde_json::Value> = v
        .phases
        .iter()
        .flat_map(|p| p.processors.iter().map(move |proc| (p.phase, proc)))
        .map(|(phase, p)| {
            json!({
                "phase": phase,
                "processor": p.name,
                "logs": format!("tipoff logs {} --processor {}{mode}", v.date, p.name),
                "rerun": format!("tipoff rerun {} --processor {}{mode} --reason \"...\"", v.date, p.name),
            })
        })
        .collect();
    Ok(axum::Json(json!({
        "view": v,
        "tree": tree,
        "createdBy": view::created_by(&run),
        "events": events,
        "commands": commands,
    }))
    .into_response())
}

/// The run's and its Jobs' last ten Events, oldest first; unreadable Events are one line
/// saying so.
async fn last_events(cluster: &Cluster, run: &PipelineRun) -> Vec<EventLine> {
    let name = run.name_any();
    let api: Api<KubeEvent> = Api::namespaced(cluster.client.clone(), &cluster.namespace);
    let list = match api.list(&ListParams::default()).await {
        Ok(l) => l.items,
        Err(e) => {
            return vec![EventLine {
                time: String::new(),
                type_: "Warning".into(),
                reason: "EventsUnreadable".into(),
                object: String::new(),
                message: format!("listing Events: {e}"),
            }];
        }
    };
    let mut lines: Vec<(Option<jiff::Timestamp>, EventLine)> = list
        .into_iter()
        .filter(|e| {
            e.involved_object
                .name
                .as_deref()
                .is_some_and(|n| n == name || n.starts_with(&format!("{name}-")))
        })
        .map(|e| {
            let t = e
                .last_timestamp
                .as_ref()
                .map(|t| t.0)
                .or_else(|| e.event_time.as_ref().map(|t| t.0))
                .or_else(|| e.metadata.creation_timestamp.as_ref().map(|t| t.0));
            (
                t,
                EventLine {
                    time: t.map(|t| t.to_string()).unwrap_or_default(),
                    type_: e.type_.clone().unwrap_or_default(),
                    reason: e.reason.clone().unwrap_or_default(),
                    object: format!(
                        "{}/{}",
                        e.involved_object.kind.clone().unwrap_or_default(),
                        e.involved_object.name.clone().unwrap_or_default()
                    ),
                    message: e.message.clone().unwrap_or_default(),
                },
            )
        })
        .collect();
    lines.sort_by_key(|(t, _)| *t);
    let skip = lines.len().saturating_sub(10);
    lines.into_iter().skip(skip).map(|(_, l)| l).collect()
}

/// The backfill dialog's choice.
#[derive(Deserialize)]
struct BackfillRequest {
    from: String,
    to: String,
    reprocess: String,
    #[serde(default)]
    confirmed: bool,
}

fn backfill_body(
    app: &App,
    req: &BackfillRequest,
) -> std::result::Result<(String, serde_json::Value), PageError> {
    let (from, to) = (parse_date(&req.from)?, parse_date(&req.to)?);
    if to < from {
        return Err(PageError(
            StatusCode::BAD_REQUEST,
            format!("the range ends ({to}) before it starts ({from}): pick the first date first"),
        ));
    }
    let reprocess = backfill::parse_reprocess(&req.reprocess)?;
    // The release to pin: the newest run's (what the season runs now).
    let mut runs = app.source.runs();
    runs.sort_by_key(|r| r.metadata.creation_timestamp.as_ref().map(|t| t.0));
    let release = runs.last().map(|r| r.spec.release.clone()).ok_or_else(|| {
        PageError(
            StatusCode::BAD_REQUEST,
            "no run in the namespace to take the release from: use `tipoff backfill FROM TO --release FILE`".into(),
        )
    })?;
    let name = backfill::default_name(&req.from, &req.to, reprocess);
    let game_days = app.source.game_days_source();
    let body = backfill::manifest(&backfill::Manifest {
        name: &name,
        from: &req.from,
        to: &req.to,
        mode: Mode::Backfill,
        release: &release,
        reprocess,
        order: Order::OldestFirst,
        max_concurrent: None,
        game_days: game_days.as_ref(),
    });
    Ok((name, body))
}

fn check_write_header(headers: &HeaderMap) -> std::result::Result<(), PageError> {
    if headers.contains_key(WRITE_HEADER) {
        Ok(())
    } else {
        Err(PageError(
            StatusCode::FORBIDDEN,
            format!("writes need the {WRITE_HEADER} header the dashboard's page sends"),
        ))
    }
}

/// The YAML the dialog would apply; writes nothing.
async fn backfill_preview(
    State(app): State<Arc<App>>,
    axum::Json(req): axum::Json<BackfillRequest>,
) -> std::result::Result<Response, PageError> {
    let (name, body) = backfill_body(&app, &req)?;
    let yaml = serde_yaml::to_string(&body)
        .map_err(|e| PageError(StatusCode::INTERNAL_SERVER_ERROR, e.to_string()))?;
    Ok(axum::Json(json!({ "name": name, "yaml": yaml })).into_response())
}

/// Applies the backfill, only when the request says the user confirmed the YAML.
async fn backfill_create(
    State(app): State<Arc<App>>,
    headers: HeaderMap,
    axum::Json(req): axum::Json<BackfillRequest>,
) -> std::result::Result<Response, PageError> {
    check_write_header(&headers)?;
    if !req.confirmed {
        return Err(PageError(
            StatusCode::BAD_REQUEST,
            "not confirmed: nothing was written".into(),
        ));
    }
    let (name, body) = backfill_body(&app, &req)?;
    backfill::apply(&app.cluster, &name, &body)
        .await
        .map_err(|e| kube_error(&format!("creating pipelinebackfill {name}"), e))?;
    Ok(axum::Json(json!({
        "name": name,
        "message": format!("pipelinebackfill.tipoff.dev/{name} applied; follow it with `tipoff backfill {} {} --reprocess {} --wait`", req.from, req.to, req.reprocess.to_ascii_lowercase()),
    }))
    .into_response())
}
