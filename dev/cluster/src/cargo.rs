//! Building the binaries a test or benchmark maps images to, from inside a running Cargo
//! target.
//!
//! A test or example started by `cargo test`/`cargo run` inherits `CARGO_PKG_*` and
//! `CARGO_MANIFEST_*` variables describing its own package. Some build scripts (ring's, for
//! one) declare `rerun-if-env-changed` on exactly those names, so a nested `cargo build` run
//! with them set rebuilds those dependencies, and the next outer build rebuilds them back: minutes
//! lost on every run. [`command`] returns a `cargo` command with them removed.

use std::path::{Path, PathBuf};
use std::process::Command;

/// `cargo` (the one running this program, if any) with the package-describing variables of the
/// calling target removed, run in `workspace`.
pub fn command(workspace: &Path) -> Command {
    let cargo = std::env::var_os("CARGO").unwrap_or_else(|| "cargo".into());
    let mut cmd = Command::new(cargo);
    cmd.current_dir(workspace);
    for (key, _) in std::env::vars_os() {
        let Some(key) = key.to_str() else { continue };
        if key.starts_with("CARGO_PKG_")
            || key.starts_with("CARGO_MANIFEST_")
            || key.starts_with("CARGO_BIN_")
            || key == "CARGO_CRATE_NAME"
            || key == "CARGO_PRIMARY_PACKAGE"
        {
            cmd.env_remove(key);
        }
    }
    cmd
}

/// Binary `bin` of workspace package `package`, next to the calling test or example (in
/// `target/<profile>/`), built there if it is missing. A test that needs another package's
/// binary cannot name it with `CARGO_BIN_EXE_*` (that covers its own package only); `cargo
/// nextest run --workspace` builds every binary first, so the build here only runs for a test
/// of one package run alone (and then in the dev profile, whatever the caller's).
pub fn binary(workspace: &Path, package: &str, bin: &str) -> Result<PathBuf, String> {
    let exe = std::env::current_exe().map_err(|e| format!("locating this executable: {e}"))?;
    // target/<profile>/deps/<test> or target/<profile>/examples/<example> -> target/<profile>/
    let dir = exe
        .parent()
        .and_then(Path::parent)
        .ok_or_else(|| format!("{} is not in a Cargo target directory", exe.display()))?;
    let path = dir.join(bin);
    if !path.exists() {
        let status = command(workspace)
            .args(["build", "-p", package, "--bin", bin])
            .status()
            .map_err(|e| format!("running cargo build for {bin}: {e}"))?;
        if !status.success() {
            return Err(format!("building {bin} failed ({status})"));
        }
    }
    if path.exists() {
        Ok(path)
    } else {
        Err(format!("{} not found after building it", path.display()))
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn the_calling_package_is_not_passed_on() {
        // `cargo test` sets CARGO_PKG_NAME for this test binary.
        assert!(std::env::var_os("CARGO_PKG_NAME").is_some());
        let cmd = super::command(std::path::Path::new("."));
        let removed: Vec<_> = cmd
            .get_envs()
            .filter(|(_, v)| v.is_none())
            .map(|(k, _)| k.to_string_lossy().into_owned())
            .collect();
        assert!(removed.iter().any(|k| k == "CARGO_PKG_NAME"), "{removed:?}");
        assert!(
            removed.iter().any(|k| k == "CARGO_MANIFEST_DIR"),
            "{removed:?}"
        );
    }
}
