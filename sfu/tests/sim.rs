//! The SFU core against real str0m peers, in memory, on a virtual clock.
//!
//! Each step drains every party's output, delivers datagrams at once (a
//! zero-latency network, optionally lossy), then jumps time to the earliest
//! timeout or the publisher's next frame. No sockets, no sleeping: the whole
//! exchange (ICE, DTLS, SRTP, RTCP) runs in milliseconds and is repeatable.

use std::net::SocketAddr;
use std::time::{Duration, Instant};

use camgate_protocols::h264::{NAL_IDR, nal_type, split_annex_b};
use camgate_sfu::core::{Join, Output, Role, Sfu, SfuEvent, SourceCodec, SourcePacket};
use str0m::change::{SdpAnswer, SdpPendingOffer};
use str0m::format::Codec;
use str0m::media::{Direction, Frequency, MediaKind, MediaTime, Mid};
use str0m::net::{Protocol, Receive};
use str0m::{Candidate, Event, Input, Output as RtcOutput, Rtc};

const SFU_ADDR: &str = "10.0.0.1:8189";

struct Client {
    addr: SocketAddr,
    rtc: Rtc,
    deadline: Instant,
    mid: Option<Mid>,
    connected: bool,
    keyframe_requests: usize,
    /// Access units received (frame mode reassembles them).
    received: Vec<(Instant, Vec<u8>)>,
}

impl Client {
    fn new(now: Instant, port: u16) -> Client {
        let addr: SocketAddr = format!("10.0.0.2:{port}").parse().expect("addr");
        let mut rtc = Rtc::builder()
            .clear_codecs()
            .enable_h264(true)
            .enable_opus(true, false)
            .build(now);
        rtc.add_local_candidate(Candidate::host(addr, "udp").expect("candidate"));
        Client {
            addr,
            rtc,
            deadline: now,
            mid: None,
            connected: false,
            keyframe_requests: 0,
            received: Vec::new(),
        }
    }

    /// An offer with one video m-line in `dir`.
    fn offer(&mut self, dir: Direction) -> (String, SdpPendingOffer) {
        let mut api = self.rtc.sdp_api();
        let mid = api.add_media(MediaKind::Video, dir, None, None, None);
        self.mid = Some(mid);
        let (offer, pending) = api.apply().expect("an offer");
        (offer.to_sdp_string(), pending)
    }

    fn accept(&mut self, pending: SdpPendingOffer, answer: &str) {
        let answer = SdpAnswer::from_sdp_string(answer).expect("answer parses");
        self.rtc
            .sdp_api()
            .accept_answer(pending, answer)
            .expect("answer accepted");
    }

    /// Writes one H.264 access unit (frame mode packetizes it).
    fn send_frame(&mut self, now: Instant, frame_no: u64, au: &[u8]) {
        let mid = self.mid.expect("mid");
        let Some(writer) = self.rtc.writer(mid) else {
            return;
        };
        let pt = writer
            .payload_params()
            .find(|p| {
                p.spec().codec == Codec::H264 && p.spec().format.packetization_mode == Some(1)
            })
            .map(|p| p.pt())
            .expect("h264 pt");
        let time = MediaTime::new(frame_no * 3000, Frequency::NINETY_KHZ);
        writer.write(pt, now, time, au.to_vec()).expect("write");
    }
}

/// An access unit: SPS + PPS + IDR when `key`, else a P slice. The slice
/// carries the frame number so the receiver can check order and content.
fn access_unit(frame_no: u64, key: bool) -> Vec<u8> {
    let mut au = Vec::new();
    if key {
        au.extend_from_slice(&[0, 0, 0, 1, 0x67, 0x42, 0xe0, 0x1f, 0xda, 0x02]);
        au.extend_from_slice(&[0, 0, 0, 1, 0x68, 0xce, 0x3c, 0x80]);
    }
    au.extend_from_slice(&[0, 0, 0, 1, if key { 0x65 } else { 0x41 }]);
    // The frame number as 8 nibbles (bytes 0x10..=0x1f: never a start
    // code), then 3000 bytes of a frame-specific pattern: several FU-A
    // fragments per frame.
    for shift in (0..8).rev() {
        au.push(0x10 | ((frame_no >> (shift * 4)) & 0xf) as u8);
    }
    for i in 0..3000u64 {
        au.push(((i * 7 + frame_no) % 200) as u8 + 16);
    }
    au
}

