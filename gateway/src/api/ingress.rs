//! Ingress (seed 001 "Ingress"): `POST/GET /api/v1/apps/{app}/ingress`,
//! `GET/DELETE …/ingress/{id}`. RTMP today; `url` (RTSP/HTTP pull) and
//! `whip` ingresses are refused with 400 `unsupported_input_type` until
//! they are built.
//!
//! The stream key is 24 random bytes, shown once at creation; only its
//! SHA-256 is stored and listings show it masked.

use axum::Json;
use axum::Router;
use axum::extract::{Path, Query, State};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use camgate_protocols::api::{CreatedIngress, IngressInfo, MintIngress, hls_path, mask_key};
use serde::Deserialize;

use super::native::load_app;
use super::tokens::{check_stream_quota, room_of};
use super::{ApiError, ApiJson, Auth, created, ok};
use crate::auth::{hash_secret, now_rfc3339, random_id, random_secret};
use crate::hub::RoomKey;
use crate::server::SharedState;
use crate::store::{App, IngressRow};

/// Longest identity or display name.
const MAX_NAME: usize = 120;

/// Routes under `/api/v1`.
pub fn routes() -> Router<SharedState> {
    Router::new()
        .route("/apps/{app}/ingress", get(list).post(create))
        .route("/apps/{app}/ingress/{id}", get(one).delete(remove))
}

async fn create(
    State(state): State<SharedState>,
    Auth(who): Auth,
    Path(app): Path<String>,
    ApiJson(body): ApiJson<MintIngress>,
) -> Result<Response, ApiError> {
    let app = load_app(&state, &app).await?;
    who.require(app.id, "ingress:create")?;
    let whip = match body.input_type.as_str() {
        "rtmp" => false,
        "whip" => true,
        other => {
            return Err(ApiError::bad_request(
                "unsupported_input_type",
                format!(
                    "inputType {other:?} is not available; camgate takes \"rtmp\" and \"whip\" here (cameras: ws-ingest)"
                ),
            ));
        }
    };
    let room = room_of(&app, body.room.as_deref())?;
    for (field, v) in [
        ("participantIdentity", &body.participant_identity),
        ("participantName", &body.participant_name),
    ] {
        if v.as_ref()
            .is_some_and(|v| v.is_empty() || v.chars().count() > MAX_NAME)
        {
            return Err(ApiError::bad_request(
                "invalid_body",
                format!("{field} must be 1..={MAX_NAME} characters"),
            ));
        }
    }
    check_stream_quota(&state, &app)?;
    let stream_key = if whip {
        random_secret(super::whip::WHIP_KEY_PREFIX, 24)
    } else {
        random_secret("sk-", 24)
    };
    let row = IngressRow {
        id: random_id("IN_", 8),
        app_id: app.id,
        input_type: if whip { "whip" } else { "rtmp" }.into(),
        room: room.clone(),
        participant_identity: body
            .participant_identity
            .clone()
            .unwrap_or_else(|| format!("ingress-{}", app.name)),
        participant_name: body.participant_name.clone(),
        url: None,
        enable_transcoding: body.enable_transcoding.unwrap_or(false),
        key_last4: Some(stream_key[stream_key.len() - 4..].to_owned()),
        created_at: now_rfc3339(),
    };
    state
        .db
        .insert_ingress(&row, Some(&hash_secret(&stream_key)))
        .await?;
    tracing::info!(app = %app.name, %room, ingress = %row.id, input = %row.input_type, "ingress created");
    let url = ingress_url(&state, &app, &row);
    let urls = state.urls(&app.name, &room);
    Ok(created(CreatedIngress {
        ingress_id: row.id,
        rtmp_url: (!whip).then(|| format!("{url}/{stream_key}")),
        url,
        stream_key_camel: stream_key.clone(),
        stream_key,
        room_name: room.clone(),
        requires_password: false,
        adaptive: row.enable_transcoding,
        embed_iframe: format!(
            "<iframe src=\"{}\" width=\"640\" height=\"360\" allow=\"autoplay; fullscreen\" allowfullscreen></iframe>",
            urls.embed
        ),
        player_url: urls.player,
        hls_url: format!("{}{}", state.public_base, hls_path(&app.name, &room)),
    }))
}

#[derive(Debug, Deserialize)]
struct ListQuery {
    limit: Option<String>,
    offset: Option<String>,
    room: Option<String>,
    q: Option<String>,
}

