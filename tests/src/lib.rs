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

/// A `wangge serve` process on a loopback port, killed when dropped.
#[derive(Debug)]
pub struct Server {
    child: std::process::Child,
    /// `http://127.0.0.1:PORT`.
    pub base_url: String,
}

impl Server {
    /// Starts `wangge serve` on `database` with extra environment variables, and waits
    /// until it prints the address it listens on.
    pub fn start(database: &str, env: &[(&str, &str)]) -> Server {
        use std::io::BufRead as _;
        let mut command = wangge();
        command
            .args(["serve", "--listen", "127.0.0.1:0", "--database", database])
            .env("WANGGE_LOG", "warn")
            .stdout(std::process::Stdio::piped());
        for (name, value) in env {
            command.env(name, value);
        }
        let mut child = command.spawn().expect("starting wangge serve");
        let stdout = child.stdout.take().expect("stdout is piped");
        let mut line = String::new();
        std::io::BufReader::new(stdout)
            .read_line(&mut line)
            .expect("reading the server's first line");
        let base_url = line
            .trim()
            .strip_prefix("wangge listening on ")
            .unwrap_or_else(|| panic!("unexpected first line {line:?}"))
            .to_owned();
        Server { child, base_url }
    }

    /// The URL of `path`.
    pub fn url(&self, path: &str) -> String {
        format!("{}{path}", self.base_url)
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Runs `wangge` with `args` and `stdin`; panics with its output unless it succeeds.
pub fn wangge_ok(args: &[&str], stdin: &str) -> String {
    use std::io::Write as _;
    let mut child = wangge()
        .args(args)
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .expect("running wangge");
    child
        .stdin
        .take()
        .expect("stdin is piped")
        .write_all(stdin.as_bytes())
        .expect("writing stdin");
    let output = child.wait_with_output().expect("waiting for wangge");
    assert!(
        output.status.success(),
        "wangge {args:?} failed: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    String::from_utf8_lossy(&output.stdout).into_owned()
}
