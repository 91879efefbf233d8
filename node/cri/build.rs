fn main() -> Result<(), Box<dyn std::error::Error>> {
    // Client stubs only: skiff talks to a runtime, it does not serve CRI.
    tonic_prost_build::configure()
        .build_server(false)
        .compile_protos(&["proto/api.proto"], &["proto"])?;
    println!("cargo:rerun-if-changed=proto/api.proto");
    Ok(())
}
