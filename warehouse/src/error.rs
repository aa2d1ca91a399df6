//! Errors of the warehouse and object storage, each with a fixed category string (used as an
//! Event reason and a metric label by callers).

use thiserror::Error;

/// Result alias for warehouse operations.
pub type Result<T, E = WarehouseError> = std::result::Result<T, E>;

/// Everything that can go wrong reading or writing a table or an object.
#[derive(Debug, Error)]
pub enum WarehouseError {
    /// The table (or its dataset) does not exist; create it with `ensure_table` first.
    #[error("table {table} not found (was it created from config/schemas/?)")]
    TableNotFound {
        /// `dataset.table`.
        table: String,
    },
    /// Rows, a column list or an existing table disagree with the table's schema.
    #[error("schema mismatch on {table}: {detail}")]
    SchemaMismatch {
        /// `dataset.table`.
        table: String,
        /// What disagreed, naming the column.
        detail: String,
    },
    /// A schema file could not be read or is not valid.
    #[error("invalid schema {source_name}: {detail}")]
    InvalidSchema {
        /// File path or table name.
        source_name: String,
        /// What is wrong.
        detail: String,
    },
    /// The caller asked for something impossible (e.g. a row outside the replaced partition).
    #[error("invalid request: {0}")]
    InvalidRequest(String),
    /// The backend failed (network, emulator, BigQuery job error); usually transient.
    #[error("{backend} error: {detail}")]
    Backend {
        /// `bigquery`, `lake` or `object_store`.
        backend: &'static str,
        /// The backend's message.
        detail: String,
    },
    /// A local file operation failed.
    #[error("I/O error on {path}: {source}")]
    Io {
        /// The path involved.
        path: String,
        /// The underlying error.
        #[source]
        source: std::io::Error,
    },
}

impl WarehouseError {
    /// A fixed, bounded category for Event reasons and metric labels.
    pub fn category(&self) -> &'static str {
        match self {
            Self::TableNotFound { .. } => "TableNotFound",
            Self::SchemaMismatch { .. } => "SchemaMismatch",
            Self::InvalidSchema { .. } => "InvalidSchema",
            Self::InvalidRequest(_) => "InvalidRequest",
            Self::Backend { .. } => "BackendError",
            Self::Io { .. } => "IoError",
        }
    }

    /// Whether retrying the same call later may succeed.
    pub fn is_transient(&self) -> bool {
        matches!(self, Self::Backend { .. } | Self::Io { .. })
    }

    pub(crate) fn io(path: impl AsRef<std::path::Path>, source: std::io::Error) -> Self {
        Self::Io {
            path: path.as_ref().display().to_string(),
            source,
        }
    }
}
