//! `bare_axum_mimalloc`: the example app's HTTP benchmark's baseline
//! ([`kv_module_tests::bare_axum`]) on mimalloc, the allocator the example
//! app uses, so that the app is also compared with a bare handler on the
//! same allocator.
//!
//! ```text
//! cargo build --release -p kv-module-tests --bin bare_axum_mimalloc
//! BARE_ADDR=127.0.0.1:8081 REDIS_ADDR=127.0.0.1:6379 target/release/bare_axum_mimalloc
//! ```

use std::process::ExitCode;

#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

#[tokio::main]
async fn main() -> ExitCode {
    kv_module_tests::bare_axum::serve().await
}
