//! `tipoff-season`: generate, export or serve the synthetic season.

use std::path::PathBuf;
use std::sync::Arc;
use std::time::Instant;

use clap::{Parser, Subcommand};
use tipoff_season::Season;
use tipoff_season::server::{AppState, FaultConfig, router};
use tipoff_season::truth::{self, Format};

#[derive(Parser)]
#[command(
    version,
    about = "Deterministic synthetic NBA season and upstream-API server (dev only)"
)]
struct Cli {
    /// Season seed: the same seed always gives the same season.
    #[arg(long, global = true, default_value_t = 2025)]
    seed: u64,
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Generate the season and print row counts and wall time (the generation benchmark).
    Generate,
    /// Write the ground truth (latents, expected points per player-game).
    Export {
        /// Output directory.
        #[arg(long)]
        out: PathBuf,
        /// json or csv.
        #[arg(long, value_enum, default_value_t = Format::Csv)]
        format: Format,
    },
    /// Serve the upstream APIs.
    Serve {
        /// Listen address.
        #[arg(long, default_value = "127.0.0.1:8790")]
        listen: String,
        /// The API key the balldontlie and The Odds API routes accept.
        #[arg(long, env = "TIPOFF_SEASON_API_KEY", default_value = "dev-key")]
        api_key: String,
        /// Simulated time at start (RFC 3339); change it later with PUT /admin/clock.
        #[arg(long, default_value = "2025-10-21T12:00:00Z")]
        clock: jiff::Timestamp,
        /// Fault configuration (JSON file, see README).
        #[arg(long)]
        faults: Option<PathBuf>,
    },
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    tracing_subscriber::fmt()
        .with_env_filter(tracing_subscriber::EnvFilter::from_default_env())
        .init();
    let cli = Cli::parse();
    let start = Instant::now();
    let season = Season::generate(cli.seed);
    let generated = start.elapsed();
    match cli.command {
        Command::Generate => {
            println!(
                "seed {}: season generated in {:.3} s",
                cli.seed,
                generated.as_secs_f64()
            );
            let counts = season.row_counts();
            for (k, v) in &counts {
                println!("  {k:<22} {v:>9}");
            }
            println!(
                "  {:<22} {:>9}",
                "total rows",
                counts.values().sum::<usize>()
            );
        }
        Command::Export { out, format } => {
            for path in truth::write(&season, &out, format)? {
                println!("{}", path.display());
            }
        }
        Command::Serve {
            listen,
            api_key,
            clock,
            faults,
        } => {
            let faults: FaultConfig = match faults {
                Some(p) => serde_json::from_str(&std::fs::read_to_string(p)?)?,
                None => FaultConfig::default(),
            };
            let state = AppState::new(Arc::new(season), clock, &api_key, faults);
            let listener = tokio::net::TcpListener::bind(&listen).await?;
            println!(
                "tipoff-season serving seed {} on http://{}",
                cli.seed,
                listener.local_addr()?
            );
            axum::serve(listener, router(state)).await?;
        }
    }
    Ok(())
}
