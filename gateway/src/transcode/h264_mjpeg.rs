//! H.264 → MJPEG for rooms whose source sends H.264 (RTMP, RTSP, WHIP)
//! while someone watches them as MJPEG (`/mjpeg`, the viewer WebSocket).
//!
//! One task per room, started by the first MJPEG viewer ([`ensure`]) and
//! stopped `GRACE` after the last one left ([`MjpegDemand`] counts them).
//! It follows the room's access units (offered by the source only while
//! the task listens), decodes every one with openh264 — P-frames need their
//! references — and encodes a JPEG from the decoded planes with
//! libjpeg-turbo (no colour conversion) at most `mjpeg.max_fps` times a
//! second, at `mjpeg.quality`, downscaled by 2 or 4 when wider than
//! `mjpeg.max_width`. Each JPEG is published into the room's hub slot, so
//! the MJPEG routes serve it exactly like a camera's frame.
//!
//! Start-up: the room's cached keyframe is decoded at once so a viewer gets
//! a picture immediately; then the decoder waits for the next keyframe
//! (WebRTC publishers are asked for one). A transcoder that falls behind
//! (queue overflow) or a damaged picture also waits for the next keyframe.

use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

use camgate_protocols::h264::access_unit_is_keyframe;
use openh264::OpenH264API;
use openh264::decoder::{Decoder, DecoderConfig};
use openh264::formats::YUVSource;
use tokio::sync::broadcast::error::RecvError;
use tracing::{debug, info};

use crate::hub::RoomKey;
use crate::server::AppState;
use crate::webrtc::{RoomMedia, sfu_room};

/// How long the transcoder outlives its last MJPEG viewer.
const GRACE: Duration = Duration::from_secs(5);

/// Counts a room's MJPEG viewers of an H.264 source while held.
#[derive(Debug)]
pub struct MjpegDemand {
    media: Arc<RoomMedia>,
}

impl MjpegDemand {
    /// One more MJPEG viewer of the room; starts the transcoder if needed.
    pub fn new(state: &Arc<AppState>, key: &RoomKey) -> MjpegDemand {
        let media = state.media.room(&sfu_room(key));
        media.mjpeg_viewers.fetch_add(1, Ordering::Relaxed);
        ensure(state, key, &media);
        MjpegDemand { media }
    }
}

impl Drop for MjpegDemand {
    fn drop(&mut self) {
        self.media.mjpeg_viewers.fetch_sub(1, Ordering::Relaxed);
    }
}

/// Output settings (`mjpeg.*` in the configuration).
#[derive(Debug, Clone, Copy)]
pub struct MjpegSettings {
    /// libjpeg quality, 1–100.
    pub quality: i32,
    /// Most JPEGs per second.
    pub max_fps: u32,
    /// Pictures wider than this are downscaled by 2 or 4 (0 = never).
    pub max_width: u32,
}

fn ensure(state: &Arc<AppState>, key: &RoomKey, media: &Arc<RoomMedia>) {
    {
        let mut running = media
            .mjpeg_transcoding
            .lock()
            .unwrap_or_else(|e| e.into_inner());
        if *running {
            return;
        }
        *running = true;
    }
    let (state, key, media) = (state.clone(), key.clone(), media.clone());
    let handle = tokio::runtime::Handle::current();
    tokio::task::spawn_blocking(move || {
        handle.block_on(async {
            let span = tracing::info_span!("mjpeg_transcoder", room = %key.room);
            let _enter = span.enter();
            let frames = run(&state, &key, &media).await;
            info!(frames, "h264 → mjpeg transcoder stopped");
            *media
                .mjpeg_transcoding
                .lock()
                .unwrap_or_else(|e| e.into_inner()) = false;
        });
    });
}

async fn run(state: &Arc<AppState>, key: &RoomKey, media: &Arc<RoomMedia>) -> u64 {
    let c = &state.config.mjpeg;
    let settings = MjpegSettings {
        quality: c.quality.clamp(1, 100) as i32,
        max_fps: c.max_fps.max(1),
        max_width: c.max_width,
    };
    let mut rx = media.subscribe_access_units();
    let Ok(mut decoder) =
        Decoder::with_api_config(OpenH264API::from_source(), DecoderConfig::new())
    else {
        return 0;
    };
    info!("h264 → mjpeg transcoder started");
    let mut out = 0u64;
    // An immediate first picture from the cached keyframe.
    let cached = match media.keyframe() {
        Some((_, au)) => Some(au),
        None => state
            .media
            .sfu()
            .keyframe(&sfu_room(key), Duration::from_secs(2))
            .await
            .ok()
            .flatten()
            .map(|(_, au)| au),
    };
    if let Some(au) = cached
        && let Some(jpeg) = decode_to_jpeg(&mut decoder, &au, settings)
        && let Some(room) = state.hub.get(key)
    {
        room.publish(&jpeg, Instant::now());
        out += 1;
    }
    // WebRTC publishers make keyframes only when asked.
    let _ = state
        .media
        .sfu()
        .keyframe(&sfu_room(key), Duration::ZERO)
        .await;
    let gap = Duration::from_secs_f64(1.0 / f64::from(settings.max_fps));
    // Output times follow a schedule (not "gap since the last one"), so a
    // 30 fps source gives 10 fps, not 7.5, and a 15 fps source averages 10.
    let mut next_due: Option<Instant> = None;
    let mut synced = false;
    let mut idle_since: Option<Instant> = None;
    loop {
        let next = tokio::time::timeout(Duration::from_millis(500), rx.recv()).await;
        if media.mjpeg_viewers.load(Ordering::Relaxed) == 0 {
            let since = *idle_since.get_or_insert_with(Instant::now);
            if since.elapsed() >= GRACE {
                break;
            }
        } else {
            idle_since = None;
        }
        if state.hub.get(key).and_then(|r| r.publisher()).is_none() {
            break;
        }
        let au = match next {
            Err(_) => continue,
            Ok(Ok(au)) => au,
            Ok(Err(RecvError::Lagged(n))) => {
                debug!(
                    skipped = n,
                    "transcoder fell behind; waiting for a keyframe"
                );
                synced = false;
                continue;
            }
            Ok(Err(RecvError::Closed)) => break,
        };
        if !synced {
            if !access_unit_is_keyframe(&au) {
                continue;
            }
            synced = true;
        }
        let now = Instant::now();
        let due = next_due.is_none_or(|t| now + Duration::from_millis(5) >= t);
        if !due {
            // Decode anyway: later pictures refer to this one.
            if decoder.decode(&au).is_err() {
                synced = false;
            }
            continue;
        }
        let t0 = Instant::now();
        let jpeg = decode_to_jpeg(&mut decoder, &au, settings);
        crate::metrics::METRICS.transcoded(crate::metrics::Transcoder::H264ToJpeg, t0.elapsed());
        match jpeg {
            Some(jpeg) => {
                if let Some(room) = state.hub.get(key) {
                    room.publish(&jpeg, Instant::now());
                }
                next_due = Some(match next_due {
                    Some(t) => (t + gap).max(now.checked_sub(gap).unwrap_or(now)),
                    None => now + gap,
                });
                out += 1;
            }
            None => synced = false,
        }
    }
    out
}

