//! The session cookie: written by [`SessionConfig::set_cookie`] and
//! [`SessionConfig::clear_cookie`], read by [`find_cookie`].

use http::header::COOKIE;
use http::{HeaderMap, HeaderValue};

use super::config::SessionConfig;
use super::id::SessionId;

impl SessionConfig {
    /// The `Set-Cookie` value that hands `id` to a browser:
    /// `HttpOnly` (no script can read it), `SameSite=Lax` (not sent on
    /// cross-site subrequests), `Path=/`, `Secure` when configured, and
    /// `Max-Age` the absolute timeout (the server ends the session earlier
    /// when it idles).
    ///
    /// ```
    /// use kv_module::registry::StoreRef;
    /// use kv_module::session::{SessionConfig, SessionId};
    ///
    /// let config = SessionConfig::new(StoreRef::new("s")).with_cookie_secure(true);
    /// let id = SessionId::generate("user-1").unwrap();
    /// assert_eq!(
    ///     config.set_cookie(&id).to_str().unwrap(),
    ///     format!("session_id={}; Max-Age=86400; Path=/; HttpOnly; SameSite=Lax; Secure", id.expose())
    /// );
    /// ```
    pub fn set_cookie(&self, id: &SessionId) -> HeaderValue {
        self.cookie(id.expose(), self.absolute_timeout.as_secs().max(1))
    }

    /// The `Set-Cookie` value that removes the session cookie (empty value,
    /// `Max-Age=0`), for logout.
    pub fn clear_cookie(&self) -> HeaderValue {
        self.cookie("", 0)
    }

    fn cookie(&self, value: &str, max_age: u64) -> HeaderValue {
        let secure = if self.cookie_secure { "; Secure" } else { "" };
        let text = format!(
            "{}={value}; Max-Age={max_age}; Path=/; HttpOnly; SameSite=Lax{secure}",
            self.cookie_name
        );
        // A validated name is a token and the value base64url, both
        // visible ASCII; the fallback is taken only for a configuration
        // that skipped validation.
        HeaderValue::from_str(&text).unwrap_or_else(|_| HeaderValue::from_static(""))
    }
}

/// The value of the first cookie called `name` in the request's `Cookie`
/// headers (HTTP/2 may send several), per RFC 6265 §5.4: `name=value`
/// pairs separated by `;`, a value optionally in double quotes. Headers
/// that are not visible ASCII are skipped.
///
/// ```
/// use http::{HeaderMap, HeaderValue, header::COOKIE};
/// use kv_module::session::find_cookie;
///
/// let mut headers = HeaderMap::new();
/// headers.insert(COOKIE, HeaderValue::from_static("theme=dark; session_id=\"abc\""));
/// assert_eq!(find_cookie(&headers, "session_id"), Some("abc"));
/// assert_eq!(find_cookie(&headers, "session"), None);
/// ```
pub fn find_cookie<'h>(headers: &'h HeaderMap, name: &str) -> Option<&'h str> {
    headers
        .get_all(COOKIE)
        .iter()
        .filter_map(|value| value.to_str().ok())
        .flat_map(|line| line.split(';'))
        .find_map(|pair| {
            let (key, value) = pair.split_once('=')?;
            (key.trim() == name).then(|| {
                let value = value.trim();
                value
                    .strip_prefix('"')
                    .and_then(|v| v.strip_suffix('"'))
                    .unwrap_or(value)
            })
        })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::registry::StoreRef;

    #[test]
    fn cookies_are_http_only_lax_and_secure_when_asked() {
        let id = SessionId::generate("user-1").unwrap();
        let plain = SessionConfig::new(StoreRef::new("s"));
        let text = plain.set_cookie(&id).to_str().unwrap().to_owned();
        assert!(text.starts_with(&format!("session_id={};", id.expose())));
        assert!(text.contains("HttpOnly") && text.contains("SameSite=Lax"));
        assert!(text.contains("Path=/") && !text.contains("Secure"));
        let secure = plain.with_cookie_secure(true);
        assert!(
            secure
                .set_cookie(&id)
                .to_str()
                .unwrap()
                .ends_with("; Secure")
        );
        assert_eq!(
            secure.clear_cookie().to_str().unwrap(),
            "session_id=; Max-Age=0; Path=/; HttpOnly; SameSite=Lax; Secure"
        );
    }

    fn headers(lines: &[&'static str]) -> HeaderMap {
        let mut headers = HeaderMap::new();
        for line in lines {
            headers.append(COOKIE, HeaderValue::from_static(line));
        }
        headers
    }

    #[test]
    fn finds_the_named_cookie_among_several_headers() {
        let h = headers(&["a=1; b=2", "sid=x=y;c=3", "sid=second"]);
        assert_eq!(find_cookie(&h, "a"), Some("1"));
        assert_eq!(find_cookie(&h, "b"), Some("2"));
        assert_eq!(find_cookie(&h, "sid"), Some("x=y"), "first one wins");
        assert_eq!(find_cookie(&h, "c"), Some("3"));
        assert_eq!(find_cookie(&h, "d"), None);
        assert_eq!(find_cookie(&headers(&["noequals; =v"]), ""), Some("v"));
        assert_eq!(find_cookie(&HeaderMap::new(), "a"), None);
        assert_eq!(find_cookie(&headers(&["a=\"\""]), "a"), Some(""));
        assert_eq!(find_cookie(&headers(&["a=\""]), "a"), Some("\""));
    }
}
