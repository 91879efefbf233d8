//! A container's environment (Kubernetes' `makeEnvironmentVariables`): `envFrom` first, then
//! `env` (values, fieldRef, resourceFieldRef, configMapKeyRef, secretKeyRef), a later
//! variable replacing an earlier one of the same name; and `$(VAR)` expansion against it.

use k8s_openapi::api::core::v1::{Container, Pod};
use skiff_cri::v1;

use crate::Config;
use crate::configmap_secret::Sources;
use crate::downward_api::{self, Consumer};

/// The environment of `container`; `Err` says which reference cannot be resolved (the
/// container then waits with CreateContainerConfigError).
pub async fn environment(
    sources: &mut Sources,
    config: &Config,
    pod: &Pod,
    container: &Container,
    fields: Consumer<'_>,
) -> Result<Vec<v1::KeyValue>, String> {
    let mut env: Vec<(String, String)> = Vec::new();
    let mut set = |key: String, value: String| {
        env.retain(|(k, _)| *k != key);
        env.push((key, value));
    };
    for from in container.env_from.iter().flatten() {
        let prefix = from.prefix.clone().unwrap_or_default();
        if let Some(source) = &from.config_map_ref {
            let optional = source.optional.unwrap_or(false);
            match sources.config_map(&source.name, optional).await? {
                Some(cm) => {
                    for (k, v) in cm.data.iter().flatten() {
                        set(format!("{prefix}{k}"), v.clone());
                    }
                }
                None => continue,
            }
        }
        if let Some(source) = &from.secret_ref {
            let optional = source.optional.unwrap_or(false);
            if let Some(secret) = sources.secret(&source.name, optional).await? {
                for (k, v) in secret.data.iter().flatten() {
                    set(format!("{prefix}{k}"), String::from_utf8_lossy(&v.0).into());
                }
            }
        }
    }
    for var in container.env.iter().flatten() {
        let Some(from) = &var.value_from else {
            set(var.name.clone(), var.value.clone().unwrap_or_default());
            continue;
        };
        let value = if let Some(field) = &from.field_ref {
            Some(downward_api::field_value(pod, &field.field_path, fields)?)
        } else if let Some(field) = &from.resource_field_ref {
            // In env the container defaults to the one being started.
            let name = field
                .container_name
                .as_deref()
                .filter(|name| !name.is_empty())
                .unwrap_or(&container.name);
            Some(downward_api::resource_value(
                config,
                pod,
                name,
                &field.resource,
                field.divisor.as_ref(),
            )?)
        } else if let Some(key) = &from.config_map_key_ref {
            let optional = key.optional.unwrap_or(false);
            let cm = sources.config_map(&key.name, optional).await?;
            let value = cm.and_then(|cm| cm.data.as_ref()?.get(&key.key).cloned());
            required(value, optional, || {
                missing_key(&key.key, "ConfigMap", sources.namespace(), &key.name)
            })?
        } else if let Some(key) = &from.secret_key_ref {
            let optional = key.optional.unwrap_or(false);
            let secret = sources.secret(&key.name, optional).await?;
            let value = secret.and_then(|s| {
                let value = s.data.as_ref()?.get(&key.key)?;
                Some(String::from_utf8_lossy(&value.0).into_owned())
            });
            required(value, optional, || {
                missing_key(&key.key, "Secret", sources.namespace(), &key.name)
            })?
        } else {
            None
        };
        if let Some(value) = value {
            set(var.name.clone(), value);
        }
    }
    Ok(env
        .into_iter()
        .map(|(key, value)| v1::KeyValue { key, value })
        .collect())
}

/// A key's value, which only an optional reference may lack.
fn required(
    value: Option<String>,
    optional: bool,
    missing: impl FnOnce() -> String,
) -> Result<Option<String>, String> {
    match value {
        None if !optional => Err(missing()),
        value => Ok(value),
    }
}

