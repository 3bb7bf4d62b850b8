//! The client's address behind reverse proxies the operator trusts
//! (`WANGGE_TRUSTED_PROXIES`): what the login throttle counts per address.
//!
//! Without trusted proxies the address is the TCP peer's, whatever a request's
//! headers say (a client can write any `X-Forwarded-For`). When the peer is a trusted
//! proxy, `X-Forwarded-For` is read from the right — each proxy appends the address it
//! received the request from — and the first address that is not a trusted proxy is
//! the client; entries to its left were written by the client and are not believed.

use std::net::IpAddr;
use std::sync::Arc;

use axum::http::HeaderMap;
use ipnet::IpNet;

/// The client's address of a request, as the listener resolved it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ClientAddr(pub IpAddr);

/// The reverse proxies whose `X-Forwarded-For` is believed.
#[derive(Debug, Clone, Default)]
pub struct TrustedProxies(Arc<Vec<IpNet>>);

impl TrustedProxies {
    /// Parses a comma-separated list of addresses and CIDR networks
    /// (`10.0.0.0/8, 192.168.1.7, ::1`); the empty text trusts none.
    pub fn parse(text: &str) -> Result<TrustedProxies, String> {
        let mut nets = Vec::new();
        for item in text.split(',').map(str::trim).filter(|s| !s.is_empty()) {
            let net = match item.parse::<IpNet>() {
                Ok(net) => net,
                Err(_) => IpNet::from(item.parse::<IpAddr>().map_err(|_| {
                    format!("{item:?} is neither an IP address nor a CIDR network")
                })?),
            };
            nets.push(net);
        }
        Ok(TrustedProxies(Arc::new(nets)))
    }

    fn trusts(&self, address: IpAddr) -> bool {
        let address = address.to_canonical();
        self.0.iter().any(|net| net.contains(&address))
    }

    /// The client of a request that came from `peer` with `headers`.
    pub fn client_of(&self, peer: IpAddr, headers: &HeaderMap) -> IpAddr {
        if !self.trusts(peer) {
            return peer;
        }
        let mut client = peer;
        // Several headers are one list, in order.
        let hops: Vec<&str> = headers
            .get_all("x-forwarded-for")
            .iter()
            .filter_map(|v| v.to_str().ok())
            .flat_map(|v| v.split(','))
            .map(str::trim)
            .collect();
        for hop in hops.iter().rev() {
            let Ok(address) = hop.parse::<IpAddr>() else {
                // Not an address: nothing left of it can be believed; the trusted
                // hop that passed it on is the client as far as we know.
                break;
            };
            client = address;
            if !self.trusts(address) {
                break;
            }
        }
        client
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn headers(values: &[&str]) -> HeaderMap {
        let mut map = HeaderMap::new();
        for v in values {
            map.append("x-forwarded-for", v.parse().expect("header"));
        }
        map
    }

    fn ip(text: &str) -> IpAddr {
        text.parse().expect("address")
    }

    #[test]
    fn an_untrusted_peer_is_the_client_whatever_it_says() {
        let none = TrustedProxies::default();
        assert_eq!(
            none.client_of(ip("203.0.113.9"), &headers(&["198.51.100.1"])),
            ip("203.0.113.9")
        );
        let proxies = TrustedProxies::parse("10.0.0.0/8").expect("parse");
        assert_eq!(
            proxies.client_of(ip("203.0.113.9"), &headers(&["198.51.100.1"])),
            ip("203.0.113.9")
        );
    }

    #[test]
    fn behind_trusted_proxies_the_first_untrusted_hop_from_the_right_is_the_client() {
        let proxies = TrustedProxies::parse(" 10.0.0.0/8, 192.168.1.7 ,::1").expect("parse");
        // The client wrote 1.1.1.1 itself; the edge proxy appended 203.0.113.5.
        let forwarded = headers(&["1.1.1.1, 203.0.113.5", "10.1.2.3"]);
        assert_eq!(
            proxies.client_of(ip("192.168.1.7"), &forwarded),
            ip("203.0.113.5")
        );
        // No header: the proxy itself.
        assert_eq!(
            proxies.client_of(ip("10.0.0.1"), &HeaderMap::new()),
            ip("10.0.0.1")
        );
        // Every hop trusted: the leftmost.
        assert_eq!(
            proxies.client_of(ip("::1"), &headers(&["10.9.9.9"])),
            ip("10.9.9.9")
        );
        // Garbage stops the walk at the last believable hop.
        assert_eq!(
            proxies.client_of(ip("10.0.0.1"), &headers(&["nonsense, 10.2.2.2"])),
            ip("10.2.2.2")
        );
        // An IPv4 peer seen as IPv6 (a dual-stack socket) is still trusted.
        assert_eq!(
            proxies.client_of(ip("::ffff:10.0.0.1"), &headers(&["203.0.113.5"])),
            ip("203.0.113.5")
        );
    }

    #[test]
    fn a_bad_list_is_refused_with_the_item_named() {
        let error = TrustedProxies::parse("10.0.0.0/8, proxy.example").expect_err("bad");
        assert!(error.contains("proxy.example"), "{error}");
        assert!(TrustedProxies::parse("10.0.0.0/33").is_err());
        assert!(TrustedProxies::parse("").is_ok());
    }
}
