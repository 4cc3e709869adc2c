//! Join tokens: HS256 JWTs for the media plane (WHIP, WHEP, the player).
//!
//! The claims follow LiveKit's access-token shape, which is what seed 001's
//! `POST /apps/{app}/tokens` hands out: `sub` is the identity, `video` holds
//! the grants (`room`, `roomJoin`, `canPublish`, `canSubscribe`,
//! `canPublishData`, `hidden`, `recorder`), plus camgate's `app` and
//! `audioOnly`.
//!
//! Signing keys live in `<data dir>/signing-keys.json` (created with mode
//! 0600 on first start). The newest key signs; every key in the file
//! verifies, by the token's `kid`. Rotating adds a key and keeps the previous
//! ones (up to [`KEEP_KEYS`]) so tokens already handed out stay valid until
//! they expire.

use std::path::{Path, PathBuf};
use std::sync::RwLock;

use base64::Engine;
use jsonwebtoken::{Algorithm, DecodingKey, EncodingKey, Header, Validation};
use serde::{Deserialize, Serialize};

/// Signing keys kept after a rotation (the newest included).
pub const KEEP_KEYS: usize = 3;

const FILE: &str = "signing-keys.json";

/// The grants of a join token (LiveKit's `video` claim).
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "camelCase")]
pub struct VideoGrant {
    /// The namespaced room.
    pub room: String,
    /// May join the room.
    pub room_join: bool,
    /// May publish media.
    pub can_publish: bool,
    /// May subscribe to media.
    pub can_subscribe: bool,
    /// May send data channel messages.
    pub can_publish_data: bool,
    /// Invisible and not counted as a viewer.
    #[serde(default)]
    pub hidden: bool,
    /// Recorder grant.
    #[serde(default)]
    pub recorder: bool,
    /// Audio only: publish only a microphone / subscribe only to audio.
    #[serde(default)]
    pub audio_only: bool,
}

/// The claims of a join token.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
pub struct JoinClaims {
    /// Issuer (`camgate`).
    pub iss: String,
    /// The participant identity.
    pub sub: String,
    /// Display name.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    /// Opaque participant metadata.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub metadata: Option<String>,
    /// The app the token was minted for.
    pub app: String,
    /// Issued at (seconds since the epoch).
    pub iat: i64,
    /// Not before.
    pub nbf: i64,
    /// Expiry.
    pub exp: i64,
    /// Unique token id.
    pub jti: String,
    /// The grants.
    pub video: VideoGrant,
}

/// Why a token was refused. The two variants map to the error codes of seed
/// 002: `token_expired` and `token_invalid`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum TokenError {
    /// Past its `exp`.
    #[error("token has expired")]
    Expired,
    /// Bad signature, unknown key, malformed, or not yet valid.
    #[error("token signature is invalid")]
    Invalid,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
struct StoredKey {
    kid: String,
    secret: String,
    #[serde(rename = "createdAt")]
    created_at: String,
}

/// The signing keys, newest last.
#[derive(Debug)]
pub struct Keyring {
    path: PathBuf,
    keys: RwLock<Vec<StoredKey>>,
}

impl Keyring {
    /// Loads the keys from the data dir, creating the first one if needed.
    pub fn open(data_dir: &Path) -> std::io::Result<Keyring> {
        let path = data_dir.join(FILE);
        let keys: Vec<StoredKey> = match std::fs::read(&path) {
            Ok(bytes) => serde_json::from_slice(&bytes).map_err(std::io::Error::other)?,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Vec::new(),
            Err(e) => return Err(e),
        };
        let ring = Keyring {
            path,
            keys: RwLock::new(keys),
        };
        if ring.read().is_empty() {
            ring.rotate()?;
        }
        Ok(ring)
    }

