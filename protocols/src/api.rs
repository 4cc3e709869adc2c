//! API paths, request and response types, and naming rules shared by the
//! server, camsim, the tests and the benchmark.
//!
//! Field names follow seed 001 (`/api/v1/apps/{app}/…`) exactly.

use serde::{Deserialize, Serialize};

/// Base of every REST route.
pub const API_BASE: &str = "/api/v1";
/// Device WebSocket endpoint.
pub const INGEST_WS_PATH: &str = "/ingest/ws";
/// Viewer WebSocket endpoint.
pub const LIVE_WS_PATH: &str = "/live/ws";
/// Longest room or identity accepted.
pub const MAX_SLUG_LEN: usize = 64;

/// `POST /api/v1/apps/{app}/ws-ingest`.
pub fn ws_ingest_path(app: &str) -> String {
    format!("{API_BASE}/apps/{app}/ws-ingest")
}

/// `GET /live/{app}/{room}/mjpeg`.
pub fn mjpeg_path(app: &str, room: &str) -> String {
    format!("/live/{app}/{room}/mjpeg")
}

/// `GET /live/{app}/{room}/frame.jpg`.
pub fn frame_path(app: &str, room: &str) -> String {
    format!("/live/{app}/{room}/frame.jpg")
}

/// The `{ "data", "error" }` envelope every `/api/v1` route answers with.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Envelope<T> {
    /// The payload on success.
    pub data: Option<T>,
    /// The error on failure.
    pub error: Option<ErrorBody>,
}

/// The error half of [`Envelope`].
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ErrorBody {
    /// Stable snake_case code.
    pub code: String,
    /// Human-readable message.
    pub message: String,
    /// The request field at fault (`permissions[0]`, `layers`), when one is.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub field: Option<String>,
}

/// Body of `POST /api/v1/apps/{app}/ws-ingest`.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct MintWsIngest {
    /// Room, short (`cam1`) or namespaced (`live-cam1`).
    pub room: String,
    /// Camera identity; defaults to `wscam-` + the key's last 6 characters.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub identity: Option<String>,
}

/// Answer of `POST /api/v1/apps/{app}/ws-ingest`: the key is shown only here.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct MintedWsIngest {
    /// Key id, `wsi_…`.
    pub id: String,
    /// The camera key, `wsk_…`, shown once.
    pub stream_key: String,
    /// Namespaced room.
    pub room: String,
    /// Camera identity.
    pub identity: String,
    /// Device WebSocket URL.
    pub ws_url: String,
    /// MJPEG URL.
    pub mjpeg_url: String,
    /// Last-frame URL.
    pub frame_url: String,
    /// Player page URL.
    pub player_url: String,
    /// Embeddable player URL.
    pub embed_url: String,
}

/// A row of `GET /api/v1/apps/{app}/ws-ingest`.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct WsIngestKey {
    /// Key id, `wsi_…`.
    pub id: String,
    /// Namespaced room.
    pub room: String,
    /// The key, masked (`wsk_…abcd`): camgate stores only its hash.
    pub stream_key: String,
    /// A camera is connected with this key now.
    pub active: bool,
    /// Camera identity.
    pub identity: String,
    /// Creation time, RFC 3339.
    pub created_at: String,
    /// Frames accepted on the current connection.
    #[serde(default)]
    pub frames_received: u64,
    /// Frames dropped on the current connection, by reason.
    #[serde(default)]
    pub frames_dropped: DropCounts,
    /// Viewers watching the room now.
    #[serde(default)]
    pub viewers: u64,
}

/// Dropped-frame counters, by the reason names of the metrics.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub struct DropCounts {
    /// Over `maxFrameBytes`.
    pub too_large: u64,
    /// Not one whole JPEG.
    pub not_jpeg: u64,
    /// Above the fps cap.
    pub fps: u64,
}

/// Answer of the public `GET /api/v1/apps/{app}/ws-ingest/live/{room}`.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct LiveInfo {
    /// A camera (or other publisher) is live in the room.
    pub active: bool,
    /// The publisher's type (`ws-mjpeg`, `whip`) when live, else null.
    #[serde(rename = "type")]
    pub kind: Option<String>,
    /// Namespaced room.
    pub room: String,
    /// MJPEG URL, when live.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub mjpeg_url: Option<String>,
    /// Last-frame URL, when live.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub frame_url: Option<String>,
    /// Viewer WebSocket URL, when live.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ws_url: Option<String>,
    /// camgate extension: the WHEP endpoint, when live.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub whep_url: Option<String>,
    /// The HLS playlist, when the stream has one (RTMP streams).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub hls_url: Option<String>,
}

