//! The built-in service types: `kvstore_redis` and `kvstore_memory`.

use std::sync::{Arc, OnceLock};

use serde::Deserialize;
use serde::de::IgnoredAny;

use super::{ServiceContext, ServiceTypes};
use crate::store::KvStore;
use crate::store::memory::{MemoryConfig, MemoryServer, MemoryStore};
#[cfg(feature = "redis")]
use crate::store::redis::{RedisConfig, RedisStore};

/// The `config:` of a `kvstore_memory` service.
///
/// It accepts the connection fields of `kvstore_redis` (`mode`, `addr`,
/// `url`, `nodes`, `master_name`, `sentinel_password`, `username`,
/// `password`, `tls`, `pool_size`, `connect_timeout`, `response_timeout`,
/// `command_timeout`, `near_cache`) and ignores them (a memory store has
/// no network round trip for a near cache to save), so one file serves both drivers;
/// any other field is an error.
#[derive(Clone, Debug, Default, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct MemoryServiceConfig {
    /// Database 0–15 of the shared `MemoryServer` (see
    /// [`ServiceTypes::builtin`]). Default 0.
    #[serde(deserialize_with = "crate::config::deserialize_db")]
    pub db: Option<u8>,
    /// Key prefix. Default: empty.
    #[serde(deserialize_with = "crate::config::deserialize_text")]
    pub prefix: String,
    mode: Option<IgnoredAny>,
    addr: Option<IgnoredAny>,
    url: Option<IgnoredAny>,
    nodes: Option<IgnoredAny>,
    master_name: Option<IgnoredAny>,
    sentinel_password: Option<IgnoredAny>,
    tls: Option<IgnoredAny>,
    command_timeout: Option<IgnoredAny>,
    username: Option<IgnoredAny>,
    password: Option<IgnoredAny>,
    pool_size: Option<IgnoredAny>,
    connect_timeout: Option<IgnoredAny>,
    response_timeout: Option<IgnoredAny>,
    near_cache: Option<IgnoredAny>,
}

impl ServiceTypes {
    /// The built-in types, registered as an application registers its own:
    /// `kvstore_redis` ([`RedisConfig`]) and `kvstore_memory`
    /// ([`MemoryServiceConfig`]).
    ///
    /// Every `kvstore_memory` service built with this value shares one
    /// [`MemoryServer`] (one keyspace per `db`, as on one `redis-server`),
    /// started with the first of them on the Tokio runtime current then.
    /// Like a `redis-server`, it outlives a closed registry: a registry
    /// built again from the same value sees the same data, one built from
    /// a fresh `builtin()` starts empty.
    pub fn builtin() -> Self {
        let mut types = Self::new();
        #[cfg(feature = "redis")]
        types.insert_store_type(
            "kvstore_redis",
            |ctx, CheckedRedisConfig(config)| async move {
                let store = RedisStore::open(ctx.name(), config).await?;
                Ok(Arc::new(store) as Arc<dyn KvStore>)
            },
        );
        let server = OnceLock::new();
        types.insert_store_type(
            "kvstore_memory",
            move |ctx: ServiceContext, config: MemoryServiceConfig| {
                let config = MemoryConfig::new()
                    .with_db(config.db.unwrap_or(0))
                    .with_prefix(config.prefix);
                let store =
                    MemoryStore::open(ctx.name(), server.get_or_init(MemoryServer::new), config);
                async move { Ok(Arc::new(store?) as Arc<dyn KvStore>) }
            },
        );
        types
    }
}

/// A [`RedisConfig`] whose cross-field rules (addr or url, nodes per mode,
/// db against the URL's and the cluster's, readable certificates) hold:
/// they are checked as it is read, so they fail with the file position,
/// before any connection is attempted.
#[cfg(feature = "redis")]
#[derive(Deserialize)]
#[serde(try_from = "RedisConfig")]
struct CheckedRedisConfig(RedisConfig);

#[cfg(feature = "redis")]
impl TryFrom<RedisConfig> for CheckedRedisConfig {
    type Error = String;

    fn try_from(config: RedisConfig) -> Result<Self, String> {
        config.resolve()?;
        Ok(Self(config))
    }
}
