//! The shopper's IP address: the peer's, or, behind proxies we configured as trusted,
//! the right-most `X-Forwarded-For` hop that is not one of them. The left-most entry is
//! whatever the client wrote, so it is never trusted.

use std::net::IpAddr;

use actix_web::HttpRequest;
use ipnet::IpNet;

#[derive(Debug, Clone, Default)]
pub struct ForwardedFor {
    trusted: Vec<IpNet>,
}

impl ForwardedFor {
    pub fn new(trusted: Vec<IpNet>) -> ForwardedFor {
        ForwardedFor { trusted }
    }

    fn is_trusted(&self, ip: IpAddr) -> bool {
        self.trusted.iter().any(|net| net.contains(&ip))
    }

    /// The client's address given the peer and the `X-Forwarded-For` values in order.
    pub fn client(&self, peer: IpAddr, forwarded: &[&str]) -> IpAddr {
        if !self.is_trusted(peer) {
            return peer;
        }
        let hops = forwarded.iter().flat_map(|v| v.split(',')).map(str::trim);
        let mut client = peer;
        for hop in hops.collect::<Vec<_>>().into_iter().rev() {
            match parse_ip(hop) {
                Some(ip) => {
                    client = ip;
                    if !self.is_trusted(ip) {
                        return ip;
                    }
                }
                // A hop we cannot read: whoever wrote it is not to be believed further.
                None => return client,
            }
        }
        client
    }
}

fn parse_ip(s: &str) -> Option<IpAddr> {
    s.parse::<IpAddr>()
        .ok()
        .or_else(|| s.parse::<std::net::SocketAddr>().ok().map(|a| a.ip()))
}

/// The shopper's IP, as text for the sidecar and the limiter.
pub fn client_ip(req: &HttpRequest, trust: &ForwardedFor) -> Option<String> {
    let peer = req.peer_addr()?.ip();
    let forwarded: Vec<&str> = req
        .headers()
        .get_all("x-forwarded-for")
        .filter_map(|v| v.to_str().ok())
        .collect();
    Some(trust.client(peer, &forwarded).to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ip(s: &str) -> IpAddr {
        s.parse().expect("ip")
    }

    #[test]
    fn only_hops_added_by_trusted_proxies_are_believed() {
        let none = ForwardedFor::default();
        assert_eq!(none.client(ip("10.0.0.5"), &["1.2.3.4"]), ip("10.0.0.5"));

        let proxy = ForwardedFor::new(vec!["10.0.0.0/8".parse().expect("net")]);
        // The client wrote a fake first entry; our proxy appended the real peer.
        assert_eq!(proxy.client(ip("10.0.0.5"), &["6.6.6.6, 1.2.3.4"]), ip("1.2.3.4"));
        assert_eq!(
            proxy.client(ip("10.0.0.5"), &["6.6.6.6", "1.2.3.4, 10.0.0.7"]),
            ip("1.2.3.4")
        );
        assert_eq!(proxy.client(ip("10.0.0.5"), &["garbage, 1.2.3.4"]), ip("1.2.3.4"));
        assert_eq!(proxy.client(ip("10.0.0.5"), &["1.2.3.4, garbage"]), ip("10.0.0.5"));
        assert_eq!(proxy.client(ip("10.0.0.5"), &[]), ip("10.0.0.5"));
        // Not from the proxy: the header is the client's own words.
        assert_eq!(proxy.client(ip("8.8.8.8"), &["1.2.3.4"]), ip("8.8.8.8"));
    }
}