/// The frame number written by [`access_unit`] into a received frame.
fn frame_no_of(au: &[u8]) -> u64 {
    let slice = split_annex_b(au).last().expect("a slice");
    slice[1..9]
        .iter()
        .fold(0, |n, b| (n << 4) | u64::from(b & 0xf))
}

struct Net {
    now: Instant,
    sfu: Sfu,
    sfu_addr: SocketAddr,
    clients: Vec<Client>,
    events: Vec<SfuEvent>,
    /// Drop every n-th datagram from the SFU to clients (0 = no loss).
    drop_every: usize,
    sent: usize,
    garbage_sent: bool,
}

impl Net {
    fn new() -> Net {
        let sfu_addr: SocketAddr = SFU_ADDR.parse().expect("addr");
        Net {
            now: Instant::now(),
            sfu: Sfu::new(vec![sfu_addr]),
            sfu_addr,
            clients: Vec::new(),
            events: Vec::new(),
            drop_every: 0,
            sent: 0,
            garbage_sent: false,
        }
    }

    fn join(&mut self, role: Role, port: u16) -> usize {
        let mut c = Client::new(self.now, port);
        let dir = match role {
            Role::Publisher => Direction::SendOnly,
            Role::Subscriber => Direction::RecvOnly,
        };
        let (offer, pending) = c.offer(dir);
        let joined = self
            .sfu
            .join(
                self.now,
                Join {
                    room: "live-sim".into(),
                    identity: format!("c{port}"),
                    role,
                    hidden: false,
                    audio_only: false,
                    offer,
                },
            )
            .expect("joined");
        c.accept(pending, &joined.answer);
        self.clients.push(c);
        self.clients.len() - 1
    }

    /// Drains everything at the current time.
    fn settle(&mut self) {
        for _ in 0..10_000 {
            let mut busy = false;
            loop {
                match self.sfu.poll_output() {
                    Output::Transmit(t) => {
                        busy = true;
                        self.sent += 1;
                        if self.drop_every > 0 && self.sent.is_multiple_of(self.drop_every) {
                            continue;
                        }
                        if let Some(c) = self.clients.iter_mut().find(|c| c.addr == t.destination) {
                            let r =
                                Receive::new(Protocol::Udp, t.source, t.destination, &t.contents)
                                    .expect("datagram parses");
                            let _ = c.rtc.handle_input(Input::Receive(self.now, r));
                        }
                    }
                    Output::Event(e) => self.events.push(e),
                    Output::Timeout(_) => break,
                }
            }
            for i in 0..self.clients.len() {
                loop {
                    let c = &mut self.clients[i];
                    match c.rtc.poll_output().expect("client output") {
                        RtcOutput::Transmit(t) => {
                            busy = true;
                            self.sfu.handle_datagram(
                                self.now,
                                t.source,
                                t.destination,
                                &t.contents,
                            );
                        }
                        RtcOutput::Timeout(t) => {
                            c.deadline = t;
                            break;
                        }
                        RtcOutput::Event(e) => match e {
                            Event::Connected => c.connected = true,
                            Event::KeyframeRequest(_) => c.keyframe_requests += 1,
                            Event::MediaData(d) => c.received.push((self.now, d.data.to_vec())),
                            _ => {}
                        },
                    }
                }
            }
            if !self.garbage_sent {
                // Garbage from an unknown address must be dropped quietly.
                self.garbage_sent = true;
                let from: SocketAddr = "10.9.9.9:1".parse().expect("addr");
                self.sfu
                    .handle_datagram(self.now, from, self.sfu_addr, b"\x00\x01garbage");
                self.sfu.handle_datagram(self.now, from, self.sfu_addr, &[]);
                self.sfu
                    .handle_datagram(self.now, from, self.sfu_addr, &[0x80; 1500]);
            }
            if !busy {
                return;
            }
        }
        panic!("network never settled");
    }

