//! Just enough of Kubernetes' protobuf encoding to read the bodies kubectl
//! sends as `application/vnd.kubernetes.protobuf` for the types it never
//! sends as JSON (the access reviews, TokenRequest): the `k8s\0` magic, the
//! `runtime.Unknown` envelope, and a schema-driven decoder of the few
//! messages involved into their JSON form. Answers are always JSON (kubectl
//! accepts it); nothing else is decoded.

use serde_json::{Map, Value, json};

use crate::error::{ApiError, ApiResult};

const MAGIC: &[u8] = b"k8s\0";

/// How a field is decoded.
#[derive(Clone, Copy)]
enum Kind {
    /// A string.
    Str,
    /// A repeated string.
    Strings,
    /// A varint (int64/int32).
    Int,
    /// A nested message.
    Message(&'static [Field]),
}

type Field = (u64, &'static str, Kind);

const TYPE_META: &[Field] = &[(1, "apiVersion", Kind::Str), (2, "kind", Kind::Str)];
const UNKNOWN: &[Field] = &[
    (1, "typeMeta", Kind::Message(TYPE_META)),
    (3, "contentEncoding", Kind::Str),
    (4, "contentType", Kind::Str),
];
const OBJECT_META: &[Field] = &[
    (1, "name", Kind::Str),
    (2, "generateName", Kind::Str),
    (3, "namespace", Kind::Str),
];
const RESOURCE_ATTRIBUTES: &[Field] = &[
    (1, "namespace", Kind::Str),
    (2, "verb", Kind::Str),
    (3, "group", Kind::Str),
    (4, "version", Kind::Str),
    (5, "resource", Kind::Str),
    (6, "subresource", Kind::Str),
    (7, "name", Kind::Str),
];
const NON_RESOURCE_ATTRIBUTES: &[Field] = &[(1, "path", Kind::Str), (2, "verb", Kind::Str)];
const SELF_ACCESS_SPEC: &[Field] = &[
    (1, "resourceAttributes", Kind::Message(RESOURCE_ATTRIBUTES)),
    (
        2,
        "nonResourceAttributes",
        Kind::Message(NON_RESOURCE_ATTRIBUTES),
    ),
];
const ACCESS_SPEC: &[Field] = &[
    (1, "resourceAttributes", Kind::Message(RESOURCE_ATTRIBUTES)),
    (
        2,
        "nonResourceAttributes",
        Kind::Message(NON_RESOURCE_ATTRIBUTES),
    ),
    (3, "user", Kind::Str),
    (4, "groups", Kind::Strings),
    (6, "uid", Kind::Str),
];
const RULES_SPEC: &[Field] = &[(1, "namespace", Kind::Str)];
const TOKEN_SPEC: &[Field] = &[
    (1, "audiences", Kind::Strings),
    (4, "expirationSeconds", Kind::Int),
];

/// The message schema of a kind this server reads from protobuf.
fn schema(kind: &str) -> Option<[Field; 2]> {
    let spec = match kind {
        "SelfSubjectAccessReview" => SELF_ACCESS_SPEC,
        "SubjectAccessReview" | "LocalSubjectAccessReview" => ACCESS_SPEC,
        "SelfSubjectRulesReview" => RULES_SPEC,
        "TokenRequest" => TOKEN_SPEC,
        _ => return None,
    };
    Some([
        (1, "metadata", Kind::Message(OBJECT_META)),
        (2, "spec", Kind::Message(spec)),
    ])
}

fn malformed(what: &str) -> ApiError {
    ApiError::bad_request(format!("malformed protobuf request body: {what}"))
}

fn varint(bytes: &[u8], pos: &mut usize) -> ApiResult<u64> {
    let mut value = 0u64;
    for shift in (0..64).step_by(7) {
        let byte = *bytes
            .get(*pos)
            .ok_or_else(|| malformed("truncated varint"))?;
        *pos += 1;
        value |= u64::from(byte & 0x7f) << shift;
        if byte & 0x80 == 0 {
            return Ok(value);
        }
    }
    Err(malformed("varint too long"))
}

/// The fields of one message: (number, wire value) where length-delimited
/// values are their bytes and varints their value.
enum Wire<'a> {
    Varint(u64),
    Bytes(&'a [u8]),
}

fn fields(bytes: &[u8]) -> ApiResult<Vec<(u64, Wire<'_>)>> {
    let mut out = Vec::new();
    let mut pos = 0;
    while pos < bytes.len() {
        let key = varint(bytes, &mut pos)?;
        let (number, wire_type) = (key >> 3, key & 7);
        match wire_type {
            0 => out.push((number, Wire::Varint(varint(bytes, &mut pos)?))),
            1 => pos += 8,
            5 => pos += 4,
            2 => {
                let len = usize::try_from(varint(bytes, &mut pos)?)
                    .map_err(|_| malformed("length out of range"))?;
                let end = pos
                    .checked_add(len)
                    .filter(|end| *end <= bytes.len())
                    .ok_or_else(|| malformed("truncated field"))?;
                out.push((number, Wire::Bytes(&bytes[pos..end])));
                pos = end;
            }
            other => return Err(malformed(&format!("unsupported wire type {other}"))),
        }
    }
    if pos > bytes.len() {
        return Err(malformed("truncated fixed-size field"));
    }
    Ok(out)
}

fn decode(bytes: &[u8], schema: &[Field]) -> ApiResult<Value> {
    let mut map = Map::new();
    for (number, wire) in fields(bytes)? {
        let Some((_, name, kind)) = schema.iter().find(|(n, _, _)| *n == number) else {
            continue;
        };
        let text = |b: &[u8]| {
            String::from_utf8(b.to_vec()).map_err(|_| malformed("a string is not UTF-8"))
        };
        match (kind, wire) {
            (Kind::Str, Wire::Bytes(b)) => {
                map.insert((*name).into(), json!(text(b)?));
            }
            (Kind::Strings, Wire::Bytes(b)) => {
                let list = map.entry(*name).or_insert_with(|| json!([]));
                if let Some(list) = list.as_array_mut() {
                    list.push(json!(text(b)?));
                }
            }
            (Kind::Int, Wire::Varint(v)) => {
                map.insert((*name).into(), json!(v));
            }
            (Kind::Message(inner), Wire::Bytes(b)) => {
                map.insert((*name).into(), decode(b, inner)?);
            }
            _ => return Err(malformed(&format!("field {name} has the wrong wire type"))),
        }
    }
    Ok(Value::Object(map))
}

/// Decodes a protobuf request body (`k8s\0` + `runtime.Unknown`) of one of
/// the kinds above into its JSON form; any other kind is `415`.
pub fn decode_request(body: &[u8]) -> ApiResult<Value> {
    let envelope = body
        .strip_prefix(MAGIC)
        .ok_or_else(|| malformed("missing the k8s\\0 prefix"))?;
    let unknown = decode(envelope, UNKNOWN)?;
    let raw = fields(envelope)?
        .into_iter()
        .find_map(|(n, w)| match (n, w) {
            (2, Wire::Bytes(b)) => Some(b),
            _ => None,
        })
        .unwrap_or_default();
    let api_version = unknown["typeMeta"]["apiVersion"]
        .as_str()
        .unwrap_or_default();
    let kind = unknown["typeMeta"]["kind"].as_str().unwrap_or_default();
    let schema = schema(kind).ok_or_else(|| {
        ApiError::new(
            415,
            "UnsupportedMediaType",
            // The real server's wording; client-go retries with JSON on it.
            format!("the body of the request was in an unknown format - accepted media types include: application/json, application/yaml (protobuf only for access reviews and TokenRequests, not {kind})"),
        )
    })?;
    let mut object = decode(raw, &schema)?;
    object["apiVersion"] = json!(api_version);
    object["kind"] = json!(kind);
    Ok(object)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn field(number: u64, bytes: &[u8]) -> Vec<u8> {
        let mut out = vec![u8::try_from(number << 3 | 2).unwrap_or_default()];
        out.push(u8::try_from(bytes.len()).unwrap_or_default());
        out.extend_from_slice(bytes);
        out
    }

    #[test]
    fn decodes_a_self_subject_access_review_as_kubectl_sends_it() {
        let attributes = [
            field(1, b"tipoff"),
            field(2, b"patch"),
            field(3, b"tipoff.dev"),
            field(5, b"pipelineruns"),
            field(6, b"status"),
        ]
        .concat();
        let spec = field(1, &attributes);
        let review = [field(1, &[]), field(2, &spec)].concat();
        let type_meta = [
            field(1, b"authorization.k8s.io/v1"),
            field(2, b"SelfSubjectAccessReview"),
        ]
        .concat();
        let unknown = [field(1, &type_meta), field(2, &review), field(4, b"")].concat();
        let body = [MAGIC, &unknown].concat();
        let decoded = decode_request(&body).unwrap();
        assert_eq!(
            decoded,
            json!({
                "apiVersion": "authorization.k8s.io/v1",
                "kind": "SelfSubjectAccessReview",
                "metadata": {},
                "spec": {"resourceAttributes": {
                    "namespace": "tipoff", "verb": "patch", "group": "tipoff.dev",
                    "resource": "pipelineruns", "subresource": "status",
                }},
            })
        );
    }

    #[test]
    fn refuses_other_kinds_and_garbage() {
        let type_meta = [field(1, b"v1"), field(2, b"ConfigMap")].concat();
        let body = [MAGIC, &field(1, &type_meta)].concat();
        assert_eq!(decode_request(&body).unwrap_err().code, 415);
        assert_eq!(decode_request(b"{}").unwrap_err().code, 400);
        assert_eq!(
            decode_request(&[MAGIC, &[0x0a, 0x7f]].concat())
                .unwrap_err()
                .code,
            400
        );
    }
}
