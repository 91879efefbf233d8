//! emptyDir volumes (Kubernetes' emptydir plugin): a directory of the pod's, or a tmpfs for
//! `medium: Memory` (at most its `sizeLimit`).

use std::os::unix::fs::PermissionsExt;
use std::path::Path;

use k8s_openapi::api::core::v1::EmptyDirVolumeSource;

use super::mount::{is_mount_point, mount_tmpfs};
use crate::quantity;

/// Makes the volume's directory `dir` (mounted once, kept across syncs).
pub fn set_up(dir: &Path, empty: &EmptyDirVolumeSource) -> std::io::Result<()> {
    std::fs::create_dir_all(dir)?;
    if empty.medium.as_deref() == Some("Memory") && !is_mount_point(dir) {
        let size = empty.size_limit.as_ref().and_then(quantity::value);
        mount_tmpfs(dir, size, 0o777)?;
    }
    // Writable by every user, as Kubernetes makes it.
    std::fs::set_permissions(dir, std::fs::Permissions::from_mode(0o777))
}
