//! [`TrustedProxies`]: which peers may say who the client is, and how to
//! read the client's address through them without letting clients spoof
//! it.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

use http::HeaderMap;
use ipnet::IpNet;
use serde::Deserialize;

use crate::config::ConfigError;

/// The header the trusted proxies append the client's address to.
///
/// Only one is read, on purpose: a proxy that appends to
/// `X-Forwarded-For` passes a client's own `Forwarded` header through
/// untouched, so honouring both would let the client choose its address.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ProxyHeader {
    /// `X-Forwarded-For: client, proxy1, proxy2` (the default: what
    /// nginx, HAProxy and most load balancers send).
    #[default]
    XForwardedFor,
    /// RFC 7239 `Forwarded: for=client, for="[2001:db8::1]:4711"`.
    Forwarded,
}

/// The proxies (as CIDRs) whose forwarding header is believed, and which
/// header that is.
///
/// [`client_ip`](Self::client_ip) returns the peer itself unless the peer
/// is trusted. Then it walks the header's addresses from the right (the
/// hop the peer itself appended) leftwards past every trusted address, and
/// returns the first one that is not trusted: everything left of it was
/// written by the client and is ignored, so a client cannot pick its own
/// address by sending the header itself.
///
/// ```
/// use std::net::IpAddr;
/// use http::HeaderMap;
/// use kv_module::rate_limit::TrustedProxies;
///
/// let proxies = TrustedProxies::parse(["10.0.0.0/8", "192.0.2.7"])?;
/// let mut headers = HeaderMap::new();
/// // The client claimed to be 1.1.1.1; the proxy at 10.0.0.2 appended the
/// // address it saw (203.0.113.9), and 10.0.0.1 forwarded that.
/// headers.insert("x-forwarded-for", "1.1.1.1, 203.0.113.9, 10.0.0.2".parse()?);
///
/// let from_proxy: IpAddr = "10.0.0.1".parse()?;
/// assert_eq!(proxies.client_ip(from_proxy, &headers), "203.0.113.9".parse::<IpAddr>()?);
/// // The same header from a peer that is not a trusted proxy is ignored.
/// let direct: IpAddr = "198.51.100.4".parse()?;
/// assert_eq!(proxies.client_ip(direct, &headers), direct);
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
///
/// In configuration (`deny_unknown_fields`):
///
/// ```yaml
/// trusted_proxies:
///   cidrs: [10.0.0.0/8, "fd00::/8", 192.0.2.7]   # a bare address is a /32 or /128
///   header: x_forwarded_for                       # or `forwarded`; default x_forwarded_for
/// ```
#[derive(Clone, Debug, Default, PartialEq, Eq, Deserialize)]
#[serde(try_from = "ProxyFields")]
pub struct TrustedProxies {
    nets: Vec<IpNet>,
    header: ProxyHeader,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct ProxyFields {
    cidrs: Vec<String>,
    #[serde(default)]
    header: ProxyHeader,
}

impl TryFrom<ProxyFields> for TrustedProxies {
    type Error = String;

    fn try_from(fields: ProxyFields) -> Result<Self, String> {
        let nets = fields
            .cidrs
            .iter()
            .map(|text| parse_net(text))
            .collect::<Result<_, _>>()?;
        Ok(Self {
            nets,
            header: fields.header,
        })
    }
}

fn parse_net(text: &str) -> Result<IpNet, String> {
    let text = text.trim();
    text.parse::<IpNet>()
        .or_else(|_| text.parse::<IpAddr>().map(IpNet::from))
        .map(|net| net.trunc())
        .map_err(|_| format!("`{text}` is not a CIDR (`10.0.0.0/8`) or an IP address"))
}

impl TrustedProxies {
    /// Trusts no one: the client is always the peer. The default.
    pub fn none() -> Self {
        Self::default()
    }

    /// Trusts the given networks, reading [`ProxyHeader::XForwardedFor`].
    pub fn new(nets: impl IntoIterator<Item = IpNet>) -> Self {
        Self {
            nets: nets.into_iter().map(|net| net.trunc()).collect(),
            header: ProxyHeader::default(),
        }
    }

    /// Trusts the networks written as CIDRs (`10.0.0.0/8`, `fd00::/8`) or
    /// bare addresses (a single host), reading
    /// [`ProxyHeader::XForwardedFor`].
    ///
    /// # Errors
    ///
    /// [`ConfigError::InvalidSetting`] naming the entry that does not parse.
    pub fn parse<I, S>(cidrs: I) -> Result<Self, ConfigError>
    where
        I: IntoIterator<Item = S>,
        S: AsRef<str>,
    {
        let nets = cidrs
            .into_iter()
            .map(|text| parse_net(text.as_ref()))
            .collect::<Result<Vec<_>, _>>()
            .map_err(|message| ConfigError::InvalidSetting {
                component: "trusted_proxies".into(),
                path: "trusted_proxies.cidrs".into(),
                message,
            })?;
        Ok(Self {
            nets,
            header: ProxyHeader::default(),
        })
    }

