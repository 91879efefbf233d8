//! What a request is about, decided from its method and path alone (Kubernetes'
//! `RequestInfo`): the verb, the resource and subresource, the namespace and the name. The
//! authorization and admission stages and the handlers all work from this.

use std::collections::HashMap;

use axum::http::Method;

/// A resource request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RequestInfo {
    /// get, list, watch, create, update, patch, delete, deletecollection.
    pub verb: &'static str,
    /// API group ("" for core).
    pub group: String,
    /// API version.
    pub version: String,
    /// Resource (plural).
    pub resource: String,
    /// Subresource (`status`, `scale`, ...), if any.
    pub subresource: Option<String>,
    /// Namespace from the path.
    pub namespace: Option<String>,
    /// Object name from the path.
    pub name: Option<String>,
    /// The path after a `proxy` subresource (`/stats/summary`), as the proxied server gets it.
    pub proxy_path: Option<String>,
}

/// What a path names.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Target {
    /// A resource or object (`/api/v1/...`, `/apis/<g>/<v>/...`).
    Resource(RequestInfo),
    /// `/api`.
    CoreVersions,
    /// `/apis`.
    Groups,
    /// `/apis/<group>`.
    Group(String),
    /// `/api/v1` or `/apis/<group>/<version>`.
    ResourceList {
        /// Group ("" for core).
        group: String,
        /// Version.
        version: String,
    },
    /// `/version`.
    Version,
    /// `/healthz`, `/livez`, `/readyz` (and their sub-checks).
    Health,
    /// `/openapi/v2`.
    OpenApiV2,
    /// `/openapi/v3` (`None`) or one group-version document (`api/v1`, `apis/apps/v1`).
    OpenApiV3(Option<String>),
    /// Anything else.
    Unknown,
}

/// Namespace subresources that are not namespaced resources (`namespaces/<ns>/status`).
const NAMESPACE_SUBRESOURCES: &[&str] = &["status", "finalize"];

