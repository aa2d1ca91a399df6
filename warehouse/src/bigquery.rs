//! The BigQuery backend (gcp-bigquery-client), used in production and tested against the
//! `local-bigquery` emulator.
//!
//! Every write is a DML job, never a streaming insert: rows in BigQuery's streaming buffer cannot
//! be deleted for a while, which would break idempotent partition replacement. A partition
//! replace is one multi-statement transaction (`BEGIN; DELETE the partition; INSERT the rows;
//! COMMIT`), so readers see the old or the new partition and a rerun gives the same contents.
//! Appends go in multi-row INSERTs of at most [`RUN_HISTORY_BATCH_ROWS`] rows. No value is ever
//! part of a statement's text: rows travel as one `ARRAY<STRUCT<...>>` query parameter per
//! INSERT (`INSERT ... SELECT r.col, ... FROM UNNEST(@rows_n) AS r`) and dates as `DATE`
//! parameters, so no string a processor writes can change a statement. Rows are validated
//! against the table's schema as the server reports it first. (DDL, which takes no
//! parameters, still quotes table and column descriptions with [`sql_string`]; they come from
//! the compiled-in schemas.)

use std::collections::{BTreeMap, HashMap};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use async_trait::async_trait;
use gcp_bigquery_client::Client;
use gcp_bigquery_client::auth::Authenticator;
use gcp_bigquery_client::error::BQError;
use gcp_bigquery_client::model::get_query_results_parameters::GetQueryResultsParameters;
use gcp_bigquery_client::model::query_parameter::QueryParameter;
use gcp_bigquery_client::model::query_parameter_type::QueryParameterType;
use gcp_bigquery_client::model::query_parameter_type_struct_types::QueryParameterTypeStructTypes;
use gcp_bigquery_client::model::query_parameter_value::QueryParameterValue;
use gcp_bigquery_client::model::query_request::QueryRequest;
use gcp_bigquery_client::model::table::Table;
use gcp_bigquery_client::model::table_row::TableRow;
use jiff::Timestamp;
use jiff::civil::Date;

use crate::error::{Result, WarehouseError};
use crate::schema::{FieldMode, FieldSchema, FieldType, Partitioning, TableRef, TableSchema};
use crate::value::{Row, Value, complete_row, resolve_columns, validate_rows};
use crate::warehouse::{EnsureOutcome, RUN_HISTORY_BATCH_ROWS, RowRange, Warehouse};

/// Environment variable with the REST base URL of an emulator (`.../bigquery/v2`).
pub const BIGQUERY_URL_ENV: &str = "TIPOFF_BIGQUERY_URL";
/// Environment variable with the GCP project id.
pub const BIGQUERY_PROJECT_ENV: &str = "TIPOFF_BIGQUERY_PROJECT";

/// Rows per INSERT statement inside a partition replace (keeps each statement well under
/// BigQuery's query-length limit).
const REPLACE_INSERT_ROWS: usize = 500;

/// Retries of a partition replace aborted by a concurrent transaction on the same table.
const CONFLICT_RETRIES: u32 = 4;

/// Retries of table creation that lost a race with another creator.
const DDL_RETRIES: u32 = 4;

/// Whether a transaction was aborted because another one mutated the same table: real
/// BigQuery says "Could not serialize access ... due to concurrent update"; the emulator's
/// DuckLake store says "Failed to commit" when two transactions delete from one table (the
/// shards of a sharded processor do, each over its own range). Either way the transaction
/// rolled back as a whole, so running it again is safe.
fn is_concurrent_abort(e: &WarehouseError) -> bool {
    matches!(e, WarehouseError::Backend { detail, .. }
        if detail.contains("concurrent update")
            || detail.contains("Could not serialize access")
            || detail.contains("Failed to commit"))
}

/// Sends no credentials: for emulators only.
#[derive(Clone)]
struct NoAuth;

#[async_trait]
impl Authenticator for NoAuth {
    async fn access_token(&self) -> std::result::Result<String, BQError> {
        Ok("emulator".to_owned())
    }
}