fn missing_key(key: &str, kind: &str, namespace: &str, name: &str) -> String {
    format!("couldn't find key {key} in {kind} {namespace}/{name}")
}

/// `$(VAR)` references in `expr` (a subPathExpr) replaced by the container's environment
/// (unknown ones stay as written, `$$` is a literal `$`), as Kubernetes' `expansion.Expand`.
pub fn expand(expr: &str, env: &[v1::KeyValue]) -> String {
    let mut out = String::new();
    let mut rest = expr;
    while let Some(at) = rest.find('$') {
        out.push_str(&rest[..at]);
        let after = &rest[at + 1..];
        if let Some(tail) = after.strip_prefix('$') {
            out.push('$');
            rest = tail;
        } else if let Some((name, tail)) = after
            .strip_prefix('(')
            .and_then(|inner| inner.split_once(')'))
        {
            match env.iter().rev().find(|kv| kv.key == name) {
                Some(kv) => out.push_str(&kv.value),
                None => out.push_str(&format!("$({name})")),
            }
            rest = tail;
        } else {
            out.push('$');
            rest = after;
        }
    }
    out.push_str(rest);
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sub_path_expressions() {
        let env = [v1::KeyValue {
            key: "POD".into(),
            value: "web-1".into(),
        }];
        assert_eq!(expand("logs/$(POD)", &env), "logs/web-1");
        assert_eq!(expand("$(MISSING)/x", &env), "$(MISSING)/x");
        assert_eq!(expand("a$$b$", &env), "a$b$");
        assert_eq!(expand("$(unclosed", &env), "$(unclosed");
    }

    #[test]
    fn the_last_definition_wins() {
        let env = [
            v1::KeyValue {
                key: "A".into(),
                value: "first".into(),
            },
            v1::KeyValue {
                key: "A".into(),
                value: "second".into(),
            },
        ];
        assert_eq!(expand("$(A)", &env), "second");
    }

    #[test]
    fn only_optional_references_may_lack_a_key() {
        let missing = || missing_key("k", "ConfigMap", "ns", "c");
        assert_eq!(required(None, true, missing), Ok(None));
        assert_eq!(
            required(None, false, missing).unwrap_err(),
            "couldn't find key k in ConfigMap ns/c"
        );
        assert_eq!(
            required(Some("v".into()), false, missing),
            Ok(Some("v".into()))
        );
    }

    /// Values and the downward API need no API object: a pod-free run of the whole resolver.
    #[tokio::test]
    async fn values_and_field_refs() {
        let pod: Pod = serde_json::from_value(serde_json::json!({
            "metadata": {"name": "p", "namespace": "ns", "uid": "u"},
            "spec": {"containers": [{"name": "c", "env": [
                {"name": "A", "value": "1"},
                {"name": "NAME", "valueFrom": {"fieldRef": {"fieldPath": "metadata.name"}}},
                {"name": "IP", "valueFrom": {"fieldRef": {"fieldPath": "status.podIP"}}},
                {"name": "A", "value": "2"},
            ]}]},
        }))
        .unwrap();
        let client = unreachable_client();
        let mut sources = Sources::new(client, "ns");
        let container = &pod.spec.as_ref().unwrap().containers[0];
        let fields = Consumer::Env {
            pod_ip: Some("10.1.2.3"),
            host_ip: None,
        };
        let env = environment(&mut sources, &Config::new("n"), &pod, container, fields)
            .await
            .unwrap();
        let got: Vec<(&str, &str)> = env
            .iter()
            .map(|kv| (kv.key.as_str(), kv.value.as_str()))
            .collect();
        assert_eq!(got, [("NAME", "p"), ("IP", "10.1.2.3"), ("A", "2")]);
    }

    /// A client for an address nothing listens on (these tests never reach the API).
    fn unreachable_client() -> kube::Client {
        let config = kube::Config::new("http://127.0.0.1:9".parse().unwrap());
        kube::Client::try_from(config).unwrap()
    }
}
