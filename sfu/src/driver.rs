//! The tokio driver: one UDP socket for every peer, one task owning the
//! [`Sfu`] engine.
//!
//! The task waits on three things — a datagram, a command from the
//! application, the engine's next timeout — feeds whichever comes first into
//! the engine, and drains its output. Commands carry a reply channel, so the
//! HTTP handlers (WHIP/WHEP) simply await the answer SDP.
//!
//! Sending: the engine emits each subscriber's share of a burst as
//! consecutive datagrams to one address, usually of one size (a video
//! frame's packets); [`Batch`] joins such runs into one `sendmsg` with UDP
//! GSO (`UDP_SEGMENT`, through quinn-udp), so the kernel routes and builds
//! one buffer per run instead of one per packet. Without GSO support the
//! batch degrades to one datagram per call.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};

use quinn_udp::{Transmit as UdpTransmit, UdpSocketState};
use tokio::io::Interest;
use tokio::net::UdpSocket;
use tokio::sync::{mpsc, oneshot};
use tracing::{debug, warn};

use crate::core::{
    Join, Joined, Output, PeerId, Sfu, SfuError, SfuEvent, SfuStats, SourceCodec, SourcePacket,
};

/// Largest datagram read from the socket.
const MAX_DATAGRAM: usize = 2048;

#[derive(Debug)]
enum Command {
    Join(Join, oneshot::Sender<Result<Joined, SfuError>>),
    Candidates(PeerId, Vec<String>, oneshot::Sender<Result<(), SfuError>>),
    Close(PeerId, oneshot::Sender<Result<(), SfuError>>),
    CloseRoom(String),
    Attach(String, SourceCodec, oneshot::Sender<Result<(), SfuError>>),
    Detach(String),
    Source(String, Vec<SourcePacket>),
    SourceAudio(String, Vec<SourcePacket>),
    Data(String, Vec<u8>, bool),
    Stats(oneshot::Sender<SfuStats>),
    Keyframe(
        String,
        Duration,
        oneshot::Sender<Option<(Duration, Arc<[u8]>)>>,
    ),
}

/// The SFU stopped (the runtime is shutting down).
#[derive(Debug, thiserror::Error)]
#[error("the SFU is not running")]
pub struct Stopped;

/// A cloneable handle to a running SFU.
#[derive(Clone, Debug)]
pub struct SfuHandle {
    tx: mpsc::Sender<Command>,
    local: SocketAddr,
}

impl SfuHandle {
    /// Binds `bind`, advertises `advertise` (the bound port is used when an
    /// advertised address has port 0) and starts the engine task. Events go
    /// to `events`.
    pub async fn start(
        bind: SocketAddr,
        advertise: Vec<std::net::IpAddr>,
        events: mpsc::UnboundedSender<SfuEvent>,
    ) -> std::io::Result<SfuHandle> {
        let socket = UdpSocket::bind(bind).await?;
        let local = socket.local_addr()?;
        let state = UdpSocketState::new((&socket).into())?;
        let mut candidates: Vec<SocketAddr> = advertise
            .into_iter()
            .map(|ip| SocketAddr::new(ip, local.port()))
            .collect();
        if candidates.is_empty() {
            candidates.push(local);
        }
        let (tx, rx) = mpsc::channel(1024);
        let sfu = Sfu::new(candidates.clone());
        let batch = Batch::new(state);
        tokio::spawn(run(Arc::new(socket), batch, sfu, candidates[0], rx, events));
        Ok(SfuHandle { tx, local })
    }

    /// The bound UDP address.
    pub fn local_addr(&self) -> SocketAddr {
        self.local
    }

    async fn ask<T>(&self, make: impl FnOnce(oneshot::Sender<T>) -> Command) -> Result<T, Stopped> {
        let (reply, rx) = oneshot::channel();
        self.tx.send(make(reply)).await.map_err(|_| Stopped)?;
        rx.await.map_err(|_| Stopped)
    }

    /// Adds a peer from its offer.
    pub async fn join(&self, join: Join) -> Result<Result<Joined, SfuError>, Stopped> {
        self.ask(|r| Command::Join(join, r)).await
    }

