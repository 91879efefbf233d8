//! The ConfigMaps and Secrets one pod sync reads, for its containers' environment (envFrom,
//! configMapKeyRef, secretKeyRef) and its volumes (configMap, secret, projected) alike, each
//! fetched from the API at most once per sync (Kubernetes' configmap and secret managers).
//! A missing object is an error unless its reference is optional.

use std::collections::HashMap;

use k8s_openapi::NamespaceResourceScope;
use k8s_openapi::api::core::v1::{ConfigMap, Secret};
use kube::Api;
use serde::de::DeserializeOwned;

/// The objects of one namespace a sync has fetched so far (`None`: found missing).
pub struct Sources {
    client: kube::Client,
    namespace: String,
    config_maps: HashMap<String, Option<ConfigMap>>,
    secrets: HashMap<String, Option<Secret>>,
}

impl Sources {
    /// Nothing fetched yet, for a pod in `namespace`.
    pub fn new(client: kube::Client, namespace: &str) -> Sources {
        Sources {
            client,
            namespace: namespace.to_owned(),
            config_maps: HashMap::new(),
            secrets: HashMap::new(),
        }
    }

    /// The pod's namespace, the one every object is read from.
    pub fn namespace(&self) -> &str {
        &self.namespace
    }

    /// ConfigMap `name`; `None` when it does not exist and `optional`.
    pub async fn config_map(
        &mut self,
        name: &str,
        optional: bool,
    ) -> Result<Option<&ConfigMap>, String> {
        let api = Api::namespaced(self.client.clone(), &self.namespace);
        get(&api, &mut self.config_maps, "configmap", name, optional).await
    }

    /// Secret `name`; `None` when it does not exist and `optional`.
    pub async fn secret(&mut self, name: &str, optional: bool) -> Result<Option<&Secret>, String> {
        let api = Api::namespaced(self.client.clone(), &self.namespace);
        get(&api, &mut self.secrets, "secret", name, optional).await
    }
}

/// Object `name` from `fetched`, read from the API the first time (an error from the API is
/// not kept: the next read tries again).
async fn get<'a, K>(
    api: &Api<K>,
    fetched: &'a mut HashMap<String, Option<K>>,
    kind: &str,
    name: &str,
    optional: bool,
) -> Result<Option<&'a K>, String>
where
    K: kube::Resource<Scope = NamespaceResourceScope> + Clone + DeserializeOwned + std::fmt::Debug,
{
    if !fetched.contains_key(name) {
        let found = api.get_opt(name).await.map_err(|e| e.to_string())?;
        fetched.insert(name.to_owned(), found);
    }
    match fetched.get(name).and_then(Option::as_ref) {
        None if !optional => Err(format!("{kind} \"{name}\" not found")),
        found => Ok(found),
    }
}
