//! Compiles every `c/*.bpf.c` with clang-19 and generates its libbpf-rs skeleton
//! (`$OUT_DIR/<name>.skel.rs`), whose `types` module carries the map key and value structs of
//! `c/include/*.h`: userspace never copies a map layout by hand. The object itself is kept as
//! `$OUT_DIR/<name>.bpf.o` for the loader to embed.

use std::path::PathBuf;

use libbpf_cargo::SkeletonBuilder;

fn main() {
    let out = PathBuf::from(std::env::var_os("OUT_DIR").expect("cargo sets OUT_DIR"));
    let clang = std::env::var("SKIFF_CLANG").unwrap_or_else(|_| "clang-19".to_owned());
    println!("cargo:rerun-if-changed=c");
    println!("cargo:rerun-if-env-changed=SKIFF_CLANG");
    let mut sources: Vec<PathBuf> = std::fs::read_dir("c")
        .expect("ebpf/c exists")
        .map(|entry| entry.expect("readable ebpf/c").path())
        .filter(|path| path.to_string_lossy().ends_with(".bpf.c"))
        .collect();
    sources.sort();
    for source in sources {
        let name = source
            .file_name()
            .unwrap()
            .to_string_lossy()
            .trim_end_matches(".bpf.c")
            .to_owned();
        SkeletonBuilder::new()
            .source(&source)
            .obj(out.join(format!("{name}.bpf.o")))
            .clang(&clang)
            .clang_args([
                "-Ic/include",
                // asm/types.h for the uapi headers on Debian.
                "-I/usr/include/x86_64-linux-gnu",
                "-Wall",
                "-Werror",
            ])
            .build_and_generate(out.join(format!("{name}.skel.rs")))
            .unwrap_or_else(|err| panic!("building {}: {err:#}", source.display()));
    }
}
