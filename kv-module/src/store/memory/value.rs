//! [`Value`]: what one key of a memory database holds — a string or one
//! of Redis's collection types — and [`Collection`], the view the
//! data-type operations take of it.
//!
//! The collections are ordered (`BTreeMap`, `BTreeSet`) rather than
//! hashed: replies whose order Redis leaves unspecified (`HGETALL`,
//! `SMEMBERS`) come out in a stable order, and a set's `SSCAN` cursor can
//! be the last member returned, which gives Redis's guarantee (every
//! member present for the whole iteration is returned) without a
//! rehashing-aware cursor.

use std::cmp::Ordering;
use std::collections::{BTreeMap, BTreeSet, HashMap, VecDeque};
use std::ops::Bound;
use std::sync::Arc;

/// The value of one key.
pub(crate) enum Value {
    /// A string (`SET`, `INCRBY`). Shared so that a read clones a pointer
    /// under the lock and copies the bytes after releasing it.
    String(Arc<[u8]>),
    /// A hash: field to value.
    Hash(BTreeMap<Vec<u8>, Vec<u8>>),
    /// A list, head first.
    List(VecDeque<Vec<u8>>),
    /// A set.
    Set(BTreeSet<Vec<u8>>),
    /// A sorted set.
    SortedSet(SortedSet),
}

impl Value {
    /// The string, or `None` for a collection.
    pub(crate) fn as_string(&self) -> Option<&Arc<[u8]>> {
        match self {
            Self::String(bytes) => Some(bytes),
            _ => None,
        }
    }
}

/// A collection type stored in a [`Value`]: how to find it in one, and to
/// put a new one there. An empty collection is never stored: the key
/// vanishes with its last element, as in Redis.
pub(crate) trait Collection: Default {
    /// The collection, if `value` is one of this type.
    fn of(value: &Value) -> Option<&Self>;
    /// The same, mutably.
    fn of_mut(value: &mut Value) -> Option<&mut Self>;
    /// Wraps a new collection into a value.
    fn into_value(self) -> Value;
    /// Whether it holds no element (and so must not be stored).
    fn is_empty(&self) -> bool;
}

macro_rules! collection {
    ($ty:ty, $variant:ident) => {
        impl Collection for $ty {
            fn of(value: &Value) -> Option<&Self> {
                match value {
                    Value::$variant(c) => Some(c),
                    _ => None,
                }
            }
            fn of_mut(value: &mut Value) -> Option<&mut Self> {
                match value {
                    Value::$variant(c) => Some(c),
                    _ => None,
                }
            }
            fn into_value(self) -> Value {
                Value::$variant(self)
            }
            fn is_empty(&self) -> bool {
                <$ty>::is_empty(self)
            }
        }
    };
}

collection!(BTreeMap<Vec<u8>, Vec<u8>>, Hash);
collection!(VecDeque<Vec<u8>>, List);
collection!(BTreeSet<Vec<u8>>, Set);
collection!(SortedSet, SortedSet);

/// A score known not to be NaN, ordered as Redis orders scores (`-0.0`
/// equals `0.0`).
#[derive(Clone, Copy, Debug, PartialEq)]
pub(crate) struct Score(pub(crate) f64);

impl Eq for Score {}

impl PartialOrd for Score {
    fn partial_cmp(&self, other: &Self) -> Option<Ordering> {
        Some(self.cmp(other))
    }
}

impl Ord for Score {
    fn cmp(&self, other: &Self) -> Ordering {
        // Never NaN (every write checks), so `partial_cmp` always answers.
        self.0.partial_cmp(&other.0).unwrap_or(Ordering::Equal)
    }
}

/// A sorted set: members by score, ties by member bytes, as Redis orders
/// them; and each member's score.
#[derive(Default)]
pub(crate) struct SortedSet {
    scores: HashMap<Vec<u8>, f64>,
    order: BTreeSet<(Score, Vec<u8>)>,
}

impl SortedSet {
    /// Number of members.
    pub(crate) fn len(&self) -> usize {
        self.scores.len()
    }

    /// Whether it has no member.
    pub(crate) fn is_empty(&self) -> bool {
        self.scores.is_empty()
    }

    /// The score of `member`.
    pub(crate) fn score(&self, member: &[u8]) -> Option<f64> {
        self.scores.get(member).copied()
    }

    /// Sets the score of `member`; returns whether it is new. `score` must
    /// not be NaN. A score equal to the current one (`0` and `-0` are
    /// equal) leaves it as it is, as Redis does.
    pub(crate) fn insert(&mut self, member: Vec<u8>, score: f64) -> bool {
        // Redis keeps a small sorted set as a listpack, where a score that
        // is a whole number is stored as an integer: `-0` comes back `0`.
        let score = if score == 0.0 { 0.0 } else { score };
        if self.scores.get(&member) == Some(&score) {
            return false;
        }
        let new = match self.scores.insert(member.clone(), score) {
            Some(old) => {
                self.order.remove(&(Score(old), member.clone()));
                false
            }
            None => true,
        };
        self.order.insert((Score(score), member));
        new
    }

    /// Removes `member`; returns whether it was there.
    pub(crate) fn remove(&mut self, member: &[u8]) -> bool {
        match self.scores.remove(member) {
            Some(score) => {
                self.order.remove(&(Score(score), member.to_vec()));
                true
            }
            None => false,
        }
    }

    /// Members with their scores between `min` and `max`, lowest first.
    pub(crate) fn by_score(
        &self,
        min: Bound<f64>,
        max: Bound<f64>,
    ) -> impl DoubleEndedIterator<Item = (&[u8], f64)> {
        // As an inclusive lowest score and an exclusive highest: the
        // members of one score run from `(score, [])` (the empty member
        // sorts first) to just before `(next score up, [])`.
        let lo = match min {
            Bound::Unbounded => Some(None),
            Bound::Included(x) => Some(Some(x)),
            Bound::Excluded(x) if x == f64::INFINITY => None,
            Bound::Excluded(x) => Some(Some(x.next_up())),
        };
        let hi = match max {
            Bound::Unbounded => Some(None),
            Bound::Included(x) if x == f64::INFINITY => Some(None),
            Bound::Included(x) => Some(Some(x.next_up())),
            Bound::Excluded(x) => Some(Some(x)),
        };
        let range = match (lo, hi) {
            (Some(Some(lo)), Some(Some(hi))) if lo >= hi => None,
            (Some(lo), Some(hi)) => Some((
                lo.map_or(Bound::Unbounded, |lo| {
                    Bound::Included((Score(lo), Vec::new()))
                }),
                hi.map_or(Bound::Unbounded, |hi| {
                    Bound::Excluded((Score(hi), Vec::new()))
                }),
            )),
            _ => None,
        };
        range
            .into_iter()
            .flat_map(move |range| self.order.range(range))
            .map(|(score, member)| (member.as_slice(), score.0))
    }

    /// Members with their scores, lowest first.
    pub(crate) fn iter(&self) -> impl DoubleEndedIterator<Item = (&[u8], f64)> {
        self.order
            .iter()
            .map(|(score, member)| (member.as_slice(), score.0))
    }
}
