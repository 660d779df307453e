//! Who is calling: the client's address (through trusted proxies only) and its network
//! fingerprint, the identity anonymous caps and idempotency are keyed on.

use std::net::IpAddr;

use ipnet::IpNet;
use sha2::{Digest, Sha256};

/// The caller of one request, resolved once by a middleware and read by handlers.
#[derive(Debug, Clone)]
pub struct Client {
    pub ip: IpAddr,
    /// Keyed hash of the caller's /24 (IPv4) or /48 (IPv6) subnet, 32 hex characters.
    pub fingerprint: String,
}

/// Resolves clients from the TCP peer and `X-Forwarded-For`.
#[derive(Debug, Clone)]
pub struct ClientResolver {
    trusted_proxies: Vec<IpNet>,
    /// Mixed into every fingerprint so a stored fingerprint does not reveal the subnet
    /// (there are only 2^24 IPv4 /24s to try).
    key: [u8; 32],
}

impl ClientResolver {
    pub fn new(trusted_proxies: Vec<IpNet>, secret: &[u8]) -> Self {
        let key = Sha256::new()
            .chain_update(b"instanode fingerprint key\0")
            .chain_update(secret)
            .finalize()
            .into();
        Self {
            trusted_proxies,
            key,
        }
    }

    pub fn resolve(&self, peer: IpAddr, forwarded_for: Option<&str>) -> Client {
        let ip = self.client_ip(peer, forwarded_for);
        Client {
            ip,
            fingerprint: self.fingerprint(ip),
        }
    }

    /// The peer, unless it is a trusted proxy: then the rightmost `X-Forwarded-For` hop
    /// that is not itself trusted (hops to its left could be forged by the client).
    fn client_ip(&self, peer: IpAddr, forwarded_for: Option<&str>) -> IpAddr {
        let peer = canonical(peer);
        if !self.is_trusted(peer) {
            return peer;
        }
        let mut client = peer;
        let hops = forwarded_for.unwrap_or_default().rsplit(',');
        for hop in hops.map(str::trim).filter(|h| !h.is_empty()) {
            let Ok(ip) = hop.parse::<IpAddr>().map(canonical) else {
                // Garbage from the client side: trust nothing beyond the last good hop.
                break;
            };
            client = ip;
            if !self.is_trusted(ip) {
                break;
            }
        }
        client
    }

    fn is_trusted(&self, ip: IpAddr) -> bool {
        self.trusted_proxies.iter().any(|net| net.contains(&ip))
    }

    fn fingerprint(&self, ip: IpAddr) -> String {
        let subnet: Vec<u8> = match ip {
            IpAddr::V4(v4) => {
                let mut bytes = vec![4];
                bytes.extend_from_slice(&v4.octets()[..3]);
                bytes
            }
            IpAddr::V6(v6) => {
                let mut bytes = vec![6];
                bytes.extend_from_slice(&v6.octets()[..6]);
                bytes
            }
        };
        let digest = Sha256::new()
            .chain_update(self.key)
            .chain_update(&subnet)
            .finalize();
        hex::encode(&digest[..16])
    }
}

/// IPv4-mapped IPv6 addresses (`::ffff:a.b.c.d`) count as the IPv4 address.
fn canonical(ip: IpAddr) -> IpAddr {
    match ip {
        IpAddr::V6(v6) => v6.to_ipv4_mapped().map_or(ip, IpAddr::V4),
        v4 => v4,
    }
}

/// Parses a comma-separated CIDR list (`10.0.0.0/8, ::1/128`); bare addresses are /32 or /128.
pub fn parse_cidrs<S: AsRef<str>>(items: &[S]) -> anyhow::Result<Vec<IpNet>> {
    items
        .iter()
        .flat_map(|item| item.as_ref().split(','))
        .map(str::trim)
        .filter(|s| !s.is_empty())
        .map(|s| {
            s.parse::<IpNet>()
                .or_else(|_| s.parse::<IpAddr>().map(IpNet::from))
                .map_err(|_| anyhow::anyhow!("`{s}` is not a CIDR such as 10.0.0.0/8"))
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ip(s: &str) -> IpAddr {
        s.parse().unwrap()
    }

    fn resolver(trusted: &[&str]) -> ClientResolver {
        ClientResolver::new(parse_cidrs(trusted).unwrap(), b"secret")
    }

    #[test]
    fn forwarded_for_is_ignored_from_untrusted_peers() {
        let r = resolver(&[]);
        assert_eq!(
            r.resolve(ip("203.0.113.9"), Some("1.2.3.4")).ip,
            ip("203.0.113.9")
        );
    }

    #[test]
    fn the_rightmost_untrusted_hop_is_the_client() {
        let r = resolver(&["10.0.0.0/8", "127.0.0.1"]);
        let forwarded = Some("6.6.6.6, 198.51.100.7, 10.1.2.3");
        assert_eq!(r.resolve(ip("127.0.0.1"), forwarded).ip, ip("198.51.100.7"));
        // Only trusted hops: the leftmost one is the best we know.
        assert_eq!(
            r.resolve(ip("127.0.0.1"), Some("10.9.9.9")).ip,
            ip("10.9.9.9")
        );
        // A garbage hop stops the walk at the last good one.
        assert_eq!(
            r.resolve(ip("127.0.0.1"), Some("198.51.100.7, junk")).ip,
            ip("127.0.0.1")
        );
        assert_eq!(
            r.resolve(ip("::ffff:127.0.0.1"), Some("192.0.2.1")).ip,
            ip("192.0.2.1")
        );
    }

    #[test]
    fn fingerprints_cover_a_subnet() {
        let r = resolver(&[]);
        let fp = |s: &str| r.resolve(ip(s), None).fingerprint;
        assert_eq!(fp("192.0.2.1"), fp("192.0.2.254"));
        assert_ne!(fp("192.0.2.1"), fp("192.0.3.1"));
        assert_eq!(fp("2001:db8:1::1"), fp("2001:db8:1:ffff::2"));
        assert_ne!(fp("2001:db8:1::1"), fp("2001:db8:2::1"));
        assert_eq!(fp("192.0.2.1").len(), 32);
        let other_key = ClientResolver::new(vec![], b"other");
        assert_ne!(
            fp("192.0.2.1"),
            other_key.resolve(ip("192.0.2.1"), None).fingerprint
        );
    }

    #[test]
    fn bad_cidrs_are_refused() {
        assert!(parse_cidrs(&["10.0.0.0/33"]).is_err());
        assert_eq!(parse_cidrs(&["10.0.0.0/8, ::1", ""]).unwrap().len(), 2);
    }
}
