//! Pulled cameras: `url` ingresses. camgate connects out to an RTSP camera
//! ([`rtsp`], retina) or an HTTP camera ([`http`]: multipart MJPEG such as
//! the ESP32 CameraWebServer's `/stream`, or a single-JPEG snapshot URL
//! polled at a rate) and publishes what it gets into the ingress's room like
//! any other source.
//!
//! Each ingress has one supervisor task: connect, publish until the camera
//! drops or stops sending, then retry with exponential backoff
//! (`pull.min_backoff_secs` doubling up to `pull.max_backoff_secs`; reset
//! once the camera delivered media). Its [`PullState`] is what the ingress
//! API shows: `connecting`, `publishing` or `retrying`, the last error in
//! plain words, and the failed attempts. Credentials come from the URL's
//! userinfo; they are sent to the camera only and appear in no log, error
//! or response ([`redact`]).

pub mod http;
pub mod rtsp;

use std::collections::HashMap;
use std::sync::atomic::{AtomicU32, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use serde::{Deserialize, Serialize};
use tokio::sync::Notify;
use tracing::{Instrument, info, warn};

use crate::hub::RoomKey;
use crate::server::SharedState;
use crate::store::IngressRow;

/// Options of a pulled ingress, stored as JSON with the row.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", default)]
pub struct PullOptions {
    /// RTSP over UDP instead of TCP-interleaved.
    pub udp: bool,
    /// Snapshot URLs: polls per second.
    pub poll_fps: Option<f32>,
    /// retina's initial timestamp policy (camera quirk).
    pub initial_timestamp: Option<String>,
    /// retina's initial sequence number policy (camera quirk).
    pub initial_seq: Option<String>,
    /// Record the stream whenever it is live (any ingress type).
    pub record: bool,
}

/// Why an attempt ended, in the words the API shows.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum PullError {
    /// The camera refused the credentials (or asked for some).
    #[error("unauthorized")]
    Unauthorized,
    /// No connection (refused, no route, DNS).
    #[error("unreachable: {0}")]
    Unreachable(String),
    /// Connected but no answer or no media in time.
    #[error("timeout: {0}")]
    Timeout(&'static str),
    /// The camera sends nothing camgate can relay.
    #[error("unsupported codec {0}")]
    UnsupportedCodec(String),
    /// The camera answered with something that is not what was asked.
    #[error("protocol error: {0}")]
    Protocol(String),
    /// Another source publishes in the ingress's room.
    #[error("room busy: {0} already has a publisher")]
    RoomBusy(String),
    /// The camera ended the stream.
    #[error("stream ended by the camera")]
    Ended,
}

/// The live state of one pulled ingress.
#[derive(Debug)]
pub struct PullState {
    status: Mutex<(&'static str, Option<String>)>,
    /// Failed attempts since media last flowed.
    pub retries: AtomicU32,
    /// Media bytes received on the current connection.
    pub bytes: AtomicU64,
    /// Picture size, when known.
    pub width: AtomicU32,
    /// Picture height, when known.
    pub height: AtomicU32,
    since: Mutex<Option<Instant>>,
    stop: Notify,
}

impl PullState {
    fn new() -> PullState {
        PullState {
            status: Mutex::new(("connecting", None)),
            retries: AtomicU32::new(0),
            bytes: AtomicU64::new(0),
            width: AtomicU32::new(0),
            height: AtomicU32::new(0),
            since: Mutex::new(None),
            stop: Notify::new(),
        }
    }

    /// `connecting`, `publishing` or `retrying`, and the last error.
    pub fn status(&self) -> (&'static str, Option<String>) {
        self.status
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .clone()
    }

    fn set_status(&self, status: &'static str) {
        self.status.lock().unwrap_or_else(|e| e.into_inner()).0 = status;
    }

    /// Media flows: the attempt succeeded.
    pub fn publishing(&self) {
        *self.status.lock().unwrap_or_else(|e| e.into_inner()) = ("publishing", None);
        self.retries.store(0, Ordering::Relaxed);
        *self.since.lock().unwrap_or_else(|e| e.into_inner()) = Some(Instant::now());
    }

    /// Counts received media bytes.
    pub fn add_bytes(&self, n: usize) {
        self.bytes.fetch_add(n as u64, Ordering::Relaxed);
    }

    /// Records the picture size.
    pub fn set_size(&self, width: u32, height: u32) {
        self.width.store(width, Ordering::Relaxed);
        self.height.store(height, Ordering::Relaxed);
    }

    /// Average bitrate of the current connection, bits per second.
    pub fn bitrate(&self) -> u64 {
        let since = *self.since.lock().unwrap_or_else(|e| e.into_inner());
        let secs = since.map_or(0.0, |s| s.elapsed().as_secs_f64());
        if secs < 0.5 {
            return 0;
        }
        (self.bytes.load(Ordering::Relaxed) as f64 * 8.0 / secs) as u64
    }
}

/// The pulled ingresses of this node.
#[derive(Debug, Default)]
pub struct Pulls {
    live: Mutex<HashMap<String, Arc<PullState>>>,
}

impl Pulls {
    /// The state of a pulled ingress.
    pub fn get(&self, ingress_id: &str) -> Option<Arc<PullState>> {
        self.lock().get(ingress_id).cloned()
    }

    /// Pulled ingresses running.
    pub fn count(&self) -> usize {
        self.lock().len()
    }

    /// Pulled ingresses in `status` (`connecting`, `publishing`,
    /// `retrying`).
    pub fn count_status(&self, status: &str) -> usize {
        self.lock()
            .values()
            .filter(|s| s.status().0 == status)
            .count()
    }

    /// Stops pulling an ingress (it was deleted); false when it ran nowhere.
    pub fn stop(&self, ingress_id: &str) -> bool {
        match self.lock().remove(ingress_id) {
            Some(s) => {
                s.stop.notify_one();
                true
            }
            None => false,
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<String, Arc<PullState>>> {
        self.live.lock().unwrap_or_else(|e| e.into_inner())
    }
}

/// One attempt's context: what to pull and where to put it.
pub struct Attempt<'a> {
    /// Shared server state.
    pub state: &'a SharedState,
    /// The ingress.
    pub ingress: &'a IngressRow,
    /// Its room.
    pub key: &'a RoomKey,
    /// The camera URL, credentials included.
    pub url: &'a str,
    /// Its options.
    pub options: &'a PullOptions,
    /// Its live state.
    pub live: &'a PullState,
}

impl Attempt<'_> {
    /// `pull.connect_timeout_secs`.
    pub fn connect_timeout(&self) -> Duration {
        Duration::from_secs(self.state.config.pull.connect_timeout_secs.into())
    }

    /// `pull.frame_timeout_secs`.
    pub fn frame_timeout(&self) -> Duration {
        Duration::from_secs(self.state.config.pull.frame_timeout_secs.into())
    }
}

/// Starts pulling every `url` ingress in the database (at boot).
pub async fn start_all(state: &SharedState) {
    match state.db.url_ingresses().await {
        Ok(rows) => {
            for (app, row) in rows {
                start(state, &app, row);
            }
        }
        Err(e) => warn!(error = %e, "could not list pulled ingresses"),
    }
}

/// Starts the supervisor of one `url` ingress of app `app`.
pub fn start(state: &SharedState, app: &str, ingress: IngressRow) {
    let Some(url) = ingress.url.clone() else {
        return;
    };
    let live = Arc::new(PullState::new());
    if let Some(old) = state.pulls.lock().insert(ingress.id.clone(), live.clone()) {
        old.stop.notify_one();
    }
    let state = state.clone();
    let key = RoomKey {
        app: app.to_owned(),
        room: ingress.room.clone(),
    };
    let options: PullOptions = ingress
        .options
        .as_deref()
        .and_then(|o| serde_json::from_str(o).ok())
        .unwrap_or_default();
    let span = tracing::info_span!("pull", ingress = %ingress.id, url = %redact(&url));
    tokio::spawn(
        async move {
            supervise(&state, &ingress, &key, &url, &options, &live).await;
        }
        .instrument(span),
    );
}

async fn supervise(
    state: &SharedState,
    ingress: &IngressRow,
    key: &RoomKey,
    url: &str,
    options: &PullOptions,
    live: &Arc<PullState>,
) {
    let config = &state.config.pull;
    let mut shutdown = state.shutdown.clone();
    let mut last_error: Option<PullError> = None;
    loop {
        live.set_status("connecting");
        live.bytes.store(0, Ordering::Relaxed);
        *live.since.lock().unwrap_or_else(|e| e.into_inner()) = None;
        let attempt = Attempt {
            state,
            ingress,
            key,
            url,
            options,
            live,
        };
        let run = async {
            if url.starts_with("rtsp://") || url.starts_with("rtsps://") {
                rtsp::run(&attempt).await
            } else {
                http::run(&attempt).await
            }
        };
        let result = tokio::select! {
            r = run => r,
            _ = live.stop.notified() => break,
            _ = shutdown.changed() => break,
        };
        let error = result.err().unwrap_or(PullError::Ended);
        let retries = live.retries.fetch_add(1, Ordering::Relaxed) + 1;
        // One log line per change of reason, not per retry.
        if last_error.as_ref() != Some(&error) {
            warn!(%error, retries, "camera pull failed; retrying");
        }
        *live.status.lock().unwrap_or_else(|e| e.into_inner()) =
            ("retrying", Some(error.to_string()));
        last_error = Some(error);
        let backoff = config
            .min_backoff_secs
            .saturating_mul(1 << (retries - 1).min(16))
            .min(config.max_backoff_secs);
        tokio::select! {
            _ = tokio::time::sleep(Duration::from_secs(backoff.into())) => {}
            _ = live.stop.notified() => break,
            _ = shutdown.changed() => break,
        }
    }
    info!("camera pull stopped");
}

/// A URL with its credentials masked, for logs (`rtsp://***@host/path`).
pub fn redact(url: &str) -> String {
    match url::Url::parse(url) {
        Ok(mut u) => {
            if !u.username().is_empty() || u.password().is_some() {
                let _ = u.set_username("***");
                let _ = u.set_password(None);
            }
            u.to_string()
        }
        Err(_) => "(invalid url)".into(),
    }
}

/// A URL without its credentials (what the API returns).
pub fn without_credentials(url: &str) -> String {
    match url::Url::parse(url) {
        Ok(mut u) => {
            let _ = u.set_username("");
            let _ = u.set_password(None);
            u.to_string()
        }
        Err(_) => String::new(),
    }
}

/// The URL's userinfo, percent-decoded: (user, password).
pub fn credentials(url: &url::Url) -> Option<(String, String)> {
    if url.username().is_empty() {
        return None;
    }
    let decode = |s: &str| {
        percent_encoding::percent_decode_str(s)
            .decode_utf8_lossy()
            .into_owned()
    };
    Some((
        decode(url.username()),
        decode(url.password().unwrap_or_default()),
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn credentials_never_leave_in_redacted_urls() {
        let u = "rtsp://admin:p%40ss@cam.local:554/stream1";
        assert_eq!(redact(u), "rtsp://***@cam.local:554/stream1");
        assert_eq!(without_credentials(u), "rtsp://cam.local:554/stream1");
        let parsed = url::Url::parse(u).expect("url");
        assert_eq!(credentials(&parsed), Some(("admin".into(), "p@ss".into())));
        assert_eq!(redact("http://cam/stream"), "http://cam/stream");
        assert_eq!(redact("not a url"), "(invalid url)");
    }
}
