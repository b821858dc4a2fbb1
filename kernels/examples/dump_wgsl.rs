//! Writes the WGSL of every kernel, templates rendered, into a directory (one file per op:
//! `<op>.wgsl`). `kernels/scripts/tint_check.mjs` compiles these with Tint.
//!
//!   cargo run -p glassbox-kernels --example dump_wgsl -- /tmp/glassbox-wgsl

fn main() {
    let Some(dir) = std::env::args_os().nth(1) else {
        eprintln!("usage: dump_wgsl DIR");
        std::process::exit(2);
    };
    let dir = std::path::PathBuf::from(dir);
    let result = std::fs::create_dir_all(&dir).and_then(|()| {
        for (name, source) in glassbox_kernels::ops::wgsl_sources() {
            std::fs::write(dir.join(name), source)?;
        }
        Ok(())
    });
    if let Err(e) = result {
        eprintln!("error: writing to {}: {e}", dir.display());
        std::process::exit(1);
    }
}
