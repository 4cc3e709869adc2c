//! The device WebSocket (`/ingest/ws`): ESP32-CAMs push one JPEG per binary
//! message. The protocol is in `docs/device-protocol.md`.
//!
//! Per connection: check the handshake (rate limit, names, key, room), take
//! the key's seat (a newer connection with the same key replaces an older
//! one with 4409), publish to the hub, keep the connection alive with pings,
//! and tell the camera to slow down while nobody watches.

use crate::metrics::{DropReason, METRICS, Source};
use std::collections::HashMap;
use std::net::{IpAddr, SocketAddr};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::extract::ws::{CloseFrame, Message, WebSocket, WebSocketUpgrade};
use axum::extract::{ConnectInfo, Query, State};
use axum::http::HeaderMap;
use axum::response::Response;
use camgate_protocols::api::{DropCounts, namespace_room, validate_slug};
use camgate_protocols::device::{DeviceMessage, ServerMessage, close};
use camgate_protocols::jpeg;
use camgate_sfu::SourceKind;
use tokio::sync::oneshot;
use tokio::time::{Instant, MissedTickBehavior, interval, sleep_until};
use tracing::{Instrument, debug, info, info_span, warn};

use crate::auth::{hash_secret, now_rfc3339, random_id};
use crate::hub::RoomKey;
use crate::server::SharedState;
use crate::store::{App, WsKey};

/// Hard transport cap on one WebSocket message, above any frame limit.
const TRANSPORT_CAP: usize = 8 * 1024 * 1024;
/// Socket read buffer per camera. tungstenite allocates 128 KiB eagerly by
/// default, which is 128 MB for a thousand cameras; a camera sends a frame
/// every ~100 ms, so 16 KiB reads cost nothing measurable.
const READ_BUFFER: usize = 16 * 1024;

/// Why the server closes a camera from outside its connection.
#[derive(Debug, Clone, Copy)]
pub struct Kick {
    code: u16,
    reason: &'static str,
}

impl Kick {
    /// The stream was stopped through the API (1000 `stream stopped`).
    pub fn stopped() -> Kick {
        Kick {
            code: 1000,
            reason: "stream stopped",
        }
    }

    /// The key was revoked (4401 `key revoked`).
    pub fn revoked() -> Kick {
        Kick {
            code: close::UNAUTHORIZED,
            reason: "key revoked",
        }
    }
}

/// Live counters of one camera connection.
#[derive(Debug, Default)]
pub struct CameraStats {
    frames: AtomicU64,
    bytes: AtomicU64,
    too_large: AtomicU64,
    not_jpeg: AtomicU64,
    fps: AtomicU64,
}

impl CameraStats {
    /// Frames accepted.
    pub fn frames(&self) -> u64 {
        self.frames.load(Ordering::Relaxed)
    }

    /// Dropped frames by reason.
    pub fn drops(&self) -> DropCounts {
        DropCounts {
            too_large: self.too_large.load(Ordering::Relaxed),
            not_jpeg: self.not_jpeg.load(Ordering::Relaxed),
            fps: self.fps.load(Ordering::Relaxed),
        }
    }
}

struct LiveCamera {
    conn: u64,
    kick: Option<oneshot::Sender<Kick>>,
    stats: Arc<CameraStats>,
}

/// The cameras connected now, by key id.
#[derive(Default)]
pub struct Cameras {
    live: Mutex<HashMap<String, LiveCamera>>,
    next_conn: AtomicU64,
}

impl std::fmt::Debug for Cameras {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Cameras")
            .field("live", &self.count())
            .finish()
    }
}

impl Cameras {
    fn register(&self, key_id: &str, stats: Arc<CameraStats>) -> (u64, oneshot::Receiver<Kick>) {
        let conn = self.next_conn.fetch_add(1, Ordering::Relaxed);
        let (tx, rx) = oneshot::channel();
        let old = self.live.lock().unwrap_or_else(|e| e.into_inner()).insert(
            key_id.to_owned(),
            LiveCamera {
                conn,
                kick: Some(tx),
                stats,
            },
        );
        if let Some(mut old) = old
            && let Some(k) = old.kick.take()
        {
            let _ = k.send(Kick {
                code: close::REPLACED,
                reason: "replaced by a newer connection",
            });
        }
        (conn, rx)
    }

