//! The small subset of Kubernetes JSONPath that printer columns use:
//! `.a.b`, `.a[0].b`, `.a[*].b`, `.a[?(@.type=="Ready")].status` and
//! `{...}` wrapping. Results are the matched values.

use serde_json::Value;

#[derive(Debug, Clone, PartialEq)]
enum Step {
    Field(String),
    Index(i64),
    All,
    Filter(String, String),
}

fn parse(path: &str) -> Option<Vec<Step>> {
    let path = path.trim();
    let path = path
        .strip_prefix('{')
        .and_then(|p| p.strip_suffix('}'))
        .unwrap_or(path);
    let path = path.strip_prefix('$').unwrap_or(path);
    let mut steps = Vec::new();
    let chars: Vec<char> = path.chars().collect();
    let mut i = 0;
    while i < chars.len() {
        match chars[i] {
            '.' => {
                let start = i + 1;
                let mut end = start;
                while end < chars.len() && chars[end] != '.' && chars[end] != '[' {
                    end += 1;
                }
                let name: String = chars[start..end].iter().collect();
                if !name.is_empty() {
                    steps.push(Step::Field(name));
                }
                i = end;
            }
            '[' => {
                let mut end = i + 1;
                let mut depth = 1;
                while end < chars.len() && depth > 0 {
                    match chars[end] {
                        '[' => depth += 1,
                        ']' => depth -= 1,
                        _ => {}
                    }
                    end += 1;
                }
                let inner: String = chars[i + 1..end.saturating_sub(1)].iter().collect();
                let inner = inner.trim();
                if inner == "*" {
                    steps.push(Step::All);
                } else if let Some(filter) =
                    inner.strip_prefix("?(").and_then(|f| f.strip_suffix(')'))
                {
                    let (lhs, rhs) = filter.split_once("==")?;
                    let field = lhs.trim().strip_prefix("@.")?.to_string();
                    let value = rhs
                        .trim()
                        .trim_matches(|c| c == '"' || c == '\'')
                        .to_string();
                    steps.push(Step::Filter(field, value));
                } else if let Ok(index) = inner.parse() {
                    steps.push(Step::Index(index));
                } else {
                    steps.push(Step::Field(
                        inner.trim_matches(|c| c == '\'' || c == '"').to_string(),
                    ));
                }
                i = end;
            }
            _ => {
                // A leading bare name (`spec.x`).
                let start = i;
                let mut end = start;
                while end < chars.len() && chars[end] != '.' && chars[end] != '[' {
                    end += 1;
                }
                steps.push(Step::Field(chars[start..end].iter().collect()));
                i = end;
            }
        }
    }
    Some(steps)
}

/// Evaluates `path` against `value`, returning every match.
pub fn evaluate<'a>(path: &str, value: &'a Value) -> Vec<&'a Value> {
    let Some(steps) = parse(path) else {
        return Vec::new();
    };
    let mut current = vec![value];
    for step in &steps {
        let mut next = Vec::new();
        for v in current {
            match step {
                Step::Field(name) => {
                    if let Some(x) = v.get(name) {
                        next.push(x);
                    }
                }
                Step::Index(i) => {
                    if let Some(items) = v.as_array() {
                        let idx = if *i < 0 { items.len() as i64 + i } else { *i };
                        if let Some(x) = usize::try_from(idx).ok().and_then(|i| items.get(i)) {
                            next.push(x);
                        }
                    }
                }
                Step::All => {
                    if let Some(items) = v.as_array() {
                        next.extend(items.iter());
                    }
                }
                Step::Filter(field, expected) => {
                    if let Some(items) = v.as_array() {
                        for item in items {
                            let got = match item.get(field) {
                                Some(Value::String(s)) => s.clone(),
                                Some(other) => other.to_string(),
                                None => continue,
                            };
                            if &got == expected {
                                next.push(item);
                            }
                        }
                    }
                }
            }
        }
        current = next;
    }
    current
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn printer_column_paths() {
        let obj = json!({"spec": {"date": "2026-01-01"}, "status": {
            "phases": [{"state": "Done"}, {"state": "Running"}],
            "conditions": [{"type": "Ready", "status": "True"}, {"type": "Other", "status": "False"}]}});
        assert_eq!(evaluate(".spec.date", &obj), vec![&json!("2026-01-01")]);
        assert_eq!(
            evaluate(".status.phases[0].state", &obj),
            vec![&json!("Done")]
        );
        assert_eq!(
            evaluate(".status.phases[-1].state", &obj),
            vec![&json!("Running")]
        );
        assert_eq!(evaluate(".status.phases[*].state", &obj).len(), 2);
        assert_eq!(
            evaluate(r#".status.conditions[?(@.type=="Ready")].status"#, &obj),
            vec![&json!("True")]
        );
        assert!(evaluate(".status.missing", &obj).is_empty());
    }
}
