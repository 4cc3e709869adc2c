//! HLS and low-latency HLS from a memory ring: no disk for live.
//!
//! * [`mux`]: CMAF init segments and fragments ([`camgate_protocols::fmp4`]).
//! * [`packager`]: one stream's parts, segments and playlist (sans-IO).
//! * [`Hls`]: the live streams by room, with a change signal that blocking
//!   playlist reloads (`_HLS_msn`/`_HLS_part`) and preload-hinted part
//!   requests wait on.

pub use camgate_protocols::fmp4 as mux;
pub mod packager;

use std::collections::HashMap;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use tokio::sync::watch;

use crate::hub::RoomKey;
use packager::Packager;

/// How long an ended stream's playlist (with `EXT-X-ENDLIST`) stays
/// readable.
pub const KEEP_ENDED: Duration = Duration::from_secs(60);

/// One live (or just ended) HLS stream.
#[derive(Debug)]
pub struct Stream {
    packager: Mutex<Packager>,
    changed: watch::Sender<u64>,
    /// When a keyframe was last asked of a WebRTC publisher for this
    /// stream (segments can only end on keyframes).
    pub keyframe_asked: Mutex<Option<std::time::Instant>>,
}

impl Stream {
    fn new() -> Stream {
        let mut packager = Packager::new();
        packager.tap = Some(tokio::sync::broadcast::channel(1024).0);
        Stream {
            packager: Mutex::new(packager),
            changed: watch::channel(0).0,
            keyframe_asked: Mutex::new(None),
        }
    }

    /// Runs `f` on the packager; wakes waiting requests when a part was
    /// added or the stream ended.
    pub fn with<R>(&self, f: impl FnOnce(&mut Packager) -> R) -> R {
        let mut p = self.lock();
        let before = (p.last_part(), p.ended());
        let r = f(&mut p);
        if (p.last_part(), p.ended()) != before {
            self.changed.send_modify(|n| *n += 1);
        }
        r
    }

    /// Waits until `ready` holds (checked now and after every change) or
    /// `timeout` passes; returns whether it held.
    pub async fn wait_for(
        &self,
        timeout: Duration,
        mut ready: impl FnMut(&Packager) -> bool,
    ) -> bool {
        let mut rx = self.changed.subscribe();
        let deadline = tokio::time::Instant::now() + timeout;
        loop {
            if ready(&self.lock()) {
                return true;
            }
            if tokio::time::timeout_at(deadline, rx.changed())
                .await
                .is_err()
            {
                return ready(&self.lock());
            }
        }
    }

    /// Adds one H.264 access unit (Annex B) taken at `time_ms`; a
    /// keyframe's SPS/PPS (re)configure the video track. Returns true when
    /// the open segment has run for [`SEGMENT_TARGET_SECS`], so a source that
    /// sends keyframes only when asked (WebRTC publishers, the camera
    /// transcoder) should produce one now.
    pub fn push_h264(&self, time_ms: i64, keyframe: bool, au: &[u8]) -> bool {
        use camgate_protocols::h264::{NAL_PPS, NAL_SPS, nal_type, parse_sps, split_annex_b};
        self.with(|p| {
            if keyframe {
                let sps = split_annex_b(au).find(|n| nal_type(n[0]) == NAL_SPS);
                let pps = split_annex_b(au).find(|n| nal_type(n[0]) == NAL_PPS);
                if let (Some(sps), Some(pps)) = (sps, pps)
                    && let Some(info) = parse_sps(sps)
                {
                    p.set_video(mux::VideoParams {
                        width: info.width.min(65535) as u16,
                        height: info.height.min(65535) as u16,
                        sps: sps.to_vec(),
                        pps: pps.to_vec(),
                    });
                }
            }
            p.push_video(time_ms, 0, keyframe, au);
            p.open_segment_secs() >= SEGMENT_TARGET_SECS
        })
    }

    fn lock(&self) -> MutexGuard<'_, Packager> {
        self.packager.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Every sample from now on (restreams).
    pub fn subscribe(&self) -> Option<tokio::sync::broadcast::Receiver<packager::TapSample>> {
        self.lock().tap.as_ref().map(|t| t.subscribe())
    }
}

/// Segment length aimed for with sources that make keyframes on request.
pub const SEGMENT_TARGET_SECS: f64 = 2.0;

/// The HLS streams by room.
#[derive(Debug, Default)]
pub struct Hls {
    streams: Mutex<HashMap<RoomKey, Arc<Stream>>>,
}

impl Hls {
    /// A publisher starts: the room's stream, created or restarted (a new
    /// publisher continues the playlist after a discontinuity).
    pub fn open(&self, key: &RoomKey) -> Arc<Stream> {
        let mut streams = self.lock();
        match streams.get(key) {
            Some(s) => {
                s.with(Packager::restart);
                s.clone()
            }
            None => {
                let s = Arc::new(Stream::new());
                streams.insert(key.clone(), s.clone());
                s
            }
        }
    }

    /// The room's stream for a source that produces on demand (the camera
    /// transcoder): the live one if any, an ended one restarted, or a new
    /// one.
    pub fn ensure(&self, key: &RoomKey) -> Arc<Stream> {
        let mut streams = self.lock();
        match streams.get(key) {
            Some(s) => {
                if s.lock().ended() {
                    s.with(Packager::restart);
                }
                s.clone()
            }
            None => {
                let s = Arc::new(Stream::new());
                streams.insert(key.clone(), s.clone());
                s
            }
        }
    }

    /// The room's stream.
    pub fn get(&self, key: &RoomKey) -> Option<Arc<Stream>> {
        self.lock().get(key).cloned()
    }

    /// The publisher stopped: the playlist ends, and the stream is dropped
    /// after [`KEEP_ENDED`] unless a new publisher restarted it.
    pub fn close(self: &Arc<Self>, key: &RoomKey, stream: &Arc<Stream>) {
        stream.with(Packager::end);
        let (hls, key, stream) = (self.clone(), key.clone(), stream.clone());
        tokio::spawn(async move {
            tokio::time::sleep(KEEP_ENDED).await;
            let mut streams = hls.lock();
            if streams
                .get(&key)
                .is_some_and(|s| Arc::ptr_eq(s, &stream) && s.lock().ended())
            {
                streams.remove(&key);
            }
        });
    }

    fn lock(&self) -> MutexGuard<'_, HashMap<RoomKey, Arc<Stream>>> {
        self.streams.lock().unwrap_or_else(|e| e.into_inner())
    }
}
