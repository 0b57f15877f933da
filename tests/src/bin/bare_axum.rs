//! `bare_axum`: the example app's HTTP benchmark's baseline
//! ([`kv_module_tests::bare_axum`]) on the system allocator.
//!
//! ```text
//! cargo build --release -p kv-module-tests --bin bare_axum
//! BARE_ADDR=127.0.0.1:8081 REDIS_ADDR=127.0.0.1:6379 target/release/bare_axum
//! ```

use std::process::ExitCode;

#[tokio::main]
async fn main() -> ExitCode {
    kv_module_tests::bare_axum::serve().await
}
