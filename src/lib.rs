//! dstar: synchronous, std-only Server-Sent Events and Datastar for blocking Rust servers.
#![forbid(unsafe_code)]
#![warn(missing_docs)]

// --- modules (each owner adds its own line) ---
