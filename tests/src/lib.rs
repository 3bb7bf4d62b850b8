//! Helpers for the end-to-end tests in `tests/tests/`: the real `wangge` binary and the
//! real district boundaries.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::OnceLock;

/// The workspace root (where `data/` and `Cargo.toml` are).
pub fn workspace_root() -> &'static Path {
    Path::new(concat!(env!("CARGO_MANIFEST_DIR"), "/.."))
}

/// The real Zhengzhou district boundaries shipped with the project.
pub fn districts_file() -> PathBuf {
    workspace_root().join("data/zhengzhou-districts.geojson")
}

/// The `wangge` binary, built once per test run with the same profile as the tests, so a
/// test never runs a stale binary.
pub fn wangge_bin() -> &'static Path {
    static BIN: OnceLock<PathBuf> = OnceLock::new();
    BIN.get_or_init(|| {
        // Tests run from <target>/<profile>/deps/<test-binary>.
        let exe = std::env::current_exe().expect("test binary path");
        let profile_dir = exe
            .parent()
            .and_then(Path::parent)
            .expect("test binary lives in <target>/<profile>/deps");
        let release = profile_dir.file_name().is_some_and(|n| n == "release");
        let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".into());
        let mut build = Command::new(cargo);
        build.current_dir(workspace_root()).args([
            "build",
            "--quiet",
            "-p",
            "wangge-server",
            "--bin",
            "wangge",
        ]);
        if release {
            build.arg("--release");
        }
        let status = build.status().expect("running cargo build");
        assert!(status.success(), "cargo build of wangge failed");
        profile_dir.join(format!("wangge{}", std::env::consts::EXE_SUFFIX))
    })
}

/// A `wangge` command ready for arguments.
pub fn wangge() -> Command {
    Command::new(wangge_bin())
}
