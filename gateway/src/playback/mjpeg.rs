//! MJPEG playback with no transcode step: `/live/{app}/{room}/mjpeg`,
//! `/live/{app}/{room}/frame.jpg` and the viewer WebSocket `/live/ws`.
//!
//! Each response writes the hub's pre-encoded part (shared `Bytes`), so a
//! frame costs the server one buffer per frame, not per viewer. A viewer that
//! cannot keep up is not queued for: when its socket drains it gets the newest
//! frame (see the hub), so it never slows the camera or anyone else.

use crate::metrics::{METRICS, Output};
use std::collections::HashMap;
use std::time::Duration;

use axum::body::Body;
use axum::extract::ws::{CloseFrame, Message, WebSocketUpgrade};
use axum::extract::{Path, Query, State};
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use bytes::Bytes;
use camgate_protocols::api::namespace_room;
use camgate_protocols::multipart::{CONTENT_TYPE, PREAMBLE};
use tokio::sync::watch;

use crate::api::ApiError;
use crate::api::native::load_app;
use crate::hub::{Frame, RoomKey, ViewerGuard, WatchError};
use crate::server::SharedState;
use crate::transcode::h264_mjpeg::MjpegDemand;

/// `?token=` on playback routes of apps whose `publicPlayback` is off.
#[derive(Debug, Default, serde::Deserialize)]
pub struct PlayQuery {
    token: Option<String>,
}

pub(crate) async fn room_key(
    state: &SharedState,
    app: &str,
    room: &str,
    token: Option<&str>,
) -> Result<RoomKey, ApiError> {
    let app = load_app(state, app).await?;
    if camgate_protocols::api::validate_slug(room).is_err() {
        return Err(ApiError::not_found("stream_not_found", "no such stream"));
    }
    let room = namespace_room(&app.room_prefix, Some(room));
    if !app.public_playback {
        // A private app's playback needs a join token for this exact room
        // with subscribe allowed (reference §6).
        let allowed = token
            .and_then(|t| state.keys.verify(t).ok())
            .is_some_and(|c| {
                c.app == app.name
                    && c.video.room == room
                    && c.video.room_join
                    && c.video.can_subscribe
            });
        if !allowed {
            return Err(ApiError::Unauthorized("play token required"));
        }
    }
    Ok(RoomKey {
        room,
        app: app.name,
    })
}

fn no_store(resp: &mut Response) {
    let h = resp.headers_mut();
    h.insert(
        header::CACHE_CONTROL,
        HeaderValue::from_static("no-store, no-cache, must-revalidate"),
    );
    h.insert(header::PRAGMA, HeaderValue::from_static("no-cache"));
    h.insert(
        header::ACCESS_CONTROL_ALLOW_ORIGIN,
        HeaderValue::from_static("*"),
    );
}

/// `GET /live/{app}/{room}/mjpeg`.
pub async fn mjpeg(
    State(state): State<SharedState>,
    Path((app, room)): Path<(String, String)>,
    Query(q): Query<PlayQuery>,
) -> Result<Response, ApiError> {
    let key = room_key(&state, &app, &room, q.token.as_deref()).await?;
    let (guard, mut rx) = state.hub.watch(&key).map_err(|e| watch_error(e, &key))?;
    let (demand, fresh) = h264_demand(&state, &key);
    if fresh {
        rx.mark_changed();
    }
    let viewer = Viewer {
        _guard: guard,
        _conn: METRICS.viewer(Output::Mjpeg),
        _demand: demand,
        rx,
        shutdown: state.shutdown.clone(),
        started: false,
    };
    let stream = futures_util::stream::unfold(viewer, |mut v| async move {
        if !v.started {
            v.started = true;
            return Some((Ok::<Bytes, std::io::Error>(Bytes::from_static(PREAMBLE)), v));
        }
        let frame = v.next().await?;
        let part = frame.part.bytes().clone();
        METRICS.frame_out(Output::Mjpeg, part.len());
        Some((Ok(part), v))
    });
    let mut resp = Body::from_stream(stream).into_response();
    resp.headers_mut()
        .insert(header::CONTENT_TYPE, HeaderValue::from_static(CONTENT_TYPE));
    resp.headers_mut()
        .insert("x-accel-buffering", HeaderValue::from_static("no"));
    no_store(&mut resp);
    Ok(resp)
}

