//! The media service over the SFU: WebRTC sessions (WHIP publishers, WHEP
//! viewers), their bookkeeping in the hub and the database, and the
//! transcoders that make MJPEG cameras watchable over WebRTC.
//!
//! API shapes (WHIP/WHEP today) call [`Media::publish`] and [`Media::play`];
//! no business rule lives in them.

use std::collections::HashMap;
use std::net::{IpAddr, SocketAddr};
use std::sync::{Arc, Mutex, Weak};
use std::time::Duration;

use camgate_sfu::core::{Join, PeerId, Role, SfuError, SfuEvent, SourceCodec};
use camgate_sfu::{SfuHandle, SourceKind};
use tokio::sync::{Notify, mpsc, watch};
use tracing::{debug, info, warn};

use crate::auth::random_id;
use crate::hub::{PublisherGuard, RoomKey, ViewerGuard};
use crate::server::AppState;

/// One WebRTC session (a WHIP or WHEP resource).
#[derive(Debug)]
struct Session {
    peer: PeerId,
    key: RoomKey,
    app_id: i64,
    identity: String,
    role: Role,
    etag: String,
    /// WHIP: the room's publisher seat, released when the session ends.
    _publisher: Option<PublisherGuard>,
    /// WHEP: counts the viewer in the room (unless hidden).
    _viewer: Option<ViewerGuard>,
}

/// Per-room media state that outlives single sessions.
#[derive(Debug)]
pub struct RoomMedia {
    /// SFU subscribers of the room, hidden ones included.
    pub subscribers: watch::Sender<usize>,
    /// Rung when the room's external source should send a keyframe.
    pub keyframe: Notify,
    /// A camera transcoder runs for this room.
    pub transcoding: Mutex<bool>,
    /// When an HLS client last asked for this room's playlist or media
    /// (keeps a camera's transcoder running for HLS viewers).
    pub hls_requested: Mutex<Option<std::time::Instant>>,
    /// The latest H.264 keyframe (Annex B, with SPS/PPS) of an RTMP or RTSP
    /// source, for `frame.jpg` (WHIP keyframes are kept by the SFU).
    last_keyframe: Mutex<Option<(std::time::Instant, Arc<[u8]>)>>,
    /// Every access unit of the room's H.264 source while the H.264 → MJPEG
    /// transcoder listens.
    access_units: tokio::sync::broadcast::Sender<Arc<[u8]>>,
    /// An H.264 → MJPEG transcoder runs for this room.
    pub mjpeg_transcoding: Mutex<bool>,
    /// MJPEG viewers of this room's H.264 source.
    pub mjpeg_viewers: std::sync::atomic::AtomicUsize,
}

/// Access units queued for a slow H.264 → MJPEG transcoder before it skips
/// to the next keyframe (two seconds at 30 fps).
const ACCESS_UNIT_QUEUE: usize = 60;

/// How long after its last HLS request a room still counts as watched over
/// HLS. Players reload the playlist at least every target duration (a few
/// seconds), so a quiet minute-fraction means they are gone.
pub const HLS_DEMAND_WINDOW: Duration = Duration::from_secs(15);

impl RoomMedia {
    /// Records an HLS request now.
    pub fn hls_touch(&self) {
        *self.hls_requested.lock().unwrap_or_else(|e| e.into_inner()) =
            Some(std::time::Instant::now());
    }

    /// Keeps `au` as the room's latest keyframe.
    pub fn set_keyframe(&self, au: &[u8]) {
        *self.last_keyframe.lock().unwrap_or_else(|e| e.into_inner()) =
            Some((std::time::Instant::now(), au.into()));
    }

    /// Forgets the latest keyframe (the source stopped).
    pub fn clear_keyframe(&self) {
        *self.last_keyframe.lock().unwrap_or_else(|e| e.into_inner()) = None;
    }

    /// The latest keyframe of an RTMP or RTSP source and its age.
    pub fn keyframe(&self) -> Option<(Duration, Arc<[u8]>)> {
        self.last_keyframe
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .as_ref()
            .map(|(at, au)| (at.elapsed(), au.clone()))
    }

