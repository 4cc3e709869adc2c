//! The sans-IO SFU: rooms, participants, tracks and routing over str0m.
//!
//! [`Sfu`] owns every peer's [`Rtc`] and never touches a socket or a clock:
//! datagrams and timeouts come in with their time ([`Sfu::handle_datagram`],
//! [`Sfu::handle_timeout`]), and [`Sfu::poll_output`] yields what to send,
//! what happened, and when to call again. The tokio driver in
//! [`crate::driver`] is the only place with a socket.
//!
//! Routing decisions that matter at a thousand viewers:
//!
//! * **Demux by map, never by scan.** A datagram is matched to its peer by its
//!   source address; a STUN binding request from a new address is matched by
//!   the local ICE username fragment it carries, and the address is learned.
//! * **Forward at RTP level, payloads shared.** Peers run in str0m's RTP mode:
//!   a publisher's packet arrives as an `Arc<[u8]>` payload that every
//!   subscriber's send stream receives by reference; only the header (payload
//!   type, sequence number, timestamp) is rewritten per subscriber. External
//!   sources (the JPEG→H.264 transcoder) packetize once per track the same way.
//! * **Start on a keyframe.** A subscriber's video starts at the next packet
//!   that begins a keyframe; until then the source is asked for one (PLI to a
//!   WebRTC publisher, [`SfuEvent::KeyframeWanted`] for an external source),
//!   at most once per [`KEYFRAME_REQUEST_INTERVAL`].
//! * **Loss repair is str0m's**: it NACKs publishers and answers subscribers'
//!   NACKs from its RTX cache, since video packets are written `nackable`.

use std::collections::{HashMap, VecDeque};
use std::fmt;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};

use str0m::change::SdpOffer;
use str0m::channel::ChannelId;
use str0m::format::{Codec, CodecSpec, FormatParams};
use str0m::media::{Direction, Frequency, KeyframeRequestKind, MediaKind, Mid, Pt};
use str0m::net::{Protocol, Receive, Transmit};
use str0m::rtp::RtpWrite;
use str0m::{Candidate, Event, IceConnectionState, Input, Output as RtcOutput, Rtc};
use tracing::{debug, info, warn};

/// Keyframe requests toward one source are sent at most this often.
pub const KEYFRAME_REQUEST_INTERVAL: Duration = Duration::from_millis(300);

/// How long a peer may take to connect after its answer was sent.
pub const CONNECT_TIMEOUT: Duration = Duration::from_secs(20);

/// Identifies one peer connection inside an [`Sfu`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct PeerId(pub u64);

impl fmt::Display for PeerId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{:016x}", self.0)
    }
}

/// What a peer does in its room.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Role {
    /// Sends media into the room (WHIP).
    Publisher,
    /// Receives the room's media (WHEP).
    Subscriber,
}

/// A request to join a room with an SDP offer.
#[derive(Debug, Clone)]
pub struct Join {
    /// The namespaced room (`live-cam1`).
    pub room: String,
    /// Who joins (from the join token).
    pub identity: String,
    /// Publish or subscribe.
    pub role: Role,
    /// Hidden participants (recorders, QC) are not counted as viewers.
    pub hidden: bool,
    /// Subscribe to audio only (listen tokens) / publish audio only.
    pub audio_only: bool,
    /// The remote offer, as SDP text.
    pub offer: String,
}

/// The result of a successful join.
#[derive(Debug, Clone)]
pub struct Joined {
    /// The new peer.
    pub peer: PeerId,
    /// The SDP answer to return to the client.
    pub answer: String,
}

/// Why the SFU refused a request.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum SfuError {
    /// The offer could not be parsed or accepted.
    #[error("invalid SDP offer: {0}")]
    InvalidSdp(String),
    /// The room already has a publisher.
    #[error("room {0} already has a publisher")]
    RoomFull(String),
    /// No such peer (already closed or never existed).
    #[error("unknown session")]
    UnknownPeer,
    /// The SFU has no local candidate to offer.
    #[error("no WebRTC address configured")]
    NoCandidate,
    /// A trickled candidate could not be parsed.
    #[error("invalid ICE candidate: {0}")]
    InvalidCandidate(String),
}

/// Something the application should know about.
#[derive(Debug, Clone, PartialEq)]
#[non_exhaustive]
pub enum SfuEvent {
    /// ICE and DTLS completed for a peer.
    Connected {
        /// The peer.
        peer: PeerId,
        /// Its room.
        room: String,
        /// Its role.
        role: Role,
    },
    /// A peer is gone (closed, failed, timed out or removed).
    Closed {
        /// The peer.
        peer: PeerId,
        /// Its room.
        room: String,
        /// Its role.
        role: Role,
        /// Its identity.
        identity: String,
    },
    /// The number of subscribers of a room changed.
    Subscribers {
        /// The room.
        room: String,
        /// All subscribers, hidden ones included (what needs media).
        total: usize,
        /// Subscribers that count as viewers.
        visible: usize,
    },
    /// An external source should produce a keyframe soon.
    KeyframeWanted {
        /// The room whose external source is asked.
        room: String,
    },
    /// A participant sent a data channel message; it was relayed to the room.
    Data {
        /// The room.
        room: String,
        /// The sender's identity.
        from: String,
        /// The message.
        payload: Vec<u8>,
        /// Whether it was sent as binary (else UTF-8 text).
        binary: bool,
    },
    /// A WebRTC publisher's whole H.264 access unit (pictures that lost a
    /// packet are not reported), for HLS and recording.
    AccessUnit {
        /// The room.
        room: String,
        /// Milliseconds on the publisher's media clock (shared with its
        /// [`SfuEvent::Audio`]).
        time_ms: u64,
        /// Holds an IDR slice.
        keyframe: bool,
        /// Annex B.
        access_unit: Arc<[u8]>,
    },
    /// One audio packet of a WebRTC publisher (an Opus packet, or G.711
    /// samples), for HLS and recording.
    Audio {
        /// The room.
        room: String,
        /// Milliseconds on the publisher's media clock (shared with its
        /// [`SfuEvent::AccessUnit`]s).
        time_ms: u64,
        /// [`SourceCodec::Opus`], [`SourceCodec::Pcmu`] or
        /// [`SourceCodec::Pcma`].
        codec: SourceCodec,
        /// The RTP payload.
        payload: Arc<[u8]>,
    },
}

