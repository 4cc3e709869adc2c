//! The playback index of seed 004 (Live777's recording API): which streams
//! have recordings, on which days, and a DASH manifest per stream and day.
//!
//! * `GET /api/playback` → `["live-cam1", …]`: rooms with ready VODs.
//! * `GET /api/playback/{stream}` → `[{year, month, day, mpd_path}]`, one per
//!   UTC day with recordings; `mpd_path` is `{stream}/{yyyy}/{mm}/{dd}/manifest.mpd`.
//! * `GET /api/record/object/{path}` → that manifest (`application/dash+xml`),
//!   or a recording `{stream}/{yyyy}/{mm}/{dd}/{vodId}.mp4` (`video/mp4`,
//!   range requests); `path` may be URL-encoded as one segment.
//!
//! Each recording of the day is one DASH Period whose segments are byte
//! ranges of its fragmented MP4 (`SegmentList` with a `SegmentTimeline`),
//! read from the recording's fragment index, so nothing is copied or
//! re-muxed. Media URLs in the manifest are the VODs' signed paths, so a
//! player fetches them without headers; the manifest and the index need a
//! bearer token with `vod:read` (an app token sees its app's rooms only).

use std::fmt::Write;

use axum::extract::{Path, State};
use axum::http::{HeaderMap, HeaderValue, header};
use axum::response::{IntoResponse, Response};
use serde_json::json;

use crate::api::{ApiError, Auth};
use crate::auth::Principal;
use crate::record::{Fragment, index_path, parse_index};
use crate::server::SharedState;
use crate::store::VodRow;

/// The VODs' apps a caller may read, checked per row.
fn readable(who: &Principal, vods: Vec<VodRow>) -> Vec<VodRow> {
    vods.into_iter()
        .filter(|v| who.require(v.app_id, "vod:read").is_ok())
        .collect()
}

/// `GET /api/playback`.
pub async fn streams(
    State(state): State<SharedState>,
    Auth(who): Auth,
) -> Result<Response, ApiError> {
    if let Some(app) = who.app_id {
        who.require(app, "vod:read")?;
    } else {
        who.require_global("vod:read")?;
    }
    let rooms = state.db.recorded_rooms(who.app_id).await?;
    Ok(axum::Json(rooms).into_response())
}

/// `(year, month, day)` of an RFC 3339 timestamp (UTC).
fn day_of(ts: &str) -> Option<(i32, u8, u8)> {
    let t = time::OffsetDateTime::parse(ts, &time::format_description::well_known::Rfc3339)
        .ok()?
        .to_offset(time::UtcOffset::UTC);
    Some((t.year(), u8::from(t.month()), t.day()))
}

/// `GET /api/playback/{stream}`.
pub async fn days(
    State(state): State<SharedState>,
    Auth(who): Auth,
    Path(stream): Path<String>,
) -> Result<Response, ApiError> {
    let vods = readable(&who, state.db.room_vods(&stream, who.app_id).await?);
    let mut days: Vec<(i32, u8, u8)> = vods.iter().filter_map(|v| day_of(&v.started_at)).collect();
    days.dedup();
    let out: Vec<_> = days
        .into_iter()
        .map(|(y, m, d)| {
            json!({
                "year": y, "month": m, "day": d,
                "mpd_path": format!("{stream}/{y:04}/{m:02}/{d:02}/manifest.mpd"),
            })
        })
        .collect();
    Ok(axum::Json(out).into_response())
}

/// `GET /api/record/object/{*path}`.
pub async fn object(
    State(state): State<SharedState>,
    Auth(who): Auth,
    Path(path): Path<String>,
    headers: HeaderMap,
) -> Result<Response, ApiError> {
    let missing = || ApiError::not_found("object_not_found", "no such recording object");
    let parts: Vec<&str> = path.trim_matches('/').split('/').collect();
    let [stream, y, m, d, name] = parts.as_slice() else {
        return Err(missing());
    };
    let day = (
        y.parse::<i32>().map_err(|_| missing())?,
        m.parse::<u8>().map_err(|_| missing())?,
        d.parse::<u8>().map_err(|_| missing())?,
    );
    let vods: Vec<VodRow> = readable(&who, state.db.room_vods(stream, who.app_id).await?)
        .into_iter()
        .filter(|v| day_of(&v.started_at) == Some(day))
        .collect();
    if vods.is_empty() {
        return Err(missing());
    }
    if *name == "manifest.mpd" {
        let mpd = manifest(&state, &vods).await?;
        let mut r = mpd.into_response();
        r.headers_mut().insert(
            header::CONTENT_TYPE,
            HeaderValue::from_static("application/dash+xml"),
        );
        return Ok(r);
    }
    let id: i64 = name
        .strip_suffix(".mp4")
        .and_then(|n| n.parse().ok())
        .ok_or_else(missing)?;
    let vod = vods.into_iter().find(|v| v.id == id).ok_or_else(missing)?;
    crate::api::vods::serve_file(&state, &vod, &headers, false).await
}

