//! The real `wangge` binary: its command line (users, grids) and a `wangge serve`
//! process the bench starts, measures through `/proc` and kills when it is dropped
//! (also when the bench fails or is interrupted).

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::Duration;

use anyhow::{Context, bail};
use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader};
use tokio::process::{Child, Command};

/// The workspace root (where `data/` is).
pub fn workspace_root() -> PathBuf {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("..");
    std::fs::canonicalize(&root).unwrap_or(root)
}

/// The `wangge` binary: `--server-bin`, else `wangge` beside this tool (both are built
/// into the same `target/<profile>/`).
pub fn find_wangge(explicit: Option<&Path>) -> anyhow::Result<PathBuf> {
    if let Some(path) = explicit {
        if !path.is_file() {
            bail!("--server-bin {}: no such file", path.display());
        }
        return Ok(path.to_owned());
    }
    let exe = std::env::current_exe().context("the bench's own path")?;
    let beside = exe
        .parent()
        .map(|dir| dir.join(format!("wangge{}", std::env::consts::EXE_SUFFIX)));
    match beside {
        Some(path) if path.is_file() => Ok(path),
        _ => bail!(
            "no `wangge` binary beside {}: build it with `cargo build --release -p wangge-server` \
             (same CARGO_TARGET_DIR) or pass --server-bin PATH",
            exe.display()
        ),
    }
}

/// A database for one bench run: a SQLite file in a temporary directory, or a fresh
/// PostgreSQL database created on the given server and dropped afterwards.
#[derive(Debug)]
pub struct Database {
    /// What the server is given.
    pub url: String,
    /// Holds the SQLite file (and the server's log) until the run ends.
    pub dir: tempfile::TempDir,
    /// `(admin URL, database name)` of a PostgreSQL database to drop.
    postgres: Option<(String, String)>,
}

impl Database {
    /// `spec`: `None` or `sqlite` for a fresh SQLite file; `postgres://…/DB` for a fresh
    /// database next to `DB` on that server (created with `psql`).
    pub fn create(spec: Option<&str>) -> anyhow::Result<Database> {
        let dir = tempfile::Builder::new()
            .prefix("wangge-bench-")
            .tempdir()
            .context("creating a temporary directory")?;
        match spec {
            None | Some("sqlite") => Ok(Database {
                url: format!("sqlite://{}", dir.path().join("bench.db").display()),
                dir,
                postgres: None,
            }),
            Some(url) if url.starts_with("sqlite://") => Ok(Database {
                url: url.to_owned(),
                dir,
                postgres: None,
            }),
            Some(url) if url.starts_with("postgres://") || url.starts_with("postgresql://") => {
                let name = format!(
                    "bench_{}_{}",
                    std::process::id(),
                    crate::phone::now().timestamp_millis()
                );
                psql(url, &format!("CREATE DATABASE {name}"))
                    .with_context(|| format!("creating database {name} on {}", redact(url)))?;
                Ok(Database {
                    url: with_database(url, &name)?,
                    dir,
                    postgres: Some((url.to_owned(), name)),
                })
            }
            Some(other) => bail!("--database {other:?}: expected sqlite://FILE or postgres://…"),
        }
    }

    /// `sqlite` or `postgres`.
    pub fn backend(&self) -> &'static str {
        if self.postgres.is_some() {
            "postgres"
        } else {
            "sqlite"
        }
    }
}

impl Drop for Database {
    fn drop(&mut self) {
        if let Some((admin, name)) = &self.postgres
            && let Err(e) = psql(
                admin,
                &format!("DROP DATABASE IF EXISTS {name} WITH (FORCE)"),
            )
        {
            eprintln!("warning: could not drop database {name}: {e:#}");
        }
    }
}

fn psql(url: &str, sql: &str) -> anyhow::Result<()> {
    let output = std::process::Command::new("psql")
        .args([url, "-v", "ON_ERROR_STOP=1", "-q", "-c", sql])
        .output()
        .context("running psql (is the PostgreSQL client installed?)")?;
    if !output.status.success() {
        bail!(
            "psql -c {sql:?} failed: {}",
            String::from_utf8_lossy(&output.stderr).trim()
        );
    }
    Ok(())
}

