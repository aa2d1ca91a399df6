//! `tipoff-operator`: the controller manager. Loads the catalog, waits for the CRDs, wins the
//! leader Lease, then reconciles PipelineRuns and PipelineBackfills until SIGTERM (or until it
//! loses the Lease, when it exits so Kubernetes restarts it as a standby).

use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::Duration;

use anyhow::Context as _;
use clap::Parser;
use futures::FutureExt;
use kube::api::Api;
use kube::{Client, ResourceExt};
use tipoff_operator::catalog::{Catalog, Resources, check_resource};
use tipoff_operator::controller::backfill::BackfillContext;
use tipoff_operator::controller::backoff::ErrorBackoff;
use tipoff_operator::controller::schedule::{Clock, ScheduleContext};
use tipoff_operator::controller::{self, Context, Scope};
use tipoff_operator::jobs::{JobSettings, UpstreamSecret};
use tipoff_operator::leader::{LeaderElector, LeaseConfig};
use tipoff_operator::metrics::Metrics;
use tipoff_operator::server::{self, Health};
use tokio::sync::watch;
use tracing::{error, info};

#[derive(Parser, Debug)]
#[command(
    name = "tipoff-operator",
    version,
    about = "Runs tipoff PipelineRuns as processor Jobs, phase by phase."
)]
struct Args {
    /// The pipeline catalog.
    #[arg(long, env = "TIPOFF_CATALOG", default_value = "config/pipeline.yaml")]
    catalog: PathBuf,
    /// Watch one namespace only (default: every namespace).
    #[arg(long, env = "TIPOFF_NAMESPACE")]
    namespace: Option<String>,
    /// Address of /healthz, /readyz and /metrics.
    #[arg(long, env = "TIPOFF_LISTEN", default_value = "0.0.0.0:8080")]
    listen: SocketAddr,
    /// Leader election on a Lease (disable only for a single replica).
    #[arg(long, env = "TIPOFF_LEADER_ELECT", default_value_t = true, action = clap::ArgAction::Set)]
    leader_elect: bool,
    /// The leader Lease's name.
    #[arg(long, default_value = "tipoff-operator")]
    lease_name: String,
    /// The leader Lease's namespace.
    #[arg(long, env = "POD_NAMESPACE", default_value = "default")]
    lease_namespace: String,
    /// This replica's identity in the Lease.
    #[arg(long, env = "POD_NAME")]
    identity: Option<String>,
    /// Seconds a Lease is valid without renewal (a standby takes over after this).
    #[arg(long, default_value_t = 15)]
    lease_duration_seconds: u64,
    /// Seconds between renewals (and candidate retries).
    #[arg(long, default_value_t = 4)]
    lease_renew_seconds: u64,
    /// Seconds the leader keeps leading without a successful renewal (below the lease
    /// duration, so it stops before a standby may take over; default: two thirds of it).
    #[arg(long)]
    lease_renew_deadline_seconds: Option<u64>,
    /// Pod retries inside one processor attempt (the operator's own retries are new attempts).
    #[arg(long, default_value_t = 1)]
    job_backoff_limit: i32,
    /// Seconds a finished processor Job is kept.
    #[arg(long, default_value_t = 7 * 24 * 3600)]
    job_ttl_seconds: i32,
    /// ServiceAccount of processor Pods.
    #[arg(long, env = "TIPOFF_PROCESSOR_SERVICE_ACCOUNT")]
    processor_service_account: Option<String>,
    /// ConfigMap with the processors' environment (warehouse, object store, upstream URLs).
    #[arg(long, env = "TIPOFF_PROCESSOR_ENV_CONFIGMAP")]
    processor_env_configmap: Option<String>,
    /// An image repository runs may pin (repeat the flag, or separate with commas); an entry
    /// ending in `/` allows every repository under it. A run pinning another image is
    /// Blocked (`ImageNotAllowed`) and never runs. None given: every repository (a warning).
    #[arg(long, env = "TIPOFF_ALLOWED_IMAGE_REPOSITORIES", value_delimiter = ',')]
    allowed_image_repository: Vec<String>,
    /// An upstream service's API key, `SERVICE=SECRET/KEY` (repeat the flag, or separate with
    /// commas): the key in that Secret is mounted in every processor Pod as
    /// `/var/run/secrets/tipoff/upstream/SERVICE` (services: `balldontlie`, `odds`).
    #[arg(long, env = "TIPOFF_UPSTREAM_SECRETS", value_delimiter = ',')]
    upstream_secret: Vec<UpstreamSecret>,
    /// CPU request of every processor container (a catalog processor's `resources` replace
    /// these per resource; an empty value sets none).
    #[arg(long, default_value = "250m")]
    processor_cpu_request: String,
    /// Memory request of every processor container.
    #[arg(long, default_value = "256Mi")]
    processor_memory_request: String,
    /// CPU limit of every processor container (none by default: a CPU limit throttles).
    #[arg(long, default_value = "")]
    processor_cpu_limit: String,
    /// Memory limit of every processor container.
    #[arg(long, default_value = "1Gi")]
    processor_memory_limit: String,
    /// The longest a run's reconcile waits for more changes before it runs, in milliseconds, so
    /// that under load a burst of watch events becomes one reconcile. The wait grows with the
    /// number of runs asking for reconciles: none for one or two, all of it from 8 runs on.
    #[arg(long, default_value_t = 200)]
    reconcile_debounce_ms: u64,
    /// Reconciles running at once (0: unbounded; one run is never reconciled twice at once).
    #[arg(long, default_value_t = 16)]
    max_concurrent_reconciles: u16,
    /// Milliseconds before a run whose reconcile failed is tried again; each further failure
    /// in a row doubles it, up to `--reconcile-error-backoff-max-seconds`.
    #[arg(long, default_value_t = 5000)]
    reconcile_error_backoff_ms: u64,
    /// Longest wait between two tries of a run whose reconciles keep failing.
    #[arg(long, default_value_t = 300)]
    reconcile_error_backoff_max_seconds: u64,
    /// Seconds a leader with runs may go without finishing a reconcile before /healthz
    /// fails (every run is reconciled at least every 300 s; an idle operator stays live).
    #[arg(long, default_value_t = 900)]
    liveness_stall_seconds: u64,
    /// Log format: `json` (in-cluster) or `text`.
    #[arg(long, env = "TIPOFF_LOG_FORMAT", default_value = "json")]
    log_format: String,
    /// TEST ONLY: read the schedules' "now" from this file (an RFC 3339 instant) instead of
    /// the system clock, so end-to-end tests can replay days in seconds. Never set it in a
    /// cluster.
    #[arg(long, env = "TIPOFF_TEST_CLOCK_FILE", hide = true)]
    test_clock_file: Option<PathBuf>,
    /// Check the flags, the processor resources, the Lease timings and the catalog, print a
    /// one-line summary and exit, without contacting the API server (0: valid; a CI step can
    /// run the image with a rendered Deployment's arguments).
    #[arg(long)]
    check_config: bool,
}

