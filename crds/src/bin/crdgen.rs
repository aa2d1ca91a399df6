//! Writes the tipoff CRDs as YAML into `crds/generated/`, one file per resource.
//!
//! `cargo run -p tipoff-crds --bin crdgen` regenerates them; `--check` exits non-zero when the
//! committed files differ from what the types produce (the test suite runs the same check).

use std::path::PathBuf;
use std::process::ExitCode;

fn main() -> ExitCode {
    let check = std::env::args().any(|a| a == "--check");
    let dir = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("generated");
    let mut stale = Vec::new();
    for (file, yaml) in match tipoff_crds::generated::render_all() {
        Ok(files) => files,
        Err(e) => {
            eprintln!("crdgen: {e}");
            return ExitCode::FAILURE;
        }
    } {
        let path = dir.join(file);
        let current = std::fs::read_to_string(&path).unwrap_or_default();
        if current == yaml {
            continue;
        }
        if check {
            stale.push(path.display().to_string());
        } else if let Err(e) =
            std::fs::create_dir_all(&dir).and_then(|()| std::fs::write(&path, &yaml))
        {
            eprintln!("crdgen: writing {}: {e}", path.display());
            return ExitCode::FAILURE;
        } else {
            println!("wrote {}", path.display());
        }
    }
    if stale.is_empty() {
        ExitCode::SUCCESS
    } else {
        eprintln!(
            "crdgen: stale generated CRDs: {}\nrun `cargo run -p tipoff-crds --bin crdgen` and commit the result",
            stale.join(", ")
        );
        ExitCode::FAILURE
    }
}
