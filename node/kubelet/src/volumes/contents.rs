//! The files of the API-backed volumes (Kubernetes' configmap, secret, downwardapi and
//! projected plugins): a configMap's or secret's keys (or the `items` picked), downward-API
//! fields, or a projected volume's sources together; what [`super::atomic_writer`] writes.

use std::collections::BTreeMap;

use k8s_openapi::api::core::v1::{
    ConfigMap, DownwardAPIVolumeFile, KeyToPath, Pod, Secret, Volume,
};

use super::atomic_writer::{Files, check_relative};
use crate::Config;
use crate::configmap_secret::Sources;
use crate::downward_api::{self, Consumer};

/// Kubernetes' default file mode for API-backed volumes (0644).
const DEFAULT_MODE: u32 = 0o644;

fn mode_of(mode: Option<i32>) -> u32 {
    mode.map_or(DEFAULT_MODE, |m| (m as u32) & 0o7777)
}

/// What a volume holds: its sources in order (one, or a projected volume's list).
enum Projection<'a> {
    /// A configMap's or secret's keys.
    Keyed {
        keyed: Keyed,
        name: &'a str,
        items: Option<&'a [KeyToPath]>,
        optional: bool,
    },
    /// Downward-API fields.
    DownwardApi(&'a [DownwardAPIVolumeFile]),
    /// Not written yet (skiff mints no tokens): warned about once.
    ServiceAccountToken,
}

/// The kinds whose keys become files.
#[derive(Clone, Copy)]
enum Keyed {
    ConfigMap,
    Secret,
}

impl Keyed {
    fn kind(self) -> &'static str {
        match self {
            Keyed::ConfigMap => "configmap",
            Keyed::Secret => "secret",
        }
    }
}

/// A configMap's keys and contents (`binaryData` as given).
fn config_map_data(cm: &ConfigMap) -> BTreeMap<String, Vec<u8>> {
    let text = cm.data.iter().flatten().map(|(k, v)| (k, v.as_bytes()));
    let binary = cm.binary_data.iter().flatten().map(|(k, v)| (k, &v.0[..]));
    text.chain(binary)
        .map(|(k, v)| (k.clone(), v.to_vec()))
        .collect()
}

/// A secret's keys and contents (`stringData` over `data`, as the API would fold it).
fn secret_data(secret: &Secret) -> BTreeMap<String, Vec<u8>> {
    let data = secret.data.iter().flatten().map(|(k, v)| (k, &v.0[..]));
    let text = (secret.string_data.iter().flatten()).map(|(k, v)| (k, v.as_bytes()));
    data.chain(text)
        .map(|(k, v)| (k.clone(), v.to_vec()))
        .collect()
}

impl<'a> Projection<'a> {
    fn keyed(
        keyed: Keyed,
        name: &'a str,
        items: &'a Option<Vec<KeyToPath>>,
        optional: Option<bool>,
    ) -> Self {
        Projection::Keyed {
            keyed,
            name,
            items: items.as_deref(),
            optional: optional.unwrap_or(false),
        }
    }

    fn downward_api(items: &'a Option<Vec<DownwardAPIVolumeFile>>) -> Self {
        Projection::DownwardApi(items.as_deref().unwrap_or_default())
    }
}

/// The volume's default file mode and its sources; `None` for a kind without files.
fn projections(volume: &Volume) -> Option<(Option<i32>, Vec<Projection<'_>>)> {
    let keyed = Projection::keyed;
    let downward = Projection::downward_api;
    if let Some(s) = &volume.config_map {
        let name = s.name.as_str();
        Some((
            s.default_mode,
            vec![keyed(Keyed::ConfigMap, name, &s.items, s.optional)],
        ))
    } else if let Some(s) = &volume.secret {
        let name = s.secret_name.as_deref().unwrap_or_default();
        Some((
            s.default_mode,
            vec![keyed(Keyed::Secret, name, &s.items, s.optional)],
        ))
    } else if let Some(s) = &volume.downward_api {
        Some((s.default_mode, vec![downward(&s.items)]))
    } else if let Some(s) = &volume.projected {
        let mut sources = Vec::new();
        for p in s.sources.iter().flatten() {
            if let Some(cm) = &p.config_map {
                sources.push(keyed(Keyed::ConfigMap, &cm.name, &cm.items, cm.optional));
            }
            if let Some(secret) = &p.secret {
                sources.push(keyed(
                    Keyed::Secret,
                    &secret.name,
                    &secret.items,
                    secret.optional,
                ));
            }
            if let Some(d) = &p.downward_api {
                sources.push(downward(&d.items));
            }
            if p.service_account_token.is_some() {
                sources.push(Projection::ServiceAccountToken);
            }
        }
        Some((s.default_mode, sources))
    } else {
        None
    }
}

