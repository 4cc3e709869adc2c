//! Streams (seed 001 "Streams"): `GET /api/v1/apps/{app}/streams`,
//! `GET …/streams/{id}`, `DELETE …/streams/{id}`.
//!
//! A stream is a publisher in a room — a camera on the device WebSocket, a
//! WHIP publisher, an RTMP push or a pulled camera — one row per canonical
//! id `<room>/<identity>` (the `{id}` in paths, URL-encoded: `live-demo%2Fcam`;
//! the numeric row id works too). Rows carry `lastStatsJson` as the
//! reference has it (`{"live", "participants", "publishers"}`) and, with the
//! app's `viewerCounter` feature, `viewers` (MJPEG, viewer WebSocket and
//! WebRTC viewers; hidden ones not counted).
//!
//! Stopping a stream (`stream:stop`) disconnects the publisher at once: a
//! camera is closed (1000 `stream stopped`; it may reconnect — revoke its key
//! to keep it out), a WHIP session ends, and an ingress (RTMP push, pulled
//! camera) is removed with its key, as the reference does. The row is
//! always marked ended.

use axum::extract::{Path, Query, State};
use axum::http::Method;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use camgate_sfu::SourceKind;
use serde::{Deserialize, Serialize};

use super::catalog::{Access, Routes};
use super::native::app_for;
use super::{ApiError, Auth, ok};
use crate::hub::RoomKey;
use crate::server::SharedState;
use crate::store::{App, StreamRow};

/// Routes under `/api/v1`.
pub fn routes() -> Routes {
    Routes::new()
        .op(
            Method::GET,
            "/apps/{app}/streams",
            Access::App("stream:read"),
            "List streams (?status=active|ended|all, paged)",
            list,
        )
        .op(
            Method::GET,
            "/apps/{app}/streams/{id}",
            Access::App("stream:read"),
            "One stream by <room>/<identity> (URL-encoded) or row id",
            one,
        )
        .op(
            Method::DELETE,
            "/apps/{app}/streams/{id}",
            Access::App("stream:stop"),
            "Stop a stream: disconnect the publisher, mark the row ended",
            stop,
        )
        .returns(204)
}

/// A stream as the API shows it.
#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
struct StreamInfo {
    id: i64,
    stream_id: String,
    #[serde(rename = "type")]
    kind: String,
    room: String,
    participant: String,
    status: String,
    started_at: String,
    ended_at: Option<String>,
    last_stats_json: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    viewers: Option<u64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    camera_stats: Option<serde_json::Value>,
}

fn info(state: &SharedState, app: &App, s: StreamRow) -> StreamInfo {
    let room = state.hub.get(&RoomKey {
        app: app.name.clone(),
        room: s.room.clone(),
    });
    let live = s.status == "active" && room.as_ref().is_some_and(|r| r.publisher().is_some());
    let viewers = room.as_ref().map_or(0, |r| r.viewer_count() as u64);
    StreamInfo {
        id: s.id,
        last_stats_json: serde_json::json!({
            "live": live,
            "participants": viewers + u64::from(live),
            "publishers": u64::from(live),
        })
        .to_string(),
        viewers: app.feature("viewerCounter").then_some(viewers),
        camera_stats: s
            .last_stats_json
            .as_deref()
            .and_then(|j| serde_json::from_str(j).ok()),
        stream_id: s.stream_id,
        kind: s.kind,
        room: s.room,
        participant: s.identity,
        status: s.status,
        started_at: s.started_at,
        ended_at: s.ended_at,
    }
}

#[derive(Debug, Deserialize)]
struct ListQuery {
    status: Option<String>,
    limit: Option<String>,
    offset: Option<String>,
}

async fn list(
    State(state): State<SharedState>,
    Auth(who): Auth,
    Path(app): Path<String>,
    Query(q): Query<ListQuery>,
) -> Result<Response, ApiError> {
    let app = app_for(&state, &who, &app, "stream:read").await?;
    let status = match q.status.as_deref() {
        None | Some("active") => Some("active"),
        Some("ended") => Some("ended"),
        Some("all") => None,
        Some(_) => {
            return Err(ApiError::bad_request(
                "invalid_status",
                "status is active, ended or all",
            ));
        }
    };
    let (limit, offset) = super::paging(q.limit.as_deref(), q.offset.as_deref(), 100, 1000)?;
    let (rows, total) = state.db.list_streams(app.id, status, limit, offset).await?;
    let data: Vec<StreamInfo> = rows.into_iter().map(|r| info(&state, &app, r)).collect();
    Ok(super::page(data, total, limit, offset))
}

pub(crate) async fn load(state: &SharedState, app: &App, id: &str) -> Result<StreamRow, ApiError> {
    state
        .db
        .stream(app.id, id)
        .await?
        .ok_or_else(|| ApiError::not_found("stream_not_found", format!("no stream {id}")))
}

async fn one(
    State(state): State<SharedState>,
    Auth(who): Auth,
    Path((app, id)): Path<(String, String)>,
) -> Result<Response, ApiError> {
    let app = app_for(&state, &who, &app, "stream:read").await?;
    let row = load(&state, &app, &id).await?;
    Ok(ok(info(&state, &app, row)))
}

async fn stop(
    State(state): State<SharedState>,
    Auth(who): Auth,
    Path((app, id)): Path<(String, String)>,
) -> Result<Response, ApiError> {
    let app = app_for(&state, &who, &app, "stream:stop").await?;
    let row = load(&state, &app, &id).await?;
    let key = RoomKey {
        app: app.name.clone(),
        room: row.room.clone(),
    };
    let slot = state.hub.get(&key);
    let kind = slot.as_ref().and_then(|r| r.publisher());
    let owner = slot.as_ref().and_then(|r| r.publisher_owner());
    let mut stopped = false;
    if row.status == "active"
        && let (Some(kind), Some(owner)) = (kind, owner)
    {
        stopped = match kind {
            SourceKind::WsMjpeg => state
                .cameras
                .kick(&owner, crate::ingest::ws::Kick::stopped()),
            SourceKind::Whip => state.media.end_publisher(&key, &row.identity).await,
            _ => {
                // An ingress: removed, as the reference does.
                state.db.delete_ingress(app.id, &owner).await?;
                state.rtmp.kick(&owner) | state.pulls.stop(&owner)
            }
        };
    }
    state.db.end_stream(app.id, &row.stream_id).await?;
    tracing::info!(app = %app.name, stream = %row.stream_id, stopped, "stream stopped through the API");
    Ok(StatusCode::NO_CONTENT.into_response())
}
