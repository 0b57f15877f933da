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

/// Checks a name and an email; the message says what is wrong.
pub fn validate(name: &str, email: &str) -> Result<(), String> {
    if name.trim().is_empty() {
        return Err("name must not be empty".into());
    }
    if name.chars().count() > 200 {
        return Err("name must be at most 200 characters".into());
    }
    let valid_email = email.len() <= 254
        && !email.chars().any(char::is_whitespace)
        && email.split_once('@').is_some_and(|(local, domain)| {
            !local.is_empty()
                && domain.contains('.')
                && !domain.starts_with('.')
                && !domain.ends_with('.')
                && !domain.contains('@')
        });
    if !valid_email {
        return Err("email is not a valid address".into());
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::validate;

    #[test]
    fn validates_names_and_emails() {
        assert!(validate("Ada", "ada@example.com").is_ok());
        assert!(validate(" ", "ada@example.com").is_err());
        for bad in [
            "", "ada", "@x.io", "ada@", "ada@x", "a b@x.io", "a@b@x.io", "a@.io",
        ] {
            assert!(validate("Ada", bad).is_err(), "{bad}");
        }
    }
}
