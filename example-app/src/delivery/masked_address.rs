//! [`MaskedAddress`]: an e-mail address as logs may show it.

use std::fmt;

/// Displays an e-mail address with its local part hidden but for its first
/// character (`alice@example.com` → `a***@example.com`): enough to tell
/// deliveries to different domains apart in the logs, not enough to learn
/// who the user is. Anything without an `@` prints as `***`.
///
/// ```
/// use example_app::delivery::MaskedAddress;
///
/// assert_eq!(MaskedAddress("alice@example.com").to_string(), "a***@example.com");
/// assert_eq!(MaskedAddress("not an address").to_string(), "***");
/// ```
#[derive(Clone, Copy)]
pub struct MaskedAddress<'a>(pub &'a str);

impl fmt::Display for MaskedAddress<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.0.rsplit_once('@') {
            Some((local, domain)) => match local.chars().next() {
                Some(first) => write!(f, "{first}***@{domain}"),
                None => write!(f, "***@{domain}"),
            },
            None => f.write_str("***"),
        }
    }
}

impl fmt::Debug for MaskedAddress<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Display::fmt(self, f)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hides_the_local_part() {
        assert_eq!(
            MaskedAddress("bob@example.org").to_string(),
            "b***@example.org"
        );
        assert_eq!(
            format!("{:?}", MaskedAddress("bob@example.org")),
            "b***@example.org"
        );
        assert_eq!(MaskedAddress("@example.org").to_string(), "***@example.org");
        assert_eq!(MaskedAddress("").to_string(), "***");
        // A multi-byte first character is kept whole.
        assert_eq!(
            MaskedAddress("élodie@example.fr").to_string(),
            "é***@example.fr"
        );
    }
}
