//! Which URLs a subscription may deliver to: the service posts wherever a subscriber asks, so
//! the URL rules are what keeps a subscription from reaching the service's own network
//! (server-side request forgery).
//!
//! Absolute http(s) URLs of at most [`MAX_URL_LEN`] characters, without user name or
//! password. Cloud metadata endpoints and link-local addresses (169.254.0.0/16, fe80::/10) are
//! always refused, as is any address that is not unicast; loopback, private and other
//! non-public ranges (10/8, 172.16/12, 192.168/16, 127/8, 100.64/10, 0/8, fc00::/7, ::1, the
//! documentation and reserved ranges) only with `allow_private`
//! (`ORDERS_ALLOW_PRIVATE_SUBSCRIBERS=true`, for tests and local development). An IPv6
//! address that carries an IPv4 one (mapped, compatible, NAT64, 6to4) is judged by that one
//! too, so `::ffff:169.254.169.254` is no way around the rules.
//!
//! A host name is resolved when the subscription is created and every address it resolves to
//! must pass. Since DNS may answer otherwise later, the delivery client resolves through
//! [`CheckedResolver`], which applies the same rule to every connection it opens, and follows
//! no redirects: a name rebound to a refused address reaches nothing.

use reqwest::Url;
use reqwest::dns::{Addrs, Name, Resolve, Resolving};
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};
use std::time::Duration;

/// The longest subscriber URL accepted, in characters.
pub const MAX_URL_LEN: usize = 2048;

/// How long resolving a subscriber's host may take when the subscription is created.
const RESOLVE_TIMEOUT: Duration = Duration::from_secs(5);

/// Host names of cloud metadata services (compared without a trailing dot, case-insensitively).
const METADATA_HOSTS: [&str; 2] = ["metadata.google.internal", "metadata.goog"];

/// Cloud metadata addresses: AWS, GCP and Azure (IPv4 and AWS's IPv6), Alibaba Cloud.
const METADATA_ADDRS: [IpAddr; 3] = [
    IpAddr::V4(Ipv4Addr::new(169, 254, 169, 254)),
    IpAddr::V6(Ipv6Addr::new(0xfd00, 0xec2, 0, 0, 0, 0, 0, 0x254)),
    IpAddr::V4(Ipv4Addr::new(100, 100, 100, 200)),
];

/// Why a subscriber URL is refused; the message completes "url ...".
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum UrlRefused {
    #[error("must be at most {MAX_URL_LEN} characters")]
    TooLong,
    #[error("is not an absolute URL ({0})")]
    NotAUrl(String),
    #[error("must be an http or https URL")]
    Scheme,
    #[error("must name a host")]
    NoHost,
    #[error("must not carry a user name or password")]
    UserInfo,
    #[error("names a cloud metadata service ({0}), which is never allowed")]
    Metadata(String),
    #[error("reaches {0}, a link-local address, which is never allowed")]
    LinkLocal(IpAddr),
    #[error("reaches {0}, which is not a unicast address")]
    NotUnicast(IpAddr),
    #[error(
        "reaches {0}, a loopback or private address, allowed only with ORDERS_ALLOW_PRIVATE_SUBSCRIBERS=true"
    )]
    Private(IpAddr),
    #[error("names the host {0}, which does not resolve")]
    Unresolved(String),
}

/// What kind of place an address is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Reach {
    Public,
    Private,
    LinkLocal,
    Metadata,
    NotUnicast,
}

fn in_v4(ip: Ipv4Addr, net: [u8; 4], bits: u32) -> bool {
    let mask = u32::MAX.checked_shl(32 - bits).unwrap_or(0);
    u32::from(ip) & mask == u32::from(Ipv4Addr::from(net)) & mask
}

fn reach_v4(ip: Ipv4Addr) -> Reach {
    if METADATA_ADDRS.contains(&IpAddr::V4(ip)) {
        return Reach::Metadata;
    }
    if ip.is_link_local() {
        return Reach::LinkLocal;
    }
    if ip.is_multicast() || ip.is_broadcast() {
        return Reach::NotUnicast;
    }
    let not_public = [
        ([0, 0, 0, 0], 8),
        ([10, 0, 0, 0], 8),
        ([100, 64, 0, 0], 10),
        ([127, 0, 0, 0], 8),
        ([172, 16, 0, 0], 12),
        ([192, 0, 0, 0], 24),
        ([192, 0, 2, 0], 24),
        ([192, 168, 0, 0], 16),
        ([198, 18, 0, 0], 15),
        ([198, 51, 100, 0], 24),
        ([203, 0, 113, 0], 24),
        ([240, 0, 0, 0], 4),
    ];
    if not_public.iter().any(|(net, bits)| in_v4(ip, *net, *bits)) {
        Reach::Private
    } else {
        Reach::Public
    }
}

/// The IPv4 address an IPv6 one carries, if any: mapped (`::ffff:a.b.c.d`), compatible
/// (`::a.b.c.d`), NAT64 (`64:ff9b::/96`) or 6to4 (`2002:AABB:CCDD::/48`).
fn embedded_v4(ip: Ipv6Addr) -> Option<Ipv4Addr> {
    let s = ip.segments();
    let tail = Ipv4Addr::new((s[6] >> 8) as u8, s[6] as u8, (s[7] >> 8) as u8, s[7] as u8);
    match s {
        [0, 0, 0, 0, 0, 0xffff, _, _] | [0x64, 0xff9b, 0, 0, 0, 0, _, _] => Some(tail),
        [0, 0, 0, 0, 0, 0, hi, _] if hi != 0 => Some(tail),
        [0x2002, a, b, ..] => Some(Ipv4Addr::new(
            (a >> 8) as u8,
            a as u8,
            (b >> 8) as u8,
            b as u8,
        )),
        _ => None,
    }
}

