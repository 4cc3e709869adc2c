//! The native app-scoped API of seed 001: `/api/v1/apps/{app}/…`.
//!
//! This part: camera keys for the device WebSocket (`ws-ingest`).

use axum::extract::{Path, State};
use axum::http::Method;
use axum::response::Response;
use camgate_protocols::api::{
    LiveInfo, MintWsIngest, MintedWsIngest, WsIngestKey, mask_key, namespace_room, validate_slug,
};

use super::catalog::{Access, Routes};
use super::{ApiError, ApiJson, Auth, created, ok};
use crate::auth::{hash_secret, now_rfc3339, random_id, random_secret};
use crate::server::{SharedState, Urls};
use crate::store::{App, WsKey};

/// Routes under `/api/v1`.
pub fn routes() -> Routes {
    Routes::new()
        .op(
            Method::GET,
            "/apps/{app}/ws-ingest",
            Access::App("ingress:read"),
            "List camera keys (masked) with live state",
            list_ws_keys,
        )
        .op(
            Method::POST,
            "/apps/{app}/ws-ingest",
            Access::App("ingress:create"),
            "Mint a camera key for the device WebSocket (shown once)",
            mint_ws_key,
        )
        .example(serde_json::json!({ "room": "cam1" }))
        .returns(201)
        .op(
            Method::DELETE,
            "/apps/{app}/ws-ingest/{id}",
            Access::App("ingress:delete"),
            "Revoke a camera key; a live camera is closed with 4401",
            revoke_ws_key,
        )
        .op(
            Method::GET,
            "/apps/{app}/ws-ingest/live/{room}",
            Access::Public,
            "Live state and playback URLs of a room (needs publicPlayback)",
            live_info,
        )
        .merge(super::apps::routes())
        .merge(super::api_tokens::routes())
        .merge(super::snapshots::routes())
        .merge(super::streams::routes())
        .merge(super::chat::routes())
        .merge(super::config::routes())
        .merge(super::vods::routes())
        .merge(super::restream::routes())
        .merge(super::stats::routes())
        .merge(super::tokens::routes())
        .merge(super::ingress::routes())
}

/// Loads an app or answers 404 `app_not_found`.
pub async fn load_app(state: &SharedState, name: &str) -> Result<App, ApiError> {
    if validate_slug(name).is_err() {
        return Err(ApiError::not_found("app_not_found", "unknown app"));
    }
    state
        .db
        .app_by_name(name)
        .await?
        .ok_or_else(|| ApiError::not_found("app_not_found", format!("unknown app {name}")))
}

/// Loads an app and checks that `who` may do `permission` in it.
pub async fn app_for(
    state: &SharedState,
    who: &crate::auth::Principal,
    name: &str,
    permission: &'static str,
) -> Result<App, ApiError> {
    let app = load_app(state, name).await?;
    who.require(app.id, permission)?;
    Ok(app)
}

async fn mint_ws_key(
    State(state): State<SharedState>,
    Auth(who): Auth,
    Path(app): Path<String>,
    ApiJson(body): ApiJson<MintWsIngest>,
) -> Result<Response, ApiError> {
    let app = app_for(&state, &who, &app, "ingress:create").await?;
    validate_slug(&body.room)
        .map_err(|e| ApiError::bad_request("invalid_room", format!("room {e}")))?;
    if let Some(identity) = &body.identity {
        validate_slug(identity)
            .map_err(|e| ApiError::bad_request("invalid_identity", format!("identity {e}")))?;
    }
    let room = namespace_room(&app.room_prefix, Some(&body.room));
    let stream_key = random_secret("wsk_", 24);
    let tail = &stream_key[stream_key.len() - 6..];
    let identity = body
        .identity
        .clone()
        .unwrap_or_else(|| format!("wscam-{tail}"));
    let key = WsKey {
        id: random_id("wsi_", 6),
        app_id: app.id,
        room: room.clone(),
        identity: identity.clone(),
        key_last4: stream_key[stream_key.len() - 4..].to_owned(),
        created_at: now_rfc3339(),
    };
    state
        .db
        .insert_ws_key(&key, &hash_secret(&stream_key))
        .await?;
    tracing::info!(app = %app.name, %room, key_id = %key.id, "camera key minted");
    let urls = state.urls(&app.name, &room);
    Ok(created(MintedWsIngest {
        id: key.id,
        stream_key,
        room,
        identity,
        ws_url: state.ingest_ws_url(&app.name, &body.room),
        mjpeg_url: urls.mjpeg,
        frame_url: urls.frame,
        player_url: urls.player,
        embed_url: urls.embed,
    }))
}

