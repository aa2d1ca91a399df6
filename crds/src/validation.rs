//! Offline admission checks for custom resources: the OpenAPI v3 structural schema checks, the
//! pruning and the CEL `x-kubernetes-validations` (through `kube-cel`) that an API server runs
//! before it stores an object, with errors worded the way the API server words them.
//!
//! It is generic over any CRD version schema, so the fixture corpus checks tipoff's CRDs with it
//! and `dev/cluster` uses it for every CRD applied to it. It never talks to a cluster.

use std::collections::BTreeSet;
use std::fmt;

use serde_json::{Map, Value};

/// What kind of problem a field has; each maps to the API server's `StatusCause` reason.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum ErrorType {
    /// A required field is missing (`FieldValueRequired`).
    Required,
    /// A value breaks a rule (`FieldValueInvalid`).
    Invalid,
    /// A value outside an enum (`FieldValueNotSupported`).
    NotSupported(Vec<String>),
    /// A string over `maxLength` (`FieldValueTooLong`).
    TooLong(u64),
    /// A list or map over `maxItems`/`maxProperties` (`FieldValueTooMany`).
    TooMany(u64),
    /// A value a rule forbids, e.g. changing an immutable field (`FieldValueForbidden`).
    Forbidden,
    /// A duplicate in a set or list-map (`FieldValueDuplicate`).
    Duplicate,
    /// A field the schema does not declare, under `fieldValidation=Strict`.
    UnknownField,
}

/// One problem with one field.
#[derive(Clone, Debug, PartialEq)]
pub struct FieldError {
    /// The field's path, e.g. `spec.release.image` or `spec.overrides[0].reason`.
    pub field: String,
    /// The kind of problem.
    pub kind: ErrorType,
    /// The offending value, as the API server quotes it (CEL errors quote the type name).
    pub value: Option<Value>,
    /// The explanation: a rule's message or a schema constraint.
    pub detail: String,
}

impl FieldError {
    fn new(field: &str, kind: ErrorType, value: Option<Value>, detail: impl Into<String>) -> Self {
        Self {
            field: field.to_owned(),
            kind,
            value,
            detail: detail.into(),
        }
    }

    /// The `StatusCause.reason` the API server reports for this error.
    pub fn reason(&self) -> &'static str {
        match self.kind {
            ErrorType::Required => "FieldValueRequired",
            ErrorType::Invalid => "FieldValueInvalid",
            ErrorType::NotSupported(_) => "FieldValueNotSupported",
            ErrorType::TooLong(_) => "FieldValueTooLong",
            ErrorType::TooMany(_) => "FieldValueTooMany",
            ErrorType::Forbidden => "FieldValueForbidden",
            ErrorType::Duplicate => "FieldValueDuplicate",
            ErrorType::UnknownField => "FieldValueInvalid",
        }
    }

    /// The error without the field path, as in `StatusCause.message`.
    pub fn message(&self) -> String {
        let value = self.value.as_ref().map(quote).unwrap_or_default();
        let with_detail = |head: String| {
            if self.detail.is_empty() {
                head
            } else {
                format!("{head}: {}", self.detail)
            }
        };
        match &self.kind {
            ErrorType::Required => with_detail("Required value".into()),
            ErrorType::Invalid => with_detail(format!("Invalid value: {value}")),
            ErrorType::NotSupported(allowed) => {
                let allowed: Vec<String> = allowed.iter().map(|a| format!("{a:?}")).collect();
                format!(
                    "Unsupported value: {value}: supported values: {}",
                    allowed.join(", ")
                )
            }
            ErrorType::TooLong(max) => format!("Too long: may not be more than {max} bytes"),
            ErrorType::TooMany(max) => format!("Too many: {value}: must have at most {max} items"),
            ErrorType::Forbidden => with_detail("Forbidden".into()),
            ErrorType::Duplicate => format!("Duplicate value: {value}"),
            ErrorType::UnknownField => format!("unknown field \"{}\"", self.field),
        }
    }
}

impl fmt::Display for FieldError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.kind == ErrorType::UnknownField {
            return f.write_str(&self.message());
        }
        write!(f, "{}: {}", self.field, self.message())
    }
}

/// Quotes a value the way Go's `%#v`-ish field errors do: strings in double quotes, the rest
/// as compact JSON.
fn quote(value: &Value) -> String {
    match value {
        Value::String(s) => format!("{s:?}"),
        other => other.to_string(),
    }
}

