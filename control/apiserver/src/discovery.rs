//! Discovery: what kubectl and client libraries read first to learn which groups, versions and
//! resources exist (`/api`, `/apis`, `/apis/<group>[/<version>]`) and which server this is
//! (`/version`).

use std::collections::BTreeSet;

use serde_json::{Value, json};

use crate::registry::{Registry, Subresource};

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

/// `/version`.
pub fn version() -> Value {
    json!({
        "major": "1",
        "minor": KUBERNETES_MINOR,
        "gitVersion": format!("v1.{KUBERNETES_MINOR}.0-skiff.{}", env!("CARGO_PKG_VERSION")),
        "gitCommit": "",
        "gitTreeState": "clean",
        "buildDate": "",
        "goVersion": "",
        "compiler": "rustc",
        "platform": format!("{}/{}", std::env::consts::OS, go_arch()),
    })
}

fn go_arch() -> &'static str {
    match std::env::consts::ARCH {
        "x86_64" => "amd64",
        "aarch64" => "arm64",
        other => other,
    }
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
    for kind in registry.all() {
        let info = kind.info();
        if info.group != group || info.version != version {
            continue;
        }
        resources.push(json!({
            "name": info.plural,
            "singularName": info.singular,
            "namespaced": info.namespaced,
            "kind": info.kind,
            "verbs": VERBS,
            "shortNames": info.short_names,
            "categories": info.categories,
        }));
        for sub in info.subresources {
            let (kind, verbs, sub_group, sub_version): (&str, &[&str], &str, &str) = match sub {
                Subresource::Status => (info.kind, &["get", "patch", "update"], group, version),
                Subresource::Scale => ("Scale", &["get", "patch", "update"], "autoscaling", "v1"),
                Subresource::Binding => ("Binding", &["create"], "", "v1"),
                Subresource::Log => ("Pod", &["get"], "", "v1"),
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
        assert!(group(&registry, "nope").is_none());
    }
}
