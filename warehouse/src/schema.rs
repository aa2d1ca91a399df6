//! Table schemas: the JSON files in `config/schemas/<dataset>/<table>.json`.
//!
//! The format mirrors BigQuery's own (`fields` with `name`, `type`, `mode`, `description`) plus
//! the table's dataset, name, day partitioning on a date column and clustering columns. Only the
//! scalar types the pipeline uses are supported; a nested or unknown type is rejected on load.

use std::collections::BTreeSet;
use std::fmt;
use std::path::Path;

use serde::{Deserialize, Serialize};

use crate::error::{Result, WarehouseError};

/// A column type (BigQuery standard SQL names).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum FieldType {
    /// UTF-8 text.
    #[serde(rename = "STRING")]
    String,
    /// 64-bit signed integer.
    #[serde(rename = "INT64")]
    Int64,
    /// 64-bit float.
    #[serde(rename = "FLOAT64")]
    Float64,
    /// Boolean.
    #[serde(rename = "BOOL")]
    Bool,
    /// Calendar date.
    #[serde(rename = "DATE")]
    Date,
    /// UTC instant with microsecond precision.
    #[serde(rename = "TIMESTAMP")]
    Timestamp,
}

impl FieldType {
    /// The GoogleSQL type name.
    pub fn sql_name(self) -> &'static str {
        match self {
            Self::String => "STRING",
            Self::Int64 => "INT64",
            Self::Float64 => "FLOAT64",
            Self::Bool => "BOOL",
            Self::Date => "DATE",
            Self::Timestamp => "TIMESTAMP",
        }
    }

    /// Parses a BigQuery REST type name, legacy aliases included (`FLOAT`, `INTEGER`, `BOOLEAN`).
    pub fn from_bigquery_name(name: &str) -> Option<Self> {
        Some(match name {
            "STRING" => Self::String,
            "INT64" | "INTEGER" => Self::Int64,
            "FLOAT64" | "FLOAT" => Self::Float64,
            "BOOL" | "BOOLEAN" => Self::Bool,
            "DATE" => Self::Date,
            "TIMESTAMP" => Self::Timestamp,
            _ => return None,
        })
    }
}

/// Whether a column may hold NULL.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "UPPERCASE")]
pub enum FieldMode {
    /// NULL allowed.
    #[default]
    Nullable,
    /// NULL rejected on write.
    Required,
}

/// One column.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FieldSchema {
    /// Column name (lower snake case).
    pub name: String,
    /// Column type.
    #[serde(rename = "type")]
    pub field_type: FieldType,
    /// Nullability.
    #[serde(default)]
    pub mode: FieldMode,
    /// What the column means.
    #[serde(default)]
    pub description: String,
}

/// Day partitioning on a DATE column.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Partitioning {
    /// The DATE column that partitions the table.
    pub field: String,
    /// Partition granularity; only `DAY` is supported.
    #[serde(rename = "type")]
    pub granularity: String,
}

/// A table's identity: dataset and table name.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct TableRef {
    /// Dataset, e.g. `nba_raw`.
    pub dataset: String,
    /// Table, e.g. `bdl_player_boxscores`.
    pub table: String,
}

impl TableRef {
    /// Builds a reference.
    pub fn new(dataset: impl Into<String>, table: impl Into<String>) -> Self {
        Self {
            dataset: dataset.into(),
            table: table.into(),
        }
    }
}

impl fmt::Display for TableRef {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}.{}", self.dataset, self.table)
    }
}

/// A table's full definition, as stored in `config/schemas/`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TableSchema {
    /// Dataset.
    pub dataset: String,
    /// Table name.
    pub table: String,
    /// What one row means.
    #[serde(default)]
    pub description: String,
    /// Day partitioning.
    pub partition: Partitioning,
    /// Clustering columns (at most four, BigQuery's limit).
    #[serde(default)]
    pub clustering: Vec<String>,
    /// Columns, in order.
    pub fields: Vec<FieldSchema>,
}

impl TableSchema {
    /// This table's reference.
    pub fn table_ref(&self) -> TableRef {
        TableRef::new(&self.dataset, &self.table)
    }

