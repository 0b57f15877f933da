//! [`Expander`]: `${VAR}`, `${VAR:default}`, `$${` and `${@resolver:argument}`
//! inside one scalar value.
//!
//! The loader applies it to scalar values only after the YAML is parsed
//! (see [`Node`](super::Node)), so an expanded value is always exactly one
//! string and can never add keys or change the document's shape.

use std::collections::BTreeMap;
use std::fmt;
use std::io::Read;
use std::path::Path;
use std::sync::Arc;

/// A named source of values for `${@name:argument}` placeholders, such as
/// the built-in [`FileResolver`] (`${@file:/run/secrets/redis}`) or an
/// application's own (`${@vault:secret/redis}`).
///
/// Register one with [`Expander::with_resolver`].
pub trait Resolver: Send + Sync {
    /// Returns the value for `argument` (the text after the first `:`).
    ///
    /// The error is a message for the operator; it must describe what
    /// failed (path, key, cause) and never contain the secret itself.
    fn resolve(&self, argument: &str) -> Result<String, String>;
}

/// The built-in `file` resolver: `${@file:/run/secrets/x}` is the content
/// of that file with one trailing newline (`\n` or `\r\n`) removed, as
/// Docker and Kubernetes secrets are usually written with one.
///
/// A relative path is relative to the process's working directory, not
/// to the configuration file. Files larger than 1 MiB and files that are
/// not UTF-8 are refused (a secret is short text; the limit keeps
/// `/dev/zero` from exhausting memory).
#[derive(Clone, Copy, Debug, Default)]
pub struct FileResolver;

/// Largest secret file [`FileResolver`] reads.
const MAX_SECRET_FILE: u64 = 1024 * 1024;

impl Resolver for FileResolver {
    fn resolve(&self, argument: &str) -> Result<String, String> {
        let path = Path::new(argument);
        // The message names the path and the io error only: never the
        // content, which is a secret.
        let fail = |reason: &dyn fmt::Display| {
            format!("cannot read secret file `{}`: {reason}", path.display())
        };
        let file = std::fs::File::open(path).map_err(|e| fail(&e))?;
        let mut bytes = Vec::new();
        file.take(MAX_SECRET_FILE + 1)
            .read_to_end(&mut bytes)
            .map_err(|e| fail(&e))?;
        if bytes.len() as u64 > MAX_SECRET_FILE {
            return Err(fail(&"larger than 1 MiB"));
        }
        let mut text = String::from_utf8(bytes).map_err(|_| fail(&"not valid UTF-8"))?;
        if text.ends_with("\r\n") {
            text.truncate(text.len() - 2);
        } else if text.ends_with('\n') {
            text.truncate(text.len() - 1);
        }
        Ok(text)
    }
}

type EnvSource = Arc<dyn Fn(&str) -> Option<String> + Send + Sync>;

/// Expands the placeholders of one scalar value.
///
/// | written | result |
/// |---|---|
/// | `${VAR}` | the value of `VAR`; the empty string when unset |
/// | `${VAR:default}` | `default` when `VAR` is unset **or empty** (Docker Compose's `:-`); the first `:` splits, so `${ADDR:localhost:6379}` defaults to `localhost:6379` |
/// | `$${` | a literal `${` (what follows is not expanded) |
/// | `${@name:argument}` | the [`Resolver`] registered as `name` (built in: `file`) |
///
/// Variable names are `[A-Za-z_][A-Za-z0-9_]*`; anything else inside
/// `${...}` is an error, as are an unterminated `${`, an unknown resolver,
/// and a nested `${` inside a default. A default cannot contain `}`.
/// Expansion is a single pass: a value that itself contains `${X}` is kept
/// as written.
///
/// ```
/// use kv_module::config::Expander;
///
/// let expander = Expander::new().with_env(|name| (name == "DB").then(|| "3".to_owned()));
/// assert_eq!(expander.expand("${DB}").unwrap().value, "3");
/// assert_eq!(expander.expand("${ADDR:localhost:6379}").unwrap().value, "localhost:6379");
/// assert_eq!(expander.expand("cost: $${DB}").unwrap().value, "cost: ${DB}");
/// assert!(expander.expand("${DB").is_err());
/// ```
#[derive(Clone)]
pub struct Expander {
    env: EnvSource,
    resolvers: BTreeMap<String, Arc<dyn Resolver>>,
}

/// The result of [`Expander::expand`].
#[derive(Clone, PartialEq, Eq)]
pub struct Expanded {
    /// The text with every placeholder replaced.
    pub value: String,
    /// Whether the original text was exactly one `${...}` placeholder and
    /// nothing else: the loader then re-types a plain scalar from its
    /// value (`db: ${REDIS_DB:0}` is an integer).
    pub whole_placeholder: bool,
}

