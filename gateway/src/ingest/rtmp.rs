//! RTMP ingest: encoders (OBS, ffmpeg, hardware encoders, NVRs) push
//! `rtmp://host:1935/{app}/{streamKey}`.
//!
//! rml_rtmp does the handshake and the chunk/message protocol (sans-IO);
//! this module owns the socket. A publish is accepted when `{app}` exists
//! and the stream key matches one of its RTMP ingresses (keys are stored
//! hashed); the ingress then takes its room's publisher seat like any
//! camera. H.264 goes to the SFU without transcoding (Annex B → RFC 6184
//! packets, once for every viewer).
//!
//! Apps with the `rtmpPassword` feature also want the ingress's stream
//! password: appended to the key (`{streamKey}?password=…`) or to the app
//! (`rtmp://host/{app}?password=…`), or validated through the API
//! (`POST …/ingress/{id}/validate`) before the push or within
//! [`PASSWORD_WINDOW`] after it. A push waiting for its validation is
//! accepted at the RTMP level but takes no seat and forwards nothing (its
//! AVC/AAC configuration is kept for when it starts); a wrong password or
//! an expired window drops it with reason `unauthorized_rtmp_password`.
//!
//! Every refusal is specific and logged once per connection: unknown app,
//! wrong key, wrong or missing stream password, room busy, unsupported
//! codec, a handshake or protocol error, a stalled handshake.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicU32, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use camgate_protocols::flv::{self, AvcConfig, FlvError, VideoTag};
use camgate_sfu::SourceKind;
use rml_rtmp::handshake::{Handshake, HandshakeProcessResult, PeerType};
use rml_rtmp::sessions::{
    ServerSession, ServerSessionConfig, ServerSessionEvent, ServerSessionResult,
};
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use tokio::net::TcpListener;
use tokio::sync::Notify;
use tracing::{debug, info, warn};

use super::source::H264Source;
use crate::api::ingress::PASSWORD_WINDOW;
use crate::auth::hash_secret;
use crate::hub::RoomKey;
use crate::server::SharedState;
use crate::store::IngressRow;

/// A connection must finish the RTMP handshake and ask to publish within
/// this time (slow or silent clients are dropped).
const HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(10);
/// A publisher sending nothing for this long is dropped.
const IDLE_TIMEOUT: Duration = Duration::from_secs(30);

/// Live RTMP publishers by ingress id: their counters and a way to stop them.
#[derive(Debug, Default)]
pub struct RtmpSessions {
    live: Mutex<HashMap<String, Arc<LiveIngress>>>,
    /// Pushes waiting for their stream password to be validated.
    pending: Mutex<HashMap<String, Arc<Notify>>>,
    /// Validations made before the push, by ingress id.
    validated: Mutex<HashMap<String, Instant>>,
}

/// What the API shows of a live RTMP publisher.
#[derive(Debug)]
pub struct LiveIngress {
    /// Media bytes received.
    pub bytes: AtomicU64,
    /// Video size from the stream's metadata (0 = unknown).
    pub width: AtomicU32,
    /// Video height from the stream's metadata (0 = unknown).
    pub height: AtomicU32,
    started: Mutex<Option<Instant>>,
    stop: Notify,
    /// Set once this publisher has cleaned up (seat, SFU source, row).
    done: tokio::sync::watch::Sender<bool>,
}

impl Default for LiveIngress {
    fn default() -> Self {
        LiveIngress {
            bytes: AtomicU64::new(0),
            width: AtomicU32::new(0),
            height: AtomicU32::new(0),
            started: Mutex::new(None),
            stop: Notify::new(),
            done: tokio::sync::watch::channel(false).0,
        }
    }
}

impl LiveIngress {
    /// Average media bitrate since publishing started, bits per second.
    pub fn bitrate(&self) -> u64 {
        let started = *self.started.lock().unwrap_or_else(|e| e.into_inner());
        let secs = started.map_or(0.0, |s| s.elapsed().as_secs_f64());
        if secs < 0.5 {
            return 0;
        }
        (self.bytes.load(Ordering::Relaxed) as f64 * 8.0 / secs) as u64
    }
}

impl RtmpSessions {
    /// The live publisher of an ingress.
    pub fn get(&self, ingress_id: &str) -> Option<Arc<LiveIngress>> {
        self.lock().get(ingress_id).cloned()
    }

    /// RTMP pushes publishing now.
    pub fn count(&self) -> usize {
        self.lock().len()
    }

