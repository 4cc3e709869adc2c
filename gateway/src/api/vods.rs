//! Recording and VODs (seed 001 "Recording" and "VODs", reference §4.6).
//!
//! `POST …/recording/start` (`roomName` or `streamId`) and
//! `POST …/streams/{id}/record/start` start a recorder (crate::record) and
//! insert the VOD row at once with `status=recording`; stopping answers
//! `uploading` while the file is finalized, then the row is `ready` (or
//! `failed`) and `vod_ready` fires. camgate keeps files in its data dir (no
//! object store), so "uploading" lasts as long as the final flush.
//!
//! Media a player fetches without headers — the file (with range
//! requests), its HLS playlist and its thumbnail — is also served under a
//! signed path `…/vods/{id}/s/{exp}/{sig}/video.mp4` (`index.m3u8`,
//! `thumb.jpg`) that `GET …/vods/{id}` and `…/download` hand out, valid for
//! [`URL_TTL`]. The signature sits in the path, not the query, so the
//! playlist's relative `video.mp4` stays signed and players that judge a
//! segment by its extension (ffmpeg) accept it. With a bearer token,
//! `…/raw`, `…/index.m3u8` and `…/snapshot` serve the same.

use std::io::SeekFrom;

use axum::body::Body;
use axum::extract::{Path, Query, State};
use axum::http::{HeaderMap, HeaderValue, Method, StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde::Deserialize;
use serde_json::{Value, json};
use tokio::io::{AsyncReadExt, AsyncSeekExt};

use super::catalog::{Access, Routes};
use super::native::app_for;
use super::{ApiError, ApiJson, Auth, created, ok};
use crate::hub::RoomKey;
use crate::record::{StartError, index_path, parse_index};
use crate::server::SharedState;
use crate::store::{App, VodFilter, VodRow};

/// How long a signed media URL stays valid.
pub const URL_TTL: i64 = 6 * 3600;

/// Routes under `/api/v1`.
pub fn routes() -> Routes {
    Routes::new()
        .op(
            Method::POST,
            "/apps/{app}/recording/start",
            Access::App("recording:start"),
            "Start recording a live stream (by roomName or streamId)",
            start_recording,
        )
        .example(json!({ "roomName": "live-demo" }))
        .returns(201)
        .op(
            Method::POST,
            "/apps/{app}/recording/{id}/stop",
            Access::App("recording:stop"),
            "Stop a recording by its vodId",
            stop_recording,
        )
        .op(
            Method::POST,
            "/apps/{app}/streams/{id}/record/start",
            Access::App("recording:start"),
            "Start recording this stream",
            stream_record_start,
        )
        .returns(201)
        .op(
            Method::POST,
            "/apps/{app}/streams/{id}/record/stop",
            Access::App("recording:stop"),
            "Stop recording this stream",
            stream_record_stop,
        )
        .op(
            Method::GET,
            "/apps/{app}/vods",
            Access::App("vod:read"),
            "List VODs (?room, status, since, until, order, dir, limit, offset, all)",
            list,
        )
        .op(
            Method::GET,
            "/apps/{app}/vods/{id}",
            Access::App("vod:read"),
            "One VOD with signed URLs (file, HLS playlist, thumbnail)",
            one,
        )
        .op(
            Method::GET,
            "/apps/{app}/vods/{id}/download",
            Access::App("vod:read"),
            "A signed download URL (409 while not ready, 404 when the file is gone)",
            download,
        )
        .op(
            Method::GET,
            "/apps/{app}/vods/{id}/raw",
            Access::App("vod:read"),
            "The MP4 itself, with range requests",
            raw,
        )
        .op(
            Method::GET,
            "/apps/{app}/vods/{id}/index.m3u8",
            Access::App("vod:read"),
            "HLS playlist of the VOD (byte ranges into the MP4)",
            playlist,
        )
        .op(
            Method::GET,
            "/apps/{app}/vods/{id}/snapshot",
            Access::App("vod:read"),
            "The VOD's thumbnail (JPEG)",
            snapshot,
        )
        .op(
            Method::GET,
            "/apps/{app}/vods/{id}/s/{exp}/{sig}/video.mp4",
            Access::Public,
            "The MP4 under a signed path (range requests)",
            signed_raw,
        )
        .op(
            Method::GET,
            "/apps/{app}/vods/{id}/s/{exp}/{sig}/index.m3u8",
            Access::Public,
            "The HLS playlist under a signed path",
            signed_playlist,
        )
        .op(
            Method::GET,
            "/apps/{app}/vods/{id}/s/{exp}/{sig}/thumb.jpg",
            Access::Public,
            "The thumbnail under a signed path",
            signed_snapshot,
        )
        .op(
            Method::POST,
            "/apps/{app}/vods/{id}/probe",
            Access::App("vod:write"),
            "Re-read size and duration from the file",
            probe,
        )
        .op(
            Method::DELETE,
            "/apps/{app}/vods/{id}",
            Access::App("vod:delete"),
            "Delete a VOD: row, file and thumbnail",
            remove,
        )
}

fn now() -> i64 {
    time::OffsetDateTime::now_utc().unix_timestamp()
}

fn sign_message(app: &str, id: i64, exp: i64) -> String {
    format!("vod:{app}:{id}:{exp}")
}

/// The signed directory of a VOD's media: `…/vods/{id}/s/{exp}/{sig}`.
pub(crate) fn signed_base(state: &SharedState, app: &str, id: i64) -> String {
    let exp = now() + URL_TTL;
    format!(
        "{}/api/v1/apps/{app}/vods/{id}/s/{exp}/{}",
        state.public_base,
        state.keys.sign_url(&sign_message(app, id, exp))
    )
}

/// A VOD as the API shows it.
fn info(state: &SharedState, app: &App, v: &VodRow) -> Value {
    let base = format!(
        "{}/api/v1/apps/{}/vods/{}",
        state.public_base, app.name, v.id
    );
    let signed = signed_base(state, &app.name, v.id);
    let ready = v.status == "ready";
    json!({
        "id": v.id,
        "vodId": v.id,
        "egressId": v.egress_id,
        "room": v.room,
        "streamId": v.stream_id,
        "status": v.status,
        "sizeBytes": v.size_bytes,
        "durationS": (v.duration_s * 1000.0).round() / 1000.0,
        "width": v.width,
        "height": v.height,
        "format": v.format,
        "hasAudio": v.has_audio,
        "fileKey": v.file,
        "snapshotKey": v.snapshot_file,
        "error": v.error,
        "startedAt": v.started_at,
        "endedAt": v.ended_at,
        "url": ready.then(|| format!("{signed}/video.mp4")),
        "presignedUrl": ready.then(|| format!("{signed}/video.mp4")),
        "publicUrl": format!("{base}/raw"),
        "hlsUrl": format!("{signed}/index.m3u8"),
        "snapshotUrl": v.snapshot_file.as_ref().map(|_| format!("{signed}/thumb.jpg")),
    })
}

/// Body of `POST …/recording/start`.
#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
struct StartBody {
    room_name: Option<String>,
    stream_id: Option<String>,
}

async fn begin(
    state: &SharedState,
    app: &App,
    room: &str,
    stream_id: &str,
) -> Result<Response, ApiError> {
    let key = RoomKey {
        app: app.name.clone(),
        room: room.to_owned(),
    };
    match crate::record::start(state, app, &key, stream_id).await? {
        Ok(vod) => Ok(created(json!({
            "vodId": vod.id,
            "egressId": vod.egress_id,
            "status": vod.status,
            "streamId": vod.stream_id,
            "room": vod.room,
        }))),
        Err(StartError::NotLive) => Err(ApiError::status(
            StatusCode::CONFLICT,
            "stream_not_live",
            format!("{stream_id} is not live"),
        )),
        Err(StartError::AlreadyRecording(id)) => Err(ApiError::status(
            StatusCode::CONFLICT,
            "already_recording",
            format!("{stream_id} is being recorded (vodId {id})"),
        )),
    }
}

async fn start_recording(
    State(state): State<SharedState>,
    Auth(who): Auth,
    Path(app): Path<String>,
    ApiJson(body): ApiJson<StartBody>,
) -> Result<Response, ApiError> {
    let app = app_for(&state, &who, &app, "recording:start").await?;
    let stream = match (body.stream_id, body.room_name) {
        (Some(id), _) => super::streams::load(&state, &app, &id).await?,
        (None, Some(room)) => {
            let room = super::tokens::room_of(&app, Some(&room))?;
            let id = state
                .db
                .active_stream_id(app.id, &room)
                .await?
                .ok_or_else(|| {
                    ApiError::not_found("stream_not_found", format!("nothing is live in {room}"))
                })?;
            super::streams::load(&state, &app, &id).await?
        }
        (None, None) => {
            return Err(ApiError::bad_request(
                "missing_field",
                "give roomName or streamId",
            ));
        }
    };
    begin(&state, &app, &stream.room, &stream.stream_id).await
}

async fn stream_record_start(
    State(state): State<SharedState>,
    Auth(who): Auth,
    Path((app, id)): Path<(String, String)>,
) -> Result<Response, ApiError> {
    let app = app_for(&state, &who, &app, "recording:start").await?;
    let stream = super::streams::load(&state, &app, &id).await?;
    begin(&state, &app, &stream.room, &stream.stream_id).await
}

async fn halt(state: &SharedState, app: &App, vod: VodRow) -> Result<Response, ApiError> {
    let stopping = state.recorders.stop(vod.id);
    let status = if stopping {
        "uploading"
    } else {
        vod.status.as_str()
    };
    Ok(ok(json!({
        "vodId": vod.id,
        "egressId": vod.egress_id,
        "status": status,
        "app": app.name,
    })))
}

async fn stop_recording(
    State(state): State<SharedState>,
    Auth(who): Auth,
    Path((app, id)): Path<(String, String)>,
) -> Result<Response, ApiError> {
    let app = app_for(&state, &who, &app, "recording:stop").await?;
    let vod = load(&state, &app, &id).await?;
    halt(&state, &app, vod).await
}

async fn stream_record_stop(
    State(state): State<SharedState>,
    Auth(who): Auth,
    Path((app, id)): Path<(String, String)>,
) -> Result<Response, ApiError> {
    let app = app_for(&state, &who, &app, "recording:stop").await?;
    let stream = super::streams::load(&state, &app, &id).await?;
    let vod_id = state
        .recorders
        .recording(app.id, &stream.stream_id)
        .ok_or_else(|| {
            ApiError::not_found(
                "not_recording",
                format!("{} is not being recorded", stream.stream_id),
            )
        })?;
    let vod = load(&state, &app, &vod_id.to_string()).await?;
    halt(&state, &app, vod).await
}

async fn load(state: &SharedState, app: &App, id: &str) -> Result<VodRow, ApiError> {
    let missing = || ApiError::not_found("vod_not_found", format!("no VOD {id}"));
    let id: i64 = id.parse().map_err(|_| missing())?;
    state.db.vod(app.id, id).await?.ok_or_else(missing)
}

#[derive(Debug, Deserialize)]
struct ListQuery {
    room: Option<String>,
    status: Option<String>,
    since: Option<String>,
    until: Option<String>,
    order: Option<String>,
    dir: Option<String>,
    limit: Option<String>,
    offset: Option<String>,
    all: Option<String>,
}

fn iso(field: &'static str, v: Option<String>) -> Result<Option<String>, ApiError> {
    use time::format_description::well_known::Rfc3339;
    let Some(v) = v else { return Ok(None) };
    // Full timestamps, or a date (midnight UTC).
    let parsed = time::OffsetDateTime::parse(&v, &Rfc3339)
        .ok()
        .or_else(|| time::OffsetDateTime::parse(&format!("{v}T00:00:00Z"), &Rfc3339).ok());
    match parsed {
        Some(t) => Ok(Some(
            t.to_offset(time::UtcOffset::UTC)
                .format(&Rfc3339)
                .unwrap_or(v),
        )),
        None => Err(ApiError::bad_request(
            if field == "since" {
                "invalid_since"
            } else {
                "invalid_until"
            },
            format!("{field} must be an ISO-8601 date or timestamp"),
        )),
    }
}

async fn list(
    State(state): State<SharedState>,
    Auth(who): Auth,
    Path(app): Path<String>,
    Query(q): Query<ListQuery>,
) -> Result<Response, ApiError> {
    let app = app_for(&state, &who, &app, "vod:read").await?;
    let status = match q.status.as_deref() {
        None => None,
        Some(s @ ("recording" | "uploading" | "ready" | "failed")) => Some(s.to_owned()),
        Some(_) => {
            return Err(ApiError::bad_request(
                "invalid_status",
                "status is recording, uploading, ready or failed",
            ));
        }
    };
    let order = match q.order.as_deref() {
        None | Some("started_at") => "started_at",
        Some("size_bytes") => "size_bytes",
        Some("id") => "id",
        Some(_) => {
            return Err(ApiError::bad_request(
                "invalid_order",
                "order is started_at, size_bytes or id",
            ));
        }
    };
    let desc = match q.dir.as_deref() {
        None | Some("desc") => true,
        Some("asc") => false,
        Some(_) => return Err(ApiError::bad_request("invalid_dir", "dir is asc or desc")),
    };
    let all = q.all.as_deref().is_some_and(|a| a == "1" || a == "true");
    let (limit, offset) = super::paging(q.limit.as_deref(), q.offset.as_deref(), 200, 1000)?;
    let filter = VodFilter {
        room: q
            .room
            .as_deref()
            .map(|r| super::tokens::room_of(&app, Some(r)))
            .transpose()?,
        status,
        since: iso("since", q.since)?,
        until: iso("until", q.until)?,
        order,
        desc,
    };
    let (limit, offset) = if all {
        (None, 0)
    } else {
        (Some(limit), offset)
    };
    let (rows, total) = state.db.list_vods(app.id, &filter, limit, offset).await?;
    let data: Vec<Value> = rows.iter().map(|v| info(&state, &app, v)).collect();
    Ok(super::page(data, total, limit.unwrap_or(total), offset))
}

async fn one(
    State(state): State<SharedState>,
    Auth(who): Auth,
    Path((app, id)): Path<(String, String)>,
) -> Result<Response, ApiError> {
    let app = app_for(&state, &who, &app, "vod:read").await?;
    let vod = load(&state, &app, &id).await?;
    Ok(ok(info(&state, &app, &vod)))
}

async fn ready_file(state: &SharedState, vod: &VodRow) -> Result<std::path::PathBuf, ApiError> {
    let path = state.config.data_dir.join(&vod.file);
    if !tokio::fs::try_exists(&path).await.unwrap_or(false) {
        return Err(ApiError::not_found(
            "file_not_found",
            "the VOD's file is gone",
        ));
    }
    Ok(path)
}

async fn download(
    State(state): State<SharedState>,
    Auth(who): Auth,
    Path((app, id)): Path<(String, String)>,
) -> Result<Response, ApiError> {
    let app = app_for(&state, &who, &app, "vod:read").await?;
    let vod = load(&state, &app, &id).await?;
    if vod.status != "ready" {
        return Err(ApiError::status(
            StatusCode::CONFLICT,
            "vod_not_ready",
            format!("the VOD is {}", vod.status),
        ));
    }
    ready_file(&state, &vod).await?;
    Ok(ok(json!({
        "url": format!("{}/video.mp4?download=1", signed_base(&state, &app.name, vod.id)),
        "filename": format!("clip-{}.mp4", vod.id),
        "expiresInSeconds": URL_TTL,
    })))
}

#[derive(Debug, Default, Deserialize)]
struct MediaQuery {
    download: Option<String>,
}

/// A VOD of a media request with a bearer token (checked by the route
/// guard) or a signed path.
async fn media_vod(
    state: &SharedState,
    app: &str,
    id: &str,
    signed: Option<(&str, &str)>,
) -> Result<(App, VodRow), ApiError> {
    let denied = || ApiError::Unauthorized("invalid or expired signed URL");
    let app = match signed {
        None => super::native::load_app(state, app).await?,
        Some((exp, sig)) => {
            // Nothing about the app or VOD is revealed before the
            // signature checks out.
            let exp: i64 = exp.parse().map_err(|_| denied())?;
            let numeric: i64 = id.parse().map_err(|_| denied())?;
            if exp < now() || !state.keys.verify_url(&sign_message(app, numeric, exp), sig) {
                return Err(denied());
            }
            super::native::load_app(state, app).await?
        }
    };
    let vod = load(state, &app, id).await?;
    Ok((app, vod))
}

/// One `bytes=` range of a `size`-byte file: `(start, end inclusive)`;
/// `Err(())` when unsatisfiable, `Ok(None)` when there is no usable range.
fn parse_range(h: Option<&str>, size: u64) -> Result<Option<(u64, u64)>, ()> {
    let Some(spec) = h.and_then(|h| h.trim().strip_prefix("bytes=")) else {
        return Ok(None);
    };
    if spec.contains(',') {
        // Several ranges: answer the whole file, as RFC 9110 allows.
        return Ok(None);
    }
    let (a, b) = spec.split_once('-').ok_or(())?;
    let (a, b) = (a.trim(), b.trim());
    let range = if a.is_empty() {
        let n: u64 = b.parse().map_err(|_| ())?;
        if n == 0 || size == 0 {
            return Err(());
        }
        (size.saturating_sub(n), size - 1)
    } else {
        let start: u64 = a.parse().map_err(|_| ())?;
        let end = if b.is_empty() {
            size.saturating_sub(1)
        } else {
            b.parse::<u64>()
                .map_err(|_| ())?
                .min(size.saturating_sub(1))
        };
        (start, end)
    };
    if range.0 >= size || range.0 > range.1 {
        return Err(());
    }
    Ok(Some(range))
}

/// Streams `len` bytes of a file from `start`, 64 KiB at a time.
fn file_body(file: tokio::fs::File, len: u64) -> Body {
    let stream = futures_util::stream::unfold((file, len), |(mut f, left)| async move {
        if left == 0 {
            return None;
        }
        let mut buf = vec![0u8; left.min(64 * 1024) as usize];
        match f.read_exact(&mut buf).await {
            Ok(_) => {
                let n = buf.len() as u64;
                Some((
                    Ok::<_, std::io::Error>(bytes::Bytes::from(buf)),
                    (f, left - n),
                ))
            }
            Err(e) => Some((Err(e), (f, 0))),
        }
    });
    Body::from_stream(stream)
}

/// Path of the signed media routes.
type SignedPath = Path<(String, String, String, String)>;

async fn raw(
    State(state): State<SharedState>,
    Path((app, id)): Path<(String, String)>,
    Query(q): Query<MediaQuery>,
    headers: HeaderMap,
) -> Result<Response, ApiError> {
    let (_, vod) = media_vod(&state, &app, &id, None).await?;
    serve_file(&state, &vod, &headers, q.download.is_some()).await
}

async fn signed_raw(
    State(state): State<SharedState>,
    Path((app, id, exp, sig)): SignedPath,
    Query(q): Query<MediaQuery>,
    headers: HeaderMap,
) -> Result<Response, ApiError> {
    let (_, vod) = media_vod(&state, &app, &id, Some((&exp, &sig))).await?;
    serve_file(&state, &vod, &headers, q.download.is_some()).await
}

/// Answers a VOD's file, honouring one `Range`.
pub async fn serve_file(
    state: &SharedState,
    vod: &VodRow,
    req_headers: &HeaderMap,
    download: bool,
) -> Result<Response, ApiError> {
    let path = ready_file(state, vod).await?;
    let mut file = tokio::fs::File::open(&path)
        .await
        .map_err(|e| ApiError::Internal(format!("open recording: {e}")))?;
    let size = file
        .metadata()
        .await
        .map_err(|e| ApiError::Internal(format!("stat recording: {e}")))?
        .len();
    let range = req_headers.get(header::RANGE).and_then(|v| v.to_str().ok());
    let (status, start, len, content_range) = match parse_range(range, size) {
        Ok(Some((a, b))) => (
            StatusCode::PARTIAL_CONTENT,
            a,
            b - a + 1,
            Some(format!("bytes {a}-{b}/{size}")),
        ),
        Ok(None) => (StatusCode::OK, 0, size, None),
        Err(()) => {
            let mut r = ApiError::status(
                StatusCode::RANGE_NOT_SATISFIABLE,
                "range_not_satisfiable",
                format!("the file has {size} bytes"),
            )
            .into_response();
            if let Ok(v) = HeaderValue::from_str(&format!("bytes */{size}")) {
                r.headers_mut().insert(header::CONTENT_RANGE, v);
            }
            return Ok(r);
        }
    };
    file.seek(SeekFrom::Start(start))
        .await
        .map_err(|e| ApiError::Internal(format!("seek recording: {e}")))?;
    let mut resp = (status, file_body(file, len)).into_response();
    let h = resp.headers_mut();
    h.insert(header::CONTENT_TYPE, HeaderValue::from_static("video/mp4"));
    h.insert(header::ACCEPT_RANGES, HeaderValue::from_static("bytes"));
    h.insert(header::CONTENT_LENGTH, HeaderValue::from(len));
    h.insert(
        header::ACCESS_CONTROL_ALLOW_ORIGIN,
        HeaderValue::from_static("*"),
    );
    if let Some(cr) = content_range.and_then(|c| HeaderValue::from_str(&c).ok()) {
        h.insert(header::CONTENT_RANGE, cr);
    }
    if download
        && let Ok(v) =
            HeaderValue::from_str(&format!("attachment; filename=\"clip-{}.mp4\"", vod.id))
    {
        h.insert(header::CONTENT_DISPOSITION, v);
    }
    Ok(resp)
}

async fn playlist(
    State(state): State<SharedState>,
    Path((app, id)): Path<(String, String)>,
) -> Result<Response, ApiError> {
    let (app, vod) = media_vod(&state, &app, &id, None).await?;
    // A bearer-authenticated player gets absolute signed media URIs, so
    // its segment requests need no header.
    let uri = format!("{}/video.mp4", signed_base(&state, &app.name, vod.id));
    hls_answer(&state, &vod, &uri).await
}

async fn signed_playlist(
    State(state): State<SharedState>,
    Path((app, id, exp, sig)): SignedPath,
) -> Result<Response, ApiError> {
    let (_, vod) = media_vod(&state, &app, &id, Some((&exp, &sig))).await?;
    hls_answer(&state, &vod, "video.mp4").await
}

async fn hls_answer(state: &SharedState, vod: &VodRow, uri: &str) -> Result<Response, ApiError> {
    let path = ready_file(state, vod).await?;
    let index = tokio::fs::read_to_string(index_path(&path))
        .await
        .ok()
        .and_then(|t| parse_index(&t))
        .ok_or_else(|| ApiError::not_found("file_not_found", "the VOD has no fragment index"))?;
    let size = tokio::fs::metadata(&path)
        .await
        .map(|m| m.len())
        .unwrap_or(0);
    let text = vod_playlist(&index.0, &index.1, size, uri, vod.status == "ready");
    let mut r = text.into_response();
    let h = r.headers_mut();
    h.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/vnd.apple.mpegurl"),
    );
    h.insert(
        header::ACCESS_CONTROL_ALLOW_ORIGIN,
        HeaderValue::from_static("*"),
    );
    h.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-cache"));
    Ok(r)
}

