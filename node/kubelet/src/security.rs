//! Security contexts: the pod's and the container's merged (the container's fields win), as
//! CRI sandbox and container security contexts, and the kubelet's own runAsNonRoot check.

use std::path::Path;

use k8s_openapi::api::core::v1::{
    Container, Pod, PodSecurityContext, SeccompProfile, SecurityContext,
};
use skiff_cri::v1;

fn pod_context(pod: &Pod) -> PodSecurityContext {
    pod.spec
        .as_ref()
        .and_then(|s| s.security_context.clone())
        .unwrap_or_default()
}

/// The container's effective security context: its own fields, else the pod's for the fields
/// both have (runAsUser, runAsGroup, runAsNonRoot, seLinux, seccomp...).
pub fn effective(pod: &Pod, container: &Container) -> SecurityContext {
    let pod = pod_context(pod);
    let mut sc = container.security_context.clone().unwrap_or_default();
    sc.run_as_user = sc.run_as_user.or(pod.run_as_user);
    sc.run_as_group = sc.run_as_group.or(pod.run_as_group);
    sc.run_as_non_root = sc.run_as_non_root.or(pod.run_as_non_root);
    sc.seccomp_profile = sc.seccomp_profile.or(pod.seccomp_profile);
    sc
}

/// A seccompProfile as the CRI's: RuntimeDefault, Localhost (a file under
/// `<root_dir>/seccomp`), else Unconfined (Kubernetes' default).
fn seccomp(profile: Option<&SeccompProfile>, root_dir: &Path) -> v1::SecurityProfile {
    use v1::security_profile::ProfileType;
    let (kind, localhost_ref) = match profile.map(|p| p.type_.as_str()) {
        Some("RuntimeDefault") => (ProfileType::RuntimeDefault, String::new()),
        Some("Localhost") => {
            let file = profile
                .and_then(|p| p.localhost_profile.as_deref())
                .unwrap_or_default();
            let path = root_dir.join("seccomp").join(file);
            (ProfileType::Localhost, path.display().to_string())
        }
        _ => (ProfileType::Unconfined, String::new()),
    };
    v1::SecurityProfile {
        profile_type: kind.into(),
        localhost_ref,
    }
}

/// The pod's supplemental groups, fsGroup included (the kubelet adds it so volumes it owns
/// are writable).
fn supplemental_groups(pod: &Pod) -> Vec<i64> {
    let pod = pod_context(pod);
    let mut groups = pod.supplemental_groups.unwrap_or_default();
    if let Some(fs_group) = pod.fs_group
        && !groups.contains(&fs_group)
    {
        groups.push(fs_group);
    }
    groups
}

/// The sandbox's security context: privileged when any container is (the runtime refuses a
/// privileged container in an unprivileged sandbox), the pod's user, group and groups.
pub fn sandbox(
    pod: &Pod,
    namespaces: v1::NamespaceOption,
    root_dir: &Path,
) -> v1::LinuxSandboxSecurityContext {
    let spec = pod.spec.as_ref();
    let privileged = spec.is_some_and(|s| {
        s.containers
            .iter()
            .chain(s.init_containers.iter().flatten())
            .any(|c| {
                c.security_context
                    .as_ref()
                    .and_then(|sc| sc.privileged)
                    .unwrap_or(false)
            })
    });
    let context = pod_context(pod);
    v1::LinuxSandboxSecurityContext {
        namespace_options: Some(namespaces),
        run_as_user: context.run_as_user.map(|value| v1::Int64Value { value }),
        // The runtime refuses a group without a user; the pause process needs neither.
        run_as_group: context
            .run_as_group
            .filter(|_| context.run_as_user.is_some())
            .map(|value| v1::Int64Value { value }),
        supplemental_groups: supplemental_groups(pod),
        privileged,
        seccomp: Some(seccomp(context.seccomp_profile.as_ref(), root_dir)),
        ..Default::default()
    }
}

