//! [`key_slot`]: the Redis Cluster hash slot of a key, and
//! [`SlotTag`], the hash tag that keeps a component's related keys in one
//! slot.
//!
//! A Redis Cluster spreads keys over 16,384 slots and runs a script or a
//! `MULTI` only when all its keys share one slot. A key's slot is the
//! CRC16 of its *hash tag* (the text between its first `{` and the next
//! `}`, when that text is not empty) or else of the whole key. Components
//! put every key one atomic step touches under one tag (for example all
//! keys of one user under `{…}` of that user), so the step runs unchanged
//! on a single server and on a cluster. The functions here are pure: the
//! stores use them to split batches per slot and to refuse, before
//! anything is sent, a script whose keys span slots.

use std::fmt;

/// The number of hash slots of a Redis Cluster.
pub const SLOTS: u16 = 16_384;

/// How many characters of a base64url digest make a tag
/// ([`SlotTag::digest_prefix`]): 16 characters, 96 bits, so two subjects
/// sharing a tag does not happen (and would cost nothing but sharing a
/// slot: keys keep their full digest).
pub const DIGEST_TAG_CHARS: usize = 16;

/// The hash slot of a stored key (prefix included), as Redis Cluster
/// computes it.
///
/// ```
/// use kv_module::store::key_slot;
///
/// assert_eq!(key_slot("foo"), 12_182); // `CLUSTER KEYSLOT foo`
/// // Keys with one hash tag share a slot, whatever surrounds the tag.
/// assert_eq!(key_slot("sessions:session:{u1}:a"), key_slot("sessions:user_sessions:{u1}"));
/// // An empty tag does not count: the whole key is hashed.
/// assert_eq!(key_slot("a{}b"), key_slot("a{}b"));
/// ```
pub fn key_slot(key: &str) -> u16 {
    crc16(hash_part(key.as_bytes())) % SLOTS
}

/// The part of a key that decides its slot: the hash tag, or the key.
fn hash_part(key: &[u8]) -> &[u8] {
    if let Some(open) = key.iter().position(|&b| b == b'{') {
        let rest = &key[open + 1..];
        if let Some(close) = rest.iter().position(|&b| b == b'}')
            && close > 0
        {
            return &rest[..close];
        }
    }
    key
}

/// CRC16-CCITT (XMODEM): polynomial 0x1021, initial value 0, as Redis
/// Cluster's specification prescribes.
fn crc16(bytes: &[u8]) -> u16 {
    let mut crc: u16 = 0;
    for &byte in bytes {
        crc ^= u16::from(byte) << 8;
        for _ in 0..8 {
            crc = if crc & 0x8000 != 0 {
                (crc << 1) ^ 0x1021
            } else {
                crc << 1
            };
        }
    }
    crc
}

/// A hash tag: `{text}` placed in every key of one atomic step so that
/// they share a slot on a Redis Cluster.
///
/// The text is made of characters that cannot end a tag early (no `{` or
/// `}`); components derive it from hashes (base64url), so user input never
/// shapes it.
///
/// ```
/// use kv_module::store::{SlotTag, key_slot};
///
/// let tag = SlotTag::new("Ab3-x_9").expect("no braces");
/// let record = tag.key("session:", ":h1");
/// let index = tag.key("user_sessions:", "");
/// assert_eq!(record, "session:{Ab3-x_9}:h1");
/// assert_eq!(index, "user_sessions:{Ab3-x_9}");
/// assert_eq!(key_slot(&format!("app:{record}")), key_slot(&format!("app:{index}")));
/// assert!(SlotTag::new("a}b").is_none());
/// ```
#[derive(Clone, PartialEq, Eq, Hash)]
pub struct SlotTag(String);

impl SlotTag {
    /// A tag of `text`, or `None` when `text` is empty or holds `{` or `}`
    /// (either would change which part of the key Redis hashes).
    pub fn new(text: impl Into<String>) -> Option<Self> {
        let text = text.into();
        let valid = !text.is_empty() && !text.contains(['{', '}']);
        valid.then_some(Self(text))
    }

