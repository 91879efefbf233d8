//! The admin kubeconfig `skiff server` writes, so kubectl works without further setup.

use std::path::Path;

use serde_json::json;

/// Writes a kubeconfig for `server_url` to `path` (JSON, which kubectl reads as YAML).
pub fn write_admin(path: &Path, server_url: &str) -> std::io::Result<()> {
    let config = json!({
        "apiVersion": "v1",
        "kind": "Config",
        "clusters": [{ "name": "skiff", "cluster": { "server": server_url } }],
        "users": [{ "name": "skiff-admin", "user": {} }],
        "contexts": [{ "name": "skiff", "context": { "cluster": "skiff", "user": "skiff-admin", "namespace": "default" } }],
        "current-context": "skiff",
        "preferences": {},
    });
    if let Some(dir) = path.parent() {
        std::fs::create_dir_all(dir)?;
    }
    let text = serde_json::to_string_pretty(&config).expect("JSON values always serialize");
    std::fs::write(path, text + "\n")
}