    /// Offers an access unit to the H.264 → MJPEG transcoder (copied only
    /// while one listens).
    pub fn offer_access_unit(&self, au: &[u8]) {
        if self.access_units.receiver_count() > 0 {
            let _ = self.access_units.send(au.into());
        }
    }

    /// Follows the room's access units (for the H.264 → MJPEG transcoder).
    pub fn subscribe_access_units(&self) -> tokio::sync::broadcast::Receiver<Arc<[u8]>> {
        self.access_units.subscribe()
    }

    /// An HLS client asked within [`HLS_DEMAND_WINDOW`].
    pub fn hls_wanted(&self) -> bool {
        self.hls_requested
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .is_some_and(|t| t.elapsed() < HLS_DEMAND_WINDOW)
    }
}

/// What a successful WHIP/WHEP request returns.
#[derive(Debug, Clone)]
pub struct Created {
    /// The session (resource) id.
    pub session_id: String,
    /// The SDP answer.
    pub answer: String,
    /// Entity tag of the ICE session.
    pub etag: String,
}

/// Why a publish or play request failed.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum MediaError {
    /// The room already has a publisher (camera, WHIP, …).
    #[error("room already has a publisher")]
    RoomFull,
    /// Nothing publishes in the room.
    #[error("room has no active publisher")]
    NoPublisher,
    /// The stream has the most viewers allowed.
    #[error("the stream has the most viewers allowed")]
    ViewerLimit,
    /// The SDP offer was refused.
    #[error("{0}")]
    InvalidSdp(String),
    /// No such session.
    #[error("unknown session")]
    UnknownSession,
    /// A trickled candidate is malformed.
    #[error("{0}")]
    InvalidCandidate(String),
    /// The SFU is not running.
    #[error("media engine unavailable")]
    Unavailable,
}

impl From<SfuError> for MediaError {
    fn from(e: SfuError) -> Self {
        match e {
            SfuError::RoomFull(_) => MediaError::RoomFull,
            SfuError::InvalidSdp(m) => MediaError::InvalidSdp(m),
            SfuError::UnknownPeer => MediaError::UnknownSession,
            SfuError::InvalidCandidate(m) => MediaError::InvalidCandidate(m),
            _ => MediaError::Unavailable,
        }
    }
}

/// Who asks for a session (from a join token or anonymous playback).
#[derive(Debug, Clone)]
pub struct Participant {
    /// Identity.
    pub identity: String,
    /// Hidden (recorder/QC): not counted as a viewer.
    pub hidden: bool,
    /// Audio only.
    pub audio_only: bool,
}

/// The media service.
#[derive(Debug)]
pub struct Media {
    sfu: SfuHandle,
    sessions: Mutex<HashMap<String, Session>>,
    rooms: Mutex<HashMap<String, Arc<RoomMedia>>>,
}

impl Media {
    /// Binds the WebRTC UDP socket and starts the SFU. Returns the service
    /// and the SFU's event stream, which [`Media::run_events`] consumes.
    pub async fn start(
        bind: SocketAddr,
        advertise: Vec<IpAddr>,
    ) -> std::io::Result<(Media, mpsc::UnboundedReceiver<SfuEvent>)> {
        let advertise = if advertise.is_empty() {
            default_advertised(bind)
        } else {
            advertise
        };
        let (tx, rx) = mpsc::unbounded_channel();
        let sfu = SfuHandle::start(bind, advertise.clone(), tx).await?;
        info!(udp = %sfu.local_addr(), advertised = ?advertise, "WebRTC SFU listening");
        Ok((
            Media {
                sfu,
                sessions: Mutex::new(HashMap::new()),
                rooms: Mutex::new(HashMap::new()),
            },
            rx,
        ))
    }

    /// The SFU handle.
    pub fn sfu(&self) -> &SfuHandle {
        &self.sfu
    }