    /// Drops the live publisher of an ingress at once; false when none.
    pub fn kick(&self, ingress_id: &str) -> bool {
        match self.lock().get(ingress_id) {
            Some(l) => {
                l.stop.notify_one();
                true
            }
            None => false,
        }
    }

    /// The stream password of an ingress was validated: a push waiting
    /// for it starts (true), or the next push within [`PASSWORD_WINDOW`]
    /// needs no password (false).
    pub fn authorize(&self, ingress_id: &str) -> bool {
        let pending = self
            .pending
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .get(ingress_id)
            .cloned();
        match pending {
            Some(go) => {
                go.notify_one();
                true
            }
            None => {
                let mut validated = self.validated.lock().unwrap_or_else(|e| e.into_inner());
                validated.retain(|_, t| t.elapsed() < PASSWORD_WINDOW);
                validated.insert(ingress_id.to_owned(), Instant::now());
                false
            }
        }
    }

    /// A push of this ingress waits for its password.
    pub fn is_pending(&self, ingress_id: &str) -> bool {
        self.pending
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .contains_key(ingress_id)
    }

    /// Consumes a recent validation of this ingress.
    fn take_validated(&self, ingress_id: &str) -> bool {
        self.validated
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .remove(ingress_id)
            .is_some_and(|t| t.elapsed() < PASSWORD_WINDOW)
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<String, Arc<LiveIngress>>> {
        self.live.lock().unwrap_or_else(|e| e.into_inner())
    }
}

/// Accepts RTMP connections until shutdown.
pub async fn serve(
    state: SharedState,
    listener: TcpListener,
    tls: Option<Arc<crate::listen::Tls>>,
) {
    let mut shutdown = state.shutdown.clone();
    loop {
        tokio::select! {
            accepted = listener.accept() => match accepted {
                Ok((socket, peer)) => {
                    // Over a cap: closed at once, logged once.
                    let permit = match state.rtmp_conns.try_acquire(peer.ip()) {
                        Ok(p) => p,
                        Err(over) => {
                            info!(%peer, code = over.code(), "rtmp connection refused");
                            continue;
                        }
                    };
                    let _ = socket.set_nodelay(true);
                    let state = state.clone();
                    let tls = tls.clone();
                    tokio::spawn(async move {
                        let _permit = permit;
                        let mut conn = Connection::new(state, peer);
                        let result = match tls {
                            None => conn.run(socket).await,
                            Some(tls) => {
                                let accept = tls.rtmps_acceptor().accept(socket);
                                match tokio::time::timeout(HANDSHAKE_TIMEOUT, accept).await {
                                    Ok(Ok(s)) => conn.run(s).await,
                                    Ok(Err(e)) => Err(Refusal::Handshake(format!("tls: {e}"))),
                                    Err(_) => Err(Refusal::Timeout("in the TLS handshake")),
                                }
                            }
                        };
                        if let Err(reason) = result {
                            conn.log_refusal(&reason);
                        }
                        conn.finish().await;
                    });
                }
                Err(e) => {
                    debug!(error = %e, "rtmp accept failed");
                    tokio::time::sleep(Duration::from_millis(50)).await;
                }
            },
            _ = shutdown.changed() => break,
        }
    }
}

/// Why a connection ended early, in words for the log.
#[derive(Debug)]
enum Refusal {
    Handshake(String),
    Protocol(String),
    Timeout(&'static str),
    UnknownApp(String),
    BadKey,
    Unauthorized(&'static str),
    RoomBusy(String),
    Media(FlvError),
    Io,
    Kicked,
}

impl std::fmt::Display for Refusal {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Refusal::Handshake(e) => write!(f, "handshake failed: {e}"),
            Refusal::Protocol(e) => write!(f, "protocol error: {e}"),
            Refusal::Timeout(what) => write!(f, "timed out {what}"),
            Refusal::UnknownApp(app) => write!(f, "unknown app {app:?}"),
            Refusal::BadKey => write!(f, "unknown stream key"),
            Refusal::Unauthorized(why) => write!(f, "unauthorized_rtmp_password: {why}"),
            Refusal::RoomBusy(room) => write!(f, "room {room} already has a publisher"),
            Refusal::Media(e) => write!(f, "{e}"),
            Refusal::Io => write!(f, "connection lost"),
            Refusal::Kicked => write!(
                f,
                "stopped: ingress deleted, or replaced by a new connection with the same key"
            ),
        }
    }
}

/// A publishing ingress: its seat, SFU track and counters.
struct Publishing {
    ingress: IngressRow,
    key: RoomKey,
    session_id: String,
    live: Arc<LiveIngress>,
    avc: Option<AvcConfig>,
    app_id: i64,
    source: H264Source,
}

/// A push accepted at the RTMP level that waits for its stream password.
struct Pending {
    app: crate::store::App,
    ingress: IngressRow,
    go: Arc<Notify>,
    deadline: Instant,
    /// The last AVC and AAC sequence headers, replayed when it starts.
    video_config: Option<Vec<u8>>,
    audio_config: Option<Vec<u8>>,
    width: u32,
    height: u32,
}

struct Connection {
    state: SharedState,
    peer: SocketAddr,
    session: Option<ServerSession>,
    app: Option<crate::store::App>,
    /// `password=` from the connect URL's query, if any.
    connect_password: Option<String>,
    pending: Option<Pending>,
    publishing: Option<Publishing>,
    out: Vec<u8>,
}

impl Connection {
    fn new(state: SharedState, peer: SocketAddr) -> Connection {
        Connection {
            state,
            peer,
            session: None,
            app: None,
            connect_password: None,
            pending: None,
            publishing: None,
            out: Vec::new(),
        }
    }

