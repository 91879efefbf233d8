//! `skiff-cni`: the CNI plugin binary. The environment and stdin in, the result (or the error
//! JSON, with exit status 1) on stdout.

use std::io::{Read, Write};

fn main() {
    let mut stdin = Vec::new();
    if let Err(err) = std::io::stdin().read_to_end(&mut stdin) {
        eprintln!("skiff-cni: reading stdin: {err}");
    }
    let get = |key: &str| std::env::var(key).ok();
    let (version, reply) = skiff_cni::plugin::run(&get, &stdin);
    let (output, status) = match reply {
        Ok(Some(value)) => (Some(value), 0),
        Ok(None) => (None, 0),
        Err(err) => (Some(err.to_json(&version)), 1),
    };
    if let Some(value) = output {
        let mut out = std::io::stdout().lock();
        let _ = serde_json::to_writer(&mut out, &value);
        let _ = out.write_all(b"\n");
        let _ = out.flush();
    }
    std::process::exit(status);
}