    /// Per-room media state, created on first use.
    pub fn room(&self, room: &str) -> Arc<RoomMedia> {
        let mut rooms = self.rooms.lock().unwrap_or_else(|e| e.into_inner());
        rooms
            .entry(room.to_owned())
            .or_insert_with(|| {
                Arc::new(RoomMedia {
                    subscribers: watch::Sender::new(0),
                    keyframe: Notify::new(),
                    transcoding: Mutex::new(false),
                    hls_requested: Mutex::new(None),
                    last_keyframe: Mutex::new(None),
                    access_units: tokio::sync::broadcast::channel(ACCESS_UNIT_QUEUE).0,
                    mjpeg_transcoding: Mutex::new(false),
                    mjpeg_viewers: std::sync::atomic::AtomicUsize::new(0),
                })
            })
            .clone()
    }

    fn sessions(&self) -> std::sync::MutexGuard<'_, HashMap<String, Session>> {
        self.sessions.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// The room of a session (for routes that check it).
    pub fn session_room(&self, session_id: &str) -> Option<String> {
        self.sessions().get(session_id).map(|s| s.key.room.clone())
    }

    /// Number of WebRTC sessions.
    pub fn session_count(&self) -> usize {
        self.sessions().len()
    }

    /// WHIP: a participant publishes into a room.
    pub async fn publish(
        state: &Arc<AppState>,
        key: RoomKey,
        app_id: i64,
        who: Participant,
        offer: String,
    ) -> Result<Created, MediaError> {
        let media = &state.media;
        let session_id = random_id("", 16);
        // The hub seat makes the room busy for cameras and other publishers.
        let conn = next_conn();
        let guard = state
            .hub
            .publish(&key, SourceKind::Whip, &session_id, conn)
            .map_err(|_| MediaError::RoomFull)?;
        let joined = media
            .sfu
            .join(Join {
                room: sfu_room(&key),
                identity: who.identity.clone(),
                role: Role::Publisher,
                hidden: who.hidden,
                audio_only: who.audio_only,
                offer,
            })
            .await
            .map_err(|_| MediaError::Unavailable)??;
        // HLS of the publisher's H.264 (video only: its Opus is not muxed).
        state.hls.open(&key);
        let stream_id = format!("{}/{}", key.room, who.identity);
        if let Err(e) = state
            .db
            .stream_started(
                app_id,
                &stream_id,
                &key.room,
                &who.identity,
                SourceKind::Whip.as_str(),
                &session_id,
            )
            .await
        {
            warn!(error = %e, "could not record stream start");
        }
        state.webhooks.stream_started(
            &key.app,
            &key.room,
            &stream_id,
            SourceKind::Whip,
            crate::webhooks::Publisher::Participant(&who.identity),
        );
        let etag = format!("\"{}\"", random_id("", 8));
        media.sessions().insert(
            session_id.clone(),
            Session {
                peer: joined.peer,
                key,
                app_id,
                identity: who.identity,
                role: Role::Publisher,
                etag: etag.clone(),
                _publisher: Some(guard),
                _viewer: None,
            },
        );
        Ok(Created {
            session_id,
            answer: joined.answer,
            etag,
        })
    }

    /// WHEP: a participant watches a room.
    pub async fn play(
        state: &Arc<AppState>,
        key: RoomKey,
        app_id: i64,
        who: Participant,
        offer: String,
    ) -> Result<Created, MediaError> {
        let media = &state.media;
        let source = state.hub.get(&key).and_then(|r| r.publisher());
        match source {
            None => return Err(MediaError::NoPublisher),
            Some(kind) if kind.codec() == camgate_sfu::Codec::Jpeg => {
                crate::transcode::camera::ensure(state, &key);
            }
            Some(_) => {}
        }
        let viewer = if who.hidden {
            None
        } else {
            match state.hub.watch(&key) {
                Ok((guard, _)) => Some(guard),
                Err(crate::hub::WatchError::Full) => return Err(MediaError::ViewerLimit),
                Err(_) => None,
            }
        };
        let joined = media
            .sfu
            .join(Join {
                room: sfu_room(&key),
                identity: who.identity.clone(),
                role: Role::Subscriber,
                hidden: who.hidden,
                audio_only: who.audio_only,
                offer,
            })
            .await
            .map_err(|_| MediaError::Unavailable)??;
        let session_id = random_id("", 16);
        let etag = format!("\"{}\"", random_id("", 8));
        media.sessions().insert(
            session_id.clone(),
            Session {
                peer: joined.peer,
                key,
                app_id,
                identity: who.identity,
                role: Role::Subscriber,
                etag: etag.clone(),
                _publisher: None,
                _viewer: viewer,
            },
        );
        Ok(Created {
            session_id,
            answer: joined.answer,
            etag,
        })
    }