/// The API server's message for a rejected object: `The <Kind> "<name>" is invalid: ...`.
pub fn invalid_message(kind: &str, name: &str, errors: &[FieldError]) -> String {
    let parts: Vec<String> = errors.iter().map(ToString::to_string).collect();
    let body = if parts.len() == 1 {
        parts[0].clone()
    } else {
        format!("[{}]", parts.join(", "))
    };
    format!("The {kind} \"{name}\" is invalid: {body}")
}

/// Options for one admission check.
#[derive(Clone, Copy, Debug, Default)]
pub struct Options {
    /// Report fields the schema does not declare as errors (`fieldValidation=Strict`) instead
    /// of pruning them silently.
    pub strict: bool,
}

/// A CRD version schema ready to check objects against: the `openAPIV3Schema` plus its CEL
/// rules compiled once.
pub struct SchemaChecker {
    schema: Value,
    compiled: kube_cel::CompiledSchema,
    validator: kube_cel::Validator,
}

impl fmt::Debug for SchemaChecker {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SchemaChecker").finish_non_exhaustive()
    }
}

impl SchemaChecker {
    /// Prepares the checker for one `openAPIV3Schema`. Rules that do not compile are reported
    /// as errors on every object, the way an API server would refuse the CRD.
    pub fn new(open_api_v3_schema: &Value) -> Self {
        Self {
            schema: open_api_v3_schema.clone(),
            compiled: kube_cel::compile_schema(open_api_v3_schema),
            validator: kube_cel::Validator::new(),
        }
    }

    /// Prepares a checker for the served version `version` of a CRD given as JSON.
    pub fn for_crd(crd: &Value, version: &str) -> Option<Self> {
        let versions = crd.pointer("/spec/versions")?.as_array()?;
        let v = versions
            .iter()
            .find(|v| v.get("name").and_then(Value::as_str) == Some(version))?;
        v.pointer("/schema/openAPIV3Schema").map(Self::new)
    }

    /// Admits an object the way the API server does on create (`old = None`) or update: applies
    /// defaults, prunes (or, when strict, reports) unknown fields, checks the structural schema
    /// and then the CEL rules. Returns the object as it would be stored, or every error found.
    pub fn admit(
        &self,
        object: &Value,
        old: Option<&Value>,
        options: Options,
    ) -> Result<Value, Vec<FieldError>> {
        let mut stored = kube_cel::apply_defaults(&self.schema, object);
        let mut errors = Vec::new();
        let mut unknown = Vec::new();
        prune(&self.schema, &mut stored, "", true, &mut unknown);
        if options.strict {
            errors.extend(
                unknown
                    .iter()
                    .map(|p| FieldError::new(p, ErrorType::UnknownField, None, "")),
            );
        }
        walk(&self.schema, &stored, "", true, &mut errors);
        let type_errors = errors
            .iter()
            .any(|e| matches!(e.kind, ErrorType::Invalid) && e.detail.contains("must be of type"));
        // CEL rules only make sense on a value of the declared shape; a type error already
        // says what is wrong, and a rule evaluated on the wrong type would only add noise.
        if !type_errors
            && let Err(cel_errors) = self
                .validator
                .validate_compiled(&self.compiled, &stored, old)
        {
            errors.extend(
                cel_errors
                    .iter()
                    .map(|e| cel_error(&self.schema, &stored, e)),
            );
        }
        if errors.is_empty() {
            Ok(stored)
        } else {
            Err(errors)
        }
    }
}

/// Turns a kube-cel error into the API server's wording: `Invalid value: "<type>": message`,
/// or the rule's `reason` (`FieldValueForbidden`, `FieldValueRequired`, ...).
fn cel_error(schema: &Value, object: &Value, e: &kube_cel::ValidationError) -> FieldError {
    let type_name = schema_at(schema, &e.field_path)
        .and_then(|s| s.get("type"))
        .and_then(Value::as_str)
        .map(str::to_owned)
        .or_else(|| value_at(object, &e.field_path).map(json_type_name))
        .unwrap_or_else(|| "object".to_owned());
    let kind = match e.reason.as_deref() {
        Some("FieldValueForbidden") => ErrorType::Forbidden,
        Some("FieldValueRequired") => ErrorType::Required,
        Some("FieldValueDuplicate") => ErrorType::Duplicate,
        _ => ErrorType::Invalid,
    };
    let value = (kind == ErrorType::Invalid).then_some(Value::String(type_name));
    FieldError::new(&e.field_path, kind, value, e.message.clone())
}

