//! What the benches share: a deterministic random source and where results go.
//! Included with `#[path]`; each bench uses part of it.

#![allow(dead_code)]

use std::fmt::Write as _;
use std::path::PathBuf;

use chrono::{DateTime, Utc};

/// `bench-data/NAME` under `$CARGO_TARGET_DIR` (default `target/`).
pub fn results_dir(name: &str) -> PathBuf {
    std::env::var_os("CARGO_TARGET_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from(concat!(env!("CARGO_MANIFEST_DIR"), "/../target")))
        .join("bench-data")
        .join(name)
}

/// splitmix64: deterministic ids, hashes and choices, the same on every run.
pub struct Rng(pub u64);

impl Rng {
    pub fn next_u64(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    /// A number in `0..n`.
    pub fn below(&mut self, n: usize) -> usize {
        (self.next_u64() % n as u64) as usize
    }

    pub fn chance(&mut self, percent: usize) -> bool {
        self.below(100) < percent
    }

    pub fn pick<'a, T>(&mut self, items: &'a [T]) -> &'a T {
        &items[self.below(items.len())]
    }

    /// `digits` random lowercase hex digits.
    pub fn hex(&mut self, digits: usize) -> String {
        let mut out = String::with_capacity(digits + 16);
        while out.len() < digits {
            write!(out, "{:016x}", self.next_u64()).expect("write to a String");
        }
        out.truncate(digits);
        out
    }

    /// A UUID v7 string for something made at `at`, as the apps make them.
    pub fn uuid_v7(&mut self, at: DateTime<Utc>) -> String {
        let ms = at.timestamp_millis() as u64 & 0xFFFF_FFFF_FFFF;
        let r = self.next_u64();
        format!(
            "{:08x}-{:04x}-7{:03x}-{:04x}-{:012x}",
            ms >> 16,
            ms & 0xFFFF,
            r & 0xFFF,
            0x8000 | ((r >> 12) & 0x3FFF),
            (r >> 26) & 0xFFFF_FFFF_FFFF
        )
    }

    /// A Fisher–Yates shuffle.
    pub fn shuffle<T>(&mut self, items: &mut [T]) {
        for i in (1..items.len()).rev() {
            items.swap(i, self.below(i + 1));
        }
    }
}