/// The files an API-backed volume should hold now; `warned` keeps the unsupported sources'
/// warning to once per pod.
pub async fn files(
    sources: &mut Sources,
    config: &Config,
    pod: &Pod,
    volume: &Volume,
    warned: &mut bool,
) -> Result<Files, String> {
    let mut files = Files::new();
    let Some((mode, projections)) = projections(volume) else {
        return Ok(files);
    };
    let mode = mode_of(mode);
    for projection in projections {
        match projection {
            Projection::Keyed {
                keyed,
                name,
                items,
                optional,
            } => {
                let data = match keyed {
                    Keyed::ConfigMap => sources
                        .config_map(name, optional)
                        .await?
                        .map(config_map_data),
                    Keyed::Secret => sources.secret(name, optional).await?.map(secret_data),
                };
                if let Some(data) = data {
                    key_files(keyed.kind(), name, data, items, optional, mode, &mut files)?;
                }
            }
            Projection::DownwardApi(items) => {
                downward_files(config, pod, items, mode, &mut files)?;
            }
            Projection::ServiceAccountToken if !*warned => {
                *warned = true;
                tracing::warn!(pod = ?pod.metadata.name, volume = %volume.name,
                    "projected serviceAccountToken sources are not supported yet; skipped");
            }
            Projection::ServiceAccountToken => {}
        }
    }
    Ok(files)
}

/// Keys (or `items`) as files; a key named by `items` that is missing is an error unless
/// the source is optional.
fn key_files(
    what: &str,
    name: &str,
    data: BTreeMap<String, Vec<u8>>,
    items: Option<&[KeyToPath]>,
    optional: bool,
    mode: u32,
    files: &mut Files,
) -> Result<(), String> {
    match items {
        None => {
            for (key, value) in data {
                files.insert(key, (value, mode));
            }
        }
        Some(items) => {
            for item in items {
                check_relative(&item.path)?;
                match data.get(&item.key) {
                    Some(value) => {
                        let mode = item.mode.map_or(mode, |m| (m as u32) & 0o7777);
                        files.insert(item.path.clone(), (value.clone(), mode));
                    }
                    None if optional => {}
                    None => {
                        return Err(format!(
                            "{what} {name:?} references non-existent config key: {}",
                            item.key
                        ));
                    }
                }
            }
        }
    }
    Ok(())
}