/// Why a name was refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum SlugError {
    /// Empty.
    #[error("must not be empty")]
    Empty,
    /// Longer than [`MAX_SLUG_LEN`].
    #[error("must be at most 64 characters")]
    TooLong,
    /// Characters outside `[A-Za-z0-9_-]`, or not starting alphanumeric.
    #[error("must match ^[A-Za-z0-9][A-Za-z0-9_-]*$")]
    BadCharacters,
    /// A join-token room longer than [`MAX_TOKEN_ROOM_LEN`].
    #[error("must be at most 120 characters")]
    TooLongRoom,
    /// A join-token room with characters outside `[A-Za-z0-9._-]`.
    #[error("must match [a-zA-Z0-9._-]")]
    BadRoomCharacters,
}

/// Checks a room or identity: `^[A-Za-z0-9][A-Za-z0-9_-]*$`, at most 64.
pub fn validate_slug(s: &str) -> Result<(), SlugError> {
    let Some(first) = s.bytes().next() else {
        return Err(SlugError::Empty);
    };
    if s.len() > MAX_SLUG_LEN {
        return Err(SlugError::TooLong);
    }
    if !first.is_ascii_alphanumeric()
        || !s
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-')
    {
        return Err(SlugError::BadCharacters);
    }
    Ok(())
}

/// The seed's room namespacing rule: omitted → the prefix; already prefixed
/// (equal to the prefix or starting with `<prefix>-`) → unchanged; otherwise
/// `<prefix>-<room>`.
pub fn namespace_room(prefix: &str, room: Option<&str>) -> String {
    match room {
        None | Some("") => prefix.to_owned(),
        Some(r) if r == prefix => r.to_owned(),
        Some(r)
            if r.strip_prefix(prefix)
                .is_some_and(|rest| rest.starts_with('-')) =>
        {
            r.to_owned()
        }
        Some(r) => format!("{prefix}-{r}"),
    }
}

/// Longest room name in a join token (seed 001 "Tokens").
pub const MAX_TOKEN_ROOM_LEN: usize = 120;

/// Checks a join-token room / WHIP streamId: `[A-Za-z0-9._-]`, 1..=120.
pub fn validate_room_name(s: &str) -> Result<(), SlugError> {
    if s.is_empty() {
        return Err(SlugError::Empty);
    }
    if s.len() > MAX_TOKEN_ROOM_LEN {
        return Err(SlugError::TooLongRoom);
    }
    if !s
        .bytes()
        .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'_' | b'-' | b'.'))
    {
        return Err(SlugError::BadRoomCharacters);
    }
    Ok(())
}

/// Body of `POST /api/v1/apps/{app}/tokens` (every field optional).
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct MintJoinToken {
    /// Room (short or namespaced); default: the app prefix.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub room: Option<String>,
    /// Identity; default `anon-<uuid>`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub identity: Option<String>,
    /// Display name.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    /// May publish (default true).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub can_publish: Option<bool>,
    /// May subscribe (default true).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub can_subscribe: Option<bool>,
    /// Lifetime like `10m`, `1h` (default `6h`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ttl: Option<String>,
    /// Opaque participant metadata, ≤ 2000.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub metadata: Option<String>,
    /// Invisible QC/recorder participant.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub hidden: Option<bool>,
    /// Recorder grant.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub recorder: Option<bool>,
    /// Publish the microphone only.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub audio_only: Option<bool>,
}

/// Answer of `POST /api/v1/apps/{app}/tokens`.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct JoinToken {
    /// The JWT.
    pub token: String,
    /// App name.
    pub app: String,
    /// Namespaced room.
    pub room: String,
    /// Participant identity.
    pub identity: String,
    /// Media-plane URL (camgate's own base, `ws(s)://`).
    pub ws_url: String,
    /// Player page.
    pub play_url: String,
    /// Embeddable player.
    pub embed_url: String,
    /// Ready-made iframe tag.
    pub iframe: String,
    /// camgate extension: the WHIP endpoint for this room.
    pub whip_url: String,
    /// camgate extension: the WHEP endpoint for this room.
    pub whep_url: String,
    /// camgate extension: expiry, RFC 3339.
    pub expires_at: String,
}