    /// Trickle ICE: adds candidates to a session. Returns the session's ETag.
    pub async fn trickle(
        &self,
        session_id: &str,
        candidates: Vec<String>,
    ) -> Result<String, MediaError> {
        let (peer, etag) = {
            let sessions = self.sessions();
            let s = sessions.get(session_id).ok_or(MediaError::UnknownSession)?;
            (s.peer, s.etag.clone())
        };
        if !candidates.is_empty() {
            self.sfu
                .add_candidates(peer, candidates)
                .await
                .map_err(|_| MediaError::Unavailable)??;
        }
        Ok(etag)
    }

    /// The ETag of a session.
    pub fn etag(&self, session_id: &str) -> Option<String> {
        self.sessions().get(session_id).map(|s| s.etag.clone())
    }

    /// Ends the WHIP publisher session of a room with this identity, if
    /// any (a deleted ingress); true when one was live.
    pub async fn end_publisher(&self, key: &RoomKey, identity: &str) -> bool {
        let id = self
            .sessions()
            .iter()
            .find(|(_, s)| s.role == Role::Publisher && &s.key == key && s.identity == identity)
            .map(|(id, _)| id.clone());
        match id {
            Some(id) => self.end(&id).await.is_ok(),
            None => false,
        }
    }

    /// Ends a session (WHIP/WHEP DELETE).
    pub async fn end(&self, session_id: &str) -> Result<(), MediaError> {
        let peer = self
            .sessions()
            .get(session_id)
            .map(|s| s.peer)
            .ok_or(MediaError::UnknownSession)?;
        // The SFU's Closed event finishes the bookkeeping.
        match self.sfu.close(peer).await {
            Ok(Ok(())) | Ok(Err(SfuError::UnknownPeer)) => Ok(()),
            Ok(Err(e)) => Err(e.into()),
            Err(_) => Err(MediaError::Unavailable),
        }
    }

    /// Consumes the SFU's events until the SFU stops.
    pub async fn run_events(state: Weak<AppState>, mut events: mpsc::UnboundedReceiver<SfuEvent>) {
        while let Some(event) = events.recv().await {
            let Some(state) = state.upgrade() else {
                return;
            };
            match event {
                SfuEvent::Subscribers {
                    room,
                    total,
                    visible,
                } => {
                    debug!(room, total, visible, "subscribers");
                    state.media.room(&room).subscribers.send_replace(total);
                }
                SfuEvent::KeyframeWanted { room } => {
                    state.media.room(&room).keyframe.notify_one();
                }
                SfuEvent::Closed { peer, .. } => {
                    let ended = {
                        let mut sessions = state.media.sessions();
                        let id = sessions
                            .iter()
                            .find(|(_, s)| s.peer == peer)
                            .map(|(id, _)| id.clone());
                        id.and_then(|id| sessions.remove(&id).map(|s| (id, s)))
                    };
                    if let Some((id, s)) = ended
                        && s.role == Role::Publisher
                    {
                        if let Some(stream) = state.hls.get(&s.key) {
                            state.hls.close(&s.key, &stream);
                        }
                        let stream_id = format!("{}/{}", s.key.room, s.identity);
                        if let Err(e) = state.db.stream_ended(s.app_id, &stream_id, &id).await {
                            warn!(error = %e, "could not record stream end");
                        }
                        state.webhooks.stream_ended(
                            &s.key.app,
                            &s.key.room,
                            &stream_id,
                            SourceKind::Whip,
                            crate::webhooks::Publisher::Participant(&s.identity),
                            None,
                        );
                    }
                }
                SfuEvent::AccessUnit {
                    room,
                    time_ms,
                    keyframe,
                    access_unit,
                } => hls_access_unit(&state, &room, time_ms, keyframe, &access_unit),
                SfuEvent::Audio {
                    room,
                    time_ms,
                    codec: SourceCodec::Opus,
                    payload,
                } => hls_opus(&state, &room, time_ms, &payload),
                SfuEvent::Data {
                    room,
                    from,
                    payload,
                    binary: false,
                } => {
                    // Off the event loop: storing waits on the database.
                    tokio::spawn(async move {
                        crate::api::chat::from_participant(&state, &room, &from, &payload).await;
                    });
                }
                SfuEvent::Connected { .. } | SfuEvent::Data { .. } => {}
                _ => {}
            }
        }
    }
}