/// `url` with its database (path) replaced by `name`, query kept.
fn with_database(url: &str, name: &str) -> anyhow::Result<String> {
    let scheme_end = url.find("://").map_or(0, |i| i + 3);
    let (rest, query) = match url[scheme_end..].find('?') {
        Some(i) => url.split_at(scheme_end + i),
        None => (url, ""),
    };
    let base = match rest[scheme_end..].find('/') {
        Some(i) => &rest[..scheme_end + i],
        None => rest,
    };
    if base.len() <= scheme_end {
        bail!("cannot read the host of {}", redact(url));
    }
    Ok(format!("{base}/{name}{query}"))
}

/// A URL without its password, for messages.
pub fn redact(url: &str) -> String {
    match (url.find("://"), url.find('@')) {
        (Some(s), Some(at)) if at > s => {
            let userinfo = &url[s + 3..at];
            match userinfo.find(':') {
                Some(colon) => format!("{}{}:***{}", &url[..s + 3], &userinfo[..colon], &url[at..]),
                None => url.to_owned(),
            }
        }
        _ => url.to_owned(),
    }
}

/// The `wangge` command line.
#[derive(Debug, Clone)]
pub struct Wangge {
    /// The binary.
    pub bin: PathBuf,
}

impl Wangge {
    /// Runs `wangge ARGS` with `stdin`; its stdout, or an error with its stderr.
    pub async fn run(&self, args: &[&str], stdin: &str) -> anyhow::Result<String> {
        let mut child = Command::new(&self.bin)
            .args(args)
            .env("WANGGE_LOG", "warn")
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .kill_on_drop(true)
            .spawn()
            .with_context(|| format!("starting {}", self.bin.display()))?;
        if let Some(mut input) = child.stdin.take() {
            input.write_all(stdin.as_bytes()).await?;
        }
        let output = child.wait_with_output().await?;
        if !output.status.success() {
            bail!(
                "wangge {} failed ({}): {}",
                args.join(" "),
                output.status,
                String::from_utf8_lossy(&output.stderr).trim()
            );
        }
        Ok(String::from_utf8_lossy(&output.stdout).into_owned())
    }

    /// Creates users `(id, role, team, scope)` with `password`, a few processes at a
    /// time (each hashes a password with argon2).
    pub async fn add_users(
        &self,
        database: &str,
        users: &[(String, &str, Option<&str>, String)],
        password: &str,
    ) -> anyhow::Result<()> {
        let stdin = format!("{password}\n");
        let mut pending = users.iter();
        let mut running = tokio::task::JoinSet::new();
        loop {
            while running.len() < 4 {
                let Some((id, role, team, scope)) = pending.next() else {
                    break;
                };
                let mut args: Vec<String> = [
                    "user",
                    "add",
                    "--database",
                    database,
                    "--id",
                    id,
                    "--name",
                    id,
                    "--role",
                    role,
                    "--scope",
                    scope,
                ]
                .iter()
                .map(|s| (*s).to_owned())
                .collect();
                if let Some(team) = team {
                    args.extend(["--team".to_owned(), (*team).to_owned()]);
                }
                let wangge = self.clone();
                let stdin = stdin.clone();
                running.spawn(async move {
                    let args: Vec<&str> = args.iter().map(String::as_str).collect();
                    wangge.run(&args, &stdin).await.map(drop)
                });
            }
            match running.join_next().await {
                Some(joined) => joined.context("user add task")??,
                None => return Ok(()),
            }
        }
    }

    /// Cuts `district`'s unit grids into `out` and imports them into `database`.
    pub async fn grids(&self, district: &str, out: &Path, database: &str) -> anyhow::Result<()> {
        self.cut_grids(district, out).await?;
        let out = out.to_string_lossy().into_owned();
        self.run(
            &["grid", "import", "--grids", &out, "--database", database],
            "",
        )
        .await?;
        Ok(())
    }