/// A BigQuery project used as the warehouse.
#[derive(Clone)]
pub struct BigQueryWarehouse {
    client: Client,
    project: String,
    /// Schemas as the server reported them, to validate writes without a GET per write.
    schemas: Arc<Mutex<HashMap<TableRef, TableSchema>>>,
    /// Query jobs submitted, so tests can check that writes are batched.
    jobs: Arc<AtomicU64>,
}

impl std::fmt::Debug for BigQueryWarehouse {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("BigQueryWarehouse")
            .field("project", &self.project)
            .finish()
    }
}

fn bq_err(e: BQError) -> WarehouseError {
    match e {
        BQError::ResponseError { error } => WarehouseError::Backend {
            backend: "bigquery",
            detail: format!(
                "{} {}: {}",
                error.error.code, error.error.status, error.error.message
            ),
        },
        other => WarehouseError::Backend {
            backend: "bigquery",
            detail: other.to_string(),
        },
    }
}

fn is_not_found(e: &BQError) -> bool {
    matches!(e, BQError::ResponseError { error } if error.error.code == 404)
}

impl BigQueryWarehouse {
    /// Connects to an emulator at `base_url` (e.g. `http://127.0.0.1:9050/bigquery/v2`) without
    /// credentials.
    pub async fn connect_emulator(base_url: &str, project: &str) -> Result<Self> {
        let client = gcp_bigquery_client::client_builder::ClientBuilder::new()
            .with_v2_base_url(base_url.trim_end_matches('/').to_owned())
            .build_from_authenticator(Arc::new(NoAuth))
            .await
            .map_err(bq_err)?;
        Ok(Self::with_client(client, project))
    }

    /// Connects to real BigQuery with Application Default Credentials (Workload Identity in
    /// the cluster).
    pub async fn connect_adc(project: &str) -> Result<Self> {
        let client = gcp_bigquery_client::client_builder::ClientBuilder::new()
            .build_from_application_default_credentials()
            .await
            .map_err(bq_err)?;
        Ok(Self::with_client(client, project))
    }

    /// Connects as configured by `TIPOFF_BIGQUERY_URL` (emulator) and `TIPOFF_BIGQUERY_PROJECT`.
    pub async fn from_env() -> Result<Self> {
        let project = std::env::var(BIGQUERY_PROJECT_ENV).unwrap_or_else(|_| "local".to_owned());
        match std::env::var(BIGQUERY_URL_ENV) {
            Ok(url) if !url.is_empty() => Self::connect_emulator(&url, &project).await,
            _ => Self::connect_adc(&project).await,
        }
    }

    fn with_client(client: Client, project: &str) -> Self {
        Self {
            client,
            project: project.to_owned(),
            schemas: Arc::default(),
            jobs: Arc::default(),
        }
    }

    /// How many query jobs (DDL, DML or SELECT) this handle and its clones have submitted.
    pub fn jobs_submitted(&self) -> u64 {
        self.jobs.load(Ordering::Relaxed)
    }

    fn qualified(&self, table: &TableRef) -> String {
        format!("`{}.{}`", table.dataset, table.table)
    }

    /// Runs one (possibly multi-statement) query to completion and returns all result rows.
    async fn query(&self, sql: String) -> Result<Vec<TableRow>> {
        self.query_with(sql, Vec::new()).await
    }

    /// [`Self::query`] with named query parameters (`@name` in the text).
    async fn query_with(&self, sql: String, params: Vec<QueryParameter>) -> Result<Vec<TableRow>> {
        let mut request = QueryRequest::new(sql);
        request.use_legacy_sql = false;
        if !params.is_empty() {
            request.parameter_mode = Some("NAMED".to_owned());
            request.query_parameters = Some(params);
        }
        request.timeout_ms = Some(60_000);
        self.jobs.fetch_add(1, Ordering::Relaxed);
        let response = self
            .client
            .job()
            .query(&self.project, request)
            .await
            .map_err(bq_err)?;
        if let Some(errors) = response.errors.as_ref().filter(|e| !e.is_empty()) {
            return Err(WarehouseError::Backend {
                backend: "bigquery",
                detail: format!("{errors:?}"),
            });
        }
        let mut rows = response.rows.unwrap_or_default();
        let mut complete = response.job_complete.unwrap_or(true);
        let mut page_token = response.page_token;
        let job_id = response.job_reference.and_then(|j| j.job_id);
        while !complete || page_token.is_some() {
            let Some(job_id) = job_id.as_deref() else {
                return Err(WarehouseError::Backend {
                    backend: "bigquery",
                    detail: "incomplete query without a job id".into(),
                });
            };
            if !complete {
                tokio::time::sleep(Duration::from_millis(200)).await;
            }
            let params = GetQueryResultsParameters {
                page_token: page_token.clone(),
                ..Default::default()
            };
            let page = self
                .client
                .job()
                .get_query_results(&self.project, job_id, params)
                .await
                .map_err(bq_err)?;
            if let Some(errors) = page.errors.as_ref().filter(|e| !e.is_empty()) {
                return Err(WarehouseError::Backend {
                    backend: "bigquery",
                    detail: format!("{errors:?}"),
                });
            }
            complete = page.job_complete.unwrap_or(true);
            if complete {
                rows.extend(page.rows.unwrap_or_default());
                page_token = page.page_token;
            }
        }
        Ok(rows)
    }