/// For a room whose source sends H.264: counts this viewer as MJPEG demand
/// (starting the H.264 → MJPEG transcoder). The second value says whether
/// the room's latest hub frame is current (a camera's always is; an H.264
/// room's only while its transcoder runs).
fn h264_demand(state: &SharedState, key: &RoomKey) -> (Option<MjpegDemand>, bool) {
    let h264 = state
        .hub
        .get(key)
        .and_then(|r| r.publisher())
        .is_some_and(|k| k.codec() != camgate_sfu::Codec::Jpeg);
    if !h264 {
        return (None, true);
    }
    let running = mjpeg_transcoder_running(state, key);
    (Some(MjpegDemand::new(state, key)), running)
}

struct Viewer {
    _guard: ViewerGuard,
    _conn: crate::metrics::ViewerConn,
    _demand: Option<MjpegDemand>,
    rx: watch::Receiver<Option<Frame>>,
    shutdown: watch::Receiver<bool>,
    started: bool,
}

impl Viewer {
    /// The newest frame not yet seen; `None` when the server shuts down.
    async fn next(&mut self) -> Option<Frame> {
        loop {
            tokio::select! {
                changed = self.rx.changed() => {
                    changed.ok()?;
                    if let Some(f) = self.rx.borrow_and_update().clone() {
                        return Some(f);
                    }
                }
                _ = self.shutdown.changed() => return None,
            }
        }
    }
}

/// `GET /live/{app}/{room}/frame.jpg`.
pub async fn frame(
    State(state): State<SharedState>,
    Path((app, room)): Path<(String, String)>,
    Query(q): Query<PlayQuery>,
) -> Result<Response, ApiError> {
    let key = room_key(&state, &app, &room, q.token.as_deref()).await?;
    let jpeg = current_jpeg(&state, &key).await?;
    METRICS.frame_out(Output::Snapshot, jpeg.len());
    let mut resp = crate::api::jpeg(jpeg);
    no_store(&mut resp);
    Ok(resp)
}

/// A keyframe older than this is refreshed (PLI) before a snapshot.
const SNAPSHOT_MAX_AGE: Duration = Duration::from_secs(2);
/// How long a snapshot waits for the refreshed keyframe.
const SNAPSHOT_WAIT: Duration = Duration::from_millis(1500);

/// The room's current picture as a JPEG: a camera's latest frame; for an
/// H.264 source the MJPEG transcoder's current picture, or the latest
/// keyframe decoded. 404 `stream_not_found` when nothing is live.
pub async fn current_jpeg(state: &SharedState, key: &RoomKey) -> Result<Bytes, ApiError> {
    let not_live = || {
        ApiError::not_found(
            "stream_not_found",
            format!("{} has no frame: not live", key.room),
        )
    };
    let room_slot = state.hub.get(key).ok_or_else(not_live)?;
    match room_slot.publisher() {
        Some(kind) if kind.codec() == camgate_sfu::Codec::Jpeg => {
            Ok(room_slot.latest().ok_or_else(not_live)?.part.jpeg())
        }
        Some(kind) => {
            let fresh = mjpeg_transcoder_running(state, key);
            match room_slot.latest().filter(|_| fresh) {
                Some(frame) => Ok(frame.part.jpeg()),
                None => Ok(h264_snapshot(state, key, kind).await?.into()),
            }
        }
        None => Err(not_live()),
    }
}

/// Whether the room's H.264 → MJPEG transcoder runs (its hub frame is
/// current).
fn mjpeg_transcoder_running(state: &SharedState, key: &RoomKey) -> bool {
    *state
        .media
        .room(&crate::webrtc::sfu_room(key))
        .mjpeg_transcoding
        .lock()
        .unwrap_or_else(|e| e.into_inner())
}