fn json_type_name(v: &Value) -> String {
    match v {
        Value::Null => "null",
        Value::Bool(_) => "boolean",
        Value::Number(n) if n.is_i64() || n.is_u64() => "integer",
        Value::Number(_) => "number",
        Value::String(_) => "string",
        Value::Array(_) => "array",
        Value::Object(_) => "object",
    }
    .to_owned()
}

/// Splits `spec.overrides[0].reason` into `["spec", "overrides", "[0]", "reason"]`.
fn segments(path: &str) -> Vec<String> {
    let mut out = Vec::new();
    for part in path.split('.').filter(|p| !p.is_empty()) {
        let mut rest = part;
        if let Some(i) = rest.find('[') {
            if i > 0 {
                out.push(rest[..i].to_owned());
            }
            rest = &rest[i..];
            while let Some(end) = rest.find(']') {
                out.push(rest[..=end].to_owned());
                rest = &rest[end + 1..];
            }
        } else {
            out.push(rest.to_owned());
        }
    }
    out
}

fn schema_at<'a>(schema: &'a Value, path: &str) -> Option<&'a Value> {
    let mut s = schema;
    for seg in segments(path) {
        s = if seg.starts_with('[') {
            s.get("items").or_else(|| s.get("additionalProperties"))?
        } else {
            s.get("properties")
                .and_then(|p| p.get(&seg))
                .or_else(|| s.get("additionalProperties").filter(|a| a.is_object()))?
        };
    }
    Some(s)
}

fn value_at<'a>(value: &'a Value, path: &str) -> Option<&'a Value> {
    let mut v = value;
    for seg in segments(path) {
        v = match seg.strip_prefix('[').and_then(|s| s.strip_suffix(']')) {
            Some(idx) => match idx.parse::<usize>() {
                Ok(i) => v.get(i)?,
                Err(_) => v.get(idx.trim_matches('"'))?,
            },
            None => v.get(&seg)?,
        };
    }
    Some(v)
}

fn join(path: &str, field: &str) -> String {
    if path.is_empty() {
        field.to_owned()
    } else {
        format!("{path}.{field}")
    }
}

/// Root-level fields every object has and no CRD schema needs to declare.
const IMPLICIT_ROOT_FIELDS: [&str; 3] = ["apiVersion", "kind", "metadata"];

fn preserves_unknown(schema: &Value) -> bool {
    schema
        .get("x-kubernetes-preserve-unknown-fields")
        .and_then(Value::as_bool)
        == Some(true)
}

/// Removes fields the schema does not declare, recording their paths.
fn prune(schema: &Value, value: &mut Value, path: &str, root: bool, unknown: &mut Vec<String>) {
    match value {
        Value::Object(map) => {
            let props = schema.get("properties").and_then(Value::as_object);
            let additional = schema.get("additionalProperties").filter(|a| a.is_object());
            if props.is_none() && additional.is_none() && preserves_unknown(schema) {
                return;
            }
            let keys: Vec<String> = map.keys().cloned().collect();
            for key in keys {
                let child_path = join(path, &key);
                let child_schema = props.and_then(|p| p.get(&key)).or(additional);
                match child_schema {
                    Some(cs) => {
                        if let Some(child) = map.get_mut(&key) {
                            prune(cs, child, &child_path, false, unknown);
                        }
                    }
                    None if root && IMPLICIT_ROOT_FIELDS.contains(&key.as_str()) => {}
                    None if preserves_unknown(schema) => {}
                    None => {
                        map.remove(&key);
                        unknown.push(child_path);
                    }
                }
            }
        }
        Value::Array(items) => {
            if let Some(item_schema) = schema.get("items") {
                for (i, item) in items.iter_mut().enumerate() {
                    prune(item_schema, item, &format!("{path}[{i}]"), false, unknown);
                }
            }
        }
        _ => {}
    }
}