/// Answer of the anonymous play-token and listen-token routes.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct PlayToken {
    /// The JWT.
    pub token: String,
    /// App name.
    pub app: String,
    /// Namespaced room.
    pub room: String,
    /// Media-plane URL.
    pub ws_url: String,
    /// `viewer` or `listener`.
    pub mode: String,
    /// camgate extension: the WHEP endpoint for this room.
    pub whep_url: String,
}

/// The WHIP endpoint path of a stream.
pub fn whip_path(stream: &str) -> String {
    format!("/whip/{stream}")
}

/// The WHEP endpoint path of a stream.
pub fn whep_path(stream: &str) -> String {
    format!("/whep/{stream}")
}

/// Masks a secret for listings: its prefix and last 4 characters.
pub fn mask_key(prefix: &str, last4: &str) -> String {
    format!("{prefix}…{last4}")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn namespacing_follows_the_seed() {
        assert_eq!(namespace_room("live", Some("demo")), "live-demo");
        assert_eq!(namespace_room("live", Some("live-demo")), "live-demo");
        assert_eq!(namespace_room("live", None), "live");
        assert_eq!(namespace_room("live", Some("live")), "live");
        assert_eq!(namespace_room("live", Some("lively")), "live-lively");
    }

    #[test]
    fn slugs() {
        assert_eq!(validate_slug("cam1"), Ok(()));
        assert_eq!(validate_slug("Cam_1-x"), Ok(()));
        assert_eq!(validate_slug(""), Err(SlugError::Empty));
        assert_eq!(validate_slug("-cam"), Err(SlugError::BadCharacters));
        assert_eq!(validate_slug("cam 1"), Err(SlugError::BadCharacters));
        assert_eq!(validate_slug("cam/../x"), Err(SlugError::BadCharacters));
        assert_eq!(validate_slug(&"a".repeat(64)), Ok(()));
        assert_eq!(validate_slug(&"a".repeat(65)), Err(SlugError::TooLong));
    }
}

/// Body of `POST /api/v1/apps/{app}/ingress` (seed 001 "Ingress").
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct MintIngress {
    /// `rtmp`, `whip` or `url`.
    pub input_type: String,
    /// Destination room; defaults to the app's prefix.
    pub room: Option<String>,
    /// Publisher identity; defaults to `ingress-<app>`.
    pub participant_identity: Option<String>,
    /// Display name.
    pub participant_name: Option<String>,
    /// The source to pull (`url` ingresses).
    pub url: Option<String>,
    /// Multi-layer transcoding; passthrough when off (the default).
    pub enable_transcoding: Option<bool>,
    /// `url` ingresses over RTSP: `tcp` (interleaved, the default) or `udp`.
    pub transport: Option<String>,
    /// `url` ingresses that are single-JPEG snapshot URLs: polls per second
    /// (default 1, at most 30).
    pub poll_fps: Option<f32>,
    /// RTSP camera quirk: retina's initial timestamp policy (`default`,
    /// `require`, `ignore`, `permissive`).
    pub initial_timestamp: Option<String>,
    /// RTSP camera quirk: retina's initial sequence number policy
    /// (`default`, `respect`, `ignore-suspicious-values`, `ignore`).
    pub initial_seq: Option<String>,
    /// camgate: record this ingress's stream whenever it is live.
    pub record: Option<bool>,
}

/// Answer of `POST /api/v1/apps/{app}/ingress`, with the seed's field names
/// (both spellings of the key, as the seed returns them). The stream key is
/// shown only here.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct CreatedIngress {
    /// `IN_…`.
    #[serde(rename = "ingressId")]
    pub ingress_id: String,
    /// `rtmp://host:port/{app}` (the encoder's server field), or the WHIP
    /// endpoint of a `whip` ingress (the key is its Bearer token).
    pub url: String,
    /// `url` + `/` + the stream key (RTMP ingresses).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub rtmp_url: Option<String>,
    /// The stream key (camelCase spelling); none for pulled (`url`)
    /// ingresses.
    #[serde(rename = "streamKey", default, skip_serializing_if = "Option::is_none")]
    pub stream_key_camel: Option<String>,
    /// The stream key (snake_case spelling).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub stream_key: Option<String>,
    /// Namespaced room.
    #[serde(rename = "roomName")]
    pub room_name: String,
    /// Whether a stream password is needed (the app's `rtmpPassword`).
    pub requires_password: bool,
    /// The stream password (shown once; `rtmpPassword` apps only).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub stream_password: Option<String>,
    /// Transcoding on (adaptive ladder) or passthrough.
    pub adaptive: bool,
    /// Player page.
    pub player_url: String,
    /// Embed snippet.
    pub embed_iframe: String,
    /// LL-HLS playlist of the room.
    #[serde(rename = "hlsUrl")]
    pub hls_url: String,
}

