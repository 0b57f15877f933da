//! [`KeySpace`]: how a store's prefix maps caller keys to stored keys.
//!
//! Both backends go through this one type, so prefixing, stripping and the
//! glob-escaping of the prefix in `keys` patterns cannot drift apart.

/// The prefix of one store, and the conversions between the keys a caller
/// uses and the keys stored in the backend.
///
/// The stored key is `{prefix}:{key}`; with an empty prefix it is `key`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct KeySpace {
    prefix: String,
    /// `"{prefix}:"`, or empty for an empty prefix.
    stored_prefix: String,
    /// `stored_prefix` with the glob metacharacters escaped.
    pattern_prefix: String,
}

impl KeySpace {
    /// The key space of `prefix` (empty: keys are stored as given).
    pub fn new(prefix: impl Into<String>) -> Self {
        let prefix = prefix.into();
        let stored_prefix = if prefix.is_empty() {
            String::new()
        } else {
            format!("{prefix}:")
        };
        let pattern_prefix = escape_glob(&stored_prefix);
        Self {
            prefix,
            stored_prefix,
            pattern_prefix,
        }
    }

    /// The prefix as configured (without the `:` separator).
    pub fn prefix(&self) -> &str {
        &self.prefix
    }

    /// What every stored key of this key space starts with: `"{prefix}:"`,
    /// or empty for an empty prefix.
    pub fn stored_prefix(&self) -> &str {
        &self.stored_prefix
    }

    /// The stored key for a caller's key.
    pub fn stored_key(&self, key: &str) -> String {
        let mut stored = String::with_capacity(self.stored_prefix.len() + key.len());
        stored.push_str(&self.stored_prefix);
        stored.push_str(key);
        stored
    }

    /// The caller's key for a stored key, or `None` when the stored key is
    /// not in this key space.
    pub fn caller_key<'a>(&self, stored: &'a str) -> Option<&'a str> {
        stored.strip_prefix(self.stored_prefix.as_str())
    }

    /// The backend glob pattern for a caller's pattern: the escaped prefix
    /// followed by the pattern, so the prefix only ever matches literally.
    pub fn stored_pattern(&self, pattern: &str) -> String {
        let mut stored = String::with_capacity(self.pattern_prefix.len() + pattern.len());
        stored.push_str(&self.pattern_prefix);
        stored.push_str(pattern);
        stored
    }
}

/// Escapes the Redis glob metacharacters `* ? [ ] \` so that `text` matches
/// only itself.
///
/// ```
/// assert_eq!(kv_module::store::escape_glob("a*b[1]"), r"a\*b\[1\]");
/// ```
pub fn escape_glob(text: &str) -> String {
    let mut escaped = String::with_capacity(text.len());
    for c in text.chars() {
        if matches!(c, '*' | '?' | '[' | ']' | '\\') {
            escaped.push('\\');
        }
        escaped.push(c);
    }
    escaped
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn prefixes_strips_and_escapes() {
        let space = KeySpace::new("a*[p]");
        assert_eq!(space.stored_key("k"), "a*[p]:k");
        assert_eq!(space.caller_key("a*[p]:k"), Some("k"));
        assert_eq!(space.caller_key("other:k"), None);
        assert_eq!(space.stored_pattern("u:*"), r"a\*\[p\]:u:*");

        let bare = KeySpace::new("");
        assert_eq!(bare.stored_key("k"), "k");
        assert_eq!(bare.caller_key("anything"), Some("anything"));
        assert_eq!(bare.stored_pattern("*"), "*");
    }
}
