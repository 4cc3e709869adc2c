//! `GET /hls/{app}/{room}/index.m3u8` and its media: init segments,
//! segments and partial segments, all from memory.
//!
//! LL-HLS delivery directives: `?_HLS_msn=M[&_HLS_part=P]` holds the
//! playlist until that segment/part exists (400 when it is more than two
//! segments ahead, 503 after three target durations); a request for the
//! preload-hinted part waits for it. Private apps pass `?token=`, which is
//! carried into every URI of the playlist.

use std::time::Duration;

use axum::body::Body;
use axum::extract::{Path, Query, State};
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use bytes::Bytes;
use serde::Deserialize;

use super::mjpeg::room_key;
use crate::api::ApiError;
use crate::hls::Stream;
use crate::hub::RoomKey;
use crate::server::SharedState;
use crate::webrtc::sfu_room;

/// Longest a blocking playlist request or a hinted part waits.
const MAX_WAIT: Duration = Duration::from_secs(6);

/// Query of HLS requests.
#[derive(Debug, Default, Deserialize)]
pub struct HlsQuery {
    token: Option<String>,
    #[serde(rename = "_HLS_msn")]
    msn: Option<String>,
    #[serde(rename = "_HLS_part")]
    part: Option<String>,
}

async fn stream(
    state: &SharedState,
    app: &str,
    room: &str,
    token: Option<&str>,
) -> Result<std::sync::Arc<Stream>, ApiError> {
    let key = room_key(state, app, room, token).await?;
    live_stream(state, &key)
        .map(|(stream, _)| stream)
        .ok_or_else(|| ApiError::not_found("stream_not_found", format!("{} is not live", key.room)))
}

/// A room's HLS stream, and whether its source is an MJPEG camera. A camera
/// has HLS only through its transcoder, which runs while there is HLS
/// demand: asking counts as demand (renew it with [`keep_camera_hls`]).
pub fn live_stream(state: &SharedState, key: &RoomKey) -> Option<(std::sync::Arc<Stream>, bool)> {
    let camera = state
        .hub
        .get(key)
        .and_then(|r| r.publisher())
        .is_some_and(|kind| kind.codec() == camgate_sfu::Codec::Jpeg);
    if camera {
        let stream = state.hls.ensure(key);
        keep_camera_hls(state, key);
        return Some((stream, true));
    }
    state.hls.get(key).map(|stream| (stream, false))
}

/// Renews a camera room's HLS demand and (re)starts its transcoder.
pub fn keep_camera_hls(state: &SharedState, key: &RoomKey) {
    state.media.room(&sfu_room(key)).hls_touch();
    crate::transcode::camera::ensure(state, key);
}

fn respond(content_type: &'static str, cache: &'static str, body: impl Into<Body>) -> Response {
    let mut r = body.into().into_response();
    let h = r.headers_mut();
    h.insert(header::CONTENT_TYPE, HeaderValue::from_static(content_type));
    h.insert(header::CACHE_CONTROL, HeaderValue::from_static(cache));
    h.insert(
        header::ACCESS_CONTROL_ALLOW_ORIGIN,
        HeaderValue::from_static("*"),
    );
    r
}

/// `GET /hls/{app}/{room}/index.m3u8`.
pub async fn playlist(
    State(state): State<SharedState>,
    Path((app, room)): Path<(String, String)>,
    Query(q): Query<HlsQuery>,
) -> Result<Response, ApiError> {
    let s = stream(&state, &app, &room, q.token.as_deref()).await?;
    let bad = |what: &str| ApiError::bad_request("invalid_hls_directive", what.to_owned());
    let msn = q
        .msn
        .as_deref()
        .map(|m| {
            m.parse::<u64>()
                .map_err(|_| bad("_HLS_msn must be a number"))
        })
        .transpose()?;
    let part = q
        .part
        .as_deref()
        .map(|p| {
            p.parse::<usize>()
                .map_err(|_| bad("_HLS_part must be a number"))
        })
        .transpose()?;
    if part.is_some() && msn.is_none() {
        return Err(bad("_HLS_part needs _HLS_msn"));
    }
    // A playlist without a whole segment is useless to plain HLS clients:
    // a stream that just started answers once its first segment is in.
    s.wait_for(MAX_WAIT, |p| p.ended() || p.has_segment()).await;
    if let Some(msn) = msn {
        let next = s.with(|p| p.next_msn());
        if msn > next + 1 {
            return Err(bad("_HLS_msn is more than two segments ahead"));
        }
        let ready = s
            .wait_for(MAX_WAIT, |p| p.ended() || p.has(msn, part))
            .await;
        if !ready {
            return Err(ApiError::status(
                StatusCode::SERVICE_UNAVAILABLE,
                "hls_not_ready",
                "the requested part did not arrive in time",
            ));
        }
    }
    let query = q
        .token
        .as_deref()
        .map(|t| format!("?token={t}"))
        .unwrap_or_default();
    let text = s.with(|p| p.playlist(&query)).ok_or_else(|| {
        ApiError::status(
            StatusCode::SERVICE_UNAVAILABLE,
            "hls_not_ready",
            "the first segment is not ready yet",
        )
    })?;
    Ok(respond("application/vnd.apple.mpegurl", "no-cache", text))
}

/// What a media file name asks for.
enum File {
    Init(u32),
    Segment(u64),
    Part(u64, usize),
}

fn parse_file(name: &str) -> Option<File> {
    if let Some(v) = name
        .strip_prefix("init-")
        .and_then(|r| r.strip_suffix(".mp4"))
    {
        return v.parse().ok().map(File::Init);
    }
    if let Some(m) = name
        .strip_prefix("seg-")
        .and_then(|r| r.strip_suffix(".m4s"))
    {
        return m.parse().ok().map(File::Segment);
    }
    let rest = name.strip_prefix("part-")?.strip_suffix(".m4s")?;
    let (m, i) = rest.split_once('-')?;
    Some(File::Part(m.parse().ok()?, i.parse().ok()?))
}

/// `GET /hls/{app}/{room}/{file}`: `init-V.mp4`, `seg-M.m4s`, `part-M-I.m4s`.
pub async fn media(
    State(state): State<SharedState>,
    Path((app, room, file)): Path<(String, String, String)>,
    Query(q): Query<HlsQuery>,
) -> Result<Response, ApiError> {
    let s = stream(&state, &app, &room, q.token.as_deref()).await?;
    let gone = || ApiError::not_found("not_found", "no such segment (it may have scrolled out)");
    let body: Bytes = match parse_file(&file).ok_or_else(gone)? {
        File::Init(v) => s.with(|p| p.init_bytes(v)).ok_or_else(gone)?,
        File::Segment(m) => s.with(|p| p.segment(m)).ok_or_else(gone)?,
        File::Part(m, i) => {
            // The preload hint names a part before it exists: wait for it.
            let soon = s.with(|p| match p.last_part() {
                Some((lm, li)) => (m == lm && i == li + 1) || (m == lm + 1 && i == 0),
                None => m == p.next_msn() && i == 0,
            });
            if soon {
                s.wait_for(MAX_WAIT, |p| p.ended() || p.has(m, Some(i)))
                    .await;
            }
            s.with(|p| p.part(m, i)).ok_or_else(gone)?
        }
    };
    Ok(respond("video/mp4", "max-age=60", body))
}
