//! tipoff processors. This crate owns the processor contract every processor binary follows
//! (ARCHITECTURE section 4): the `run <processor> --date D --mode M` command line, the identity
//! compiled into the binary, the JSON result written to `$TIPOFF_RESULT_PATH`, and the exit
//! codes that tell the operator whether a failure is worth retrying.
//!
//! The real processors run in the `tipoff-processor` binary: phase 1 scrapers ([`scrape`]),
//! phase 2 raw processors ([`raw`]), phase 3 analytics ([`analytics`]) and phase 4 precompute
//! and the ML feature store ([`precompute`]), phase 6 grading and exports ([`publish`]), listed in one [`registry`] and run by [`runner`].
//! [`tables`] reads the warehouse's rows into typed records with errors that name the table;
//! [`features`] is the feature store's versioned feature list; [`model`] trains and applies the
//! points model of phase 5 (pure: no I/O; `docs/model.md`). The operator's tests script
//! `tipoff-test-processor` (`dev/test-processor`), built on [`contract`]. `docs/processors.md`
//! documents every processor.

pub mod analytics;
pub mod cli;
pub mod contract;
pub mod features;
pub mod game_days;
pub mod model;
pub mod precompute;
pub mod predict;
pub mod publish;
pub mod raw;
pub mod registry;
pub mod runner;
pub mod schedule;
pub mod scrape;
pub mod tables;
pub mod upstream;