    /// Sets the header the proxies write. Default:
    /// [`ProxyHeader::XForwardedFor`].
    pub fn with_header(mut self, header: ProxyHeader) -> Self {
        self.header = header;
        self
    }

    /// The trusted networks.
    pub fn nets(&self) -> &[IpNet] {
        &self.nets
    }

    /// The header read.
    pub fn header(&self) -> ProxyHeader {
        self.header
    }

    /// Whether `ip` is a trusted proxy (IPv4-mapped IPv6 addresses count
    /// as their IPv4 address).
    pub fn is_trusted(&self, ip: IpAddr) -> bool {
        let ip = ip.to_canonical();
        self.nets.iter().any(|net| net.contains(&ip))
    }

    /// The client's address for a request from `peer` with `headers`: the
    /// peer when it is not trusted; else the rightmost address of the
    /// forwarding header that is not trusted. When every address in the
    /// header is trusted, the leftmost; when the walk meets an entry that
    /// is not an address (`unknown`, an obfuscated `_id`, garbage), the
    /// last trusted address before it, since nothing further left can be
    /// vouched for.
    pub fn client_ip(&self, peer: IpAddr, headers: &HeaderMap) -> IpAddr {
        let mut client = peer.to_canonical();
        if !self.is_trusted(client) {
            return client;
        }
        let hops = match self.header {
            ProxyHeader::XForwardedFor => x_forwarded_for(headers),
            ProxyHeader::Forwarded => forwarded(headers),
        };
        for hop in hops.into_iter().rev() {
            let Some(ip) = hop else {
                return client;
            };
            client = ip.to_canonical();
            if !self.is_trusted(client) {
                return client;
            }
        }
        client
    }
}

/// The hops of every `X-Forwarded-For` line, left to right; `None` for an
/// entry (or a whole line) that is not an address.
fn x_forwarded_for(headers: &HeaderMap) -> Vec<Option<IpAddr>> {
    let mut hops = Vec::new();
    for value in headers.get_all("x-forwarded-for") {
        let Ok(text) = value.to_str() else {
            hops.push(None);
            continue;
        };
        hops.extend(
            text.split(',')
                .map(str::trim)
                .filter(|entry| !entry.is_empty())
                .map(parse_node),
        );
    }
    hops
}

/// The `for=` of every element of every `Forwarded` line, left to right;
/// `None` for an element without a usable `for=`.
fn forwarded(headers: &HeaderMap) -> Vec<Option<IpAddr>> {
    let mut hops = Vec::new();
    for value in headers.get_all("forwarded") {
        match value.to_str() {
            Ok(text) => hops.extend(forwarded_elements(text)),
            Err(_) => hops.push(None),
        }
    }
    hops
}

/// Parses one `Forwarded` field value (RFC 7239 §4): elements separated
/// by `,`, pairs by `;`, values tokens or quoted strings (which may hold
/// `,` and `;`). Each element gives its `for=` address, if it has one.
fn forwarded_elements(text: &str) -> Vec<Option<IpAddr>> {
    let mut elements = Vec::new();
    let mut chars = text.chars().peekable();
    // The `for=` of the current element: None = not seen yet, Some(None)
    // = seen but unusable.
    let mut current: Option<Option<IpAddr>> = None;
    let mut malformed = false;
    loop {
        // One `name=value` pair.
        while chars.peek().is_some_and(|c| *c == ' ' || *c == '\t') {
            chars.next();
        }
        let mut name = String::new();
        while let Some(&c) = chars.peek() {
            if c == '=' || c == ';' || c == ',' {
                break;
            }
            name.push(c);
            chars.next();
        }
        let mut value = String::new();
        if chars.peek() == Some(&'=') {
            chars.next();
            if chars.peek() == Some(&'"') {
                chars.next();
                let mut closed = false;
                while let Some(c) = chars.next() {
                    match c {
                        '"' => {
                            closed = true;
                            break;
                        }
                        '\\' => {
                            if let Some(escaped) = chars.next() {
                                value.push(escaped);
                            }
                        }
                        c => value.push(c),
                    }
                }
                malformed |= !closed;
            } else {
                while let Some(&c) = chars.peek() {
                    if c == ';' || c == ',' {
                        break;
                    }
                    value.push(c);
                    chars.next();
                }
            }
        } else if !name.trim().is_empty() {
            malformed = true;
        }
        if name.trim().eq_ignore_ascii_case("for") && current.is_none() {
            current = Some(parse_node(value.trim()));
        }
        // Skip to the next separator (whitespace after a quoted value).
        while chars.peek().is_some_and(|c| *c != ';' && *c != ',') {
            malformed |= !matches!(chars.next(), Some(' ' | '\t'));
        }
        match chars.next() {
            Some(';') => continue,
            separator => {
                let hop = if malformed { None } else { current.flatten() };
                elements.push(hop);
                current = None;
                malformed = false;
                if separator.is_none() {
                    break;
                }
            }
        }
    }
    elements
}

/// An address as proxies write it: `192.0.2.1`, `192.0.2.1:8080`,
/// `2001:db8::1`, `[2001:db8::1]`, `[2001:db8::1]:4711`; `None` for
/// anything else (`unknown`, `_hidden`, garbage).
fn parse_node(text: &str) -> Option<IpAddr> {
    if let Some(rest) = text.strip_prefix('[') {
        let (ip, after) = rest.split_once(']')?;
        if !(after.is_empty() || after.strip_prefix(':').is_some_and(valid_port)) {
            return None;
        }
        return ip.parse::<Ipv6Addr>().ok().map(IpAddr::V6);
    }
    if let Ok(ip) = text.parse::<IpAddr>() {
        return Some(ip);
    }
    let (ip, port) = text.rsplit_once(':')?;
    if !valid_port(port) {
        return None;
    }
    ip.parse::<Ipv4Addr>().ok().map(IpAddr::V4)
}

/// A port: digits, or an RFC 7239 obfuscated port (`_` then
/// `[A-Za-z0-9._-]`).
fn valid_port(port: &str) -> bool {
    let digits = !port.is_empty() && port.len() <= 5 && port.bytes().all(|b| b.is_ascii_digit());
    let obfuscated = port.strip_prefix('_').is_some_and(|rest| {
        !rest.is_empty()
            && rest
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b == b'.' || b == b'_' || b == b'-')
    });
    digits || obfuscated
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ip(text: &str) -> IpAddr {
        text.parse().unwrap()
    }

