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
//! Every refusal is specific and logged once per connection: unknown app,
//! wrong key, room busy, unsupported codec, a handshake or protocol error,
//! a stalled handshake.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicU32, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use camgate_protocols::flv::{self, AvcConfig, FlvError, VideoTag};
use camgate_protocols::h264::{Packetizer, access_unit_is_keyframe};
use camgate_sfu::SourceKind;
use camgate_sfu::core::{SourceCodec, SourcePacket};
use rml_rtmp::handshake::{Handshake, HandshakeProcessResult, PeerType};
use rml_rtmp::sessions::{
    ServerSession, ServerSessionConfig, ServerSessionEvent, ServerSessionResult,
};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::Notify;
use tracing::{debug, info, warn};

use crate::auth::hash_secret;
use crate::hub::RoomKey;
use crate::server::SharedState;
use crate::store::IngressRow;
use crate::transcode::jpeg_h264::RTP_PAYLOAD_MTU;
use crate::webrtc::sfu_room;

/// A connection must finish the RTMP handshake and ask to publish within
/// this time (slow or silent clients are dropped).
const HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(10);
/// A publisher sending nothing for this long is dropped.
const IDLE_TIMEOUT: Duration = Duration::from_secs(30);

/// Live RTMP publishers by ingress id: their counters and a way to stop them.
#[derive(Debug, Default)]
pub struct RtmpSessions {
    live: Mutex<HashMap<String, Arc<LiveIngress>>>,
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

    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<String, Arc<LiveIngress>>> {
        self.live.lock().unwrap_or_else(|e| e.into_inner())
    }
}