    /// Cuts `district`'s unit grids into `out`.
    pub async fn cut_grids(&self, district: &str, out: &Path) -> anyhow::Result<()> {
        let districts = workspace_root().join("data/zhengzhou-districts.geojson");
        let districts = districts.to_string_lossy().into_owned();
        let out = out.to_string_lossy().into_owned();
        self.run(
            &[
                "grid",
                "generate",
                "--districts",
                &districts,
                "--adcodes",
                district,
                "--out",
                &out,
            ],
            "",
        )
        .await?;
        Ok(())
    }

    /// Starts `wangge serve` on a loopback port; waits (up to a minute) for the address
    /// it prints. Its log (stderr, `WANGGE_LOG=warn`) goes to `log`.
    pub async fn serve(
        &self,
        database: &str,
        log: &Path,
        env: &[(&str, &str)],
    ) -> anyhow::Result<ServerProcess> {
        let log_file = std::fs::File::create(log)
            .with_context(|| format!("creating the server log {}", log.display()))?;
        let mut command = Command::new(&self.bin);
        command
            .args(["serve", "--listen", "127.0.0.1:0", "--database", database])
            .env("WANGGE_LOG", "warn")
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::from(log_file))
            .kill_on_drop(true);
        for (name, value) in env {
            command.env(name, value);
        }
        let mut child = command
            .spawn()
            .with_context(|| format!("starting {} serve", self.bin.display()))?;
        let pid = child.id().context("the server's pid")?;
        let stdout = child.stdout.take().context("the server's stdout")?;
        let mut lines = BufReader::new(stdout).lines();
        let waited = tokio::time::timeout(Duration::from_secs(60), async {
            let mut before = Vec::new();
            while let Some(line) = lines.next_line().await? {
                if let Some(url) = line.trim().strip_prefix("wangge listening on ") {
                    return Ok::<_, anyhow::Error>(Some(url.to_owned()));
                }
                before.push(line);
            }
            Ok(None)
        })
        .await;
        let url = match waited {
            Ok(Ok(Some(url))) => url,
            outcome => {
                let _ = child.kill().await;
                let log_text = std::fs::read_to_string(log).unwrap_or_default();
                let why = match outcome {
                    Err(_) => "did not print its address within 60 s".to_owned(),
                    Ok(Err(e)) => format!("could not be read: {e}"),
                    _ => "exited without listening".to_owned(),
                };
                bail!(
                    "the server ({} serve --database {}) {why}; its log:\n{}",
                    self.bin.display(),
                    redact(database),
                    log_text.trim()
                );
            }
        };
        // Nothing more is printed on stdout, but keep the pipe drained.
        tokio::spawn(async move { while let Ok(Some(_)) = lines.next_line().await {} });
        let addr: SocketAddr = url
            .strip_prefix("http://")
            .unwrap_or(&url)
            .parse()
            .with_context(|| format!("the server printed an address {url:?}"))?;
        Ok(ServerProcess {
            child,
            pid,
            addr,
            log: log.to_owned(),
        })
    }
}

/// A running `wangge serve`, killed when dropped.
#[derive(Debug)]
pub struct ServerProcess {
    child: Child,
    /// Its process id.
    pub pid: u32,
    /// Where it listens.
    pub addr: SocketAddr,
    log: PathBuf,
}

impl ServerProcess {
    /// Fails if the server exited.
    pub fn check_alive(&mut self) -> anyhow::Result<()> {
        if let Some(status) = self.child.try_wait()? {
            let log_text = std::fs::read_to_string(&self.log).unwrap_or_default();
            bail!(
                "the server exited ({status}); its log:\n{}",
                log_text.trim()
            );
        }
        Ok(())
    }

    /// User + system CPU time so far, in seconds (all threads).
    pub fn cpu_seconds(&self) -> anyhow::Result<f64> {
        proc_cpu_seconds(&format!("/proc/{}/stat", self.pid))
    }

    /// A `/proc/PID/status` field in KiB (`VmRSS`, `VmHWM`).
    pub fn memory_kib(&self, field: &str) -> anyhow::Result<u64> {
        proc_status_kib(&format!("/proc/{}/status", self.pid), field)
    }

    /// Warnings and errors the server logged: how many, and each kind (the message
    /// up to its first field, e.g. `ERROR wangge_server::api: sync storage failed`,
    /// or a slow statement's summary) with its count and one full example.
    pub fn log_problems(&self) -> (usize, Vec<String>) {
        log_kinds(&std::fs::read_to_string(&self.log).unwrap_or_default())
    }

