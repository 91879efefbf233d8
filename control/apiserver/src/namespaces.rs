//! Namespace deletion: a namespace being deleted turns `Terminating`, everything in it is
//! removed, then its `kubernetes` finalizer is dropped and it goes away.
//!
//! In Kubernetes this is the namespace controller's job (kube-controller-manager). Until skiff
//! has a controller manager, the apiserver runs this one loop itself, level-triggered: it wakes
//! when a namespace is marked for deletion (and every few seconds), finds every `Terminating`
//! namespace, and finishes what it can, so a restart in the middle loses nothing.

use std::sync::{Arc, Weak};
use std::time::Duration;

use serde_json::{Value, json};

use crate::Server;
use crate::error::ApiResult;
use crate::meta;

/// Namespaces that may not be deleted.
pub const IMMORTAL: &[&str] = &["default", "kube-system", "kube-public"];

/// The finalizer Kubernetes puts in `spec.finalizers` of every namespace.
const FINALIZER: &str = "kubernetes";

/// How often the loop looks even without being woken.
const RESYNC: Duration = Duration::from_secs(5);

/// Starts the finalizing loop; it ends when the server is dropped.
pub fn start(server: &Arc<Server>) {
    let weak = Arc::downgrade(server);
    tokio::spawn(run(weak));
}

async fn run(server: Weak<Server>) {
    loop {
        let Some(strong) = server.upgrade() else {
            return;
        };
        let woken = strong.namespace_deleted.clone();
        if let Err(err) = finalize_all(&strong).await {
            tracing::warn!(error = %err.message, "finalizing terminating namespaces failed; will retry");
        }
        drop(strong);
        tokio::select! {
            _ = woken.notified() => {}
            _ = tokio::time::sleep(RESYNC) => {}
        }
    }
}

async fn finalize_all(server: &Server) -> ApiResult<()> {
    let namespaces = server
        .registry
        .lookup("", "v1", "namespaces")
        .expect("built in")
        .info()
        .clone();
    let page = server
        .storage
        .page(&namespaces.key_prefix(), 0, None, None)
        .await?;
    for ns in page.items.iter().filter(|ns| meta::is_deleting(ns)) {
        let name = meta::name(ns).unwrap_or_default();
        empty(server, name).await?;
        finish(server, &namespaces, ns).await?;
    }
    Ok(())
}

/// Deletes every object in namespace `name`.
async fn empty(server: &Server, name: &str) -> ApiResult<()> {
    for kind in server.registry.all().filter(|k| k.info().namespaced) {
        let info = kind.info();
        let page = server
            .storage
            .page(&info.namespace_prefix(Some(name)), 0, None, None)
            .await?;
        for obj in &page.items {
            let object = meta::name(obj).unwrap_or_default();
            let revision = meta::resource_version(obj).unwrap_or(0);
            match server
                .storage
                .delete(info, Some(name), object, revision)
                .await
            {
                Ok(_) => {
                    if kind.allocates() {
                        server.allocator.release(obj, None).await;
                    }
                }
                // Gone or changed meanwhile: the next pass sees the current state.
                Err(err) if err.code == 404 || err.code == 409 => {}
                Err(err) => return Err(err),
            }
        }
    }
    Ok(())
}

/// Drops the namespace's finalizer; removes it once nothing else holds it.
async fn finish(
    server: &Server,
    info: &crate::registry::ResourceInfo,
    ns: &Value,
) -> ApiResult<()> {
    let name = meta::name(ns).unwrap_or_default();
    let revision = meta::resource_version(ns).unwrap_or(0);
    let finalizers: Vec<Value> = ns["spec"]["finalizers"]
        .as_array()
        .into_iter()
        .flatten()
        .filter(|f| f.as_str() != Some(FINALIZER))
        .cloned()
        .collect();
    let result = if finalizers.is_empty() && meta::finalizers(ns).is_empty() {
        server.storage.delete(info, None, name, revision).await
    } else {
        let mut updated = ns.clone();
        updated["spec"]["finalizers"] = json!(finalizers);
        meta::set(&mut updated, "resourceVersion", None);
        server
            .storage
            .update(info, None, name, updated, revision)
            .await
    };
    match result {
        Ok(_) => Ok(()),
        Err(err) if err.code == 404 || err.code == 409 => Ok(()),
        Err(err) => Err(err),
    }
}
