//! Typed configuration: TOML file, overridden by environment variables and
//! flags (read in `main` only), then checked by [`Config::validate`].

use std::net::{IpAddr, SocketAddr};
use std::path::PathBuf;

use camgate_protocols::jpeg::TrailingPadding;
use serde::Deserialize;

/// Everything `camgate serve` can be told.
#[derive(Debug, Clone, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Config {
    /// Where the database and media files live.
    pub data_dir: PathBuf,
    /// HTTP listen address.
    pub http: SocketAddr,
    /// Base of every URL the API returns; derived from `http` when unset.
    pub public_url: Option<String>,
    /// Honour `X-Forwarded-For` for client addresses (only behind a proxy).
    pub trust_forwarded: bool,
    /// Device WebSocket ingest.
    pub ws_ingest: WsIngestConfig,
    /// WebRTC (SFU, WHIP/WHEP, transcoding for cameras).
    pub webrtc: WebRtcConfig,
    /// RTMP listen address (encoders push `rtmp://host:port/{app}/{key}`).
    pub rtmp: SocketAddr,
    /// Pulled cameras (`url` ingresses: RTSP, HTTP MJPEG, snapshots).
    pub pull: PullConfig,
    /// MJPEG output of H.264 streams (the H.264 → JPEG transcoder).
    pub mjpeg: MjpegConfig,
    /// Directory of app files (`<name>.toml`), read at start and on
    /// `POST /api/v1/apps/{app}/reload`; default `<data_dir>/apps`.
    pub apps_dir: Option<PathBuf>,
    /// Restream destinations.
    pub restream: RestreamConfig,
    /// HTTPS/WSS (and RTMPS) with rustls; off when unset.
    pub tls: Option<TlsConfig>,
    /// Connection caps, timeouts and rate limits.
    pub limits: LimitsConfig,
}

/// TLS for the HTTP listener (HTTPS, WSS) and an optional RTMPS listener.
/// The files are read at start and again on `SIGHUP`.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TlsConfig {
    /// PEM certificate chain.
    pub cert_file: PathBuf,
    /// PEM private key (PKCS#8, PKCS#1 or SEC1).
    pub key_file: PathBuf,
    /// RTMPS listen address (same certificate); none when unset.
    #[serde(default)]
    pub rtmps: Option<SocketAddr>,
    /// `Strict-Transport-Security` max-age, seconds (0 = no header).
    #[serde(default = "default_hsts")]
    pub hsts_max_age_secs: u64,
}

fn default_hsts() -> u64 {
    31_536_000
}

/// Connection caps, timeouts and rate limits. 0 means unlimited for every
/// count and rate.
#[derive(Debug, Clone, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct LimitsConfig {
    /// Seconds a client has to send a connection's first request head
    /// (slowloris) or to finish a TLS handshake.
    pub http_header_timeout_secs: u32,
    /// Seconds a keep-alive connection may stay idle (longer than common
    /// clients' pool timeouts, so a reused connection is not closed under
    /// them).
    pub http_idle_timeout_secs: u32,
    /// Largest request head (request line and headers), KiB; a bigger one
    /// gets `431`. At least 8.
    pub max_header_kb: u32,
    /// Open HTTP connections (WebSockets included).
    pub max_http_connections: u32,
    /// Open HTTP connections from one address.
    pub max_http_connections_per_ip: u32,
    /// Open RTMP(S) connections.
    pub max_rtmp_connections: u32,
    /// Open RTMP(S) connections from one address.
    pub max_rtmp_connections_per_ip: u32,
    /// API requests per minute from one address (`/api/…`, WHIP/WHEP).
    pub api_requests_per_minute_per_ip: u32,
    /// API requests per hour per app token (an SDK client; the seeds'
    /// default is 1000).
    pub app_token_requests_per_hour: u32,
    /// API requests per hour per global (operator) token.
    pub admin_token_requests_per_hour: u32,
    /// Viewers of one stream (MJPEG, viewer WebSocket, WHEP).
    pub max_viewers_per_stream: u32,
}

impl Default for LimitsConfig {
    fn default() -> Self {
        LimitsConfig {
            http_header_timeout_secs: 10,
            http_idle_timeout_secs: 120,
            max_header_kb: 32,
            max_http_connections: 10_000,
            max_http_connections_per_ip: 512,
            max_rtmp_connections: 1_000,
            max_rtmp_connections_per_ip: 50,
            api_requests_per_minute_per_ip: 3_000,
            app_token_requests_per_hour: 1_000,
            admin_token_requests_per_hour: 0,
            max_viewers_per_stream: 0,
        }
    }
}

/// Restream destinations.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct RestreamConfig {
    /// PEM file of CA certificates trusted for `rtmps://` destinations, in
    /// addition to the Mozilla roots (a private RTMPS server).
    pub ca_file: Option<PathBuf>,
}