fn init_tracing(format: &str) {
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info,kube=warn"));
    let builder = tracing_subscriber::fmt().with_env_filter(filter);
    if format == "json" {
        builder
            .json()
            .flatten_event(true)
            .with_current_span(true)
            .init();
    } else {
        builder.init();
    }
}

async fn shutdown_signal() {
    #[cfg(unix)]
    {
        let mut term =
            match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
                Ok(s) => s,
                Err(_) => {
                    let _ = tokio::signal::ctrl_c().await;
                    return;
                }
            };
        tokio::select! {
            _ = tokio::signal::ctrl_c() => {},
            _ = term.recv() => {},
        }
    }
    #[cfg(not(unix))]
    {
        let _ = tokio::signal::ctrl_c().await;
    }
}

/// The processor containers' default requests and limits from the flags, each checked.
fn processor_resources(args: &Args) -> anyhow::Result<Resources> {
    let mut r = Resources::default();
    for (limit, name, value) in [
        (false, "cpu", &args.processor_cpu_request),
        (false, "memory", &args.processor_memory_request),
        (true, "cpu", &args.processor_cpu_limit),
        (true, "memory", &args.processor_memory_limit),
    ] {
        if value.is_empty() {
            continue;
        }
        check_resource(name, value).map_err(|e| anyhow::anyhow!("processor resources: {e}"))?;
        let map = if limit {
            &mut r.limits
        } else {
            &mut r.requests
        };
        map.insert(name.to_owned(), value.clone());
    }
    Ok(r)
}

