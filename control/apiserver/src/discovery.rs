//! Discovery: what kubectl and client libraries read first to learn which groups, versions and
//! resources exist (`/api`, `/apis`, `/apis/<group>[/<version>]`) and which server this is
//! (`/version`).

use std::collections::BTreeSet;

use serde_json::{Value, json};
use skiff_protobuf::json::write_value;

use crate::registry::{Registry, ResourceInfo, Subresource};

/// The Kubernetes version skiff implements.
pub const KUBERNETES_MINOR: &str = "37";

const VERBS: &[&str] = &[
    "create",
    "delete",
    "deletecollection",
    "get",
    "list",
    "patch",
    "update",
    "watch",
];

/// `/version`: `version.Info`. skiff emulates the version it implements, and is compatible with
/// the one before, as a kube-apiserver started without `--emulated-version` is.
pub fn version() -> Value {
    let previous = KUBERNETES_MINOR.parse::<u32>().map_or(0, |m| m - 1);
    json!({
        "major": "1",
        "minor": KUBERNETES_MINOR,
        "emulationMajor": "1",
        "emulationMinor": KUBERNETES_MINOR,
        "minCompatibilityMajor": "1",
        "minCompatibilityMinor": previous.to_string(),
        "gitVersion": format!("v1.{KUBERNETES_MINOR}.0-skiff.{}", env!("CARGO_PKG_VERSION")),
        "gitCommit": "",
        "gitTreeState": "clean",
        "buildDate": "",
        "goVersion": "",
        "compiler": "rustc",
        "platform": format!("{}/{}", std::env::consts::OS, go_arch()),
    })
}

/// `version.Info`'s fields in Go declaration order; none is `omitempty`.
const VERSION_INFO: [&str; 13] = [
    "major",
    "minor",
    "emulationMajor",
    "emulationMinor",
    "minCompatibilityMajor",
    "minCompatibilityMinor",
    "gitVersion",
    "gitCommit",
    "gitTreeState",
    "buildDate",
    "goVersion",
    "compiler",
    "platform",
];

/// `/version`'s body as kube-apiserver writes it: not an API object, so through
/// `responsewriters.WriteRawJSON`, which is `json.MarshalIndent` with two spaces and no trailing
/// newline.
pub fn version_body() -> Vec<u8> {
    let info = version();
    let mut out = Vec::with_capacity(512);
    out.push(b'{');
    for (i, field) in VERSION_INFO.into_iter().enumerate() {
        out.extend_from_slice(if i == 0 { b"\n  " } else { b",\n  " });
        write_value(&mut out, &json!(field));
        out.extend_from_slice(b": ");
        write_value(&mut out, info.get(field).unwrap_or(&json!("")));
    }
    out.extend_from_slice(b"\n}");
    out
}

fn go_arch() -> &'static str {
    match std::env::consts::ARCH {
        "x86_64" => "amd64",
        "aarch64" => "arm64",
        other => other,
    }
}

/// Every resource discovery lists, with its verbs: the registry's kinds and the computed
/// `componentstatuses` (get and list only).
fn served(registry: &Registry) -> impl Iterator<Item = (&ResourceInfo, &'static [&'static str])> {
    let computed = (
        crate::component_statuses::info(),
        crate::component_statuses::VERBS,
    );
    (registry.all().map(|k| (k.info(), VERBS))).chain(std::iter::once(computed))
}

/// `/api`.
pub fn core_versions(server_address: &str) -> Value {
    json!({
        "kind": "APIVersions",
        "versions": ["v1"],
        "serverAddressByClientCIDRs": [{ "clientCIDR": "0.0.0.0/0", "serverAddress": server_address }],
    })
}

fn groups_of(registry: &Registry) -> BTreeSet<(&'static str, &'static str)> {
    registry
        .all()
        .map(|k| (k.info().group, k.info().version))
        .filter(|(g, _)| !g.is_empty())
        .collect()
}

fn group_json(name: &str, version: &str) -> Value {
    let gv = json!({ "groupVersion": format!("{name}/{version}"), "version": version });
    json!({ "name": name, "versions": [gv.clone()], "preferredVersion": gv })
}