/// MJPEG output of H.264 streams.
#[derive(Debug, Clone, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct MjpegConfig {
    /// JPEG quality, 1–100 (libjpeg scale).
    pub quality: u32,
    /// Most frames per second sent to MJPEG viewers.
    pub max_fps: u32,
    /// Pictures wider than this are halved (or quartered); 0 = never.
    pub max_width: u32,
}

impl Default for MjpegConfig {
    fn default() -> Self {
        MjpegConfig {
            quality: 75,
            max_fps: 10,
            max_width: 1280,
        }
    }
}

/// Timers of pulled cameras.
#[derive(Debug, Clone, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct PullConfig {
    /// Seconds to connect and get an answer (RTSP DESCRIBE…PLAY, HTTP
    /// headers) before the attempt counts as a timeout.
    pub connect_timeout_secs: u32,
    /// Seconds without a frame before a connected camera counts as gone.
    pub frame_timeout_secs: u32,
    /// First retry delay, seconds; doubles per failed attempt.
    pub min_backoff_secs: u32,
    /// Longest retry delay, seconds.
    pub max_backoff_secs: u32,
}

impl Default for PullConfig {
    fn default() -> Self {
        PullConfig {
            connect_timeout_secs: 10,
            frame_timeout_secs: 10,
            min_backoff_secs: 1,
            max_backoff_secs: 30,
        }
    }
}

/// The SFU's network and the camera transcoder.
#[derive(Debug, Clone, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct WebRtcConfig {
    /// The one UDP socket every WebRTC peer talks to.
    pub udp: SocketAddr,
    /// Addresses advertised as ICE host candidates (default: the bound IP,
    /// or the default route's interface when bound to 0.0.0.0).
    pub ips: Vec<IpAddr>,
    /// Target bitrate of the JPEG→H.264 transcoder, kbit/s.
    pub h264_bitrate_kbps: u32,
    /// A transcoder keyframe at least every this many frames.
    pub keyframe_interval_frames: u32,
    /// Seconds a transcoder keeps running after its last WebRTC viewer left.
    pub transcode_grace_secs: u32,
}

impl Default for WebRtcConfig {
    fn default() -> Self {
        WebRtcConfig {
            udp: SocketAddr::from(([0, 0, 0, 0], 8189)),
            ips: Vec::new(),
            h264_bitrate_kbps: 1000,
            keyframe_interval_frames: 150,
            transcode_grace_secs: 10,
        }
    }
}

/// Limits and timers of the device WebSocket (defaults from the reference).
#[derive(Debug, Clone, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct WsIngestConfig {
    /// Frames per second accepted per camera; excess frames are dropped.
    pub max_fps: u32,
    /// Largest frame in KiB; a larger one closes the connection with 4413.
    pub max_frame_kb: u32,
    /// Seconds without an accepted frame before closing with 4408.
    pub idle_timeout_secs: u32,
    /// Seconds between server pings; two unanswered pings end the connection.
    pub ping_interval_secs: u32,
    /// Handshakes per minute per client address (0 = unlimited).
    pub handshakes_per_minute: u32,
    /// Consecutive non-JPEG frames before closing with 1003 (0 = never).
    pub invalid_frames_close_after: u32,
    /// Rate asked of a camera nobody watches (0 = never ask).
    pub idle_fps: u32,
    /// Seconds after the last viewer leaves before asking for `idle_fps`.
    pub idle_grace_secs: u32,
    /// What to do with bytes after a frame's EOI marker.
    #[serde(with = "padding_serde")]
    pub trailing_padding: TrailingPadding,
}

mod padding_serde {
    use camgate_protocols::jpeg::TrailingPadding;
    use serde::{Deserialize, Deserializer};

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<TrailingPadding, D::Error> {
        let s = String::deserialize(d)?;
        s.parse().map_err(serde::de::Error::custom)
    }
}

impl Default for Config {
    fn default() -> Self {
        Config {
            data_dir: PathBuf::from("./camgate-data"),
            http: SocketAddr::from(([0, 0, 0, 0], 8080)),
            public_url: None,
            trust_forwarded: false,
            ws_ingest: WsIngestConfig::default(),
            webrtc: WebRtcConfig::default(),
            rtmp: SocketAddr::from(([0, 0, 0, 0], 1935)),
            pull: PullConfig::default(),
            mjpeg: MjpegConfig::default(),
            apps_dir: None,
            restream: RestreamConfig::default(),
            tls: None,
            limits: LimitsConfig::default(),
        }
    }
}

impl Default for WsIngestConfig {
    fn default() -> Self {
        WsIngestConfig {
            max_fps: 15,
            max_frame_kb: 256,
            idle_timeout_secs: 30,
            ping_interval_secs: 15,
            handshakes_per_minute: 60,
            invalid_frames_close_after: 5,
            idle_fps: 1,
            idle_grace_secs: 5,
            trailing_padding: TrailingPadding::default(),
        }
    }
}

/// A configuration that cannot run.
#[derive(Debug, thiserror::Error)]
#[error("invalid configuration: {0}")]
pub struct ConfigError(pub String);