/// The container's security context for CreateContainer.
pub fn container(
    pod: &Pod,
    container: &Container,
    namespaces: v1::NamespaceOption,
    root_dir: &Path,
) -> v1::LinuxContainerSecurityContext {
    let sc = effective(pod, container);
    let seccomp = seccomp(sc.seccomp_profile.as_ref(), root_dir);
    let capabilities = sc.capabilities.map(|c| v1::Capability {
        add_capabilities: c.add.unwrap_or_default(),
        drop_capabilities: c.drop.unwrap_or_default(),
    });
    v1::LinuxContainerSecurityContext {
        capabilities,
        privileged: sc.privileged.unwrap_or(false),
        namespace_options: Some(namespaces),
        run_as_user: sc.run_as_user.map(|value| v1::Int64Value { value }),
        run_as_group: sc.run_as_group.map(|value| v1::Int64Value { value }),
        supplemental_groups: supplemental_groups(pod),
        readonly_rootfs: sc.read_only_root_filesystem.unwrap_or(false),
        no_new_privs: sc.allow_privilege_escalation == Some(false),
        seccomp: Some(seccomp),
        ..Default::default()
    }
}

/// Whether the kubelet must learn the image's user: the security context names no user but
/// asks for runAsNonRoot (to check it) or a group (the runtime wants the user with it).
pub fn needs_image_user(pod: &Pod, container: &Container) -> bool {
    let sc = effective(pod, container);
    sc.run_as_user.is_none() && (sc.run_as_non_root == Some(true) || sc.run_as_group.is_some())
}

/// Fills the image's user (`uid`, else `username`) into a security context that names none,
/// as the kubelet does, so a runAsGroup travels with a user.
pub fn with_image_user(
    sc: &mut v1::LinuxContainerSecurityContext,
    image_uid: Option<i64>,
    image_username: &str,
) {
    if sc.run_as_user.is_some() || !sc.run_as_username.is_empty() {
        return;
    }
    match image_uid {
        Some(value) => sc.run_as_user = Some(v1::Int64Value { value }),
        None if !image_username.is_empty() => sc.run_as_username = image_username.to_owned(),
        None => sc.run_as_user = Some(v1::Int64Value { value: 0 }),
    }
}

/// The kubelet's runAsNonRoot check, given the image's user (`uid`, else a `username`; neither
/// means root). The error is the container's CreateContainerConfigError message.
pub fn verify_run_as_non_root(
    pod: &Pod,
    container: &Container,
    image_uid: Option<i64>,
    image_username: &str,
) -> Result<(), String> {
    let sc = effective(pod, container);
    if sc.run_as_non_root != Some(true) {
        return Ok(());
    }
    let name = pod.metadata.name.as_deref().unwrap_or_default();
    let namespace = pod.metadata.namespace.as_deref().unwrap_or("default");
    let which = format!("pod: \"{name}_{namespace}\", container: {}", container.name);
    match (sc.run_as_user, image_uid) {
        (Some(0), _) => Err(format!(
            "container's runAsUser breaks non-root policy ({which})"
        )),
        (Some(_), _) => Ok(()),
        (None, None) if !image_username.is_empty() => Err(format!(
            "container has runAsNonRoot and image has non-numeric user ({image_username}), cannot verify user is non-root ({which})"
        )),
        (None, Some(0) | None) => Err(format!(
            "container has runAsNonRoot and image will run as root ({which})"
        )),
        (None, Some(_)) => Ok(()),
    }
}

/// The sysctls every pod may set: namespaced, and isolated from the node and other pods.
pub const SAFE_SYSCTLS: &[&str] = &[
    "kernel.shm_rmid_forced",
    "net.ipv4.ip_local_port_range",
    "net.ipv4.ip_local_reserved_ports",
    "net.ipv4.ip_unprivileged_port_start",
    "net.ipv4.ping_group_range",
    "net.ipv4.tcp_fin_timeout",
    "net.ipv4.tcp_keepalive_intvl",
    "net.ipv4.tcp_keepalive_probes",
    "net.ipv4.tcp_keepalive_time",
    "net.ipv4.tcp_rmem",
    "net.ipv4.tcp_syncookies",
    "net.ipv4.tcp_wmem",
];

