//! Row values and their validation against a table schema.
//!
//! Validation is shared by both backends so that they reject the same rows with the same
//! message: an unknown column, a value of the wrong type or a NULL in a REQUIRED column is a
//! [`WarehouseError::SchemaMismatch`], never coerced.

use std::collections::BTreeMap;

use jiff::Timestamp;
use jiff::civil::Date;
use serde::{Deserialize, Serialize};

use crate::error::{Result, WarehouseError};
use crate::schema::{FieldMode, FieldType, TableSchema};

/// One cell.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub enum Value {
    /// SQL NULL.
    Null,
    /// BOOL.
    Bool(bool),
    /// INT64.
    Int(i64),
    /// FLOAT64.
    Float(f64),
    /// STRING.
    String(String),
    /// DATE.
    Date(Date),
    /// TIMESTAMP; stored with microsecond precision (see [`Value::timestamp`]).
    Timestamp(Timestamp),
}

impl Value {
    /// A TIMESTAMP value truncated to microseconds, the precision both backends keep.
    pub fn timestamp(ts: Timestamp) -> Self {
        Self::Timestamp(truncate_to_micros(ts))
    }

    /// The value's type, or `None` for NULL.
    pub fn field_type(&self) -> Option<FieldType> {
        Some(match self {
            Self::Null => return None,
            Self::Bool(_) => FieldType::Bool,
            Self::Int(_) => FieldType::Int64,
            Self::Float(_) => FieldType::Float64,
            Self::String(_) => FieldType::String,
            Self::Date(_) => FieldType::Date,
            Self::Timestamp(_) => FieldType::Timestamp,
        })
    }
}

impl From<&str> for Value {
    fn from(s: &str) -> Self {
        Self::String(s.to_owned())
    }
}
impl From<String> for Value {
    fn from(s: String) -> Self {
        Self::String(s)
    }
}
impl From<i64> for Value {
    fn from(v: i64) -> Self {
        Self::Int(v)
    }
}
impl From<f64> for Value {
    fn from(v: f64) -> Self {
        Self::Float(v)
    }
}
impl From<bool> for Value {
    fn from(v: bool) -> Self {
        Self::Bool(v)
    }
}
impl From<Date> for Value {
    fn from(v: Date) -> Self {
        Self::Date(v)
    }
}
impl From<Timestamp> for Value {
    fn from(v: Timestamp) -> Self {
        Self::timestamp(v)
    }
}
impl<T: Into<Value>> From<Option<T>> for Value {
    fn from(v: Option<T>) -> Self {
        v.map_or(Self::Null, Into::into)
    }
}

/// One row: column name to value. Columns absent from the map are NULL.
pub type Row = BTreeMap<String, Value>;

/// Truncates an instant to whole microseconds (towards the past).
pub fn truncate_to_micros(ts: Timestamp) -> Timestamp {
    let micros = ts.as_microsecond();
    Timestamp::from_microsecond(micros).unwrap_or(ts)
}

/// Checks every row against `schema` and, when `partition` is given, that each row's partition
/// column equals it. Returns the first problem as a [`WarehouseError::SchemaMismatch`].
pub fn validate_rows(schema: &TableSchema, rows: &[Row], partition: Option<Date>) -> Result<()> {
    let table = schema.table_ref().to_string();
    let mismatch = |i: usize, detail: String| WarehouseError::SchemaMismatch {
        table: table.clone(),
        detail: format!("row {i}: {detail}"),
    };
    for (i, row) in rows.iter().enumerate() {
        for (name, value) in row {
            let Some(field) = schema.field(name) else {
                return Err(mismatch(i, format!("unknown column `{name}`")));
            };
            match value.field_type() {
                None => {}
                Some(t) if t == field.field_type => {}
                Some(t) => {
                    return Err(mismatch(
                        i,
                        format!(
                            "column `{name}` is {}, got a {} value",
                            field.field_type.sql_name(),
                            t.sql_name()
                        ),
                    ));
                }
            }
            if let Value::Timestamp(ts) = value
                && ts.subsec_nanosecond() % 1000 != 0
            {
                return Err(mismatch(
                    i,
                    format!("column `{name}` has sub-microsecond precision; use Value::timestamp"),
                ));
            }
        }
        for field in &schema.fields {
            let is_null = matches!(row.get(&field.name), None | Some(Value::Null));
            if field.mode == FieldMode::Required && is_null {
                return Err(mismatch(
                    i,
                    format!("REQUIRED column `{}` is NULL", field.name),
                ));
            }
        }
        if let Some(date) = partition {
            let pf = &schema.partition.field;
            if row.get(pf) != Some(&Value::Date(date)) {
                return Err(WarehouseError::InvalidRequest(format!(
                    "row {i} of {table} has {pf} = {:?}, outside the partition {date} being replaced",
                    row.get(pf)
                )));
            }
        }
    }
    Ok(())
}

/// Checks that every requested column exists; `None` means all columns.
pub fn resolve_columns(schema: &TableSchema, columns: Option<&[&str]>) -> Result<Vec<String>> {
    match columns {
        None => Ok(schema.fields.iter().map(|f| f.name.clone()).collect()),
        Some(cols) => cols
            .iter()
            .map(|c| {
                if schema.field(c).is_some() {
                    Ok((*c).to_owned())
                } else {
                    Err(WarehouseError::SchemaMismatch {
                        table: schema.table_ref().to_string(),
                        detail: format!("unknown column `{c}` requested"),
                    })
                }
            })
            .collect(),
    }
}

/// Fills absent columns of `row` with NULL so rows compare equal whatever their origin.
pub fn complete_row(schema: &TableSchema, columns: &[String], row: &mut Row) {
    for c in columns {
        if schema.field(c).is_some() {
            row.entry(c.clone()).or_insert(Value::Null);
        }
    }
}