/// The leader Lease's settings from the flags.
fn lease_config(args: &Args, identity: String) -> LeaseConfig {
    LeaseConfig {
        name: args.lease_name.clone(),
        identity,
        lease_duration: Duration::from_secs(args.lease_duration_seconds),
        renew_deadline: args.lease_renew_deadline_seconds.map_or(
            Duration::from_secs(args.lease_duration_seconds) * 2 / 3,
            Duration::from_secs,
        ),
        renew_period: Duration::from_secs(args.lease_renew_seconds),
    }
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let args = Args::parse();
    init_tracing(&args.log_format);
    tipoff_operator::install_crypto_provider();
    let resources = processor_resources(&args)?;
    let mut catalog = Catalog::load(&args.catalog)
        .with_context(|| format!("loading the catalog {}", args.catalog.display()))?;
    catalog.allowed_image_repositories = args
        .allowed_image_repository
        .iter()
        .map(|r| r.trim().to_owned())
        .filter(|r| !r.is_empty())
        .collect();
    if catalog.allowed_image_repositories.is_empty() {
        tracing::warn!(
            "no --allowed-image-repository: runs may pin any image and run it with the processors' identity"
        );
    }
    info!(catalog = %args.catalog.display(), phases = catalog.phases.len(), "catalog loaded");
    if args.check_config {
        if args.leader_elect {
            lease_config(&args, "check-config".to_owned())
                .validate()
                .map_err(|e| anyhow::anyhow!(e))?;
        }
        println!(
            "configuration valid: catalog {} ({} phases), namespace {}, leader election {}",
            args.catalog.display(),
            catalog.phases.len(),
            args.namespace.as_deref().unwrap_or("(every namespace)"),
            if args.leader_elect { "on" } else { "off" },
        );
        return Ok(());
    }
    let client = Client::try_default()
        .await
        .context("connecting to the Kubernetes API")?;

    let metrics = Arc::new(Metrics::new());
    let health = Arc::new(Health::default());
    let _ = health
        .stall_after
        .set(Duration::from_secs(args.liveness_stall_seconds));
    {
        let (health, metrics, addr) = (health.clone(), metrics.clone(), args.listen);
        tokio::spawn(async move {
            if let Err(e) = server::serve(addr, health, metrics).await {
                error!(error = %e, %addr, "health and metrics server failed");
            }
        });
    }

    let scope = Scope {
        namespace: args.namespace.clone(),
    };
    controller::wait_for_crds(&client, &scope).await;

    let identity = args.identity.clone().unwrap_or_else(|| {
        std::env::var("HOSTNAME")
            .unwrap_or_else(|_| format!("tipoff-operator-{}", std::process::id()))
    });
    let lease = lease_config(&args, identity.clone());
    if args.leader_elect {
        lease.validate().map_err(|e| anyhow::anyhow!(e))?;
    }
    let elector = args.leader_elect.then(|| {
        LeaderElector::new(
            Api::namespaced(client.clone(), &args.lease_namespace),
            lease,
        )
    });
    if let Some(elector) = &elector {
        // A standby is ready: it can take over. It becomes unready only as a leader that lost
        // its Lease (and then exits).
        health.lease_ok.store(true, Ordering::Relaxed);
        info!(%identity, lease = %args.lease_name, "waiting to become leader");
        elector.acquire().await;
        info!(%identity, "became leader");
    } else {
        health.lease_ok.store(true, Ordering::Relaxed);
    }
    metrics.leader.set(1);
    health.leading.store(true, Ordering::Relaxed);

    let tuning = controller::Tuning {
        debounce: Duration::from_millis(args.reconcile_debounce_ms),
        concurrency: args.max_concurrent_reconciles,
    };
    let (ctrl, view) = controller::controller(client.clone(), &scope, tuning);
    let runs = view.runs();
    let run_view = view.clone();
    let _ = health.runs.set(runs.clone());
    let job_settings = JobSettings {
        backoff_limit: args.job_backoff_limit,
        ttl_seconds_after_finished: args.job_ttl_seconds,
        service_account: args.processor_service_account.clone(),
        env_config_map: args.processor_env_configmap.clone(),
        resources,
        upstream_secrets: args.upstream_secret.clone(),
        ..JobSettings::default()
    };
    let ctx = Arc::new(
        Context::new(client.clone(), catalog, view.clone(), &identity)
            .with_job_settings(job_settings)
            .with_metrics(metrics.clone())
            .with_backoff(ErrorBackoff::new(
                Duration::from_millis(args.reconcile_error_backoff_ms),
                Duration::from_secs(args.reconcile_error_backoff_max_seconds),
            )),
    );
    {
        let health = health.clone();
        tokio::spawn(async move {
            // Every watch the reconciler reads: the runs it owns and their children.
            let ok = view.synced().await;
            health.synced.store(ok, Ordering::Relaxed);
            info!("watch caches synced");
        });
    }

    // Backfills: their own controller beside the runs' one, reading the runs' cache; it waits
    // for the PipelineBackfill CRD without holding the runs up.
    let (bf_ctrl, bf_view) = controller::backfill::controller(client.clone(), &scope, &run_view);
    let bf_ctx = Arc::new(
        BackfillContext::new(client.clone(), bf_view.clone(), &identity, metrics.clone())
            .with_backoff(ErrorBackoff::new(
                Duration::from_millis(args.reconcile_error_backoff_ms),
                Duration::from_secs(args.reconcile_error_backoff_max_seconds),
            )),
    );

    // Schedules: their own controller beside the runs' one, reading the runs' cache; it waits
    // for the PipelineSchedule CRD without holding the runs up.
    let (sched_ctrl, sched_view) =
        controller::schedule::controller(client.clone(), &scope, runs.clone());
    let clock = match &args.test_clock_file {
        Some(path) => {
            tracing::warn!(path = %path.display(), "schedules read the time from a test clock file (--test-clock-file): for tests only");
            Clock::File(path.clone())
        }
        None => Clock::System,
    };
    let sched_ctx = Arc::new(
        ScheduleContext::new(
            client.clone(),
            sched_view.clone(),
            &identity,
            metrics.clone(),
            clock,
        )
        .with_backoff(ErrorBackoff::new(
            Duration::from_millis(args.reconcile_error_backoff_ms),
            Duration::from_secs(args.reconcile_error_backoff_max_seconds),
        )),
    );

    // Deleted runs, backfills and schedules get no reconcile; drop them from the gauges once a
    // minute instead.
    {
        let metrics = metrics.clone();
        let backfills = bf_view.backfills();
        let schedules = sched_view.schedules();
        tokio::spawn(async move {
            let mut tick = tokio::time::interval(Duration::from_secs(60));
            loop {
                tick.tick().await;
                let live = runs
                    .state()
                    .iter()
                    .map(|r| format!("{}/{}", r.namespace().unwrap_or_default(), r.name_any()))
                    .collect();
                metrics.retain_runs(&live);
                let live = backfills
                    .state()
                    .iter()
                    .map(|b| format!("{}/{}", b.namespace().unwrap_or_default(), b.name_any()))
                    .collect();
                metrics.retain_backfills(&live);
                let live = schedules
                    .state()
                    .iter()
                    .map(|s| format!("{}/{}", s.namespace().unwrap_or_default(), s.name_any()))
                    .collect();
                metrics.retain_schedules(&live);
            }
        });
    }

    // Stop on SIGTERM, or when leadership is lost.
    let (lost_tx, mut lost_rx) = watch::channel(false);
    let elector = elector.map(Arc::new);
    if let Some(elector) = elector.clone() {
        tokio::spawn(async move {
            elector.hold().await;
            let _ = lost_tx.send(true);
        });
    }
    let stop = {
        let mut lost_rx = lost_rx.clone();
        async move {
            tokio::select! {
                _ = shutdown_signal() => info!("shutdown signal received"),
                _ = lost_rx.wait_for(|lost| *lost) => error!("leader Lease lost; stopping"),
            }
        }
    };
    let stop = stop.shared();
    let backfills = {
        let (stop, client, scope) = (stop.clone(), client.clone(), scope.clone());
        async move {
            tokio::select! {
                () = controller::backfill::wait_for_crd(&client, &scope) => {}
                () = stop.clone() => return,
            }
            controller::backfill::run(bf_ctrl, bf_ctx, stop).await;
        }
    };
    let schedules = {
        let (stop, client, scope) = (stop.clone(), client.clone(), scope.clone());
        async move {
            tokio::select! {
                () = controller::schedule::wait_for_crd(&client, &scope) => {}
                () = stop.clone() => return,
            }
            controller::schedule::run(sched_ctrl, sched_ctx, stop).await;
        }
    };
    tokio::join!(controller::run(ctrl, ctx, stop), backfills, schedules);
    metrics.leader.set(0);
    if *lost_rx.borrow_and_update() {
        health.lease_ok.store(false, Ordering::Relaxed);
        anyhow::bail!("lost the leader Lease");
    }
    if let Some(elector) = elector {
        elector.release().await;
    }
    Ok(())
}
