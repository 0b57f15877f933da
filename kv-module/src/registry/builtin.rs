//! The built-in service types: `kvstore_redis` and `kvstore_memory`.

use std::sync::Arc;

use serde::Deserialize;
use serde::de::IgnoredAny;

use super::service_types::{Decoded, Factory, ServiceType, ServiceTypes};
use crate::config::ServiceDefinition;
use crate::error::KvError;
use crate::store::KvStore;
use crate::store::memory::{MemoryConfig, MemoryStore};
use crate::store::redis::{RedisConfig, RedisStore};

/// The `config:` of a `kvstore_memory` service.
///
/// It accepts the connection fields of `kvstore_redis` (`mode`, `addr`,
/// `url`, `nodes`, `master_name`, `sentinel_password`, `username`,
/// `password`, `tls`, `pool_size`, `connect_timeout`, `response_timeout`,
/// `command_timeout`) and ignores them, so one file serves both drivers;
/// any other field is an error.
#[derive(Clone, Debug, Default, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct MemoryServiceConfig {
    /// Database 0–15 of the registry's shared `MemoryServer`. Default 0.
    #[serde(deserialize_with = "crate::store::redis::config::deserialize_db")]
    pub db: Option<u8>,
    /// Key prefix. Default: empty.
    #[serde(deserialize_with = "crate::store::redis::config::deserialize_text")]
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
}

pub(crate) fn register(types: &mut ServiceTypes) {
    let redis = ServiceType {
        decode: Box::new(|definition: &ServiceDefinition| {
            let config: RedisConfig = definition.config()?;
            // Cross-field rules (addr or url, nodes per mode, db against the
            // URL's and the cluster's, readable certificates) are checked
            // now, so they fail with the file position, before any
            // connection is attempted.
            config
                .resolve()
                .map_err(|reason| definition.invalid(reason))?;
            Ok(Box::new(config) as Decoded)
        }),
        factory: Factory::Store(Box::new(|ctx, decoded| {
            Box::pin(async move {
                let config = decoded
                    .downcast::<RedisConfig>()
                    .map_err(|_| internal(&ctx.name))?;
                let store = RedisStore::open(&ctx.name, *config).await?;
                Ok(Arc::new(store) as Arc<dyn KvStore>)
            })
        })),
    };
    let memory = ServiceType {
        decode: Box::new(|definition: &ServiceDefinition| {
            Ok(Box::new(definition.config::<MemoryServiceConfig>()?) as Decoded)
        }),
        factory: Factory::Store(Box::new(|ctx, decoded| {
            Box::pin(async move {
                let config = decoded
                    .downcast::<MemoryServiceConfig>()
                    .map_err(|_| internal(&ctx.name))?;
                let memory_config = MemoryConfig::new()
                    .with_db(config.db.unwrap_or(0))
                    .with_prefix(config.prefix);
                let store = MemoryStore::open(&ctx.name, &ctx.memory, memory_config)?;
                Ok(Arc::new(store) as Arc<dyn KvStore>)
            })
        })),
    };
    // The names are fresh in a new `ServiceTypes`: insertion cannot fail.
    let _ = types.insert("kvstore_redis".into(), redis);
    let _ = types.insert("kvstore_memory".into(), memory);
}

fn internal(name: &str) -> KvError {
    KvError::Config {
        store: Arc::from(name),
        reason: "internal error: configuration of an unexpected type".into(),
    }
}
