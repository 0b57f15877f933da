//! [`User`] and the request bodies that create or change one.

use serde::{Deserialize, Serialize};

/// A user, as stored in SQLite and cached in `user_cache`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct User {
    /// Primary key.
    pub id: i64,
    /// Display name, never empty.
    pub name: String,
    /// Unique (case-insensitive) email address.
    pub email: String,
}

/// What anyone may see of a user: no e-mail address.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct PublicUser {
    /// Primary key.
    pub id: i64,
    /// Display name.
    pub name: String,
}

impl From<User> for PublicUser {
    fn from(user: User) -> Self {
        Self {
            id: user.id,
            name: user.name,
        }
    }
}

/// `POST /api/users`.
#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct NewUser {
    /// Display name.
    pub name: String,
    /// Email address.
    pub email: String,
}

/// `PUT /api/users/{id}`: the fields to change.
#[derive(Clone, Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct UserPatch {
    /// New name.
    pub name: Option<String>,
    /// New email.
    pub email: Option<String>,
}

/// Longest name accepted, in characters.
pub const MAX_NAME_CHARS: usize = 200;

/// The Unicode bidirectional embedding, override and isolate controls.
fn is_bidi_control(c: char) -> bool {
    matches!(c, '\u{202A}'..='\u{202E}' | '\u{2066}'..='\u{2069}')
}

impl NewUser {
    /// Checks the name, then the e-mail address ([`validate_name`],
    /// [`validate_email`]).
    pub fn validate(&self) -> Result<(), String> {
        validate_name(&self.name)?;
        validate_email(&self.email)
    }
}

impl UserPatch {
    /// Checks the fields it changes, the name first.
    pub fn validate(&self) -> Result<(), String> {
        self.name.as_deref().map_or(Ok(()), validate_name)?;
        self.email.as_deref().map_or(Ok(()), validate_email)
    }
}

/// Checks a display name; the message says what is wrong.
pub fn validate_name(name: &str) -> Result<(), String> {
    if name.trim().is_empty() {
        return Err("name must not be empty".into());
    }
    if name.chars().count() > MAX_NAME_CHARS {
        return Err(format!("name must be at most {MAX_NAME_CHARS} characters"));
    }
    // Control characters (newlines, NUL, escape sequences) forge log lines
    // and terminal output wherever a name is shown; bidirectional
    // overrides make a name read differently from what it is.
    if name.chars().any(|c| c.is_control() || is_bidi_control(c)) {
        return Err("name must not contain control characters".into());
    }
    Ok(())
}

/// Checks an e-mail address (its shape: `local@domain.tld`, no spaces or
/// control characters, at most 254 bytes).
pub fn validate_email(email: &str) -> Result<(), String> {
    let valid = email.len() <= 254
        && !email
            .chars()
            .any(|c| c.is_whitespace() || c.is_control() || is_bidi_control(c))
        && email.split_once('@').is_some_and(|(local, domain)| {
            !local.is_empty()
                && domain.contains('.')
                && !domain.starts_with('.')
                && !domain.ends_with('.')
                && !domain.contains('@')
        });
    if valid {
        Ok(())
    } else {
        Err("email is not a valid address".into())
    }
}

#[cfg(test)]
mod tests {
    use super::{validate_email, validate_name};

    #[test]
    fn validates_names_and_emails() {
        assert!(validate_name("Ada").is_ok());
        assert!(validate_email("ada@example.com").is_ok());
        assert!(validate_name(" ").is_err());
        for bad in [
            "Ada\nAdmin",
            "A\u{0}",
            "A\u{1b}[31m",
            "A\u{202E}nimda",
            "A\u{7f}",
        ] {
            assert!(validate_name(bad).is_err(), "{bad:?}");
        }
        assert!(validate_name(&"é".repeat(200)).is_ok());
        assert!(validate_name(&"é".repeat(201)).is_err());
        for bad in [
            "", "ada", "@x.io", "ada@", "ada@x", "a b@x.io", "a@b@x.io", "a@.io",
        ] {
            assert!(validate_email(bad).is_err(), "{bad}");
        }
    }
}
