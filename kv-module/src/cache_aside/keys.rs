//! [`RecordKeys`]: the store keys of one cached record, all sharing the
//! record's hash tag (see the [module documentation](super) for the
//! layout).

/// The keys of one record: built by
/// [`CacheSettings::record_keys`](super::CacheSettings::record_keys) from
/// the entry key.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct RecordKeys {
    /// `{key_prefix}:{<key>}`: the value's JSON, or nothing.
    pub(crate) entry: String,
    /// `{key_prefix}~nf:{<key>}`: a cached "not found".
    pub(crate) negative: String,
    /// `{key_prefix}~mark:{<key>}`: a load ticket or a write marker.
    pub(crate) mark: String,
    /// `{key_prefix}~lease:{<key>}`, when the lease is enabled.
    pub(crate) lease: Option<String>,
}

impl RecordKeys {
    /// Entry, negative key, mark: the `KEYS` of every script but the
    /// lease release.
    pub(crate) fn record(&self) -> [&str; 3] {
        [&self.entry, &self.negative, &self.mark]
    }

    /// [`record`](Self::record), then the lease when enabled: what a
    /// write clears.
    pub(crate) fn all(&self) -> Vec<&str> {
        let mut keys = self.record().to_vec();
        keys.extend(self.lease.as_deref());
        keys
    }
}