/// The pod's sysctls for the sandbox, or why the kubelet rejects the pod (Kubernetes' reason
/// SysctlForbidden): a sysctl neither safe nor in `allowed_unsafe` (names, or prefixes ending
/// in `*`), or a network one on a pod sharing the node's network.
pub fn sysctls(
    pod: &Pod,
    allowed_unsafe: &[String],
) -> Result<std::collections::HashMap<String, String>, String> {
    let host_network = crate::runtime::host_network(pod);
    let mut out = std::collections::HashMap::new();
    for sysctl in pod_context(pod).sysctls.into_iter().flatten() {
        // `/` is an alternative separator.
        let name = sysctl.name.replace('/', ".");
        let allowed = SAFE_SYSCTLS.contains(&name.as_str())
            || allowed_unsafe
                .iter()
                .any(|pattern| match pattern.strip_suffix('*') {
                    Some(prefix) => name.starts_with(prefix),
                    None => *pattern == name,
                });
        if !allowed {
            return Err(format!("forbidden sysctl: \"{name}\" not allowlisted"));
        }
        if host_network && name.starts_with("net.") {
            return Err(format!(
                "forbidden sysctl: \"{name}\" not allowed with host net enabled"
            ));
        }
        out.insert(name, sysctl.value);
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn pod(pod_sc: serde_json::Value, sc: serde_json::Value) -> Pod {
        serde_json::from_value(json!({
            "metadata": {"name": "p", "namespace": "ns"},
            "spec": {
                "securityContext": pod_sc,
                "containers": [{"name": "c", "image": "busybox", "securityContext": sc}],
            },
        }))
        .unwrap()
    }

    fn check(pod: &Pod, uid: Option<i64>, user: &str) -> Result<(), String> {
        let c = &pod.spec.as_ref().unwrap().containers[0];
        verify_run_as_non_root(pod, c, uid, user)
    }

    #[test]
    fn only_safe_or_allowed_sysctls_pass() {
        let p = |sysctls: serde_json::Value, host: bool| -> Pod {
            serde_json::from_value(json!({
                "metadata": {"name": "p"},
                "spec": {"hostNetwork": host, "securityContext": {"sysctls": sysctls},
                         "containers": [{"name": "c"}]},
            }))
            .unwrap()
        };
        let safe = p(
            json!([{"name": "net/ipv4/ip_unprivileged_port_start", "value": "80"}]),
            false,
        );
        let set = sysctls(&safe, &[]).unwrap();
        assert_eq!(set["net.ipv4.ip_unprivileged_port_start"], "80");
        let network = sysctls(
            &p(
                json!([{"name": "net.ipv4.tcp_syncookies", "value": "1"}]),
                true,
            ),
            &[],
        );
        assert!(network.unwrap_err().contains("host net"));
        let unsafe_one = p(json!([{"name": "kernel.msgmax", "value": "65536"}]), false);
        let err = sysctls(&unsafe_one, &[]).unwrap_err();
        assert_eq!(err, "forbidden sysctl: \"kernel.msgmax\" not allowlisted");
        assert!(sysctls(&unsafe_one, &["kernel.msg*".to_owned()]).is_ok());
        assert!(sysctls(&unsafe_one, &["kernel.msgmax".to_owned()]).is_ok());
    }

    #[test]
    fn run_as_non_root_is_checked_against_the_user_that_will_run() {
        let p = pod(json!({"runAsNonRoot": true}), json!({}));
        assert!(needs_image_user(
            &p,
            &p.spec.as_ref().unwrap().containers[0]
        ));
        assert!(
            check(&p, None, "")
                .unwrap_err()
                .contains("image will run as root")
        );
        assert!(check(&p, Some(0), "").is_err());
        assert!(check(&p, Some(1000), "").is_ok());
        assert!(
            check(&p, None, "nginx")
                .unwrap_err()
                .contains("non-numeric user (nginx)")
        );
        // The container's runAsUser decides without the image.
        let p = pod(json!({"runAsNonRoot": true}), json!({"runAsUser": 1000}));
        assert!(!needs_image_user(
            &p,
            &p.spec.as_ref().unwrap().containers[0]
        ));
        assert!(check(&p, Some(0), "").is_ok());
        let p = pod(
            json!({"runAsNonRoot": true, "runAsUser": 1000}),
            json!({"runAsUser": 0}),
        );
        assert!(
            check(&p, Some(1000), "")
                .unwrap_err()
                .contains("breaks non-root policy")
        );
        // The container may opt out.
        let p = pod(
            json!({"runAsNonRoot": true}),
            json!({"runAsNonRoot": false}),
        );
        assert!(check(&p, Some(0), "").is_ok());
    }

    #[test]
    fn pod_fields_fill_in_and_a_privileged_container_privileges_the_sandbox() {
        let p = pod(
            json!({"runAsUser": 1000, "runAsGroup": 3000, "supplementalGroups": [4000], "fsGroup": 2000}),
            json!({"runAsUser": 1001, "privileged": true, "readOnlyRootFilesystem": true,
                   "capabilities": {"add": ["NET_ADMIN"], "drop": ["ALL"]}}),
        );
        let c = &p.spec.as_ref().unwrap().containers[0];
        let sc = container(&p, c, v1::NamespaceOption::default(), Path::new("/k"));
        assert_eq!(sc.run_as_user, Some(v1::Int64Value { value: 1001 }));
        assert_eq!(sc.run_as_group, Some(v1::Int64Value { value: 3000 }));
        assert_eq!(sc.supplemental_groups, [4000, 2000]);
        assert!(sc.privileged && sc.readonly_rootfs);
        let caps = sc.capabilities.unwrap();
        assert_eq!(caps.add_capabilities, ["NET_ADMIN"]);
        assert_eq!(caps.drop_capabilities, ["ALL"]);
        let sandbox = sandbox(&p, v1::NamespaceOption::default(), Path::new("/k"));
        assert!(sandbox.privileged);
        assert_eq!(sandbox.run_as_user, Some(v1::Int64Value { value: 1000 }));
        // A group without a user gets the image's user (the runtime wants both).
        let p = pod(json!({"runAsGroup": 3000}), json!({}));
        let c = &p.spec.as_ref().unwrap().containers[0];
        assert!(needs_image_user(&p, c));
        let mut sc = container(&p, c, v1::NamespaceOption::default(), Path::new("/k"));
        with_image_user(&mut sc, None, "nginx");
        assert_eq!(sc.run_as_username, "nginx");
        let mut sc = container(&p, c, v1::NamespaceOption::default(), Path::new("/k"));
        with_image_user(&mut sc, None, "");
        assert_eq!(sc.run_as_user, Some(v1::Int64Value { value: 0 }));
        assert!(
            super::sandbox(&p, v1::NamespaceOption::default(), Path::new("/k"))
                .run_as_group
                .is_none()
        );
        let plain = pod(json!({}), json!({}));
        let unconfined = container(
            &plain,
            &plain.spec.as_ref().unwrap().containers[0],
            v1::NamespaceOption::default(),
            Path::new("/k"),
        );
        assert_eq!(
            unconfined.seccomp.unwrap().profile_type(),
            v1::security_profile::ProfileType::Unconfined
        );
        let local = pod(
            json!({"seccompProfile": {"type": "RuntimeDefault"}}),
            json!({"seccompProfile": {"type": "Localhost", "localhostProfile": "audit.json"}}),
        );
        let c = &local.spec.as_ref().unwrap().containers[0];
        let profile = container(&local, c, v1::NamespaceOption::default(), Path::new("/k"))
            .seccomp
            .unwrap();
        assert_eq!(
            profile.profile_type(),
            v1::security_profile::ProfileType::Localhost
        );
        assert_eq!(profile.localhost_ref, "/k/seccomp/audit.json");
        let profile = super::sandbox(&local, v1::NamespaceOption::default(), Path::new("/k"))
            .seccomp
            .unwrap();
        assert_eq!(
            profile.profile_type(),
            v1::security_profile::ProfileType::RuntimeDefault
        );
        assert!(
            !super::sandbox(&plain, v1::NamespaceOption::default(), Path::new("/k")).privileged
        );
    }
}