async fn list_ws_keys(
    State(state): State<SharedState>,
    Auth(who): Auth,
    Path(app): Path<String>,
) -> Result<Response, ApiError> {
    let app = app_for(&state, &who, &app, "ingress:read").await?;
    let keys = state.db.list_ws_keys(app.id).await?;
    let rows: Vec<WsIngestKey> = keys
        .into_iter()
        .map(|k| {
            let live = state.cameras.stats(&k.id);
            let viewers = state
                .hub
                .get(&crate::hub::RoomKey {
                    app: app.name.clone(),
                    room: k.room.clone(),
                })
                .map_or(0, |r| r.viewer_count() as u64);
            WsIngestKey {
                stream_key: mask_key("wsk_", &k.key_last4),
                active: live.is_some(),
                frames_received: live.as_ref().map_or(0, |s| s.frames()),
                frames_dropped: live.as_ref().map(|s| s.drops()).unwrap_or_default(),
                viewers,
                id: k.id,
                room: k.room,
                identity: k.identity,
                created_at: k.created_at,
            }
        })
        .collect();
    Ok(ok(rows))
}

async fn revoke_ws_key(
    State(state): State<SharedState>,
    Auth(who): Auth,
    Path((app, id)): Path<(String, String)>,
) -> Result<Response, ApiError> {
    let app = app_for(&state, &who, &app, "ingress:delete").await?;
    if !state.db.revoke_ws_key(app.id, &id).await? {
        return Err(ApiError::not_found(
            "key_not_found",
            format!("no camera key {id}"),
        ));
    }
    let closed = state.cameras.kick(&id, crate::ingest::ws::Kick::revoked());
    tracing::info!(app = %app.name, key_id = %id, closed, "camera key revoked");
    Ok(ok(serde_json::json!({ "id": id, "deleted": true })))
}

async fn live_info(
    State(state): State<SharedState>,
    Path((app, room)): Path<(String, String)>,
) -> Result<Response, ApiError> {
    let app = load_app(&state, &app).await?;
    if !app.public_playback {
        return Err(ApiError::not_found(
            "not_found",
            "public playback is off for this app",
        ));
    }
    let room = namespace_room(&app.room_prefix, Some(&room));
    let key = crate::hub::RoomKey {
        app: app.name.clone(),
        room: room.clone(),
    };
    let publisher = state.hub.get(&key).and_then(|r| r.publisher());
    // Cameras have HLS on demand (through the transcoder); other sources
    // while their playlist is live.
    let camera = publisher.is_some_and(|k| k.codec() == camgate_sfu::Codec::Jpeg);
    let hls_url =
        (camera || state.hls.get(&key).is_some_and(|s| !s.with(|p| p.ended()))).then(|| {
            format!(
                "{}{}",
                state.public_base,
                camgate_protocols::api::hls_path(&app.name, &room)
            )
        });
    let info = if let Some(kind) = publisher {
        let Urls { mjpeg, frame, .. } = state.urls(&app.name, &room);
        // Every source plays as MJPEG: cameras as they are, H.264 sources
        // through the H.264 → MJPEG transcoder.
        LiveInfo {
            active: true,
            kind: Some(kind.as_str().into()),
            ws_url: Some(state.viewer_ws_url(&app.name, &room)),
            whep_url: Some(format!(
                "{}{}",
                state.public_base,
                camgate_protocols::api::whep_path(&room)
            )),
            room,
            mjpeg_url: Some(mjpeg),
            hls_url,
            frame_url: Some(frame),
        }
    } else {
        LiveInfo {
            active: false,
            kind: None,
            room,
            mjpeg_url: None,
            frame_url: None,
            ws_url: None,
            whep_url: None,
            hls_url: None,
        }
    };
    Ok(ok(info))
}
