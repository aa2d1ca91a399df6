//! tipoff processors. This crate owns the processor contract every processor binary follows
//! (ARCHITECTURE section 4): the `run <processor> --date D --mode M` command line, the identity
//! compiled into the binary, the JSON result written to `$TIPOFF_RESULT_PATH`, and the exit
//! codes that tell the operator whether a failure is worth retrying.
//!
//! The production processors arrive with the data issues; until then the only binary is
//! `tipoff-test-processor`, a processor whose behaviour the operator's end-to-end tests script.

pub mod contract;
