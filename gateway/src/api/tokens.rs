//! Join tokens (seed 001 "Tokens", reference §3.4):
//! `POST /api/v1/apps/{app}/tokens` (permission `stream:write`),
//! `GET /api/v1/apps/{app}/play-token/{room}` (public, gated by
//! `publicPlayback`), `GET /api/v1/apps/{app}/radio/{room}/listen-token`
//! (public, audio only), and `POST /api/v1/signing-keys/rotate` (global
//! tokens only) to rotate the signing key.

use axum::extract::{Path, State};
use axum::http::Method;
use axum::response::Response;
use camgate_protocols::api::{
    JoinToken, MintJoinToken, PlayToken, namespace_room, validate_room_name, whep_path, whip_path,
};

use super::catalog::{Access, Routes};
use super::native::{app_for, load_app};
use super::{ApiError, ApiJson, Auth, created, ok};
use crate::auth::jwt::{JoinClaims, VideoGrant, parse_ttl};
use crate::auth::random_id;
use crate::server::SharedState;
use crate::store::App;

/// Default token lifetime.
const DEFAULT_TTL: &str = "6h";
/// Longest identity or display name.
const MAX_NAME: usize = 120;
/// Longest metadata.
const MAX_METADATA: usize = 2000;

/// Routes under `/api/v1`.
pub fn routes() -> Routes {
    Routes::new()
        .op(
            Method::POST,
            "/apps/{app}/tokens",
            Access::App("stream:write"),
            "Mint a join token (publish or subscribe) for a room",
            mint,
        )
        .example(serde_json::json!({ "room": "demo", "identity": "viewer-1", "canPublish": false }))
        .returns(201)
        .op(
            Method::GET,
            "/apps/{app}/play-token/{room}",
            Access::Public,
            "Anonymous subscribe-only token (needs publicPlayback)",
            play_token,
        )
        .op(
            Method::GET,
            "/apps/{app}/radio/{room}/listen-token",
            Access::Public,
            "Anonymous audio-only token (needs publicPlayback)",
            listen_token,
        )
        .op(
            Method::POST,
            "/signing-keys/rotate",
            Access::Admin,
            "Rotate the join-token signing key (old key verifies until expiry)",
            rotate,
        )
        .returns(201)
}

fn now() -> i64 {
    time::OffsetDateTime::now_utc().unix_timestamp()
}

fn rfc3339(unix: i64) -> String {
    time::OffsetDateTime::from_unix_timestamp(unix)
        .ok()
        .and_then(|t| {
            t.format(&time::format_description::well_known::Rfc3339)
                .ok()
        })
        .unwrap_or_default()
}

fn check_text(
    field: &'static str,
    code: &'static str,
    v: &str,
    max: usize,
) -> Result<(), ApiError> {
    if v.is_empty() || v.chars().count() > max || v.chars().any(char::is_control) {
        return Err(ApiError::bad_request(
            code,
            format!("{field} must be 1..={max} printable characters"),
        ));
    }
    Ok(())
}

/// 429 `quota_exceeded` (reference §12) when the app already has `max_concurrent_streams`
/// live publishers (checked when publisher credentials are issued).
pub(super) fn check_stream_quota(state: &SharedState, app: &App) -> Result<(), ApiError> {
    if app.max_concurrent_streams > 0 {
        let live = state.hub.publishers_in_app(&app.name) as i64;
        if live >= app.max_concurrent_streams {
            return Err(ApiError::Status {
                status: axum::http::StatusCode::TOO_MANY_REQUESTS,
                code: "quota_exceeded",
                message: format!(
                    "app has {live} live streams; max_concurrent_streams is {}",
                    app.max_concurrent_streams
                ),
            });
        }
    }
    Ok(())
}

/// The namespaced room of a request (400 `invalid_room` when malformed).
pub(super) fn room_of(app: &App, room: Option<&str>) -> Result<String, ApiError> {
    if let Some(r) = room {
        validate_room_name(r)
            .map_err(|e| ApiError::bad_request("invalid_room", format!("room {e}")))?;
    }
    Ok(namespace_room(&app.room_prefix, room))
}

struct Grant<'a> {
    identity: String,
    name: Option<String>,
    metadata: Option<String>,
    ttl_secs: i64,
    video: VideoGrant,
    app: &'a App,
}

fn sign(state: &SharedState, g: Grant<'_>) -> (String, i64) {
    let iat = now();
    let exp = iat + g.ttl_secs;
    let claims = JoinClaims {
        iss: "camgate".into(),
        sub: g.identity,
        name: g.name,
        metadata: g.metadata,
        app: g.app.name.clone(),
        iat,
        nbf: iat,
        exp,
        jti: random_id("", 8),
        video: g.video,
    };
    (state.keys.sign(&claims), exp)
}