/// Accepts RTMP connections until shutdown.
pub async fn serve(state: SharedState, listener: TcpListener) {
    let mut shutdown = state.shutdown.clone();
    loop {
        tokio::select! {
            accepted = listener.accept() => match accepted {
                Ok((socket, peer)) => {
                    let _ = socket.set_nodelay(true);
                    let state = state.clone();
                    tokio::spawn(async move {
                        let mut conn = Connection::new(state, peer);
                        if let Err(reason) = conn.run(socket).await {
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
    sfu_room: String,
    session_id: String,
    live: Arc<LiveIngress>,
    _seat: crate::hub::PublisherGuard,
    avc: Option<AvcConfig>,
    attached: Option<u32>,
    packetizer: Packetizer,
    next_seq: u64,
    app_id: i64,
    hls: Arc<crate::hls::Stream>,
    /// The room's WebRTC state: packets are only made while someone
    /// subscribes (a joining viewer waits for the next keyframe anyway).
    room_media: Arc<crate::webrtc::RoomMedia>,
    /// AAC → Opus for WebRTC viewers, once the AAC config is known.
    opus: Option<crate::transcode::aac_opus::AacToOpus>,
    audio_attached: bool,
}

struct Connection {
    state: SharedState,
    peer: SocketAddr,
    session: Option<ServerSession>,
    app: Option<crate::store::App>,
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

    async fn run(&mut self, mut socket: TcpStream) -> Result<(), Refusal> {
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
            let timeout = if self.publishing.is_some() {
                IDLE_TIMEOUT
            } else {
                publish_deadline.saturating_duration_since(Instant::now())
            };
            let n = tokio::select! {
                r = tokio::time::timeout(timeout, socket.read(&mut buf)) => match r {
                    Ok(Ok(0)) | Ok(Err(_)) => return Err(Refusal::Io),
                    Ok(Ok(n)) => n,
                    Err(_) if self.publishing.is_some() => return Err(Refusal::Timeout("waiting for media")),
                    Err(_) => return Err(Refusal::Timeout("before publishing")),
                },
                _ = kicked => return Err(Refusal::Kicked),
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

    async fn flush(&mut self, socket: &mut TcpStream) -> Result<(), Refusal> {
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
        let mut media: Vec<SourcePacket> = Vec::new();
        while let Some(r) = queue.pop_front() {
            match r {
                ServerSessionResult::OutboundResponse(p) => self.out.extend_from_slice(&p.bytes),
                ServerSessionResult::UnhandleableMessageReceived(_) => {}
                ServerSessionResult::RaisedEvent(e) => {
                    let more = self.event(e, &mut media).await?;
                    queue.extend(more);
                }
            }
        }
        if !media.is_empty()
            && let Some(room) = self.publishing.as_ref().map(|p| p.sfu_room.clone())
        {
            let _ = self.state.media.sfu().write_source(&room, media).await;
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
        media: &mut Vec<SourcePacket>,
    ) -> Result<Vec<ServerSessionResult>, Refusal> {
        match event {
            ServerSessionEvent::ConnectionRequested {
                request_id,
                app_name,
            } => {
                let name = app_name.split('?').next().unwrap_or_default().to_owned();
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
                self.video(&data, timestamp.value, media).await?;
                Ok(Vec::new())
            }
            ServerSessionEvent::AudioDataReceived {
                data, timestamp, ..
            } => {
                let Some(p) = &self.publishing else {
                    return Ok(Vec::new());
                };
                p.live.bytes.fetch_add(data.len() as u64, Ordering::Relaxed);
                // AAC goes to HLS as it is, and to WebRTC viewers as Opus.
                match flv::parse_audio(&data) {
                    Ok(flv::AudioTag::Config(c)) => {
                        p.hls.with(|h| h.set_audio(c.clone()));
                        self.audio_config(&c).await;
                        Ok(Vec::new())
                    }
                    Ok(flv::AudioTag::Frame(f)) => {
                        let dts = i64::from(timestamp.value);
                        p.hls.with(|h| h.push_audio(dts, &f));
                        self.audio_frame(dts, &f).await;
                        Ok(Vec::new())
                    }
                    Err(FlvError::UnsupportedCodec(c)) => {
                        Err(Refusal::Media(FlvError::UnsupportedCodec(c)))
                    }
                    Err(e) => {
                        debug!(peer = %self.peer, error = %e, "bad audio tag dropped");
                        Ok(Vec::new())
                    }
                }
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
        // Encoders may append `?query` to the key; the key is what precedes it.
        let key_only = stream_key.split('?').next().unwrap_or_default();
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
        let seat = match self.state.hub.publish(
            &key,
            SourceKind::Rtmp,
            &ingress.id,
            crate::webrtc::next_conn(),
        ) {
            Ok(s) => s,
            Err(_) => {
                let r = self
                    .session()?
                    .reject_request(
                        request_id,
                        "NetStream.Publish.BadName",
                        "stream already publishing",
                    )
                    .map_err(|e| Refusal::Protocol(e.to_string()))?;
                self.apply_refusal(r);
                return Err(Refusal::RoomBusy(key.room));
            }
        };
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
        info!(peer = %self.peer, app = %app.name, room = %key.room, ingress = %ingress.id, "rtmp publishing");
        let hls = self.state.hls.open(&key);
        let room_media = self.state.media.room(&sfu_room(&key));
        self.publishing = Some(Publishing {
            hls,
            room_media,
            opus: None,
            audio_attached: false,
            sfu_room: sfu_room(&key),
            key,
            session_id,
            live,
            _seat: seat,
            avc: None,
            attached: None,
            packetizer: Packetizer::new(RTP_PAYLOAD_MTU),
            next_seq: 1,
            app_id: app.id,
            ingress,
        });
        self.session()?
            .accept_request(request_id)
            .map_err(|e| Refusal::Protocol(e.to_string()))
    }

    async fn video(
        &mut self,
        data: &[u8],
        timestamp_ms: u32,
        media: &mut Vec<SourcePacket>,
    ) -> Result<(), Refusal> {
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
                let profile = c.profile_level_id;
                let params = crate::hls::mux::VideoParams {
                    width: p.live.width.load(Ordering::Relaxed).min(65535) as u16,
                    height: p.live.height.load(Ordering::Relaxed).min(65535) as u16,
                    sps: c.sps[0].clone(),
                    pps: c.pps[0].clone(),
                };
                p.hls.with(|h| h.set_video(params));
                p.avc = Some(c);
                if p.attached != Some(profile) {
                    let sfu = self.state.media.sfu();
                    if p.attached.is_some() {
                        sfu.detach_source(&p.sfu_room).await;
                    }
                    let _ = sfu
                        .attach_source(&p.sfu_room, SourceCodec::H264(profile))
                        .await;
                    p.attached = Some(profile);
                    // Re-attaching video dropped the audio track with it.
                    p.audio_attached = false;
                    Self::attach_audio(&self.state, p).await;
                }
            }
            VideoTag::Frame {
                composition_ms,
                annex_b,
                ..
            } => {
                let keyframe = access_unit_is_keyframe(&annex_b);
                p.hls.with(|h| {
                    h.push_video(i64::from(timestamp_ms), composition_ms, keyframe, &annex_b)
                });
                if p.attached.is_none() || *p.room_media.subscribers.borrow() == 0 {
                    return Ok(());
                }
                let pts_ms = i64::from(timestamp_ms) + i64::from(composition_ms);
                let time = (pts_ms.max(0) as u64 * 90) as u32;
                let payloads = p.packetizer.packetize(&annex_b);
                let n = payloads.len();
                for (i, payload) in payloads.into_iter().enumerate() {
                    let seq = p.next_seq;
                    p.next_seq += 1;
                    media.push(SourcePacket {
                        seq,
                        time,
                        marker: i + 1 == n,
                        keyframe: keyframe && i == 0,
                        payload: payload.into(),
                    });
                }
            }
            VideoTag::Skip => {}
        }
        Ok(())
    }

    /// A new AAC configuration: a new AAC → Opus converter, and the room's
    /// audio track once its video track exists.
    async fn audio_config(&mut self, config: &flv::AacConfig) {
        let peer = self.peer;
        let Some(p) = self.publishing.as_mut() else {
            return;
        };
        match crate::transcode::aac_opus::AacToOpus::new(config) {
            Ok(t) => p.opus = Some(t),
            Err(e) => {
                warn!(%peer, error = %e, "no audio for WebRTC viewers");
                p.opus = None;
            }
        }
        Self::attach_audio(&self.state, p).await;
    }

    async fn attach_audio(state: &SharedState, p: &mut Publishing) {
        if p.attached.is_some() && p.opus.is_some() && !p.audio_attached {
            p.audio_attached = state
                .media
                .sfu()
                .attach_source(&p.sfu_room, SourceCodec::Opus)
                .await
                .is_ok_and(|r| r.is_ok());
        }
    }

    /// One AAC frame for WebRTC viewers (only while someone subscribes).
    async fn audio_frame(&mut self, dts_ms: i64, frame: &[u8]) {
        let Some(p) = self.publishing.as_mut() else {
            return;
        };
        if !p.audio_attached || *p.room_media.subscribers.borrow() == 0 {
            return;
        }
        let Some(t) = p.opus.as_mut() else {
            return;
        };
        let packets = t.push(dts_ms, frame);
        if !packets.is_empty() {
            let _ = self
                .state
                .media
                .sfu()
                .write_source_audio(&p.sfu_room, packets)
                .await;
        }
    }

    async fn stop_publishing(&mut self) {
        let Some(p) = self.publishing.take() else {
            return;
        };
        if p.attached.is_some() {
            self.state.media.sfu().detach_source(&p.sfu_room).await;
        }
        self.state.hls.close(&p.key, &p.hls);
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
        info!(peer = %self.peer, room = %p.key.room, ingress = %p.ingress.id, "rtmp publishing ended");
        drop(p._seat);
        p.live.done.send_replace(true);
    }

    async fn finish(&mut self) {
        self.stop_publishing().await;
    }
}

/// Runs the server side of the RTMP handshake; returns bytes that followed
/// it.
async fn handshake(socket: &mut TcpStream, buf: &mut [u8]) -> Result<Vec<u8>, Refusal> {
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