/// An HLS playlist over one fMP4 file: a segment per run of fragments
/// starting at a keyframe, as byte ranges of `uri`.
pub fn vod_playlist(
    init_len: &u64,
    frags: &[crate::record::Fragment],
    size: u64,
    uri: &str,
    finished: bool,
) -> String {
    use std::fmt::Write;
    let mut segments: Vec<(u64, u64, f64)> = Vec::new();
    for f in frags.iter().filter(|f| f.offset + f.len <= size) {
        match segments.last_mut() {
            Some(s) if !f.independent || s.2 < 1.0 => {
                s.1 += f.len;
                s.2 += f.duration;
            }
            _ => segments.push((f.offset, f.len, f.duration)),
        }
    }
    let target = segments
        .iter()
        .map(|s| s.2.ceil() as u64)
        .max()
        .unwrap_or(1)
        .max(1);
    let mut p = String::new();
    let _ = writeln!(p, "#EXTM3U");
    let _ = writeln!(p, "#EXT-X-VERSION:7");
    let _ = writeln!(p, "#EXT-X-TARGETDURATION:{target}");
    let _ = writeln!(p, "#EXT-X-MEDIA-SEQUENCE:0");
    let kind = if finished { "VOD" } else { "EVENT" };
    let _ = writeln!(p, "#EXT-X-PLAYLIST-TYPE:{kind}");
    let _ = writeln!(p, "#EXT-X-INDEPENDENT-SEGMENTS");
    let _ = writeln!(p, "#EXT-X-MAP:URI=\"{uri}\",BYTERANGE=\"{init_len}@0\"");
    for (offset, len, duration) in segments {
        let _ = writeln!(p, "#EXTINF:{duration:.5},");
        let _ = writeln!(p, "#EXT-X-BYTERANGE:{len}@{offset}");
        let _ = writeln!(p, "{uri}");
    }
    if finished {
        let _ = writeln!(p, "#EXT-X-ENDLIST");
    }
    p
}

