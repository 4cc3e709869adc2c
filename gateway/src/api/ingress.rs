//! Ingress (seed 001 "Ingress"): `POST/GET /api/v1/apps/{app}/ingress`,
//! `GET/DELETE …/ingress/{id}`. RTMP today; `url` (RTSP/HTTP pull) and
//! `whip` ingresses are refused with 400 `unsupported_input_type` until
//! they are built.
//!
//! The stream key is 24 random bytes, shown once at creation; only its
//! SHA-256 is stored and listings show it masked.
//!
//! Apps with the `rtmpPassword` feature also give each RTMP ingress a
//! `stream_password` (shown once, stored hashed). A push must carry it
//! (`…/{streamKey}?password=…`) or be validated through
//! `POST …/ingress/{id}/validate` within [`PASSWORD_WINDOW`]; otherwise it
//! is dropped with reason `unauthorized_rtmp_password` (see
//! `ingest::rtmp`).

use axum::extract::{Path, Query, State};
use axum::http::Method;
use axum::response::Response;
use camgate_protocols::api::{CreatedIngress, IngressInfo, MintIngress, hls_path, mask_key};
use serde::Deserialize;

use super::catalog::{Access, Routes};
use super::native::app_for;
use super::tokens::{check_stream_quota, room_of};
use super::{ApiError, ApiJson, Auth, created, ok};
use crate::auth::{hash_secret, now_rfc3339, random_id, random_secret};
use crate::hub::RoomKey;
use crate::server::SharedState;
use crate::store::{App, IngressRow};

/// Longest identity or display name.
const MAX_NAME: usize = 120;

/// Routes under `/api/v1`.
pub fn routes() -> Routes {
    Routes::new()
        .op(
            Method::GET,
            "/apps/{app}/ingress",
            Access::App("ingress:read"),
            "List ingresses with live state (?limit, offset, room, q)",
            list,
        )
        .op(
            Method::POST,
            "/apps/{app}/ingress",
            Access::App("ingress:create"),
            "Create an RTMP, WHIP or pulled (url) ingress",
            create,
        )
        .example(serde_json::json!({ "inputType": "rtmp", "room": "demo" }))
        .returns(201)
        .op(
            Method::GET,
            "/apps/{app}/ingress/{id}",
            Access::App("ingress:read"),
            "One ingress with live state",
            one,
        )
        .op(
            Method::DELETE,
            "/apps/{app}/ingress/{id}",
            Access::App("ingress:delete"),
            "Delete an ingress; a live publisher is dropped at once",
            remove,
        )
        .op(
            Method::POST,
            "/apps/{app}/ingress/{id}/validate",
            Access::App("ingress:write"),
            "Validate an RTMP stream_password (rtmpPassword feature)",
            validate,
        )
        .example(serde_json::json!({ "password": "…" }))
}

/// How long a push without its password waits for a validation, and how
/// long a validation made before the push stays good.
pub const PASSWORD_WINDOW: std::time::Duration = std::time::Duration::from_secs(15);

/// Longest stream password accepted by `validate` (the reference's limit).
const MAX_PASSWORD: usize = 256;

/// Body of `POST …/ingress/{id}/validate`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct ValidateBody {
    password: String,
}

async fn validate(
    State(state): State<SharedState>,
    Auth(who): Auth,
    Path((app, id)): Path<(String, String)>,
    ApiJson(body): ApiJson<ValidateBody>,
) -> Result<Response, ApiError> {
    let app = app_for(&state, &who, &app, "ingress:write").await?;
    if !app.feature("rtmpPassword") {
        return Err(ApiError::not_found(
            "feature_disabled",
            "the rtmpPassword feature is off for this app",
        ));
    }
    if body.password.is_empty() || body.password.len() > MAX_PASSWORD {
        return Err(ApiError::bad_request(
            "invalid_password",
            format!("password must be 1..={MAX_PASSWORD} bytes"),
        ));
    }
    let row = state
        .db
        .ingress(app.id, &id)
        .await?
        .filter(|r| r.input_type == "rtmp")
        .ok_or_else(|| ApiError::not_found("ingress_not_found", "no such RTMP ingress"))?;
    let valid = password_matches(&row, &body.password);
    if valid {
        let pending = state.rtmp.authorize(&row.id);
        tracing::info!(app = %app.name, ingress = %row.id, pending, "rtmp stream password validated");
    } else {
        tracing::warn!(app = %app.name, ingress = %row.id, "rtmp stream password rejected");
    }
    Ok(ok(
        serde_json::json!({ "ingressId": row.id, "valid": valid }),
    ))
}