/// `/apis`.
pub fn groups(registry: &Registry) -> Value {
    let groups: Vec<Value> = groups_of(registry)
        .into_iter()
        .map(|(g, v)| group_json(g, v))
        .collect();
    json!({ "kind": "APIGroupList", "apiVersion": "v1", "groups": groups })
}

/// `/apis/<group>`, if the group exists.
pub fn group(registry: &Registry, name: &str) -> Option<Value> {
    let (g, v) = groups_of(registry).into_iter().find(|(g, _)| *g == name)?;
    let mut group = group_json(g, v);
    group["kind"] = json!("APIGroup");
    group["apiVersion"] = json!("v1");
    Some(group)
}

/// `/api/v1` or `/apis/<group>/<version>`, if that group version exists.
pub fn resources(registry: &Registry, group: &str, version: &str) -> Option<Value> {
    let mut resources = Vec::new();
    for (info, verbs) in served(registry) {
        if info.group != group || info.version != version {
            continue;
        }
        resources.push(json!({
            "name": info.plural,
            "singularName": info.singular,
            "namespaced": info.namespaced,
            "kind": info.kind,
            "verbs": verbs,
            "shortNames": info.short_names,
            "categories": info.categories,
        }));
        for sub in info.subresources {
            let (kind, verbs, sub_group, sub_version): (&str, &[&str], &str, &str) = match sub {
                Subresource::Status => (info.kind, &["get", "patch", "update"], group, version),
                Subresource::Scale => ("Scale", &["get", "patch", "update"], "autoscaling", "v1"),
                Subresource::Binding => ("Binding", &["create"], "", "v1"),
                Subresource::Log => ("Pod", &["get"], "", "v1"),
                Subresource::Exec => ("PodExecOptions", &["create", "get"], "", "v1"),
                Subresource::Attach => ("PodAttachOptions", &["create", "get"], "", "v1"),
                Subresource::PortForward => ("PodPortForwardOptions", &["create", "get"], "", "v1"),
                Subresource::Proxy => ("NodeProxyOptions", &["get"], "", "v1"),
                Subresource::EphemeralContainers => ("Pod", &["get", "patch", "update"], "", "v1"),
                Subresource::Approval => (info.kind, &["get", "patch", "update"], group, version),
            };
            let mut entry = json!({
                "name": format!("{}/{}", info.plural, sub.name()),
                "singularName": "",
                "namespaced": info.namespaced,
                "kind": kind,
                "verbs": verbs,
            });
            if (sub_group, sub_version) != (group, version) {
                entry["group"] = json!(sub_group);
                entry["version"] = json!(sub_version);
            }
            resources.push(entry);
        }
    }
    if resources.is_empty() {
        return None;
    }
    let group_version = if group.is_empty() {
        version.to_owned()
    } else {
        format!("{group}/{version}")
    };
    Some(json!({
        "kind": "APIResourceList",
        "apiVersion": "v1",
        "groupVersion": group_version,
        "resources": resources,
    }))
}

/// The media type of aggregated discovery documents.
pub const AGGREGATED: &str = "application/json;g=apidiscovery.k8s.io;v=v2;as=APIGroupDiscoveryList";

/// Whether a request asks for aggregated discovery (kubectl and client-go do first).
pub fn wants_aggregated(accept: &str) -> bool {
    accept
        .split(',')
        .next()
        .is_some_and(|first| first.contains("as=APIGroupDiscoveryList") && first.contains("v=v2"))
}