/// Puts a publisher's audio and video on one millisecond timeline. RTP
/// tracks start at random timestamps, so each track is anchored at the
/// arrival of its first packet and runs on its own RTP clock from there:
/// the tracks line up to within the network jitter of those two first
/// packets.
#[derive(Debug, Default)]
struct MediaClock {
    publisher: Option<PeerId>,
    base: Option<Instant>,
    /// Video, audio: first extended RTP time and its arrival.
    anchors: [Option<(u64, Instant)>; 2],
}

impl MediaClock {
    fn millis(
        &mut self,
        peer: PeerId,
        audio: bool,
        time: str0m::media::MediaTime,
        arrival: Instant,
    ) -> u64 {
        if self.publisher != Some(peer) {
            *self = MediaClock {
                publisher: Some(peer),
                ..MediaClock::default()
            };
        }
        let base = *self.base.get_or_insert(arrival);
        let (t0, at) = *self.anchors[usize::from(audio)].get_or_insert((time.numer(), arrival));
        let offset = at.saturating_duration_since(base).as_millis() as i64;
        let rate = i64::from(time.denom().max(1));
        let since = (time.numer() as i64).wrapping_sub(t0 as i64) * 1000 / rate;
        (offset + since).max(0) as u64
    }
}

/// What [`Sfu::poll_output`] yields.
#[derive(Debug)]
pub enum Output {
    /// A datagram to send.
    Transmit(Transmit),
    /// An event for the application.
    Event(SfuEvent),
    /// Nothing more to do until this time (or new input).
    Timeout(Instant),
}

/// The codec of an external (non-WebRTC) source's track.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum SourceCodec {
    /// H.264, packetization-mode 1, constrained baseline (42e01f).
    H264ConstrainedBaseline,
    /// H.264, packetization-mode 1, of the given `profile-level-id` (from
    /// the stream's SPS, e.g. an RTMP encoder's High profile 64001f).
    H264(u32),
    /// Opus, 48 kHz stereo: the audio track next to an external video
    /// source (see [`Sfu::attach_source`]).
    Opus,
    /// G.711 µ-law, 8 kHz mono (IP cameras), forwarded as it is.
    Pcmu,
    /// G.711 A-law, 8 kHz mono (IP cameras), forwarded as it is.
    Pcma,
}

impl SourceCodec {
    /// An audio track (joins a room's external video source).
    pub fn is_audio(self) -> bool {
        matches!(
            self,
            SourceCodec::Opus | SourceCodec::Pcmu | SourceCodec::Pcma
        )
    }

    fn spec(self) -> CodecSpec {
        let profile_level_id = match self {
            SourceCodec::H264ConstrainedBaseline => 0x42e01f,
            SourceCodec::H264(id) => id,
            SourceCodec::Pcmu | SourceCodec::Pcma => {
                return CodecSpec {
                    codec: if self == SourceCodec::Pcmu {
                        Codec::PCMU
                    } else {
                        Codec::PCMA
                    },
                    clock_rate: Frequency::EIGHT_KHZ,
                    channels: Some(1),
                    format: FormatParams::default(),
                };
            }
            SourceCodec::Opus => {
                return CodecSpec {
                    codec: Codec::Opus,
                    clock_rate: Frequency::FORTY_EIGHT_KHZ,
                    channels: Some(2),
                    format: FormatParams {
                        min_p_time: Some(10),
                        use_inband_fec: Some(true),
                        ..FormatParams::default()
                    },
                };
            }
        };
        CodecSpec {
            codec: Codec::H264,
            clock_rate: Frequency::NINETY_KHZ,
            channels: None,
            format: FormatParams {
                packetization_mode: Some(1),
                profile_level_id: Some(profile_level_id),
                level_asymmetry_allowed: Some(true),
                ..FormatParams::default()
            },
        }
    }
}

/// One RTP payload of an external source, packetized once for all viewers.
#[derive(Debug, Clone)]
pub struct SourcePacket {
    /// Extended sequence number in the source's own numbering.
    pub seq: u64,
    /// RTP timestamp (90 kHz for video).
    pub time: u32,
    /// Last packet of a frame.
    pub marker: bool,
    /// This packet begins a keyframe.
    pub keyframe: bool,
    /// The payload, shared by reference between subscribers.
    pub payload: Arc<[u8]>,
}

/// Counters for benchmarks and metrics.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct SfuStats {
    /// Peers currently held.
    pub peers: usize,
    /// Rooms with a publisher or subscribers.
    pub rooms: usize,
    /// RTP packets received from publishers and external sources.
    pub packets_in: u64,
    /// RTP packets handed to subscribers' send streams.
    pub packets_out: u64,
    /// Datagrams that matched no peer.
    pub unmatched_datagrams: u64,
}

/// A media packet on its way from a source to subscribers.
struct Forward<'a> {
    kind: MediaKind,
    spec: &'a CodecSpec,
    epoch: u64,
    seq: u64,
    time: u32,
    marker: bool,
    keyframe: bool,
    payload: &'a Arc<[u8]>,
}