    /// The column definition by name.
    pub fn field(&self, name: &str) -> Option<&FieldSchema> {
        self.fields.iter().find(|f| f.name == name)
    }

    /// Parses and validates a schema from JSON text; `source_name` names it in errors.
    pub fn from_json(text: &str, source_name: &str) -> Result<Self> {
        let schema: Self =
            serde_json::from_str(text).map_err(|e| WarehouseError::InvalidSchema {
                source_name: source_name.to_owned(),
                detail: e.to_string(),
            })?;
        schema.validate(source_name)?;
        Ok(schema)
    }

    /// Reads and validates one schema file.
    pub fn load(path: &Path) -> Result<Self> {
        let text = std::fs::read_to_string(path).map_err(|e| WarehouseError::io(path, e))?;
        Self::from_json(&text, &path.display().to_string())
    }

    /// Checks the invariants both backends rely on.
    pub fn validate(&self, source_name: &str) -> Result<()> {
        let bad = |detail: String| {
            Err(WarehouseError::InvalidSchema {
                source_name: source_name.to_owned(),
                detail,
            })
        };
        let ident_ok = |s: &str| {
            !s.is_empty()
                && s.chars()
                    .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_')
                && !s.starts_with(|c: char| c.is_ascii_digit())
        };
        for name in [&self.dataset, &self.table] {
            if !ident_ok(name) {
                return bad(format!("`{name}` is not a lower-snake-case identifier"));
            }
        }
        let mut seen = BTreeSet::new();
        for f in &self.fields {
            if !ident_ok(&f.name) {
                return bad(format!(
                    "column `{}` is not a lower-snake-case identifier",
                    f.name
                ));
            }
            if !seen.insert(f.name.as_str()) {
                return bad(format!("column `{}` appears twice", f.name));
            }
        }
        if self.partition.granularity != "DAY" {
            return bad(format!(
                "partition type `{}`; only DAY",
                self.partition.granularity
            ));
        }
        match self.field(&self.partition.field) {
            Some(f) if f.field_type == FieldType::Date && f.mode == FieldMode::Required => {}
            _ => {
                return bad(format!(
                    "partition column `{}` must be a REQUIRED DATE column",
                    self.partition.field
                ));
            }
        }
        if self.clustering.len() > 4 {
            return bad("more than four clustering columns".into());
        }
        for c in &self.clustering {
            if self.field(c).is_none() {
                return bad(format!("clustering column `{c}` is not a column"));
            }
        }
        Ok(())
    }

    /// Compares the parts that decide how data is stored (columns, types, modes, partitioning,
    /// clustering); descriptions are documentation and may differ. Returns the first difference.
    pub fn structural_difference(&self, other: &TableSchema) -> Option<String> {
        if self.partition != other.partition {
            return Some(format!(
                "partitioned on `{}`, expected `{}`",
                other.partition.field, self.partition.field
            ));
        }
        if self.clustering != other.clustering {
            return Some(format!(
                "clustered on {:?}, expected {:?}",
                other.clustering, self.clustering
            ));
        }
        for (i, want) in self.fields.iter().enumerate() {
            match other.fields.get(i) {
                None => return Some(format!("column `{}` is missing", want.name)),
                Some(got) if got.name != want.name => {
                    return Some(format!(
                        "column {i} is `{}`, expected `{}`",
                        got.name, want.name
                    ));
                }
                Some(got) if got.field_type != want.field_type || got.mode != want.mode => {
                    return Some(format!(
                        "column `{}` is {:?} {:?}, expected {:?} {:?}",
                        want.name, got.mode, got.field_type, want.mode, want.field_type
                    ));
                }
                Some(_) => {}
            }
        }
        other
            .fields
            .get(self.fields.len())
            .map(|extra| format!("unexpected column `{}`", extra.name))
    }
}

