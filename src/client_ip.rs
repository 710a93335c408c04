//! The client's IP address, whether the server is reached directly or through a reverse
//! proxy (nginx): what the login limiter counts and what the request log shows.
//!
//! Decisions a newcomer must know:
//! - `X-Forwarded-For` is believed only when the TCP peer is one of `trusted_proxies`.
//!   Anyone can send the header; from an untrusted peer it is ignored, so a client cannot
//!   pick the address its rate limit is counted under.
//! - The header is read from the right. Each trusted proxy appends the address it was
//!   connected from (nginx: `$proxy_add_x_forwarded_for`), so the rightmost entries are the
//!   ones our own proxies wrote; the client is the first address, from the right, that is not
//!   a trusted proxy. Entries left of it were written by the client and are never used.

use std::fmt;
use std::net::{IpAddr, SocketAddr};
use std::str::FromStr;
use std::sync::Arc;

use axum::extract::{ConnectInfo, FromRequestParts};
use axum::http::request::Parts;
use axum::http::{HeaderMap, Request};
use ipnet::IpNet;
use serde::{Deserialize, Deserializer, Serialize, Serializer};

use crate::app::AppState;
use crate::error::AppError;

/// The header proxies append the address they were connected from to.
const X_FORWARDED_FOR: &str = "x-forwarded-for";

/// The reverse proxies whose `X-Forwarded-For` is believed: addresses (`10.0.0.5`, `::1`) or
/// networks (`10.0.0.0/8`). Empty (the default) believes no one: the client is the TCP peer.
#[derive(Clone, Default, PartialEq, Eq)]
pub struct TrustedProxies(Arc<[IpNet]>);

impl TrustedProxies {
    pub fn contains(&self, ip: IpAddr) -> bool {
        let ip = ip.to_canonical();
        self.0.iter().any(|net| net.contains(&ip))
    }
}

/// One entry of `trusted_proxies` was neither an address nor a network.
#[derive(Debug, thiserror::Error)]
#[error("trusted_proxies: {0:?} is neither an IP address nor a network like 10.0.0.0/8")]
pub struct BadProxyEntry(String);

impl FromStr for TrustedProxies {
    type Err = BadProxyEntry;

    /// A comma-separated list, as in `BALLPARK_TRUSTED_PROXIES=127.0.0.1,10.0.0.0/8`.
    fn from_str(list: &str) -> Result<Self, Self::Err> {
        Self::parse(list.split(',').map(str::trim).filter(|s| !s.is_empty()))
    }
}

impl TrustedProxies {
    fn parse<'a>(entries: impl IntoIterator<Item = &'a str>) -> Result<Self, BadProxyEntry> {
        entries
            .into_iter()
            .map(|entry| {
                let entry = entry.trim();
                entry
                    .parse::<IpNet>()
                    .or_else(|_| entry.parse::<IpAddr>().map(IpNet::from))
                    .map(|net| net.trunc())
                    .map_err(|_| BadProxyEntry(entry.to_string()))
            })
            .collect::<Result<Vec<_>, _>>()
            .map(|nets| TrustedProxies(nets.into()))
    }
}

impl fmt::Debug for TrustedProxies {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_list()
            .entries(self.0.iter().map(ToString::to_string))
            .finish()
    }
}

impl Serialize for TrustedProxies {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.collect_seq(self.0.iter().map(ToString::to_string))
    }
}

impl<'de> Deserialize<'de> for TrustedProxies {
    /// A TOML list (`["127.0.0.1", "10.0.0.0/8"]`) or one comma-separated string (what an
    /// environment variable naturally holds).
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        #[derive(Deserialize)]
        #[serde(untagged)]
        enum Raw {
            List(Vec<String>),
            One(String),
        }
        match Raw::deserialize(deserializer)? {
            Raw::List(entries) => Self::parse(entries.iter().map(String::as_str)),
            Raw::One(list) => list.parse(),
        }
        .map_err(serde::de::Error::custom)
    }
}

/// The client's address, given the TCP peer and the request's headers.
pub fn resolve(peer: IpAddr, headers: &HeaderMap, trusted: &TrustedProxies) -> IpAddr {
    let mut client = peer.to_canonical();
    if !trusted.contains(client) {
        return client;
    }
    // Several X-Forwarded-For headers are one list, in order (RFC 9110, 5.3).
    let hops: Vec<&str> = headers
        .get_all(X_FORWARDED_FOR)
        .iter()
        .filter_map(|value| value.to_str().ok())
        .flat_map(|value| value.split(','))
        .collect();
    for hop in hops.iter().rev() {
        // A hop that is not an address was not written by a proxy we trust: stop at the last
        // address we can vouch for rather than guess.
        let Ok(ip) = hop.trim().parse::<IpAddr>() else {
            break;
        };
        client = ip.to_canonical();
        if !trusted.contains(client) {
            break;
        }
    }
    client
}