    /// Lines of the server's log that contain `needle`.
    pub fn log_count(&self, needle: &str) -> usize {
        std::fs::read_to_string(&self.log)
            .unwrap_or_default()
            .lines()
            .filter(|line| line.contains(needle))
            .count()
    }

    /// Kills the server and waits for it.
    pub async fn stop(mut self) {
        let _ = self.child.kill().await;
    }
}

/// Counts the warnings and errors of a server log by kind (see
/// [`ServerProcess::log_problems`]).
fn log_kinds(text: &str) -> (usize, Vec<String>) {
    let mut count = 0;
    let mut kinds: Vec<(String, usize, String)> = Vec::new();
    for line in text.lines() {
        let Some(at) = line.find(" WARN ").or_else(|| line.find(" ERROR ")) else {
            continue;
        };
        count += 1;
        let message = &line[at + 1..];
        // The kind: up to the first `key=value` field, with a slow statement's
        // summary kept (it names the statement).
        let summary = message
            .find("summary=\"")
            .map(|i| &message[i..])
            .and_then(|rest| rest.find("\" ").map(|end| &rest[..=end]))
            .unwrap_or("");
        let head = match message.find('=') {
            // Drop the field's key too.
            Some(i) => message[..i]
                .rsplit_once(' ')
                .map_or(&message[..i], |(h, _)| h),
            None => message,
        };
        let head: String = head.chars().take(120).collect();
        let kind = format!("{head} {summary}").trim().to_owned();
        match kinds.iter_mut().find(|(k, _, _)| *k == kind) {
            Some((_, n, _)) => *n += 1,
            None => kinds.push((kind, 1, message.chars().take(600).collect())),
        }
    }
    kinds.sort_by_key(|(_, n, _)| std::cmp::Reverse(*n));
    let lines = kinds
        .into_iter()
        .take(12)
        .map(|(kind, n, example)| format!("{n} × {kind}  | e.g. {example}"))
        .collect();
    (count, lines)
}

/// The server's `GET /metrics` (OpenMetrics text), as `name{labels}` → value.
#[derive(Debug, Clone, Default)]
pub struct Metrics(Vec<(String, f64)>);

impl Metrics {
    /// Reads `/metrics`; `None` if the server has none (older servers) or it fails.
    pub async fn scrape(addr: SocketAddr) -> Option<Metrics> {
        let mut http = crate::http::Http::new(addr);
        let response = http.request("GET", "/metrics", &[], b"").await.ok()?;
        if response.status != 200 {
            return None;
        }
        let text = String::from_utf8_lossy(&response.body).into_owned();
        Some(Metrics(
            text.lines()
                .filter(|l| !l.starts_with('#'))
                .filter_map(|l| {
                    let (key, value) = l.rsplit_once(' ')?;
                    Some((key.to_owned(), value.parse().ok()?))
                })
                .collect(),
        ))
    }

    /// `self − before`, series by series.
    pub fn minus(&self, before: &Metrics) -> Metrics {
        Metrics(
            self.0
                .iter()
                .map(|(key, value)| {
                    let old = before
                        .0
                        .iter()
                        .find(|(k, _)| k == key)
                        .map_or(0.0, |(_, v)| *v);
                    (key.clone(), value - old)
                })
                .collect(),
        )
    }

    /// A series without labels.
    pub fn counter(&self, name: &str) -> f64 {
        self.0
            .iter()
            .find(|(k, _)| k == name)
            .map_or(0.0, |(_, v)| *v)
    }

    /// The sync rounds by outcome, e.g. `ok 1200, sync_round_conflict 3`.
    pub fn rounds(&self) -> String {
        let parts: Vec<String> = self
            .0
            .iter()
            .filter(|(k, v)| k.starts_with("wangge_sync_rounds_total{") && *v > 0.0)
            .map(|(k, v)| {
                let outcome = k
                    .split("outcome=\"")
                    .nth(1)
                    .and_then(|r| r.split('"').next())
                    .unwrap_or(k);
                format!("{outcome} {v}")
            })
            .collect();
        if parts.is_empty() {
            "none".to_owned()
        } else {
            parts.join(", ")
        }
    }
}