    fn headers(name: &'static str, values: &[&str]) -> HeaderMap {
        let mut map = HeaderMap::new();
        for value in values {
            map.append(name, value.parse().unwrap());
        }
        map
    }

    fn proxies() -> TrustedProxies {
        TrustedProxies::parse(["10.0.0.0/8", "fd00::/8", "192.0.2.7"]).unwrap()
    }

    #[test]
    fn a_spoofed_header_from_an_untrusted_peer_is_ignored() {
        let spoofed = headers("x-forwarded-for", &["6.6.6.6"]);
        assert_eq!(
            proxies().client_ip(ip("203.0.113.5"), &spoofed),
            ip("203.0.113.5")
        );
        let spoofed = headers("forwarded", &["for=6.6.6.6"]);
        let forwarded = proxies().with_header(ProxyHeader::Forwarded);
        assert_eq!(
            forwarded.client_ip(ip("203.0.113.5"), &spoofed),
            ip("203.0.113.5")
        );
        // Trusting nobody (the default) ignores the header from anyone.
        assert_eq!(
            TrustedProxies::none().client_ip(ip("10.0.0.1"), &spoofed),
            ip("10.0.0.1")
        );
    }

    #[test]
    fn from_a_trusted_proxy_the_rightmost_untrusted_address_is_the_client() {
        let p = proxies();
        // The client prepended its own guesses; proxies appended the rest.
        let h = headers(
            "x-forwarded-for",
            &["6.6.6.6, 7.7.7.7, 198.51.100.9, 10.1.1.1"],
        );
        assert_eq!(p.client_ip(ip("10.0.0.1"), &h), ip("198.51.100.9"));
        // The same across several header lines (later lines are to the right).
        let h = headers("x-forwarded-for", &["6.6.6.6", "198.51.100.9, 192.0.2.7"]);
        assert_eq!(p.client_ip(ip("10.0.0.1"), &h), ip("198.51.100.9"));
        // No header: the proxy itself.
        assert_eq!(
            p.client_ip(ip("10.0.0.1"), &HeaderMap::new()),
            ip("10.0.0.1")
        );
        // Every hop trusted: the leftmost.
        let h = headers("x-forwarded-for", &["10.9.9.9, 10.1.1.1"]);
        assert_eq!(p.client_ip(ip("10.0.0.1"), &h), ip("10.9.9.9"));
        // Garbage where the proxy's own entry should be: the proxy.
        let h = headers("x-forwarded-for", &["198.51.100.9, garbage"]);
        assert_eq!(p.client_ip(ip("10.0.0.1"), &h), ip("10.0.0.1"));
        // Garbage further left than the client is never reached.
        let h = headers("x-forwarded-for", &["garbage, 198.51.100.9"]);
        assert_eq!(p.client_ip(ip("10.0.0.1"), &h), ip("198.51.100.9"));
        // Ports, brackets and IPv6 in X-Forwarded-For.
        let h = headers("x-forwarded-for", &["198.51.100.9:5555"]);
        assert_eq!(p.client_ip(ip("10.0.0.1"), &h), ip("198.51.100.9"));
        let h = headers("x-forwarded-for", &["2001:db8::1, fd00::2"]);
        assert_eq!(p.client_ip(ip("fd00::1"), &h), ip("2001:db8::1"));
        let h = headers("x-forwarded-for", &["[2001:db8::1]:443"]);
        assert_eq!(p.client_ip(ip("10.0.0.1"), &h), ip("2001:db8::1"));
        // An IPv4-mapped peer counts as its IPv4 address.
        let h = headers("x-forwarded-for", &["198.51.100.9"]);
        assert_eq!(p.client_ip(ip("::ffff:10.0.0.1"), &h), ip("198.51.100.9"));
        // X-Forwarded-For is ignored when the proxies write Forwarded.
        let f = proxies().with_header(ProxyHeader::Forwarded);
        assert_eq!(f.client_ip(ip("10.0.0.1"), &h), ip("10.0.0.1"));
    }

