//! [`MemoryConfig`]: which database of a [`MemoryServer`](super::MemoryServer)
//! a memory store uses, and its prefix.

/// Settings of one [`MemoryStore`](super::MemoryStore) on a shared
/// [`MemoryServer`](super::MemoryServer), mirroring the `db` and `prefix`
/// of a [`RedisConfig`](crate::RedisConfig).
///
/// `db` must be below [`MemoryServer::DATABASES`](super::MemoryServer::DATABASES)
/// (0 to 15); [`MemoryStore::open`](super::MemoryStore::open) rejects any
/// other value with [`KvError::Config`](crate::KvError::Config).
///
/// ```
/// use kv_module::MemoryConfig;
///
/// let config = MemoryConfig::new().with_db(2).with_prefix("sessions");
/// assert_eq!(config.db, 2);
/// assert_eq!(config.prefix, "sessions");
/// assert_eq!(MemoryConfig::new(), MemoryConfig::default());
/// ```
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct MemoryConfig {
    /// Database number, 0 to 15.
    pub db: u8,
    /// Prefix of every key (stored as `{prefix}:{key}`); empty for none.
    pub prefix: String,
}

impl MemoryConfig {
    /// The defaults: database 0, no prefix.
    pub fn new() -> Self {
        Self::default()
    }

    /// Uses database `db` (0 to 15). Default: 0.
    #[must_use]
    pub fn with_db(mut self, db: u8) -> Self {
        self.db = db;
        self
    }

    /// Prefixes every key with `{prefix}:`. Default: empty (keys are stored
    /// as given).
    #[must_use]
    pub fn with_prefix(mut self, prefix: impl Into<String>) -> Self {
        self.prefix = prefix.into();
        self
    }
}
