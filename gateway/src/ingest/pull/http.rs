//! One attempt at pulling an HTTP camera.
//!
//! * `multipart/x-mixed-replace` (ESP32 CameraWebServer's `:81/stream`,
//!   most IP cameras' MJPEG URL): every part is a JPEG, read with the same
//!   streaming multipart reader the tests use against camgate's own output.
//! * `image/jpeg` (a snapshot URL): fetched again `pollFps` times a second
//!   (default 1) on one kept-alive connection.
//!
//! Frames are checked like a WebSocket camera's (whole JPEG, size limit)
//! and published into the room's hub slot: MJPEG out as they are, WebRTC
//! and HLS through the transcoder. Credentials from the URL's userinfo go
//! as HTTP basic auth.

use std::time::{Duration, Instant};

use camgate_protocols::jpeg::{self, TrailingPadding};
use camgate_protocols::multipart::Reader;
use camgate_sfu::SourceKind;
use futures_util::StreamExt;
use tracing::{info, warn};

use super::{Attempt, PullError, credentials};

/// Fastest snapshot polling.
const MAX_POLL_FPS: f32 = 30.0;

fn request_error(e: &reqwest::Error) -> PullError {
    if e.is_timeout() {
        PullError::Timeout("no answer from the camera")
    } else if e.is_connect() {
        // reqwest's Display carries the URL (and so the credentials):
        // only the innermost cause goes out.
        let mut cause: &dyn std::error::Error = e;
        while let Some(next) = cause.source() {
            cause = next;
        }
        PullError::Unreachable(cause.to_string())
    } else {
        PullError::Protocol("the HTTP exchange failed".into())
    }
}

/// 401/403 → `unauthorized`; any other non-2xx → a protocol error.
fn check_status(status: reqwest::StatusCode) -> Result<(), PullError> {
    if status == reqwest::StatusCode::UNAUTHORIZED || status == reqwest::StatusCode::FORBIDDEN {
        return Err(PullError::Unauthorized);
    }
    if !status.is_success() {
        return Err(PullError::Protocol(format!("HTTP {}", status.as_u16())));
    }
    Ok(())
}

/// Connects, publishes until the camera stops; an `Err` says why.
pub async fn run(a: &Attempt<'_>) -> Result<(), PullError> {
    let mut url = url::Url::parse(a.url).map_err(|_| PullError::Protocol("invalid url".into()))?;
    let creds = credentials(&url);
    let _ = url.set_username("");
    let _ = url.set_password(None);
    let client = reqwest::Client::builder()
        .connect_timeout(a.connect_timeout())
        .user_agent(format!("camgate/{}", env!("CARGO_PKG_VERSION")))
        .build()
        .map_err(|_| PullError::Protocol("no HTTP client".into()))?;
    let get = || {
        let mut req = client.get(url.clone());
        if let Some((user, password)) = &creds {
            req = req.basic_auth(user, Some(password));
        }
        req
    };
    let response = tokio::time::timeout(a.connect_timeout(), get().send())
        .await
        .map_err(|_| PullError::Timeout("no answer from the camera"))?
        .map_err(|e| request_error(&e))?;
    check_status(response.status())?;
    let content_type = response
        .headers()
        .get(reqwest::header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default()
        .to_ascii_lowercase();
    let seat = a
        .state
        .hub
        .publish(
            a.key,
            SourceKind::HttpJpeg,
            &a.ingress.id,
            crate::webrtc::next_conn(),
        )
        .map_err(|_| PullError::RoomBusy(a.key.room.clone()))?;
    let max_frame = a.state.config.ws_ingest.max_frame_kb as usize * 1024;
    let mut publisher = Publisher {
        a,
        seat: &seat,
        max_frame,
        started: false,
        warned: false,
    };
    let row = StreamRow::start(a, SourceKind::HttpJpeg).await;
    let result = if content_type.starts_with("multipart/") {
        let boundary = content_type
            .split(';')
            .find_map(|p| p.trim().strip_prefix("boundary="))
            .map(|b| b.trim_matches('"').to_owned());
        // Content types were lowercased; the boundary must keep its case.
        let boundary = boundary.and_then(|_| {
            response
                .headers()
                .get(reqwest::header::CONTENT_TYPE)?
                .to_str()
                .ok()?
                .split(';')
                .find_map(|p| {
                    let (k, v) = p.trim().split_once('=')?;
                    k.eq_ignore_ascii_case("boundary")
                        .then(|| v.trim_matches('"').to_owned())
                })
        });
        match boundary {
            Some(b) => {
                info!("http camera: multipart MJPEG");
                multipart(a, response, &b, &mut publisher).await
            }
            None => Err(PullError::Protocol(
                "multipart response without a boundary".into(),
            )),
        }
    } else if content_type.starts_with("image/jpeg") {
        info!("http camera: snapshot URL, polled");
        let body = response.bytes().await.map_err(|e| request_error(&e))?;
        publisher.frame(&body);
        poll(a, &get, &mut publisher).await
    } else {
        Err(PullError::UnsupportedCodec(format!(
            "{content_type:?} (an HTTP camera must serve multipart/x-mixed-replace or image/jpeg)"
        )))
    };
    row.end(a).await;
    drop(seat);
    result
}

struct Publisher<'a> {
    a: &'a Attempt<'a>,
    seat: &'a crate::hub::PublisherGuard,
    max_frame: usize,
    started: bool,
    warned: bool,
}

