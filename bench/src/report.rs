//! Percentiles, the printed table and the JSON results file.

use std::path::{Path, PathBuf};
use std::time::Duration;

use anyhow::Context;
use serde_json::Value;

/// Percentiles of durations, in milliseconds.
#[derive(Debug, Clone, Copy, Default)]
pub struct Spread {
    /// How many.
    pub count: usize,
    /// Median.
    pub p50: f64,
    /// 90th percentile.
    pub p90: f64,
    /// 99th percentile.
    pub p99: f64,
    /// Largest.
    pub max: f64,
}

impl Spread {
    /// Of `samples` (nearest-rank percentiles).
    pub fn of(samples: &[Duration]) -> Spread {
        let mut ms: Vec<f64> = samples.iter().map(|d| d.as_secs_f64() * 1e3).collect();
        ms.sort_by(f64::total_cmp);
        Spread::of_sorted_ms(&ms)
    }

    /// Of milliseconds (may be negative), sorted here.
    pub fn of_ms(samples: &[f64]) -> Spread {
        let mut ms = samples.to_vec();
        ms.sort_by(f64::total_cmp);
        Spread::of_sorted_ms(&ms)
    }

    fn of_sorted_ms(ms: &[f64]) -> Spread {
        let rank = |q: f64| -> f64 {
            if ms.is_empty() {
                return f64::NAN;
            }
            let i = ((q * ms.len() as f64).ceil() as usize).clamp(1, ms.len()) - 1;
            ms[i]
        };
        Spread {
            count: ms.len(),
            p50: rank(0.50),
            p90: rank(0.90),
            p99: rank(0.99),
            max: ms.last().copied().unwrap_or(f64::NAN),
        }
    }

    /// `p50 / p90 / p99 / max ms`.
    pub fn text(&self) -> String {
        format!(
            "{:.2} / {:.2} / {:.2} / {:.2} ms (n = {})",
            self.p50, self.p90, self.p99, self.max, self.count
        )
    }

    /// As JSON.
    pub fn json(&self) -> Value {
        serde_json::json!({
            "count": self.count, "p50_ms": round3(self.p50), "p90_ms": round3(self.p90),
            "p99_ms": round3(self.p99), "max_ms": round3(self.max),
        })
    }
}

/// Three decimals, for JSON.
pub fn round3(x: f64) -> f64 {
    (x * 1e3).round() / 1e3
}

/// Prints `rows` as a two-column table under `title`.
pub fn print_table(title: &str, rows: &[(String, String)]) {
    let width = rows
        .iter()
        .map(|(k, _)| k.chars().count())
        .max()
        .unwrap_or(0);
    println!();
    println!("{title}");
    println!("{}", "-".repeat(title.chars().count()));
    for (key, value) in rows {
        let pad = width - key.chars().count();
        println!("  {key}{}  {value}", " ".repeat(pad));
    }
}

/// The default results file: `<workspace>/target/bench-results/<name>.json`.
pub fn default_out(name: &str) -> PathBuf {
    crate::server::workspace_root()
        .join("target/bench-results")
        .join(format!("{name}.json"))
}

/// Writes `value` as pretty JSON to `path` (creating its directory).
pub fn write_json(path: &Path, value: &Value) -> anyhow::Result<()> {
    if let Some(dir) = path.parent() {
        std::fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;
    }
    let text = serde_json::to_string_pretty(value)?;
    std::fs::write(path, text + "\n").with_context(|| format!("writing {}", path.display()))?;
    println!("\nresults written to {}", path.display());
    Ok(())
}

/// This machine and what ran: CPU count and model, the workspace's commit (`-dirty`
/// with uncommitted changes) and the server binary's build time (rebuild it after
/// checking out another commit: the commit says what the tree was, not the binary).
pub fn machine(server_bin: &Path) -> Value {
    let cpus = std::thread::available_parallelism().map_or(0, usize::from);
    let model = std::fs::read_to_string("/proc/cpuinfo")
        .ok()
        .and_then(|text| {
            text.lines()
                .find(|l| l.starts_with("model name"))
                .and_then(|l| l.split_once(':'))
                .map(|(_, v)| v.trim().to_owned())
        })
        .unwrap_or_default();
    let commit = std::process::Command::new("git")
        .args(["describe", "--always", "--dirty", "--exclude", "*"])
        .current_dir(crate::server::workspace_root())
        .output()
        .ok()
        .map(|o| String::from_utf8_lossy(&o.stdout).trim().to_owned())
        .unwrap_or_default();
    serde_json::json!({
        "cpus": cpus,
        "cpu_model": model,
        "commit": commit,
        "date": crate::phone::now().to_rfc3339(),
        "command": std::env::args().collect::<Vec<_>>().join(" "),
        "server_bin": server_bin.display().to_string(),
        "server_bin_modified": std::fs::metadata(server_bin)
            .and_then(|m| m.modified())
            .ok()
            .and_then(|t| t.duration_since(std::time::UNIX_EPOCH).ok())
            .and_then(|d| chrono::DateTime::<chrono::Utc>::from_timestamp(d.as_secs() as i64, 0))
            .map(|t| t.to_rfc3339()),
        // Other work on the machine shows here (1, 5 and 15 minute load averages at the end).
        "loadavg_at_end": std::fs::read_to_string("/proc/loadavg").unwrap_or_default().trim(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn nearest_rank_percentiles() {
        let samples: Vec<Duration> = (1..=100).map(Duration::from_millis).collect();
        let s = Spread::of(&samples);
        assert_eq!((s.count, s.p50, s.p99, s.max), (100, 50.0, 99.0, 100.0));
        let one = Spread::of(&[Duration::from_millis(7)]);
        assert_eq!((one.p50, one.p99), (7.0, 7.0));
        assert!(Spread::of(&[]).p50.is_nan());
    }
}
