//! [`KvSets`]: Redis sets (a key holding distinct members) on any store,
//! reached through [`KvStore::sets`](crate::KvStore::sets), with
//! [`ScanCursor`] and [`ScanPage`] for walking a large set.

use async_trait::async_trait;

use crate::error::Result;

/// Sets: one key holding distinct raw members, with Redis's semantics on
/// every backend. Reached as `store.sets()`.
///
/// # Contract
///
/// | method | Redis | missing key | reply |
/// |---|---|---|---|
/// | [`add`](Self::add) | `SADD` | created, persistent | members new to the set |
/// | [`remove`](Self::remove) | `SREM` | 0 | members removed; the key vanishes with its last member |
/// | [`members`](Self::members) | `SMEMBERS` | empty | every member, in no set order |
/// | [`is_member`](Self::is_member) | `SISMEMBER` | `false` | |
/// | [`count`](Self::count) | `SCARD` | 0 | |
/// | [`scan`](Self::scan) | `SSCAN k cursor COUNT n` | one empty, last page | a page and the cursor of the next |
///
/// * Adding or removing members keeps the key's expiry.
/// * A key holding another type is
///   [`KvError::WrongType`](crate::KvError::WrongType) naming the store and
///   key, and nothing changes.
/// * Each call is one command, atomic on every topology.
/// * [`members`](Self::members) returns the whole set in one reply: for a
///   set that may be large, walk it with [`scan`](Self::scan) instead,
///   which never blocks the server for long. As with `SSCAN`, every member
///   present from the first page to the last is returned; one added or
///   removed meanwhile may or may not be; on Redis a member may come
///   twice, and `count` is a hint (a small set comes in one page).
///
/// ```
/// use std::sync::Arc;
/// use kv_module::{KvStore, MemoryStore};
/// use kv_module::store::ScanCursor;
///
/// # #[tokio::main(flavor = "current_thread")]
/// # async fn main() -> kv_module::Result<()> {
/// let store: Arc<dyn KvStore> = Arc::new(MemoryStore::new("tags", "app"));
/// let members: Vec<Vec<u8>> = (0..100).map(|i| format!("tag{i}").into_bytes()).collect();
/// let refs: Vec<&[u8]> = members.iter().map(Vec::as_slice).collect();
/// assert_eq!(store.sets().add("post:1", &refs).await?, 100);
///
/// let mut seen = std::collections::HashSet::new();
/// let mut cursor = ScanCursor::start();
/// loop {
///     let page = store.sets().scan("post:1", &cursor, 10).await?;
///     seen.extend(page.members);
///     match page.next {
///         Some(next) => cursor = next,
///         None => break,
///     }
/// }
/// assert_eq!(seen.len(), 100);
/// # Ok(())
/// # }
/// ```
#[async_trait]
pub trait KvSets: Send + Sync {
    /// The name of the store these operations belong to (for errors).
    fn store_name(&self) -> &str;

    /// Adds `members` to the set at `key` (`SADD`); returns how many were
    /// new. An empty list sends nothing.
    async fn add(&self, key: &str, members: &[&[u8]]) -> Result<u64>;

    /// Removes `members` (`SREM`); returns how many were there. The key
    /// vanishes with its last member. An empty list sends nothing.
    async fn remove(&self, key: &str, members: &[&[u8]]) -> Result<u64>;

    /// Every member (`SMEMBERS`), in no set order; empty for a missing
    /// key. For large sets use [`scan`](Self::scan).
    async fn members(&self, key: &str) -> Result<Vec<Vec<u8>>>;

    /// Whether `member` is in the set (`SISMEMBER`).
    async fn is_member(&self, key: &str, member: &[u8]) -> Result<bool>;

    /// Number of members (`SCARD`); 0 for a missing key.
    async fn count(&self, key: &str) -> Result<u64>;

    /// One page of the set (`SSCAN key cursor COUNT count`): start with
    /// [`ScanCursor::start`] and pass each page's `next` until it is
    /// `None`. `count` is a hint of the page size (at least 1).
    async fn scan(&self, key: &str, cursor: &ScanCursor, count: u32) -> Result<ScanPage>;
}

/// Where a [`scan`](KvSets::scan) stands. Opaque, and meaningful only to
/// the store (and key) that returned it.
#[derive(Clone, Debug, Default, PartialEq, Eq, Hash)]
pub struct ScanCursor(Vec<u8>);

impl ScanCursor {
    /// The cursor of the first page.
    pub fn start() -> Self {
        Self(Vec::new())
    }

    /// Whether this is the cursor of the first page.
    pub fn is_start(&self) -> bool {
        self.0.is_empty()
    }

    /// A backend's position, as it encodes it (never empty).
    pub(crate) fn at(position: Vec<u8>) -> Self {
        Self(position)
    }

    /// The backend's position; empty at the start.
    pub(crate) fn position(&self) -> &[u8] {
        &self.0
    }
}

/// One page of a [`scan`](KvSets::scan).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct ScanPage {
    /// Members of this page.
    pub members: Vec<Vec<u8>>,
    /// The cursor of the next page; `None` once the walk is complete.
    pub next: Option<ScanCursor>,
}