fn reach_v6(ip: Ipv6Addr) -> Reach {
    if METADATA_ADDRS.contains(&IpAddr::V6(ip)) {
        return Reach::Metadata;
    }
    let first = ip.segments()[0];
    if first & 0xffc0 == 0xfe80 {
        return Reach::LinkLocal;
    }
    if ip.is_multicast() {
        return Reach::NotUnicast;
    }
    if let Some(v4) = embedded_v4(ip) {
        let inner = reach_v4(v4);
        // A translated address is no more public than the one it carries.
        return if inner == Reach::Public && first == 0 {
            Reach::Private
        } else {
            inner
        };
    }
    let not_public = ip.is_loopback()
        || ip.is_unspecified()
        || first & 0xfe00 == 0xfc00 // unique local
        || first & 0xffc0 == 0xfec0 // site-local (deprecated)
        || (first == 0x2001 && ip.segments()[1] == 0x0db8) // documentation
        || ip.segments()[..4] == [0x100, 0, 0, 0]; // discard
    if not_public {
        Reach::Private
    } else {
        Reach::Public
    }
}

/// The subscriber URL rules, with or without the private ranges.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct UrlPolicy {
    pub allow_private: bool,
}

impl UrlPolicy {
    /// Whether the service may connect to `ip`.
    pub fn check_ip(&self, ip: IpAddr) -> Result<(), UrlRefused> {
        let reach = match ip {
            IpAddr::V4(v4) => reach_v4(v4),
            IpAddr::V6(v6) => reach_v6(v6),
        };
        match reach {
            Reach::Public => Ok(()),
            Reach::Private if self.allow_private => Ok(()),
            Reach::Private => Err(UrlRefused::Private(ip)),
            Reach::LinkLocal => Err(UrlRefused::LinkLocal(ip)),
            Reach::Metadata => Err(UrlRefused::Metadata(ip.to_string())),
            Reach::NotUnicast => Err(UrlRefused::NotUnicast(ip)),
        }
    }

    /// Every rule that needs no DNS: the URL's form, a metadata host name, and the address
    /// when the host is one. Returns the URL as it is stored and requested (normalised).
    pub fn check_form(&self, raw: &str) -> Result<Url, UrlRefused> {
        if raw.chars().count() > MAX_URL_LEN {
            return Err(UrlRefused::TooLong);
        }
        let url = Url::parse(raw).map_err(|e| UrlRefused::NotAUrl(e.to_string()))?;
        if !matches!(url.scheme(), "http" | "https") {
            return Err(UrlRefused::Scheme);
        }
        if !url.username().is_empty() || url.password().is_some() {
            return Err(UrlRefused::UserInfo);
        }
        match host(&url)? {
            Host::Ip(ip) => self.check_ip(ip)?,
            Host::Name(name) => check_name(name)?,
        }
        Ok(url)
    }

    /// [`UrlPolicy::check_form`], then the addresses the host resolves to (all must pass).
    pub async fn check(&self, raw: &str) -> Result<Url, UrlRefused> {
        let url = self.check_form(raw)?;
        if let Host::Name(name) = host(&url)? {
            let resolved = tokio::time::timeout(RESOLVE_TIMEOUT, self.resolve(name)).await;
            resolved.unwrap_or_else(|_| Err(UrlRefused::Unresolved(name.to_owned())))?;
        }
        Ok(url)
    }

    /// The addresses of `host` (port 0), if every one passes.
    pub async fn resolve(&self, host: &str) -> Result<Vec<SocketAddr>, UrlRefused> {
        check_name(host)?;
        let unresolved = || UrlRefused::Unresolved(host.to_owned());
        let addrs: Vec<SocketAddr> = tokio::net::lookup_host((host, 0))
            .await
            .map_err(|_| unresolved())?
            .collect();
        if addrs.is_empty() {
            return Err(unresolved());
        }
        for addr in &addrs {
            self.check_ip(addr.ip())?;
        }
        Ok(addrs)
    }
}

/// A URL's host: an address, or a name to resolve.
enum Host<'a> {
    Ip(IpAddr),
    Name(&'a str),
}

/// The parser has already turned every IPv4 spelling (`2130706433`, `0x7f.1`) into the
/// dotted form, and IPv6 comes in brackets, so what does not parse as an address is a name.
fn host(url: &Url) -> Result<Host<'_>, UrlRefused> {
    let text = url
        .host_str()
        .filter(|h| !h.is_empty())
        .ok_or(UrlRefused::NoHost)?;
    let bare = text.trim_start_matches('[').trim_end_matches(']');
    Ok(bare.parse().map_or(Host::Name(text), Host::Ip))
}

fn check_name(name: &str) -> Result<(), UrlRefused> {
    let bare = name.trim_end_matches('.').to_ascii_lowercase();
    if METADATA_HOSTS.contains(&bare.as_str()) {
        Err(UrlRefused::Metadata(bare))
    } else {
        Ok(())
    }
}

/// The delivery client's resolver: [`UrlPolicy::resolve`] for every connection.
#[derive(Debug, Clone)]
pub struct CheckedResolver(pub UrlPolicy);

impl Resolve for CheckedResolver {
    fn resolve(&self, name: Name) -> Resolving {
        let policy = self.0;
        let host = name.as_str().to_owned();
        Box::pin(async move {
            let addrs = policy.resolve(&host).await?;
            Ok(Box::new(addrs.into_iter()) as Addrs)
        })
    }
}

#[cfg(test)]
mod tests;