    async fn fetch_table(&self, table: &TableRef) -> Result<Option<Table>> {
        match self
            .client
            .table()
            .get(&self.project, &table.dataset, &table.table, None)
            .await
        {
            Ok(t) => Ok(Some(t)),
            Err(e) if is_not_found(&e) => Ok(None),
            Err(e) => Err(bq_err(e)),
        }
    }

    /// Runs a replace transaction, again when a concurrent one aborted it: it rolled back as a
    /// whole, so running it again is safe.
    async fn run_replace(
        &self,
        table: &TableRef,
        date: Date,
        sql: String,
        params: Vec<QueryParameter>,
        rows: usize,
    ) -> Result<u64> {
        let mut attempt = 0;
        loop {
            match self.query_with(sql.clone(), params.clone()).await {
                Ok(_) => return Ok(rows as u64),
                Err(e) if is_concurrent_abort(&e) && attempt < CONFLICT_RETRIES => {
                    attempt += 1;
                    tracing::warn!(table = %table, %date, attempt, "replace aborted by a concurrent update; retrying");
                    tokio::time::sleep(Duration::from_millis(250 << attempt)).await;
                }
                Err(e) => return Err(self.map_missing(table, e)),
            }
        }
    }

    /// The table's schema, from the cache or the server.
    async fn schema_of(&self, table: &TableRef) -> Result<TableSchema> {
        if let Ok(cache) = self.schemas.lock()
            && let Some(s) = cache.get(table)
        {
            return Ok(s.clone());
        }
        let schema = self.describe_table(table).await?;
        if let Ok(mut cache) = self.schemas.lock() {
            cache.insert(table.clone(), schema.clone());
        }
        Ok(schema)
    }

    /// A query failing with "not found" means the table vanished since it was cached.
    fn map_missing(&self, table: &TableRef, e: WarehouseError) -> WarehouseError {
        match &e {
            WarehouseError::Backend { detail, .. } if detail.starts_with("404") => {
                if let Ok(mut cache) = self.schemas.lock() {
                    cache.remove(table);
                }
                WarehouseError::TableNotFound {
                    table: table.to_string(),
                }
            }
            _ => e,
        }
    }
}

impl BigQueryWarehouse {
    /// `CREATE SCHEMA IF NOT EXISTS` and `CREATE TABLE IF NOT EXISTS` from a schema file.
    async fn create_table(&self, schema: &TableSchema) -> Result<()> {
        self.query(format!("CREATE SCHEMA IF NOT EXISTS `{}`", schema.dataset))
            .await?;
        let columns: Vec<String> = schema
            .fields
            .iter()
            .map(|f| {
                let not_null = if f.mode == FieldMode::Required {
                    " NOT NULL"
                } else {
                    ""
                };
                format!(
                    "{} {}{not_null} OPTIONS(description={})",
                    f.name,
                    f.field_type.sql_name(),
                    sql_string(&f.description)
                )
            })
            .collect();
        let cluster = if schema.clustering.is_empty() {
            String::new()
        } else {
            format!(" CLUSTER BY {}", schema.clustering.join(", "))
        };
        self.query(format!(
            "CREATE TABLE IF NOT EXISTS {} ({}) PARTITION BY {}{cluster} OPTIONS(description={})",
            self.qualified(&schema.table_ref()),
            columns.join(", "),
            schema.partition.field,
            sql_string(&schema.description),
        ))
        .await?;
        Ok(())
    }
}