async fn snapshot(
    State(state): State<SharedState>,
    Path((app, id)): Path<(String, String)>,
) -> Result<Response, ApiError> {
    let (_, vod) = media_vod(&state, &app, &id, None).await?;
    thumbnail(&state, vod).await
}

async fn signed_snapshot(
    State(state): State<SharedState>,
    Path((app, id, exp, sig)): SignedPath,
) -> Result<Response, ApiError> {
    let (_, vod) = media_vod(&state, &app, &id, Some((&exp, &sig))).await?;
    thumbnail(&state, vod).await
}

async fn thumbnail(state: &SharedState, vod: VodRow) -> Result<Response, ApiError> {
    let missing = || ApiError::not_found("snapshot_not_found", "the VOD has no thumbnail");
    let rel = vod.snapshot_file.ok_or_else(missing)?;
    let jpeg = tokio::fs::read(state.config.data_dir.join(rel))
        .await
        .map_err(|_| missing())?;
    Ok(super::jpeg(jpeg))
}

async fn probe(
    State(state): State<SharedState>,
    Auth(who): Auth,
    Path((app, id)): Path<(String, String)>,
) -> Result<Response, ApiError> {
    let app = app_for(&state, &who, &app, "vod:write").await?;
    let mut vod = load(&state, &app, &id).await?;
    let path = ready_file(&state, &vod).await?;
    let size = tokio::fs::metadata(&path)
        .await
        .map(|m| m.len())
        .unwrap_or(0);
    if let Some((_, frags)) = tokio::fs::read_to_string(index_path(&path))
        .await
        .ok()
        .and_then(|t| parse_index(&t))
    {
        vod.duration_s = frags
            .iter()
            .filter(|f| f.offset + f.len <= size)
            .map(|f| f.duration)
            .sum();
    }
    vod.size_bytes = size as i64;
    state.db.update_vod(&vod).await?;
    Ok(ok(info(&state, &app, &vod)))
}

