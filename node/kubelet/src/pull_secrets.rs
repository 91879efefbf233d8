//! Registry credentials from imagePullSecrets (the kubelet's docker keyring): the pod's
//! secrets, then its ServiceAccount's, each a `.dockerconfigjson` (`{"auths": {...}}`) or a
//! legacy `.dockercfg`; an image gets the credentials whose registry key matches it (most
//! specific key first), which are passed to PullImage unscoped, as the kubelet does: the
//! runtime may reach the registry through a mirror whose host is not the key's.

use base64::Engine;
use k8s_openapi::api::core::v1::{Pod, Secret, ServiceAccount};
use kube::api::Api;
use serde::Deserialize;
use skiff_cri::v1;

/// The Secret key of a `kubernetes.io/dockerconfigjson` secret.
pub const DOCKER_CONFIG_JSON_KEY: &str = ".dockerconfigjson";
/// The Secret key of a legacy `kubernetes.io/dockercfg` secret.
pub const DOCKER_CFG_KEY: &str = ".dockercfg";
/// Where images without a registry come from.
const DEFAULT_REGISTRY: &str = "docker.io";
/// The key Docker's own config uses for Docker Hub, after normalisation.
const DEFAULT_REGISTRY_KEY: &str = "index.docker.io";

/// One entry of a docker config.
#[derive(Clone, Debug, Default, Deserialize)]
struct Entry {
    #[serde(default)]
    username: String,
    #[serde(default)]
    password: String,
    /// base64 of `username:password`; wins over the separate fields.
    #[serde(default)]
    auth: String,
    #[serde(default, rename = "identitytoken")]
    identity_token: String,
    #[serde(default, rename = "registrytoken")]
    registry_token: String,
}

#[derive(Deserialize)]
struct ConfigJson {
    #[serde(default)]
    auths: std::collections::BTreeMap<String, Entry>,
}

/// A registry key, normalised: `host[:port]` plus a path that is not just `/` (schemes,
/// `/v1/` and `/v2/` dropped), so `https://index.docker.io/v1/` is `index.docker.io`.
fn normalize_key(key: &str) -> Option<Location> {
    let rest = key
        .strip_prefix("https://")
        .or_else(|| key.strip_prefix("http://"))
        .unwrap_or(key);
    let (host, path) = match rest.find('/') {
        Some(at) => rest.split_at(at),
        None => (rest, ""),
    };
    if host.is_empty() {
        return None;
    }
    let path = if path.starts_with("/v1/") || path.starts_with("/v2/") {
        &path[3..]
    } else {
        path
    };
    let path = if path == "/" { "" } else { path };
    Some(Location {
        host: host.to_owned(),
        path: path.to_owned(),
    })
}

/// A registry location: host (with port) and path prefix.
#[derive(Clone, Debug, PartialEq, Eq)]
struct Location {
    host: String,
    path: String,
}

impl Location {
    fn key(&self) -> String {
        format!("{}{}", self.host, self.path)
    }
}

/// `image` (a reference as a pod spec has it) as a schemeless URL of its repository, the way
/// the runtime resolves it: `busybox:1` → `docker.io/library/busybox`.
pub fn repository(image: &str) -> String {
    let name = image.split('@').next().unwrap_or(image);
    // A tag is a ':' after the last '/' (a ':' before it is a registry port).
    let name = match name.rfind(':') {
        Some(at) if !name[at..].contains('/') => &name[..at],
        _ => name,
    };
    let (first, rest) = name.split_once('/').unwrap_or(("", name));
    let is_registry = first.contains(['.', ':']) || first == "localhost";
    if is_registry {
        return name.to_owned();
    }
    let path = if first.is_empty() {
        format!("library/{rest}")
    } else {
        format!("{first}/{rest}")
    };
    format!("{DEFAULT_REGISTRY}/{path}")
}

/// Docker Hub images: the only ones the `index.docker.io` key serves.
fn is_default_registry(repository: &str) -> bool {
    let first = repository.split('/').next().unwrap_or_default();
    first == DEFAULT_REGISTRY || first == DEFAULT_REGISTRY_KEY
}

/// Glob match of one host label (`*` matches any run of characters).
fn label_matches(glob: &str, label: &str) -> bool {
    match glob.split_once('*') {
        None => glob == label,
        Some((head, tail)) => {
            label.len() >= head.len()
                && label.starts_with(head)
                && (0..=label.len() - head.len())
                    .any(|skip| label_matches(tail, &label[head.len() + skip..]))
        }
    }
}

