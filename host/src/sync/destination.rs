//! Where a tenant's CRM events may go: the public internet only, unless the
//! operator says otherwise.
//!
//! A tenant chooses its endpoint URLs, so without a check a tenant key could
//! make the host POST to its own loopback services, the cloud metadata
//! address (169.254.169.254) or the operator's private network (SSRF). The
//! check runs where the connection is made — on every address a name
//! resolves to, at connect time, so a name that resolves to a public
//! address at creation and a private one later (DNS rebinding) is still
//! refused — and on every redirect. No proxy is used: a proxy would resolve
//! the name itself, out of the check's sight.

use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;
use std::time::Duration;

use reqwest::dns::{Addrs, Name, Resolve, Resolving};

/// Redirects followed at most.
const MAX_REDIRECTS: usize = 5;

/// Why a destination is refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error(
    "{0} is an internal address (loopback, private, link-local or reserved); the operator has not allowed internal CRM destinations (sync.allow_internal_destinations)"
)]
pub struct InternalDestination(pub String);

/// Loopback, private, link-local, carrier-grade NAT, unspecified,
/// multicast, broadcast, documentation and other reserved ranges — any
/// address that is not a public unicast address on the internet.
pub fn is_internal(ip: IpAddr) -> bool {
    match ip {
        IpAddr::V4(v4) => {
            let [a, b, c, _] = v4.octets();
            v4.is_loopback()
                || v4.is_private()
                || v4.is_link_local()
                || v4.is_unspecified()
                || v4.is_multicast()
                || v4.is_broadcast()
                || v4.is_documentation()
                || a == 0
                || (a == 100 && (64..128).contains(&b)) // shared address space (CGNAT)
                || (a == 192 && b == 0 && c == 0) // IETF protocol assignments
                || (a == 198 && (b == 18 || b == 19)) // benchmarking
                || a >= 240 // reserved
        }
        IpAddr::V6(v6) => {
            if let Some(v4) = v6.to_ipv4_mapped() {
                return is_internal(IpAddr::V4(v4));
            }
            let first = v6.segments()[0];
            v6.is_loopback()
                || v6.is_unspecified()
                || v6.is_multicast()
                || (first & 0xfe00) == 0xfc00 // unique local
                || (first & 0xffc0) == 0xfe80 // link-local
                || (first & 0xffc0) == 0xfec0 // site-local (deprecated)
                || first == 0x2001 && v6.segments()[1] == 0x0db8 // documentation
                || first == 0x0064 && v6.segments()[1] == 0xff9b // NAT64 of any IPv4
        }
    }
}

/// Refuses a URL whose host is written as an internal address (or
/// `localhost`), which no resolver sees. Names are checked at connect time.
pub fn check_url(url: &reqwest::Url) -> Result<(), InternalDestination> {
    match url.host() {
        Some(url::Host::Ipv4(ip)) if is_internal(IpAddr::V4(ip)) => Err(InternalDestination(ip.to_string())),
        Some(url::Host::Ipv6(ip)) if is_internal(IpAddr::V6(ip)) => Err(InternalDestination(ip.to_string())),
        Some(url::Host::Domain(name)) if is_localhost(name) => Err(InternalDestination(name.to_string())),
        _ => Ok(()),
    }
}

fn is_localhost(name: &str) -> bool {
    let name = name.trim_end_matches('.').to_ascii_lowercase();
    name == "localhost" || name.ends_with(".localhost")
}

/// A resolver that answers only with public addresses.
struct PublicOnly;

impl Resolve for PublicOnly {
    fn resolve(&self, name: Name) -> Resolving {
        let host = name.as_str().to_string();
        Box::pin(async move {
            if is_localhost(&host) {
                return Err(InternalDestination(host).into());
            }
            let resolved: Vec<SocketAddr> = tokio::net::lookup_host((host.as_str(), 0)).await?.collect();
            let public: Vec<SocketAddr> = resolved.iter().copied().filter(|a| !is_internal(a.ip())).collect();
            if public.is_empty() {
                let shown = resolved.first().map_or(host.clone(), |a| format!("{host} ({})", a.ip()));
                return Err(InternalDestination(shown).into());
            }
            Ok(Box::new(public.into_iter()) as Addrs)
        })
    }
}

/// The HTTP client CRM deliveries use: public destinations only, unless
/// `allow_internal`.
pub fn client(timeout: Duration, allow_internal: bool) -> reqwest::Result<reqwest::Client> {
    let builder = reqwest::Client::builder()
        .timeout(timeout)
        .user_agent(concat!("switchboard/", env!("CARGO_PKG_VERSION")))
        .no_proxy();
    if allow_internal {
        return builder.redirect(reqwest::redirect::Policy::limited(MAX_REDIRECTS)).build();
    }
    let redirects = reqwest::redirect::Policy::custom(|attempt| {
        if attempt.previous().len() >= MAX_REDIRECTS {
            return attempt.error(format!("more than {MAX_REDIRECTS} redirects"));
        }
        match check_url(attempt.url()) {
            Ok(()) => attempt.follow(),
            Err(e) => attempt.error(e),
        }
    });
    builder.redirect(redirects).dns_resolver(Arc::new(PublicOnly)).build()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn internal_ranges_are_recognised() {
        for internal in [
            "127.0.0.1",
            "10.1.2.3",
            "172.16.0.1",
            "192.168.1.1",
            "169.254.169.254",
            "100.64.0.1",
            "0.0.0.0",
            "255.255.255.255",
            "::1",
            "fd00::1",
            "fe80::1",
            "::ffff:127.0.0.1",
            "::ffff:169.254.169.254",
            "64:ff9b::a9fe:a9fe",
        ] {
            assert!(is_internal(internal.parse().unwrap()), "{internal}");
        }
        for public in ["8.8.8.8", "1.1.1.1", "2606:4700:4700::1111", "100.128.0.1", "172.32.0.1"] {
            assert!(!is_internal(public.parse().unwrap()), "{public}");
        }
    }

    #[test]
    fn literal_internal_hosts_are_refused_before_any_lookup() {
        for url in ["http://127.0.0.1:9/x", "http://[::1]/", "http://169.254.169.254/latest", "http://LOCALHOST./"] {
            assert!(check_url(&url.parse().unwrap()).is_err(), "{url}");
        }
        assert!(check_url(&"https://crm.example.com/hook".parse().unwrap()).is_ok());
    }
}