    /// Adds trickled candidates to a peer.
    pub async fn add_candidates(
        &self,
        peer: PeerId,
        candidates: Vec<String>,
    ) -> Result<Result<(), SfuError>, Stopped> {
        self.ask(|r| Command::Candidates(peer, candidates, r)).await
    }

    /// Removes a peer.
    pub async fn close(&self, peer: PeerId) -> Result<Result<(), SfuError>, Stopped> {
        self.ask(|r| Command::Close(peer, r)).await
    }

    /// Closes every peer of a room.
    pub async fn close_room(&self, room: &str) {
        let _ = self.tx.send(Command::CloseRoom(room.to_owned())).await;
    }

    /// Attaches an external source as the room's publisher.
    pub async fn attach_source(
        &self,
        room: &str,
        codec: SourceCodec,
    ) -> Result<Result<(), SfuError>, Stopped> {
        self.ask(|r| Command::Attach(room.to_owned(), codec, r))
            .await
    }

    /// Detaches a room's external source.
    pub async fn detach_source(&self, room: &str) {
        let _ = self.tx.send(Command::Detach(room.to_owned())).await;
    }

    /// Hands an external source's packets (one frame, typically) to the SFU.
    pub async fn write_source(
        &self,
        room: &str,
        packets: Vec<SourcePacket>,
    ) -> Result<(), Stopped> {
        self.tx
            .send(Command::Source(room.to_owned(), packets))
            .await
            .map_err(|_| Stopped)
    }

    /// Feeds Opus packets of a room's external source's audio track.
    pub async fn write_source_audio(
        &self,
        room: &str,
        packets: Vec<SourcePacket>,
    ) -> Result<(), Stopped> {
        self.tx
            .send(Command::SourceAudio(room.to_owned(), packets))
            .await
            .map_err(|_| Stopped)
    }

    /// Sends a data channel message to a room.
    pub async fn send_data(&self, room: &str, payload: Vec<u8>, binary: bool) {
        let _ = self
            .tx
            .send(Command::Data(room.to_owned(), payload, binary))
            .await;
    }

    /// The latest H.264 keyframe of a room's WebRTC publisher and its age;
    /// asks the publisher for a new one when it is missing or older than
    /// `max_age` (see [`Sfu::latest_keyframe`]).
    pub async fn keyframe(
        &self,
        room: &str,
        max_age: Duration,
    ) -> Result<Option<(Duration, Arc<[u8]>)>, Stopped> {
        self.ask(|tx| Command::Keyframe(room.to_owned(), max_age, tx))
            .await
    }

    /// Current counters.
    pub async fn stats(&self) -> Result<SfuStats, Stopped> {
        self.ask(Command::Stats).await
    }
}

/// Datagrams taken from the socket in one go after the first.
const RECV_BURST: usize = 32;

async fn run(
    socket: Arc<UdpSocket>,
    mut batch: Batch,
    mut sfu: Sfu,
    destination: SocketAddr,
    mut rx: mpsc::Receiver<Command>,
    events: mpsc::UnboundedSender<SfuEvent>,
) {
    let mut buf = vec![0u8; MAX_DATAGRAM];
    loop {
        let deadline = loop {
            match sfu.poll_output() {
                Output::Transmit(t) => {
                    if !batch.push(t.destination, &t.contents) {
                        batch.flush(&socket).await;
                        batch.push(t.destination, &t.contents);
                    }
                }
                Output::Event(e) => {
                    let _ = events.send(e);
                }
                Output::Timeout(t) => {
                    batch.flush(&socket).await;
                    break t;
                }
            }
        };
        tokio::select! {
            biased;
            got = socket.recv_from(&mut buf) => match got {
                Ok((n, source)) => {
                    let now = Instant::now();
                    sfu.handle_datagram(now, source, destination, &buf[..n]);
                    // Take the rest of a burst (a video frame is several
                    // packets) before polling: the SFU then sends each
                    // subscriber its share in one run.
                    for _ in 0..RECV_BURST {
                        match socket.try_recv_from(&mut buf) {
                            Ok((n, source)) => {
                                sfu.handle_datagram(now, source, destination, &buf[..n])
                            }
                            Err(_) => break,
                        }
                    }
                }
                Err(e) => debug!(error = %e, "udp receive error"),
            },
            cmd = rx.recv() => match cmd {
                Some(cmd) => handle(&mut sfu, cmd),
                None => break,
            },
            _ = tokio::time::sleep_until(deadline.into()) => sfu.handle_timeout(Instant::now()),
        }
    }
    warn!("SFU stopped");
}

