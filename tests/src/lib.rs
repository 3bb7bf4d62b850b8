//! Helpers for the end-to-end tests in `tests/tests/`: the real `wangge` binary and the
//! real district boundaries.

pub mod browser;
pub mod mobile;
pub mod phone;
pub mod places;

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
    profile_dir_built().0.as_path()
}

/// `<target>/<profile>` after building the server, the phone library and
/// `uniffi-bindgen`; and the `wangge` binary in it.
pub(crate) fn profile_dir_built() -> &'static (PathBuf, PathBuf) {
    static BIN: OnceLock<(PathBuf, PathBuf)> = OnceLock::new();
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
        // The phone library and its binding generator too, in the same build: one
        // feature resolution, so neither build invalidates the other's artifacts.
        build.current_dir(workspace_root()).args([
            "build",
            "--quiet",
            "-p",
            "wangge-server",
            "-p",
            "wangge-mobile-ffi",
            "-p",
            "uniffi-bindgen",
            "--bin",
            "wangge",
            "--bin",
            "uniffi-bindgen",
            "--lib",
        ]);
        if release {
            build.arg("--release");
        }
        let status = build.status().expect("running cargo build");
        assert!(status.success(), "cargo build of wangge failed");
        (
            profile_dir.join(format!("wangge{}", std::env::consts::EXE_SUFFIX)),
            profile_dir.to_owned(),
        )
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
        Server::spawn(
            &["serve", "--listen", "127.0.0.1:0", "--database", database],
            env,
        )
        .0
    }

    /// Runs `wangge ARGS` (a command that serves) and waits until it prints the
    /// address it listens on; also returns the lines it printed before.
    pub fn spawn(args: &[&str], env: &[(&str, &str)]) -> (Server, Vec<String>) {
        Server::spawn_in(None, args, env)
    }

    /// [`Server::spawn`] in working directory `dir` (the test's own by default).
    pub fn spawn_in(
        dir: Option<&Path>,
        args: &[&str],
        env: &[(&str, &str)],
    ) -> (Server, Vec<String>) {
        use std::io::BufRead as _;
        let mut command = wangge();
        if let Some(dir) = dir {
            command.current_dir(dir);
        }
        command
            .args(args)
            .env("WANGGE_LOG", "warn")
            .stdout(std::process::Stdio::piped());
        for (name, value) in env {
            command.env(name, value);
        }
        let mut child = command.spawn().expect("starting wangge");
        let stdout = child.stdout.take().expect("stdout is piped");
        let mut before = Vec::new();
        for line in std::io::BufReader::new(stdout).lines() {
            let line = line.expect("reading the server's output");
            if let Some(base_url) = line.trim().strip_prefix("wangge listening on ") {
                let base_url = base_url.to_owned();
                return (Server { child, base_url }, before);
            }
            before.push(line);
        }
        let _ = child.kill();
        let _ = child.wait();
        panic!("wangge {args:?} exited without listening; it printed {before:?}");
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

/// The built-in catalogue as `wangge catalog export` writes it, plus `extra`.
pub fn catalogue_file(dir: &std::path::Path, extra: &str) -> std::path::PathBuf {
    let exported = wangge_ok(&["catalog", "export"], "");
    let path = dir.join("catalog.toml");
    std::fs::write(&path, format!("{exported}\n{extra}")).expect("write");
    path
}

/// A city's own team and category (shared bikes, 共享单车), added to the built-in
/// catalogue by `catalogue.rs` and the phone's catalogue test.
pub const SHARED_BIKES: &str = r#"
[[team]]
id = "bike_operators"
name_zh = "共享单车企业"
name_en = "Shared-bike operators"
external = true

[[category]]
code = "E0560"
name_zh = "共享单车乱停放"
name_en = "Shared bikes parked in the way"
team = "bike_operators"
limits = { handle = "4 working_hours" }
"#;

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

/// An HTTP client that returns 4xx and 5xx answers instead of failing on them.
pub fn http() -> ureq::Agent {
    ureq::Agent::config_builder()
        .http_status_as_error(false)
        .build()
        .into()
}

/// The status and JSON body (`null` if none) of an answer.
pub fn answer(
    response: Result<ureq::http::Response<ureq::Body>, ureq::Error>,
) -> (u16, serde_json::Value) {
    let mut response = response.expect("the request reaches the server");
    let status = response.status().as_u16();
    let body = response
        .body_mut()
        .read_json::<serde_json::Value>()
        .unwrap_or(serde_json::Value::Null);
    (status, body)
}

/// A database for one end-to-end test: its URL for `wangge --database`, and what keeps
/// it alive.
#[derive(Debug)]
pub struct TestDatabase {
    /// `sqlite` or `postgres`.
    pub backend: &'static str,
    /// For `--database`.
    pub url: String,
    _dir: Option<tempfile::TempDir>,
}

/// A fresh SQLite file, and a fresh PostgreSQL schema when `WANGGE_TEST_POSTGRES_URL`
/// is set (with `CI=true` it must be).
pub fn databases() -> Vec<TestDatabase> {
    let dir = tempfile::tempdir().expect("temporary directory");
    let mut databases = vec![TestDatabase {
        backend: "sqlite",
        url: format!("sqlite://{}", dir.path().join("wangge.db").display()),
        _dir: Some(dir),
    }];
    match std::env::var("WANGGE_TEST_POSTGRES_URL") {
        Ok(base) => {
            let schema = format!("e2e_{}", uuid::Uuid::now_v7().simple());
            let runtime = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .expect("runtime");
            runtime.block_on(async {
                use sqlx::Executor as _;
                let admin = sqlx::PgPool::connect(&base)
                    .await
                    .expect("connect to PostgreSQL");
                // The name is ours (a UUID), not input.
                let create = format!("CREATE SCHEMA {schema}");
                admin
                    .execute(sqlx::raw_sql(sqlx::AssertSqlSafe(create)))
                    .await
                    .expect("create schema");
                admin.close().await;
            });
            let separator = if base.contains('?') { '&' } else { '?' };
            databases.push(TestDatabase {
                backend: "postgres",
                url: format!("{base}{separator}options%5Bsearch_path%5D={schema}"),
                _dir: None,
            });
        }
        Err(_) if std::env::var("CI").is_ok_and(|v| v == "true") => {
            panic!(
                "CI=true but WANGGE_TEST_POSTGRES_URL is not set: the PostgreSQL tests must run"
            );
        }
        Err(_) => skipped(
            "the PostgreSQL half of an end-to-end test",
            "WANGGE_TEST_POSTGRES_URL is not set",
        ),
    }
    databases
}

/// Says that a part of a test did not run: on standard error, and as a line of
/// `<target>/test-skips.log`, which `.ci/run` reports in its closing line (the test
/// harness hides what a passing test prints). With `CI=true` nothing may be skipped:
/// it panics instead.
pub fn skipped(what: &str, why: &str) {
    use std::io::Write as _;
    let test = std::thread::current().name().unwrap_or("a test").to_owned();
    assert!(
        !std::env::var("CI").is_ok_and(|v| v == "true"),
        "{test}: {what} would be skipped ({why}), and CI=true skips nothing"
    );
    eprintln!("skipped: {test}: {what} ({why})");
    let log = std::env::current_exe()
        .ok()
        .and_then(|exe| Some(exe.parent()?.parent()?.parent()?.join("test-skips.log")));
    if let Some(log) = log
        && let Ok(mut file) = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(log)
    {
        let _ = writeln!(file, "{test}: {what} ({why})");
    }
}

/// Adds a user with `wangge user add` (the password on stdin).
pub fn add_user(url: &str, id: &str, role: &str, team: Option<&str>, scope: &str, password: &str) {
    let mut args = vec![
        "user",
        "add",
        "--database",
        url,
        "--id",
        id,
        "--name",
        id,
        "--role",
        role,
        "--scope",
        scope,
    ];
    if let Some(team) = team {
        args.extend(["--team", team]);
    }
    wangge_ok(&args, &format!("{password}\n"));
}