    fn read(&self) -> std::sync::RwLockReadGuard<'_, Vec<StoredKey>> {
        self.keys.read().unwrap_or_else(|e| e.into_inner())
    }

    /// Adds a new signing key (which signs from now on) and returns its id.
    pub fn rotate(&self) -> std::io::Result<String> {
        let mut secret = [0u8; 32];
        rand::fill(&mut secret);
        let key = StoredKey {
            kid: super::random_id("k", 6),
            secret: base64::engine::general_purpose::STANDARD.encode(secret),
            created_at: super::now_rfc3339(),
        };
        let kid = key.kid.clone();
        let mut keys = self.keys.write().unwrap_or_else(|e| e.into_inner());
        keys.push(key);
        let excess = keys.len().saturating_sub(KEEP_KEYS);
        keys.drain(..excess);
        write_private(&self.path, &serde_json::to_vec_pretty(&*keys)?)?;
        Ok(kid)
    }

    /// Signs claims with the newest key.
    pub fn sign(&self, claims: &JoinClaims) -> String {
        let keys = self.read();
        let Some(key) = keys.last() else {
            // Invariant: open() always leaves at least one key.
            return String::new();
        };
        let mut header = Header::new(Algorithm::HS256);
        header.kid = Some(key.kid.clone());
        let secret = decode_secret(&key.secret);
        jsonwebtoken::encode(&header, claims, &EncodingKey::from_secret(&secret))
            .unwrap_or_default()
    }

    /// Verifies a token's signature, issuer and time window.
    pub fn verify(&self, token: &str) -> Result<JoinClaims, TokenError> {
        let header = jsonwebtoken::decode_header(token).map_err(|_| TokenError::Invalid)?;
        if header.alg != Algorithm::HS256 {
            return Err(TokenError::Invalid);
        }
        let secret = {
            let keys = self.read();
            let kid = header.kid.as_deref().ok_or(TokenError::Invalid)?;
            let key = keys
                .iter()
                .find(|k| k.kid == kid)
                .ok_or(TokenError::Invalid)?;
            decode_secret(&key.secret)
        };
        let mut validation = Validation::new(Algorithm::HS256);
        validation.set_issuer(&["camgate"]);
        validation.validate_nbf = true;
        validation.leeway = 2;
        validation.set_required_spec_claims(&["exp", "nbf", "iss", "sub"]);
        match jsonwebtoken::decode::<JoinClaims>(
            token,
            &DecodingKey::from_secret(&secret),
            &validation,
        ) {
            Ok(data) => Ok(data.claims),
            Err(e) if matches!(e.kind(), jsonwebtoken::errors::ErrorKind::ExpiredSignature) => {
                Err(TokenError::Expired)
            }
            Err(_) => Err(TokenError::Invalid),
        }
    }
}

impl Keyring {
    /// A signature for a URL (`message` names the resource and its expiry):
    /// `<kid>.<hex HMAC-SHA256>` with the newest key, a domain prefix
    /// keeping it apart from join tokens.
    pub fn sign_url(&self, message: &str) -> String {
        let keys = self.read();
        let Some(key) = keys.last() else {
            return String::new();
        };
        format!("{}.{}", key.kid, url_mac(&key.secret, message))
    }

    /// Checks a URL signature made by [`Keyring::sign_url`] with any kept
    /// key, in constant time.
    pub fn verify_url(&self, message: &str, signature: &str) -> bool {
        let Some((kid, mac)) = signature.split_once('.') else {
            return false;
        };
        let keys = self.read();
        keys.iter()
            .find(|k| k.kid == kid)
            .is_some_and(|k| super::ct_eq(&url_mac(&k.secret, message), mac))
    }
}

