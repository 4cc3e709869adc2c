//! Secrets, hashing and who may do what.
//!
//! Every secret camgate issues (API tokens `sk_…`, camera keys `wsk_…`) is
//! 192+ bits of randomness, stored only as its SHA-256 and shown once. A
//! fast hash is right for such high-entropy secrets (nothing to brute-force);
//! stored hashes are compared in constant time.

pub mod jwt;

use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::Mutex;
use std::time::Instant;

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use rand::RngCore;
use sha2::{Digest, Sha256};
use subtle::ConstantTimeEq;
use time::OffsetDateTime;
use time::format_description::well_known::Rfc3339;

use crate::store::TokenRow;

/// Now as RFC 3339 UTC.
pub fn now_rfc3339() -> String {
    OffsetDateTime::now_utc()
        .format(&Rfc3339)
        .unwrap_or_default()
}

/// `prefix` + `n` random bytes, base64url.
pub fn random_secret(prefix: &str, n: usize) -> String {
    let mut bytes = vec![0u8; n];
    rand::rng().fill_bytes(&mut bytes);
    format!("{prefix}{}", URL_SAFE_NO_PAD.encode(bytes))
}

/// `prefix` + `n` random bytes, hex (for ids).
pub fn random_id(prefix: &str, n: usize) -> String {
    let mut bytes = vec![0u8; n];
    rand::rng().fill_bytes(&mut bytes);
    let hex: String = bytes.iter().map(|b| format!("{b:02x}")).collect();
    format!("{prefix}{hex}")
}

