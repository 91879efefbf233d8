//! The admission stage: plugins that see every write after authorization and before
//! validation and storage. Mutating plugins run first and may change the object, then
//! validating plugins may only reject it (Kubernetes' order).

use async_trait::async_trait;
use serde_json::Value;

use std::sync::Arc;

use crate::cache::Caches;
use crate::error::{ApiError, ApiResult};
use crate::registry::ResourceInfo;
use crate::request::RequestInfo;
use crate::storage::Storage;

/// What admission plugins see of a write.
pub struct Attributes<'a> {
    /// The request.
    pub request: &'a RequestInfo,
    /// The resource written.
    pub info: &'a ResourceInfo,
    /// The object as it exists now (updates and deletes).
    pub old: Option<&'a Value>,
}

/// A plugin that may change the object.
#[async_trait]
pub trait MutatingPlugin: Send + Sync {
    /// Admits (possibly changing `obj`) or rejects.
    async fn admit(&self, attrs: &Attributes<'_>, obj: &mut Value) -> ApiResult<()>;
}

/// A plugin that may only reject.
#[async_trait]
pub trait ValidatingPlugin: Send + Sync {
    /// Rejects with an error, or lets the write through.
    async fn validate(&self, attrs: &Attributes<'_>, obj: &Value) -> ApiResult<()>;
}

/// The plugin chain.
#[derive(Default)]
pub struct Admission {
    /// Run first, in order.
    pub mutating: Vec<Box<dyn MutatingPlugin>>,
    /// Run after every mutating plugin.
    pub validating: Vec<Box<dyn ValidatingPlugin>>,
}

impl Admission {
    /// The default plugins.
    pub fn defaults(storage: Storage, caches: Arc<Caches>, namespaces: ResourceInfo) -> Self {
        Admission {
            mutating: Vec::new(),
            validating: vec![Box::new(NamespaceLifecycle {
                storage,
                caches,
                namespaces,
            })],
        }
    }

    /// Runs the chain on a write.
    pub async fn run(&self, attrs: &Attributes<'_>, obj: &mut Value) -> ApiResult<()> {
        for plugin in &self.mutating {
            plugin.admit(attrs, obj).await?;
        }
        for plugin in &self.validating {
            plugin.validate(attrs, obj).await?;
        }
        Ok(())
    }
}

/// Objects cannot be created in a namespace that does not exist or is being deleted. The
/// namespace is looked up in the watch cache, and in the store when the cache has not seen it
/// (yet): a namespace created a moment ago must not be reported missing.
pub struct NamespaceLifecycle {
    storage: Storage,
    caches: Arc<Caches>,
    namespaces: ResourceInfo,
}

#[async_trait]
impl ValidatingPlugin for NamespaceLifecycle {
    async fn validate(&self, attrs: &Attributes<'_>, _obj: &Value) -> ApiResult<()> {
        let Some(ns) = attrs.request.namespace.as_deref() else {
            return Ok(());
        };
        if attrs.request.verb != "create" || !attrs.info.namespaced {
            return Ok(());
        }
        let cached = self
            .caches
            .get(self.namespaces.group, self.namespaces.plural)
            .and_then(|cache| cache.get(&self.namespaces.key(None, ns)));
        let namespace = match cached {
            Some(namespace) => namespace.value().clone(),
            None => self.storage.get(&self.namespaces, None, ns).await?,
        };
        if namespace["status"]["phase"] == "Terminating" || crate::meta::is_deleting(&namespace) {
            return Err(ApiError::forbidden(format!(
                "{} \"{}\" is forbidden: unable to create new content in namespace {ns} because it is being terminated",
                attrs.info.plural,
                attrs.request.name.as_deref().unwrap_or(""),
            )));
        }
        Ok(())
    }
}