    fn unregister(&self, key_id: &str, conn: u64) {
        let mut live = self.live.lock().unwrap_or_else(|e| e.into_inner());
        if live.get(key_id).is_some_and(|c| c.conn == conn) {
            live.remove(key_id);
        }
    }

    /// Closes the live connection of a key; false when none is connected.
    pub fn kick(&self, key_id: &str, kick: Kick) -> bool {
        let mut live = self.live.lock().unwrap_or_else(|e| e.into_inner());
        live.get_mut(key_id)
            .and_then(|c| c.kick.take())
            .is_some_and(|k| k.send(kick).is_ok())
    }

    /// Counters of a connected key.
    pub fn stats(&self, key_id: &str) -> Option<Arc<CameraStats>> {
        self.live
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .get(key_id)
            .map(|c| c.stats.clone())
    }

    /// Cameras connected now.
    pub fn count(&self) -> usize {
        self.live.lock().unwrap_or_else(|e| e.into_inner()).len()
    }
}

struct Accepted {
    app: App,
    key: WsKey,
    peer: IpAddr,
    limits: crate::appconfig::WsIngestLimits,
}

struct Rejected {
    code: u16,
    reason: &'static str,
}

fn reject(code: u16, reason: &'static str) -> Rejected {
    Rejected { code, reason }
}

/// The client address: the socket's, or the first `X-Forwarded-For` hop
/// when the operator says camgate runs behind a proxy.
pub fn client_ip(headers: &HeaderMap, peer: SocketAddr, trust_forwarded: bool) -> IpAddr {
    if trust_forwarded
        && let Some(ip) = headers
            .get("x-forwarded-for")
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.split(',').next())
            .and_then(|v| v.trim().parse().ok())
    {
        return ip;
    }
    peer.ip()
}

/// `GET /ingest/ws?app=…&room=…[&identity=…][&key=…]`.
pub async fn handler(
    State(state): State<SharedState>,
    ConnectInfo(peer): ConnectInfo<SocketAddr>,
    Query(q): Query<HashMap<String, String>>,
    headers: HeaderMap,
    ws: WebSocketUpgrade,
) -> Response {
    let ws = ws
        .max_message_size(TRANSPORT_CAP)
        .max_frame_size(TRANSPORT_CAP)
        .read_buffer_size(READ_BUFFER);
    let ip = client_ip(&headers, peer, state.config.trust_forwarded);
    match authorize(&state, &q, &headers, ip).await {
        Ok(acc) => ws.on_upgrade(move |socket| run(state, socket, acc)),
        Err(rej) => {
            // Logged once per rejected handshake, without the key.
            warn!(%ip, app = q.get("app").map(String::as_str).unwrap_or(""),
                room = q.get("room").map(String::as_str).unwrap_or(""),
                code = rej.code, reason = rej.reason, "camera handshake rejected");
            ws.on_upgrade(move |mut socket| async move {
                let msg = ServerMessage::Error {
                    code: rej.code.to_string(),
                    message: rej.reason.into(),
                };
                let _ = socket.send(Message::Text(msg.to_json().into())).await;
                let _ = close_with(&mut socket, rej.code, rej.reason).await;
            })
        }
    }
}