    /// Advances virtual time to `until`, stopping at every timeout.
    fn run_until(&mut self, until: Instant) {
        loop {
            self.settle();
            let sfu_next = match self.sfu.poll_output() {
                Output::Timeout(t) => t,
                _ => self.now,
            };
            let next = self
                .clients
                .iter()
                .map(|c| c.deadline)
                .chain([sfu_next, until])
                .filter(|t| *t > self.now)
                .min()
                .unwrap_or(until)
                .min(until);
            self.now = next
                .max(self.now + Duration::from_micros(100))
                .min(until.max(self.now));
            self.sfu.handle_timeout(self.now);
            for c in &mut self.clients {
                if c.deadline <= self.now {
                    let _ = c.rtc.handle_input(Input::Timeout(self.now));
                }
            }
            if self.now >= until {
                self.settle();
                return;
            }
        }
    }

    /// Runs until `pred` holds or `limit` of virtual time passes.
    fn run_while(&mut self, limit: Duration, mut pred: impl FnMut(&Net) -> bool) -> bool {
        let end = self.now + limit;
        while self.now < end {
            if pred(self) {
                return true;
            }
            let step = self.now + Duration::from_millis(5);
            self.run_until(step);
        }
        pred(self)
    }
}

fn first_nal_type(au: &[u8]) -> Option<u8> {
    split_annex_b(au)
        .map(|n| nal_type(n[0]))
        .find(|t| *t == NAL_IDR || *t == 1)
}

#[test]
fn publisher_to_late_subscriber_starts_on_a_keyframe_and_forwards_bytes_unchanged() {
    let mut net = Net::new();
    let pubi = net.join(Role::Publisher, 5000);
    assert!(net.run_while(Duration::from_secs(5), |n| n.clients[pubi].connected));
    assert!(net.events.iter().any(|e| matches!(
        e,
        SfuEvent::Connected {
            role: Role::Publisher,
            ..
        }
    )));

    // The publisher streams 30 fps with a keyframe only every 100 frames,
    // unless asked for one.
    let mut frame_no = 0u64;
    let mut send = |net: &mut Net, frames: u64| {
        for _ in 0..frames {
            let c = &mut net.clients[pubi];
            let key = frame_no.is_multiple_of(100) || c.keyframe_requests > 0;
            c.keyframe_requests = 0;
            let now = net.now;
            net.clients[pubi].send_frame(now, frame_no, &access_unit(frame_no, key));
            frame_no += 1;
            let next = net.now + Duration::from_millis(33);
            net.run_until(next);
        }
    };
    send(&mut net, 20);

    // A subscriber joins mid-GOP: it must wait for a keyframe, which the
    // SFU asks the publisher for (PLI) instead of waiting 80 frames.
    let joined_at = net.now;
    let subi = net.join(Role::Subscriber, 6000);
    send(&mut net, 30);
    let sub = &net.clients[subi];
    assert!(sub.connected, "subscriber connected");
    assert!(
        sub.received.len() >= 20,
        "got {} frames",
        sub.received.len()
    );
    assert_eq!(
        first_nal_type(&sub.received[0].1),
        Some(NAL_IDR),
        "starts on a keyframe"
    );
    let first_frame_ms = sub.received[0].0.duration_since(joined_at).as_millis();
    assert!(
        first_frame_ms < 500,
        "first frame after {first_frame_ms} ms (virtual)"
    );
    // Payloads pass through unchanged: each received frame is, byte for
    // byte, the access unit sent with its number (SPS/PPS/IDR or P slice).
    let mut tags = Vec::new();
    for (_, au) in &sub.received {
        let n = frame_no_of(au);
        let key = first_nal_type(au) == Some(NAL_IDR);
        let want: Vec<Vec<u8>> = split_annex_b(&access_unit(n, key))
            .map(<[u8]>::to_vec)
            .collect();
        let got: Vec<Vec<u8>> = split_annex_b(au).map(<[u8]>::to_vec).collect();
        assert_eq!(got, want, "frame {n} differs");
        tags.push(n);
    }
    // Frame numbers strictly increase.
    assert!(tags.windows(2).all(|w| w[0] < w[1]), "{tags:?}");
    let stats = net.sfu.stats();
    assert!(
        stats.packets_out > 0 && stats.unmatched_datagrams >= 3,
        "{stats:?}"
    );
    eprintln!("first frame {first_frame_ms} ms after join (virtual); {stats:?}");
}