/// A downwardAPI volume's (or projection's) items as files.
fn downward_files(
    config: &Config,
    pod: &Pod,
    items: &[DownwardAPIVolumeFile],
    mode: u32,
    files: &mut Files,
) -> Result<(), String> {
    for item in items {
        check_relative(&item.path)?;
        let value = if let Some(field) = &item.field_ref {
            downward_api::field_value(pod, &field.field_path, Consumer::Volume)?
        } else if let Some(field) = &item.resource_field_ref {
            let container = field.container_name.as_deref().unwrap_or_default();
            downward_api::resource_value(
                config,
                pod,
                container,
                &field.resource,
                field.divisor.as_ref(),
            )?
        } else {
            continue;
        };
        let mode = item.mode.map_or(mode, |m| (m as u32) & 0o7777);
        files.insert(item.path.clone(), (value.into_bytes(), mode));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn items_select_keys_and_modes() {
        let data: BTreeMap<String, Vec<u8>> = [
            ("k1".to_owned(), b"v1".to_vec()),
            ("k2".to_owned(), b"v2".to_vec()),
        ]
        .into();
        let items = [KeyToPath {
            key: "k2".into(),
            path: "dir/file".into(),
            mode: Some(0o400),
            ..Default::default()
        }];
        let mut files = Files::new();
        key_files(
            "configmap",
            "c",
            data.clone(),
            Some(&items),
            false,
            0o644,
            &mut files,
        )
        .unwrap();
        assert_eq!(files.len(), 1);
        assert_eq!(files["dir/file"], (b"v2".to_vec(), 0o400));
        let missing = [KeyToPath {
            key: "nope".into(),
            path: "x".into(),
            ..Default::default()
        }];
        let err = key_files(
            "configmap",
            "c",
            data.clone(),
            Some(&missing),
            false,
            0o644,
            &mut files,
        );
        assert!(err.unwrap_err().contains("non-existent config key: nope"));
        key_files(
            "configmap",
            "c",
            data,
            Some(&missing),
            true,
            0o644,
            &mut files,
        )
        .unwrap();
    }

    #[test]
    fn downward_api_files() {
        let pod: Pod = serde_json::from_value(serde_json::json!({
            "metadata": {"name": "p", "namespace": "ns", "labels": {"a": "1", "b": "x y"}},
        }))
        .unwrap();
        let items: Vec<DownwardAPIVolumeFile> = serde_json::from_value(serde_json::json!([
            {"path": "name", "fieldRef": {"fieldPath": "metadata.name"}},
            {"path": "labels", "fieldRef": {"fieldPath": "metadata.labels"}},
            {"path": "b", "fieldRef": {"fieldPath": "metadata.labels['b']"}, "mode": 0o600},
        ]))
        .unwrap();
        let mut files = Files::new();
        downward_files(&Config::new("n"), &pod, &items, 0o644, &mut files).unwrap();
        assert_eq!(files["name"], (b"p".to_vec(), 0o644));
        assert_eq!(files["labels"].0, b"a=\"1\"\nb=\"x y\"");
        assert_eq!(files["b"], (b"x y".to_vec(), 0o600));
    }

    #[test]
    fn projected_sources_in_order() {
        let volume: Volume = serde_json::from_value(serde_json::json!({
            "name": "all", "projected": {"defaultMode": 0o600, "sources": [
                {"configMap": {"name": "c", "optional": true}},
                {"secret": {"name": "s", "items": [{"key": "k", "path": "p"}]}},
                {"downwardAPI": {"items": []}},
                {"serviceAccountToken": {"path": "token"}},
            ]},
        }))
        .unwrap();
        let (mode, sources) = projections(&volume).unwrap();
        assert_eq!(mode_of(mode), 0o600);
        let got: Vec<String> = sources
            .iter()
            .map(|p| match p {
                Projection::Keyed {
                    keyed,
                    name,
                    items,
                    optional,
                } => format!(
                    "{} {name} {} {optional}",
                    keyed.kind(),
                    items.map_or(0, |i| i.len())
                ),
                Projection::DownwardApi(items) => format!("downward {}", items.len()),
                Projection::ServiceAccountToken => "token".into(),
            })
            .collect();
        assert_eq!(
            got,
            [
                "configmap c 0 true",
                "secret s 1 false",
                "downward 0",
                "token"
            ]
        );
        let empty: Volume =
            serde_json::from_value(serde_json::json!({"name": "e", "emptyDir": {}})).unwrap();
        assert!(projections(&empty).is_none());
        assert_eq!(mode_of(None), 0o644);
    }

    #[test]
    fn binary_and_string_data_are_files_too() {
        let cm: ConfigMap = serde_json::from_value(serde_json::json!({
            "data": {"a": "text"}, "binaryData": {"b": "AAE="},
        }))
        .unwrap();
        let data = config_map_data(&cm);
        assert_eq!(data["a"], b"text");
        assert_eq!(data["b"], [0, 1]);
        let secret: Secret = serde_json::from_value(serde_json::json!({
            "data": {"a": "b2xk"}, "stringData": {"a": "new"},
        }))
        .unwrap();
        assert_eq!(secret_data(&secret)["a"], b"new");
    }
}