/// Whether `password` is the ingress's stream password (constant time).
pub fn password_matches(row: &IngressRow, password: &str) -> bool {
    row.password_hash
        .as_deref()
        .is_some_and(|h| crate::auth::ct_eq(h, &hash_secret(password)))
}

async fn create(
    State(state): State<SharedState>,
    Auth(who): Auth,
    Path(app): Path<String>,
    ApiJson(body): ApiJson<MintIngress>,
) -> Result<Response, ApiError> {
    let app = app_for(&state, &who, &app, "ingress:create").await?;
    let whip = match body.input_type.as_str() {
        "rtmp" => false,
        "whip" => true,
        "url" => return create_pull(state, app, body).await,
        other => {
            return Err(ApiError::bad_request(
                "unsupported_input_type",
                format!(
                    "inputType {other:?} is not available; camgate takes \"rtmp\", \"whip\" and \"url\" here (cameras: ws-ingest)"
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
    let stream_password = (!whip && app.feature("rtmpPassword")).then(|| random_secret("", 12));
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
        password_hash: stream_password.as_deref().map(hash_secret),
        // The one option of a pushed ingress: always record it.
        options: body
            .record
            .filter(|r| *r)
            .map(|_| r#"{"record":true}"#.to_owned()),
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
        stream_key_camel: Some(stream_key.clone()),
        stream_key: Some(stream_key),
        room_name: room.clone(),
        requires_password: stream_password.is_some(),
        stream_password,
        adaptive: row.enable_transcoding,
        embed_iframe: embed_iframe(&urls.embed),
        player_url: urls.player,
        hls_url: format!("{}{}", state.public_base, hls_path(&app.name, &room)),
    }))
}

/// `inputType: "url"`: a pulled camera. The URL is checked, stored (its
/// credentials too: they are needed to reconnect) and pulled at once.
async fn create_pull(
    state: SharedState,
    app: App,
    body: MintIngress,
) -> Result<Response, ApiError> {
    let bad = |code, m: &str| ApiError::bad_request(code, m.to_owned());
    let raw = body
        .url
        .as_deref()
        .ok_or_else(|| bad("invalid_url", "inputType url needs a url"))?;
    if raw.len() > 2048 {
        return Err(bad("invalid_url", "url is longer than 2048"));
    }
    let parsed = url::Url::parse(raw).map_err(|_| bad("invalid_url", "url is not a valid URL"))?;
    if !matches!(parsed.scheme(), "rtsp" | "http") || parsed.host_str().is_none_or(str::is_empty) {
        return Err(bad(
            "invalid_url",
            "url must be rtsp://host/… (RTSP camera) or http://host/… (MJPEG stream or snapshot)",
        ));
    }
    let rtsp = parsed.scheme() == "rtsp";
    let udp = match body.transport.as_deref() {
        None | Some("tcp") => false,
        Some("udp") if rtsp => true,
        Some(_) => {
            return Err(bad(
                "invalid_transport",
                "transport is tcp or udp (RTSP only)",
            ));
        }
    };
    if body
        .poll_fps
        .is_some_and(|f| !(f.is_finite() && f > 0.0 && f <= 30.0))
    {
        return Err(bad("invalid_poll_fps", "pollFps must be > 0 and ≤ 30"));
    }
    if let Some(p) = &body.initial_timestamp
        && p.parse::<retina::client::InitialTimestampPolicy>().is_err()
    {
        return Err(bad(
            "invalid_initial_timestamp",
            "initialTimestamp is default, require, ignore or permissive",
        ));
    }
    if let Some(p) = &body.initial_seq
        && p.parse::<retina::client::InitialSequenceNumberPolicy>()
            .is_err()
    {
        return Err(bad(
            "invalid_initial_seq",
            "initialSeq is default, respect, ignore-suspicious-values or ignore",
        ));
    }
    let room = room_of(&app, body.room.as_deref())?;
    check_stream_quota(&state, &app)?;
    let options = crate::ingest::pull::PullOptions {
        udp,
        poll_fps: body.poll_fps,
        initial_timestamp: body.initial_timestamp.clone(),
        initial_seq: body.initial_seq.clone(),
        record: body.record.unwrap_or(false),
    };
    let row = IngressRow {
        id: random_id("IN_", 8),
        app_id: app.id,
        input_type: "url".into(),
        room: room.clone(),
        participant_identity: body
            .participant_identity
            .clone()
            .unwrap_or_else(|| format!("ingress-{}", app.name)),
        participant_name: body.participant_name.clone(),
        url: Some(raw.to_owned()),
        enable_transcoding: body.enable_transcoding.unwrap_or(false),
        key_last4: None,
        password_hash: None,
        options: serde_json::to_string(&options).ok(),
        created_at: now_rfc3339(),
    };
    state.db.insert_ingress(&row, None).await?;
    tracing::info!(app = %app.name, %room, ingress = %row.id, url = %crate::ingest::pull::redact(raw), "pulled ingress created");
    let urls = state.urls(&app.name, &room);
    let created_row = CreatedIngress {
        ingress_id: row.id.clone(),
        rtmp_url: None,
        url: crate::ingest::pull::without_credentials(raw),
        stream_key_camel: None,
        stream_key: None,
        room_name: room.clone(),
        requires_password: false,
        stream_password: None,
        adaptive: row.enable_transcoding,
        embed_iframe: embed_iframe(&urls.embed),
        player_url: urls.player,
        hls_url: format!("{}{}", state.public_base, hls_path(&app.name, &room)),
    };
    crate::ingest::pull::start(&state, &app.name, row);
    Ok(created(created_row))
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
    let app = app_for(&state, &who, &app, "ingress:read").await?;
    let (limit, offset) = super::paging(q.limit.as_deref(), q.offset.as_deref(), 50, 500)?;
    let room = q
        .room
        .as_deref()
        .map(|r| room_of(&app, Some(r)))
        .transpose()?;
    let search = q.q.as_deref().filter(|s| !s.is_empty());
    let (rows, total) = state
        .db
        .list_ingresses(app.id, room.as_deref(), search, limit, offset)
        .await?;
    let data: Vec<IngressInfo> = rows.iter().map(|r| info(&state, &app, r)).collect();
    Ok(super::page(data, total, limit, offset))
}

async fn one(
    State(state): State<SharedState>,
    Auth(who): Auth,
    Path((app, id)): Path<(String, String)>,
) -> Result<Response, ApiError> {
    let app = app_for(&state, &who, &app, "ingress:read").await?;
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
    let app = app_for(&state, &who, &app, "ingress:delete").await?;
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
        Some(r) if r.input_type == "url" => state.pulls.stop(&id),
        _ => state.rtmp.kick(&id),
    };
    tracing::info!(app = %app.name, ingress = %id, dropped, "ingress deleted");
    Ok(ok(serde_json::json!({ "ingressId": id, "deleted": true })))
}

/// The embed snippet of a room's player page.
fn embed_iframe(embed_url: &str) -> String {
    format!(
        "<iframe src=\"{embed_url}\" width=\"640\" height=\"360\" allow=\"autoplay; fullscreen\" allowfullscreen></iframe>"
    )
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
    if r.input_type == "url" {
        return pull_info(state, app, r);
    }
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
        url: ingress_url(state, app, r),
        stream_key: r.key_last4.as_ref().map(|l| {
            let prefix = if r.input_type == "whip" {
                super::whip::WHIP_KEY_PREFIX
            } else {
                "sk-"
            };
            mask_key(prefix, l)
        }),
        adaptive: r.enable_transcoding,
        requires_password: r.input_type == "rtmp" && app.feature("rtmpPassword"),
        status: if live.is_some() || whip_live {
            "publishing"
        } else if state.rtmp.is_pending(&r.id) {
            "pending_validation"
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
        last_error: None,
        retries: 0,
        created_at: r.created_at.clone(),
    }
}

/// A pulled ingress with its puller's state.
fn pull_info(state: &SharedState, app: &App, r: &IngressRow) -> IngressInfo {
    use std::sync::atomic::Ordering::Relaxed;
    let live = state.pulls.get(&r.id);
    let (status, last_error) = live.as_ref().map_or(("inactive", None), |l| l.status());
    let nonzero = |v: u32| (v > 0).then_some(v);
    let publishing = status == "publishing";
    let viewers = state
        .hub
        .get(&RoomKey {
            app: app.name.clone(),
            room: r.room.clone(),
        })
        .map_or(0, |room| room.viewer_count() as u64);
    IngressInfo {
        ingress_id: r.id.clone(),
        input_type: r.input_type.clone(),
        room_name: r.room.clone(),
        participant_identity: r.participant_identity.clone(),
        participant_name: r.participant_name.clone(),
        url: r
            .url
            .as_deref()
            .map(crate::ingest::pull::without_credentials)
            .unwrap_or_default(),
        stream_key: None,
        adaptive: r.enable_transcoding,
        requires_password: false,
        status: status.into(),
        bitrate: live
            .as_ref()
            .filter(|_| publishing)
            .map_or(0, |l| l.bitrate()),
        width: live.as_ref().and_then(|l| nonzero(l.width.load(Relaxed))),
        height: live.as_ref().and_then(|l| nonzero(l.height.load(Relaxed))),
        viewers,
        last_error,
        retries: live.as_ref().map_or(0, |l| l.retries.load(Relaxed)),
        created_at: r.created_at.clone(),
    }
}