async fn mint(
    State(state): State<SharedState>,
    Auth(who): Auth,
    Path(app): Path<String>,
    ApiJson(body): ApiJson<MintJoinToken>,
) -> Result<Response, ApiError> {
    let app = app_for(&state, &who, &app, "stream:write").await?;
    let room = room_of(&app, body.room.as_deref())?;
    let identity = match body.identity {
        Some(i) => {
            check_text("identity", "invalid_identity", &i, MAX_NAME)?;
            i
        }
        None => format!("anon-{}", uuid_v4()),
    };
    if let Some(n) = &body.name {
        check_text("name", "invalid_name", n, MAX_NAME)?;
    }
    if let Some(m) = &body.metadata
        && m.chars().count() > MAX_METADATA
    {
        return Err(ApiError::bad_request(
            "invalid_metadata",
            "metadata must be at most 2000 characters",
        ));
    }
    let ttl = body.ttl.as_deref().unwrap_or(DEFAULT_TTL);
    let ttl_secs = parse_ttl(ttl).ok_or_else(|| {
        ApiError::bad_request(
            "invalid_ttl",
            "ttl must look like 30s, 10m, 6h or 7d (≤ 30d)",
        )
    })?;
    let hidden = body.hidden.unwrap_or(false);
    let recorder = body.recorder.unwrap_or(false);
    if (hidden || recorder) && !app.hidden_qc {
        return Err(ApiError::Forbidden {
            code: "feature_disabled",
            message: "hidden/recorder tokens need the app's hiddenQc feature".into(),
        });
    }
    // A recorder is subscribe-only unless publishing is asked for explicitly.
    let can_publish = body.can_publish.unwrap_or(!recorder);
    if can_publish {
        check_stream_quota(&state, &app)?;
    }
    let (token, exp) = sign(
        &state,
        Grant {
            identity: identity.clone(),
            name: body.name,
            metadata: body.metadata,
            ttl_secs,
            video: VideoGrant {
                room: room.clone(),
                room_join: true,
                can_publish,
                can_subscribe: body.can_subscribe.unwrap_or(true),
                can_publish_data: true,
                hidden,
                recorder,
                audio_only: body.audio_only.unwrap_or(false),
            },
            app: &app,
        },
    );
    let urls = state.urls(&app.name, &room);
    let iframe = format!(
        "<iframe src=\"{}\" width=\"640\" height=\"360\" allow=\"autoplay; fullscreen; camera; microphone\" allowfullscreen></iframe>",
        urls.embed
    );
    Ok(created(JoinToken {
        token,
        app: app.name.clone(),
        room: room.clone(),
        identity,
        ws_url: state.ws_base(),
        play_url: urls.player,
        embed_url: urls.embed,
        iframe,
        whip_url: format!("{}{}", state.public_base, whip_path(&room)),
        whep_url: format!("{}{}", state.public_base, whep_path(&room)),
        expires_at: rfc3339(exp),
    }))
}

async fn anonymous(
    state: SharedState,
    app: String,
    room: String,
    listener: bool,
) -> Result<Response, ApiError> {
    let app = load_app(&state, &app).await?;
    if !listener && !app.public_playback {
        return Err(ApiError::not_found(
            "not_found",
            "public playback is off for this app",
        ));
    }
    let room = room_of(&app, Some(&room))?;
    let (prefix, mode) = if listener {
        ("listener-", "listener")
    } else {
        ("viewer-", "viewer")
    };
    let (token, _) = sign(
        &state,
        Grant {
            identity: random_id(prefix, 4),
            name: None,
            metadata: None,
            ttl_secs: parse_ttl(DEFAULT_TTL).unwrap_or(21_600),
            video: VideoGrant {
                room: room.clone(),
                room_join: true,
                can_publish: false,
                can_subscribe: true,
                can_publish_data: false,
                hidden: true,
                recorder: false,
                audio_only: listener,
            },
            app: &app,
        },
    );
    Ok(ok(PlayToken {
        token,
        app: app.name.clone(),
        whep_url: format!("{}{}", state.public_base, whep_path(&room)),
        room,
        ws_url: state.ws_base(),
        mode: mode.into(),
    }))
}

async fn play_token(
    State(state): State<SharedState>,
    Path((app, room)): Path<(String, String)>,
) -> Result<Response, ApiError> {
    anonymous(state, app, room, false).await
}

async fn listen_token(
    State(state): State<SharedState>,
    Path((app, room)): Path<(String, String)>,
) -> Result<Response, ApiError> {
    anonymous(state, app, room, true).await
}

async fn rotate(State(state): State<SharedState>, Auth(who): Auth) -> Result<Response, ApiError> {
    if who.app_id.is_some() || who.permissions.is_some() {
        return Err(ApiError::Forbidden {
            code: "permission_denied",
            message: "rotating the signing key needs a global token".into(),
        });
    }
    let kid = state
        .keys
        .rotate()
        .map_err(|e| ApiError::Internal(format!("signing key rotation: {e}")))?;
    tracing::info!(kid, "join token signing key rotated");
    Ok(created(serde_json::json!({ "kid": kid })))
}

/// A random (version 4) UUID in its usual text form.
fn uuid_v4() -> String {
    let mut b = [0u8; 16];
    rand::fill(&mut b);
    b[6] = (b[6] & 0x0f) | 0x40;
    b[8] = (b[8] & 0x3f) | 0x80;
    let h: String = b.iter().map(|x| format!("{x:02x}")).collect();
    format!(
        "{}-{}-{}-{}-{}",
        &h[0..8],
        &h[8..12],
        &h[12..16],
        &h[16..20],
        &h[20..32]
    )
}
