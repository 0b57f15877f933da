//! [`RequestId`]: the id every request is logged under and that every
//! response carries in `X-Request-Id`, so a client's report of a 5xx can be
//! matched with the server's log of its cause.

use axum::http::{HeaderMap, HeaderName, HeaderValue};

/// The header that carries the id, both ways.
pub static REQUEST_ID_HEADER: HeaderName = HeaderName::from_static("x-request-id");

/// Longest incoming id kept (a UUID is 36 characters).
const MAX_LEN: usize = 64;

/// A request id: the caller's `X-Request-Id` when it is a plausible id
/// (1 to 64 characters of `A-Z a-z 0-9 - _ .`), else a new UUID v7 (time
/// ordered, so ids sort by arrival in the logs).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RequestId(String);

impl RequestId {
    /// The id for a request with `headers`.
    pub fn for_request(headers: &HeaderMap) -> Self {
        headers
            .get(&REQUEST_ID_HEADER)
            .and_then(|v| v.to_str().ok())
            .filter(|v| Self::is_plausible(v))
            .map(|v| Self(v.to_owned()))
            .unwrap_or_else(Self::generate)
    }

    /// A new UUID v7.
    pub fn generate() -> Self {
        Self(uuid::Uuid::now_v7().to_string())
    }

    /// Whether `id` may be echoed back: short, and nothing that could
    /// forge a log line or a header.
    fn is_plausible(id: &str) -> bool {
        (1..=MAX_LEN).contains(&id.len())
            && id
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.'))
    }

    /// The id.
    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// The id as a header value.
    pub fn header_value(&self) -> HeaderValue {
        // Only visible ASCII gets here (checked or generated).
        HeaderValue::from_str(&self.0).unwrap_or_else(|_| HeaderValue::from_static("invalid"))
    }
}

impl std::fmt::Display for RequestId {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keeps_a_plausible_id_and_replaces_others() {
        let mut headers = HeaderMap::new();
        headers.insert(&REQUEST_ID_HEADER, HeaderValue::from_static("abc-123_x.y"));
        assert_eq!(RequestId::for_request(&headers).as_str(), "abc-123_x.y");
        for bad in ["", "a b", "x\u{7f}", &"x".repeat(65)] {
            let mut headers = HeaderMap::new();
            if let Ok(v) = HeaderValue::from_str(bad) {
                headers.insert(&REQUEST_ID_HEADER, v);
            }
            let id = RequestId::for_request(&headers);
            assert_ne!(id.as_str(), bad);
            assert!(uuid::Uuid::parse_str(id.as_str()).is_ok_and(|u| u.get_version_num() == 7));
        }
    }
}