async fn authorize(
    state: &SharedState,
    q: &HashMap<String, String>,
    headers: &HeaderMap,
    ip: IpAddr,
) -> Result<Accepted, Rejected> {
    if !state.handshake_limiter.allow(ip, std::time::Instant::now()) {
        return Err(reject(close::RATE_LIMITED, "rate_limited"));
    }
    let app_name = q.get("app").map(String::as_str).unwrap_or("live");
    validate_slug(app_name).map_err(|_| reject(close::UNAUTHORIZED, "invalid_app"))?;
    let room = q
        .get("room")
        .ok_or(reject(close::UNAUTHORIZED, "invalid_room"))?;
    validate_slug(room).map_err(|_| reject(close::UNAUTHORIZED, "invalid_room"))?;
    if let Some(identity) = q.get("identity") {
        validate_slug(identity).map_err(|_| reject(close::UNAUTHORIZED, "invalid_identity"))?;
    }
    let header_key = headers
        .get(axum::http::header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.split_once(' '))
        .filter(|(s, _)| s.eq_ignore_ascii_case("bearer"))
        .map(|(_, k)| k.trim());
    let key = header_key
        .or(q.get("key").map(String::as_str))
        .filter(|k| k.starts_with("wsk_") && k.len() <= 128)
        .ok_or(reject(close::UNAUTHORIZED, "invalid_key"))?;
    let internal = |e: sqlx::Error| {
        tracing::error!(error = %e, "database error during camera handshake");
        reject(close::UNAUTHORIZED, "handshake_error")
    };
    let app = state
        .db
        .app_by_name(app_name)
        .await
        .map_err(internal)?
        .ok_or(reject(close::UNAUTHORIZED, "unknown_app"))?;
    let key = state
        .db
        .ws_key_by_hash(&hash_secret(key))
        .await
        .map_err(internal)?
        .filter(|k| k.app_id == app.id)
        .ok_or(reject(close::UNAUTHORIZED, "invalid_key"))?;
    if namespace_room(&app.room_prefix, Some(room)) != key.room {
        return Err(reject(close::UNAUTHORIZED, "room_mismatch"));
    }
    let room_key = RoomKey {
        app: app.name.clone(),
        room: key.room.clone(),
    };
    if state
        .hub
        .get(&room_key)
        .is_some_and(|r| r.is_busy_for(&key.id))
    {
        return Err(reject(close::FORBIDDEN, "room_busy"));
    }
    // The app's own limits (reference §5.3 `ws_ingest`, §12 quotas). A
    // camera replacing its own connection is not counted twice.
    let limits = crate::appconfig::MediaConfig::from_settings(&app.settings).ws_ingest;
    if !limits.enabled {
        return Err(reject(close::FORBIDDEN, "ws_ingest_disabled"));
    }
    if state.cameras.stats(&key.id).is_none() {
        if limits.max_cameras > 0
            && state.hub.publishers_of_kind(&app.name, SourceKind::WsMjpeg)
                >= limits.max_cameras as usize
        {
            return Err(reject(close::FORBIDDEN, "camera_limit"));
        }
        if app.max_concurrent_streams > 0
            && state.hub.publishers_in_app(&app.name) as i64 >= app.max_concurrent_streams
        {
            return Err(reject(close::FORBIDDEN, "quota_exceeded"));
        }
    }
    Ok(Accepted {
        app,
        key,
        peer: ip,
        limits,
    })
}

async fn close_with(socket: &mut WebSocket, code: u16, reason: &str) -> Result<(), axum::Error> {
    socket
        .send(Message::Close(Some(CloseFrame {
            code,
            reason: reason.into(),
        })))
        .await
}

/// Token bucket enforcing the fps cap; a half-second burst absorbs WiFi
/// clumping while holding the long-run rate.
struct FpsBucket {
    tokens: f64,
    cap: f64,
    rate: f64,
    at: Instant,
}

impl FpsBucket {
    fn new(max_fps: u32) -> FpsBucket {
        let rate = f64::from(max_fps);
        let cap = (rate / 2.0).max(1.0);
        FpsBucket {
            tokens: cap,
            cap,
            rate,
            at: Instant::now(),
        }
    }

    fn take(&mut self, now: Instant) -> bool {
        self.tokens =
            (self.tokens + now.duration_since(self.at).as_secs_f64() * self.rate).min(self.cap);
        self.at = now;
        if self.tokens >= 1.0 {
            self.tokens -= 1.0;
            true
        } else {
            false
        }
    }
}

