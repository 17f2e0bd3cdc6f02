//! Where deliveries may go. A tenant chooses the URL and the request
//! leaves from the service's network, so by default moderato refuses
//! addresses that reach inside it: loopback, private ranges, link-local
//! (where cloud metadata services answer), carrier-grade NAT, unique-local
//! and site-local IPv6, unspecified, multicast and broadcast, and the IPv4
//! forms of them hidden in IPv6 (mapped, compatible, NAT64). The check is
//! made on the addresses the name resolves to, and the connection goes to
//! an address that passed (never a second resolution, which a rebinding
//! DNS server could answer differently). Redirects are not followed.
//! `--webhook-allow-private` lifts the check for tests and private
//! deployments.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};

/// Whether private destinations are allowed (`--webhook-allow-private`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AddressPolicy {
    PublicOnly,
    AllowPrivate,
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SsrfError {
    #[error("the host does not resolve")]
    Unresolved,
    #[error("the host resolves to {0}, an address inside the service's network")]
    Forbidden(IpAddr),
}

/// Whether `ip` reaches somewhere a tenant must not send requests to.
pub fn is_internal(ip: IpAddr) -> bool {
    match ip {
        IpAddr::V4(v4) => internal_v4(v4),
        IpAddr::V6(v6) => internal_v6(v6),
    }
}

fn internal_v4(ip: Ipv4Addr) -> bool {
    let [a, b, ..] = ip.octets();
    ip.is_loopback()
        || ip.is_private()
        || ip.is_link_local()
        || ip.is_unspecified()
        || ip.is_broadcast()
        || ip.is_multicast()
        || a == 0
        // Carrier-grade NAT (RFC 6598), often the provider's own network.
        || (a == 100 && (64..128).contains(&b))
        // IETF protocol assignments (192.0.0.0/24) and reserved 240/4.
        || (a == 192 && b == 0 && ip.octets()[2] == 0)
        || a >= 240
}

fn internal_v6(ip: Ipv6Addr) -> bool {
    if let Some(v4) = ip.to_ipv4_mapped() {
        return internal_v4(v4);
    }
    let segments = ip.segments();
    // IPv4-compatible (::a.b.c.d) and NAT64 (64:ff9b::/96) forms.
    if segments[..6] == [0; 6] && !ip.is_loopback() && !ip.is_unspecified() {
        let [.., hi, lo] = segments;
        return internal_v4(Ipv4Addr::from((u32::from(hi) << 16) | u32::from(lo)));
    }
    if segments[..6] == [0x64, 0xff9b, 0, 0, 0, 0] {
        let [.., hi, lo] = segments;
        return internal_v4(Ipv4Addr::from((u32::from(hi) << 16) | u32::from(lo)));
    }
    ip.is_loopback()
        || ip.is_unspecified()
        || ip.is_multicast()
        // Unique local fc00::/7, link-local fe80::/10, site-local fec0::/10.
        || (segments[0] & 0xfe00) == 0xfc00
        || (segments[0] & 0xffc0) == 0xfe80
        || (segments[0] & 0xffc0) == 0xfec0
}

/// The addresses `host:port` may be delivered to: all it resolves to, or
/// an error naming the first internal one (one bad answer refuses the
/// host: a name that points inside the network is not a receiver).
pub async fn resolve(
    host: &str,
    port: u16,
    policy: AddressPolicy,
) -> Result<Vec<SocketAddr>, SsrfError> {
    let addrs: Vec<SocketAddr> = tokio::net::lookup_host((host, port))
        .await
        .map_err(|_| SsrfError::Unresolved)?
        .collect();
    if addrs.is_empty() {
        return Err(SsrfError::Unresolved);
    }
    if policy == AddressPolicy::PublicOnly
        && let Some(bad) = addrs.iter().find(|a| is_internal(a.ip()))
    {
        return Err(SsrfError::Forbidden(bad.ip()));
    }
    Ok(addrs)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn internal_addresses_are_refused_in_every_spelling() {
        for internal in [
            "127.0.0.1",
            "127.10.0.3",
            "10.0.0.5",
            "172.16.9.1",
            "192.168.1.1",
            "169.254.169.254",
            "100.64.0.1",
            "0.0.0.0",
            "0.1.2.3",
            "255.255.255.255",
            "224.0.0.1",
            "192.0.0.170",
            "240.0.0.1",
            "::1",
            "::",
            "::ffff:127.0.0.1",
            "::ffff:169.254.169.254",
            "::10.0.0.1",
            "64:ff9b::a9fe:a9fe",
            "fc00::1",
            "fd12:3456::1",
            "fe80::1",
            "fec0::1",
            "ff02::1",
        ] {
            assert!(is_internal(internal.parse().unwrap()), "{internal}");
        }
        for public in [
            "8.8.8.8",
            "41.202.219.74",
            "100.128.0.1",
            "172.32.0.1",
            "192.0.2.1",
            "2001:4860:4860::8888",
            "::ffff:8.8.8.8",
            "64:ff9b::808:808",
        ] {
            assert!(!is_internal(public.parse().unwrap()), "{public}");
        }
    }

    #[tokio::test]
    async fn names_are_checked_after_resolution() {
        assert_eq!(
            resolve("localhost", 443, AddressPolicy::PublicOnly).await,
            Err(SsrfError::Forbidden(
                tokio::net::lookup_host(("localhost", 443))
                    .await
                    .unwrap()
                    .next()
                    .unwrap()
                    .ip()
            ))
        );
        let allowed = resolve("127.0.0.1", 8080, AddressPolicy::AllowPrivate)
            .await
            .unwrap();
        assert_eq!(allowed, ["127.0.0.1:8080".parse::<SocketAddr>().unwrap()]);
        assert_eq!(
            resolve("no-such-host.invalid", 443, AddressPolicy::PublicOnly).await,
            Err(SsrfError::Unresolved)
        );
    }
}