fn url_mac(secret: &str, message: &str) -> String {
    use hmac::{Hmac, Mac};
    let Ok(mut mac) = Hmac::<sha2::Sha256>::new_from_slice(&decode_secret(secret)) else {
        return String::new();
    };
    mac.update(b"camgate-url\0");
    mac.update(message.as_bytes());
    mac.finalize()
        .into_bytes()
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

fn decode_secret(s: &str) -> Vec<u8> {
    base64::engine::general_purpose::STANDARD
        .decode(s)
        .unwrap_or_default()
}

fn write_private(path: &Path, bytes: &[u8]) -> std::io::Result<()> {
    let tmp = path.with_extension("json.tmp");
    {
        use std::io::Write;
        let mut options = std::fs::OpenOptions::new();
        options.write(true).create(true).truncate(true);
        #[cfg(unix)]
        {
            use std::os::unix::fs::OpenOptionsExt;
            options.mode(0o600);
        }
        let mut f = options.open(&tmp)?;
        f.write_all(bytes)?;
        f.sync_all()?;
    }
    std::fs::rename(tmp, path)
}

/// Parses a TTL like `30s`, `10m`, `6h`, `7d` (a bare number is seconds).
pub fn parse_ttl(s: &str) -> Option<i64> {
    let s = s.trim();
    let (num, unit) = match s.find(|c: char| !c.is_ascii_digit()) {
        Some(i) => (&s[..i], &s[i..]),
        None => (s, "s"),
    };
    let n: i64 = num.parse().ok()?;
    let mult = match unit {
        "s" => 1,
        "m" => 60,
        "h" => 3600,
        "d" => 86_400,
        _ => return None,
    };
    let secs = n.checked_mul(mult)?;
    (secs > 0 && secs <= 30 * 86_400).then_some(secs)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn claims(exp_in: i64) -> JoinClaims {
        let now = time::OffsetDateTime::now_utc().unix_timestamp();
        JoinClaims {
            iss: "camgate".into(),
            sub: "viewer-1".into(),
            name: None,
            metadata: None,
            app: "live".into(),
            iat: now,
            nbf: now,
            exp: now + exp_in,
            jti: "j".into(),
            video: VideoGrant {
                room: "live-demo".into(),
                room_join: true,
                can_publish: false,
                can_subscribe: true,
                can_publish_data: true,
                hidden: false,
                recorder: false,
                audio_only: false,
            },
        }
    }

    #[test]
    fn sign_verify_rotate_expire_tamper() {
        let dir = std::env::temp_dir().join(format!("camgate-jwt-{}", std::process::id()));
        std::fs::create_dir_all(&dir).expect("temp dir");
        let ring = Keyring::open(&dir).expect("keyring");
        let c = claims(600);
        let t = ring.sign(&c);
        assert_eq!(ring.verify(&t), Ok(c.clone()));
        // Rotation keeps old tokens valid; a reopened ring still knows both.
        ring.rotate().expect("rotate");
        let t2 = ring.sign(&c);
        assert_ne!(t, t2);
        let reopened = Keyring::open(&dir).expect("reopen");
        assert!(reopened.verify(&t).is_ok());
        assert!(reopened.verify(&t2).is_ok());
        assert_eq!(
            ring.verify(&ring.sign(&claims(-60))),
            Err(TokenError::Expired)
        );
        let mut bad = t2.clone();
        bad.pop();
        assert_eq!(ring.verify(&bad), Err(TokenError::Invalid));
        assert_eq!(ring.verify("garbage"), Err(TokenError::Invalid));
        // After KEEP_KEYS rotations the first key is gone.
        for _ in 0..KEEP_KEYS {
            ring.rotate().expect("rotate");
        }
        assert_eq!(ring.verify(&t), Err(TokenError::Invalid));
        let _ = std::fs::remove_dir_all(&dir);
    }

    #[test]
    fn ttl() {
        assert_eq!(parse_ttl("10m"), Some(600));
        assert_eq!(parse_ttl("6h"), Some(21_600));
        assert_eq!(parse_ttl("45"), Some(45));
        assert_eq!(parse_ttl("2d"), Some(172_800));
        assert_eq!(parse_ttl("0s"), None);
        assert_eq!(parse_ttl("1y"), None);
        assert_eq!(parse_ttl("h"), None);
        assert_eq!(parse_ttl("99999999999999999999d"), None);
    }
}