/// A subscriber's outgoing track of one kind.
struct Send {
    mid: Mid,
    kind: MediaKind,
    /// Source epoch this send is synced to (a new publisher is a new epoch).
    epoch: u64,
    pt: Option<Pt>,
    synced: bool,
    seq_delta: i64,
    ts_delta: u32,
    last_seq: u64,
    last_time: u32,
    started: bool,
}

struct Peer {
    rtc: Rtc,
    room: String,
    identity: String,
    role: Role,
    hidden: bool,
    audio_only: bool,
    ufrag: String,
    deadline: Instant,
    created: Instant,
    connected: bool,
    sends: Vec<Send>,
    /// Publisher: the mid of its incoming video, for PLI.
    video_mid: Option<Mid>,
    channel: Option<ChannelId>,
    addrs: Vec<SocketAddr>,
}

enum Source {
    Peer(PeerId),
    External(CodecSpec),
}

#[derive(Default)]
struct Room {
    source: Option<Source>,
    epoch: u64,
    subscribers: Vec<PeerId>,
    members: Vec<PeerId>,
    last_keyframe_request: Option<Instant>,
    /// Reassembles a WebRTC publisher's H.264 so the latest keyframe can be
    /// handed out for snapshots.
    depacketizer: camgate_protocols::h264::Depacketizer,
    /// The publisher's latest H.264 keyframe (Annex B) and when it arrived.
    keyframe: Option<(Instant, Arc<[u8]>)>,
    /// The audio track of an external source.
    external_audio: Option<CodecSpec>,
    /// The WebRTC publisher's media timeline.
    clock: MediaClock,
}

/// The SFU engine. See the module docs.
pub struct Sfu {
    candidates: Vec<SocketAddr>,
    next_peer: u64,
    next_epoch: u64,
    peers: HashMap<PeerId, Peer>,
    by_ufrag: HashMap<String, PeerId>,
    by_addr: HashMap<SocketAddr, PeerId>,
    rooms: HashMap<String, Room>,
    out: VecDeque<Output>,
    /// Rooms with media written but not yet sent, and the time it was
    /// written: flushed when the caller next polls, so a burst of incoming
    /// packets goes out per subscriber in one run (one drive per subscriber
    /// per burst instead of per packet; consecutive datagrams to the same
    /// address let the driver batch them).
    unflushed: Vec<String>,
    unflushed_at: Option<Instant>,
    stats: SfuStats,
}

impl Sfu {
    /// An SFU advertising these host candidates (the addresses peers send
    /// to). The first is also used as the destination of received datagrams.
    pub fn new(candidates: Vec<SocketAddr>) -> Self {
        str0m::crypto::from_feature_flags().install_process_default();
        Self {
            candidates,
            next_peer: rand_u64() | 1,
            next_epoch: 1,
            peers: HashMap::new(),
            by_ufrag: HashMap::new(),
            by_addr: HashMap::new(),
            rooms: HashMap::new(),
            out: VecDeque::new(),
            unflushed: Vec::new(),
            unflushed_at: None,
            stats: SfuStats::default(),
        }
    }

    /// Current counters.
    pub fn stats(&self) -> SfuStats {
        SfuStats {
            peers: self.peers.len(),
            rooms: self.rooms.len(),
            ..self.stats
        }
    }

    /// Whether a room has a publisher or an attached external source.
    pub fn has_source(&self, room: &str) -> bool {
        self.rooms.get(room).is_some_and(|r| r.source.is_some())
    }

    /// The room and role of a peer.
    pub fn peer_room(&self, peer: PeerId) -> Option<(&str, Role)> {
        self.peers.get(&peer).map(|p| (p.room.as_str(), p.role))
    }

    /// Adds a peer from its SDP offer and returns the answer.
    pub fn join(&mut self, now: Instant, join: Join) -> Result<Joined, SfuError> {
        let first = *self.candidates.first().ok_or(SfuError::NoCandidate)?;
        if join.role == Role::Publisher
            && self
                .rooms
                .get(&join.room)
                .is_some_and(|r| r.source.is_some())
        {
            return Err(SfuError::RoomFull(join.room));
        }
        let offer = SdpOffer::from_sdp_string(&join.offer)
            .map_err(|e| SfuError::InvalidSdp(parse_error_text(&e.to_string())))?;
        let mut rtc = Rtc::builder()
            .set_ice_lite(true)
            .set_rtp_mode(true)
            .clear_codecs()
            .enable_h264(true)
            .enable_vp8(true)
            .enable_opus(true, false)
            .enable_pcmu(true, false)
            .enable_pcma(true, false)
            .build(now);
        for addr in &self.candidates {
            match Candidate::host(*addr, "udp") {
                Ok(c) => {
                    rtc.add_local_candidate(c);
                }
                Err(e) => warn!(%addr, error = %e, "unusable WebRTC candidate address"),
            }
        }
        let _ = first;
        let answer = rtc
            .sdp_api()
            .accept_offer(offer)
            .map_err(|e| SfuError::InvalidSdp(e.to_string()))?;
        let ufrag = rtc.direct_api().local_ice_credentials().ufrag;
        let id = PeerId(self.next_peer);
        self.next_peer = self.next_peer.wrapping_add(2);
        let peer = Peer {
            rtc,
            room: join.room.clone(),
            identity: join.identity,
            role: join.role,
            hidden: join.hidden,
            audio_only: join.audio_only,
            ufrag: ufrag.clone(),
            deadline: now,
            created: now,
            connected: false,
            sends: Vec::new(),
            video_mid: None,
            channel: None,
            addrs: Vec::new(),
        };
        self.by_ufrag.insert(ufrag, id);
        self.peers.insert(id, peer);
        let room = self.rooms.entry(join.room.clone()).or_default();
        room.members.push(id);
        match join.role {
            Role::Publisher => {
                room.source = Some(Source::Peer(id));
                room.depacketizer = Default::default();
                room.keyframe = None;
                room.epoch = self.next_epoch;
                self.next_epoch += 1;
            }
            Role::Subscriber => {
                room.subscribers.push(id);
                self.subscribers_changed(&join.room);
            }
        }
        info!(peer = %id, room = %join.room, role = ?join.role, "peer joined");
        self.drive(id, now);
        Ok(Joined {
            peer: id,
            answer: answer.to_sdp_string(),
        })
    }