/// A row of `GET /api/v1/apps/{app}/ingress` and the answer of
/// `GET …/ingress/{id}`: the ingress (key masked) with its live state.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct IngressInfo {
    /// `IN_…`.
    pub ingress_id: String,
    /// `rtmp`, `whip` or `url`.
    pub input_type: String,
    /// Namespaced room.
    pub room_name: String,
    /// Publisher identity.
    pub participant_identity: String,
    /// Display name.
    pub participant_name: Option<String>,
    /// Server URL (`rtmp://host:port/{app}`) or the pulled URL.
    pub url: String,
    /// The stream key, masked: camgate stores only its hash.
    pub stream_key: Option<String>,
    /// Transcoding on or passthrough.
    pub adaptive: bool,
    /// Pushes need the stream password (the app's `rtmpPassword`).
    pub requires_password: bool,
    /// `publishing`, `pending_validation` (an RTMP push waiting for its
    /// password), `connecting` / `retrying` (pulled cameras) or `inactive`.
    pub status: String,
    /// Why a pulled camera's last attempt failed, in plain words
    /// (`unauthorized`, `unreachable: …`, `timeout: …`, `unsupported codec
    /// …`); null when it did not fail.
    pub last_error: Option<String>,
    /// Failed attempts since the camera last delivered media.
    pub retries: u32,
    /// Received media bitrate, bits per second (0 when inactive).
    pub bitrate: u64,
    /// Video width, when known.
    pub width: Option<u32>,
    /// Video height, when known.
    pub height: Option<u32>,
    /// Non-hidden viewers of the room (MJPEG + WebRTC).
    pub viewers: u64,
    /// Creation time.
    pub created_at: String,
}

/// A page of a listing: `{data, total, limit, offset}`.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Page<T> {
    /// The rows.
    pub data: Vec<T>,
    /// Rows matching the filter.
    pub total: i64,
    /// Page size asked.
    pub limit: i64,
    /// Rows skipped.
    pub offset: i64,
}

/// `/hls/{app}/{room}/index.m3u8`.
pub fn hls_path(app: &str, room: &str) -> String {
    format!("/hls/{app}/{room}/index.m3u8")
}

/// The app feature flags of the reference (§5.3), API spelling.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct AppFeatures {
    /// RTMP ingresses get a `stream_password` that must be validated.
    pub rtmp_password: bool,
    /// Stream detail carries a live viewer count.
    pub viewer_counter: bool,
    /// Server-side chat messages into rooms.
    pub chat: bool,
    /// Server-side reactions into rooms.
    pub reactions: bool,
    /// Hidden / recorder join tokens allowed.
    pub hidden_qc: bool,
    /// Adaptive player (simulcast live, renditions for VOD).
    pub adaptive_player: bool,
    /// Playback routes need no token.
    pub public_playback: bool,
}

impl AppFeatures {
    /// The flags a new app starts with (the reference's scaffold values).
    pub const NEW_APP: AppFeatures = AppFeatures {
        rtmp_password: false,
        viewer_counter: true,
        chat: false,
        reactions: false,
        hidden_qc: true,
        adaptive_player: true,
        public_playback: true,
    };
}

/// Partial feature flags of `PATCH /api/v1/apps/{name}`.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct PatchFeatures {
    /// See [`AppFeatures`].
    pub rtmp_password: Option<bool>,
    /// See [`AppFeatures`].
    pub viewer_counter: Option<bool>,
    /// See [`AppFeatures`].
    pub chat: Option<bool>,
    /// See [`AppFeatures`].
    pub reactions: Option<bool>,
    /// See [`AppFeatures`].
    pub hidden_qc: Option<bool>,
    /// See [`AppFeatures`].
    pub adaptive_player: Option<bool>,
    /// See [`AppFeatures`].
    pub public_playback: Option<bool>,
}

