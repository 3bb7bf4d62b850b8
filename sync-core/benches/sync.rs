//! Sync protocol benchmarks (being written).

fn main() {}