enum End {
    DeviceClosed,
    Transport(String),
    Closed { code: u16, reason: &'static str },
}

async fn run(state: SharedState, socket: WebSocket, acc: Accepted) {
    let span =
        info_span!("camera", app = %acc.app.name, room = %acc.key.room, key_id = %acc.key.id);
    run_inner(state, socket, acc).instrument(span).await;
}

async fn run_inner(state: SharedState, mut socket: WebSocket, acc: Accepted) {
    let Accepted {
        app,
        key,
        peer,
        limits,
    } = acc;
    // The app may only narrow the server's limits.
    let mut cfg = state.config.ws_ingest.clone();
    cfg.max_fps = cfg.max_fps.min(limits.max_fps);
    cfg.max_frame_kb = cfg.max_frame_kb.min(limits.max_frame_kb);
    let stream_id = format!("{}/{}", key.room, key.identity);
    let session_id = random_id("ses_", 8);
    let room_key = RoomKey {
        app: app.name.clone(),
        room: key.room.clone(),
    };
    let stats = Arc::new(CameraStats::default());
    let (conn, mut kick_rx) = state.cameras.register(&key.id, stats.clone());
    // Checked at the handshake too; this closes the race between two keys.
    let publisher = match state
        .hub
        .publish(&room_key, SourceKind::WsMjpeg, &key.id, conn)
    {
        Ok(p) => p,
        Err(busy) => {
            warn!(%peer, "{busy}: another camera key publishes in this room");
            let msg = ServerMessage::Error {
                code: close::FORBIDDEN.to_string(),
                message: "room_busy".into(),
            };
            let _ = socket.send(Message::Text(msg.to_json().into())).await;
            let _ = close_with(&mut socket, close::FORBIDDEN, "room_busy").await;
            state.cameras.unregister(&key.id, conn);
            return;
        }
    };
    if let Err(e) = state
        .db
        .stream_started(
            app.id,
            &stream_id,
            &key.room,
            &key.identity,
            SourceKind::WsMjpeg.as_str(),
            &session_id,
        )
        .await
    {
        tracing::error!(error = %e, "could not record stream start");
    }
    state.webhooks.stream_started(
        &app.name,
        &key.room,
        &stream_id,
        SourceKind::WsMjpeg,
        crate::webhooks::Publisher::Participant(&key.identity),
    );
    info!(%peer, "camera connected");

    let ready = ServerMessage::Ready {
        room: key.room.clone(),
        stream_id: stream_id.clone(),
        max_fps: cfg.max_fps,
        max_frame_bytes: u32::try_from(cfg.max_frame_bytes()).unwrap_or(u32::MAX),
        idle_timeout_sec: cfg.idle_timeout_secs,
    };
    let mut end = None;
    if socket
        .send(Message::Text(ready.to_json().into()))
        .await
        .is_err()
    {
        end = Some(End::Transport("could not send ready".into()));
    }

    let far = Instant::now() + Duration::from_secs(86_400 * 365);
    let mut viewers = publisher.room().watch_viewers();
    viewers.mark_changed();
    let mut asked_fps: Option<u32> = None;
    let mut idle_ask_at = far;
    let grace = Duration::from_secs(u64::from(cfg.idle_grace_secs));

    let mut ping = interval(Duration::from_secs(u64::from(cfg.ping_interval_secs)));
    ping.set_missed_tick_behavior(MissedTickBehavior::Delay);
    ping.tick().await;
    let idle_timeout = Duration::from_secs(u64::from(cfg.idle_timeout_secs));
    let mut idle_check = interval(idle_timeout.min(Duration::from_secs(5)));
    idle_check.tick().await;
    let mut shutdown = state.shutdown.clone();

    let max_frame = cfg.max_frame_bytes();
    let mut bucket = FpsBucket::new(cfg.max_fps);
    let mut last_frame = Instant::now();
    let mut unanswered_pings = 0u32;
    let mut bad_in_a_row = 0u32;
    let mut warned_bad = false;
    let mut warned_padding = false;
    let mut warned_fps = false;

    while end.is_none() {
        tokio::select! {
            msg = socket.recv() => match msg {
                None => end = Some(End::DeviceClosed),
                Some(Err(e)) => end = Some(End::Transport(e.to_string())),
                Some(Ok(Message::Binary(data))) => {
                    let now = Instant::now();
                    if data.len() > max_frame {
                        stats.too_large.fetch_add(1, Ordering::Relaxed);
                        METRICS.dropped(DropReason::TooLarge);
                        let msg = ServerMessage::Error {
                            code: "frame_too_large".into(),
                            message: format!("frame of {} bytes exceeds maxFrameBytes {max_frame}", data.len()),
                        };
                        let _ = socket.send(Message::Text(msg.to_json().into())).await;
                        end = Some(End::Closed { code: close::FRAME_TOO_LARGE, reason: "frame_too_large" });
                        continue;
                    }
                    match jpeg::check(&data, cfg.trailing_padding) {
                        Err(e) => {
                            stats.not_jpeg.fetch_add(1, Ordering::Relaxed);
                            METRICS.dropped(DropReason::NotJpeg);
                            bad_in_a_row += 1;
                            if !warned_bad {
                                warned_bad = true;
                                warn!(len = data.len(), error = %e, "dropping frame that is not one whole JPEG (further drops counted, not logged)");
                            }
                            if cfg.invalid_frames_close_after > 0 && bad_in_a_row >= cfg.invalid_frames_close_after {
                                let msg = ServerMessage::Error {
                                    code: "invalid_frames".into(),
                                    message: format!("{bad_in_a_row} frames in a row were not JPEG"),
                                };
                                let _ = socket.send(Message::Text(msg.to_json().into())).await;
                                end = Some(End::Closed { code: close::UNSUPPORTED_DATA, reason: "unsupported data" });
                            }
                        }
                        Ok(info) => {
                            bad_in_a_row = 0;
                            if info.trimmed > 0 && !warned_padding {
                                warned_padding = true;
                                warn!(trimmed = info.trimmed, policy = %cfg.trailing_padding, "camera pads frames after EOI; trimming (quirk of esp32-camera < 2.0)");
                            }
                            if bucket.take(now) {
                                last_frame = now;
                                stats.frames.fetch_add(1, Ordering::Relaxed);
                                stats.bytes.fetch_add(info.len as u64, Ordering::Relaxed);
                                METRICS.frame_in(Source::WsMjpeg, info.len);
                                publisher.room().publish(&data[..info.len], now.into_std());
                            } else {
                                stats.fps.fetch_add(1, Ordering::Relaxed);
                                METRICS.dropped(DropReason::FpsCap);
                                if !warned_fps {
                                    warned_fps = true;
                                    debug!(max_fps = cfg.max_fps, "camera above the fps cap; dropping excess frames");
                                }
                            }
                        }
                    }
                }
                Some(Ok(Message::Text(text))) => {
                    if let Some(DeviceMessage::Stats { fps, rssi, heap_free, frames }) = DeviceMessage::parse(&text) {
                        let json = serde_json::json!({
                            "fps": fps, "rssi": rssi, "heapFree": heap_free, "frames": frames,
                            "live": true,
                            "framesReceived": stats.frames(),
                            "framesDroppedFps": stats.fps.load(Ordering::Relaxed),
                            "viewers": publisher.room().viewer_count(),
                            "ts": now_rfc3339(),
                        });
                        if let Err(e) = state.db.stream_stats(app.id, &stream_id, &session_id, &json.to_string()).await {
                            tracing::error!(error = %e, "could not store camera stats");
                        }
                    } else {
                        debug!(len = text.len(), "ignoring unknown text message");
                    }
                }
                Some(Ok(Message::Pong(_))) => unanswered_pings = 0,
                Some(Ok(Message::Ping(_))) => {}
                Some(Ok(Message::Close(_))) => end = Some(End::DeviceClosed),
            },
            kick = &mut kick_rx => {
                let kick = kick.unwrap_or(Kick { code: close::GOING_AWAY, reason: "server closing" });
                if kick.code != close::REPLACED {
                    let msg = ServerMessage::Error { code: kick.reason.replace(' ', "_"), message: kick.reason.into() };
                    let _ = socket.send(Message::Text(msg.to_json().into())).await;
                }
                end = Some(End::Closed { code: kick.code, reason: kick.reason });
            }
            _ = ping.tick() => {
                if unanswered_pings >= 2 {
                    end = Some(End::Transport("two pings unanswered".into()));
                } else {
                    unanswered_pings += 1;
                    if socket.send(Message::Ping(Default::default())).await.is_err() {
                        end = Some(End::Transport("ping failed".into()));
                    }
                }
            }
            _ = idle_check.tick() => {
                if last_frame.elapsed() >= idle_timeout {
                    let msg = ServerMessage::Error {
                        code: "idle_timeout".into(),
                        message: format!("no frame for {} s", cfg.idle_timeout_secs),
                    };
                    let _ = socket.send(Message::Text(msg.to_json().into())).await;
                    end = Some(End::Closed { code: close::IDLE_TIMEOUT, reason: "idle_timeout" });
                }
            }
            changed = viewers.changed() => {
                if changed.is_err() { continue; }
                let n = *viewers.borrow_and_update();
                if n > 0 {
                    idle_ask_at = far;
                    if cfg.idle_fps > 0 && asked_fps != Some(cfg.max_fps) {
                        asked_fps = Some(cfg.max_fps);
                        send_control(&mut socket, cfg.max_fps, "viewers").await;
                    }
                } else if cfg.idle_fps > 0 && asked_fps != Some(cfg.idle_fps) {
                    idle_ask_at = Instant::now() + grace;
                }
            }
            _ = sleep_until(idle_ask_at), if idle_ask_at < far => {
                idle_ask_at = far;
                if publisher.room().viewer_count() == 0 {
                    asked_fps = Some(cfg.idle_fps);
                    send_control(&mut socket, cfg.idle_fps.min(cfg.max_fps), "no_viewers").await;
                }
            }
            _ = shutdown.changed() => {
                end = Some(End::Closed { code: close::GOING_AWAY, reason: "server shutting down" });
            }
        }
    }

    let end = end.unwrap_or(End::DeviceClosed);
    match &end {
        End::Closed { code, reason } => {
            let _ = close_with(&mut socket, *code, reason).await;
        }
        // tungstenite queued the reply to the device's close: flush it so the
        // closing handshake completes instead of ending in a reset.
        End::DeviceClosed => {
            let _ = futures_util::SinkExt::close(&mut socket).await;
        }
        End::Transport(_) => {}
    }
    drop(publisher);
    state.cameras.unregister(&key.id, conn);
    if let Err(e) = state.db.stream_ended(app.id, &stream_id, &session_id).await {
        tracing::error!(error = %e, "could not record stream end");
    }
    state.webhooks.stream_ended(
        &app.name,
        &key.room,
        &stream_id,
        SourceKind::WsMjpeg,
        crate::webhooks::Publisher::Participant(&key.identity),
        None,
    );
    let drops = stats.drops();
    let why = match &end {
        End::DeviceClosed => "device closed".to_owned(),
        End::Transport(e) => format!("transport: {e}"),
        End::Closed { code, reason } => format!("closed {code} {reason}"),
    };
    info!(frames = stats.frames(), bytes = stats.bytes.load(Ordering::Relaxed),
        dropped_too_large = drops.too_large, dropped_not_jpeg = drops.not_jpeg, dropped_fps = drops.fps,
        %why, "camera disconnected");
}

async fn send_control(socket: &mut WebSocket, fps: u32, reason: &str) {
    let msg = ServerMessage::Control {
        fps: Some(fps),
        quality: None,
        frame_size: None,
        reason: Some(reason.into()),
    };
    debug!(fps, reason, "asking camera for a new rate");
    let _ = socket.send(Message::Text(msg.to_json().into())).await;
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test(start_paused = true)]
    async fn fps_bucket_holds_the_long_run_rate() {
        let mut b = FpsBucket::new(10);
        let start = Instant::now();
        let mut accepted = 0;
        // 30 fps offered for 10 s.
        for i in 0..300u64 {
            if b.take(start + Duration::from_millis(i * 1000 / 30)) {
                accepted += 1;
            }
        }
        assert!((100..=106).contains(&accepted), "accepted {accepted}");
    }

    #[test]
    fn forwarded_header_only_when_trusted() {
        let mut h = HeaderMap::new();
        h.insert(
            "x-forwarded-for",
            "203.0.113.9, 10.0.0.1".parse().expect("header"),
        );
        let peer: SocketAddr = "127.0.0.1:5000".parse().expect("addr");
        assert_eq!(client_ip(&h, peer, false), peer.ip());
        assert_eq!(
            client_ip(&h, peer, true),
            "203.0.113.9".parse::<IpAddr>().expect("ip")
        );
    }
}