fn walk(schema: &Value, value: &Value, path: &str, root: bool, errors: &mut Vec<FieldError>) {
    if value.is_null() {
        if schema.get("nullable").and_then(Value::as_bool) != Some(true)
            && schema.get("type").is_some()
        {
            type_error(schema, value, path, errors);
        }
        return;
    }
    let int_or_string = schema
        .get("x-kubernetes-int-or-string")
        .and_then(Value::as_bool)
        == Some(true);
    if int_or_string {
        if !(value.is_string() || value.is_i64() || value.is_u64()) {
            errors.push(FieldError::new(
                path,
                ErrorType::Invalid,
                Some(value.clone()),
                format!("{path} in body must be of type integer or string"),
            ));
        }
        return;
    }
    let ok = match schema.get("type").and_then(Value::as_str) {
        None => true,
        Some("string") => value.is_string(),
        Some("integer") => value.is_i64() || value.is_u64() || is_integral_float(value),
        Some("number") => value.is_number(),
        Some("boolean") => value.is_boolean(),
        Some("object") => value.is_object(),
        Some("array") => value.is_array(),
        Some(_) => true,
    };
    if !ok {
        type_error(schema, value, path, errors);
        return;
    }
    check_enum(schema, value, path, errors);
    match value {
        Value::String(s) => check_string(schema, s, value, path, errors),
        Value::Number(_) => check_number(schema, value, path, errors),
        Value::Array(items) => check_array(schema, items, value, path, errors),
        Value::Object(map) => check_object(schema, map, path, root, errors),
        _ => {}
    }
}

fn is_integral_float(value: &Value) -> bool {
    value.as_f64().is_some_and(|f| f.fract() == 0.0)
}

fn type_error(schema: &Value, value: &Value, path: &str, errors: &mut Vec<FieldError>) {
    let expected = schema
        .get("type")
        .and_then(Value::as_str)
        .unwrap_or("object");
    let actual = json_type_name(value);
    errors.push(FieldError::new(
        path,
        ErrorType::Invalid,
        Some(Value::String(actual.clone())),
        format!("{path} in body must be of type {expected}: {actual:?}"),
    ));
}

fn check_enum(schema: &Value, value: &Value, path: &str, errors: &mut Vec<FieldError>) {
    if let Some(allowed) = schema.get("enum").and_then(Value::as_array)
        && !allowed.contains(value)
    {
        let names = allowed
            .iter()
            .map(|a| a.as_str().map_or(a.to_string(), str::to_owned));
        errors.push(FieldError::new(
            path,
            ErrorType::NotSupported(names.collect()),
            Some(value.clone()),
            "",
        ));
    }
}

fn check_string(schema: &Value, s: &str, value: &Value, path: &str, errors: &mut Vec<FieldError>) {
    if let Some(max) = schema.get("maxLength").and_then(Value::as_u64)
        && s.chars().count() as u64 > max
    {
        errors.push(FieldError::new(
            path,
            ErrorType::TooLong(max),
            Some(value.clone()),
            "",
        ));
    }
    if let Some(min) = schema.get("minLength").and_then(Value::as_u64)
        && (s.chars().count() as u64) < min
    {
        errors.push(FieldError::new(
            path,
            ErrorType::Invalid,
            Some(value.clone()),
            format!("{path} in body should be at least {min} chars long"),
        ));
    }
    if let Some(pattern) = schema.get("pattern").and_then(Value::as_str) {
        match regex::Regex::new(pattern) {
            Ok(re) if re.is_match(s) => {}
            Ok(_) => errors.push(FieldError::new(
                path,
                ErrorType::Invalid,
                Some(value.clone()),
                format!("{path} in body should match '{pattern}'"),
            )),
            Err(e) => errors.push(FieldError::new(
                path,
                ErrorType::Invalid,
                Some(value.clone()),
                format!("the schema's pattern does not compile: {e}"),
            )),
        }
    }
    let format_ok = match schema.get("format").and_then(Value::as_str) {
        Some("date") => s.parse::<jiff::civil::Date>().is_ok(),
        Some("date-time") => s.parse::<jiff::Timestamp>().is_ok(),
        _ => true,
    };
    if !format_ok {
        let format = schema
            .get("format")
            .and_then(Value::as_str)
            .unwrap_or_default();
        errors.push(FieldError::new(
            path,
            ErrorType::Invalid,
            Some(value.clone()),
            format!("{path} in body must be of type {format}: {s:?}"),
        ));
    }
}