    /// The tag of a digest (base64url or hex, as components derive from
    /// user ids and subjects): its first [`DIGEST_TAG_CHARS`] characters
    /// (the whole digest when it is shorter; escaped like
    /// [`escaped`](Self::escaped) should it hold braces, which base64url
    /// and hex never do).
    ///
    /// ```
    /// use kv_module::store::SlotTag;
    ///
    /// let tag = SlotTag::digest_prefix("q5Pq1bYqDkT8Y9tqbK0oUDlTj3rWQnX0s0mLq1C1m0s");
    /// assert_eq!(tag.as_str(), "q5Pq1bYqDkT8Y9tq");
    /// assert_eq!(SlotTag::digest_prefix("short").as_str(), "short");
    /// ```
    pub fn digest_prefix(digest: &str) -> Self {
        Self::escaped(digest.get(..DIGEST_TAG_CHARS).unwrap_or(digest))
    }

    /// The tag of arbitrary text (a cache key, say), escaped so that it is
    /// a valid tag and no two texts share one: `\` becomes `\\`, `{`
    /// becomes `\(`, `}` becomes `\)`, and the empty text is `\0`. Text
    /// without those characters is its own tag.
    ///
    /// ```
    /// use kv_module::store::SlotTag;
    ///
    /// assert_eq!(SlotTag::escaped("42").as_str(), "42");
    /// assert_eq!(SlotTag::escaped("a}b{").as_str(), r"a\)b\(");
    /// assert_eq!(SlotTag::escaped("").as_str(), r"\0");
    /// assert_ne!(SlotTag::escaped(r"\0"), SlotTag::escaped(""));
    /// ```
    pub fn escaped(text: &str) -> Self {
        if text.is_empty() {
            return Self(r"\0".to_owned());
        }
        if !text.contains(['{', '}', '\\']) {
            return Self(text.to_owned());
        }
        let mut escaped = String::with_capacity(text.len() + 4);
        for c in text.chars() {
            match c {
                '\\' => escaped.push_str(r"\\"),
                '{' => escaped.push_str(r"\("),
                '}' => escaped.push_str(r"\)"),
                c => escaped.push(c),
            }
        }
        Self(escaped)
    }

    /// The tag's text, without braces.
    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// `{base}{{tag}}{rest}`: a key in this tag's slot.
    pub fn key(&self, base: &str, rest: &str) -> String {
        let mut key = String::with_capacity(base.len() + self.0.len() + rest.len() + 2);
        key.push_str(base);
        key.push('{');
        key.push_str(&self.0);
        key.push('}');
        key.push_str(rest);
        key
    }
}

impl fmt::Debug for SlotTag {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "SlotTag({{{}}})", self.0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Values from `CLUSTER KEYSLOT` on redis-server 7.0.
    #[test]
    fn matches_redis_cluster_keyslot() {
        for (key, slot) in [
            ("foo", 12_182),
            ("bar", 5_061),
            ("{user1000}.following", 3_443),
            ("{user1000}.followers", 3_443),
            ("foo{}{bar}", 8_363),
            ("foo{{bar}}zap", 4_015),
            ("foo{bar}{zap}", 5_061),
            ("", 0),
        ] {
            assert_eq!(key_slot(key), slot, "{key}");
        }
    }

    #[test]
    fn escaped_tags_are_valid_and_distinct() {
        let texts = [
            "", "42", "a}b", "}", "{", "\\", "\\0", "\\(", "(", "a{b}c", "ü",
        ];
        let tags: Vec<SlotTag> = texts.iter().map(|t| SlotTag::escaped(t)).collect();
        for (text, tag) in texts.iter().zip(&tags) {
            assert_eq!(SlotTag::new(tag.as_str()).as_ref(), Some(tag), "{text:?}");
            // The whole tag decides the slot, whatever the text holds.
            assert_eq!(
                key_slot(&tag.key("p:", "")),
                key_slot(&tag.key("p~lease:", "")),
                "{text:?}"
            );
        }
        let distinct: std::collections::HashSet<&str> = tags.iter().map(SlotTag::as_str).collect();
        assert_eq!(distinct.len(), texts.len());
    }

    #[test]
    fn tags_reject_braces_and_empty_text() {
        assert!(SlotTag::new("").is_none());
        assert!(SlotTag::new("a{").is_none());
        assert_eq!(
            SlotTag::new("t").map(|t| t.key("a:", ":b")).as_deref(),
            Some("a:{t}:b")
        );
    }
}
