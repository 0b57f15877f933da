//! [`KvHashes`] on Redis: one command per call (`HSET`, `HGET`, ...), or
//! one script where a TTL goes with the write, each through the store's
//! call path (deadline, breaker, error mapping).

use async_trait::async_trait;

use super::core::{Core, redis_only};
use super::link::Route;
use crate::error::Result;
use crate::store::{KvHashes, Script, Ttl};

/// The pairs of a `HGETALL` reply: a flat array (RESP2) or a map (RESP3).
pub(crate) fn pairs(value: redis::Value) -> redis::RedisResult<Vec<(Vec<u8>, Vec<u8>)>> {
    match value {
        redis::Value::Map(pairs) => pairs
            .into_iter()
            .map(|(k, v)| Ok((redis::from_redis_value(k)?, redis::from_redis_value(v)?)))
            .collect(),
        other => {
            let flat: Vec<Vec<u8>> = redis::from_redis_value(other)?;
            let mut flat = flat.into_iter();
            let mut pairs = Vec::with_capacity(flat.len() / 2);
            while let (Some(k), Some(v)) = (flat.next(), flat.next()) {
                pairs.push((k, v));
            }
            Ok(pairs)
        }
    }
}

/// `HSET KEYS[1] ARGV[2..]` then `PEXPIRE KEYS[1] ARGV[1]` (or `PERSIST`
/// when `ARGV[1]` is empty), as one step: a `WRONGTYPE` from `HSET` stops
/// the script before the expiry changes.
static HSET_WITH_TTL: Script = Script::new(
    "hset with ttl",
    // `unpack` is limited to a few thousand values: the pairs go in
    // chunks of 500, all within the one script.
    "local added = 0 \
     for i = 2, #ARGV, 1000 do \
       added = added + redis.call('HSET', KEYS[1], unpack(ARGV, i, math.min(i + 999, #ARGV))) \
     end \
     if ARGV[1] == '' then redis.call('PERSIST', KEYS[1]) \
     else redis.call('PEXPIRE', KEYS[1], ARGV[1]) end \
     return added",
    redis_only,
);

#[async_trait]
impl KvHashes for Core {
    fn store_name(&self) -> &str {
        &self.ctx().store
    }

    async fn set(&self, key: &str, field: &str, value: &[u8]) -> Result<bool> {
        let added: u64 = self
            .on_key("HSET", key, |cmd| {
                cmd.arg(field).arg(value);
            })
            .await?;
        Ok(added > 0)
    }

    async fn set_many(&self, key: &str, fields: &[(&str, &[u8])], ttl: Option<Ttl>) -> Result<u64> {
        if fields.is_empty() {
            return Ok(0);
        }
        let expiry = match ttl {
            Some(ttl) => Some(ttl.to_millis(&self.ctx().store, key)?),
            None => None,
        };
        let Some(expiry) = expiry else {
            return self
                .on_key("HSET", key, |cmd| {
                    for (field, value) in fields {
                        cmd.arg(*field).arg(*value);
                    }
                })
                .await;
        };
        // One script, not a `MULTI`: a `MULTI` whose `HSET` fails on a key
        // of another type would still run its `PEXPIRE`.
        let mut args: Vec<&[u8]> = Vec::with_capacity(1 + 2 * fields.len());
        let ms = expiry.map(|ms| ms.to_string());
        args.push(ms.as_deref().map_or(&b""[..], str::as_bytes));
        for (field, value) in fields {
            args.push(field.as_bytes());
            args.push(value);
        }
        self.eval(&HSET_WITH_TTL, &[key], &args).await
    }

    async fn get(&self, key: &str, field: &str) -> Result<Option<Vec<u8>>> {
        self.on_key("HGET", key, |cmd| {
            cmd.arg(field);
        })
        .await
    }

    async fn get_many(&self, key: &str, fields: &[&str]) -> Result<Vec<Option<Vec<u8>>>> {
        if fields.is_empty() {
            return Ok(Vec::new());
        }
        self.on_key("HMGET", key, |cmd| {
            cmd.arg(fields);
        })
        .await
    }

    async fn get_all(&self, key: &str) -> Result<Vec<(String, Vec<u8>)>> {
        let stored = self.space.stored_key(key);
        let mut cmd = redis::cmd("HGETALL");
        cmd.arg(&stored);
        let pairs = self
            .link
            .call("HGETALL", Some(key), Route::Key(&stored), |mut conn| {
                let cmd = &cmd;
                async move { pairs(cmd.query_async(&mut conn).await?) }
            })
            .await?;
        Ok(pairs
            .into_iter()
            .map(|(field, value)| (String::from_utf8_lossy(&field).into_owned(), value))
            .collect())
    }

    async fn delete(&self, key: &str, fields: &[&str]) -> Result<u64> {
        if fields.is_empty() {
            return Ok(0);
        }
        self.on_key("HDEL", key, |cmd| {
            cmd.arg(fields);
        })
        .await
    }

    async fn incr_by(&self, key: &str, field: &str, delta: i64) -> Result<i64> {
        self.on_key("HINCRBY", key, |cmd| {
            cmd.arg(field).arg(delta);
        })
        .await
    }

    async fn exists(&self, key: &str, field: &str) -> Result<bool> {
        self.on_key("HEXISTS", key, |cmd| {
            cmd.arg(field);
        })
        .await
    }

    async fn len(&self, key: &str) -> Result<u64> {
        self.on_key("HLEN", key, |_| {}).await
    }
}
