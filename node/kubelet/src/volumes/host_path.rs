//! hostPath volumes (Kubernetes' hostpath plugin): the host's path itself, after the checks
//! its `type` asks for.

use std::os::unix::fs::{FileTypeExt, PermissionsExt};
use std::path::Path;

/// hostPath `type` checks (DirectoryOrCreate and FileOrCreate create what is missing).
pub fn check_host_path(path: &str, kind: &str) -> Result<(), String> {
    let p = Path::new(path);
    let meta = std::fs::metadata(p);
    let fail = |what: &str| {
        Err(format!(
            "hostPath type check failed: {path} is not a {what}"
        ))
    };
    match kind {
        "" => Ok(()),
        "DirectoryOrCreate" => {
            if meta.is_err() {
                std::fs::create_dir_all(p).map_err(|e| e.to_string())?;
                std::fs::set_permissions(p, std::fs::Permissions::from_mode(0o755))
                    .map_err(|e| e.to_string())?;
            } else if !meta.as_ref().is_ok_and(|m| m.is_dir()) {
                return fail("directory");
            }
            Ok(())
        }
        "Directory" => match meta {
            Ok(m) if m.is_dir() => Ok(()),
            _ => fail("directory"),
        },
        "FileOrCreate" => {
            if meta.is_err() {
                if let Some(parent) = p.parent() {
                    std::fs::create_dir_all(parent).map_err(|e| e.to_string())?;
                }
                let file = std::fs::File::create(p).map_err(|e| e.to_string())?;
                file.set_permissions(std::fs::Permissions::from_mode(0o644))
                    .map_err(|e| e.to_string())?;
            } else if !meta.as_ref().is_ok_and(|m| m.is_file()) {
                return fail("file");
            }
            Ok(())
        }
        "File" => match meta {
            Ok(m) if m.is_file() => Ok(()),
            _ => fail("file"),
        },
        "Socket" => match meta {
            Ok(m) if m.file_type().is_socket() => Ok(()),
            _ => fail("socket"),
        },
        "CharDevice" => match meta {
            Ok(m) if m.file_type().is_char_device() => Ok(()),
            _ => fail("character device"),
        },
        "BlockDevice" => match meta {
            Ok(m) if m.file_type().is_block_device() => Ok(()),
            _ => fail("block device"),
        },
        other => Err(format!("unknown hostPath type {other:?}")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn host_path_types() {
        let tmp = tempfile::tempdir().unwrap();
        let dir = tmp.path().join("volume");
        let path = dir.join("d");
        let p = path.to_str().unwrap();
        assert!(check_host_path(p, "Directory").is_err());
        check_host_path(p, "DirectoryOrCreate").unwrap();
        check_host_path(p, "Directory").unwrap();
        assert!(
            check_host_path(p, "File")
                .unwrap_err()
                .contains("is not a file")
        );
        let file = dir.join("f");
        let f = file.to_str().unwrap();
        check_host_path(f, "FileOrCreate").unwrap();
        check_host_path(f, "File").unwrap();
        assert!(check_host_path(f, "DirectoryOrCreate").is_err());
    }
}