impl Publisher<'_> {
    /// Publishes one JPEG if it is whole; drops (and logs once) if not.
    fn frame(&mut self, data: &[u8]) {
        self.a.live.add_bytes(data.len());
        let checked = if data.len() > self.max_frame {
            Err(format!("frame of {} bytes over the limit", data.len()))
        } else {
            jpeg::check(data, TrailingPadding::TrimZeros).map_err(|e| e.to_string())
        };
        match checked {
            Ok(info) => {
                if !self.started {
                    self.started = true;
                    if let Some((w, h)) = info.dimensions {
                        self.a.live.set_size(w.into(), h.into());
                    }
                    self.a.live.publishing();
                }
                crate::metrics::METRICS.frame_in(crate::metrics::Source::HttpMjpeg, info.len);
                self.seat.room().publish(&data[..info.len], Instant::now());
            }
            Err(e) => {
                if !self.warned {
                    warn!(error = %e, "bad frame from the camera dropped (logged once per connection)");
                    self.warned = true;
                }
            }
        }
    }
}

async fn multipart(
    a: &Attempt<'_>,
    response: reqwest::Response,
    boundary: &str,
    publisher: &mut Publisher<'_>,
) -> Result<(), PullError> {
    let mut reader = Reader::with_limit(boundary, publisher.max_frame + 64 * 1024);
    let mut body = response.bytes_stream();
    let mut last_frame = Instant::now();
    loop {
        let chunk = tokio::time::timeout(a.frame_timeout(), body.next())
            .await
            .map_err(|_| PullError::Timeout("the camera stopped sending"))?;
        let chunk = match chunk {
            None => return Err(PullError::Ended),
            Some(Err(_)) => return Err(PullError::Ended),
            Some(Ok(c)) => c,
        };
        reader.push(&chunk);
        loop {
            match reader.pull() {
                Ok(Some(part)) => {
                    last_frame = Instant::now();
                    publisher.frame(&part);
                }
                Ok(None) => break,
                Err(e) => return Err(PullError::Protocol(e.to_string())),
            }
        }
        if reader.is_done() {
            return Err(PullError::Ended);
        }
        // Bytes that never make a part (a camera sending garbage) time out
        // like silence does.
        if last_frame.elapsed() > a.frame_timeout() {
            return Err(PullError::Timeout("no whole frame from the camera"));
        }
    }
}

async fn poll(
    a: &Attempt<'_>,
    get: &impl Fn() -> reqwest::RequestBuilder,
    publisher: &mut Publisher<'_>,
) -> Result<(), PullError> {
    let fps = a.options.poll_fps.unwrap_or(1.0).clamp(0.01, MAX_POLL_FPS);
    let mut tick = tokio::time::interval(Duration::from_secs_f32(1.0 / fps));
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    tick.tick().await;
    loop {
        tick.tick().await;
        let response = tokio::time::timeout(a.frame_timeout(), get().send())
            .await
            .map_err(|_| PullError::Timeout("no answer from the camera"))?
            .map_err(|e| request_error(&e))?;
        check_status(response.status())?;
        let body = tokio::time::timeout(a.frame_timeout(), response.bytes())
            .await
            .map_err(|_| PullError::Timeout("the camera stopped sending"))?
            .map_err(|e| request_error(&e))?;
        publisher.frame(&body);
    }
}

/// The stream's row in the database while a pulled camera publishes.
pub struct StreamRow {
    stream_id: String,
    session_id: String,
    kind: SourceKind,
}

impl StreamRow {
    /// Records the start (`type` from the source kind).
    pub async fn start(a: &Attempt<'_>, kind: SourceKind) -> StreamRow {
        let stream_id = format!("{}/{}", a.key.room, a.ingress.participant_identity);
        let session_id = crate::auth::random_id("", 8);
        if let Err(e) = a
            .state
            .db
            .stream_started(
                a.ingress.app_id,
                &stream_id,
                &a.key.room,
                &a.ingress.participant_identity,
                kind.as_str(),
                &session_id,
            )
            .await
        {
            warn!(error = %e, "could not record stream start");
        }
        a.state.webhooks.stream_started(
            &a.key.app,
            &a.key.room,
            &stream_id,
            kind,
            crate::webhooks::Publisher::Ingress(&a.ingress.id),
        );
        StreamRow {
            stream_id,
            session_id,
            kind,
        }
    }

    /// Records the end.
    pub async fn end(self, a: &Attempt<'_>) {
        if let Err(e) = a
            .state
            .db
            .stream_ended(a.ingress.app_id, &self.stream_id, &self.session_id)
            .await
        {
            warn!(error = %e, "could not record stream end");
        }
        a.state.webhooks.stream_ended(
            &a.key.app,
            &a.key.room,
            &self.stream_id,
            self.kind,
            crate::webhooks::Publisher::Ingress(&a.ingress.id),
            None,
        );
    }
}