async fn list(
    State(state): State<SharedState>,
    Auth(who): Auth,
    Path(app): Path<String>,
    Query(q): Query<ListQuery>,
) -> Result<Response, ApiError> {
    let app = load_app(&state, &app).await?;
    who.require(app.id, "ingress:read")?;
    let limit = match q.limit.as_deref() {
        None => 50,
        Some(l) => l
            .parse::<i64>()
            .ok()
            .filter(|l| (1..=500).contains(l))
            .ok_or_else(|| ApiError::bad_request("invalid_limit", "limit must be 1..=500"))?,
    };
    let offset = match q.offset.as_deref() {
        None => 0,
        Some(o) => o
            .parse::<i64>()
            .ok()
            .filter(|o| *o >= 0)
            .ok_or_else(|| ApiError::bad_request("invalid_offset", "offset must be ≥ 0"))?,
    };
    let room = match q.room.as_deref() {
        Some(r) => Some(room_of(&app, Some(r))?),
        None => None,
    };
    let search = q.q.as_deref().filter(|s| !s.is_empty());
    let (rows, total) = state
        .db
        .list_ingresses(app.id, room.as_deref(), search, limit, offset)
        .await?;
    let data: Vec<IngressInfo> = rows.iter().map(|r| info(&state, &app, r)).collect();
    Ok(Json(serde_json::json!({
        "data": data,
        "total": total,
        "limit": limit,
        "offset": offset,
        "error": null,
    }))
    .into_response())
}

async fn one(
    State(state): State<SharedState>,
    Auth(who): Auth,
    Path((app, id)): Path<(String, String)>,
) -> Result<Response, ApiError> {
    let app = load_app(&state, &app).await?;
    who.require(app.id, "ingress:read")?;
    let row = state
        .db
        .ingress(app.id, &id)
        .await?
        .ok_or_else(|| ApiError::not_found("ingress_not_found", "no such ingress"))?;
    Ok(ok(info(&state, &app, &row)))
}

async fn remove(
    State(state): State<SharedState>,
    Auth(who): Auth,
    Path((app, id)): Path<(String, String)>,
) -> Result<Response, ApiError> {
    let app = load_app(&state, &app).await?;
    who.require(app.id, "ingress:delete")?;
    let row = state.db.ingress(app.id, &id).await?;
    if !state.db.delete_ingress(app.id, &id).await? {
        return Err(ApiError::not_found("ingress_not_found", "no such ingress"));
    }
    let dropped = match &row {
        Some(r) if r.input_type == "whip" => {
            let key = RoomKey {
                app: app.name.clone(),
                room: r.room.clone(),
            };
            state
                .media
                .end_publisher(&key, &r.participant_identity)
                .await
        }
        _ => state.rtmp.kick(&id),
    };
    tracing::info!(app = %app.name, ingress = %id, dropped, "ingress deleted");
    Ok(ok(serde_json::json!({ "ingressId": id, "deleted": true })))
}

/// Where an encoder sends an ingress's media: the app's RTMP URL, or the
/// room's WHIP endpoint (with `?app=` outside the default app).
fn ingress_url(state: &SharedState, app: &App, r: &IngressRow) -> String {
    if r.input_type == "whip" {
        let query = if app.name == "live" {
            String::new()
        } else {
            format!("?app={}", app.name)
        };
        format!(
            "{}{}{query}",
            state.public_base,
            camgate_protocols::api::whip_path(&r.room)
        )
    } else {
        state.rtmp_url(&app.name)
    }
}

/// An ingress row with its live state.
fn info(state: &SharedState, app: &App, r: &IngressRow) -> IngressInfo {
    let live = state.rtmp.get(&r.id);
    let room = state.hub.get(&RoomKey {
        app: app.name.clone(),
        room: r.room.clone(),
    });
    let nonzero = |v: u32| (v > 0).then_some(v);
    let whip_live = r.input_type == "whip"
        && room
            .as_ref()
            .is_some_and(|room| room.publisher() == Some(camgate_sfu::SourceKind::Whip));
    IngressInfo {
        ingress_id: r.id.clone(),
        input_type: r.input_type.clone(),
        room_name: r.room.clone(),
        participant_identity: r.participant_identity.clone(),
        participant_name: r.participant_name.clone(),
        url: r.url.clone().unwrap_or_else(|| ingress_url(state, app, r)),
        stream_key: r.key_last4.as_ref().map(|l| {
            let prefix = if r.input_type == "whip" {
                super::whip::WHIP_KEY_PREFIX
            } else {
                "sk-"
            };
            mask_key(prefix, l)
        }),
        adaptive: r.enable_transcoding,
        status: if live.is_some() || whip_live {
            "publishing"
        } else {
            "inactive"
        }
        .into(),
        bitrate: live.as_ref().map_or(0, |l| l.bitrate()),
        width: live
            .as_ref()
            .and_then(|l| nonzero(l.width.load(std::sync::atomic::Ordering::Relaxed))),
        height: live
            .as_ref()
            .and_then(|l| nonzero(l.height.load(std::sync::atomic::Ordering::Relaxed))),
        viewers: room.map_or(0, |r| r.viewer_count() as u64),
        created_at: r.created_at.clone(),
    }
}