    /// Adds trickled remote candidates (`a=candidate:…` lines or bare
    /// `candidate:…` values) to a peer.
    pub fn add_remote_candidates(
        &mut self,
        now: Instant,
        peer: PeerId,
        candidates: &[String],
    ) -> Result<(), SfuError> {
        let p = self.peers.get_mut(&peer).ok_or(SfuError::UnknownPeer)?;
        for line in candidates {
            let value = line.trim().trim_start_matches("a=");
            let c = Candidate::from_sdp_string(value)
                .map_err(|e| SfuError::InvalidCandidate(e.to_string()))?;
            p.rtc.add_remote_candidate(c);
        }
        self.drive(peer, now);
        Ok(())
    }

    /// Removes a peer (WHIP/WHEP DELETE, a kicked publisher).
    pub fn close(&mut self, now: Instant, peer: PeerId) -> Result<(), SfuError> {
        let p = self.peers.get_mut(&peer).ok_or(SfuError::UnknownPeer)?;
        p.rtc.disconnect();
        self.remove_peer(peer, now);
        Ok(())
    }

    /// Closes every peer of a room (the stream was stopped).
    pub fn close_room(&mut self, now: Instant, room: &str) {
        let members = self
            .rooms
            .get(room)
            .map(|r| r.members.clone())
            .unwrap_or_default();
        for id in members {
            let _ = self.close(now, id);
        }
    }

    /// Attaches an external source (e.g. the JPEG→H.264 transcoder) as the
    /// room's publisher.
    pub fn attach_source(&mut self, room: &str, codec: SourceCodec) -> Result<(), SfuError> {
        let r = self.rooms.entry(room.to_owned()).or_default();
        if codec.is_audio() {
            // Audio joins the room's external video source.
            if !matches!(r.source, Some(Source::External(_))) {
                return Err(SfuError::RoomFull(room.to_owned()));
            }
            r.external_audio = Some(codec.spec());
            debug!(room, "external audio attached");
            return Ok(());
        }
        if r.source.is_some() {
            return Err(SfuError::RoomFull(room.to_owned()));
        }
        r.source = Some(Source::External(codec.spec()));
        r.epoch = self.next_epoch;
        self.next_epoch += 1;
        // Subscribers waiting in the room need a keyframe from it at once.
        if !r.subscribers.is_empty() {
            self.out.push_back(Output::Event(SfuEvent::KeyframeWanted {
                room: room.to_owned(),
            }));
        }
        debug!(room, ?codec, "external source attached");
        Ok(())
    }

    /// Detaches a room's external source.
    pub fn detach_source(&mut self, room: &str) {
        if let Some(r) = self.rooms.get_mut(room)
            && matches!(r.source, Some(Source::External(_)))
        {
            r.source = None;
            r.external_audio = None;
            debug!(room, "external source detached");
        }
        self.gc_room(room);
    }

    /// Forwards an external source's packets to the room's subscribers.
    pub fn write_source(&mut self, now: Instant, room: &str, packets: &[SourcePacket]) {
        let Some(r) = self.rooms.get(room) else {
            return;
        };
        let Some(Source::External(spec)) = &r.source else {
            return;
        };
        let spec = *spec;
        self.forward_external(now, room, MediaKind::Video, spec, packets);
    }

    /// Forwards packets of an external source's track; audio packets all
    /// count as starting points (only video waits for a keyframe).
    fn forward_external(
        &mut self,
        now: Instant,
        room: &str,
        kind: MediaKind,
        spec: CodecSpec,
        packets: &[SourcePacket],
    ) {
        let Some(epoch) = self.rooms.get(room).map(|r| r.epoch) else {
            return;
        };
        for p in packets {
            self.stats.packets_in += 1;
            let fwd = Forward {
                kind,
                spec: &spec,
                epoch,
                seq: p.seq,
                time: p.time,
                marker: p.marker,
                keyframe: kind == MediaKind::Audio || p.keyframe,
                payload: &p.payload,
            };
            self.forward(now, room, &fwd);
        }
        self.mark_unflushed(now, room);
    }

    /// The latest H.264 keyframe (Annex B) of a room's WebRTC publisher and
    /// its age. When there is none or it is older than `max_age`, the
    /// publisher is also asked for a new one (PLI, rate-limited), so a
    /// caller that polls again shortly gets a fresh picture.
    pub fn latest_keyframe(
        &mut self,
        now: Instant,
        room: &str,
        max_age: Duration,
    ) -> Option<(Duration, Arc<[u8]>)> {
        let r = self.rooms.get(room)?;
        let cached = r
            .keyframe
            .as_ref()
            .map(|(at, au)| (now.saturating_duration_since(*at), au.clone()));
        if cached.as_ref().is_none_or(|(age, _)| *age > max_age)
            && matches!(r.source, Some(Source::Peer(_)))
        {
            self.request_keyframe(now, room);
        }
        cached
    }