// By hand: the value may be a secret.
impl fmt::Debug for Expanded {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Expanded")
            .field("value", &"[redacted]")
            .field("whole_placeholder", &self.whole_placeholder)
            .finish()
    }
}

impl fmt::Debug for Expander {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Expander")
            .field("resolvers", &self.resolvers.keys().collect::<Vec<_>>())
            .finish_non_exhaustive()
    }
}

impl Default for Expander {
    fn default() -> Self {
        Self::new()
    }
}

impl Expander {
    /// An expander reading the process environment (a variable that is
    /// unset or not valid UTF-8 counts as unset) with the `file` resolver.
    pub fn new() -> Self {
        let mut resolvers: BTreeMap<String, Arc<dyn Resolver>> = BTreeMap::new();
        resolvers.insert("file".to_owned(), Arc::new(FileResolver));
        Self {
            env: Arc::new(|name| std::env::var(name).ok()),
            resolvers,
        }
    }

    /// Replaces the environment source (default: the process environment),
    /// for tests and for applications with their own settings source.
    pub fn with_env(
        mut self,
        env: impl Fn(&str) -> Option<String> + Send + Sync + 'static,
    ) -> Self {
        self.env = Arc::new(env);
        self
    }

    /// Registers `resolver` for `${@name:argument}`, replacing any resolver
    /// of that name (`file` is registered by default).
    pub fn with_resolver(
        mut self,
        name: impl Into<String>,
        resolver: impl Resolver + 'static,
    ) -> Self {
        self.resolvers.insert(name.into(), Arc::new(resolver));
        self
    }

    /// Expands every placeholder in `text` (see the table on [`Expander`]).
    ///
    /// The error is a message without the expanded values; the loader adds
    /// the file, position and service.
    pub fn expand(&self, text: &str) -> Result<Expanded, String> {
        let mut value = String::with_capacity(text.len());
        let mut rest = text;
        let mut whole_placeholder = false;
        while let Some(dollar) = rest.find('$') {
            value.push_str(&rest[..dollar]);
            let after = &rest[dollar..];
            if let Some(tail) = after.strip_prefix("$${") {
                value.push_str("${");
                rest = tail;
            } else if let Some(tail) = after.strip_prefix("${") {
                let close = tail.find('}').ok_or_else(|| {
                    // Not quoting the text: it may be a literal secret.
                    "unterminated `${`: add the closing `}`, or write `$${` for a literal `${`"
                        .to_owned()
                })?;
                let inner = &tail[..close];
                rest = &tail[close + 1..];
                // `after` is a suffix of `text`: equal lengths mean this
                // placeholder starts the text, and an empty `rest` that it
                // ends it.
                whole_placeholder = after.len() == text.len() && rest.is_empty();
                value.push_str(&self.placeholder(inner)?);
            } else {
                value.push('$');
                rest = &after[1..];
            }
        }
        value.push_str(rest);
        Ok(Expanded {
            value,
            whole_placeholder,
        })
    }

    /// The value of one placeholder, `inner` being the text between `${`
    /// and `}`.
    fn placeholder(&self, inner: &str) -> Result<String, String> {
        if let Some(call) = inner.strip_prefix('@') {
            let Some((name, argument)) = call.split_once(':') else {
                return Err(format!(
                    "`${{{inner}}}` has no argument: write `${{@{call}:argument}}`"
                ));
            };
            let resolver = self.resolvers.get(name).ok_or_else(|| {
                let known: Vec<String> = self.resolvers.keys().map(|k| format!("@{k}")).collect();
                format!(
                    "unknown resolver `@{name}` (known resolvers: {})",
                    known.join(", ")
                )
            })?;
            return resolver
                .resolve(argument)
                .map_err(|reason| format!("resolver `@{name}` failed: {reason}"));
        }
        let (name, default) = match inner.split_once(':') {
            Some((name, default)) => (name, Some(default)),
            None => (inner, None),
        };
        if !is_variable_name(name) {
            return Err(format!(
                "invalid placeholder `${{{inner}}}`: a variable name is letters, digits and `_`, \
                 not starting with a digit (write `$${{` for a literal `${{`)"
            ));
        }
        if default.is_some_and(|d| d.contains("${")) {
            return Err(format!(
                "nested placeholder in the default of `${{{inner}}}` is not supported"
            ));
        }
        // Docker Compose's `${VAR:-default}`: set-but-empty takes the
        // default too, because an empty address or port is never what the
        // author of a default meant.
        match ((self.env)(name), default) {
            (Some(value), Some(_)) if !value.is_empty() => Ok(value),
            (Some(value), None) => Ok(value),
            (_, Some(default)) => Ok(default.to_owned()),
            (None, None) => Ok(String::new()),
        }
    }
}

