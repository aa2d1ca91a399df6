//! The tipoff operator: the pipeline catalog and the pure planner that decides, from a
//! `PipelineRun` and the children that exist, what to create and what status to write.
//!
//! Nothing in [`planner`] or [`jobs`] talks to a cluster or reads a clock. The [`controller`]
//! is the thin shell around them (watch caches -> plan -> apply), with [`leader`] election,
//! [`metrics`] and the health [`server`] beside it; the binary `tipoff-operator` wires them up.

pub mod backfill;
pub mod catalog;
pub mod controller;
pub mod jobs;
pub mod leader;
pub mod metrics;
pub mod planner;
pub mod schedule;
pub mod server;

/// Selects ring as the process-wide rustls crypto provider. The workspace links both of
/// rustls' providers (through the BigQuery and object-store clients), and then rustls cannot
/// pick one by itself; every process that builds a kube client calls this first.
pub fn install_crypto_provider() {
    // An error means a provider is already installed, which is what we want.
    let _ = rustls::crypto::ring::default_provider().install_default();
}