/// Aggregated discovery (`apidiscovery.k8s.io/v2`): every resource of the core group (`core`)
/// or of every other group, in one document, instead of one request per group-version.
pub fn aggregated(registry: &Registry, core: bool) -> Value {
    let mut groups: Vec<(&str, Vec<Value>)> = Vec::new();
    for (info, verbs) in served(registry) {
        if info.group.is_empty() != core {
            continue;
        }
        let subresources: Vec<Value> = info
            .subresources
            .iter()
            .map(|sub| {
                let (group, version, kind, verbs): (&str, &str, &str, &[&str]) = match sub {
                    Subresource::Status => (
                        info.group,
                        info.version,
                        info.kind,
                        &["get", "patch", "update"],
                    ),
                    Subresource::Scale => {
                        ("autoscaling", "v1", "Scale", &["get", "patch", "update"])
                    }
                    Subresource::Binding => ("", "v1", "Binding", &["create"]),
                    Subresource::Log => ("", "v1", "Pod", &["get"]),
                    Subresource::Exec => ("", "v1", "PodExecOptions", &["create", "get"]),
                    Subresource::Attach => ("", "v1", "PodAttachOptions", &["create", "get"]),
                    Subresource::PortForward => {
                        ("", "v1", "PodPortForwardOptions", &["create", "get"])
                    }
                    Subresource::Proxy => ("", "v1", "NodeProxyOptions", &["get"]),
                    Subresource::EphemeralContainers => {
                        ("", "v1", "Pod", &["get", "patch", "update"])
                    }
                    Subresource::Approval => (
                        info.group,
                        info.version,
                        info.kind,
                        &["get", "patch", "update"],
                    ),
                };
                json!({
                    "subresource": sub.name(),
                    "responseKind": { "group": group, "version": version, "kind": kind },
                    "verbs": verbs,
                })
            })
            .collect();
        let resource = json!({
            "resource": info.plural,
            "responseKind": { "group": info.group, "version": info.version, "kind": info.kind },
            "scope": if info.namespaced { "Namespaced" } else { "Cluster" },
            "singularResource": info.singular,
            "verbs": verbs,
            "shortNames": info.short_names,
            "categories": info.categories,
            "subresources": subresources,
        });
        match groups.iter_mut().find(|(g, _)| *g == info.group) {
            Some((_, resources)) => resources.push(resource),
            None => groups.push((info.group, vec![resource])),
        }
    }
    groups.sort_by_key(|(g, _)| *g);
    let items: Vec<Value> = groups
        .into_iter()
        .map(|(group, resources)| {
            let version = registry.all().find(|k| k.info().group == group).map_or("v1", |k| k.info().version);
            json!({
                "metadata": { "name": group },
                "versions": [{ "version": version, "resources": resources, "freshness": "Current" }],
            })
        })
        .collect();
    json!({
        "kind": "APIGroupDiscoveryList",
        "apiVersion": "apidiscovery.k8s.io/v2",
        "metadata": {},
        "items": items,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::registry::builtin;

    #[test]
    fn discovery_lists_every_group_and_resource() {
        let registry = builtin();
        let groups = groups(&registry);
        let names: Vec<&str> = groups["groups"]
            .as_array()
            .unwrap()
            .iter()
            .map(|g| g["name"].as_str().unwrap())
            .collect();
        assert!(names.contains(&"apps") && names.contains(&"rbac.authorization.k8s.io"));
        let core = resources(&registry, "", "v1").unwrap();
        let pods = core["resources"]
            .as_array()
            .unwrap()
            .iter()
            .find(|r| r["name"] == "pods")
            .unwrap();
        assert_eq!(pods["shortNames"], json!(["po"]));
        assert_eq!(pods["namespaced"], json!(true));
        let apps = resources(&registry, "apps", "v1").unwrap();
        let scale = apps["resources"]
            .as_array()
            .unwrap()
            .iter()
            .find(|r| r["name"] == "deployments/scale")
            .unwrap();
        assert_eq!(
            (scale["group"].as_str(), scale["kind"].as_str()),
            (Some("autoscaling"), Some("Scale"))
        );
        assert!(resources(&registry, "apps", "v2").is_none());
        let core = aggregated(&registry, true);
        assert_eq!(core["items"].as_array().unwrap().len(), 1);
        let apis = aggregated(&registry, false);
        let apps = apis["items"]
            .as_array()
            .unwrap()
            .iter()
            .find(|g| g["metadata"]["name"] == "apps")
            .unwrap();
        let deployments = &apps["versions"][0]["resources"]
            .as_array()
            .unwrap()
            .iter()
            .find(|r| r["resource"] == "deployments")
            .unwrap();
        assert_eq!(deployments["scope"], "Namespaced");
        assert_eq!(
            deployments["subresources"][1]["responseKind"]["kind"],
            "Scale"
        );
        assert!(wants_aggregated(
            "application/json;g=apidiscovery.k8s.io;v=v2;as=APIGroupDiscoveryList,application/json"
        ));
        assert!(!wants_aggregated("application/json"));
        assert!(group(&registry, "nope").is_none());
    }
}