    fn log_refusal(&self, reason: &Refusal) {
        match reason {
            Refusal::Io | Refusal::Kicked => {
                info!(peer = %self.peer, %reason, "rtmp connection closed")
            }
            _ => warn!(peer = %self.peer, %reason, "rtmp connection refused"),
        }
    }

    async fn run<S: AsyncRead + AsyncWrite + Unpin>(
        &mut self,
        mut socket: S,
    ) -> Result<(), Refusal> {
        let mut buf = vec![0u8; 64 * 1024];
        // Handshake, bounded in time.
        let rest = tokio::time::timeout(HANDSHAKE_TIMEOUT, handshake(&mut socket, &mut buf))
            .await
            .map_err(|_| Refusal::Timeout("in the handshake"))??;
        let (session, initial) = ServerSession::new(ServerSessionConfig::new())
            .map_err(|e| Refusal::Protocol(e.to_string()))?;
        self.session = Some(session);
        self.apply(initial).await?;
        self.input(&rest).await?;
        self.flush(&mut socket).await?;
        let publish_deadline = Instant::now() + HANDSHAKE_TIMEOUT;
        loop {
            let live = self.publishing.as_ref().map(|p| p.live.clone());
            let kicked = async move {
                match live {
                    Some(l) => l.stop.notified().await,
                    None => std::future::pending().await,
                }
            };
            let go = self.pending.as_ref().map(|p| p.go.clone());
            let validated = async move {
                match go {
                    Some(go) => go.notified().await,
                    None => std::future::pending().await,
                }
            };
            let timeout = if let Some(p) = &self.pending {
                p.deadline.saturating_duration_since(Instant::now())
            } else if self.publishing.is_some() {
                IDLE_TIMEOUT
            } else {
                publish_deadline.saturating_duration_since(Instant::now())
            };
            let n = tokio::select! {
                r = tokio::time::timeout(timeout, socket.read(&mut buf)) => match r {
                    Ok(Ok(0)) | Ok(Err(_)) => return Err(Refusal::Io),
                    Ok(Ok(n)) => n,
                    Err(_) if self.pending.is_some() => {
                        if let Some(p) = &self.pending {
                            self.password_refused(&p.app.name, &p.ingress);
                        }
                        return Err(Refusal::Unauthorized("the stream password was not validated in time"));
                    }
                    Err(_) if self.publishing.is_some() => return Err(Refusal::Timeout("waiting for media")),
                    Err(_) => return Err(Refusal::Timeout("before publishing")),
                },
                _ = kicked => return Err(Refusal::Kicked),
                _ = validated => {
                    self.start_pending().await?;
                    continue;
                }
            };
            let r = self.input(&buf[..n]).await;
            // Send what the session answered, even a refusal, before closing.
            let flushed = self.flush(&mut socket).await;
            r?;
            flushed?;
            if self.publishing.is_none() && self.session.is_none() {
                return Ok(());
            }
        }
    }

    async fn flush<S: AsyncWrite + Unpin>(&mut self, socket: &mut S) -> Result<(), Refusal> {
        if !self.out.is_empty() {
            socket.write_all(&self.out).await.map_err(|_| Refusal::Io)?;
            self.out.clear();
        }
        Ok(())
    }