impl Config {
    /// Where app files are read from.
    pub fn apps_dir(&self) -> PathBuf {
        self.apps_dir
            .clone()
            .unwrap_or_else(|| self.data_dir.join("apps"))
    }

    /// Parses a TOML document.
    pub fn from_toml(text: &str) -> Result<Config, ConfigError> {
        toml::from_str(text).map_err(|e| ConfigError(e.to_string()))
    }

    /// Checks values that parse but cannot work.
    pub fn validate(&self) -> Result<(), ConfigError> {
        let w = &self.ws_ingest;
        if w.max_fps == 0 || w.max_fps > 1000 {
            return Err(ConfigError("ws_ingest.max_fps must be 1..=1000".into()));
        }
        if w.max_frame_kb == 0 || w.max_frame_kb > 8 * 1024 {
            return Err(ConfigError(
                "ws_ingest.max_frame_kb must be 1..=8192".into(),
            ));
        }
        if w.idle_timeout_secs == 0 || w.ping_interval_secs == 0 {
            return Err(ConfigError(
                "ws_ingest.idle_timeout_secs and ping_interval_secs must be > 0".into(),
            ));
        }
        let r = &self.webrtc;
        if r.h264_bitrate_kbps < 50 || r.h264_bitrate_kbps > 20_000 {
            return Err(ConfigError(
                "webrtc.h264_bitrate_kbps must be 50..=20000".into(),
            ));
        }
        if r.keyframe_interval_frames == 0 {
            return Err(ConfigError(
                "webrtc.keyframe_interval_frames must be > 0".into(),
            ));
        }
        let m = &self.mjpeg;
        if !(1..=100).contains(&m.quality) || !(1..=30).contains(&m.max_fps) {
            return Err(ConfigError(
                "mjpeg.quality must be 1..=100 and mjpeg.max_fps 1..=30".into(),
            ));
        }
        let p = &self.pull;
        if p.connect_timeout_secs == 0 || p.frame_timeout_secs == 0 {
            return Err(ConfigError(
                "pull.connect_timeout_secs and pull.frame_timeout_secs must be > 0".into(),
            ));
        }
        if p.min_backoff_secs == 0 || p.max_backoff_secs < p.min_backoff_secs {
            return Err(ConfigError(
                "pull.min_backoff_secs must be > 0 and ≤ pull.max_backoff_secs".into(),
            ));
        }
        if self.limits.http_header_timeout_secs == 0 || self.limits.http_idle_timeout_secs == 0 {
            return Err(ConfigError(
                "limits.http_header_timeout_secs and http_idle_timeout_secs must be > 0".into(),
            ));
        }
        if self.limits.max_header_kb < 8 {
            return Err(ConfigError(
                "limits.max_header_kb must be at least 8".into(),
            ));
        }
        if let Some(url) = &self.public_url
            && !(url.starts_with("http://") || url.starts_with("https://"))
        {
            return Err(ConfigError(
                "public_url must start with http:// or https://".into(),
            ));
        }
        Ok(())
    }

    /// `https` when TLS is on, else `http`.
    pub fn scheme(&self) -> &'static str {
        if self.tls.is_some() { "https" } else { "http" }
    }

    /// The public base URL for a server bound to `bound` (no trailing slash).
    pub fn public_base(&self, bound: SocketAddr) -> String {
        match &self.public_url {
            Some(u) => u.trim_end_matches('/').to_owned(),
            None if bound.ip().is_unspecified() => {
                format!("{}://localhost:{}", self.scheme(), bound.port())
            }
            None => format!("{}://{bound}", self.scheme()),
        }
    }
}

impl WsIngestConfig {
    /// Largest accepted frame in bytes.
    pub fn max_frame_bytes(&self) -> usize {
        self.max_frame_kb as usize * 1024
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn toml_overrides_defaults_and_rejects_unknown_keys() {
        let c = Config::from_toml("http = \"127.0.0.1:9000\"\n[ws_ingest]\nmax_fps = 5\n")
            .expect("valid");
        assert_eq!(c.http.port(), 9000);
        assert_eq!(c.ws_ingest.max_fps, 5);
        assert_eq!(c.ws_ingest.max_frame_kb, 256);
        assert!(Config::from_toml("htp = \"x\"").is_err());
        let bad = Config::from_toml("[ws_ingest]\nmax_fps = 0\n").expect("parses");
        assert!(bad.validate().is_err());
    }

    #[test]
    fn public_base_is_derived_from_the_bound_address() {
        let c = Config::default();
        assert_eq!(
            c.public_base("0.0.0.0:8080".parse().expect("addr")),
            "http://localhost:8080"
        );
        assert_eq!(
            c.public_base("127.0.0.1:81".parse().expect("addr")),
            "http://127.0.0.1:81"
        );
        let c = Config {
            public_url: Some("https://cams.example/".into()),
            ..Config::default()
        };
        assert_eq!(
            c.public_base("0.0.0.0:1".parse().expect("addr")),
            "https://cams.example"
        );
    }
}