/// Whether a key matches an image repository: as many host labels, each matching (globs such
/// as `*.example.com` allowed), the same port, and the key's path a prefix of the image's.
fn matches(key: &Location, repository: &str) -> bool {
    let (host, path) = match repository.find('/') {
        Some(at) => repository.split_at(at),
        None => (repository, ""),
    };
    let split_port = |h: &str| match h.rsplit_once(':') {
        Some((name, port)) => (name.to_owned(), port.to_owned()),
        None => (h.to_owned(), String::new()),
    };
    let (key_host, key_port) = split_port(&key.host);
    let (host, port) = split_port(host);
    let key_labels: Vec<&str> = key_host.split('.').collect();
    let labels: Vec<&str> = host.split('.').collect();
    key_port == port
        && key_labels.len() == labels.len()
        && key_labels
            .iter()
            .zip(&labels)
            .all(|(g, l)| label_matches(g, l))
        && path.starts_with(&key.path)
}

/// The credentials of one secret, by normalised key, most specific key first.
#[derive(Debug, Default)]
pub struct Keyring {
    entries: Vec<(Location, v1::AuthConfig)>,
}

impl Keyring {
    /// The docker config in `secret` (either key; an unparsable one is skipped with a warning).
    pub fn from_secret(secret: &Secret) -> Keyring {
        let data = secret.data.as_ref();
        let get = |key: &str| data.and_then(|d| d.get(key)).filter(|v| !v.0.is_empty());
        let name = secret.metadata.name.as_deref().unwrap_or_default();
        let parsed = if let Some(json) = get(DOCKER_CONFIG_JSON_KEY) {
            serde_json::from_slice::<ConfigJson>(&json.0).map(|c| c.auths)
        } else if let Some(cfg) = get(DOCKER_CFG_KEY) {
            serde_json::from_slice(&cfg.0)
        } else {
            return Keyring::default();
        };
        match parsed {
            Ok(entries) => Keyring::from_entries(entries),
            Err(err) => {
                tracing::warn!(secret = name, %err, "an imagePullSecret that is not a docker config");
                Keyring::default()
            }
        }
    }

    fn from_entries(entries: std::collections::BTreeMap<String, Entry>) -> Keyring {
        let mut out: Vec<(Location, v1::AuthConfig)> = entries
            .into_iter()
            .filter_map(|(key, entry)| Some((normalize_key(&key)?, auth_config(entry))))
            .collect();
        // Reverse order: a longer key (more specific path) before its prefix.
        out.sort_by_key(|(location, _)| std::cmp::Reverse(location.key()));
        Keyring { entries: out }
    }

    /// The credentials for `image`: every matching key's, else (for Docker Hub images) the
    /// `index.docker.io` one.
    pub fn lookup(&self, image: &str) -> Vec<v1::AuthConfig> {
        let repository = repository(image);
        let found: Vec<_> = self
            .entries
            .iter()
            .filter(|(key, _)| matches(key, &repository))
            .map(|(_, auth)| auth.clone())
            .collect();
        if !found.is_empty() || !is_default_registry(&repository) {
            return found;
        }
        self.entries
            .iter()
            .filter(|(key, _)| key.key() == DEFAULT_REGISTRY_KEY)
            .map(|(_, auth)| auth.clone())
            .collect()
    }
}

fn auth_config(entry: Entry) -> v1::AuthConfig {
    let (mut username, mut password) = (entry.username, entry.password);
    if !entry.auth.is_empty() {
        let decoded = base64::engine::general_purpose::STANDARD
            .decode(entry.auth.trim())
            .ok()
            .and_then(|bytes| String::from_utf8(bytes).ok());
        match decoded.as_deref().and_then(|d| d.split_once(':')) {
            Some((user, pass)) => (username, password) = (user.to_owned(), pass.to_owned()),
            None => tracing::warn!("an imagePullSecret's auth is not base64 of user:password"),
        }
    }
    // No server_address: the keyring already chose these for the image, and the runtime
    // only hands scoped credentials to a host of that exact name (not to a mirror).
    v1::AuthConfig {
        username,
        password,
        identity_token: entry.identity_token,
        registry_token: entry.registry_token,
        ..Default::default()
    }
}

/// The names of the pod's pull secrets: its own, then its ServiceAccount's (when it exists).
async fn secret_names(client: &kube::Client, pod: &Pod, namespace: &str) -> Vec<String> {
    let spec = pod.spec.as_ref();
    let mut names: Vec<String> = spec
        .and_then(|s| s.image_pull_secrets.as_ref())
        .into_iter()
        .flatten()
        .map(|r| r.name.clone())
        .collect();
    let account = spec
        .and_then(|s| s.service_account_name.clone())
        .filter(|n| !n.is_empty())
        .unwrap_or_else(|| "default".to_owned());
    let accounts: Api<ServiceAccount> = Api::namespaced(client.clone(), namespace);
    match accounts.get_opt(&account).await {
        Ok(Some(sa)) => {
            for r in sa.image_pull_secrets.into_iter().flatten() {
                if !names.contains(&r.name) {
                    names.push(r.name);
                }
            }
        }
        Ok(None) => {}
        Err(err) => {
            tracing::warn!(%namespace, %account, %err, "reading the pod's ServiceAccount for imagePullSecrets")
        }
    }
    names.retain(|n| !n.is_empty());
    names
}

