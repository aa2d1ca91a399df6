//! Admission of custom resources: wires `tipoff_crds::validation` (OpenAPI
//! schema, pruning, defaults, CEL rules) into the store's validator hook,
//! caching one compiled checker per CRD version schema. The checks
//! themselves live in `tipoff-crds`; this module only adapts errors.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use serde_json::Value;
use tipoff_crds::validation::{Options, SchemaChecker, invalid_message};

use crate::error::{ApiError, ApiResult, Cause};
use crate::resources::ResourceInfo;

type Cache = HashMap<String, (Value, Arc<SchemaChecker>)>;

/// Validates custom resources against their CRD version's schema.
#[derive(Default)]
pub struct CrdValidator {
    cache: Mutex<Cache>,
}

impl CrdValidator {
    fn checker(&self, info: &ResourceInfo, schema: &Value) -> Arc<SchemaChecker> {
        let key = format!("{}/{}/{}", info.group, info.plural, info.version);
        let mut cache = self.cache.lock().unwrap_or_else(|e| e.into_inner());
        if let Some((cached_schema, checker)) = cache.get(&key)
            && cached_schema == schema
        {
            return checker.clone();
        }
        let checker = Arc::new(SchemaChecker::new(schema));
        cache.insert(key, (schema.clone(), checker.clone()));
        checker
    }

    /// Admits `object` (create when `old` is `None`), replacing it with the
    /// pruned and defaulted form, or returns `422 Invalid` shaped like the real server.
    pub fn admit(
        &self,
        info: &ResourceInfo,
        object: &mut Value,
        old: Option<&Value>,
        strict: bool,
    ) -> ApiResult<()> {
        let Some(schema) = info
            .crd_version
            .as_ref()
            .map(|v| &v["schema"]["openAPIV3Schema"])
            .filter(|s| s.is_object())
        else {
            return Ok(());
        };
        let checker = self.checker(info, schema);
        match checker.admit(object, old, Options { strict }) {
            Ok(stored) => {
                *object = stored;
                Ok(())
            }
            Err(errors) => {
                let name = object["metadata"]["name"].as_str().unwrap_or_default();
                let causes = errors
                    .iter()
                    .map(|e| Cause {
                        reason: e.reason().to_string(),
                        message: e.message(),
                        field: e.field.clone(),
                    })
                    .collect();
                Err(ApiError::invalid_with_message(
                    &info.group,
                    &info.kind,
                    name,
                    invalid_message(&info.kind, name, &errors),
                    causes,
                ))
            }
        }
    }
}
