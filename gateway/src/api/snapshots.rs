//! On-demand snapshots (seed 001 "Streams": `POST /apps/{app}/snapshots`,
//! permission `stream:write`), plus camgate's listing, metadata, image and
//! delete routes.
//!
//! A snapshot is the room's current picture (see
//! [`crate::playback::mjpeg::current_jpeg`]: a camera's latest JPEG, an
//! H.264 stream's picture decoded) written to
//! `<data-dir>/snapshots/<app>/<id>.jpg` (through a temporary file and a
//! rename, so a crash never leaves half a JPEG) and recorded with its room,
//! stream and size. The answer carries the fields of the reference's
//! `snapshot_taken` event (`app`, `room`, `streamId`, `key`, `url`,
//! `sizeBytes`).

use std::path::PathBuf;

use axum::extract::{Path, Query, State};
use axum::http::Method;
use axum::response::Response;
use serde::{Deserialize, Serialize};

use super::catalog::{Access, Routes};
use super::native::app_for;
use super::tokens::room_of;
use super::{ApiError, ApiJson, Auth, created, ok};
use crate::auth::{now_rfc3339, random_id};
use crate::hub::RoomKey;
use crate::server::SharedState;
use crate::store::{App, SnapshotRow};

/// Routes under `/api/v1`.
pub fn routes() -> Routes {
    Routes::new()
        .op(
            Method::GET,
            "/apps/{app}/snapshots",
            Access::App("stream:read"),
            "List captured snapshots (?room, paged)",
            list,
        )
        .op(
            Method::POST,
            "/apps/{app}/snapshots",
            Access::App("stream:write"),
            "Capture a frame of a live stream now",
            take,
        )
        .example(serde_json::json!({ "room": "cam1" }))
        .returns(201)
        .op(
            Method::GET,
            "/apps/{app}/snapshots/{id}",
            Access::App("stream:read"),
            "One snapshot",
            one,
        )
        .op(
            Method::DELETE,
            "/apps/{app}/snapshots/{id}",
            Access::App("stream:write"),
            "Delete a snapshot and its file",
            remove,
        )
        .op(
            Method::GET,
            "/apps/{app}/snapshots/{id}/image",
            Access::App("stream:read"),
            "The snapshot's JPEG",
            image,
        )
}

/// Body of `POST /apps/{app}/snapshots`: the room, or the stream
/// (`<room>/<identity>`).
#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
struct TakeSnapshot {
    room: Option<String>,
    stream_id: Option<String>,
}

/// A snapshot as the API shows it.
#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
struct SnapshotInfo {
    id: String,
    app: String,
    room: String,
    stream_id: Option<String>,
    /// Path of the file relative to the data dir.
    key: String,
    /// Where to fetch the JPEG (bearer token with `stream:read`).
    url: String,
    size_bytes: i64,
    width: Option<i64>,
    height: Option<i64>,
    created_at: String,
}

fn info(state: &SharedState, app: &App, s: SnapshotRow) -> SnapshotInfo {
    SnapshotInfo {
        url: format!(
            "{}/api/v1/apps/{}/snapshots/{}/image",
            state.public_base, app.name, s.id
        ),
        id: s.id,
        app: app.name.clone(),
        room: s.room,
        stream_id: s.stream_id,
        key: s.file,
        size_bytes: s.size_bytes,
        width: s.width,
        height: s.height,
        created_at: s.created_at,
    }
}

fn file_path(state: &SharedState, file: &str) -> PathBuf {
    state.config.data_dir.join(file)
}

async fn take(
    State(state): State<SharedState>,
    Auth(who): Auth,
    Path(app): Path<String>,
    ApiJson(body): ApiJson<TakeSnapshot>,
) -> Result<Response, ApiError> {
    let app = app_for(&state, &who, &app, "stream:write").await?;
    let room = match (&body.room, &body.stream_id) {
        (Some(r), _) => room_of(&app, Some(r))?,
        (None, Some(s)) => {
            let (room, _) = s.rsplit_once('/').ok_or_else(|| {
                ApiError::bad_request("invalid_stream_id", "streamId is <room>/<identity>")
            })?;
            room_of(&app, Some(room))?
        }
        (None, None) => {
            return Err(ApiError::bad_request(
                "invalid_body",
                "give the room or the streamId",
            ));
        }
    };
    let row = capture(&state, &app, &room).await?;
    Ok(created(info(&state, &app, row)))
}