/// Converts the REST table resource to a [`TableSchema`].
fn table_to_schema(table_ref: &TableRef, t: &Table) -> Result<TableSchema> {
    let unsupported = |detail: String| WarehouseError::SchemaMismatch {
        table: table_ref.to_string(),
        detail,
    };
    let fields = t
        .schema
        .fields
        .as_deref()
        .unwrap_or_default()
        .iter()
        .map(|f| {
            let type_name = serde_json::to_value(&f.r#type)
                .ok()
                .and_then(|v| v.as_str().map(str::to_owned))
                .unwrap_or_default();
            let field_type = FieldType::from_bigquery_name(&type_name)
                .ok_or_else(|| unsupported(format!("column `{}` has type {type_name}", f.name)))?;
            let mode = match f.mode.as_deref() {
                Some("REQUIRED") => FieldMode::Required,
                Some("REPEATED") => {
                    return Err(unsupported(format!("column `{}` is REPEATED", f.name)));
                }
                _ => FieldMode::Nullable,
            };
            Ok(FieldSchema {
                name: f.name.clone(),
                field_type,
                mode,
                description: f.description.clone().unwrap_or_default(),
            })
        })
        .collect::<Result<Vec<_>>>()?;
    let partition = t
        .time_partitioning
        .as_ref()
        .and_then(|p| {
            p.field.clone().map(|field| Partitioning {
                field,
                granularity: p.r#type.clone(),
            })
        })
        .ok_or_else(|| unsupported("table is not partitioned on a column".into()))?;
    Ok(TableSchema {
        dataset: table_ref.dataset.clone(),
        table: table_ref.table.clone(),
        description: t.description.clone().unwrap_or_default(),
        partition,
        clustering: t
            .clustering
            .as_ref()
            .and_then(|c| c.fields.clone())
            .unwrap_or_default(),
        fields,
    })
}

/// A GoogleSQL string literal: backslash escapes, as GoogleSQL has no doubled-quote form.
pub fn sql_string(s: &str) -> String {
    let mut out = String::with_capacity(s.len() + 2);
    out.push('\'');
    for c in s.chars() {
        match c {
            '\\' => out.push_str("\\\\"),
            '\'' => out.push_str("\\'"),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            c if c.is_control() => out.push_str(&format!("\\u{:04x}", c as u32)),
            c => out.push(c),
        }
    }
    out.push('\'');
    out
}

/// A GoogleSQL literal for a value of a column of type `t` (`NULL` typed by context).
pub fn sql_literal(v: &Value) -> String {
    match v {
        Value::Null => "NULL".to_owned(),
        Value::Bool(b) => if *b { "TRUE" } else { "FALSE" }.to_owned(),
        Value::Int(i) => i.to_string(),
        Value::Float(f) if f.is_nan() => "CAST('NaN' AS FLOAT64)".to_owned(),
        Value::Float(f) if f.is_infinite() => {
            format!("CAST('{}inf' AS FLOAT64)", if *f < 0.0 { "-" } else { "+" })
        }
        // `{:?}` prints the shortest representation that round-trips, always with a '.' or 'e'.
        Value::Float(f) => format!("{f:?}"),
        Value::String(s) => sql_string(s),
        Value::Date(d) => format!("DATE '{d}'"),
        Value::Timestamp(t) => format!("TIMESTAMP '{}'", t.strftime("%Y-%m-%dT%H:%M:%S%.6fZ")),
    }
}

/// A value as a query parameter's text (`None` for NULL), in the form the REST API takes for
/// the column's type.
fn parameter_text(v: &Value) -> Option<String> {
    Some(match v {
        Value::Null => return None,
        Value::Bool(b) => b.to_string(),
        Value::Int(i) => i.to_string(),
        Value::Float(f) if f.is_nan() => "NaN".to_owned(),
        Value::Float(f) if f.is_infinite() => {
            if *f < 0.0 { "-Infinity" } else { "Infinity" }.to_owned()
        }
        Value::Float(f) => format!("{f:?}"),
        Value::String(s) => s.clone(),
        Value::Date(d) => d.to_string(),
        Value::Timestamp(t) => t.strftime("%Y-%m-%d %H:%M:%S%.6f+00:00").to_string(),
    })
}

fn scalar_type(t: &str) -> QueryParameterType {
    QueryParameterType {
        r#type: t.to_owned(),
        ..QueryParameterType::default()
    }
}

/// A `DATE` parameter.
fn date_parameter(name: &str, d: Date) -> QueryParameter {
    QueryParameter {
        name: Some(name.to_owned()),
        parameter_type: Some(scalar_type("DATE")),
        parameter_value: Some(QueryParameterValue {
            value: Some(d.to_string()),
            ..QueryParameterValue::default()
        }),
    }
}

/// An `INT64` parameter.
fn int_parameter(name: &str, v: i64) -> QueryParameter {
    QueryParameter {
        name: Some(name.to_owned()),
        parameter_type: Some(scalar_type("INT64")),
        parameter_value: Some(QueryParameterValue {
            value: Some(v.to_string()),
            ..QueryParameterValue::default()
        }),
    }
}

/// `rows` as one `ARRAY<STRUCT<column ...>>` parameter named `name`, in the schema's order.
fn rows_parameter(name: &str, schema: &TableSchema, rows: &[Row]) -> QueryParameter {
    let struct_types = schema
        .fields
        .iter()
        .map(|f| QueryParameterTypeStructTypes {
            name: Some(f.name.clone()),
            r#type: Some(scalar_type(f.field_type.sql_name())),
            description: None,
        })
        .collect();
    let array_values = rows
        .iter()
        .map(|row| QueryParameterValue {
            struct_values: Some(
                schema
                    .fields
                    .iter()
                    .map(|f| {
                        let value = row.get(&f.name).and_then(parameter_text);
                        (
                            f.name.clone(),
                            QueryParameterValue {
                                value,
                                ..QueryParameterValue::default()
                            },
                        )
                    })
                    .collect(),
            ),
            ..QueryParameterValue::default()
        })
        .collect();
    QueryParameter {
        name: Some(name.to_owned()),
        parameter_type: Some(QueryParameterType {
            r#type: "ARRAY".to_owned(),
            array_type: Some(Box::new(QueryParameterType {
                r#type: "STRUCT".to_owned(),
                struct_types: Some(struct_types),
                ..QueryParameterType::default()
            })),
            ..QueryParameterType::default()
        }),
        parameter_value: Some(QueryParameterValue {
            array_values: Some(array_values),
            ..QueryParameterValue::default()
        }),
    }
}

/// `INSERT INTO target (...) SELECT r.... FROM UNNEST(@param) AS r`: the rows are the
/// parameter's, never the statement's.
fn insert_statement(target: &str, schema: &TableSchema, param: &str) -> String {
    let columns: Vec<&str> = schema.fields.iter().map(|f| f.name.as_str()).collect();
    let selected: Vec<String> = columns.iter().map(|c| format!("r.{c}")).collect();
    format!(
        "INSERT INTO {target} ({}) SELECT {} FROM UNNEST(@{param}) AS r",
        columns.join(", "),
        selected.join(", ")
    )
}

/// The partition replace as one transaction and its parameters: the text depends only on the
/// table and the number of row chunks.
fn replace_request(
    target: &str,
    schema: &TableSchema,
    date: Date,
    range: Option<&RowRange>,
    rows: &[Row],
) -> (String, Vec<QueryParameter>) {
    let mut sql = format!(
        "BEGIN TRANSACTION;\nDELETE FROM {target} WHERE {} = @partition_date",
        schema.partition.field
    );
    let mut params = vec![date_parameter("partition_date", date)];
    if let Some(r) = range {
        // The column is a schema identifier (`RowRange::validate`); the bounds are parameters.
        sql.push_str(&format!(
            " AND {c} >= @range_start AND {c} < @range_end",
            c = r.column
        ));
        params.push(int_parameter("range_start", r.start));
        params.push(int_parameter("range_end", r.end));
    }
    sql.push_str(";\n");
    for (i, chunk) in rows.chunks(REPLACE_INSERT_ROWS).enumerate() {
        let name = format!("rows_{i}");
        sql.push_str(&insert_statement(target, schema, &name));
        sql.push_str(";\n");
        params.push(rows_parameter(&name, schema, chunk));
    }
    sql.push_str("COMMIT TRANSACTION;");
    (sql, params)
}

/// Parses one REST cell (always a JSON string or null) as a value of type `t`.
fn parse_cell(v: Option<&serde_json::Value>, t: FieldType) -> Result<Value> {
    let text = match v {
        None | Some(serde_json::Value::Null) => return Ok(Value::Null),
        Some(serde_json::Value::String(s)) => s.as_str(),
        Some(serde_json::Value::Bool(b)) => return Ok(Value::Bool(*b)),
        Some(other) => {
            return Err(WarehouseError::Backend {
                backend: "bigquery",
                detail: format!("unexpected cell {other}"),
            });
        }
    };
    let bad = |e: String| WarehouseError::Backend {
        backend: "bigquery",
        detail: format!("cannot parse {text:?} as {}: {e}", t.sql_name()),
    };
    Ok(match t {
        FieldType::String => Value::String(text.to_owned()),
        FieldType::Int64 => Value::Int(
            text.parse()
                .map_err(|e: std::num::ParseIntError| bad(e.to_string()))?,
        ),
        FieldType::Float64 => Value::Float(match text {
            "NaN" => f64::NAN,
            "Infinity" | "inf" => f64::INFINITY,
            "-Infinity" | "-inf" => f64::NEG_INFINITY,
            _ => text
                .parse()
                .map_err(|e: std::num::ParseFloatError| bad(e.to_string()))?,
        }),
        FieldType::Bool => Value::Bool(match text {
            "true" | "TRUE" => true,
            "false" | "FALSE" => false,
            _ => return Err(bad("not a boolean".into())),
        }),
        FieldType::Date => Value::Date(text.parse().map_err(|e: jiff::Error| bad(e.to_string()))?),
        // The REST API returns TIMESTAMP as (fractional) seconds since the epoch.
        FieldType::Timestamp => Value::Timestamp(parse_epoch_seconds(text).map_err(bad)?),
    })
}

fn parse_epoch_seconds(text: &str) -> std::result::Result<Timestamp, String> {
    if let Ok(ts) = text.parse::<Timestamp>() {
        return Ok(ts);
    }
    let (secs, frac) = match text.split_once('.') {
        Some((s, f)) => (s, f),
        None => (text, ""),
    };
    let (secs, frac) = if secs.contains(['e', 'E']) || frac.contains(['e', 'E']) {
        // Scientific notation: fall back to f64, then round to microseconds.
        let f: f64 = text
            .parse()
            .map_err(|e: std::num::ParseFloatError| e.to_string())?;
        let micros = (f * 1e6).round() as i64;
        return Timestamp::from_microsecond(micros).map_err(|e| e.to_string());
    } else {
        (secs, frac)
    };
    let secs: i64 = secs
        .parse()
        .map_err(|e: std::num::ParseIntError| e.to_string())?;
    let mut frac6: String = frac.chars().take(6).collect();
    while frac6.len() < 6 {
        frac6.push('0');
    }
    let micros: i64 = frac6
        .parse()
        .map_err(|e: std::num::ParseIntError| e.to_string())?;
    let total = if text.starts_with('-') {
        secs * 1_000_000 - micros
    } else {
        secs * 1_000_000 + micros
    };
    Timestamp::from_microsecond(total).map_err(|e| e.to_string())
}

#[async_trait]
impl Warehouse for BigQueryWarehouse {
    fn backend(&self) -> &'static str {
        "bigquery"
    }

    async fn ensure_table(&self, schema: &TableSchema) -> Result<EnsureOutcome> {
        let table = schema.table_ref();
        // Processors of a phase start together and ensure tables of the same dataset at once;
        // DDL that loses such a race fails (the emulator: "Failed to commit"), so look again and
        // retry: the table is usually there by then.
        let mut attempt = 0;
        let outcome = loop {
            if self.fetch_table(&table).await?.is_some() {
                break EnsureOutcome::AlreadyExists;
            }
            match self.create_table(schema).await {
                Ok(()) => break EnsureOutcome::Created,
                Err(e) if e.is_transient() && attempt < DDL_RETRIES => {
                    attempt += 1;
                    tracing::warn!(table = %table, attempt, error = %e, "creating table failed; retrying");
                    tokio::time::sleep(Duration::from_millis(100 << attempt)).await;
                }
                Err(e) => return Err(e),
            }
        };
        let existing = self.describe_table(&table).await?;
        if let Some(detail) = schema.structural_difference(&existing) {
            return Err(WarehouseError::SchemaMismatch {
                table: table.to_string(),
                detail: format!("existing table differs: {detail}"),
            });
        }
        if let Ok(mut cache) = self.schemas.lock() {
            cache.insert(table, existing);
        }
        Ok(outcome)
    }

    async fn describe_table(&self, table: &TableRef) -> Result<TableSchema> {
        match self.fetch_table(table).await? {
            Some(t) => table_to_schema(table, &t),
            None => Err(WarehouseError::TableNotFound {
                table: table.to_string(),
            }),
        }
    }

    async fn replace_partition(&self, table: &TableRef, date: Date, rows: &[Row]) -> Result<u64> {
        let schema = self.schema_of(table).await?;
        validate_rows(&schema, rows, Some(date))?;
        let target = self.qualified(table);
        let (sql, params) = replace_request(&target, &schema, date, None, rows);
        self.run_replace(table, date, sql, params, rows.len()).await
    }

    async fn replace_range(
        &self,
        table: &TableRef,
        date: Date,
        range: &RowRange,
        rows: &[Row],
    ) -> Result<u64> {
        let schema = self.schema_of(table).await?;
        validate_rows(&schema, rows, Some(date))?;
        range.validate(&schema, rows)?;
        let target = self.qualified(table);
        let (sql, params) = replace_request(&target, &schema, date, Some(range), rows);
        self.run_replace(table, date, sql, params, rows.len()).await
    }

    async fn read_range(
        &self,
        table: &TableRef,
        from: Date,
        to: Date,
        columns: Option<&[&str]>,
    ) -> Result<Vec<Row>> {
        let schema = self.schema_of(table).await?;
        let columns = resolve_columns(&schema, columns)?;
        let sql = format!(
            "SELECT {} FROM {} WHERE {pf} BETWEEN @from_date AND @to_date",
            columns.join(", "),
            self.qualified(table),
            pf = schema.partition.field,
        );
        let params = vec![
            date_parameter("from_date", from),
            date_parameter("to_date", to),
        ];
        let rows = self
            .query_with(sql, params)
            .await
            .map_err(|e| self.map_missing(table, e))?;
        let types: Vec<FieldType> = columns
            .iter()
            .filter_map(|c| schema.field(c).map(|f| f.field_type))
            .collect();
        rows.into_iter()
            .map(|r| {
                let cells = r.columns.unwrap_or_default();
                let mut row = Row::new();
                for (i, (name, t)) in columns.iter().zip(&types).enumerate() {
                    let v = parse_cell(cells.get(i).and_then(|c| c.value.as_ref()), *t)?;
                    row.insert(name.clone(), v);
                }
                complete_row(&schema, &columns, &mut row);
                Ok(row)
            })
            .collect()
    }

    async fn partition_row_counts(
        &self,
        table: &TableRef,
        from: Date,
        to: Date,
    ) -> Result<BTreeMap<Date, u64>> {
        let schema = self.schema_of(table).await?;
        let pf = &schema.partition.field;
        let sql = format!(
            "SELECT {pf}, COUNT(*) FROM {} WHERE {pf} BETWEEN @from_date AND @to_date GROUP BY {pf}",
            self.qualified(table)
        );
        let params = vec![
            date_parameter("from_date", from),
            date_parameter("to_date", to),
        ];
        let rows = self
            .query_with(sql, params)
            .await
            .map_err(|e| self.map_missing(table, e))?;
        let mut out = BTreeMap::new();
        for r in rows {
            let cells = r.columns.unwrap_or_default();
            let date = parse_cell(
                cells.first().and_then(|c| c.value.as_ref()),
                FieldType::Date,
            )?;
            let count = parse_cell(
                cells.get(1).and_then(|c| c.value.as_ref()),
                FieldType::Int64,
            )?;
            if let (Value::Date(d), Value::Int(n)) = (date, count) {
                out.insert(d, u64::try_from(n).unwrap_or(0));
            }
        }
        Ok(out)
    }

    async fn append_rows(&self, table: &TableRef, rows: &[Row]) -> Result<u64> {
        let schema = self.schema_of(table).await?;
        validate_rows(&schema, rows, None)?;
        let target = self.qualified(table);
        for chunk in rows.chunks(RUN_HISTORY_BATCH_ROWS) {
            let sql = insert_statement(&target, &schema, "rows");
            self.query_with(sql, vec![rows_parameter("rows", &schema, chunk)])
                .await
                .map_err(|e| self.map_missing(table, e))?;
        }
        Ok(rows.len() as u64)
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used)]
mod tests {
    use super::*;

