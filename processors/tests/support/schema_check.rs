//! A minimal JSON Schema (draft 2020-12) checker for the subset `docs/schemas/exports/` uses:
//! `type` (one or a list), `properties`, `required`, `additionalProperties: false`, `items`,
//! `enum`, `const`, `minimum`, `maximum`, `minItems`, `format` (`date`, `date-time`), `$defs`
//! with local `$ref` (`#/$defs/<name>`), and the annotations `$schema`, `$id`, `title`,
//! `description`. Any other keyword is refused, so a schema can never rely on a rule this
//! checker silently skips (docs/exports.md says why no validator crate).

use serde_json::Value;

const ANNOTATIONS: &[&str] = &["$schema", "$id", "title", "description", "$defs"];
const RULES: &[&str] = &[
    "type",
    "properties",
    "required",
    "additionalProperties",
    "items",
    "enum",
    "const",
    "minimum",
    "maximum",
    "minItems",
    "format",
    "$ref",
];

/// Every violation of `schema` by `doc`, as `path: problem` (empty: valid). Panics on a schema
/// that uses a keyword outside the subset.
pub fn violations(schema: &Value, doc: &Value) -> Vec<String> {
    let mut out = Vec::new();
    check(schema, schema, doc, "$", &mut out);
    out
}

fn type_matches(t: &str, v: &Value) -> bool {
    match t {
        "null" => v.is_null(),
        "boolean" => v.is_boolean(),
        "object" => v.is_object(),
        "array" => v.is_array(),
        "string" => v.is_string(),
        "number" => v.is_number(),
        "integer" => v.is_i64() || v.is_u64(),
        other => panic!("unknown type {other:?} in the schema"),
    }
}

fn check(root: &Value, schema: &Value, v: &Value, path: &str, out: &mut Vec<String>) {
    let Some(s) = schema.as_object() else {
        panic!("schema at {path} is not an object");
    };
    for k in s.keys() {
        assert!(
            ANNOTATIONS.contains(&k.as_str()) || RULES.contains(&k.as_str()),
            "schema keyword {k:?} at {path} is outside the checked subset"
        );
    }
    if let Some(r) = s.get("$ref") {
        let name = r
            .as_str()
            .and_then(|r| r.strip_prefix("#/$defs/"))
            .unwrap_or_else(|| panic!("only #/$defs/ refs are supported: {r}"));
        let target = &root["$defs"][name];
        assert!(!target.is_null(), "unresolved $ref {r}");
        check(root, target, v, path, out);
    }
    if let Some(t) = s.get("type") {
        let types: Vec<&str> = match t {
            Value::String(t) => vec![t.as_str()],
            Value::Array(ts) => ts.iter().map(|t| t.as_str().unwrap()).collect(),
            _ => panic!("bad type at {path}"),
        };
        if !types.iter().any(|t| type_matches(t, v)) {
            out.push(format!("{path}: {v} is not of type {types:?}"));
            return;
        }
    }
    if let Some(e) = s.get("enum")
        && !e.as_array().unwrap().contains(v)
    {
        out.push(format!("{path}: {v} is not one of {e}"));
    }
    if let Some(c) = s.get("const")
        && c != v
    {
        out.push(format!("{path}: {v} is not {c}"));
    }
    if let (Some(min), Some(x)) = (s.get("minimum").and_then(Value::as_f64), v.as_f64())
        && x < min
    {
        out.push(format!("{path}: {x} < minimum {min}"));
    }
    if let (Some(max), Some(x)) = (s.get("maximum").and_then(Value::as_f64), v.as_f64())
        && x > max
    {
        out.push(format!("{path}: {x} > maximum {max}"));
    }
    if let (Some(f), Some(x)) = (s.get("format").and_then(Value::as_str), v.as_str()) {
        let ok = match f {
            "date" => x.len() == 10 && x.parse::<jiff::civil::Date>().is_ok(),
            "date-time" => x.parse::<jiff::Timestamp>().is_ok(),
            other => panic!("unknown format {other:?} at {path}"),
        };
        if !ok {
            out.push(format!("{path}: {x:?} is not a {f}"));
        }
    }
    if let Some(obj) = v.as_object() {
        let props = s.get("properties").and_then(Value::as_object);
        if let Some(req) = s.get("required").and_then(Value::as_array) {
            for r in req {
                let r = r.as_str().unwrap();
                if !obj.contains_key(r) {
                    out.push(format!("{path}: required property {r:?} missing"));
                }
            }
        }
        for (k, val) in obj {
            match props.and_then(|p| p.get(k)) {
                Some(ps) => check(root, ps, val, &format!("{path}.{k}"), out),
                None => {
                    if s.get("additionalProperties") == Some(&Value::Bool(false)) {
                        out.push(format!("{path}: property {k:?} is not allowed"));
                    }
                }
            }
        }
    }
    if let Some(items) = v.as_array() {
        if let Some(min) = s.get("minItems").and_then(Value::as_u64)
            && (items.len() as u64) < min
        {
            out.push(format!("{path}: fewer than {min} items"));
        }
        if let Some(is) = s.get("items") {
            for (i, item) in items.iter().enumerate() {
                check(root, is, item, &format!("{path}[{i}]"), out);
            }
        }
    }
}

/// The schema file `docs/schemas/exports/<name>.schema.json` of the workspace (this file is
/// included by tests of crates at different depths).
pub fn export_schema(name: &str) -> Value {
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
        .ancestors()
        .map(|a| a.join("docs/schemas/exports"))
        .find(|d| d.is_dir())
        .expect("docs/schemas/exports above the crate");
    let path = dir.join(format!("{name}.schema.json"));
    serde_json::from_str(&std::fs::read_to_string(&path).unwrap()).unwrap()
}

/// Asserts `bytes` parse and validate against the export schema `name`.
pub fn assert_valid(name: &str, bytes: &[u8]) {
    let doc: Value = serde_json::from_slice(bytes).unwrap();
    let v = violations(&export_schema(name), &doc);
    assert!(v.is_empty(), "{name}: {v:#?}");
}
