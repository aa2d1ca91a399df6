//! Compiles the git commit into the processor binaries, so every result reports the code that
//! actually ran. `TIPOFF_COMMIT` (set by image builds, where there is no `.git`) wins over git.

use std::process::Command;

fn main() {
    println!("cargo:rerun-if-env-changed=TIPOFF_COMMIT");
    println!("cargo:rerun-if-changed=../.git/HEAD");
    println!("cargo:rerun-if-changed=../.git/refs/heads");
    let commit = std::env::var("TIPOFF_COMMIT")
        .ok()
        .filter(|c| !c.is_empty())
        .or_else(|| {
            Command::new("git")
                .args(["rev-parse", "HEAD"])
                .output()
                .ok()
                .filter(|o| o.status.success())
                .and_then(|o| String::from_utf8(o.stdout).ok())
                .map(|s| s.trim().to_owned())
        });
    println!(
        "cargo:rustc-env=TIPOFF_BUILD_COMMIT={}",
        commit.unwrap_or_else(|| "unknown".into())
    );
}