    #[test]
    fn concurrent_update_aborts_are_retried_other_errors_are_not() {
        let abort = WarehouseError::Backend {
            backend: "bigquery",
            detail: "400 INVALID_ARGUMENT: Transaction is aborted due to concurrent update \
                     against table p:d.t"
                .into(),
        };
        assert!(is_concurrent_abort(&abort));
        let syntax = WarehouseError::Backend {
            backend: "bigquery",
            detail: "400 Syntax error".into(),
        };
        assert!(!is_concurrent_abort(&syntax));
        assert!(!is_concurrent_abort(&WarehouseError::TableNotFound {
            table: "d.t".into()
        }));
    }

    #[test]
    fn write_statements_carry_no_values_only_parameters() {
        let schema = TableSchema {
            dataset: "d".into(),
            table: "t".into(),
            description: String::new(),
            partition: Partitioning {
                field: "game_date".into(),
                granularity: "DAY".into(),
            },
            clustering: vec![],
            fields: ["game_date", "note"]
                .iter()
                .zip([FieldType::Date, FieldType::String])
                .map(|(n, t)| FieldSchema {
                    name: (*n).into(),
                    field_type: t,
                    mode: FieldMode::Nullable,
                    description: String::new(),
                })
                .collect(),
        };
        let date = Date::constant(2026, 1, 29);
        let rows = |note: &str| -> Vec<Row> {
            vec![Row::from([
                ("game_date".to_owned(), Value::Date(date)),
                ("note".to_owned(), Value::String(note.to_owned())),
            ])]
        };
        let hostile = "x'); DROP TABLE `d.t`; --";
        let (a, params) = replace_request("`d.t`", &schema, date, None, &rows(hostile));
        let (b, _) = replace_request("`d.t`", &schema, date, None, &rows("plain"));
        // The text depends on the table and the row count only; the values are parameters.
        assert_eq!(a, b);
        assert!(!a.contains("DROP") && !a.contains("2026-01-29"), "{a}");
        let sent = serde_json::to_string(&params).unwrap();
        assert!(
            sent.contains("DROP TABLE") && sent.contains("2026-01-29"),
            "{sent}"
        );
        assert_eq!(
            insert_statement("`d.t`", &schema, "rows"),
            "INSERT INTO `d.t` (game_date, note) SELECT r.game_date, r.note FROM UNNEST(@rows) AS r"
        );
    }

    #[test]
    fn string_literals_escape_quotes_backslashes_and_newlines() {
        assert_eq!(sql_string("it's \\ a\nb"), r"'it\'s \\ a\nb'");
    }

    #[test]
    fn float_literals_round_trip() {
        for f in [0.1, 1.0, -2.5e-300, 1e21, 123456.789] {
            let lit = sql_literal(&Value::Float(f));
            assert_eq!(lit.parse::<f64>().unwrap(), f, "{lit}");
        }
    }

    #[test]
    fn epoch_seconds_parse_to_microseconds() {
        let ts = parse_epoch_seconds("1735725600.123456").unwrap();
        assert_eq!(ts.to_string(), "2025-01-01T10:00:00.123456Z");
        assert_eq!(
            parse_epoch_seconds("1735725600").unwrap().to_string(),
            "2025-01-01T10:00:00Z"
        );
        assert_eq!(
            parse_epoch_seconds("1.7357256E9").unwrap().to_string(),
            "2025-01-01T10:00:00Z"
        );
    }
}