/// Clock ticks per second (`getconf CLK_TCK`; 100 on Linux if that fails).
fn clock_ticks() -> f64 {
    static TICKS: std::sync::OnceLock<f64> = std::sync::OnceLock::new();
    *TICKS.get_or_init(|| {
        std::process::Command::new("getconf")
            .arg("CLK_TCK")
            .output()
            .ok()
            .and_then(|o| String::from_utf8_lossy(&o.stdout).trim().parse().ok())
            .unwrap_or(100.0)
    })
}

/// utime + stime of `/proc/…/stat`, in seconds.
pub fn proc_cpu_seconds(path: &str) -> anyhow::Result<f64> {
    let text = std::fs::read_to_string(path).with_context(|| format!("reading {path}"))?;
    // The command name is in parentheses and may hold spaces: count after the last ')'.
    let after = text
        .rfind(')')
        .map(|i| &text[i + 1..])
        .with_context(|| format!("{path}: no command name"))?;
    let fields: Vec<&str> = after.split_whitespace().collect();
    // Fields 14 and 15 of the line (utime, stime) are 12 and 13 after the name.
    let ticks = |i: usize| -> anyhow::Result<u64> {
        fields
            .get(i)
            .and_then(|f| f.parse().ok())
            .with_context(|| format!("{path}: field {} is not a number", i + 3))
    };
    Ok((ticks(11)? + ticks(12)?) as f64 / clock_ticks())
}

/// A `kB` field of `/proc/…/status`.
pub fn proc_status_kib(path: &str, field: &str) -> anyhow::Result<u64> {
    let text = std::fs::read_to_string(path).with_context(|| format!("reading {path}"))?;
    text.lines()
        .find_map(|line| {
            line.strip_prefix(field)
                .and_then(|rest| rest.strip_prefix(':'))
                .and_then(|rest| rest.trim().trim_end_matches("kB").trim().parse().ok())
        })
        .with_context(|| format!("{path}: no {field}"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn database_urls() {
        assert_eq!(
            with_database("postgres://postgres@127.0.0.1:5432/test", "b").ok(),
            Some("postgres://postgres@127.0.0.1:5432/b".to_owned())
        );
        assert_eq!(
            with_database("postgres://u:p@h/test?sslmode=disable", "b").ok(),
            Some("postgres://u:p@h/b?sslmode=disable".to_owned())
        );
        assert_eq!(
            with_database("postgres://h", "b").ok(),
            Some("postgres://h/b".to_owned())
        );
        assert_eq!(redact("postgres://u:secret@h/db"), "postgres://u:***@h/db");
    }

    #[test]
    fn log_problems_by_kind() {
        let log = "2026-11-28T05:00:00Z  WARN sqlx::query: slow statement: execution time exceeded alert threshold summary=\"UPDATE catalogue SET seq …\" db.statement=\"x\" elapsed=1.2s\n\
                   2026-11-28T05:00:01Z  WARN sqlx::query: slow statement: execution time exceeded alert threshold summary=\"UPDATE catalogue SET seq …\" db.statement=\"x\" elapsed=1.9s\n\
                   2026-11-28T05:00:02Z ERROR wangge_server::api: sync storage failed storage: database error: deadlock detected\n\
                   2026-11-28T05:00:03Z  INFO wangge_server: fine\n";
        let (count, kinds) = log_kinds(log);
        assert_eq!(count, 3);
        assert_eq!(kinds.len(), 2, "{kinds:?}");
        assert!(kinds[0].starts_with("2 × WARN sqlx::query: slow statement: execution time exceeded alert threshold summary=\"UPDATE catalogue SET seq …\""), "{kinds:?}");
        assert!(
            kinds[1].starts_with("1 × ERROR wangge_server::api: sync storage failed"),
            "{kinds:?}"
        );
    }

    #[test]
    fn own_cpu_and_memory() {
        assert!(proc_cpu_seconds("/proc/self/stat").is_ok());
        assert!(proc_status_kib("/proc/self/status", "VmRSS").is_ok_and(|kib| kib > 0));
    }
}
