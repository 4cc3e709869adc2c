//! Runs one MJPEG camera's JPEG→H.264 transcoder while its room is watched
//! over WebRTC or HLS.
//!
//! [`ensure`] starts it (once per room). The task attaches to the SFU as the
//! room's external source, follows the hub's frames without counting as a
//! viewer (the WebRTC viewers are counted where they join), and encodes each
//! new frame once: the access unit goes to the room's HLS stream while HLS
//! clients ask for it (within [`crate::webrtc::HLS_DEMAND_WINDOW`]) and is packetized for
//! the SFU while WebRTC subscribers are there. A keyframe request from the
//! SFU (a viewer joined, or lost packets) forces an IDR *and* re-encodes the
//! latest frame at once — the hub's last JPEG is the keyframe cache, so a
//! viewer starts without waiting for the camera's next frame. HLS asks for
//! an IDR when a segment has run for two seconds, so segments stay short
//! whatever the keyframe interval. When neither kind of viewer is left for
//! `transcode_grace_secs`, or the camera's room is gone, the task stops,
//! ends the HLS playlist and detaches.
//!
//! Encoding is CPU work (milliseconds per frame), so the task runs on the
//! blocking pool with its own small event loop instead of holding a runtime
//! worker.

use std::sync::Arc;
use std::time::{Duration, Instant};

use camgate_protocols::h264::access_unit_is_keyframe;
use camgate_sfu::core::SourceCodec;
use tokio::time::MissedTickBehavior;
use tracing::{debug, info, warn};

use super::jpeg_h264::{H264Settings, JpegToH264};
use crate::hub::RoomKey;
use crate::server::AppState;
use crate::webrtc::sfu_room;

/// Starts the room's transcoder unless one runs already.
pub fn ensure(state: &Arc<AppState>, key: &RoomKey) {
    let room_media = state.media.room(&sfu_room(key));
    {
        let mut running = room_media
            .transcoding
            .lock()
            .unwrap_or_else(|e| e.into_inner());
        if *running {
            return;
        }
        *running = true;
    }
    let state = state.clone();
    let key = key.clone();
    let handle = tokio::runtime::Handle::current();
    tokio::task::spawn_blocking(move || {
        handle.block_on(async {
            let span = tracing::info_span!("transcoder", room = %key.room);
            let _enter = span.enter();
            let stats = run(&state, &key).await;
            info!(
                frames = stats.frames,
                encode_ms_avg = stats.avg_ms(),
                "transcoder stopped"
            );
            state.media.sfu().detach_source(&sfu_room(&key)).await;
            let room_media = state.media.room(&sfu_room(&key));
            *room_media
                .transcoding
                .lock()
                .unwrap_or_else(|e| e.into_inner()) = false;
        });
    });
}

#[derive(Default)]
struct RunStats {
    frames: u64,
    busy: Duration,
}

impl RunStats {
    fn avg_ms(&self) -> f64 {
        if self.frames == 0 {
            0.0
        } else {
            self.busy.as_secs_f64() * 1000.0 / self.frames as f64
        }
    }
}

async fn run(state: &Arc<AppState>, key: &RoomKey) -> RunStats {
    let mut stats = RunStats::default();
    let config = &state.config.webrtc;
    let sfu = state.media.sfu();
    match sfu
        .attach_source(&sfu_room(key), SourceCodec::H264ConstrainedBaseline)
        .await
    {
        Ok(Ok(())) => {}
        Ok(Err(e)) => {
            debug!(error = %e, "not attaching the transcoder");
            return stats;
        }
        Err(_) => return stats,
    }
    info!("transcoder started");
    let room_media = state.media.room(&sfu_room(key));
    let mut subscribers = room_media.subscribers.subscribe();
    let mut transcoder = JpegToH264::new(H264Settings {
        bitrate_bps: config.h264_bitrate_kbps.saturating_mul(1000),
        max_fps: state.config.ws_ingest.max_fps.max(1) as f32,
        keyframe_interval: config.keyframe_interval_frames,
    });
    let started = Instant::now();
    let grace = Duration::from_secs(config.transcode_grace_secs.into());
    let mut idle_since: Option<Instant> = None;
    let mut tick = tokio::time::interval(Duration::from_millis(500));
    tick.set_missed_tick_behavior(MissedTickBehavior::Delay);
    let mut frames = None;
    let mut last_seq = None;
    let mut warned = false;
    let mut hls: Option<Arc<crate::hls::Stream>> = None;
    loop {
        // (Re)attach to the hub room: a camera that reconnects after its
        // slot was dropped publishes into a new slot.
        if frames.is_none() {
            match state.hub.get(key) {
                Some(room) if room.publisher().is_some() => {
                    frames = Some(room.subscribe_frames());
                }
                _ => {
                    if idle_since.is_none() {
                        idle_since = Some(Instant::now());
                    }
                }
            }
        }
        let mut encode_latest = false;
        let mut forced = false;
        tokio::select! {
            changed = async {
                match frames.as_mut() {
                    Some(rx) => rx.changed().await.is_ok(),
                    None => std::future::pending().await,
                }
            } => {
                if changed {
                    encode_latest = true;
                } else {
                    frames = None;
                    // The camera left: its playlist ends now.
                    if let Some(s) = hls.take() {
                        state.hls.close(key, &s);
                    }
                }
            }
            _ = room_media.keyframe.notified() => {
                transcoder.request_keyframe();
                encode_latest = true;
                forced = true;
            }
            _ = subscribers.changed() => {}
            _ = tick.tick() => {}
        }
        let now = Instant::now();
        let webrtc = *subscribers.borrow() > 0;
        let hls_wanted = room_media.hls_wanted();
        if hls_wanted && hls.is_none() && frames.is_some() {
            hls = Some(state.hls.ensure(key));
            transcoder.request_keyframe();
            encode_latest = true;
            forced = true;
        } else if !hls_wanted && let Some(s) = hls.take() {
            state.hls.close(key, &s);
        }
        if !webrtc && !hls_wanted {
            let since = *idle_since.get_or_insert(now);
            if now.duration_since(since) >= grace {
                break;
            }
        } else if frames.is_some() {
            idle_since = None;
        } else if idle_since.is_some_and(|t| now.duration_since(t) >= grace) {
            // Viewers are still there but the camera is gone for good.
            break;
        }
        if !encode_latest {
            continue;
        }
        let Some(frame) = frames.as_ref().and_then(|rx| rx.borrow().clone()) else {
            continue;
        };
        if last_seq == Some(frame.seq) && !forced {
            continue;
        }
        last_seq = Some(frame.seq);
        let elapsed = now.duration_since(started);
        let t0 = Instant::now();
        let access_unit = match transcoder.access_unit(&frame.part.jpeg()) {
            Ok(au) => au,
            Err(e) => {
                if !warned {
                    warn!(error = %e, "frame not transcoded (logged once per run)");
                    warned = true;
                }
                continue;
            }
        };
        stats.frames += 1;
        stats.busy += t0.elapsed();
        if access_unit.is_empty() {
            continue;
        }
        if let Some(s) = &hls {
            let keyframe = access_unit_is_keyframe(&access_unit);
            if s.push_h264(elapsed.as_millis() as i64, keyframe, &access_unit) {
                transcoder.request_keyframe();
            }
        }
        if webrtc {
            let time = (elapsed.as_micros() * 9 / 100) as u32;
            let packets = transcoder.packetize(&access_unit, time);
            if sfu.write_source(&sfu_room(key), packets).await.is_err() {
                break;
            }
        }
    }
    if let Some(s) = hls.take() {
        state.hls.close(key, &s);
    }
    stats
}