    async fn input(&mut self, data: &[u8]) -> Result<(), Refusal> {
        if data.is_empty() {
            return Ok(());
        }
        let Some(session) = self.session.as_mut() else {
            return Ok(());
        };
        // rml_rtmp's chunk reader panics on some malformed chunk streams
        // (a message header changing mid-message underflows a length): such
        // a connection is refused like any other protocol error.
        let results = crate::guard::catch(|| session.handle_input(data))
            .ok_or_else(|| Refusal::Protocol("malformed chunk stream".into()))?
            .map_err(|e| Refusal::Protocol(e.to_string()))?;
        self.apply(results).await
    }

    async fn apply(&mut self, results: Vec<ServerSessionResult>) -> Result<(), Refusal> {
        let mut queue = std::collections::VecDeque::from(results);
        while let Some(r) = queue.pop_front() {
            match r {
                ServerSessionResult::OutboundResponse(p) => self.out.extend_from_slice(&p.bytes),
                ServerSessionResult::UnhandleableMessageReceived(_) => {}
                ServerSessionResult::RaisedEvent(e) => {
                    let more = self.event(e).await?;
                    queue.extend(more);
                }
            }
        }
        Ok(())
    }

    fn session(&mut self) -> Result<&mut ServerSession, Refusal> {
        self.session
            .as_mut()
            .ok_or_else(|| Refusal::Protocol("no session".into()))
    }

    async fn event(
        &mut self,
        event: ServerSessionEvent,
    ) -> Result<Vec<ServerSessionResult>, Refusal> {
        match event {
            ServerSessionEvent::ConnectionRequested {
                request_id,
                app_name,
            } => {
                let (name, query) = app_name.split_once('?').unwrap_or((&app_name, ""));
                self.connect_password = query_param(query, "password");
                let name = name.to_owned();
                let app = crate::api::native::load_app(&self.state, &name).await.ok();
                let Some(app) = app else {
                    let r = self
                        .session()?
                        .reject_request(request_id, "NetConnection.Connect.Rejected", "unknown app")
                        .map_err(|e| Refusal::Protocol(e.to_string()))?;
                    self.apply_refusal(r);
                    return Err(Refusal::UnknownApp(name));
                };
                self.app = Some(app);
                self.session()?
                    .accept_request(request_id)
                    .map_err(|e| Refusal::Protocol(e.to_string()))
            }
            ServerSessionEvent::PublishStreamRequested {
                request_id,
                stream_key,
                ..
            } => self.publish(request_id, &stream_key).await,
            ServerSessionEvent::StreamMetadataChanged { metadata, .. } => {
                if let Some(p) = self.pending.as_mut() {
                    p.width = metadata.video_width.unwrap_or(p.width);
                    p.height = metadata.video_height.unwrap_or(p.height);
                }
                if let Some(p) = &self.publishing {
                    if let Some(w) = metadata.video_width {
                        p.live.width.store(w, Ordering::Relaxed);
                    }
                    if let Some(h) = metadata.video_height {
                        p.live.height.store(h, Ordering::Relaxed);
                    }
                }
                Ok(Vec::new())
            }
            ServerSessionEvent::VideoDataReceived {
                data, timestamp, ..
            } => {
                if let Some(p) = self.pending.as_mut() {
                    if matches!(flv::parse_video(&data, None), Ok(VideoTag::Config(_))) {
                        p.video_config = Some(data.to_vec());
                    }
                    return Ok(Vec::new());
                }
                self.video(&data, timestamp.value).await?;
                Ok(Vec::new())
            }
            ServerSessionEvent::AudioDataReceived {
                data, timestamp, ..
            } => {
                if let Some(p) = self.pending.as_mut() {
                    if matches!(flv::parse_audio(&data), Ok(flv::AudioTag::Config(_))) {
                        p.audio_config = Some(data.to_vec());
                    }
                    return Ok(Vec::new());
                }
                self.audio(&data, timestamp.value).await?;
                Ok(Vec::new())
            }
            ServerSessionEvent::PublishStreamFinished { .. } => {
                self.stop_publishing().await;
                self.session = None;
                Ok(Vec::new())
            }
            ServerSessionEvent::PlayStreamRequested { request_id, .. } => {
                let r = self
                    .session()?
                    .reject_request(
                        request_id,
                        "NetStream.Play.Failed",
                        "camgate does not serve RTMP playback; use HLS or WebRTC",
                    )
                    .map_err(|e| Refusal::Protocol(e.to_string()))?;
                Ok(r)
            }
            _ => Ok(Vec::new()),
        }
    }

