//! HLS and low-latency HLS from a memory ring: no disk for live.
//!
//! * [`mux`]: CMAF init segments and fragments (mp4-atom).
//! * [`packager`]: one stream's parts, segments and playlist (sans-IO).
//! * [`Hls`]: the live streams by room, with a change signal that blocking
//!   playlist reloads (`_HLS_msn`/`_HLS_part`) and preload-hinted part
//!   requests wait on.

pub mod mux;
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
        Stream {
            packager: Mutex::new(Packager::new()),
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

    fn lock(&self) -> MutexGuard<'_, Packager> {
        self.packager.lock().unwrap_or_else(|e| e.into_inner())
    }
}

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