/// SHA-256 of a secret, hex.
pub fn hash_secret(secret: &str) -> String {
    Sha256::digest(secret.as_bytes())
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

/// Constant-time equality of two strings.
pub fn ct_eq(a: &str, b: &str) -> bool {
    a.len() == b.len() && bool::from(a.as_bytes().ct_eq(b.as_bytes()))
}

/// An authenticated API caller.
#[derive(Debug, Clone)]
pub struct Principal {
    /// Token row id.
    pub token_id: i64,
    /// App the token is bound to; `None` for global tokens.
    pub app_id: Option<i64>,
    /// Narrowed permissions (`resource:action`); `None` = all of its scope.
    pub permissions: Option<Vec<String>>,
    /// Expiry of the token (RFC 3339), if any.
    pub expires_at: Option<String>,
    /// Client addresses the token may be used from; `None` = any.
    pub allowed_ips: Option<Vec<String>>,
}

/// Why a principal may not do something.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Denied {
    /// The token is bound to another app.
    OtherApp,
    /// The token lacks this permission.
    Missing(&'static str),
    /// The route needs a global token.
    GlobalOnly,
}

impl Principal {
    /// Builds a principal from a token row, checking hash and expiry.
    pub fn from_row(row: TokenRow, presented_hash: &str) -> Option<Principal> {
        if !ct_eq(&row.token_hash, presented_hash) {
            return None;
        }
        if let Some(exp) = &row.expires_at {
            let exp = OffsetDateTime::parse(exp, &Rfc3339).ok()?;
            if exp <= OffsetDateTime::now_utc() {
                return None;
            }
        }
        let app_id = if row.scope == "global" {
            None
        } else {
            Some(row.app_id?)
        };
        Some(Principal {
            token_id: row.id,
            app_id,
            permissions: row.permissions,
            expires_at: row.expires_at,
            allowed_ips: row.allowed_ips,
        })
    }

    /// Checks that this caller holds a global token with `permission`
    /// (routes above any one app: creating and deleting apps).
    pub fn require_global(&self, permission: &'static str) -> Result<(), Denied> {
        if self.app_id.is_some() {
            return Err(Denied::GlobalOnly);
        }
        match &self.permissions {
            Some(p) if !p.iter().any(|g| grants(g, permission)) => Err(Denied::Missing(permission)),
            _ => Ok(()),
        }
    }

    /// Checks that this caller may do `permission` in app `app_id`.
    pub fn require(&self, app_id: i64, permission: &'static str) -> Result<(), Denied> {
        if self.app_id.is_some_and(|a| a != app_id) {
            return Err(Denied::OtherApp);
        }
        match &self.permissions {
            Some(p) if !p.iter().any(|g| grants(g, permission)) => Err(Denied::Missing(permission)),
            _ => Ok(()),
        }
    }
}

impl Principal {
    /// Whether the token may be used from `ip` (its allow-list, if any).
    pub fn allows_ip(&self, ip: std::net::IpAddr) -> bool {
        self.allowed_ips
            .as_ref()
            .is_none_or(|list| list.is_empty() || list.iter().any(|a| ip_matches(a, ip)))
    }

    /// Whether this caller holds every permission in `wanted` (a token it
    /// mints may not have more than it has).
    pub fn covers(&self, wanted: &[String]) -> bool {
        match &self.permissions {
            None => true,
            Some(mine) => wanted.iter().all(|w| {
                if w == "*" || w.ends_with(":*") {
                    // A wildcard only from the same or a wider wildcard.
                    mine.iter().any(|g| g == "*" || g == w)
                } else {
                    mine.iter().any(|g| grants(g, w))
                }
            }),
        }
    }
}

/// `entry` is an exact IPv4/IPv6 address or a CIDR (`10.0.0.0/8`,
/// `fd00::/8`); an IPv4-mapped IPv6 client matches IPv4 entries.
pub fn ip_matches(entry: &str, ip: std::net::IpAddr) -> bool {
    use std::net::IpAddr;
    let ip = match ip {
        IpAddr::V6(v6) => v6.to_ipv4_mapped().map_or(ip, IpAddr::V4),
        v4 => v4,
    };
    let (addr, bits) = match entry.split_once('/') {
        Some((a, b)) => match b.parse::<u32>() {
            Ok(b) => (a, Some(b)),
            Err(_) => return false,
        },
        None => (entry, None),
    };
    let Ok(net) = addr.trim().parse::<IpAddr>() else {
        return false;
    };
    match (net, ip) {
        (IpAddr::V4(n), IpAddr::V4(i)) => {
            let bits = bits.unwrap_or(32).min(32);
            let mask = if bits == 0 {
                0
            } else {
                u32::MAX << (32 - bits)
            };
            u32::from(n) & mask == u32::from(i) & mask
        }
        (IpAddr::V6(n), IpAddr::V6(i)) => {
            let bits = bits.unwrap_or(128).min(128);
            let mask = if bits == 0 {
                0
            } else {
                u128::MAX << (128 - bits)
            };
            u128::from(n) & mask == u128::from(i) & mask
        }
        _ => false,
    }
}

/// Whether `entry` is a valid allow-list entry (see [`ip_matches`]).
pub fn valid_ip_entry(entry: &str) -> bool {
    let (addr, bits) = match entry.split_once('/') {
        Some((a, b)) => (a, Some(b)),
        None => (entry, None),
    };
    match addr.parse::<std::net::IpAddr>() {
        Ok(ip) => bits.is_none_or(|b| {
            b.parse::<u32>()
                .is_ok_and(|b| b <= if ip.is_ipv4() { 32 } else { 128 })
        }),
        Err(_) => false,
    }
}

/// `resource:*` and `*` grant every action; otherwise an exact match.
fn grants(granted: &str, wanted: &str) -> bool {
    granted == "*"
        || granted == wanted
        || granted
            .strip_suffix(":*")
            .is_some_and(|res| wanted.split(':').next() == Some(res))
}

/// A token bucket per key (an address, a token id): `capacity` events per
/// `window`, refilled smoothly, so a client may burst up to `capacity` and
/// then goes at `capacity / window`.
#[derive(Debug)]
pub struct RateLimiter<K = IpAddr> {
    capacity: u32,
    window: std::time::Duration,
    buckets: Mutex<HashMap<K, (f64, Instant)>>,
}

impl<K: std::hash::Hash + Eq + Clone> RateLimiter<K> {
    /// A limiter allowing `capacity` events per key and `window` (0 =
    /// unlimited).
    pub fn new(capacity: u32, window: std::time::Duration) -> RateLimiter<K> {
        RateLimiter {
            capacity,
            window,
            buckets: Mutex::new(HashMap::new()),
        }
    }

    /// Whether the limiter limits anything.
    pub fn enabled(&self) -> bool {
        self.capacity > 0
    }

    /// Takes one token for `key` at `now`; false when the key is over.
    pub fn allow(&self, key: K, now: Instant) -> bool {
        self.check(key, now).is_ok()
    }

    /// Takes one token for `key` at `now`, or says how long until one is
    /// free (for `Retry-After`).
    pub fn check(&self, key: K, now: Instant) -> Result<(), std::time::Duration> {
        if self.capacity == 0 {
            return Ok(());
        }
        let cap = f64::from(self.capacity);
        let rate = cap / self.window.as_secs_f64().max(0.001);
        let mut map = self.buckets.lock().unwrap_or_else(|e| e.into_inner());
        if map.len() > 10_000 {
            // Forget keys whose bucket has refilled: bounded memory.
            map.retain(|_, (tokens, at)| {
                *tokens + now.duration_since(*at).as_secs_f64() * rate < cap
            });
        }
        let (tokens, at) = map.entry(key).or_insert((cap, now));
        *tokens = (*tokens + now.saturating_duration_since(*at).as_secs_f64() * rate).min(cap);
        *at = now;
        if *tokens >= 1.0 {
            *tokens -= 1.0;
            Ok(())
        } else {
            Err(std::time::Duration::from_secs_f64((1.0 - *tokens) / rate))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn allow_lists_match_addresses_and_cidrs() {
        let ip = |s: &str| s.parse::<std::net::IpAddr>().expect("ip");
        assert!(ip_matches("10.0.0.0/8", ip("10.1.2.3")));
        assert!(!ip_matches("10.0.0.0/8", ip("11.1.2.3")));
        assert!(ip_matches("192.168.1.7", ip("192.168.1.7")));
        assert!(ip_matches("127.0.0.1", ip("::ffff:127.0.0.1")));
        assert!(ip_matches("fd00::/8", ip("fd12::1")));
        assert!(!ip_matches("fd00::/8", ip("10.0.0.1")));
        assert!(ip_matches("0.0.0.0/0", ip("8.8.8.8")));
        assert!(!ip_matches("bogus", ip("8.8.8.8")));
        assert!(valid_ip_entry("10.0.0.0/8") && valid_ip_entry("::1") && valid_ip_entry("1.2.3.4"));
        assert!(
            !valid_ip_entry("10.0.0.0/33")
                && !valid_ip_entry("host.example")
                && !valid_ip_entry("")
        );
    }

    #[test]
    fn a_narrow_token_cannot_mint_a_wider_one() {
        let p = |perms: Option<&[&str]>| Principal {
            token_id: 1,
            app_id: Some(1),
            permissions: perms.map(|p| p.iter().map(|s| s.to_string()).collect()),
            expires_at: None,
            allowed_ips: None,
        };
        let want = |w: &[&str]| w.iter().map(|s| s.to_string()).collect::<Vec<_>>();
        assert!(p(None).covers(&want(&["*"])));
        let narrow = p(Some(&["ingress:*", "stream:read"]));
        assert!(narrow.covers(&want(&["ingress:create", "stream:read"])));
        assert!(narrow.covers(&want(&["ingress:*"])));
        assert!(!narrow.covers(&want(&["stream:write"])));
        assert!(!narrow.covers(&want(&["*"])));
        assert!(!narrow.covers(&want(&["stream:*"])));
    }
    use std::time::Duration;

    #[test]
    fn secrets_have_the_documented_shape() {
        let k = random_secret("wsk_", 24);
        assert!(k.starts_with("wsk_") && k.len() == 4 + 32);
        let id = random_id("wsi_", 6);
        assert_eq!(id.len(), 4 + 12);
        assert_eq!(hash_secret("abc").len(), 64);
        assert!(ct_eq("abc", "abc") && !ct_eq("abc", "abd") && !ct_eq("abc", "ab"));
    }

    #[test]
    fn permissions_narrow_and_apps_isolate() {
        let p = Principal {
            token_id: 1,
            app_id: Some(7),
            permissions: Some(vec!["ingress:*".into()]),
            expires_at: None,
            allowed_ips: None,
        };
        assert_eq!(p.require(7, "ingress:create"), Ok(()));
        assert_eq!(p.require(8, "ingress:create"), Err(Denied::OtherApp));
        assert_eq!(
            p.require(7, "stream:read"),
            Err(Denied::Missing("stream:read"))
        );
        let g = Principal {
            token_id: 2,
            app_id: None,
            permissions: None,
            expires_at: None,
            allowed_ips: None,
        };
        assert_eq!(g.require(99, "ingress:delete"), Ok(()));
    }

    #[test]
    fn rate_limiter_refills() {
        let l = RateLimiter::new(2, std::time::Duration::from_secs(60));
        let ip: IpAddr = [127, 0, 0, 1].into();
        let t = Instant::now();
        assert!(l.allow(ip, t) && l.allow(ip, t));
        assert!(!l.allow(ip, t));
        assert!(l.allow(ip, t + Duration::from_secs(31)));
        assert!(RateLimiter::new(0, std::time::Duration::from_secs(60)).allow(ip, t));
    }
}
