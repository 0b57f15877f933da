//! The kv-module example app.
//!
//! For now a short demonstration of the `KvStore` contract: it opens the
//! store chosen by `KV_DRIVER` (`kvstore_redis`, the default, at
//! `REDIS_ADDR` or `localhost:6379`; or `kvstore_memory`), writes, reads and
//! counts, and prints what it did. The axum service arrives with the
//! example-app issue.

use std::sync::Arc;

use kv_module::{KvStore, KvStoreExt, MemoryStore, RedisConfig, RedisStore, Secret, Ttl};

#[tokio::main]
async fn main() -> std::process::ExitCode {
    match run().await {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("example-app: {e}");
            let mut source = std::error::Error::source(&e);
            while let Some(cause) = source {
                eprintln!("  caused by: {cause}");
                source = cause.source();
            }
            std::process::ExitCode::FAILURE
        }
    }
}

async fn run() -> kv_module::Result<()> {
    let driver = std::env::var("KV_DRIVER").unwrap_or_else(|_| "kvstore_redis".into());
    let store: Arc<dyn KvStore> = match driver.as_str() {
        "kvstore_memory" => Arc::new(MemoryStore::new("demo_cache", "example")),
        _ => {
            let addr = std::env::var("REDIS_ADDR").unwrap_or_else(|_| "localhost:6379".into());
            let password = Secret::new(std::env::var("REDIS_PASSWORD").unwrap_or_default());
            let config = RedisConfig::new(addr)
                .with_password(password)
                .with_prefix("example");
            Arc::new(RedisStore::open("demo_cache", config).await?)
        }
    };
    println!(
        "opened `{}` ({driver}), prefix `{}`",
        store.name(),
        store.prefix()
    );

    store
        .set("greeting", "hello from kv-module", Ttl::secs(60))
        .await?;
    let greeting: Option<String> = store.get("greeting").await?;
    println!(
        "greeting = {greeting:?}, ttl = {:?}",
        store.ttl("greeting").await?
    );
    let visits = store.incr_by("visits", 1).await?;
    store
        .expire("visits", std::time::Duration::from_secs(3600))
        .await?;
    println!("visits = {visits}");
    println!("keys = {:?}", store.keys("*").await?);
    store.close().await;
    Ok(())
}