/// What a manifest needs of one recording.
struct Recorded {
    url: String,
    codecs: String,
    width: i64,
    height: i64,
    init_len: u64,
    frags: Vec<Fragment>,
    /// First fragment's decode time, 90 kHz.
    first_time: u64,
    duration: f64,
    bytes: u64,
}

async fn recorded(state: &SharedState, vod: &VodRow) -> Option<Recorded> {
    let path = state.config.data_dir.join(&vod.file);
    let (init_len, frags) = parse_index(&tokio::fs::read_to_string(index_path(&path)).await.ok()?)?;
    let size = tokio::fs::metadata(&path).await.ok()?.len();
    let frags: Vec<Fragment> = frags
        .into_iter()
        .filter(|f| f.offset + f.len <= size)
        .collect();
    let first = frags.first()?;
    // The init segment and the first fragment's header are all we read.
    let head = read_range(&path, 0, first.offset + first.len.min(4096)).await?;
    let (init, moof) = head.split_at(init_len as usize);
    let codecs = codecs_of(init)?;
    let first_time = first_decode_time(moof).unwrap_or(0);
    let app = state.db.app_by_id(vod.app_id).await.ok()??;
    let url = format!(
        "{}/video.mp4",
        crate::api::vods::signed_base(state, &app.name, vod.id)
    );
    Some(Recorded {
        url,
        codecs,
        width: vod.width.unwrap_or(0),
        height: vod.height.unwrap_or(0),
        init_len,
        duration: frags.iter().map(|f| f.duration).sum(),
        bytes: frags.iter().map(|f| f.len).sum(),
        frags,
        first_time,
    })
}

async fn read_range(path: &std::path::Path, start: u64, len: u64) -> Option<Vec<u8>> {
    use tokio::io::{AsyncReadExt, AsyncSeekExt};
    let mut f = tokio::fs::File::open(path).await.ok()?;
    f.seek(std::io::SeekFrom::Start(start)).await.ok()?;
    let mut buf = vec![0u8; len as usize];
    f.read_exact(&mut buf).await.ok()?;
    Some(buf)
}

/// The RFC 6381 codecs of an init segment: `avc1.PPCCLL` from its `avcC`,
/// plus `mp4a.40.2` when it has an AAC track or `opus` for an Opus one.
pub fn codecs_of(init: &[u8]) -> Option<String> {
    let at = init.windows(4).position(|w| w == b"avcC")?;
    let c = init.get(at + 5..at + 8)?;
    let mut codecs = format!("avc1.{:02x}{:02x}{:02x}", c[0], c[1], c[2]);
    if init.windows(4).any(|w| w == b"mp4a") {
        codecs.push_str(",mp4a.40.2");
    } else if init.windows(4).any(|w| w == b"dOps") {
        codecs.push_str(",opus");
    }
    Some(codecs)
}

/// The `baseMediaDecodeTime` of the first `tfdt` in a `moof`.
pub fn first_decode_time(moof: &[u8]) -> Option<u64> {
    let at = moof.windows(4).position(|w| w == b"tfdt")?;
    let version = *moof.get(at + 4)?;
    let body = moof.get(at + 8..)?;
    if version == 1 {
        Some(u64::from_be_bytes(body.get(..8)?.try_into().ok()?))
    } else {
        Some(u64::from(u32::from_be_bytes(
            body.get(..4)?.try_into().ok()?,
        )))
    }
}

/// The DASH manifest of a day's recordings: one Period per recording.
async fn manifest(state: &SharedState, vods: &[VodRow]) -> Result<String, ApiError> {
    let mut recs = Vec::new();
    for v in vods {
        if let Some(r) = recorded(state, v).await {
            recs.push(r);
        }
    }
    if recs.is_empty() {
        return Err(ApiError::not_found(
            "object_not_found",
            "no playable recording that day",
        ));
    }
    Ok(mpd(&recs))
}

fn iso_duration(secs: f64) -> String {
    format!("PT{secs:.3}S")
}

