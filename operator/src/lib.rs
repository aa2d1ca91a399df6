//! The tipoff operator: the pipeline catalog and the pure planner that decides, from a
//! `PipelineRun` and the children that exist, what to create and what status to write.
//!
//! Nothing in this crate's [`planner`] talks to a cluster or reads a clock; the controllers that
//! fetch, apply and patch arrive with a later issue and stay a thin shell around it.

pub mod catalog;
pub mod planner;
