//! The `tipoff-devcluster` binary: serves the dev cluster until Ctrl-C.

use std::path::PathBuf;

use anyhow::Context;
use clap::Parser;
use tipoff_devcluster::{Config, DevCluster, RunnerConfig};

/// A local Kubernetes-compatible API server and Job runner for development.
#[derive(Debug, Parser)]
#[command(name = "tipoff-devcluster", version)]
struct Args {
    /// Port to listen on (127.0.0.1); 0 picks a free port.
    #[arg(long, default_value_t = 8080)]
    port: u16,
    /// Write a kubeconfig for this server to PATH.
    #[arg(long, value_name = "PATH")]
    kubeconfig_out: Option<PathBuf>,
    /// Runner config (YAML) mapping images to local commands.
    #[arg(long, value_name = "PATH")]
    runner_config: Option<PathBuf>,
    /// Directory for Pod logs and termination files (default: a temporary directory).
    #[arg(long, value_name = "DIR")]
    data_dir: Option<PathBuf>,
    /// Retained watch events for resuming watches.
    #[arg(long, default_value_t = 10_000)]
    watch_window: usize,
    /// Log as JSON lines.
    #[arg(long)]
    json_logs: bool,
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let args = Args::parse();
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info"));
    if args.json_logs {
        tracing_subscriber::fmt()
            .with_env_filter(filter)
            .json()
            .init();
    } else {
        tracing_subscriber::fmt().with_env_filter(filter).init();
    }
    let runner = match &args.runner_config {
        Some(path) => RunnerConfig::load(path)?,
        None => RunnerConfig::default(),
    };
    let cluster = DevCluster::start(Config {
        port: args.port,
        data_dir: args.data_dir,
        runner,
        watch_window: args.watch_window,
        ..Config::default()
    })
    .await?;
    if let Some(path) = &args.kubeconfig_out {
        cluster
            .write_kubeconfig(path)
            .with_context(|| format!("writing kubeconfig to {}", path.display()))?;
        eprintln!("kubeconfig written to {}", path.display());
    }
    eprintln!("tipoff-devcluster serving {}", cluster.url());
    tokio::signal::ctrl_c()
        .await
        .context("waiting for Ctrl-C")?;
    cluster.shutdown().await;
    Ok(())
}