    /// Queues a refusal's outbound packets (they are flushed before closing).
    fn apply_refusal(&mut self, results: Vec<ServerSessionResult>) {
        for r in results {
            if let ServerSessionResult::OutboundResponse(p) = r {
                self.out.extend_from_slice(&p.bytes);
            }
        }
    }

    async fn publish(
        &mut self,
        request_id: u32,
        stream_key: &str,
    ) -> Result<Vec<ServerSessionResult>, Refusal> {
        let Some(app) = self.app.clone() else {
            return Err(Refusal::Protocol("publish before connect".into()));
        };
        if self.publishing.is_some() || self.pending.is_some() {
            return Err(Refusal::Protocol("second publish on one connection".into()));
        }
        // Encoders may append `?query` to the key; the key is what precedes it.
        let (key_only, query) = stream_key.split_once('?').unwrap_or((stream_key, ""));
        let ingress = if key_only.is_empty() {
            None
        } else {
            self.state
                .db
                .ingress_by_key(app.id, &hash_secret(key_only))
                .await
                .ok()
                .flatten()
                .filter(|i| i.input_type == "rtmp")
        };
        let Some(ingress) = ingress else {
            let r = self
                .session()?
                .reject_request(
                    request_id,
                    "NetStream.Publish.BadName",
                    "unknown stream key",
                )
                .map_err(|e| Refusal::Protocol(e.to_string()))?;
            self.apply_refusal(r);
            return Err(Refusal::BadKey);
        };
        if app.feature("rtmpPassword") {
            let given = query_param(query, "password").or_else(|| self.connect_password.clone());
            let refuse = |why| (why, "unauthorized: stream password");
            let refusal = match given {
                _ if ingress.password_hash.is_none() => Some(refuse(
                    "the ingress has no stream password (created before rtmpPassword was on); create a new one",
                )),
                Some(pw) if crate::api::ingress::password_matches(&ingress, &pw) => None,
                Some(_) => Some(refuse("wrong stream password")),
                None if self.state.rtmp.take_validated(&ingress.id) => None,
                None => {
                    // Accepted at the RTMP level; starts once validated.
                    let go = Arc::new(Notify::new());
                    self.state
                        .rtmp
                        .pending
                        .lock()
                        .unwrap_or_else(|e| e.into_inner())
                        .insert(ingress.id.clone(), go.clone());
                    info!(peer = %self.peer, app = %app.name, ingress = %ingress.id, "rtmp push waits for its stream password");
                    self.pending = Some(Pending {
                        app,
                        ingress,
                        go,
                        deadline: Instant::now() + PASSWORD_WINDOW,
                        video_config: None,
                        audio_config: None,
                        width: 0,
                        height: 0,
                    });
                    return self
                        .session()?
                        .accept_request(request_id)
                        .map_err(|e| Refusal::Protocol(e.to_string()));
                }
            };
            if let Some((why, text)) = refusal {
                self.password_refused(&app.name, &ingress);
                let r = self
                    .session()?
                    .reject_request(request_id, "NetStream.Publish.BadName", text)
                    .map_err(|e| Refusal::Protocol(e.to_string()))?;
                self.apply_refusal(r);
                return Err(Refusal::Unauthorized(why));
            }
        }
        match self.start(&app, ingress).await {
            Ok(()) => self
                .session()?
                .accept_request(request_id)
                .map_err(|e| Refusal::Protocol(e.to_string())),
            Err(e) => {
                let r = self
                    .session()?
                    .reject_request(
                        request_id,
                        "NetStream.Publish.BadName",
                        "stream already publishing",
                    )
                    .map_err(|e| Refusal::Protocol(e.to_string()))?;
                self.apply_refusal(r);
                Err(e)
            }
        }
    }

    /// A push killed by the password check: `stream_ended` with reason
    /// `unauthorized_rtmp_password` and the ingress id as `streamId`
    /// (reference §4.5).
    fn password_refused(&self, app: &str, ingress: &IngressRow) {
        self.state.webhooks.stream_ended(
            app,
            &ingress.room,
            &ingress.id,
            SourceKind::Rtmp,
            crate::webhooks::Publisher::Ingress(&ingress.id),
            Some("unauthorized_rtmp_password"),
        );
    }