/// Parses a request path.
pub fn parse(method: &Method, path: &str, query: &HashMap<String, String>) -> Target {
    let parts: Vec<&str> = path
        .trim_matches('/')
        .split('/')
        .filter(|p| !p.is_empty())
        .collect();
    let (group, version, rest) = match parts.as_slice() {
        ["api"] => return Target::CoreVersions,
        ["apis"] => return Target::Groups,
        ["apis", group] => return Target::Group((*group).to_owned()),
        ["api", version] => {
            return Target::ResourceList {
                group: String::new(),
                version: (*version).to_owned(),
            };
        }
        ["apis", group, version] => {
            return Target::ResourceList {
                group: (*group).to_owned(),
                version: (*version).to_owned(),
            };
        }
        ["api", version, rest @ ..] => ("", *version, rest),
        ["apis", group, version, rest @ ..] => (*group, *version, rest),
        ["version"] => return Target::Version,
        ["openapi", "v2"] => return Target::OpenApiV2,
        ["openapi", "v3"] => return Target::OpenApiV3(None),
        ["openapi", "v3", rest @ ..] => return Target::OpenApiV3(Some(rest.join("/"))),
        [health, ..] if matches!(*health, "healthz" | "livez" | "readyz") => return Target::Health,
        _ => return Target::Unknown,
    };
    // The legacy `/watch/` prefix means `?watch=true`.
    let (legacy_watch, mut rest) = match rest {
        ["watch", rest @ ..] => (true, rest),
        _ => (false, rest),
    };
    let mut namespace = None;
    if let ["namespaces", ns, after @ ..] = rest
        && let [first, ..] = after
        && !NAMESPACE_SUBRESOURCES.contains(first)
    {
        namespace = Some((*ns).to_owned());
        rest = after;
    }
    let mut proxy_path = None;
    let (resource, name, subresource) = match rest {
        [resource] => (*resource, None, None),
        [resource, name] => (*resource, Some(*name), None),
        [resource, name, sub] => (*resource, Some(*name), Some(*sub)),
        [resource, name, "proxy", path @ ..] => {
            proxy_path = Some(format!("/{}", path.join("/")));
            (*resource, Some(*name), Some("proxy"))
        }
        _ => return Target::Unknown,
    };
    let watching = legacy_watch || query.get("watch").is_some_and(|w| w == "true" || w == "1");
    let verb = match *method {
        Method::GET if watching => "watch",
        Method::GET if name.is_some() => "get",
        Method::GET => "list",
        Method::POST => "create",
        Method::PUT => "update",
        Method::PATCH => "patch",
        Method::DELETE if name.is_some() => "delete",
        Method::DELETE => "deletecollection",
        _ => "unknown",
    };
    Target::Resource(RequestInfo {
        verb,
        group: group.to_owned(),
        version: version.to_owned(),
        resource: resource.to_owned(),
        subresource: subresource.map(str::to_owned),
        namespace,
        name: name.map(str::to_owned),
        proxy_path,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn resource(method: Method, path: &str) -> RequestInfo {
        let query = HashMap::from([("watch".to_owned(), "false".to_owned())]);
        match parse(&method, path, &query) {
            Target::Resource(info) => info,
            other => panic!("{path}: {other:?}"),
        }
    }

    #[test]
    fn node_proxy_paths_keep_the_rest() {
        let r = resource(Method::GET, "/api/v1/nodes/n1/proxy/stats/summary");
        assert_eq!(
            (
                r.resource.as_str(),
                r.name.as_deref(),
                r.subresource.as_deref(),
                r.proxy_path.as_deref()
            ),
            ("nodes", Some("n1"), Some("proxy"), Some("/stats/summary"))
        );
        let r = resource(Method::GET, "/api/v1/nodes/n1/proxy");
        assert_eq!(r.subresource.as_deref(), Some("proxy"));
        assert_eq!(r.proxy_path, None);
        // Only proxy takes more segments.
        let query = HashMap::new();
        assert_eq!(
            parse(&Method::GET, "/api/v1/nodes/n1/status/extra", &query),
            Target::Unknown
        );
    }

    #[test]
    fn resource_paths() {
        let r = resource(Method::GET, "/api/v1/namespaces/default/pods/web");
        assert_eq!(
            (
                r.verb,
                r.resource.as_str(),
                r.namespace.as_deref(),
                r.name.as_deref()
            ),
            ("get", "pods", Some("default"), Some("web"))
        );
        let r = resource(Method::GET, "/apis/apps/v1/deployments");
        assert_eq!(
            (r.verb, r.group.as_str(), r.namespace),
            ("list", "apps", None)
        );
        let r = resource(
            Method::PUT,
            "/apis/apps/v1/namespaces/ns/deployments/web/scale",
        );
        assert_eq!(
            (r.verb, r.subresource.as_deref()),
            ("update", Some("scale"))
        );
        // The namespace object itself and its subresources.
        let r = resource(Method::GET, "/api/v1/namespaces/kube-system");
        assert_eq!(
            (r.resource.as_str(), r.name.as_deref(), r.namespace),
            ("namespaces", Some("kube-system"), None)
        );
        let r = resource(Method::PUT, "/api/v1/namespaces/x/status");
        assert_eq!(
            (r.resource.as_str(), r.subresource.as_deref()),
            ("namespaces", Some("status"))
        );
        let r = resource(Method::DELETE, "/api/v1/namespaces/x/configmaps");
        assert_eq!(
            (r.verb, r.namespace.as_deref()),
            ("deletecollection", Some("x"))
        );
        let r = resource(Method::GET, "/api/v1/watch/namespaces/x/pods");
        assert_eq!(r.verb, "watch");
    }

    #[test]
    fn discovery_paths() {
        let q = HashMap::new();
        assert_eq!(parse(&Method::GET, "/api", &q), Target::CoreVersions);
        assert_eq!(
            parse(&Method::GET, "/apis/apps", &q),
            Target::Group("apps".into())
        );
        assert_eq!(
            parse(&Method::GET, "/api/v1", &q),
            Target::ResourceList {
                group: "".into(),
                version: "v1".into()
            }
        );
        assert_eq!(parse(&Method::GET, "/readyz/ping", &q), Target::Health);
        assert_eq!(parse(&Method::GET, "/nope", &q), Target::Unknown);
    }
}
