//! A Redis server filled to `maxmemory` under `noeviction`: every command
//! that may grow memory (`SET`, `SET NX`, …) is refused with `OOM`, while
//! `DEL`, `UNLINK` and reads still work — what a production Redis does
//! when it runs out of memory without an eviction policy.

use kv_module_tests::TestRedis;

/// Sets `maxmemory` just above the memory `server` uses now, with
/// `maxmemory-policy noeviction`, then writes junk (keys `junk:<n>`,
/// never read by the code under test) until Redis refuses a write with
/// `OOM`, and lowers `maxmemory` below what is then used, so that Redis
/// stays full when connections close. Returns how many junk keys fit.
///
/// # Panics
///
/// When Redis refuses the configuration or never reports `OOM`.
pub async fn fill_to_maxmemory(server: &TestRedis) -> u64 {
    let mut raw = server.raw(0).await;
    let used = used_memory(&mut raw).await;
    config_set(&mut raw, "maxmemory-policy", "noeviction").await;
    config_set(&mut raw, "maxmemory", &(used + 256 * 1024).to_string()).await;
    let junk = vec![b'x'; 4096];
    let mut written = 0;
    loop {
        let set: redis::RedisResult<()> = redis::cmd("SET")
            .arg(format!("junk:{written}"))
            .arg(&junk)
            .query_async(&mut raw)
            .await;
        match set {
            Ok(()) => written += 1,
            Err(err) if err.to_string().contains("OOM") => break,
            Err(err) => panic!("filling Redis: {err}"),
        }
        assert!(
            written < 10_000,
            "Redis never refused a write: is maxmemory honoured?"
        );
    }
    // Full by a margin: a connection that closes frees its buffers (tens
    // of kilobytes), which would make room for a few writes again.
    let used = used_memory(&mut raw).await;
    config_set(&mut raw, "maxmemory", &(used - 128 * 1024).to_string()).await;
    let mut fresh = server.raw(0).await;
    let refused: redis::RedisResult<()> = redis::cmd("SET")
        .arg("junk:probe")
        .arg("a value of a cached entry's size")
        .query_async(&mut fresh)
        .await;
    assert!(
        refused.is_err_and(|err| err.to_string().contains("OOM")),
        "Redis must refuse writes once full"
    );
    written
}

async fn used_memory(raw: &mut redis::aio::MultiplexedConnection) -> u64 {
    let info: String = redis::cmd("INFO")
        .arg("memory")
        .query_async(raw)
        .await
        .expect("INFO memory");
    info.lines()
        .find_map(|line| line.strip_prefix("used_memory:"))
        .and_then(|n| n.trim().parse().ok())
        .expect("used_memory in INFO memory")
}

async fn config_set(raw: &mut redis::aio::MultiplexedConnection, name: &str, value: &str) {
    let _: () = redis::cmd("CONFIG")
        .arg("SET")
        .arg(name)
        .arg(value)
        .query_async(raw)
        .await
        .unwrap_or_else(|err| panic!("CONFIG SET {name} {value}: {err}"));
}

/// Lifts the memory limit again (`maxmemory 0`): writes are accepted.
#[allow(
    dead_code,
    reason = "each test binary that includes this file uses what it needs"
)]
pub async fn lift_maxmemory(server: &TestRedis) {
    let mut raw = server.raw(0).await;
    config_set(&mut raw, "maxmemory", "0").await;
}
