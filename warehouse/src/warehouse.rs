//! The `Warehouse` trait: the operations processors need, whatever the backend.

use std::collections::BTreeMap;

use async_trait::async_trait;
use jiff::Timestamp;
use jiff::civil::Date;
use serde::{Deserialize, Serialize};

use crate::error::{Result, WarehouseError};
use crate::schema::{FieldMode, FieldType, TableRef, TableSchema};
use crate::value::{Row, Value};

/// Rows per INSERT statement (BigQuery) or per appended file (lake) for run history: one write
/// per batch instead of one per event keeps far below BigQuery's partition-modification quota
/// (the legacy "quota exceeded for partition modifications" incident).
pub const RUN_HISTORY_BATCH_ROWS: usize = 500;

/// What `ensure_table` did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum EnsureOutcome {
    /// The table did not exist and was created.
    Created,
    /// The table already existed with the same structure.
    AlreadyExists,
}

/// A table store partitioned by day. Every write replaces or appends whole batches; nothing is
/// written row by row.
#[async_trait]
pub trait Warehouse: Send + Sync {
    /// `bigquery` or `lake` (for logs and metric labels).
    fn backend(&self) -> &'static str;

    /// Creates the dataset and table if missing. Idempotent; an existing table whose columns,
    /// types, modes, partitioning or clustering differ is a `SchemaMismatch`, never altered.
    async fn ensure_table(&self, schema: &TableSchema) -> Result<EnsureOutcome>;

    /// The table's definition as the backend stores it; `TableNotFound` if missing.
    async fn describe_table(&self, table: &TableRef) -> Result<TableSchema>;

    /// Atomically replaces the partition `date` with `rows` (all of which must belong to it):
    /// readers see the old contents or the new, never a mix; running it twice gives the same
    /// contents. Returns the number of rows written.
    async fn replace_partition(&self, table: &TableRef, date: Date, rows: &[Row]) -> Result<u64>;

    /// Atomically replaces the rows of partition `date` whose INT64 column `range.column` lies
    /// in the range with `rows`, each of which must belong to the partition and the range; rows
    /// outside the range are untouched. Writers of disjoint ranges of one partition may run at
    /// once (the shards of an Indexed Job each replace their own range). Running it twice gives
    /// the same contents. Returns the number of rows written.
    async fn replace_range(
        &self,
        table: &TableRef,
        date: Date,
        range: &RowRange,
        rows: &[Row],
    ) -> Result<u64>;

    /// Rows whose partition date is in `from..=to`, with the given columns (all if `None`).
    /// Columns that are NULL are present as `Value::Null`. Order is unspecified.
    async fn read_range(
        &self,
        table: &TableRef,
        from: Date,
        to: Date,
        columns: Option<&[&str]>,
    ) -> Result<Vec<Row>>;

    /// Row count of every non-empty partition in `from..=to`.
    async fn partition_row_counts(
        &self,
        table: &TableRef,
        from: Date,
        to: Date,
    ) -> Result<BTreeMap<Date, u64>>;

    /// Appends rows (any partitions) in batches of at most [`RUN_HISTORY_BATCH_ROWS`]. For
    /// append-only tables such as run history; everything else uses `replace_partition`.
    async fn append_rows(&self, table: &TableRef, rows: &[Row]) -> Result<u64>;

    /// Appends run-history records to `nba_reference.processor_run_history` in batches.
    async fn append_run_history(&self, records: &[RunHistoryRecord]) -> Result<u64> {
        let rows: Vec<Row> = records.iter().map(RunHistoryRecord::to_row).collect();
        self.append_rows(&RunHistoryRecord::table(), &rows).await
    }
}

/// A slice of a partition: the rows whose INT64 `column` is in `start..end`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RowRange {
    /// The column (INT64, REQUIRED in the table's schema).
    pub column: String,
    /// The first value in the range.
    pub start: i64,
    /// The first value past the range.
    pub end: i64,
}

impl RowRange {
    /// Whether `v` is in the range.
    pub fn contains(&self, v: i64) -> bool {
        (self.start..self.end).contains(&v)
    }

