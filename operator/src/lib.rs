//! The tipoff operator: the pipeline catalog and the pure planner that decides, from a
//! `PipelineRun` and the children that exist, what to create and what status to write.
//!
//! Nothing in [`planner`] or [`jobs`] talks to a cluster or reads a clock. The [`controller`]
//! is the thin shell around them (watch caches -> plan -> apply), with [`leader`] election,
//! [`metrics`] and the health [`server`] beside it; the binary `tipoff-operator` wires them up.

pub mod catalog;
pub mod controller;
pub mod jobs;
pub mod leader;
pub mod metrics;
pub mod planner;
pub mod server;
