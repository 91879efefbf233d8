//! Writes an API-backed volume's files so a reader never sees a mix of old and new
//! (Kubernetes' pkg/volume/util/atomic_writer.go): the files go into a fresh timestamped
//! directory, then a `..data` symlink is swapped to it, and each top-level name is a symlink
//! through `..data`.

use std::collections::BTreeMap;
use std::os::unix::fs::PermissionsExt;
use std::path::{Component, Path};

/// The files of a volume: relative path → (content, mode).
pub type Files = BTreeMap<String, (Vec<u8>, u32)>;

/// A relative path without `..` (item paths may not escape the volume).
pub fn check_relative(path: &str) -> Result<(), String> {
    let p = Path::new(path);
    if path.is_empty()
        || p.is_absolute()
        || p.components().any(|c| matches!(c, Component::ParentDir))
        || path.starts_with("..")
    {
        return Err(format!("invalid path {path:?}"));
    }
    Ok(())
}

/// Writes `files` into a fresh `..<timestamp>` directory, swaps `..data` to it, links each
/// top-level name through `..data`, and removes the old directory and stale links.
pub fn write_atomically(dir: &Path, files: &Files) -> std::io::Result<()> {
    std::fs::create_dir_all(dir)?;
    let stamp = jiff::Timestamp::now()
        .strftime("%Y_%m_%d_%H_%M_%S.%f")
        .to_string();
    let fresh_name = format!("..{stamp}");
    let fresh = dir.join(&fresh_name);
    std::fs::create_dir(&fresh)?;
    std::fs::set_permissions(&fresh, std::fs::Permissions::from_mode(0o755))?;
    for (path, (content, mode)) in files {
        let target = fresh.join(path);
        if let Some(parent) = target.parent() {
            std::fs::create_dir_all(parent)?;
        }
        std::fs::write(&target, content)?;
        std::fs::set_permissions(&target, std::fs::Permissions::from_mode(*mode))?;
    }
    let tmp = dir.join("..data_tmp");
    let _ = std::fs::remove_file(&tmp);
    std::os::unix::fs::symlink(&fresh_name, &tmp)?;
    std::fs::rename(&tmp, dir.join("..data"))?;
    let top: std::collections::BTreeSet<String> = files
        .keys()
        .filter_map(|p| Path::new(p).components().next())
        .map(|c| c.as_os_str().to_string_lossy().into_owned())
        .collect();
    for name in &top {
        let link = dir.join(name);
        if std::fs::symlink_metadata(&link).is_err() {
            std::os::unix::fs::symlink(Path::new("..data").join(name), &link)?;
        }
    }
    for entry in std::fs::read_dir(dir)? {
        let entry = entry?;
        let name = entry.file_name().to_string_lossy().into_owned();
        if name.starts_with("..") {
            // The previous data dir, and any left by an interrupted write.
            let stale_dir = name != fresh_name && name != "..data" && entry.file_type()?.is_dir();
            if stale_dir {
                std::fs::remove_dir_all(entry.path())?;
            }
        } else if !top.contains(&name) && entry.file_type()?.is_symlink() {
            std::fs::remove_file(entry.path())?;
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn atomic_writes_swap_data_and_links() {
        let tmp = tempfile::tempdir().unwrap();
        let dir = tmp.path().join("volume");
        let mut files = Files::new();
        files.insert("a".into(), (b"one".to_vec(), 0o644));
        files.insert("sub/b".into(), (b"two".to_vec(), 0o600));
        write_atomically(&dir, &files).unwrap();
        assert_eq!(std::fs::read_to_string(dir.join("a")).unwrap(), "one");
        assert_eq!(std::fs::read_to_string(dir.join("sub/b")).unwrap(), "two");
        let mode = std::fs::metadata(dir.join("sub/b"))
            .unwrap()
            .permissions()
            .mode();
        assert_eq!(mode & 0o777, 0o600);
        let first = std::fs::read_link(dir.join("..data")).unwrap();

        files.remove("sub/b");
        files.insert("a".into(), (b"changed".to_vec(), 0o644));
        write_atomically(&dir, &files).unwrap();
        assert_eq!(std::fs::read_to_string(dir.join("a")).unwrap(), "changed");
        assert!(std::fs::symlink_metadata(dir.join("sub")).is_err());
        assert!(!dir.join(&first).exists(), "the old data dir is removed");
        let entries = std::fs::read_dir(&dir).unwrap().count();
        assert_eq!(entries, 3, "..data, the timestamped dir and a");
    }

    #[test]
    fn leftovers_of_an_interrupted_write_are_removed() {
        let tmp = tempfile::tempdir().unwrap();
        let dir = tmp.path().join("volume");
        std::fs::create_dir_all(dir.join("..2020_01_01_00_00_00.0")).unwrap();
        std::os::unix::fs::symlink("..data/gone", dir.join("gone")).unwrap();
        std::fs::write(dir.join("kept"), "not a link").unwrap();
        let files: Files = [("a".to_owned(), (b"one".to_vec(), 0o644))].into();
        write_atomically(&dir, &files).unwrap();
        let mut names: Vec<String> = std::fs::read_dir(&dir)
            .unwrap()
            .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
            .filter(|n| n != "..data" && !n.starts_with("..2"))
            .collect();
        names.sort();
        assert_eq!(names, ["a", "kept"], "stale links go, other files stay");
        let data_dirs = std::fs::read_dir(&dir)
            .unwrap()
            .filter(|e| {
                e.as_ref()
                    .unwrap()
                    .file_name()
                    .to_string_lossy()
                    .starts_with("..2")
            })
            .count();
        assert_eq!(data_dirs, 1, "only the fresh data dir");
    }

    #[test]
    fn paths_stay_inside_the_volume() {
        check_relative("a/b").unwrap();
        check_relative("a..b").unwrap();
        for bad in ["", "/x", "../x", "a/../../x", "..x"] {
            assert!(check_relative(bad).is_err(), "{bad:?}");
        }
    }
}