/// The address of the request's sender, for logs: `None` when the server was not built
/// with connection info (some tests call the router directly).
pub fn of_request<B>(request: &Request<B>, trusted: &TrustedProxies) -> Option<IpAddr> {
    let ConnectInfo(peer) = request.extensions().get::<ConnectInfo<SocketAddr>>()?;
    Some(resolve(peer.ip(), request.headers(), trusted))
}

/// Extracts the client's address (see the module note on whom it trusts).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ClientIp(pub IpAddr);

impl FromRequestParts<AppState> for ClientIp {
    type Rejection = AppError;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, AppError> {
        let ConnectInfo(peer) = parts
            .extensions
            .get::<ConnectInfo<SocketAddr>>()
            .ok_or_else(|| {
                AppError::Internal(anyhow::anyhow!(
                    "the server was started without connection info (ConnectInfo<SocketAddr>)"
                ))
            })?;
        Ok(ClientIp(resolve(
            peer.ip(),
            &parts.headers,
            &state.config.trusted_proxies,
        )))
    }
}

#[cfg(test)]
mod tests {
    use axum::http::HeaderValue;

    use super::*;

    fn ip(s: &str) -> IpAddr {
        s.parse().unwrap()
    }

    fn forwarded(values: &[&str]) -> HeaderMap {
        let mut headers = HeaderMap::new();
        for value in values {
            headers.append(X_FORWARDED_FOR, HeaderValue::from_str(value).unwrap());
        }
        headers
    }

    #[test]
    fn an_untrusted_peer_is_the_client_whatever_its_header_says() {
        let trusted: TrustedProxies = "10.0.0.0/8".parse().unwrap();

        let client = resolve(ip("203.0.113.9"), &forwarded(&["198.51.100.1"]), &trusted);

        assert_eq!(client, ip("203.0.113.9"));
    }

    #[test]
    fn behind_a_trusted_proxy_the_rightmost_untrusted_hop_is_the_client() {
        let trusted: TrustedProxies = "127.0.0.1, 10.0.0.0/8".parse().unwrap();
        // The client forged the first entry; the load balancer (10.1.2.3) appended the real
        // client, and nginx (127.0.0.1, the peer) appended the load balancer.
        let headers = forwarded(&["6.6.6.6, 198.51.100.7", "10.1.2.3"]);

        let client = resolve(ip("127.0.0.1"), &headers, &trusted);

        assert_eq!(client, ip("198.51.100.7"));
    }

    #[test]
    fn a_trusted_peer_without_the_header_is_the_client() {
        let trusted: TrustedProxies = "127.0.0.1".parse().unwrap();

        assert_eq!(
            resolve(ip("127.0.0.1"), &HeaderMap::new(), &trusted),
            ip("127.0.0.1")
        );
    }

    #[test]
    fn a_hop_that_is_not_an_address_stops_the_walk_at_the_last_trusted_one() {
        let trusted: TrustedProxies = "127.0.0.1,10.0.0.0/8".parse().unwrap();

        let client = resolve(
            ip("127.0.0.1"),
            &forwarded(&["198.51.100.7, unknown, 10.0.0.2"]),
            &trusted,
        );

        assert_eq!(client, ip("10.0.0.2"));
    }

    #[test]
    fn ipv4_mapped_ipv6_peers_match_ipv4_entries() {
        let trusted: TrustedProxies = "127.0.0.1".parse().unwrap();

        let client = resolve(ip("::ffff:127.0.0.1"), &forwarded(&["192.0.2.4"]), &trusted);

        assert_eq!(client, ip("192.0.2.4"));
    }

    #[test]
    fn entries_that_are_neither_addresses_nor_networks_are_refused() {
        let err = "127.0.0.1, nginx.internal"
            .parse::<TrustedProxies>()
            .unwrap_err();

        assert!(err.to_string().contains("nginx.internal"), "{err}");
    }

    #[test]
    fn a_config_file_lists_the_trusted_proxies() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("ballpark.toml");
        std::fs::write(&file, "trusted_proxies = [\"127.0.0.1\", \"10.0.0.0/8\"]\n").unwrap();

        let config = crate::config::Config::load(Some(&file), Default::default()).unwrap();

        assert!(config.trusted_proxies.contains(ip("10.20.30.40")));
        assert!(!config.trusted_proxies.contains(ip("192.0.2.1")));
    }

    #[test]
    fn a_toml_list_and_a_comma_separated_string_are_the_same_setting() {
        let from_list: TrustedProxies =
            serde_json::from_str(r#"["127.0.0.1", "10.0.0.0/8"]"#).unwrap();
        let from_string: TrustedProxies =
            serde_json::from_str(r#""127.0.0.1,10.0.0.0/8""#).unwrap();

        assert_eq!(from_list, from_string);
        assert_eq!(
            format!("{from_list:?}"),
            r#"["127.0.0.1/32", "10.0.0.0/8"]"#
        );
    }
}