    /// Forwards an external source's audio packets (see
    /// [`SourceCodec::Opus`]) to the room's subscribers.
    pub fn write_source_audio(&mut self, now: Instant, room: &str, packets: &[SourcePacket]) {
        let Some(r) = self.rooms.get(room) else {
            return;
        };
        let (Some(Source::External(_)), Some(spec)) = (&r.source, r.external_audio) else {
            return;
        };
        self.forward_external(now, room, MediaKind::Audio, spec, packets);
    }

    /// Sends a data channel message to every participant of a room.
    pub fn send_data(&mut self, now: Instant, room: &str, payload: &[u8], binary: bool) {
        let members = self
            .rooms
            .get(room)
            .map(|r| r.members.clone())
            .unwrap_or_default();
        for id in members {
            if let Some(p) = self.peers.get_mut(&id)
                && let Some(ch) = p.channel
                && let Some(mut channel) = p.rtc.channel(ch)
            {
                let _ = channel.write(binary, payload);
            }
            self.drive(id, now);
        }
    }

    /// A datagram arrived on the shared socket.
    pub fn handle_datagram(
        &mut self,
        now: Instant,
        source: SocketAddr,
        destination: SocketAddr,
        data: &[u8],
    ) {
        let id = match self.by_addr.get(&source) {
            Some(id) => Some(*id),
            None => self.match_stun(data),
        };
        let Some(id) = id else {
            self.stats.unmatched_datagrams += 1;
            return;
        };
        let Some(peer) = self.peers.get_mut(&id) else {
            self.by_addr.remove(&source);
            self.stats.unmatched_datagrams += 1;
            return;
        };
        let Ok(receive) = Receive::new(Protocol::Udp, source, destination, data) else {
            return;
        };
        if peer.rtc.handle_input(Input::Receive(now, receive)).is_err() {
            debug!(peer = %id, "input rejected");
        }
        if !peer.addrs.contains(&source) {
            peer.addrs.push(source);
            self.by_addr.insert(source, id);
        }
        self.drive(id, now);
    }

    /// Finds the peer a STUN binding request is for by its username
    /// (`<local ufrag>:<remote ufrag>`).
    fn match_stun(&self, data: &[u8]) -> Option<PeerId> {
        let msg = str0m::ice::StunMessage::parse(data).ok()?;
        let (local, _) = msg.split_username()?;
        self.by_ufrag.get(local).copied()
    }

    /// Time moved on: drives every peer whose timer expired.
    pub fn handle_timeout(&mut self, now: Instant) {
        let due: Vec<PeerId> = self
            .peers
            .iter()
            .filter(|(_, p)| p.deadline <= now)
            .map(|(id, _)| *id)
            .collect();
        for id in due {
            if let Some(p) = self.peers.get_mut(&id) {
                if !p.connected && now.duration_since(p.created) > CONNECT_TIMEOUT {
                    info!(peer = %id, "peer did not connect in time");
                    p.rtc.disconnect();
                } else if p.rtc.handle_input(Input::Timeout(now)).is_err() {
                    p.rtc.disconnect();
                }
            }
            self.drive(id, now);
        }
    }

    /// The next thing to do: transmit, event, or the time to call
    /// [`Sfu::handle_timeout`].
    pub fn poll_output(&mut self) -> Output {
        if let Some(o) = self.out.pop_front() {
            return o;
        }
        if let Some(now) = self.unflushed_at.take() {
            for room in std::mem::take(&mut self.unflushed) {
                self.flush_room(now, &room);
            }
            if let Some(o) = self.out.pop_front() {
                return o;
            }
        }
        let next = self
            .peers
            .values()
            .map(|p| p.deadline)
            .min()
            .unwrap_or_else(|| Instant::now() + Duration::from_secs(1));
        Output::Timeout(next)
    }

    /// Drains one peer's outputs; handles its events (which may forward
    /// media to others) afterwards.
    fn drive(&mut self, id: PeerId, now: Instant) {
        let mut events = Vec::new();
        {
            let Some(p) = self.peers.get_mut(&id) else {
                return;
            };
            loop {
                if !p.rtc.is_alive() {
                    break;
                }
                match p.rtc.poll_output() {
                    Ok(RtcOutput::Transmit(t)) => self.out.push_back(Output::Transmit(t)),
                    Ok(RtcOutput::Timeout(t)) => {
                        p.deadline = t;
                        break;
                    }
                    Ok(RtcOutput::Event(e)) => events.push(e),
                    Err(e) => {
                        debug!(peer = %id, error = %e, "peer failed");
                        p.rtc.disconnect();
                        break;
                    }
                }
            }
        }
        for e in events {
            self.on_event(id, now, e);
        }
        if self.peers.get(&id).is_some_and(|p| !p.rtc.is_alive()) {
            self.remove_peer(id, now);
        }
    }

