//! Reading a cookie from the `Cookie` request headers (writing one is
//! [`SessionSettings::set_cookie`](super::SessionSettings::set_cookie)).

use http::HeaderMap;
use http::header::COOKIE;

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
    use http::HeaderValue;

    use super::*;

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
