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

/// Go's `filepath.ErrBadPattern`: a malformed pattern, which matches nothing.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
struct BadPattern;

/// One element of a `filepath.Match` pattern.
#[derive(Debug)]
enum Token {
    /// A character (itself, or `\`-escaped).
    Char(char),
    /// `?`: any one character but the separator.
    Any,
    /// `*`: any run of characters without the separator.
    Star,
    /// `[...]` (`[^...]`: negated): one character within (outside) the inclusive ranges.
    Class {
        negated: bool,
        ranges: Vec<(char, char)>,
    },
}

/// The path separator, which `*` and `?` never match (`filepath.Separator` on Linux).
const SEPARATOR: char = '/';

/// The longest host name DNS allows (RFC 1035): a longer one names no registry, and the bound
/// keeps the matcher's quadratic worst case small whatever an image reference holds.
const MAX_HOST_LEN: usize = 253;

/// A `filepath.Match` pattern as tokens, or `BadPattern` (checked whole, as Go does before
/// answering: a malformed pattern never matches, however far matching would get).
fn parse_pattern(pattern: &str) -> Result<Vec<Token>, BadPattern> {
    let mut chars = pattern.chars().peekable();
    let mut tokens = Vec::new();
    while let Some(c) = chars.next() {
        tokens.push(match c {
            '*' => Token::Star,
            '?' => Token::Any,
            '\\' => Token::Char(chars.next().ok_or(BadPattern)?),
            '[' => {
                let negated = chars.next_if_eq(&'^').is_some();
                let mut ranges = Vec::new();
                // A class is never empty, so a `]` right after `[` (or `[^`) is malformed.
                while ranges.is_empty() || chars.next_if_eq(&']').is_none() {
                    let lo = class_char(&mut chars)?;
                    let hi = match chars.next_if_eq(&'-') {
                        Some(_) => class_char(&mut chars)?,
                        None => lo,
                    };
                    ranges.push((lo, hi));
                }
                Token::Class { negated, ranges }
            }
            c => Token::Char(c),
        });
    }
    Ok(tokens)
}

/// One end of a class's range: a `\`-escaped character or any but `-` and `]`.
fn class_char(chars: &mut std::iter::Peekable<std::str::Chars<'_>>) -> Result<char, BadPattern> {
    match chars.next() {
        None | Some('-' | ']') => Err(BadPattern),
        Some('\\') => chars.next().ok_or(BadPattern),
        Some(c) => Ok(c),
    }
}

fn matches_one(token: &Token, c: char) -> bool {
    match token {
        Token::Char(t) => *t == c,
        Token::Any => c != SEPARATOR,
        Token::Class { negated, ranges } => {
            ranges.iter().any(|&(lo, hi)| lo <= c && c <= hi) != *negated
        }
        Token::Star => false,
    }
}

/// Go's `filepath.Match(pattern, name)`, which Kubernetes' keyring applies to each host label.
/// Stars match greedily and only the last one seen ever takes back more: once the pattern
/// after a star matched, an earlier star could only do worse. That bounds the work by
/// len(name)² + len(pattern) where trying every split for every star is exponential.
fn filepath_match(pattern: &str, name: &str) -> Result<bool, BadPattern> {
    let tokens = parse_pattern(pattern)?;
    let name: Vec<char> = name.chars().collect();
    let (mut t, mut n) = (0, 0);
    // The last star: the token after it and the end of the run it matches so far.
    let mut star: Option<(usize, usize)> = None;
    while n < name.len() {
        match tokens.get(t) {
            Some(Token::Star) => {
                t += 1;
                star = Some((t, n));
            }
            Some(token) if matches_one(token, name[n]) => {
                t += 1;
                n += 1;
            }
            _ => match star {
                Some((after, end)) if name[end] != SEPARATOR => {
                    star = Some((after, end + 1));
                    (t, n) = (after, end + 1);
                }
                _ => return Ok(false),
            },
        }
    }
    Ok(tokens[t..].iter().all(|token| matches!(token, Token::Star)))
}