    /// A waiting push was validated: it starts, with the configuration
    /// and metadata it sent while waiting.
    async fn start_pending(&mut self) -> Result<(), Refusal> {
        let Some(p) = self.pending.take() else {
            return Ok(());
        };
        self.unregister_pending(&p);
        info!(peer = %self.peer, ingress = %p.ingress.id, "rtmp stream password validated");
        self.start(&p.app, p.ingress).await?;
        if let Some(live) = self.publishing.as_ref().map(|x| &x.live) {
            live.width.store(p.width, Ordering::Relaxed);
            live.height.store(p.height, Ordering::Relaxed);
        }
        if let Some(v) = p.video_config {
            self.video(&v, 0).await?;
        }
        if let Some(a) = p.audio_config {
            self.audio(&a, 0).await?;
        }
        Ok(())
    }

    fn unregister_pending(&self, p: &Pending) {
        let mut pending = self
            .state
            .rtmp
            .pending
            .lock()
            .unwrap_or_else(|e| e.into_inner());
        if pending
            .get(&p.ingress.id)
            .is_some_and(|g| Arc::ptr_eq(g, &p.go))
        {
            pending.remove(&p.ingress.id);
        }
    }

    /// Takes the room's publisher seat for an authorized push (replacing a
    /// live connection of the same ingress).
    async fn start(&mut self, app: &crate::store::App, ingress: IngressRow) -> Result<(), Refusal> {
        let key = RoomKey {
            app: app.name.clone(),
            room: ingress.room.clone(),
        };
        // The same key again: the new connection takes over (an encoder
        // reconnecting after a network drop must not wait for its dead
        // connection to time out). The old one is closed and cleaned up
        // first, so the two never feed the room together.
        if let Some(old) = self.state.rtmp.get(&ingress.id) {
            let mut done = old.done.subscribe();
            old.stop.notify_one();
            let _ = tokio::time::timeout(Duration::from_secs(5), done.wait_for(|d| *d)).await;
            info!(peer = %self.peer, ingress = %ingress.id, "rtmp publisher replaced by a new connection with the same key");
        }
        let session_id = crate::auth::random_id("", 8);
        let source = H264Source::open(&self.state, &key, SourceKind::Rtmp, &ingress.id)
            .map_err(|_| Refusal::RoomBusy(key.room.clone()))?;
        let live = Arc::new(LiveIngress::default());
        *live.started.lock().unwrap_or_else(|e| e.into_inner()) = Some(Instant::now());
        self.state
            .rtmp
            .lock()
            .insert(ingress.id.clone(), live.clone());
        let stream_id = format!("{}/{}", key.room, ingress.participant_identity);
        if let Err(e) = self
            .state
            .db
            .stream_started(
                app.id,
                &stream_id,
                &key.room,
                &ingress.participant_identity,
                SourceKind::Rtmp.as_str(),
                &session_id,
            )
            .await
        {
            warn!(error = %e, "could not record stream start");
        }
        self.state.webhooks.stream_started(
            &app.name,
            &key.room,
            &stream_id,
            SourceKind::Rtmp,
            crate::webhooks::Publisher::Ingress(&ingress.id),
        );
        info!(peer = %self.peer, app = %app.name, room = %key.room, ingress = %ingress.id, "rtmp publishing");
        self.publishing = Some(Publishing {
            key,
            session_id,
            live,
            avc: None,
            app_id: app.id,
            ingress,
            source,
        });
        Ok(())
    }

    /// One FLV audio tag: AAC goes to HLS as it is, and to WebRTC viewers
    /// as Opus.
    async fn audio(&mut self, data: &[u8], timestamp_ms: u32) -> Result<(), Refusal> {
        let Some(p) = self.publishing.as_mut() else {
            return Ok(());
        };
        p.live.bytes.fetch_add(data.len() as u64, Ordering::Relaxed);
        match flv::parse_audio(data) {
            Ok(flv::AudioTag::Config(c)) => p.source.aac_config(&c).await,
            Ok(flv::AudioTag::Frame(f)) => p.source.aac(i64::from(timestamp_ms), &f).await,
            Err(e @ FlvError::UnsupportedCodec(_)) => return Err(Refusal::Media(e)),
            Err(e) => debug!(peer = %self.peer, error = %e, "bad audio tag dropped"),
        }
        Ok(())
    }