/// The HLS stream of an SFU room, if it has one.
fn hls_stream(state: &AppState, sfu_room: &str) -> Option<Arc<crate::hls::Stream>> {
    let (app, room) = sfu_room.split_once('/')?;
    state.hls.get(&RoomKey {
        app: app.to_owned(),
        room: room.to_owned(),
    })
}

/// Feeds a WebRTC publisher's Opus packet to its room's HLS stream (and so
/// to recordings). G.711 from a WebRTC publisher is not kept: browsers and
/// WebRTC stacks negotiate Opus, which camgate's answer prefers.
fn hls_opus(state: &AppState, sfu_room: &str, time_ms: u64, packet: &[u8]) {
    if let Some(stream) = hls_stream(state, sfu_room) {
        stream.with(|p| {
            // WebRTC's Opus is negotiated as stereo (opus/48000/2).
            p.set_opus(2);
            p.push_audio(time_ms as i64, packet);
        });
    }
}

/// Feeds a WebRTC publisher's access unit to its room's HLS stream; a
/// keyframe's SPS/PPS (re)configure it.
fn hls_access_unit(state: &AppState, sfu_room: &str, time_ms: u64, keyframe: bool, au: &[u8]) {
    state.media.room(sfu_room).offer_access_unit(au);
    let Some(stream) = hls_stream(state, sfu_room) else {
        return;
    };
    let long = stream.push_h264(time_ms as i64, keyframe, au);
    let mut asked = stream
        .keyframe_asked
        .lock()
        .unwrap_or_else(|e| e.into_inner());
    if long && asked.is_none_or(|t| t.elapsed() >= Duration::from_secs(1)) {
        *asked = Some(std::time::Instant::now());
        let sfu = state.media.sfu().clone();
        let room = sfu_room.to_owned();
        tokio::spawn(async move {
            let _ = sfu.keyframe(&room, Duration::ZERO).await;
        });
    }
}

/// The SFU's name for a room: app and namespaced room, so two apps whose
/// room prefixes collide never share media.
pub fn sfu_room(key: &RoomKey) -> String {
    format!("{}/{}", key.app, key.room)
}

/// A process-unique connection number for hub seats.
pub fn next_conn() -> u64 {
    use std::sync::atomic::{AtomicU64, Ordering};
    static NEXT: AtomicU64 = AtomicU64::new(1 << 40);
    NEXT.fetch_add(1, Ordering::Relaxed)
}

/// The address to advertise when none is configured: the bound IP when it
/// is specific, else the address of the interface the default route uses
/// (found without sending anything), else loopback.
fn default_advertised(bind: SocketAddr) -> Vec<IpAddr> {
    if !bind.ip().is_unspecified() {
        return vec![bind.ip()];
    }
    let probe = std::net::UdpSocket::bind("0.0.0.0:0")
        .and_then(|s| s.connect("192.0.2.1:9").map(|_| s))
        .and_then(|s| s.local_addr());
    match probe {
        Ok(a) if !a.ip().is_unspecified() => vec![a.ip()],
        _ => vec![IpAddr::from([127, 0, 0, 1])],
    }
}