/// Loads every `*.json` schema under `dir` (recursively), sorted by `dataset.table`.
pub fn load_dir(dir: &Path) -> Result<Vec<TableSchema>> {
    let mut out = Vec::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        let entries = std::fs::read_dir(&d).map_err(|e| WarehouseError::io(&d, e))?;
        for entry in entries {
            let path = entry.map_err(|e| WarehouseError::io(&d, e))?.path();
            if path.is_dir() {
                stack.push(path);
            } else if path.extension().is_some_and(|e| e == "json") {
                let schema = TableSchema::load(&path)?;
                let expected = format!("{}/{}.json", schema.dataset, schema.table);
                if !path.ends_with(&expected) {
                    return Err(WarehouseError::InvalidSchema {
                        source_name: path.display().to_string(),
                        detail: format!(
                            "a schema for {} must live at {expected}",
                            schema.table_ref()
                        ),
                    });
                }
                out.push(schema);
            }
        }
    }
    out.sort_by_key(|s| s.table_ref());
    Ok(out)
}

/// The repository's `config/schemas/` directory (for tests, benches and dev tools).
pub fn repo_schema_dir() -> std::path::PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../config/schemas")
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used)]
mod tests {
    use super::*;

    #[test]
    fn every_repo_schema_loads_and_is_valid() {
        let schemas = load_dir(&repo_schema_dir()).unwrap();
        let names: Vec<String> = schemas.iter().map(|s| s.table_ref().to_string()).collect();
        // Every table the legacy system names (the seeds' handoff notes and ARCHITECTURE 5).
        for expected in [
            "nba_raw.nbac_schedule",
            "nba_raw.bdl_player_boxscores",
            "nba_raw.nbac_play_by_play",
            "nba_raw.nbac_injury_report",
            "nba_raw.odds_api_player_points_props",
            "nba_raw.odds_api_game_lines",
            "nba_analytics.player_game_summary",
            "nba_analytics.upcoming_player_game_context",
            "nba_precompute.player_daily_cache",
            "nba_precompute.player_composite_factors",
            "nba_precompute.player_shot_zone_analysis",
            "nba_precompute.team_defense_zone_analysis",
            "nba_predictions.ml_feature_store_v2",
            "nba_predictions.player_prop_predictions",
            "nba_predictions.prediction_accuracy",
            "nba_reference.processor_run_history",
        ] {
            assert!(
                names.iter().any(|n| n == expected),
                "no schema for {expected}"
            );
        }
        let datasets: BTreeSet<_> = schemas.iter().map(|s| s.dataset.as_str()).collect();
        assert_eq!(
            datasets.into_iter().collect::<Vec<_>>(),
            [
                "nba_analytics",
                "nba_precompute",
                "nba_predictions",
                "nba_raw",
                "nba_reference"
            ]
        );
        for s in &schemas {
            assert!(
                s.fields.iter().all(|f| !f.description.is_empty()),
                "{}",
                s.table_ref()
            );
        }
    }

    #[test]
    fn rejects_partition_on_a_non_date_column() {
        let text = r#"{"dataset":"d","table":"t","partition":{"field":"x","type":"DAY"},
            "fields":[{"name":"x","type":"STRING","mode":"REQUIRED"}]}"#;
        let err = TableSchema::from_json(text, "t").unwrap_err();
        assert!(err.to_string().contains("REQUIRED DATE"), "{err}");
    }

    #[test]
    fn rejects_unknown_types_and_keys() {
        let text = r#"{"dataset":"d","table":"t","partition":{"field":"x","type":"DAY"},
            "fields":[{"name":"x","type":"RECORD"}]}"#;
        assert!(TableSchema::from_json(text, "t").is_err());
        let text = r#"{"dataset":"d","table":"t","partition":{"field":"x","type":"DAY"},
            "fields":[{"name":"x","type":"DATE","mode":"REQUIRED","colour":"red"}]}"#;
        assert!(TableSchema::from_json(text, "t").is_err());
    }

    #[test]
    fn structural_difference_ignores_descriptions_only() {
        let a = load_dir(&repo_schema_dir()).unwrap().remove(0);
        let mut b = a.clone();
        b.description = "other".into();
        b.fields[0].description = "other".into();
        assert_eq!(a.structural_difference(&b), None);
        b.fields[0].field_type = FieldType::Float64;
        assert!(a.structural_difference(&b).is_some());
    }
}