/// The credentials to try for `image`, in order (secrets in the order the pod names them,
/// then its ServiceAccount's). A secret that cannot be read is skipped with a warning, as the
/// kubelet does: the pull then goes ahead without it, and a later one finds it.
pub async fn credentials(
    client: &kube::Client,
    pod: &Pod,
    namespace: &str,
    image: &str,
) -> Vec<v1::AuthConfig> {
    let secrets: Api<Secret> = Api::namespaced(client.clone(), namespace);
    let mut out = Vec::new();
    for name in secret_names(client, pod, namespace).await {
        match secrets.get_opt(&name).await {
            Ok(Some(secret)) => out.extend(Keyring::from_secret(&secret).lookup(image)),
            Ok(None) => {
                tracing::warn!(%namespace, secret = %name, "unable to retrieve pull secret; pulling without it")
            }
            Err(err) => tracing::warn!(%namespace, secret = %name, %err, "reading a pull secret"),
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use k8s_openapi::ByteString;
    use serde_json::json;

    fn secret(key: &str, config: serde_json::Value) -> Secret {
        Secret {
            data: Some([(key.to_owned(), ByteString(config.to_string().into_bytes()))].into()),
            ..Default::default()
        }
    }

    fn users(found: Vec<v1::AuthConfig>) -> Vec<String> {
        found.into_iter().map(|a| a.username).collect()
    }

    #[test]
    fn repositories_are_normalised_like_the_runtime() {
        assert_eq!(repository("busybox"), "docker.io/library/busybox");
        assert_eq!(repository("busybox:1.36"), "docker.io/library/busybox");
        assert_eq!(repository("team/app@sha256:abc"), "docker.io/team/app");
        assert_eq!(
            repository("docker.io/library/nginx:latest"),
            "docker.io/library/nginx"
        );
        assert_eq!(
            repository("registry.example:5000/a/b:v1"),
            "registry.example:5000/a/b"
        );
        assert_eq!(repository("localhost/app"), "localhost/app");
    }

    #[test]
    fn keys_are_normalised() {
        let key = |k: &str| normalize_key(k).unwrap().key();
        assert_eq!(key("https://index.docker.io/v1/"), "index.docker.io");
        assert_eq!(key("docker.io"), "docker.io");
        assert_eq!(
            key("http://registry.example:5000/v2/team"),
            "registry.example:5000/team"
        );
        assert_eq!(key("registry.example/team/"), "registry.example/team/");
    }

    #[test]
    fn docker_hub_images_match_every_spelling_of_docker_hub() {
        let auth = base64::engine::general_purpose::STANDARD.encode("hub-user:hub-pass");
        for key in [
            "https://index.docker.io/v1/",
            "docker.io",
            "index.docker.io",
        ] {
            let ring = Keyring::from_secret(&secret(
                DOCKER_CONFIG_JSON_KEY,
                json!({"auths": {key: {"auth": auth}}}),
            ));
            let found = ring.lookup("busybox:latest");
            assert_eq!(found.len(), 1, "{key}");
            assert_eq!(found[0].username, "hub-user");
            assert_eq!(found[0].password, "hub-pass");
            assert!(found[0].server_address.is_empty());
            // Not for another registry's images.
            assert!(ring.lookup("quay.example/team/app").is_empty(), "{key}");
        }
    }

    #[test]
    fn other_registries_match_by_host_port_and_path() {
        let ring = Keyring::from_secret(&secret(
            DOCKER_CFG_KEY,
            json!({
                "registry.example:5000": {"username": "port", "password": "p"},
                "registry.example": {"username": "plain", "password": "p"},
                "registry.example/team": {"username": "team", "password": "p"},
                "*.mirror.example": {"username": "glob", "password": "p"},
                "quay.example": {"username": "quay", "password": "p"},
            }),
        ));
        assert_eq!(
            users(ring.lookup("registry.example/team/app:v1")),
            ["team", "plain"]
        );
        assert_eq!(users(ring.lookup("registry.example/other/app")), ["plain"]);
        assert_eq!(
            users(ring.lookup("registry.example:5000/team/app")),
            ["port"]
        );
        assert_eq!(users(ring.lookup("eu.mirror.example/app")), ["glob"]);
        assert!(ring.lookup("a.b.mirror.example/app").is_empty());
        assert!(ring.lookup("busybox").is_empty());
    }

    #[test]
    fn secrets_without_a_docker_config_give_nothing() {
        let opaque = secret("password", json!("x"));
        assert!(Keyring::from_secret(&opaque).lookup("busybox").is_empty());
        let broken = Secret {
            data: Some([(DOCKER_CONFIG_JSON_KEY.to_owned(), ByteString(b"{".to_vec()))].into()),
            ..Default::default()
        };
        assert!(Keyring::from_secret(&broken).lookup("busybox").is_empty());
    }
}
