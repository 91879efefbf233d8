//! [`Typed`]: turns a k8s-openapi type plus its [`Strategy`] into a [`Kind`] the generic handlers
//! can serve. Decoding through the typed struct is what makes the API strict about shapes: wrong
//! types fail, unknown fields are dropped (and reported for fieldValidation), and the stored JSON
//! is always the canonical encoding of the Kubernetes type.

use std::borrow::Cow;
use std::marker::PhantomData;

use k8s_openapi::Resource;
use serde::Serialize;
use serde::de::DeserializeOwned;
use serde_json::{Map, Value};
use skiff_apimachinery::validation::FieldError;
use skiff_openapi::Scope;

use super::{Column, Decoded, Generation, Kind, NameRule, ResourceInfo, Strategy, Subresource};

/// A kind served through its k8s-openapi type `K` and strategy `S`.
pub struct Typed<K, S> {
    info: ResourceInfo,
    strategy: S,
    _kind: PhantomData<fn() -> K>,
}

impl<K, S> Typed<K, S>
where
    K: Resource,
    K::Scope: Scope,
{
    /// Describes `K` from its k8s-openapi constants plus what they do not carry.
    pub fn new(
        strategy: S,
        short_names: &'static [&'static str],
        categories: &'static [&'static str],
        subresources: &'static [Subresource],
    ) -> Self {
        Typed {
            info: ResourceInfo {
                group: K::GROUP,
                version: K::VERSION,
                kind: K::KIND,
                plural: K::URL_PATH_SEGMENT,
                singular: K::KIND.to_ascii_lowercase(),
                namespaced: <K::Scope as Scope>::NAMESPACED,
                short_names,
                categories,
                subresources,
            },
            strategy,
            _kind: PhantomData,
        }
    }
}

impl<K, S> Typed<K, S>
where
    K: Serialize + DeserializeOwned,
    S: Strategy<K>,
{
    fn typed(obj: &Value) -> Option<K> {
        match typed_view(obj) {
            Cow::Borrowed(obj) => K::deserialize(obj).ok(),
            Cow::Owned(obj) => serde_json::from_value(obj).ok(),
        }
    }

    /// One pass through the typed struct: decode, convert, default, then `more` (which may change the
    /// object and returns validation errors), and back to JSON.
    fn decode_with(
        &self,
        obj: &Value,
        more: impl FnOnce(&mut K) -> Vec<FieldError>,
    ) -> Result<Decoded, String> {
        let view = typed_view(obj);
        let mut typed = K::deserialize(view.as_ref()).map_err(|e| e.to_string())?;
        let consumed = self.strategy.convert(&mut typed);
        self.strategy.default(&mut typed);
        let errors = more(&mut typed);
        let mut object = serde_json::to_value(&typed).map_err(|e| e.to_string())?;
        // Defaulting and preparation only add fields, so what the input has and the canonical
        // form lacks is exactly what the type does not know.
        let mut unknown = Vec::new();
        unknown_fields(&view, &object, "", &mut unknown);
        restore_managed_fields(obj, &mut object);
        unknown.retain(|path| !consumed.contains(&path.as_str()));
        Ok(Decoded {
            object,
            unknown_fields: unknown,
            errors,
        })
    }
}

/// `obj` for a pass through the typed struct: without `metadata.managedFields` when they are
/// well-formed entries. The field manager reads and checks them on its own; decoding them into
/// the typed struct and back (for every validation, defaulting and preparation of every write)
/// would copy field sets about as large as the rest of the object each time. Malformed ones
/// stay, so the typed decoding refuses them as Kubernetes' decoder does.
fn typed_view(obj: &Value) -> Cow<'_, Value> {
    let Some(Value::Array(entries)) = obj["metadata"].get("managedFields") else {
        return Cow::Borrowed(obj);
    };
    let well_formed = entries.iter().all(|entry| {
        entry.as_object().is_some_and(|entry| {
            entry.iter().all(|(key, value)| match key.as_str() {
                "fieldsV1" => value.is_object() || value.is_null(),
                _ => value.is_string() || value.is_null(),
            })
        })
    });
    if !well_formed {
        return Cow::Borrowed(obj);
    }
    let Some(map) = obj.as_object() else {
        return Cow::Borrowed(obj);
    };
    let view = map
        .iter()
        .map(|(key, value)| {
            let value = match (key.as_str(), value) {
                ("metadata", Value::Object(meta)) => Value::Object(without_managed_fields(meta)),
                _ => value.clone(),
            };
            (key.clone(), value)
        })
        .collect();
    Cow::Owned(Value::Object(view))
}

/// A copy of `metadata` without its `managedFields`.
pub fn without_managed_fields(metadata: &Map<String, Value>) -> Map<String, Value> {
    (metadata.iter())
        .filter(|(k, _)| *k != "managedFields")
        .map(|(k, v)| (k.clone(), v.clone()))
        .collect()
}

/// Puts `source`'s `metadata.managedFields` back on `object`, built from [`typed_view`].
fn restore_managed_fields(source: &Value, object: &mut Value) {
    if let Some(entries) = source["metadata"].get("managedFields")
        && let Some(meta) = object.get_mut("metadata").and_then(Value::as_object_mut)
        && !meta.contains_key("managedFields")
    {
        meta.insert("managedFields".into(), entries.clone());
    }
}

