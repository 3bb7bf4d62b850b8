//! The phone library of wangge. Empty until the mobile-ffi issue brings the uniffi
//! bindings (Kotlin/Swift, tested through Python) and the rusqlite device store; it is a
//! workspace member now so that it builds against `wangge-sync-core` from the start.