    fn on_event(&mut self, id: PeerId, now: Instant, event: Event) {
        let Some(p) = self.peers.get_mut(&id) else {
            return;
        };
        match event {
            Event::Connected => {
                p.connected = true;
                info!(peer = %id, room = %p.room, "peer connected");
                self.out.push_back(Output::Event(SfuEvent::Connected {
                    peer: id,
                    room: p.room.clone(),
                    role: p.role,
                }));
                if p.role == Role::Subscriber && !p.audio_only {
                    let room = p.room.clone();
                    self.request_keyframe(now, &room);
                }
            }
            Event::IceConnectionStateChange(IceConnectionState::Disconnected) => {
                p.rtc.disconnect();
            }
            Event::MediaAdded(m) => {
                if p.role == Role::Publisher && m.kind == MediaKind::Video {
                    p.video_mid = Some(m.mid);
                }
                let sends = matches!(m.direction, Direction::SendOnly | Direction::SendRecv);
                let wanted = !(p.audio_only && m.kind == MediaKind::Video);
                if p.role == Role::Subscriber && sends && wanted {
                    p.sends.push(Send {
                        mid: m.mid,
                        kind: m.kind,
                        epoch: 0,
                        pt: None,
                        synced: false,
                        seq_delta: 0,
                        ts_delta: 0,
                        last_seq: 0,
                        last_time: 0,
                        started: false,
                    });
                }
            }
            Event::RtpPacket(pkt) if p.role == Role::Publisher => {
                let pt = pkt.header.payload_type;
                let Some(spec) = p
                    .rtc
                    .codec_config()
                    .find(|c| c.pt() == pt)
                    .map(|c| c.spec())
                else {
                    return;
                };
                let kind = spec.codec.kind();
                if !matches!(kind, MediaKind::Video | MediaKind::Audio) {
                    return;
                }
                self.stats.packets_in += 1;
                let room = p.room.clone();
                let epoch = self.rooms.get(&room).map(|r| r.epoch).unwrap_or_default();
                let keyframe = kind == MediaKind::Video && starts_keyframe(&spec, &pkt.payload);
                let audio_codec = match spec.codec {
                    Codec::Opus => Some(SourceCodec::Opus),
                    Codec::PCMU => Some(SourceCodec::Pcmu),
                    Codec::PCMA => Some(SourceCodec::Pcma),
                    _ => None,
                };
                if let Some(codec) = audio_codec
                    && let Some(r) = self.rooms.get_mut(&room)
                {
                    let time_ms = r.clock.millis(id, true, pkt.time, pkt.timestamp);
                    self.out.push_back(Output::Event(SfuEvent::Audio {
                        room: room.clone(),
                        time_ms,
                        codec,
                        payload: pkt.payload.clone(),
                    }));
                }
                if spec.codec == Codec::H264
                    && let Some(r) = self.rooms.get_mut(&room)
                    && let Some(au) = r.depacketizer.push(
                        *pkt.seq_no as u16,
                        pkt.header.timestamp,
                        pkt.header.marker,
                        &pkt.payload,
                    )
                {
                    let au: Arc<[u8]> = au.into();
                    let is_key = camgate_protocols::h264::access_unit_is_keyframe(&au);
                    if is_key {
                        r.keyframe = Some((now, au.clone()));
                    }
                    let time_ms = r.clock.millis(id, false, pkt.time, pkt.timestamp);
                    self.out.push_back(Output::Event(SfuEvent::AccessUnit {
                        room: room.clone(),
                        time_ms,
                        keyframe: is_key,
                        access_unit: au,
                    }));
                }
                let fwd = Forward {
                    kind,
                    spec: &spec,
                    epoch,
                    seq: *pkt.seq_no,
                    time: pkt.header.timestamp,
                    marker: pkt.header.marker,
                    keyframe,
                    payload: &pkt.payload,
                };
                self.forward(now, &room, &fwd);
                self.mark_unflushed(now, &room);
            }
            Event::KeyframeRequest(_) if p.role == Role::Subscriber => {
                let room = p.room.clone();
                self.request_keyframe(now, &room);
            }
            Event::ChannelOpen(ch, label) => {
                debug!(peer = %id, label, "data channel open");
                p.channel = Some(ch);
            }
            Event::ChannelClose(ch) if p.channel == Some(ch) => {
                p.channel = None;
            }
            Event::ChannelData(data) => {
                let room = p.room.clone();
                let from = p.identity.clone();
                let members = self
                    .rooms
                    .get(&room)
                    .map(|r| r.members.clone())
                    .unwrap_or_default();
                for other in members.into_iter().filter(|m| *m != id) {
                    if let Some(o) = self.peers.get_mut(&other)
                        && let Some(ch) = o.channel
                        && let Some(mut channel) = o.rtc.channel(ch)
                    {
                        let _ = channel.write(data.binary, &data.data);
                    }
                    self.drive(other, now);
                }
                self.out.push_back(Output::Event(SfuEvent::Data {
                    room,
                    from,
                    payload: data.data,
                    binary: data.binary,
                }));
            }
            _ => {}
        }
    }

    /// Writes one packet to every subscriber of a room (not yet flushed).
    fn forward(&mut self, now: Instant, room: &str, fwd: &Forward<'_>) {
        let Some(r) = self.rooms.get(room) else {
            return;
        };
        let mut wants_keyframe = false;
        for sub in &r.subscribers {
            let Some(p) = self.peers.get_mut(sub) else {
                continue;
            };
            if !p.connected {
                continue;
            }
            match write_to(p, now, fwd) {
                WriteResult::Written => self.stats.packets_out += 1,
                WriteResult::WaitingKeyframe => wants_keyframe = true,
                WriteResult::Skipped => {}
            }
        }
        if wants_keyframe {
            self.request_keyframe(now, room);
        }
    }

    /// Remembers that `room` has media to send at the next poll.
    fn mark_unflushed(&mut self, now: Instant, room: &str) {
        self.unflushed_at = Some(now);
        if !self.unflushed.iter().any(|r| r == room) {
            self.unflushed.push(room.to_owned());
        }
    }

    /// Lets every subscriber of a room send what was written to it.
    fn flush_room(&mut self, now: Instant, room: &str) {
        let subs = match self.rooms.get(room) {
            Some(r) => r.subscribers.clone(),
            None => return,
        };
        for id in subs {
            if let Some(p) = self.peers.get_mut(&id)
                && p.rtc.handle_input(Input::Timeout(now)).is_err()
            {
                p.rtc.disconnect();
            }
            self.drive(id, now);
        }
    }

