//! Bodies byte for byte as kube-apiserver writes them.
//!
//! Each fixture is a Go `encoding/json` encoding of a Kubernetes object: kubectl's own
//! (`tests/fixtures/*.json`, `--dry-run=client -o json` of the typed object) or one copied from
//! Kubernetes' documentation (`tests/fixtures/documented/`, each with a `.source` file naming
//! where it comes from and the Go type it is). The test reads a fixture into a `Value`, which
//! loses its key order, encodes that with `skiff_protobuf::json`, and compares the bytes with the
//! fixture compacted, as kube-apiserver writes it (compact, then `\n`).

use std::path::{Path, PathBuf};

use serde_json::Value;
use skiff_protobuf::json::{self, GoType, compact};

fn fixtures() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures")
}

/// The `.json` files of a directory, sorted.
fn json_files(dir: &Path) -> Vec<PathBuf> {
    let mut files: Vec<PathBuf> = std::fs::read_dir(dir)
        .unwrap_or_else(|e| panic!("{}: {e}", dir.display()))
        .map(|e| e.expect("directory entry").path())
        .filter(|p| p.extension().is_some_and(|e| e == "json"))
        .collect();
    files.sort();
    files
}

/// What the fixture's `.source` file says on its `type:` line (a Go type for a value without
/// `apiVersion`/`kind`, such as a watch event).
fn declared_type(fixture: &Path) -> Option<GoType> {
    let source = std::fs::read_to_string(fixture.with_extension("source")).ok()?;
    let name = source
        .lines()
        .find_map(|l| l.strip_prefix("type:"))?
        .trim()
        .to_owned();
    Some(GoType::named(&name).unwrap_or_else(|| panic!("{}: no Go type {name}", fixture.display())))
}

/// Encodes the fixture's value and compares it with the fixture's own bytes; the difference, if
/// any, as a message.
fn check(fixture: &Path) -> Result<(), String> {
    let bytes = std::fs::read(fixture).map_err(|e| e.to_string())?;
    let value: Value = serde_json::from_slice(&bytes).map_err(|e| e.to_string())?;
    let mut want = compact(&bytes);
    want.push(b'\n');
    let got = match declared_type(fixture) {
        Some(ty) => {
            let mut out = Vec::new();
            json::write_as(&mut out, ty, &value);
            out.push(b'\n');
            out
        }
        None => json::to_body(&value),
    };
    if got == want {
        return Ok(());
    }
    let at = got.iter().zip(&want).take_while(|(a, b)| a == b).count();
    let context = |b: &[u8]| {
        String::from_utf8_lossy(&b[at.saturating_sub(60)..(at + 60).min(b.len())]).into_owned()
    };
    Err(format!(
        "{}: first difference at byte {at}\n  encoded: …{}…\n  wanted:  …{}…",
        fixture.display(),
        context(&got),
        context(&want)
    ))
}

fn check_all(dir: &Path, at_least: usize) {
    let files = json_files(dir);
    assert!(
        files.len() >= at_least,
        "fixtures missing in {}: {files:?}",
        dir.display()
    );
    let failures: Vec<String> = files.iter().filter_map(|f| check(f).err()).collect();
    assert!(
        failures.is_empty(),
        "{} of {} differ:\n{}",
        failures.len(),
        files.len(),
        failures.join("\n")
    );
}

#[test]
fn kubectl_objects_encode_as_kubectl_encodes_them() {
    check_all(&fixtures(), 35);
}

#[test]
fn documented_bodies_encode_as_kubernetes_documents_them() {
    check_all(&fixtures().join("documented"), 17);
}

#[test]
fn every_documented_fixture_names_its_source() {
    for fixture in json_files(&fixtures().join("documented")) {
        let source = std::fs::read_to_string(fixture.with_extension("source"))
            .unwrap_or_else(|e| panic!("{}: no .source: {e}", fixture.display()));
        assert!(
            source.lines().any(|l| l.starts_with("source: https://")),
            "{}: the .source file names no URL",
            fixture.display()
        );
    }
}

#[test]
fn compact_leaves_strings_alone() {
    assert_eq!(
        compact(b"{\n  \"a b\": \"c \\\" d\",\n  \"e\": [ 1, 2 ]\n}\n"),
        b"{\"a b\":\"c \\\" d\",\"e\":[1,2]}"
    );
}