    #[test]
    fn forwarded_for_with_quoted_ipv6_ports_and_other_pairs() {
        let p = proxies().with_header(ProxyHeader::Forwarded);
        let cases = [
            (vec!["for=198.51.100.9"], "198.51.100.9"),
            (vec!["For=\"198.51.100.9:8080\""], "198.51.100.9"),
            (
                vec!["for=\"[2001:db8:cafe::17]:4711\""],
                "2001:db8:cafe::17",
            ),
            (
                vec!["for=\"[2001:db8:cafe::17]\";proto=https"],
                "2001:db8:cafe::17",
            ),
            (
                vec!["for=6.6.6.6, for=198.51.100.9;proto=http;by=10.0.0.1, for=10.1.1.1"],
                "198.51.100.9",
            ),
            (
                vec!["proto=http;for=198.51.100.9;host=\"a,b;c\""],
                "198.51.100.9",
            ),
            (
                vec!["for=6.6.6.6", "for=198.51.100.9 , for=\"10.1.1.1:_port\""],
                "198.51.100.9",
            ),
            // The proxy's own element has no usable `for`: trust stops there.
            (vec!["for=198.51.100.9, for=unknown"], "10.0.0.1"),
            (vec!["for=198.51.100.9, for=_hidden"], "10.0.0.1"),
            (vec!["for=198.51.100.9, proto=https"], "10.0.0.1"),
            (
                vec!["for=198.51.100.9, for=\"[2001:db8::1]:99999999\""],
                "10.0.0.1",
            ),
            (vec!["for=198.51.100.9, for=\"unterminated"], "10.0.0.1"),
        ];
        for (values, expected) in cases {
            let h = headers("forwarded", &values);
            assert_eq!(p.client_ip(ip("10.0.0.1"), &h), ip(expected), "{values:?}");
        }
    }

    #[test]
    fn nodes_and_nets_parse_strictly() {
        assert_eq!(parse_node("192.0.2.1"), Some(ip("192.0.2.1")));
        assert_eq!(parse_node("192.0.2.1:80"), Some(ip("192.0.2.1")));
        assert_eq!(parse_node("[::1]:80"), Some(ip("::1")));
        assert_eq!(parse_node("::1"), Some(ip("::1")));
        for bad in [
            "",
            "unknown",
            "_x",
            "[::1",
            "[::1]x",
            "192.0.2.1:",
            "192.0.2.1:x",
            "1.2.3",
        ] {
            assert_eq!(parse_node(bad), None, "{bad:?}");
        }
        let p = TrustedProxies::parse(["10.1.2.3/8", " 192.0.2.1 ", "::1"]).unwrap();
        assert!(p.is_trusted(ip("10.200.0.1")));
        assert!(p.is_trusted(ip("192.0.2.1")));
        assert!(!p.is_trusted(ip("192.0.2.2")));
        assert!(p.is_trusted(ip("::1")));
        let err = TrustedProxies::parse(["10.0.0.0/33"])
            .unwrap_err()
            .to_string();
        assert!(err.contains("10.0.0.0/33"), "{err}");
    }
}