    /// Checks the range against the table: the column is a REQUIRED INT64 (so its name is a
    /// schema identifier, never a value) and every row's value lies in the range.
    pub fn validate(&self, schema: &TableSchema, rows: &[Row]) -> Result<()> {
        let ok = schema
            .field(&self.column)
            .is_some_and(|f| f.field_type == FieldType::Int64 && f.mode == FieldMode::Required);
        if !ok {
            return Err(WarehouseError::InvalidRequest(format!(
                "{} has no REQUIRED INT64 column `{}` to replace a range of",
                schema.table_ref(),
                self.column
            )));
        }
        for (i, row) in rows.iter().enumerate() {
            match row.get(&self.column) {
                Some(Value::Int(v)) if self.contains(*v) => {}
                other => {
                    return Err(WarehouseError::InvalidRequest(format!(
                        "row {i} of {} has {} = {other:?}, outside the range {}..{} being replaced",
                        schema.table_ref(),
                        self.column,
                        self.start,
                        self.end
                    )));
                }
            }
        }
        Ok(())
    }
}

/// One processor run event in `nba_reference.processor_run_history`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RunHistoryRecord {
    /// Run id (PipelineRun name + processor + attempt).
    pub run_id: String,
    /// Processor name.
    pub processor_name: String,
    /// Pipeline phase.
    pub phase: String,
    /// The game date processed.
    pub data_date: Date,
    /// `running`, `success`, `failed` or `skipped`.
    pub status: String,
    /// Start.
    pub started_at: Timestamp,
    /// End, if finished.
    pub finished_at: Option<Timestamp>,
    /// Run time in seconds, if finished.
    pub duration_seconds: Option<f64>,
    /// Rows written, if known.
    pub records_processed: Option<i64>,
    /// Error text, if failed.
    pub error_message: Option<String>,
    /// `schedule`, `backfill` or `manual`.
    pub trigger_source: Option<String>,
}

impl RunHistoryRecord {
    /// The run-history table.
    pub fn table() -> TableRef {
        TableRef::new("nba_reference", "processor_run_history")
    }

    /// The record as a warehouse row.
    pub fn to_row(&self) -> Row {
        let mut r = Row::new();
        r.insert("run_id".into(), self.run_id.as_str().into());
        r.insert("processor_name".into(), self.processor_name.as_str().into());
        r.insert("phase".into(), self.phase.as_str().into());
        r.insert("data_date".into(), self.data_date.into());
        r.insert("status".into(), self.status.as_str().into());
        r.insert("started_at".into(), self.started_at.into());
        r.insert("finished_at".into(), self.finished_at.into());
        r.insert("duration_seconds".into(), self.duration_seconds.into());
        r.insert("records_processed".into(), self.records_processed.into());
        r.insert("error_message".into(), self.error_message.clone().into());
        r.insert("trigger_source".into(), self.trigger_source.clone().into());
        r.retain(|_, v| *v != Value::Null);
        r
    }
}

/// Opens the warehouse a processor is configured with (`TIPOFF_WAREHOUSE_URL`):
/// `file:///path` for the local lake, or `bigquery://<project>` for BigQuery (through the
/// emulator when `TIPOFF_BIGQUERY_URL` is set, otherwise with Application Default Credentials).
pub async fn open(url: &str) -> Result<std::sync::Arc<dyn Warehouse>> {
    if let Some(path) = url.strip_prefix("file://") {
        if path.is_empty() {
            return Err(crate::WarehouseError::InvalidRequest(format!(
                "{url:?} names no directory"
            )));
        }
        return Ok(std::sync::Arc::new(crate::LakeWarehouse::new(path)));
    }
    if let Some(project) = url.strip_prefix("bigquery://") {
        let project = project.trim_end_matches('/');
        if project.is_empty() {
            return Err(crate::WarehouseError::InvalidRequest(format!(
                "{url:?} names no project"
            )));
        }
        let wh = match std::env::var(crate::bigquery::BIGQUERY_URL_ENV) {
            Ok(base) if !base.is_empty() => {
                crate::BigQueryWarehouse::connect_emulator(&base, project).await?
            }
            _ => crate::BigQueryWarehouse::connect_adc(project).await?,
        };
        return Ok(std::sync::Arc::new(wh));
    }
    Err(crate::WarehouseError::InvalidRequest(format!(
        "warehouse URL {url:?} is neither file:///path nor bigquery://project"
    )))
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn opens_the_lake_by_url_and_rejects_unknown_schemes() {
        let dir = std::env::temp_dir();
        let wh = open(&format!("file://{}", dir.display())).await.unwrap();
        assert_eq!(wh.backend(), "lake");
        for bad in ["s3://bucket", "file://", "bigquery://", "lake"] {
            let err = open(bad).await.err().unwrap();
            assert_eq!(err.category(), "InvalidRequest", "{bad}");
        }
    }
}