#[test]
fn nack_repairs_loss_toward_a_subscriber() {
    let mut net = Net::new();
    let pubi = net.join(Role::Publisher, 5000);
    assert!(net.run_while(Duration::from_secs(5), |n| n.clients[pubi].connected));
    let subi = net.join(Role::Subscriber, 6000);
    assert!(net.run_while(Duration::from_secs(5), |n| n.clients[subi].connected));
    // Lose every 7th datagram from the SFU from now on.
    net.drop_every = 7;
    let mut key_next = true;
    for frame_no in 0..90u64 {
        let requested = net.clients[pubi].keyframe_requests > 0;
        net.clients[pubi].keyframe_requests = 0;
        let now = net.now;
        let au = access_unit(frame_no, key_next || requested);
        key_next = false;
        net.clients[pubi].send_frame(now, frame_no, &au);
        let next = net.now + Duration::from_millis(33);
        net.run_until(next);
    }
    net.drop_every = 0;
    let next = net.now + Duration::from_millis(500);
    net.run_until(next);
    let got = net.clients[subi].received.len();
    // Without retransmission about half the 3-packet frames would be lost.
    assert!(got >= 80, "only {got} of 90 frames arrived with 14 % loss");
}

#[test]
fn external_source_reaches_subscribers_and_asks_for_keyframes() {
    let mut net = Net::new();
    net.sfu
        .attach_source("live-sim", SourceCodec::H264ConstrainedBaseline)
        .expect("attach");
    let subi = net.join(Role::Subscriber, 6000);
    assert!(net.run_while(Duration::from_secs(5), |n| n.clients[subi].connected));
    assert!(
        net.events
            .iter()
            .any(|e| matches!(e, SfuEvent::KeyframeWanted { room } if room == "live-sim")),
        "a connected subscriber asks the external source for a keyframe"
    );
    let packetizer = camgate_protocols::h264::Packetizer::new(1100);
    let mut seq = 1u64;
    // A delta frame first: the subscriber must not get it.
    for (i, key) in [false, true, false, false].into_iter().enumerate() {
        let au = access_unit(i as u64, key);
        let payloads = packetizer.packetize(&au);
        let n = payloads.len();
        let packets: Vec<SourcePacket> = payloads
            .into_iter()
            .enumerate()
            .map(|(j, p)| {
                seq += 1;
                SourcePacket {
                    seq,
                    time: i as u32 * 3000,
                    marker: j + 1 == n,
                    keyframe: key && j == 0,
                    payload: p.into(),
                }
            })
            .collect();
        let now = net.now;
        net.sfu.write_source(now, "live-sim", &packets);
        let next = net.now + Duration::from_millis(33);
        net.run_until(next);
    }
    let sub = &net.clients[subi];
    assert_eq!(sub.received.len(), 3, "keyframe and the two after it");
    assert_eq!(first_nal_type(&sub.received[0].1), Some(NAL_IDR));
    assert!(net.events.iter().any(
        |e| matches!(e, SfuEvent::Subscribers { room, total: 1, visible: 1 } if room == "live-sim")
    ));
}

#[test]
fn second_publisher_is_refused_and_bad_sdp_is_an_error() {
    let mut net = Net::new();
    net.join(Role::Publisher, 5000);
    let mut c = Client::new(net.now, 5001);
    let (offer, _) = c.offer(Direction::SendOnly);
    let err = net.sfu.join(
        net.now,
        Join {
            room: "live-sim".into(),
            identity: "second".into(),
            role: Role::Publisher,
            hidden: false,
            audio_only: false,
            offer,
        },
    );
    assert!(matches!(err, Err(camgate_sfu::core::SfuError::RoomFull(_))));
    let err = net.sfu.join(
        net.now,
        Join {
            room: "live-other".into(),
            identity: "x".into(),
            role: Role::Subscriber,
            hidden: false,
            audio_only: false,
            offer: "v=0\r\nnonsense".into(),
        },
    );
    match err {
        Err(camgate_sfu::core::SfuError::InvalidSdp(m)) => {
            assert!(!m.contains("0x7f"), "no pointers in messages: {m}")
        }
        other => panic!("expected InvalidSdp, got {other:?}"),
    }
}