/// A JPEG of an H.264 source's picture: its latest keyframe decoded. RTMP
/// and RTSP sources send keyframes on their own (the room keeps the last
/// one); a WebRTC publisher's is refreshed first when older than
/// [`SNAPSHOT_MAX_AGE`] (it is asked for a new one; a stale one is used
/// when none comes in time).
pub async fn h264_snapshot(
    state: &SharedState,
    key: &RoomKey,
    kind: camgate_sfu::SourceKind,
) -> Result<Vec<u8>, ApiError> {
    let sfu = state.media.sfu();
    let room = crate::webrtc::sfu_room(key);
    let unavailable = |why: &str| {
        ApiError::status(
            StatusCode::SERVICE_UNAVAILABLE,
            "snapshot_unavailable",
            format!("no picture from {} yet: {why}", key.room),
        )
    };
    let deadline = tokio::time::Instant::now() + SNAPSHOT_WAIT;
    let mut best = None;
    if kind != camgate_sfu::SourceKind::Whip {
        best = state.media.room(&room).keyframe();
    }
    if kind == camgate_sfu::SourceKind::Whip {
        loop {
            let got = sfu
                .keyframe(&room, SNAPSHOT_MAX_AGE)
                .await
                .map_err(|_| unavailable("the SFU is not running"))?;
            let fresh = got
                .as_ref()
                .is_some_and(|(age, _)| *age <= SNAPSHOT_MAX_AGE);
            best = got.or(best);
            if fresh || tokio::time::Instant::now() >= deadline {
                break;
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }
    let (_, au) = best.ok_or_else(|| unavailable("no keyframe received"))?;
    tokio::task::spawn_blocking(move || {
        crate::transcode::h264_jpeg::keyframe_to_jpeg(
            &au,
            crate::transcode::h264_jpeg::SNAPSHOT_QUALITY,
        )
    })
    .await
    .map_err(|_| unavailable("decoder task failed"))?
    .map_err(|e| {
        tracing::debug!(room = %key.room, error = %e, "snapshot failed");
        unavailable("the keyframe could not be decoded")
    })
}

/// `GET /live/ws?app=…&room=…`: one binary JPEG per message.
pub async fn viewer_ws(
    State(state): State<SharedState>,
    Query(q): Query<HashMap<String, String>>,
    ws: WebSocketUpgrade,
) -> Response {
    let app = q
        .get("app")
        .map(String::as_str)
        .unwrap_or("live")
        .to_owned();
    let room = q.get("room").cloned().unwrap_or_default();
    let token = q.get("token").map(String::as_str);
    let found = match room_key(&state, &app, &room, token).await {
        Ok(key) => state
            .hub
            .watch(&key)
            .map(|(guard, rx)| (guard, rx, key))
            .map_err(|e| match e {
                WatchError::Full => (4429, "viewer_limit"),
                _ => (4404, "stream_not_found"),
            }),
        Err(ApiError::Unauthorized(_)) => Err((4401, "playback_unauthorized")),
        Err(_) => Err((4404, "stream_not_found")),
    };
    ws.on_upgrade(move |mut socket| async move {
        let (guard, mut rx, key) = match found {
            Ok(v) => v,
            Err((code, reason)) => {
                let _ = socket.send(Message::Close(Some(CloseFrame { code, reason: reason.into() }))).await;
                return;
            }
        };
        let (demand, fresh) = h264_demand(&state, &key);
        if fresh {
            rx.mark_changed();
        }
        let mut v = Viewer { _guard: guard, _conn: METRICS.viewer(Output::ViewerWs), _demand: demand, rx, shutdown: state.shutdown.clone(), started: true };
        loop {
            tokio::select! {
                frame = v.next() => {
                    let Some(frame) = frame else {
                        let _ = socket.send(Message::Close(Some(CloseFrame { code: 1001, reason: "server shutting down".into() }))).await;
                        break;
                    };
                    let jpeg = frame.part.jpeg();
                    METRICS.frame_out(Output::ViewerWs, jpeg.len());
                    if socket.send(Message::Binary(jpeg)).await.is_err() {
                        break;
                    }
                }
                msg = socket.recv() => match msg {
                    Some(Ok(Message::Close(_))) => {
                        // Flush tungstenite's queued close reply.
                        let _ = futures_util::SinkExt::close(&mut socket).await;
                        break;
                    }
                    None | Some(Err(_)) => break,
                    Some(Ok(_)) => {}
                },
            }
        }
    })
}

/// The API error for a viewer that could not join.
pub fn watch_error(e: WatchError, key: &RoomKey) -> ApiError {
    match e {
        WatchError::Full => ApiError::status(
            axum::http::StatusCode::TOO_MANY_REQUESTS,
            "viewer_limit",
            format!("{} has the most viewers allowed", key.room),
        ),
        _ => ApiError::not_found("stream_not_found", format!("{} is not live", key.room)),
    }
}
