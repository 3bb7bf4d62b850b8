//! The phone library through its generated Python bindings: the same uniffi
//! scaffolding Kotlin and Swift call, loaded by CPython's ctypes.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::OnceLock;

/// A directory holding `wangge_mobile_ffi.py` and the library it loads, generated
/// once per test run from the freshly built `.so` (library mode: the bindings come
/// from the metadata compiled into the library, so they always match it).
pub fn python_bindings() -> &'static Path {
    static DIR: OnceLock<(tempfile::TempDir, PathBuf)> = OnceLock::new();
    &DIR.get_or_init(|| {
        let dir = tempfile::tempdir().expect("temporary directory");
        let out = dir.path().to_owned();
        generate("python", &out);
        let library = library_path();
        std::fs::copy(&library, out.join(library.file_name().expect("file name")))
            .expect("copying the library beside its bindings");
        (dir, out)
    })
    .1
}

/// The built phone library (`libwangge_mobile_ffi.so`).
pub fn library_path() -> PathBuf {
    let profile_dir = &crate::profile_dir_built().1;
    profile_dir.join(format!(
        "{}wangge_mobile_ffi{}",
        std::env::consts::DLL_PREFIX,
        std::env::consts::DLL_SUFFIX
    ))
}

/// Runs `uniffi-bindgen generate` for `language` into `out`.
pub fn generate(language: &str, out: &Path) {
    let profile_dir = &crate::profile_dir_built().1;
    let bindgen = profile_dir.join(format!("uniffi-bindgen{}", std::env::consts::EXE_SUFFIX));
    let output = Command::new(bindgen)
        .current_dir(crate::workspace_root())
        .args(["generate", "--library"])
        .arg(library_path())
        .args(["--language", language, "--out-dir"])
        .arg(out)
        .output()
        .expect("running uniffi-bindgen");
    assert!(
        output.status.success(),
        "uniffi-bindgen generate --language {language} failed: {}",
        String::from_utf8_lossy(&output.stderr)
    );
}