/// `[A-Za-z_][A-Za-z0-9_]*`.
fn is_variable_name(name: &str) -> bool {
    let mut chars = name.chars();
    chars
        .next()
        .is_some_and(|c| c.is_ascii_alphabetic() || c == '_')
        && chars.all(|c| c.is_ascii_alphanumeric() || c == '_')
}

#[cfg(test)]
mod tests {
    use super::*;

    struct Upper;

    impl Resolver for Upper {
        fn resolve(&self, argument: &str) -> Result<String, String> {
            Ok(argument.to_uppercase())
        }
    }

    fn expander() -> Expander {
        Expander::new()
            .with_env(|name| match name {
                "HOST" => Some("redis.internal".to_owned()),
                "EMPTY" => Some(String::new()),
                "LOOP" => Some("${HOST}".to_owned()),
                _ => None,
            })
            .with_resolver("upper", Upper)
    }

    #[test]
    fn forms() {
        let cases: &[(&str, &str, bool)] = &[
            ("plain text", "plain text", false),
            ("${HOST}", "redis.internal", true),
            ("${UNSET}", "", true),
            ("${UNSET:localhost:6379}", "localhost:6379", true),
            ("${HOST:localhost:6379}", "redis.internal", true),
            ("${EMPTY:fallback}", "fallback", true),
            ("${EMPTY}", "", true),
            ("${UNSET:}", "", true),
            (
                "redis://${HOST}:6379/0",
                "redis://redis.internal:6379/0",
                false,
            ),
            ("${HOST}${HOST}", "redis.internalredis.internal", false),
            ("$${HOST}", "${HOST}", false),
            ("a $${ b", "a ${ b", false),
            ("$$${HOST}", "$${HOST}", false),
            ("cost $5 $", "cost $5 $", false),
            ("${LOOP}", "${HOST}", true),
            ("${@upper:abc}", "ABC", true),
            ("${@upper:a:b}", "A:B", true),
            ("x${HOST}", "xredis.internal", false),
            ("${EMPTY}${EMPTY}", "", false),
        ];
        let expander = expander();
        for &(text, value, whole) in cases {
            let expanded = expander
                .expand(text)
                .unwrap_or_else(|e| panic!("{text}: {e}"));
            assert_eq!(expanded.value, value, "{text}");
            assert_eq!(expanded.whole_placeholder, whole, "{text}");
        }
    }

    #[test]
    fn errors_name_the_problem() {
        let expander = expander();
        let cases = [
            ("${HOST", "unterminated"),
            ("abc ${", "unterminated"),
            ("${}", "invalid placeholder `${}`"),
            ("${1X}", "invalid placeholder `${1X}`"),
            ("${A-B}", "invalid placeholder `${A-B}`"),
            ("${A:${B}}", "nested"),
            (
                "${@vault:x}",
                "unknown resolver `@vault` (known resolvers: @file, @upper)",
            ),
            ("${@upper}", "has no argument"),
            ("${@file:/nonexistent/secret}", "/nonexistent/secret"),
        ];
        for (text, needle) in cases {
            let error = expander.expand(text).unwrap_err();
            assert!(error.contains(needle), "{text}: {error}");
        }
    }

    #[test]
    fn file_resolver_trims_one_newline() {
        let dir = tempfile::tempdir().unwrap();
        for (content, expected) in [
            ("s3cret\n", "s3cret"),
            ("s3cret\r\n", "s3cret"),
            ("s3cret\n\n", "s3cret\n"),
            ("s3cret", "s3cret"),
            ("", ""),
        ] {
            let path = dir.path().join("secret");
            std::fs::write(&path, content).unwrap();
            assert_eq!(
                FileResolver.resolve(path.to_str().unwrap()).unwrap(),
                expected
            );
        }
        let path = dir.path().join("binary");
        std::fs::write(&path, [0xff, 0xfe]).unwrap();
        let error = FileResolver.resolve(path.to_str().unwrap()).unwrap_err();
        assert!(error.contains("not valid UTF-8"), "{error}");
    }

    #[test]
    fn unreadable_file_error_names_path_not_content() {
        let error = FileResolver.resolve("/nonexistent/dir/token").unwrap_err();
        assert!(error.contains("/nonexistent/dir/token"), "{error}");
        assert!(error.contains("No such file"), "{error}");
    }
}