    fn request_keyframe(&mut self, now: Instant, room: &str) {
        let Some(r) = self.rooms.get_mut(room) else {
            return;
        };
        if r.last_keyframe_request
            .is_some_and(|t| now.duration_since(t) < KEYFRAME_REQUEST_INTERVAL)
        {
            return;
        }
        r.last_keyframe_request = Some(now);
        match &r.source {
            Some(Source::External(_)) => {
                self.out.push_back(Output::Event(SfuEvent::KeyframeWanted {
                    room: room.to_owned(),
                }));
            }
            Some(Source::Peer(pid)) => {
                let pid = *pid;
                if let Some(p) = self.peers.get_mut(&pid)
                    && let Some(mid) = p.video_mid
                {
                    let mut api = p.rtc.direct_api();
                    if let Some(rx) = api.stream_rx_by_mid(mid, None) {
                        rx.request_keyframe(KeyframeRequestKind::Pli);
                    }
                    self.drive(pid, now);
                }
            }
            None => {}
        }
    }

    fn remove_peer(&mut self, id: PeerId, _now: Instant) {
        let Some(p) = self.peers.remove(&id) else {
            return;
        };
        self.by_ufrag.remove(&p.ufrag);
        for a in &p.addrs {
            if self.by_addr.get(a) == Some(&id) {
                self.by_addr.remove(a);
            }
        }
        if let Some(r) = self.rooms.get_mut(&p.room) {
            r.members.retain(|m| *m != id);
            let was_sub = r.subscribers.len();
            r.subscribers.retain(|m| *m != id);
            if matches!(r.source, Some(Source::Peer(s)) if s == id) {
                r.source = None;
                r.keyframe = None;
            }
            if was_sub != r.subscribers.len() {
                self.subscribers_changed(&p.room);
            }
        }
        info!(peer = %id, room = %p.room, role = ?p.role, "peer closed");
        self.out.push_back(Output::Event(SfuEvent::Closed {
            peer: id,
            room: p.room.clone(),
            role: p.role,
            identity: p.identity,
        }));
        self.gc_room(&p.room);
    }

    fn subscribers_changed(&mut self, room: &str) {
        let Some(r) = self.rooms.get(room) else {
            return;
        };
        let total = r.subscribers.len();
        let visible = r
            .subscribers
            .iter()
            .filter(|s| self.peers.get(s).is_some_and(|p| !p.hidden))
            .count();
        self.out.push_back(Output::Event(SfuEvent::Subscribers {
            room: room.to_owned(),
            total,
            visible,
        }));
    }

    fn gc_room(&mut self, room: &str) {
        if self
            .rooms
            .get(room)
            .is_some_and(|r| r.source.is_none() && r.members.is_empty())
        {
            self.rooms.remove(room);
        }
    }
}

enum WriteResult {
    Written,
    WaitingKeyframe,
    Skipped,
}

/// Writes one forwarded packet to one subscriber, rewriting payload type,
/// sequence number and timestamp into the subscriber's own numbering.
fn write_to(p: &mut Peer, now: Instant, fwd: &Forward<'_>) -> WriteResult {
    let Some(send) = p.sends.iter_mut().find(|s| s.kind == fwd.kind) else {
        return WriteResult::Skipped;
    };
    if send.epoch != fwd.epoch {
        send.epoch = fwd.epoch;
        send.synced = false;
        send.pt = select_pt(&p.rtc, send.mid, fwd.spec);
        if send.pt.is_none() {
            warn!(room = %p.room, codec = ?fwd.spec.codec, "subscriber cannot receive this codec");
        }
    }
    let Some(pt) = send.pt else {
        return WriteResult::Skipped;
    };
    let first_write = !send.started;
    if !send.synced {
        if fwd.kind == MediaKind::Video && !fwd.keyframe {
            return WriteResult::WaitingKeyframe;
        }
        // Continue the subscriber's own numbering across source changes so
        // its jitter buffer never sees a jump backwards; start low so the
        // SRTP rollover counter starts at 0.
        let next_seq = if send.started {
            send.last_seq + 1
        } else {
            1000
        };
        send.seq_delta = next_seq as i64 - fwd.seq as i64;
        send.ts_delta = if send.started {
            send.last_time.wrapping_add(3000).wrapping_sub(fwd.time)
        } else {
            0
        };
        send.synced = true;
        send.started = true;
    }
    let seq = fwd.seq as i64 + send.seq_delta;
    if seq < 0 {
        return WriteResult::Skipped;
    }
    let seq = seq as u64;
    let time = fwd.time.wrapping_add(send.ts_delta);
    if seq > send.last_seq {
        send.last_seq = seq;
        send.last_time = time;
    }
    let mid = send.mid;
    let mut api = p.rtc.direct_api();
    let Some(tx) = api.stream_tx_by_mid(mid, None) else {
        return WriteResult::Skipped;
    };
    if first_write && fwd.kind == MediaKind::Video {
        // Keep one second for NACKs instead of str0m's three: a resend
        // older than that arrives after the jitter buffer gave up, and the
        // cache is most of a subscriber's memory. Resends are not capped by
        // ratio: on a jittery link receivers NACK reordered packets too, the
        // 15 % cap then dropped the real repairs, and a viewer behind 5 %
        // loss with 80 ms jitter froze for seconds (hardware-tests
        // faults.rs: 21 of 180 frames decoded in Chromium, now all). The
        // cache's size and age bound what can be resent.
        tx.set_rtx_cache(RTX_CACHE_PACKETS, RTX_CACHE_AGE, None);
    }
    tx.write_rtp(
        RtpWrite::new(pt, seq.into(), time, now, fwd.payload.clone())
            .marker(fwd.marker)
            .nackable(fwd.kind == MediaKind::Video),
    );
    WriteResult::Written
}