#[derive(Debug, Deserialize)]
struct ListQuery {
    room: Option<String>,
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
    let (limit, offset) = super::paging(q.limit.as_deref(), q.offset.as_deref(), 50, 500)?;
    let room = q
        .room
        .as_deref()
        .map(|r| room_of(&app, Some(r)))
        .transpose()?;
    let (rows, total) = state
        .db
        .list_snapshots(app.id, room.as_deref(), limit, offset)
        .await?;
    let data: Vec<SnapshotInfo> = rows.into_iter().map(|r| info(&state, &app, r)).collect();
    Ok(super::page(data, total, limit, offset))
}

async fn load(state: &SharedState, app: &App, id: &str) -> Result<SnapshotRow, ApiError> {
    state
        .db
        .snapshot(app.id, id)
        .await?
        .ok_or_else(|| ApiError::not_found("snapshot_not_found", "no such snapshot"))
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

async fn image(
    State(state): State<SharedState>,
    Auth(who): Auth,
    Path((app, id)): Path<(String, String)>,
) -> Result<Response, ApiError> {
    let app = app_for(&state, &who, &app, "stream:read").await?;
    let row = load(&state, &app, &id).await?;
    let bytes = tokio::fs::read(file_path(&state, &row.file))
        .await
        .map_err(|_| ApiError::not_found("snapshot_file_missing", "the snapshot's file is gone"))?;
    Ok(super::jpeg(bytes))
}

async fn remove(
    State(state): State<SharedState>,
    Auth(who): Auth,
    Path((app, id)): Path<(String, String)>,
) -> Result<Response, ApiError> {
    let app = app_for(&state, &who, &app, "stream:write").await?;
    let row = load(&state, &app, &id).await?;
    state.db.delete_snapshot(app.id, &id).await?;
    let _ = tokio::fs::remove_file(file_path(&state, &row.file)).await;
    Ok(ok(serde_json::json!({ "id": id, "deleted": true })))
}

/// Captures the room's current picture into the data dir and the
/// snapshots table (the API's on-demand capture, and a recording's
/// periodic snapshots).
pub async fn capture(state: &SharedState, app: &App, room: &str) -> Result<SnapshotRow, ApiError> {
    let room = room.to_owned();
    let key = RoomKey {
        app: app.name.clone(),
        room: room.clone(),
    };
    let jpeg = crate::playback::mjpeg::current_jpeg(state, &key).await?;
    let dims = turbojpeg::read_header(&jpeg)
        .ok()
        .map(|h| (h.width as i64, h.height as i64));
    let id = random_id("SN_", 8);
    let file = format!("snapshots/{}/{id}.jpg", app.name);
    let path = file_path(state, &file);
    let write = {
        let path = path.clone();
        let jpeg = jpeg.clone();
        tokio::task::spawn_blocking(move || -> std::io::Result<()> {
            if let Some(dir) = path.parent() {
                std::fs::create_dir_all(dir)?;
            }
            let tmp = path.with_extension("jpg.part");
            std::fs::write(&tmp, &jpeg)?;
            std::fs::rename(&tmp, &path)
        })
    };
    write
        .await
        .map_err(|e| ApiError::Internal(format!("snapshot writer: {e}")))?
        .map_err(|e| ApiError::Internal(format!("writing a snapshot: {e}")))?;
    let row = SnapshotRow {
        id,
        app_id: app.id,
        room: room.clone(),
        stream_id: state.db.active_stream_id(app.id, &room).await?,
        file,
        size_bytes: jpeg.len() as i64,
        width: dims.map(|d| d.0),
        height: dims.map(|d| d.1),
        created_at: now_rfc3339(),
    };
    state.db.insert_snapshot(&row).await?;
    tracing::info!(app = %app.name, %room, snapshot = %row.id, bytes = row.size_bytes, "snapshot taken");
    Ok(row)
}
