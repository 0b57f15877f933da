//! [`CacheKeys`]: how a cache names its records' store keys, and
//! [`RecordKeys`], the keys of one record, all sharing the record's hash
//! tag (see the [module documentation](super) for the layout).

use std::fmt::Display;

use crate::store::SlotTag;

/// The store keys of a cache's records, named from its `key_prefix`.
///
/// ```
/// use kv_module::cache_aside::CacheKeys;
///
/// let keys = CacheKeys::new("user");
/// assert_eq!(keys.entry_key(&42), "user:{42}");
/// assert_eq!(keys.entry_key(&"ada@example.com"), "user:{ada@example.com}");
/// assert_eq!(keys.entry_key(&"a}b"), r"user:{a\)b}");
/// ```
#[derive(Clone, Copy, Debug)]
pub struct CacheKeys<'a> {
    key_prefix: &'a str,
}

impl<'a> CacheKeys<'a> {
    /// The keys of the cache whose
    /// [`key_prefix`](super::CacheAsideConfig::key_prefix) is `key_prefix`.
    pub fn new(key_prefix: &'a str) -> Self {
        Self { key_prefix }
    }

    /// The store key of `key`'s entry: `{key_prefix}:{<key>}`, the key's
    /// `Display` form in braces — its hash tag, so that the entry, its
    /// negative key, its mark and its lease (`{key_prefix}~nf:{<key>}`,
    /// `~mark:`, `~lease:`) share a slot on a Redis Cluster. A key holding
    /// `{`, `}` or `\`, or an empty key, is escaped ([`SlotTag::escaped`]),
    /// so every key has its own entry and the tag is always the whole key.
    pub fn entry_key(&self, key: &impl Display) -> String {
        let tag = SlotTag::escaped(&key.to_string());
        [self.key_prefix, ":{", tag.as_str(), "}"].concat()
    }

    /// The key of a cached "not found" of the entry `entry_key`:
    /// `{key_prefix}~nf:{<key>}`, with the entry's tag.
    pub(crate) fn negative_key(&self, entry_key: &str) -> String {
        self.beside("nf", entry_key)
    }

    /// Every store key of the record at `entry_key` (the lease's only
    /// when `lease` is enabled).
    pub(crate) fn record_keys(&self, entry_key: String, lease: bool) -> RecordKeys {
        RecordKeys {
            negative: self.negative_key(&entry_key),
            mark: self.beside("mark", &entry_key),
            lease: lease.then(|| self.beside("lease", &entry_key)),
            entry: entry_key,
        }
    }

    /// `{key_prefix}~{kind}:` followed by the tag of `entry_key`. `~` is
    /// not allowed in a prefix, so no entry of any cache is another
    /// cache's negative key, mark or lease.
    fn beside(&self, kind: &str, entry_key: &str) -> String {
        let tag = entry_key
            .strip_prefix(self.key_prefix)
            .and_then(|rest| rest.strip_prefix(':'))
            .unwrap_or(entry_key);
        format!("{}~{kind}:{tag}", self.key_prefix)
    }
}

/// The keys of one record: built by [`CacheKeys::record_keys`] from the
/// entry key.
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::key_slot;

    #[test]
    fn keys() {
        let cache = CacheKeys::new("user");
        assert_eq!(cache.entry_key(&"a:b"), "user:{a:b}");
        let keys = cache.record_keys("user:{a:b}".to_owned(), true);
        assert_eq!(keys.lease.as_deref(), Some("user~lease:{a:b}"));
        let keys = cache.record_keys("user:{a:b}".to_owned(), false);
        assert_eq!(
            (
                keys.entry.as_str(),
                keys.negative.as_str(),
                keys.mark.as_str()
            ),
            ("user:{a:b}", "user~nf:{a:b}", "user~mark:{a:b}")
        );
        assert_eq!(keys.lease, None, "no lease key when the lease is off");
        // Whatever the key holds, all its keys share one slot.
        for key in ["", "}", "a}b", "{x}", "\\", "42"] {
            let entry = cache.entry_key(&key);
            let keys = cache.record_keys(entry.clone(), true);
            let lease = keys.lease.clone().unwrap();
            for other in [&lease, &keys.negative, &keys.mark] {
                assert_eq!(
                    key_slot(&entry),
                    key_slot(other),
                    "{key:?}: {entry} {other}"
                );
                assert_eq!(
                    key_slot(&format!("app:{entry}")),
                    key_slot(&format!("app:{other}"))
                );
            }
        }
    }
}
