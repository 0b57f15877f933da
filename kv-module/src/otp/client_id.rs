//! [`ClientId`]: who is asking for or checking a code, so that one client
//! spends only its own budget of a subject's codes and guesses.

use std::fmt;
use std::net::IpAddr;

/// The client a request for a code (or a guess) comes from: usually its IP
/// address. The service keeps a daily cap of codes and a failure limit per
/// (subject, client), so a client hammering a subject exhausts its own
/// budget and not the subject's; the subject's own ceilings stay as the
/// bound no number of clients can pass.
///
/// The identity is never stored nor logged as such: keys name it by a
/// keyed HMAC under the service's secret, and `Debug` prints
/// `[redacted]`.
///
/// ```
/// use std::net::IpAddr;
/// use kv_module::otp::ClientId;
///
/// let a = ClientId::from_ip("2001:db8:1:2:aaaa::1".parse::<IpAddr>()?);
/// let b = ClientId::from_ip("2001:db8:1:2:bbbb::2".parse::<IpAddr>()?);
/// assert_eq!(a, b, "one IPv6 /64 is one client");
/// let mapped = ClientId::from_ip("::ffff:198.51.100.7".parse::<IpAddr>()?);
/// assert_eq!(mapped, ClientId::from_ip("198.51.100.7".parse::<IpAddr>()?));
/// assert_eq!(format!("{a:?}"), "ClientId([redacted])");
/// # Ok::<(), std::net::AddrParseError>(())
/// ```
#[derive(Clone, PartialEq, Eq, Hash)]
pub struct ClientId(String);

impl ClientId {
    /// The client at `ip`. An IPv6 address counts by its /64 prefix (one
    /// subscriber usually holds a whole /64 and could otherwise rotate
    /// through it); an IPv4-mapped IPv6 address counts as its IPv4 one.
    pub fn from_ip(ip: IpAddr) -> Self {
        match ip {
            IpAddr::V4(v4) => Self(format!("ip:{v4}")),
            IpAddr::V6(v6) => match v6.to_ipv4_mapped() {
                Some(v4) => Self(format!("ip:{v4}")),
                None => {
                    let s = v6.segments();
                    Self(format!(
                        "ip6:{:x}:{:x}:{:x}:{:x}::/64",
                        s[0], s[1], s[2], s[3]
                    ))
                }
            },
        }
    }

    /// A client by an identity of the caller's choosing (a device id, an
    /// API key's name). Namespace it (`device:...`) so it cannot collide
    /// with [`from_ip`](Self::from_ip)'s `ip:` and `ip6:` identities.
    pub fn new(identity: impl Into<String>) -> Self {
        Self(identity.into())
    }

    /// No known client: every caller without one shares this single
    /// budget. What [`issue`](super::OneTimeCodes::issue) and
    /// [`verify`](super::OneTimeCodes::verify) use; prefer the `_from`
    /// variants with the real client, or one client can lock out all.
    pub fn unknown() -> Self {
        Self(String::new())
    }

    /// The identity, to be hashed into key names: never log it.
    pub(crate) fn expose(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for ClientId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("ClientId([redacted])")
    }
}