/// An app as `GET /api/v1/apps` and `GET/PATCH /api/v1/apps/{name}` return
/// it: the reference's `AppRecord` fields plus the resolved `features` and
/// settings (camgate's additions, so a client need not parse
/// `settingsJson`).
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct AppRecord {
    /// Row id.
    pub id: i64,
    /// Slug.
    pub name: String,
    /// Display name.
    pub display_name: String,
    /// Room prefix (the reference's field name).
    pub livekit_room_prefix: String,
    /// Creation time (RFC 3339).
    pub created_at: String,
    /// Last change (RFC 3339).
    pub updated_at: String,
    /// Stored settings as JSON text (secrets masked), or null.
    pub settings_json: Option<String>,
    /// Feature flags, defaults applied.
    pub features: AppFeatures,
    /// `recording.enabled`.
    pub recording_enabled: bool,
    /// `recording.split_minutes`.
    pub split_minutes: u32,
    /// `recording.snapshot_seconds`.
    pub snapshot_seconds: u32,
    /// camgate: `recording.always`, every stream of the app is recorded.
    pub always_record: bool,
    /// camgate: `recording.retention_days`, VODs older are deleted (0 = keep).
    pub retention_days: u32,
    /// camgate: `recording.retention_max_gb`, oldest VODs go above this (0 = no cap).
    pub retention_max_gb: f64,
    /// `callbacks.url` (empty = off).
    pub callback_url: String,
    /// Whether a callback secret is set (the secret is never returned).
    pub callback_secret_set: bool,
    /// camgate: live publishers allowed at once (0 = unlimited).
    pub max_concurrent_streams: i64,
    /// Restream bytes allowed per calendar month, GB (0 = unlimited).
    pub max_egress_gb_month: f64,
}

/// Body of `POST /api/v1/apps`.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct CreateApp {
    /// Slug `^[a-z0-9][a-z0-9-]{1,30}[a-z0-9]$`.
    pub name: String,
    /// ≤ 100 characters; defaults to the name.
    pub display_name: Option<String>,
    /// ≤ 40 characters; defaults to the name.
    pub room_prefix: Option<String>,
}

/// Body of `PATCH /api/v1/apps/{name}` (every field optional).
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct PatchApp {
    /// ≤ 100 characters.
    pub display_name: Option<String>,
    /// `^[a-z0-9][a-z0-9-]{0,39}$`.
    pub room_prefix: Option<String>,
    /// `recording.enabled`.
    pub recording_enabled: Option<bool>,
    /// One of 0, 15, 30, 60, 90, 120.
    pub split_minutes: Option<u32>,
    /// One of 0, 1, 30, 60, 120, 360.
    pub snapshot_seconds: Option<u32>,
    /// camgate: record every stream of the app.
    pub always_record: Option<bool>,
    /// camgate: delete VODs older than this many days (0 = keep).
    pub retention_days: Option<u32>,
    /// camgate: delete the oldest VODs above this many GB (0 = no cap).
    pub retention_max_gb: Option<f64>,
    /// ≤ 2048 characters; empty turns callbacks off.
    pub callback_url: Option<String>,
    /// ≤ 256 characters.
    pub callback_secret: Option<String>,
    /// Feature flags to change.
    pub features: Option<PatchFeatures>,
    /// camgate: live publishers allowed at once in the app (0 = unlimited).
    pub max_concurrent_streams: Option<u32>,
    /// Restream bytes allowed per calendar month, GB (0 = unlimited).
    pub max_egress_gb_month: Option<f64>,
}

/// The reference's app name rule: `^[a-z0-9][a-z0-9-]{1,30}[a-z0-9]$`.
pub fn valid_app_name(s: &str) -> bool {
    let b = s.as_bytes();
    (3..=32).contains(&b.len())
        && b.iter()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || *c == b'-')
        && b[0] != b'-'
        && b[b.len() - 1] != b'-'
}

/// The reference's room prefix rule: `^[a-z0-9][a-z0-9-]{0,39}$`.
pub fn valid_room_prefix(s: &str) -> bool {
    let b = s.as_bytes();
    (1..=40).contains(&b.len())
        && b.iter()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || *c == b'-')
        && b[0] != b'-'
}

#[cfg(test)]
mod app_rules {
    use super::*;

    #[test]
    fn app_names_and_prefixes_follow_the_reference_patterns() {
        assert!(valid_app_name("live"));
        assert!(valid_app_name("abc"));
        assert!(valid_app_name("site-7"));
        assert!(!valid_app_name("ab"));
        assert!(!valid_app_name("-abc"));
        assert!(!valid_app_name("abc-"));
        assert!(!valid_app_name("Abc"));
        assert!(!valid_app_name("a_bc"));
        assert!(valid_app_name(&"a".repeat(32)));
        assert!(!valid_app_name(&"a".repeat(33)));
        assert!(valid_room_prefix("a"));
        assert!(valid_room_prefix("a-"));
        assert!(!valid_room_prefix("-a"));
        assert!(!valid_room_prefix(""));
        assert!(!valid_room_prefix(&"a".repeat(41)));
    }
}