/// Video packets kept per subscriber for retransmission, and for how long.
const RTX_CACHE_PACKETS: usize = 512;
const RTX_CACHE_AGE: Duration = Duration::from_secs(1);

/// The subscriber's payload type for a source codec: same codec, for H.264
/// the same packetization mode, preferring the same profile.
fn select_pt(rtc: &Rtc, mid: Mid, spec: &CodecSpec) -> Option<Pt> {
    let media = rtc.media(mid)?;
    let config = rtc.codec_config();
    let mut best: Option<(u8, Pt)> = None;
    for pt in media.remote_pts() {
        let Some(params) = config.find(|c| c.pt() == *pt) else {
            continue;
        };
        let s = params.spec();
        if s.codec != spec.codec || s.clock_rate != spec.clock_rate {
            continue;
        }
        let mut score = 1;
        if s.codec == Codec::H264 {
            let mode = |f: &FormatParams| f.packetization_mode.unwrap_or(0);
            if mode(&s.format) != mode(&spec.format) {
                continue;
            }
            if s.format.profile_level_id == spec.format.profile_level_id {
                score = 3;
            } else if profile_of(s.format.profile_level_id)
                == profile_of(spec.format.profile_level_id)
            {
                score = 2;
            }
        }
        if best.is_none_or(|(b, _)| score > b) {
            best = Some((score, *pt));
        }
    }
    best.map(|(_, pt)| pt)
}

/// `profile_idc` and the constraint flags, without the level.
fn profile_of(profile_level_id: Option<u32>) -> Option<u32> {
    profile_level_id.map(|p| p >> 8)
}

/// Whether a video payload begins a keyframe, for the codecs the SFU routes.
fn starts_keyframe(spec: &CodecSpec, payload: &[u8]) -> bool {
    match spec.codec {
        Codec::H264 => camgate_protocols::h264::payload_starts_keyframe(payload),
        Codec::Vp8 => vp8_starts_keyframe(payload),
        _ => true,
    }
}

/// VP8 (RFC 7741): the payload descriptor's S bit with partition 0, then the
/// inverse key frame bit of the VP8 frame header.
fn vp8_starts_keyframe(payload: &[u8]) -> bool {
    let Some(&b0) = payload.first() else {
        return false;
    };
    let start = b0 & 0x10 != 0 && b0 & 0x07 == 0;
    if !start {
        return false;
    }
    let mut i = 1;
    if b0 & 0x80 != 0 {
        let Some(&x) = payload.get(1) else {
            return false;
        };
        i += 1;
        if x & 0x80 != 0 {
            // PictureID: one or two bytes.
            match payload.get(i) {
                Some(b) if b & 0x80 != 0 => i += 2,
                Some(_) => i += 1,
                None => return false,
            }
        }
        if x & 0x40 != 0 {
            i += 1;
        }
        if x & 0x30 != 0 {
            i += 1;
        }
    }
    payload.get(i).is_some_and(|h| h & 0x01 == 0)
}

/// The parser's message without its internal positions (which are memory
/// addresses, not offsets), on one line.
fn parse_error_text(raw: &str) -> String {
    raw.lines()
        .map(str::trim)
        .filter(|l| !l.is_empty() && !l.contains("PointerOffset") && *l != "sdp line")
        .collect::<Vec<_>>()
        .join("; ")
}

fn rand_u64() -> u64 {
    use std::hash::{BuildHasher, Hasher};
    let mut h = std::collections::hash_map::RandomState::new().build_hasher();
    h.write_u64(0x5eed);
    h.finish()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn vp8_keyframe_bits() {
        // S=1, PID=0, no extensions, frame header P bit 0 → keyframe.
        assert!(vp8_starts_keyframe(&[0x10, 0x00]));
        assert!(!vp8_starts_keyframe(&[0x10, 0x01]));
        assert!(!vp8_starts_keyframe(&[0x00, 0x00]));
        // X=1, I=1 with a two-byte picture id.
        assert!(vp8_starts_keyframe(&[0x90, 0x80, 0x81, 0x02, 0x00]));
        assert!(!vp8_starts_keyframe(&[0x90, 0x80]));
        assert!(!vp8_starts_keyframe(&[]));
    }

    #[test]
    fn profiles() {
        assert_eq!(profile_of(Some(0x42e01f)), Some(0x42e0));
        assert_eq!(profile_of(None), None);
    }

    #[test]
    fn a_publishers_tracks_share_one_timeline_whatever_their_rtp_offsets() {
        use str0m::media::MediaTime;
        let t0 = Instant::now();
        let ms = Duration::from_millis;
        let mut clock = MediaClock::default();
        let p = PeerId(1);
        // Audio first (48 kHz, random offset), video 30 ms later (90 kHz).
        let a = |n: u64| MediaTime::new(3_000_000_000 + n, Frequency::FORTY_EIGHT_KHZ);
        let v = |n: u64| MediaTime::new(1_234_567 + n, Frequency::NINETY_KHZ);
        assert_eq!(clock.millis(p, true, a(0), t0), 0);
        assert_eq!(clock.millis(p, false, v(0), t0 + ms(30)), 30);
        // One second on: each track by its own clock, arrival jitter ignored.
        assert_eq!(clock.millis(p, true, a(48_000), t0 + ms(1_080)), 1_000);
        assert_eq!(clock.millis(p, false, v(90_000), t0 + ms(990)), 1_030);
        // A packet from before the anchor (reordered) does not go negative.
        assert_eq!(clock.millis(p, true, a(0), t0), 0);
        // A new publisher starts a new timeline.
        assert_eq!(clock.millis(PeerId(2), false, v(500), t0 + ms(5_000)), 0);
    }
}
