//! Schema fragments shared by several fields: the CEL rules and bounds that make an invalid
//! object fail at `kubectl apply` with a message a person can act on.
//!
//! Each rule is attached with `#[schemars(transform = ...)]`, so the rule text lives once here
//! and the generated CRD, the offline fixture corpus and the docs all read the same rule.

use schemars::Schema;
use serde_json::{Value, json};

/// CEL: a real calendar day written `YYYY-MM-DD` (month lengths and leap years checked).
pub const DATE_RULE: &str = "self.matches('^[0-9]{4}-(0[1-9]|1[0-2])-(0[1-9]|[12][0-9]|3[01])$') && \
int(self.substring(8, 10)) <= (int(self.substring(5, 7)) == 2 ? \
((int(self.substring(0, 4)) % 4 == 0 && (int(self.substring(0, 4)) % 100 != 0 || int(self.substring(0, 4)) % 400 == 0)) ? 29 : 28) : \
(int(self.substring(5, 7)) in [4, 6, 9, 11] ? 30 : 31))";
/// The message shown when [`DATE_RULE`] fails.
pub const DATE_MESSAGE: &str =
    "must be a real calendar date written YYYY-MM-DD (America/New_York game day), e.g. 2026-01-29";

/// CEL: an image reference pinned by digest.
pub const IMAGE_RULE: &str =
    "self.matches('^[a-z0-9]([a-z0-9._/:-]*[a-z0-9])?@sha256:[a-f0-9]{64}$')";
/// The message shown when [`IMAGE_RULE`] fails.
pub const IMAGE_MESSAGE: &str = "must be pinned by digest: <repository>@sha256:<64 lowercase hex>, \
e.g. ghcr.io/tipoff/processor@sha256:9f86d081...; tags such as :latest can change under a running pipeline";

/// CEL: a git commit, abbreviated or full.
pub const COMMIT_RULE: &str = "self.matches('^[0-9a-f]{7,40}$')";
/// The message shown when [`COMMIT_RULE`] fails.
pub const COMMIT_MESSAGE: &str =
    "must be a git commit hash of 7 to 40 lowercase hex characters (git rev-parse --short HEAD)";

/// CEL: a reason that is not blank.
pub const REASON_RULE: &str = "self.trim().size() > 0";
/// The message shown when [`REASON_RULE`] fails.
pub const REASON_MESSAGE: &str =
    "every override needs a reason saying who asked for it and why; it is recorded in an Event";

/// CEL: a processor name as the catalog spells it.
pub const PROCESSOR_NAME_RULE: &str = "self.matches('^[a-z0-9]([a-z0-9-]*[a-z0-9])?$')";
/// The message shown when [`PROCESSOR_NAME_RULE`] fails.
pub const PROCESSOR_NAME_MESSAGE: &str =
    "must be a processor name from config/pipeline.yaml: lowercase letters, digits and '-'";

/// CEL: a rerun name: lowercase letters and digits only, so the Job name's last part
/// (`r<name>`) can never be mistaken for an attempt (`a<n>`) or another rerun.
pub const RERUN_NAME_RULE: &str = "self.matches('^[a-z0-9]+$')";
/// The message shown when [`RERUN_NAME_RULE`] fails.
pub const RERUN_NAME_MESSAGE: &str =
    "a rerun name is lowercase letters and digits only (at most 20), e.g. r1 or fixbox";

/// CEL: a game, as an NBA game id or `AWY@HOM`.
pub const GAME_RULE: &str = "self.matches('^([0-9]{10}|[A-Z]{2,4}@[A-Z]{2,4})$')";
/// The message shown when [`GAME_RULE`] fails.
pub const GAME_MESSAGE: &str =
    "a game is an NBA game id of 10 digits (0022500123) or AWY@HOM tricodes (BOS@LAL)";

/// Appends a CEL rule with its message to a schema's `x-kubernetes-validations`.
pub fn add_rule(schema: &mut Schema, rule: &str, message: &str) {
    add_rule_value(schema, json!({ "rule": rule, "message": message }));
}

/// Appends a raw validation-rule object (with e.g. `fieldPath` or `reason`).
pub fn add_rule_value(schema: &mut Schema, rule: Value) {
    let Some(obj) = schema.as_object_mut() else {
        return;
    };
    let rules = obj
        .entry("x-kubernetes-validations")
        .or_insert_with(|| Value::Array(Vec::new()));
    if let Value::Array(list) = rules {
        list.push(rule);
    }
}

/// Schema transform: a calendar date.
pub fn date(schema: &mut Schema) {
    add_rule(schema, DATE_RULE, DATE_MESSAGE);
}

/// Schema transform: a digest-pinned image.
pub fn image(schema: &mut Schema) {
    add_rule(schema, IMAGE_RULE, IMAGE_MESSAGE);
}

/// Schema transform: a git commit.
pub fn commit(schema: &mut Schema) {
    add_rule(schema, COMMIT_RULE, COMMIT_MESSAGE);
}

/// Schema transform: a non-blank reason.
pub fn reason(schema: &mut Schema) {
    add_rule(schema, REASON_RULE, REASON_MESSAGE);
}

/// Schema transform: a processor name.
pub fn processor_name(schema: &mut Schema) {
    add_rule(schema, PROCESSOR_NAME_RULE, PROCESSOR_NAME_MESSAGE);
}

/// Schema transform: a rerun name.
pub fn rerun_name(schema: &mut Schema) {
    add_rule(schema, RERUN_NAME_RULE, RERUN_NAME_MESSAGE);
}

/// Schema transform: a game id or matchup.
pub fn game(schema: &mut Schema) {
    add_rule(schema, GAME_RULE, GAME_MESSAGE);
}

/// Schema transform: a list of processor names (rule on each item).
pub fn processor_names(schema: &mut Schema) {
    if let Some(items) = schema.get_mut("items")
        && let Ok(items) = <&mut Schema>::try_from(items)
    {
        processor_name(items);
    }
    unique_items(schema);
}

/// Schema transform: a list whose items are unique (`x-kubernetes-list-type: set`).
pub fn unique_items(schema: &mut Schema) {
    schema.insert("x-kubernetes-list-type".into(), json!("set"));
}

/// Schema transform: a list-map keyed on `type` (conditions).
pub fn list_map_type(schema: &mut Schema) {
    list_map(schema, "type");
}

/// Schema transform: a list-map keyed on `processor`.
pub fn list_map_processor(schema: &mut Schema) {
    list_map(schema, "processor");
}

/// Schema transform: a list-map keyed on `name`.
pub fn list_map_name(schema: &mut Schema) {
    list_map(schema, "name");
}

/// Schema transform: a list-map keyed on `date`.
pub fn list_map_date(schema: &mut Schema) {
    list_map(schema, "date");
}

/// Schema transform: a list-map keyed on `phase`.
pub fn list_map_phase(schema: &mut Schema) {
    list_map(schema, "phase");
}

fn list_map(schema: &mut Schema, key: &str) {
    schema.insert("x-kubernetes-list-type".into(), json!("map"));
    schema.insert("x-kubernetes-list-map-keys".into(), json!([key]));
}
