//! The operations whose keys may live on several nodes: `SCAN` and
//! multi-key deletion.
//!
//! Against one server (the only mode today) they are a plain cursor loop and
//! one `UNLINK`. Redis Cluster and Sentinel modes (a later issue) need them
//! fanned out per node or split per hash slot; keeping them here means that
//! change touches this file only.

use std::collections::HashSet;

use redis::aio::ConnectionManager;

/// Keys matching `pattern` on the server, without duplicates (`SCAN` may
/// return a key more than once). Keys that are not UTF-8 cannot be named
/// through the `&str` API and are skipped.
pub(crate) async fn scan_matching(
    conn: &mut ConnectionManager,
    pattern: &str,
) -> redis::RedisResult<HashSet<String>> {
    let mut found = HashSet::new();
    let mut cursor: u64 = 0;
    loop {
        let (next, batch): (u64, Vec<Vec<u8>>) = redis::cmd("SCAN")
            .arg(cursor)
            .arg("MATCH")
            .arg(pattern)
            .arg("COUNT")
            .arg(1000)
            .query_async(conn)
            .await?;
        found.extend(batch.into_iter().filter_map(|k| String::from_utf8(k).ok()));
        if next == 0 {
            return Ok(found);
        }
        cursor = next;
    }
}

/// Deletes `keys` in one round trip (`UNLINK`: the server frees the values
/// off its main thread); returns how many existed.
pub(crate) async fn unlink_all(
    conn: &mut ConnectionManager,
    keys: &[String],
) -> redis::RedisResult<u64> {
    redis::cmd("UNLINK").arg(keys).query_async(conn).await
}