async fn remove(
    State(state): State<SharedState>,
    Auth(who): Auth,
    Path((app, id)): Path<(String, String)>,
) -> Result<Response, ApiError> {
    let app = app_for(&state, &who, &app, "vod:delete").await?;
    let vod = load(&state, &app, &id).await?;
    if state.recorders.stop(vod.id) || vod.status == "recording" {
        return Err(ApiError::status(
            StatusCode::CONFLICT,
            "vod_recording",
            "the VOD is still recording; stop it first",
        ));
    }
    crate::record::delete_files(&state.config.data_dir, &vod)
        .await
        .map_err(|e| ApiError::Internal(format!("delete VOD file: {e}")))?;
    state.db.delete_vod(app.id, vod.id).await?;
    tracing::info!(app = %app.name, vod = vod.id, "VOD deleted");
    Ok(ok(json!({ "id": vod.id, "deleted": true })))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::record::Fragment;

    #[test]
    fn ranges() {
        assert_eq!(parse_range(Some("bytes=0-99"), 1000), Ok(Some((0, 99))));
        assert_eq!(parse_range(Some("bytes=900-"), 1000), Ok(Some((900, 999))));
        assert_eq!(parse_range(Some("bytes=-100"), 1000), Ok(Some((900, 999))));
        assert_eq!(
            parse_range(Some("bytes=990-2000"), 1000),
            Ok(Some((990, 999)))
        );
        assert_eq!(parse_range(Some("bytes=1000-"), 1000), Err(()));
        assert_eq!(parse_range(Some("bytes=5-1"), 1000), Err(()));
        assert_eq!(parse_range(Some("bytes=x-1"), 1000), Err(()));
        assert_eq!(parse_range(Some("bytes=0-1,5-6"), 1000), Ok(None));
        assert_eq!(parse_range(None, 1000), Ok(None));
    }

    #[test]
    fn playlist_groups_fragments_at_keyframes() {
        let f = |offset, len, independent| Fragment {
            offset,
            len,
            duration: 0.4,
            independent,
        };
        let frags = [
            f(100, 10, true),
            f(110, 10, false),
            f(120, 10, false),
            f(130, 10, true),
            f(140, 10, false),
            f(150, 10, true),
        ];
        let p = vod_playlist(&100, &frags, 155, "raw?x", true);
        assert!(
            p.contains("#EXT-X-MAP:URI=\"raw?x\",BYTERANGE=\"100@0\""),
            "{p}"
        );
        assert!(p.contains("#EXT-X-BYTERANGE:30@100\n"), "{p}");
        assert!(p.contains("#EXT-X-BYTERANGE:20@130\n"), "{p}");
        // The torn last fragment is not listed.
        assert!(!p.contains("@150"), "{p}");
        assert!(p.ends_with("#EXT-X-ENDLIST\n"), "{p}");
    }
}