fn check_number(schema: &Value, value: &Value, path: &str, errors: &mut Vec<FieldError>) {
    let Some(n) = value.as_f64() else { return };
    let exclusive = |key: &str| schema.get(key).and_then(Value::as_bool) == Some(true);
    let shown = |b: f64| {
        if b.fract() == 0.0 {
            format!("{}", b as i64)
        } else {
            b.to_string()
        }
    };
    if let Some(min) = schema.get("minimum").and_then(Value::as_f64) {
        let bad = if exclusive("exclusiveMinimum") {
            n <= min
        } else {
            n < min
        };
        if bad {
            let op = if exclusive("exclusiveMinimum") {
                "greater than"
            } else {
                "greater than or equal to"
            };
            errors.push(FieldError::new(
                path,
                ErrorType::Invalid,
                Some(value.clone()),
                format!("{path} in body should be {op} {}", shown(min)),
            ));
        }
    }
    if let Some(max) = schema.get("maximum").and_then(Value::as_f64) {
        let bad = if exclusive("exclusiveMaximum") {
            n >= max
        } else {
            n > max
        };
        if bad {
            let op = if exclusive("exclusiveMaximum") {
                "less than"
            } else {
                "less than or equal to"
            };
            errors.push(FieldError::new(
                path,
                ErrorType::Invalid,
                Some(value.clone()),
                format!("{path} in body should be {op} {}", shown(max)),
            ));
        }
    }
}

fn check_array(
    schema: &Value,
    items: &[Value],
    value: &Value,
    path: &str,
    errors: &mut Vec<FieldError>,
) {
    if let Some(max) = schema.get("maxItems").and_then(Value::as_u64)
        && items.len() as u64 > max
    {
        errors.push(FieldError::new(
            path,
            ErrorType::TooMany(max),
            Some(Value::from(items.len())),
            "",
        ));
    }
    if let Some(min) = schema.get("minItems").and_then(Value::as_u64)
        && (items.len() as u64) < min
    {
        errors.push(FieldError::new(
            path,
            ErrorType::Invalid,
            Some(Value::from(items.len())),
            format!("{path} in body should have at least {min} items"),
        ));
    }
    if let Some(item_schema) = schema.get("items") {
        for (i, item) in items.iter().enumerate() {
            walk(item_schema, item, &format!("{path}[{i}]"), false, errors);
        }
    }
    match schema.get("x-kubernetes-list-type").and_then(Value::as_str) {
        Some("set") => {
            let mut seen = BTreeSet::new();
            for (i, item) in items.iter().enumerate() {
                if !seen.insert(item.to_string()) {
                    errors.push(FieldError::new(
                        &format!("{path}[{i}]"),
                        ErrorType::Duplicate,
                        Some(item.clone()),
                        "",
                    ));
                }
            }
        }
        Some("map") => {
            let keys: Vec<&str> = schema
                .get("x-kubernetes-list-map-keys")
                .and_then(Value::as_array)
                .map(|k| k.iter().filter_map(Value::as_str).collect())
                .unwrap_or_default();
            let mut seen = BTreeSet::new();
            for (i, item) in items.iter().enumerate() {
                let key: Map<String, Value> = keys
                    .iter()
                    .filter_map(|k| item.get(*k).map(|v| ((*k).to_owned(), v.clone())))
                    .collect();
                let key = Value::Object(key);
                if !seen.insert(key.to_string()) {
                    errors.push(FieldError::new(
                        &format!("{path}[{i}]"),
                        ErrorType::Duplicate,
                        Some(key),
                        "",
                    ));
                }
            }
        }
        _ => {}
    }
    let _ = value;
}