/// Consecutive datagrams to one address, all of one size except possibly a
/// shorter last one: what one GSO `sendmsg` can carry.
struct Batch {
    state: UdpSocketState,
    max_segments: usize,
    destination: Option<SocketAddr>,
    segment: usize,
    count: usize,
    /// A shorter datagram ended the run.
    closed: bool,
    buf: Vec<u8>,
}

/// Largest GSO buffer (the UDP length limit).
const MAX_GSO_BYTES: usize = 65_000;

impl Batch {
    fn new(state: UdpSocketState) -> Batch {
        let max_segments = state.max_gso_segments().max(1);
        Batch {
            state,
            max_segments,
            destination: None,
            segment: 0,
            count: 0,
            closed: false,
            buf: Vec::with_capacity(MAX_GSO_BYTES),
        }
    }

    /// Adds a datagram; `false` when it does not fit this run (flush first).
    fn push(&mut self, to: SocketAddr, data: &[u8]) -> bool {
        match self.destination {
            None => {
                self.destination = Some(to);
                self.segment = data.len();
            }
            Some(d) => {
                let fits = d == to
                    && !self.closed
                    && data.len() <= self.segment
                    && self.count < self.max_segments
                    && self.buf.len() + data.len() <= MAX_GSO_BYTES;
                if !fits {
                    return false;
                }
                self.closed = data.len() < self.segment;
            }
        }
        self.buf.extend_from_slice(data);
        self.count += 1;
        true
    }

    /// Sends the run (waiting for socket space if needed) and empties it.
    async fn flush(&mut self, socket: &UdpSocket) {
        let Some(destination) = self.destination.take() else {
            return;
        };
        let transmit = UdpTransmit {
            destination,
            ecn: None,
            contents: &self.buf,
            segment_size: (self.count > 1).then_some(self.segment),
            src_ip: None,
        };
        loop {
            match socket.try_io(Interest::WRITABLE, || {
                self.state.try_send(socket.into(), &transmit)
            }) {
                Ok(()) => break,
                Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => {
                    if socket.writable().await.is_err() {
                        break;
                    }
                }
                Err(e) => {
                    debug!(to = %destination, error = %e, "send failed");
                    break;
                }
            }
        }
        self.buf.clear();
        self.count = 0;
        self.closed = false;
    }
}

fn handle(sfu: &mut Sfu, cmd: Command) {
    let now = Instant::now();
    match cmd {
        Command::Join(join, reply) => {
            let _ = reply.send(sfu.join(now, join));
        }
        Command::Candidates(peer, c, reply) => {
            let _ = reply.send(sfu.add_remote_candidates(now, peer, &c));
        }
        Command::Close(peer, reply) => {
            let _ = reply.send(sfu.close(now, peer));
        }
        Command::CloseRoom(room) => sfu.close_room(now, &room),
        Command::Attach(room, codec, reply) => {
            let _ = reply.send(sfu.attach_source(&room, codec));
        }
        Command::Detach(room) => sfu.detach_source(&room),
        Command::Source(room, packets) => sfu.write_source(now, &room, &packets),
        Command::SourceAudio(room, packets) => sfu.write_source_audio(now, &room, &packets),
        Command::Data(room, payload, binary) => sfu.send_data(now, &room, &payload, binary),
        Command::Stats(reply) => {
            let _ = reply.send(sfu.stats());
        }
        Command::Keyframe(room, max_age, reply) => {
            let _ = reply.send(sfu.latest_keyframe(now, &room, max_age));
        }
    }
}