    async fn video(&mut self, data: &[u8], timestamp_ms: u32) -> Result<(), Refusal> {
        let Some(p) = self.publishing.as_mut() else {
            return Ok(());
        };
        p.live.bytes.fetch_add(data.len() as u64, Ordering::Relaxed);
        let tag = match flv::parse_video(data, p.avc.as_ref()) {
            Ok(t) => t,
            Err(e @ FlvError::UnsupportedCodec(_)) => return Err(Refusal::Media(e)),
            Err(e) => {
                // One bad tag is dropped; the stream goes on.
                debug!(peer = %self.peer, error = %e, "bad video tag dropped");
                return Ok(());
            }
        };
        match tag {
            VideoTag::Config(c) => {
                let size = (
                    p.live.width.load(Ordering::Relaxed),
                    p.live.height.load(Ordering::Relaxed),
                );
                p.source.video_config(&c.sps[0], &c.pps[0], size).await;
                p.avc = Some(c);
            }
            VideoTag::Frame {
                composition_ms,
                annex_b,
                ..
            } => {
                crate::metrics::METRICS.frame_in(crate::metrics::Source::Rtmp, annex_b.len());
                p.source
                    .video(i64::from(timestamp_ms), composition_ms, &annex_b)
                    .await;
            }
            VideoTag::Skip => {}
        }
        Ok(())
    }

    async fn stop_publishing(&mut self) {
        let Some(p) = self.publishing.take() else {
            return;
        };
        p.source.close().await;
        {
            let mut live = self.state.rtmp.lock();
            if live
                .get(&p.ingress.id)
                .is_some_and(|l| Arc::ptr_eq(l, &p.live))
            {
                live.remove(&p.ingress.id);
            }
        }
        let stream_id = format!("{}/{}", p.key.room, p.ingress.participant_identity);
        if let Err(e) = self
            .state
            .db
            .stream_ended(p.app_id, &stream_id, &p.session_id)
            .await
        {
            warn!(error = %e, "could not record stream end");
        }
        self.state.webhooks.stream_ended(
            &p.key.app,
            &p.key.room,
            &stream_id,
            SourceKind::Rtmp,
            crate::webhooks::Publisher::Ingress(&p.ingress.id),
            None,
        );
        info!(peer = %self.peer, room = %p.key.room, ingress = %p.ingress.id, "rtmp publishing ended");
        p.live.done.send_replace(true);
    }

    async fn finish(&mut self) {
        if let Some(p) = self.pending.take() {
            self.unregister_pending(&p);
        }
        self.stop_publishing().await;
    }
}

/// The value of `name` in a URL query (`a=1&password=x`), decoded.
fn query_param(query: &str, name: &str) -> Option<String> {
    url::form_urlencoded::parse(query.as_bytes())
        .find(|(k, _)| k == name)
        .map(|(_, v)| v.into_owned())
}

/// Runs the server side of the RTMP handshake; returns bytes that followed
/// it.
async fn handshake<S: AsyncRead + AsyncWrite + Unpin>(
    socket: &mut S,
    buf: &mut [u8],
) -> Result<Vec<u8>, Refusal> {
    let mut hs = Handshake::new(PeerType::Server);
    loop {
        let n = socket.read(buf).await.map_err(|_| Refusal::Io)?;
        if n == 0 {
            return Err(Refusal::Io);
        }
        match hs
            .process_bytes(&buf[..n])
            .map_err(|e| Refusal::Handshake(format!("{e:?}")))?
        {
            HandshakeProcessResult::InProgress { response_bytes } => {
                socket
                    .write_all(&response_bytes)
                    .await
                    .map_err(|_| Refusal::Io)?;
            }
            HandshakeProcessResult::Completed {
                response_bytes,
                remaining_bytes,
            } => {
                socket
                    .write_all(&response_bytes)
                    .await
                    .map_err(|_| Refusal::Io)?;
                return Ok(remaining_bytes);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn query_params_are_found_and_decoded() {
        assert_eq!(
            query_param("password=abc", "password").as_deref(),
            Some("abc")
        );
        assert_eq!(
            query_param("x=1&password=a%2Fb+c", "password").as_deref(),
            Some("a/b c")
        );
        assert_eq!(query_param("x=1", "password"), None);
        assert_eq!(query_param("", "password"), None);
        assert_eq!(
            query_param("password=100%", "password").as_deref(),
            Some("100%")
        );
    }
}