fn check_object(
    schema: &Value,
    map: &Map<String, Value>,
    path: &str,
    root: bool,
    errors: &mut Vec<FieldError>,
) {
    if let Some(required) = schema.get("required").and_then(Value::as_array) {
        for field in required.iter().filter_map(Value::as_str) {
            if !map.contains_key(field) {
                errors.push(FieldError::new(
                    &join(path, field),
                    ErrorType::Required,
                    None,
                    "",
                ));
            }
        }
    }
    if let Some(max) = schema.get("maxProperties").and_then(Value::as_u64)
        && map.len() as u64 > max
    {
        errors.push(FieldError::new(
            path,
            ErrorType::TooMany(max),
            Some(Value::from(map.len())),
            "",
        ));
    }
    let props = schema.get("properties").and_then(Value::as_object);
    let additional = schema.get("additionalProperties").filter(|a| a.is_object());
    for (key, child) in map {
        if root
            && IMPLICIT_ROOT_FIELDS.contains(&key.as_str())
            && props.is_none_or(|p| !p.contains_key(key))
        {
            continue;
        }
        if let Some(cs) = props.and_then(|p| p.get(key)) {
            walk(cs, child, &join(path, key), false, errors);
        } else if let Some(cs) = additional {
            walk(cs, child, &format!("{path}[{key}]"), false, errors);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn checker() -> SchemaChecker {
        SchemaChecker::new(&json!({
            "type": "object",
            "properties": {
                "spec": {
                    "type": "object",
                    "required": ["name"],
                    "properties": {
                        "name": {"type": "string", "maxLength": 5,
                                 "x-kubernetes-validations": [{"rule": "self != 'bad'", "message": "no bad names"}]},
                        "mode": {"type": "string", "enum": ["A", "B"]},
                        "n": {"type": "integer", "minimum": 1, "maximum": 3},
                        "tags": {"type": "array", "maxItems": 2, "items": {"type": "string"}, "x-kubernetes-list-type": "set"},
                        "free": {"type": "object", "x-kubernetes-preserve-unknown-fields": true},
                        "size": {"type": "integer", "default": 2}
                    },
                    "x-kubernetes-validations": [{"rule": "self.name == oldSelf.name", "message": "name is immutable", "reason": "FieldValueForbidden", "fieldPath": ".name"}]
                }
            }
        }))
    }

    fn errors(obj: Value, old: Option<Value>) -> Vec<String> {
        match checker().admit(&obj, old.as_ref(), Options { strict: true }) {
            Ok(_) => vec![],
            Err(e) => e.iter().map(ToString::to_string).collect(),
        }
    }

    #[test]
    fn valid_object_is_defaulted_and_kept() {
        let stored = checker()
            .admit(&json!({"apiVersion": "x/v1", "kind": "K", "metadata": {"name": "a"}, "spec": {"name": "ok", "free": {"any": 1}}}), None, Options::default())
            .unwrap();
        assert_eq!(stored["spec"]["size"], json!(2));
        assert_eq!(stored["spec"]["free"]["any"], json!(1));
    }

    #[test]
    fn structural_errors_are_worded_like_the_api_server() {
        assert_eq!(
            errors(json!({"spec": {}}), None),
            vec!["spec.name: Required value"]
        );
        assert_eq!(
            errors(json!({"spec": {"name": "toolong"}}), None),
            vec!["spec.name: Too long: may not be more than 5 bytes"]
        );
        assert_eq!(
            errors(json!({"spec": {"name": "a", "mode": "C"}}), None),
            vec!["spec.mode: Unsupported value: \"C\": supported values: \"A\", \"B\""]
        );
        assert_eq!(
            errors(json!({"spec": {"name": "a", "n": 0}}), None),
            vec!["spec.n: Invalid value: 0: spec.n in body should be greater than or equal to 1"]
        );
        assert_eq!(
            errors(json!({"spec": {"name": 7}}), None),
            vec![
                "spec.name: Invalid value: \"integer\": spec.name in body must be of type string: \"integer\""
            ]
        );
        assert_eq!(
            errors(
                json!({"spec": {"name": "a", "tags": ["x", "y", "x"]}}),
                None
            ),
            vec![
                "spec.tags: Too many: 3: must have at most 2 items",
                "spec.tags[2]: Duplicate value: \"x\""
            ]
        );
    }

    #[test]
    fn unknown_fields_are_pruned_or_strict_errors() {
        let obj = json!({"spec": {"name": "a", "extra": 1}});
        let stored = checker().admit(&obj, None, Options::default()).unwrap();
        assert!(stored["spec"].get("extra").is_none());
        assert_eq!(errors(obj, None), vec!["unknown field \"spec.extra\""]);
    }

    #[test]
    fn cel_rules_and_transition_rules() {
        assert_eq!(
            errors(json!({"spec": {"name": "bad"}}), None),
            vec!["spec.name: Invalid value: \"string\": no bad names"]
        );
        assert_eq!(
            errors(
                json!({"spec": {"name": "b"}}),
                Some(json!({"spec": {"name": "a"}}))
            ),
            vec!["spec.name: Forbidden: name is immutable"]
        );
        assert!(
            errors(
                json!({"spec": {"name": "a"}}),
                Some(json!({"spec": {"name": "a"}}))
            )
            .is_empty()
        );
    }

    #[test]
    fn invalid_message_aggregates_like_the_api_server() {
        let e1 = FieldError::new("spec.a", ErrorType::Required, None, "");
        let e2 = FieldError::new("spec.b", ErrorType::Forbidden, None, "immutable");
        assert_eq!(
            invalid_message("PipelineRun", "x", std::slice::from_ref(&e1)),
            "The PipelineRun \"x\" is invalid: spec.a: Required value"
        );
        assert_eq!(
            invalid_message("PipelineRun", "x", &[e1, e2]),
            "The PipelineRun \"x\" is invalid: [spec.a: Required value, spec.b: Forbidden: immutable]"
        );
    }
}
