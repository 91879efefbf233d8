//! Bodies captured from kubectl v1.37.1, each paired with kubectl's own JSON of the same object
//! (`--dry-run=client -o json`, which is Go's `encoding/json` of the very struct kubectl encoded to
//! protobuf). `tools/capture_fixtures.sh` records them again.

use std::path::PathBuf;

use serde_json::Value;

fn fixtures() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures")
}

/// Decodes `NAME.bin` and compares it with `NAME.json`.
fn check(name: &str) -> Value {
    let dir = fixtures();
    let body = std::fs::read(dir.join(format!("{name}.bin"))).expect("fixture body");
    let want: Value = serde_json::from_slice(
        &std::fs::read(dir.join(format!("{name}.json"))).expect("fixture JSON"),
    )
    .expect("fixture JSON parses");
    let got = skiff_protobuf::decode(&body).unwrap_or_else(|e| panic!("{name}: {e}"));
    assert_eq!(
        got,
        want,
        "{name}: decoded\n{}\nkubectl's JSON\n{}",
        serde_json::to_string_pretty(&got).unwrap(),
        serde_json::to_string_pretty(&want).unwrap()
    );
    got
}

#[test]
fn every_fixture_matches_kubectl_json() {
    let mut names: Vec<String> = std::fs::read_dir(fixtures())
        .expect("fixtures directory")
        .filter_map(|e| {
            let name = e.ok()?.file_name().into_string().ok()?;
            name.strip_suffix(".bin").map(str::to_owned)
        })
        .collect();
    names.sort();
    assert!(names.len() >= 20, "fixtures missing: {names:?}");
    let mut failures = Vec::new();
    for name in &names {
        if let Err(e) = std::panic::catch_unwind(|| check(name)) {
            failures.push(
                e.downcast_ref::<String>()
                    .cloned()
                    .unwrap_or_else(|| name.clone()),
            );
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n\n"));
}
