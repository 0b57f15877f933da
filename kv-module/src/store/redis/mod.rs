//! The Redis backend (`kvstore_redis`) over redis-rs `ConnectionManager`s.

pub(crate) mod config;
mod error_map;
mod routing;
mod store;

pub use config::RedisConfig;
pub use store::RedisStore;