/// Go's `net.SplitHostPort`: `host:port` or `[host]:port` (the port may be empty).
fn split_host_port(hostport: &str) -> Option<(&str, &str)> {
    let colon = hostport.rfind(':')?;
    // After these offsets no `[` (resp. `]`) may appear.
    let (host, open, close) = if hostport.starts_with('[') {
        let end = hostport.find(']')?;
        if end + 1 != colon {
            return None;
        }
        (&hostport[1..end], 1, end + 1)
    } else {
        let host = &hostport[..colon];
        if host.contains(':') {
            return None;
        }
        (host, 0, 0)
    };
    if hostport[open..].contains('[') || hostport[close..].contains(']') {
        return None;
    }
    Some((host, &hostport[colon + 1..]))
}

/// Whether a key matches an image repository, as Kubernetes' `URLsMatch`: the same port, the
/// key's path a prefix of the image's, as many host labels (split at `.`), each matching as
/// `filepath.Match` does (`*`, `?`, `[a-z]`, `\` escapes; a malformed glob matches nothing).
fn matches(key: &Location, repository: &str) -> bool {
    let (host, path) = match repository.find('/') {
        Some(at) => repository.split_at(at),
        None => (repository, ""),
    };
    // No port: the whole host, as Kubernetes' `SplitURL` falls back.
    let split = |h| split_host_port(h).unwrap_or((h, ""));
    let (key_host, key_port) = split(&key.host);
    let (host, port) = split(host);
    if key_port != port || host.len() > MAX_HOST_LEN || !path.starts_with(&key.path) {
        return false;
    }
    let key_labels: Vec<&str> = key_host.split('.').collect();
    let labels: Vec<&str> = host.split('.').collect();
    key_labels.len() == labels.len()
        && key_labels
            .iter()
            .zip(&labels)
            .all(|(glob, label)| filepath_match(glob, label) == Ok(true))
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

    /// Go's `filepath.Match` on Linux, case by case (its documented syntax and the cases its
    /// own tests pin down).
    #[test]
    fn host_labels_match_as_filepath_match_does() {
        let bad = Err(BadPattern);
        let cases: &[(&str, &str, Result<bool, BadPattern>)] = &[
            ("abc", "abc", Ok(true)),
            ("abc", "abcd", Ok(false)),
            ("*", "abc", Ok(true)),
            ("*", "", Ok(true)),
            ("*c", "abc", Ok(true)),
            ("a*", "a", Ok(true)),
            ("a*", "ab/c", Ok(false)),
            ("a*/b", "abc/b", Ok(true)),
            ("a*/b", "a/c/b", Ok(false)),
            ("a*b*c*d*e*/f", "axbxcxdxexxx/f", Ok(true)),
            ("a*b*c*d*e*/f", "axbxcxdxe/xxx/f", Ok(false)),
            ("a*b?c*x", "abxbbxdbxebxczzx", Ok(true)),
            ("a*b?c*x", "abxbbxdbxebxczzy", Ok(false)),
            ("*x", "xxx", Ok(true)),
            ("a?b", "a☺b", Ok(true)),
            ("a???b", "a☺b", Ok(false)),
            ("a?b", "a/b", Ok(false)),
            ("a*b", "a/b", Ok(false)),
            ("ab[c]", "abc", Ok(true)),
            ("ab[b-d]", "abc", Ok(true)),
            ("ab[e-g]", "abc", Ok(false)),
            ("ab[^c]", "abc", Ok(false)),
            ("ab[^e-g]", "abc", Ok(true)),
            ("a[^a]b", "a☺b", Ok(true)),
            ("[a-ζ]*", "α", Ok(true)),
            ("*[a-ζ]", "A", Ok(false)),
            ("[c-a]", "b", Ok(false)),
            ("a\\*b", "a*b", Ok(true)),
            ("a\\*b", "ab", Ok(false)),
            ("\\[x]", "[x]", Ok(true)),
            ("[\\]a]", "]", Ok(true)),
            ("[\\-]", "-", Ok(true)),
            ("[x\\-]", "-", Ok(true)),
            ("[x\\-]", "z", Ok(false)),
            ("[\\-x]", "x", Ok(true)),
            ("[]a]", "]", bad),
            ("[]", "a", bad),
            ("[^]", "a", bad),
            ("[-]", "-", bad),
            ("[x-]", "x", bad),
            ("[-x]", "x", bad),
            ("[a-b-c]", "a", bad),
            ("\\", "a", bad),
            ("a\\", "a", bad),
            ("[", "a", bad),
            ("[^bc", "a", bad),
            ("a[", "a", bad),
            ("a[", "x", bad),
            // Malformed after a mismatch is still malformed (Go checks the rest).
            ("x[", "a", bad),
        ];
        for (pattern, name, want) in cases {
            assert_eq!(
                &filepath_match(pattern, name),
                want,
                "Match({pattern:?}, {name:?})"
            );
        }
    }

    /// Every split tried for every star is exponential in the stars: this pattern against a
    /// 63-character label (DNS's longest) took seconds, against longer ones forever.
    #[test]
    fn many_stars_against_a_long_label_answer_at_once() {
        let pattern = "*a*a*a*a*a*a*b";
        let long = "a".repeat(4096);
        let with_b = format!("{}b", "a".repeat(4095));
        let fastest = |name: &str, want: bool| {
            (0..3)
                .map(|_| {
                    let started = std::time::Instant::now();
                    assert_eq!(filepath_match(pattern, name), Ok(want));
                    started.elapsed()
                })
                .min()
                .unwrap()
        };
        let limit = std::time::Duration::from_millis(1);
        assert!(fastest(&long, false) < limit);
        assert!(fastest(&with_b, true) < limit);

        // Through the keyring, with the longest label DNS allows.
        let ring = Keyring::from_secret(&secret(
            DOCKER_CFG_KEY,
            json!({ format!("{pattern}.example"): {"username": "glob", "password": "p"} }),
        ));
        let started = std::time::Instant::now();
        assert!(
            ring.lookup(&format!("{}.example/app", "a".repeat(63)))
                .is_empty()
        );
        assert_eq!(
            users(ring.lookup(&format!("{}b.example/app", "a".repeat(62)))),
            ["glob"]
        );
        assert!(started.elapsed() < std::time::Duration::from_millis(50));
        // A host longer than DNS allows names no registry.
        assert!(
            ring.lookup(&format!("{}b.example/app", "a".repeat(300)))
                .is_empty()
        );
    }

    #[test]
    fn hosts_split_from_ports_as_go_does() {
        assert_eq!(
            split_host_port("r.example:5000"),
            Some(("r.example", "5000"))
        );
        assert_eq!(split_host_port("r.example:"), Some(("r.example", "")));
        assert_eq!(split_host_port("[::1]:5000"), Some(("::1", "5000")));
        assert_eq!(split_host_port("r.example"), None);
        assert_eq!(split_host_port("::1"), None, "too many colons");
        assert_eq!(split_host_port("[::1]"), None, "missing port");
        assert_eq!(split_host_port("[::1]x:5000"), None);
        assert_eq!(split_host_port("a[b]:5000"), None);
    }

    #[test]
    fn keys_with_globs_classes_and_ports_match_like_urls_match() {
        let ring = Keyring::from_secret(&secret(
            DOCKER_CFG_KEY,
            json!({
                "registry-[0-9].example": {"username": "class", "password": "p"},
                "r?.example:5000": {"username": "any", "password": "p"},
                "*.example/team": {"username": "path", "password": "p"},
                "[bad.example": {"username": "bad", "password": "p"},
                "[::1]:5000": {"username": "v6", "password": "p"},
            }),
        ));
        assert_eq!(users(ring.lookup("registry-7.example/app")), ["class"]);
        assert!(ring.lookup("registry-x.example/app").is_empty());
        assert_eq!(users(ring.lookup("r1.example:5000/app")), ["any"]);
        assert!(ring.lookup("r1.example/app").is_empty(), "no port");
        assert!(
            ring.lookup("r1.example:5001/app").is_empty(),
            "another port"
        );
        assert!(ring.lookup("r12.example:5000/app").is_empty());
        assert_eq!(users(ring.lookup("eu.example/team/app")), ["path"]);
        assert!(ring.lookup("eu.example/other/app").is_empty());
        assert!(
            ring.lookup("[bad.example/app").is_empty(),
            "a malformed glob"
        );
        assert_eq!(users(ring.lookup("[::1]:5000/app")), ["v6"]);
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