fn mpd(recs: &[Recorded]) -> String {
    const TIMESCALE: f64 = 90_000.0;
    let total: f64 = recs.iter().map(|r| r.duration).sum();
    let mut x = String::new();
    let _ = writeln!(x, r#"<?xml version="1.0" encoding="UTF-8"?>"#);
    let _ = writeln!(
        x,
        r#"<MPD xmlns="urn:mpeg:dash:schema:mpd:2011" profiles="urn:mpeg:dash:profile:isoff-main:2011" type="static" mediaPresentationDuration="{}" minBufferTime="PT2S">"#,
        iso_duration(total)
    );
    let mut start = 0.0;
    for (i, r) in recs.iter().enumerate() {
        let bandwidth = if r.duration > 0.0 {
            (r.bytes as f64 * 8.0 / r.duration) as u64
        } else {
            1_000_000
        };
        let _ = writeln!(
            x,
            r#"  <Period id="p{i}" start="{}" duration="{}">"#,
            iso_duration(start),
            iso_duration(r.duration)
        );
        let _ = writeln!(
            x,
            r#"    <AdaptationSet contentType="video" mimeType="video/mp4" segmentAlignment="true" startWithSAP="1">"#
        );
        let _ = writeln!(
            x,
            r#"      <Representation id="r{i}" codecs="{}" width="{}" height="{}" bandwidth="{bandwidth}">"#,
            r.codecs, r.width, r.height
        );
        let _ = writeln!(x, "        <BaseURL>{}</BaseURL>", xml_escape(&r.url));
        let _ = writeln!(
            x,
            r#"        <SegmentList timescale="90000" presentationTimeOffset="{}">"#,
            r.first_time
        );
        let _ = writeln!(
            x,
            r#"          <Initialization range="0-{}"/>"#,
            r.init_len.saturating_sub(1)
        );
        let _ = writeln!(x, "          <SegmentTimeline>");
        let mut t = r.first_time;
        for f in &r.frags {
            let d = (f.duration * TIMESCALE).round() as u64;
            let _ = writeln!(x, r#"            <S t="{t}" d="{d}"/>"#);
            t += d;
        }
        let _ = writeln!(x, "          </SegmentTimeline>");
        for f in &r.frags {
            let _ = writeln!(
                x,
                r#"          <SegmentURL mediaRange="{}-{}"/>"#,
                f.offset,
                f.offset + f.len - 1
            );
        }
        let _ = writeln!(x, "        </SegmentList>");
        let _ = writeln!(x, "      </Representation>");
        let _ = writeln!(x, "    </AdaptationSet>");
        let _ = writeln!(x, "  </Period>");
        start += r.duration;
    }
    let _ = writeln!(x, "</MPD>");
    x
}

fn xml_escape(s: &str) -> String {
    s.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('"', "&quot;")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn codecs_and_decode_time_from_boxes() {
        let mut init = b"....ftyp....moov....avcC".to_vec();
        init.extend([1, 0x64, 0x00, 0x1f, 0xff]);
        assert_eq!(codecs_of(&init).as_deref(), Some("avc1.64001f"));
        init.extend(b"mp4a");
        assert_eq!(codecs_of(&init).as_deref(), Some("avc1.64001f,mp4a.40.2"));
        let mut moof = b"....moof....traf....tfdt".to_vec();
        moof.extend([1, 0, 0, 0]);
        moof.extend(123_456_789u64.to_be_bytes());
        assert_eq!(first_decode_time(&moof), Some(123_456_789));
        assert_eq!(day_of("2025-07-24T23:59:59Z"), Some((2025, 7, 24)));
    }

    #[test]
    fn manifest_has_a_period_per_recording_with_byte_ranges() {
        let rec = |url: &str| Recorded {
            url: url.into(),
            codecs: "avc1.42c01e".into(),
            width: 320,
            height: 240,
            init_len: 700,
            frags: vec![
                Fragment {
                    offset: 700,
                    len: 100,
                    duration: 0.5,
                    independent: true,
                },
                Fragment {
                    offset: 800,
                    len: 50,
                    duration: 0.5,
                    independent: false,
                },
            ],
            first_time: 9000,
            duration: 1.0,
            bytes: 150,
        };
        let m = mpd(&[rec("http://h/a.mp4?x=1&y=2"), rec("http://h/b.mp4")]);
        assert!(m.contains(r#"mediaPresentationDuration="PT2.000S""#), "{m}");
        assert!(m.contains(r#"<Period id="p1" start="PT1.000S""#), "{m}");
        assert!(m.contains(r#"<Initialization range="0-699"/>"#), "{m}");
        assert!(m.contains(r#"<S t="9000" d="45000"/>"#), "{m}");
        assert!(m.contains(r#"<S t="54000" d="45000"/>"#), "{m}");
        assert!(m.contains(r#"<SegmentURL mediaRange="800-849"/>"#), "{m}");
        assert!(m.contains("a.mp4?x=1&amp;y=2"), "{m}");
    }
}