/// Paths of fields present (and not null) in `input` but absent from `canonical`.
pub fn unknown_fields(input: &Value, canonical: &Value, path: &str, out: &mut Vec<String>) {
    match (input, canonical) {
        (Value::Object(given), Value::Object(known)) => {
            for (key, value) in given {
                let child = if path.is_empty() {
                    key.clone()
                } else {
                    format!("{path}.{key}")
                };
                match known.get(key) {
                    Some(known) => unknown_fields(value, known, &child, out),
                    None if !value.is_null() => out.push(child),
                    None => {}
                }
            }
        }
        (Value::Array(given), Value::Array(known)) => {
            for (i, (value, known)) in given.iter().zip(known).enumerate() {
                unknown_fields(value, known, &format!("{path}[{i}]"), out);
            }
        }
        _ => {}
    }
}

impl<K, S> Kind for Typed<K, S>
where
    K: Resource
        + Serialize
        + DeserializeOwned
        + Clone
        + PartialEq
        + skiff_openapi::JsonSchema
        + Send
        + Sync
        + 'static,
    K::Scope: Scope,
    S: Strategy<K>,
{
    fn info(&self) -> &ResourceInfo {
        &self.info
    }

    fn decode(&self, obj: &Value) -> Result<Decoded, String> {
        self.decode_with(obj, |_| Vec::new())
    }

    fn decode_new(&self, obj: &Value) -> Result<Decoded, String> {
        self.decode_with(obj, |typed| {
            self.strategy.prepare_for_create(typed);
            self.strategy.validate(typed)
        })
    }

    fn validate(&self, obj: &Value) -> Vec<FieldError> {
        Self::typed(obj).map_or_else(Vec::new, |o| self.strategy.validate(&o))
    }

    fn validate_update(&self, new: &Value, old: &Value) -> Vec<FieldError> {
        match (Self::typed(new), Self::typed(old)) {
            (Some(new), Some(old)) => self.strategy.validate_update(&new, &old),
            _ => Vec::new(),
        }
    }

    fn validate_subresource_update(
        &self,
        sub: Subresource,
        new: &Value,
        old: &Value,
    ) -> Vec<FieldError> {
        match (Self::typed(new), Self::typed(old)) {
            (Some(new), Some(old)) => self.strategy.validate_subresource_update(sub, &new, &old),
            _ => Vec::new(),
        }
    }

    fn prepare_for_update(&self, through: Option<Subresource>, new: &mut Value, old: &Value) {
        let (Some(before), Some(old)) = (Self::typed(new), Self::typed(old)) else {
            return;
        };
        let mut after = before.clone();
        self.strategy.prepare_for_update(through, &mut after, &old);
        // As for deletion: only what the strategy changed is written back.
        if after != before
            && let Ok(mut value) = serde_json::to_value(&after)
        {
            restore_managed_fields(new, &mut value);
            *new = value;
        }
    }

    fn field(&self, obj: &Value, label: &str) -> Option<String> {
        if !self.strategy.field_labels().contains(&label) {
            return None;
        }
        Self::typed(obj).and_then(|o| self.strategy.field(&o, label))
    }

    fn field_labels(&self) -> &'static [&'static str] {
        self.strategy.field_labels()
    }

    fn columns(&self) -> &'static [Column] {
        self.strategy.columns()
    }

    fn cells(&self, obj: &Value) -> Vec<Value> {
        Self::typed(obj).map_or_else(Vec::new, |o| self.strategy.cells(&o))
    }

    fn whole_row(&self) -> bool {
        self.strategy.whole_row()
    }

    fn openapi(&self) -> skiff_openapi::Resource {
        skiff_openapi::Resource::of::<K>(
            self.info.has(Subresource::Status),
            self.info.has(Subresource::Scale),
        )
    }

    fn name_rule(&self) -> NameRule {
        self.strategy.name_rule()
    }

    fn creator_sets_status(&self) -> bool {
        self.strategy.creator_sets_status()
    }

    fn prepare_body_for_create(&self, obj: &mut Value) {
        self.strategy.prepare_body_for_create(obj)
    }

    fn allocates(&self) -> bool {
        self.strategy.allocates()
    }

    fn validate_delete(&self, name: &str) -> Result<(), String> {
        self.strategy.validate_delete(name)
    }

    fn graceful_deletion_period(&self, obj: &Value, requested: Option<i64>) -> i64 {
        Self::typed(obj).map_or(0, |o| self.strategy.graceful_deletion_period(&o, requested))
    }

    fn finalized_by_spec(&self, obj: &Value) -> bool {
        Self::typed(obj).is_some_and(|o| self.strategy.finalized_by_spec(&o))
    }

    fn prepare_for_delete(&self, obj: &mut Value) {
        let Some(before) = Self::typed(obj) else {
            return;
        };
        let mut after = before.clone();
        self.strategy.prepare_for_delete(&mut after);
        // Only what the strategy changed is written back, so other kinds' stored JSON stays
        // byte for byte as it was.
        if after != before
            && let Ok(mut value) = serde_json::to_value(&after)
        {
            restore_managed_fields(obj, &mut value);
            *obj = value;
        }
    }

    fn returns_deleted_object(&self) -> bool {
        self.strategy.returns_deleted_object()
    }

    fn generation(&self) -> Generation {
        self.strategy.generation()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn unknown_fields_are_reported_with_their_paths() {
        let input = json!({"spec": {"replicas": 1, "bogus": 2, "template": {"spec": {"containers": [{"name": "a", "imagee": "x"}]}}}, "extra": null});
        let canonical =
            json!({"spec": {"replicas": 1, "template": {"spec": {"containers": [{"name": "a"}]}}}});
        let mut out = Vec::new();
        unknown_fields(&input, &canonical, "", &mut out);
        assert_eq!(
            out,
            ["spec.bogus", "spec.template.spec.containers[0].imagee"]
        );
    }
}