/// Decodes one access unit and, when it yields a picture, encodes it.
fn decode_to_jpeg(decoder: &mut Decoder, au: &[u8], s: MjpegSettings) -> Option<Vec<u8>> {
    let yuv = decoder.decode(au).ok()??;
    let (w, _) = yuv.dimensions();
    let factor = match s.max_width {
        0 => 1,
        max if w as u32 > max * 2 => 4,
        max if w as u32 > max => 2,
        _ => 1,
    };
    let (pixels, width, height) = i420_scaled(&yuv, factor);
    super::h264_jpeg::i420_to_jpeg(&pixels, width, height, s.quality).ok()
}

/// The decoded picture as one packed I420 buffer, downscaled by `factor`
/// (1, 2 or 4; box average).
fn i420_scaled(yuv: &impl YUVSource, factor: usize) -> (Vec<u8>, usize, usize) {
    if factor == 1 {
        // Row copies only: the common case (pictures up to max_width).
        return super::h264_jpeg::i420(yuv);
    }
    let (w, h) = yuv.dimensions();
    let (ys, us, vs) = yuv.strides();
    let (ow, oh) = ((w / factor).max(2) & !1, (h / factor).max(2) & !1);
    let (cw, ch) = (ow / 2, oh / 2);
    let mut out = Vec::with_capacity(ow * oh + 2 * cw * ch);

    let sample = |plane: &[u8], stride: usize, x: usize, y: usize, pw: usize, ph: usize| -> u8 {
        let mut sum = 0u32;
        let mut n = 0u32;
        for dy in 0..factor {
            for dx in 0..factor {
                let (sx, sy) = (x * factor + dx, y * factor + dy);
                if sx < pw && sy < ph {
                    sum += u32::from(plane[sy * stride + sx]);
                    n += 1;
                }
            }
        }
        (sum / n.max(1)) as u8
    };
    for y in 0..oh {
        for x in 0..ow {
            out.push(sample(yuv.y(), ys, x, y, w, h));
        }
    }
    let (pw, ph) = (w.div_ceil(2), h.div_ceil(2));
    for (plane, stride) in [(yuv.u(), us), (yuv.v(), vs)] {
        for y in 0..ch {
            for x in 0..cw {
                out.push(sample(plane, stride, x, y, pw, ph));
            }
        }
    }
    (out, ow, oh)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::transcode::jpeg_h264::{H264Settings, JpegToH264};

    fn test_jpeg(w: u16, h: u16) -> Vec<u8> {
        let mut rgb = Vec::new();
        for y in 0..h {
            for x in 0..w {
                rgb.extend_from_slice(&[(x % 256) as u8, (y % 256) as u8, 90]);
            }
        }
        let mut jpeg = Vec::new();
        jpeg_encoder::Encoder::new(&mut jpeg, 90)
            .encode(&rgb, w, h, jpeg_encoder::ColorType::Rgb)
            .expect("test jpeg");
        jpeg
    }

    #[test]
    fn a_stream_of_access_units_becomes_jpegs_downscaled_when_wide() {
        let mut enc = JpegToH264::new(H264Settings::default());
        let mut aus = Vec::new();
        for _ in 0..3 {
            let (w, h) = enc.decode(&test_jpeg(640, 360)).expect("decode");
            aus.push(enc.encode(w, h).expect("encode"));
        }
        for (max_width, want) in [(0, (640, 360)), (320, (320, 180)), (200, (160, 90))] {
            let mut decoder =
                Decoder::with_api_config(OpenH264API::from_source(), DecoderConfig::new())
                    .expect("decoder");
            let s = MjpegSettings {
                quality: 75,
                max_fps: 10,
                max_width,
            };
            for au in &aus {
                let jpeg = decode_to_jpeg(&mut decoder, au, s).expect("a jpeg per picture");
                let header = turbojpeg::read_header(&jpeg).expect("header");
                assert_eq!((header.width, header.height), want);
            }
        }
    }
}
