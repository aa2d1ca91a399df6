//! The tipoff warehouse: where every processor reads and writes tables, and object storage for
//! raw payloads, exports and model artifacts.
//!
//! * [`schema`] loads the table schemas in `config/schemas/` (one JSON file per table).
//! * [`Warehouse`] is the one interface processors use; it has two backends that pass the same
//!   contract test suite: [`BigQueryWarehouse`] (production, tested against the `local-bigquery`
//!   emulator) and [`LakeWarehouse`] (Hive-partitioned Parquet on a local disk; the default for
//!   local runs).
//! * [`storage::ObjectStorage`] wraps the `object_store` crate with a local-directory backend
//!   and a GCS backend, and builds deterministic keys.
//!
//! This crate owns table layout and write atomicity. It must not know what a processor computes.
//! It is its own crate (rather than a module of `tipoff-processors`) because the processors, the
//! CLI (status, drift) and the dev tools (season loader, benchmarks) all need it.

pub mod bigquery;
pub mod error;
pub mod lake;
pub mod schema;
pub mod storage;
pub mod value;
pub mod warehouse;

pub use bigquery::BigQueryWarehouse;
pub use error::{Result, WarehouseError};
pub use lake::LakeWarehouse;
pub use schema::{FieldMode, FieldSchema, FieldType, Partitioning, TableRef, TableSchema};
pub use value::{Row, Value};
pub use warehouse::{
    EnsureOutcome, RUN_HISTORY_BATCH_ROWS, RowRange, RunHistoryRecord, Warehouse, open,
};
