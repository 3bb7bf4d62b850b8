//! Rebuilds the server when a migration is added or changed: `sqlx::migrate!` embeds
//! the `migrations/` files at compile time, and cargo does not watch a directory for
//! new files unless told (a new migration otherwise leaves a stale binary behind).

fn main() {
    println!("cargo:rerun-if-changed=../migrations");
}
