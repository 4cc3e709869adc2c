//! `camgate-bench sfu`: one WHIP publisher (H.264 at a set bitrate) and a
//! growing number of WHEP subscribers, all str0m peer connections in this
//! one process, against a real camgate pinned to its own core.
//!
//! The publisher is a full str0m peer (frame mode: str0m packetizes the
//! access units). Subscribers run ICE, DTLS and RTCP through str0m but
//! count media themselves: the RTP header is not encrypted by SRTP, so a
//! subscriber reads sequence numbers straight off the datagram and never
//! decrypts the payload. That keeps the client's cost per packet far below
//! the server's (which must encrypt for every subscriber), so the figure
//! measures camgate, not the load client. Loss is counted per SSRC from
//! the sequence numbers (expected − received), with no NACKs sent, so it is
//! raw loss before any repair.
//!
//! Each step adds subscribers up to the next count, waits until they are
//! connected and receiving, then measures camgate's CPU (from /proc), the
//! packets it forwarded per second and the loss. It stops after the first
//! step with ≥ 1 % loss or when the list ends.

use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use str0m::change::{SdpAnswer, SdpPendingOffer};
use str0m::format::Codec;
use str0m::media::{Direction, Frequency, MediaKind, MediaTime, Mid};
use str0m::net::{Protocol, Receive};
use str0m::{Candidate, Event, Input, Output, Rtc};
use tokio::net::UdpSocket;

use crate::Gateway;

/// Options of the SFU benchmark.
#[derive(Debug, Clone)]
pub struct SfuArgs {
    /// Subscriber counts to step through.
    pub steps: Vec<usize>,
    /// Seconds measured per step.
    pub seconds: u64,
    /// Publisher bitrate, kbit/s.
    pub kbps: u32,
    /// Publisher frames per second.
    pub fps: u32,
    /// Seconds between publisher keyframes.
    pub gop_secs: u32,
}

/// Counters shared by all subscribers.
#[derive(Default)]
pub(crate) struct Totals {
    pub(crate) measuring: AtomicBool,
    pub(crate) received: AtomicU64,
    pub(crate) expected: AtomicU64,
    pub(crate) bytes: AtomicU64,
    pub(crate) connected: AtomicUsize,
    pub(crate) receiving: AtomicUsize,
    pub(crate) failed: AtomicUsize,
}

/// The result of one step.
#[derive(Debug, Clone, serde::Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Step {
    /// Subscribers connected.
    pub subscribers: usize,
    /// camgate's CPU, cores.
    pub camgate_cores: f64,
    /// This process's CPU (publisher + subscribers), cores.
    pub client_cores: f64,
    /// RTP packets received by all subscribers per second.
    pub packets_per_sec: f64,
    /// Media bitrate received by all subscribers, Mbit/s.
    pub mbits_per_sec: f64,
    /// Raw loss (before any repair), percent.
    pub loss_percent: f64,
    /// camgate CPU per subscriber, milli-cores.
    pub millicores_per_subscriber: f64,
    /// Subscribers one full core would hold at this CPU per subscriber.
    pub subscribers_per_core: f64,
    /// camgate RSS, MB.
    pub camgate_rss_mb: f64,
}

pub(crate) fn local_offer(rtc: &mut Rtc, dir: Direction) -> (String, SdpPendingOffer, Mid) {
    let mut api = rtc.sdp_api();
    let mid = api.add_media(MediaKind::Video, dir, None, None, None);
    let (offer, pending) = api.apply().expect("an offer");
    (offer.to_sdp_string(), pending, mid)
}

pub(crate) async fn new_peer() -> (Rtc, UdpSocket, SocketAddr) {
    let socket = UdpSocket::bind("127.0.0.1:0").await.expect("udp bind");
    let addr = socket.local_addr().expect("local addr");
    let mut rtc = Rtc::builder()
        .clear_codecs()
        .enable_h264(true)
        .build(Instant::now());
    rtc.add_local_candidate(Candidate::host(addr, "udp").expect("candidate"));
    (rtc, socket, addr)
}

/// POSTs an offer; returns the answer or the error text.
pub(crate) async fn exchange(
    gw: &Gateway,
    path: &str,
    token: Option<&str>,
    offer: &str,
) -> Result<String, String> {
    let (status, _, body) = gw.post_sdp(path, token, "application/sdp", offer).await;
    if status == 201 {
        Ok(body)
    } else {
        Err(format!("{status}: {body}"))
    }
}

/// Drains a peer's output: sends datagrams, returns the next timeout.
/// `on_event` sees every event.
pub(crate) fn drain(rtc: &mut Rtc, socket: &UdpSocket, mut on_event: impl FnMut(Event)) -> Instant {
    loop {
        match rtc.poll_output() {
            Ok(Output::Transmit(t)) => {
                let _ = socket.try_send_to(&t.contents, t.destination);
            }
            Ok(Output::Event(e)) => on_event(e),
            Ok(Output::Timeout(t)) => return t,
            Err(_) => return Instant::now() + Duration::from_millis(50),
        }
    }
}

/// An access unit of `size` bytes: SPS + PPS + IDR when `key`, else a P
/// slice; the filler never forms a start code.
fn access_unit(frame_no: u64, key: bool, size: usize) -> Vec<u8> {
    let mut au = Vec::with_capacity(size + 32);
    if key {
        au.extend_from_slice(&[0, 0, 0, 1, 0x67, 0x42, 0xe0, 0x1f, 0xda, 0x02]);
        au.extend_from_slice(&[0, 0, 0, 1, 0x68, 0xce, 0x3c, 0x80]);
    }
    au.extend_from_slice(&[0, 0, 0, 1, if key { 0x65 } else { 0x41 }]);
    let mut x = frame_no.wrapping_mul(0x9e37_79b9_7f4a_7c15) | 1;
    while au.len() < size {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        au.push((x as u8) | 0x10);
    }
    au
}

/// The publisher: WHIP, then frames at `fps` until `stop`.
async fn publisher(gw: Arc<Gateway>, args: SfuArgs, stop: Arc<AtomicBool>) {
    let token = gw.token_for("bench", true, false).await;
    let (mut rtc, socket, addr) = new_peer().await;
    let (offer, pending, mid) = local_offer(&mut rtc, Direction::SendOnly);
    let answer = exchange(&gw, "/whip/live-bench", Some(&token), &offer)
        .await
        .expect("WHIP publish");
    rtc.sdp_api()
        .accept_answer(
            pending,
            SdpAnswer::from_sdp_string(&answer).expect("answer"),
        )
        .expect("accept answer");
    let frame_bytes = (args.kbps as usize * 1000 / 8 / args.fps as usize).max(200);
    let frame_every = Duration::from_secs_f64(1.0 / args.fps as f64);
    let gop = u64::from(args.fps * args.gop_secs.max(1));
    let mut buf = vec![0u8; 2000];
    let mut next_frame = Instant::now();
    let mut frame_no = 0u64;
    let mut connected = false;
    let mut want_key = true;
    let mut timeout = drain(&mut rtc, &socket, |_| {});
    while !stop.load(Ordering::Relaxed) {
        let deadline = if connected {
            timeout.min(next_frame)
        } else {
            timeout
        };
        if let Ok(Ok((n, from))) =
            tokio::time::timeout_at(deadline.into(), socket.recv_from(&mut buf)).await
            && let Ok(r) = Receive::new(Protocol::Udp, from, addr, &buf[..n])
        {
            let _ = rtc.handle_input(Input::Receive(Instant::now(), r));
        }
        let now = Instant::now();
        let _ = rtc.handle_input(Input::Timeout(now));
        if connected && now >= next_frame {
            let key = want_key || frame_no.is_multiple_of(gop);
            want_key = false;
            if let Some(writer) = rtc.writer(mid) {
                let pt = writer
                    .payload_params()
                    .find(|p| p.spec().codec == Codec::H264)
                    .map(|p| p.pt());
                if let Some(pt) = pt {
                    let time =
                        MediaTime::new(frame_no * 90_000 / args.fps as u64, Frequency::NINETY_KHZ);
                    let _ = writer.write(pt, now, time, access_unit(frame_no, key, frame_bytes));
                }
            }
            frame_no += 1;
            next_frame += frame_every;
            if next_frame < now {
                next_frame = now + frame_every;
            }
        }
        timeout = drain(&mut rtc, &socket, |e| match e {
            Event::Connected => connected = true,
            Event::KeyframeRequest(_) => want_key = true,
            _ => {}
        });
    }
}

/// Per-SSRC sequence tracking of one subscriber.
struct SeqTrack {
    ssrc: u32,
    max: u64,
}

/// One subscriber of `path` (`/whep/{stream}`): WHEP, then count RTP off
/// the wire until `stop`.
pub(crate) async fn subscriber(
    gw: Arc<Gateway>,
    path: String,
    totals: Arc<Totals>,
    stop: Arc<AtomicBool>,
) {
    let (mut rtc, socket, addr) = new_peer().await;
    let (offer, pending, _) = local_offer(&mut rtc, Direction::RecvOnly);
    let answer = match exchange(&gw, &path, None, &offer).await {
        Ok(a) => a,
        Err(e) => {
            if totals.failed.fetch_add(1, Ordering::Relaxed) == 0 {
                eprintln!("WHEP failed: {e}");
            }
            return;
        }
    };
    let Ok(answer) = SdpAnswer::from_sdp_string(&answer) else {
        totals.failed.fetch_add(1, Ordering::Relaxed);
        return;
    };
    if rtc.sdp_api().accept_answer(pending, answer).is_err() {
        totals.failed.fetch_add(1, Ordering::Relaxed);
        return;
    }
    let mut buf = vec![0u8; 2000];
    let mut tracks: Vec<SeqTrack> = Vec::new();
    let mut receiving = false;
    let mut connected = false;
    let mut timeout = drain(&mut rtc, &socket, |_| {});
    while !stop.load(Ordering::Relaxed) {
        match tokio::time::timeout_at(timeout.into(), socket.recv_from(&mut buf)).await {
            Ok(Ok((n, from))) => {
                let d = &buf[..n];
                // RTP (not RTCP: payload types 64-95 with the marker bit are RTCP).
                if n >= 12 && (128..192).contains(&d[0]) && !(192..=223).contains(&d[1]) {
                    let seq = u16::from_be_bytes([d[2], d[3]]);
                    let ssrc = u32::from_be_bytes([d[8], d[9], d[10], d[11]]);
                    let measuring = totals.measuring.load(Ordering::Relaxed);
                    let t = match tracks.iter_mut().position(|t| t.ssrc == ssrc) {
                        Some(i) => &mut tracks[i],
                        None => {
                            tracks.push(SeqTrack {
                                ssrc,
                                max: u64::from(seq) + (1 << 16) - 1,
                            });
                            tracks.last_mut().expect("pushed")
                        }
                    };
                    // Extend the 16-bit sequence number around the last one.
                    let base = t.max & !0xffff;
                    let mut ext = base | u64::from(seq);
                    if ext + 0x8000 < t.max {
                        ext += 1 << 16;
                    } else if ext > t.max + 0x8000 {
                        ext = ext.saturating_sub(1 << 16);
                    }
                    let advance = ext.saturating_sub(t.max);
                    t.max = t.max.max(ext);
                    if !receiving {
                        receiving = true;
                        totals.receiving.fetch_add(1, Ordering::Relaxed);
                    }
                    if measuring {
                        totals.received.fetch_add(1, Ordering::Relaxed);
                        totals.expected.fetch_add(advance, Ordering::Relaxed);
                        totals.bytes.fetch_add(n as u64, Ordering::Relaxed);
                    }
                } else if let Ok(r) = Receive::new(Protocol::Udp, from, addr, d) {
                    let _ = rtc.handle_input(Input::Receive(Instant::now(), r));
                }
            }
            Ok(Err(_)) => break,
            Err(_) => {}
        }
        let _ = rtc.handle_input(Input::Timeout(Instant::now()));
        timeout = drain(&mut rtc, &socket, |e| {
            if matches!(e, Event::Connected) && !connected {
                connected = true;
                totals.connected.fetch_add(1, Ordering::Relaxed);
            }
        });
    }
}

/// Runs the benchmark against a started gateway (camgate's pid for CPU);
/// prints one line per step and returns the steps.
pub async fn run(gw: Gateway, args: SfuArgs) -> Vec<Step> {
    let gw = Arc::new(gw);
    let pid = gw.pid();
    let stop = Arc::new(AtomicBool::new(false));
    let totals = Arc::new(Totals::default());
    let pub_task = tokio::spawn(publisher(gw.clone(), args.clone(), stop.clone()));
    // Wait until the stream is live (the publisher connected).
    let live_deadline = Instant::now() + Duration::from_secs(15);
    loop {
        let (status, v) = gw
            .get_public_json("/api/v1/apps/live/ws-ingest/live/bench")
            .await;
        if status == 200 && v["data"]["active"].as_bool() == Some(true) {
            break;
        }
        assert!(
            Instant::now() < live_deadline,
            "publisher never went live: {v}"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let ticks = crate::clock_ticks_per_sec();
    let me = std::process::id();
    let mut subs = Vec::new();
    let mut steps = Vec::new();
    println!(
        "camgate-bench sfu: 1 publisher, H.264 {} kbit/s at {} fps, keyframe every {} s; camgate pinned, client on the other core",
        args.kbps, args.fps, args.gop_secs
    );
    for &n in &args.steps {
        // Add subscribers in batches so signalling does not starve media.
        while subs.len() < n {
            let batch = (n - subs.len()).min(25);
            let mut joins = Vec::new();
            for _ in 0..batch {
                joins.push(tokio::spawn(subscriber(
                    gw.clone(),
                    "/whep/live-bench".into(),
                    totals.clone(),
                    stop.clone(),
                )));
            }
            subs.extend(joins);
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        let deadline = Instant::now() + Duration::from_secs(30);
        while totals.receiving.load(Ordering::Relaxed) + totals.failed.load(Ordering::Relaxed) < n
            && Instant::now() < deadline
        {
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        let receiving = totals.receiving.load(Ordering::Relaxed);
        tokio::time::sleep(Duration::from_secs(2)).await;
        let (c0, m0) = (
            crate::proc_cpu_ticks(pid).unwrap_or(0),
            crate::proc_cpu_ticks(me).unwrap_or(0),
        );
        for c in [&totals.received, &totals.expected, &totals.bytes] {
            c.store(0, Ordering::Relaxed);
        }
        let t0 = Instant::now();
        totals.measuring.store(true, Ordering::Relaxed);
        tokio::time::sleep(Duration::from_secs(args.seconds)).await;
        totals.measuring.store(false, Ordering::Relaxed);
        let secs = t0.elapsed().as_secs_f64();
        let (c1, m1) = (
            crate::proc_cpu_ticks(pid).unwrap_or(0),
            crate::proc_cpu_ticks(me).unwrap_or(0),
        );
        let received = totals.received.load(Ordering::Relaxed);
        let expected = totals.expected.load(Ordering::Relaxed).max(1);
        let cores = (c1 - c0) as f64 / ticks / secs;
        let step = Step {
            subscribers: receiving,
            camgate_cores: cores,
            client_cores: (m1 - m0) as f64 / ticks / secs,
            packets_per_sec: received as f64 / secs,
            mbits_per_sec: totals.bytes.load(Ordering::Relaxed) as f64 * 8.0 / secs / 1e6,
            loss_percent: 100.0 * expected.saturating_sub(received) as f64 / expected as f64,
            millicores_per_subscriber: 1000.0 * cores / receiving.max(1) as f64,
            subscribers_per_core: receiving as f64 / cores.max(1e-6),
            camgate_rss_mb: crate::proc_rss_kb(pid).unwrap_or(0) as f64 / 1024.0,
        };
        println!(
            "  {:5} subscribers: camgate {:.3} cores ({:.3} mcores/sub, ≈{:.0} subs/core), {:.0} pkt/s out ({:.1} Mbit/s), loss {:.3} %, RSS {:.0} MB; client {:.2} cores",
            step.subscribers,
            step.camgate_cores,
            step.millicores_per_subscriber,
            step.subscribers_per_core,
            step.packets_per_sec,
            step.mbits_per_sec,
            step.loss_percent,
            step.camgate_rss_mb,
            step.client_cores,
        );
        let failed = totals.failed.load(Ordering::Relaxed);
        if failed > 0 {
            println!("  ({failed} subscribers failed to join)");
        }
        let lossy = step.loss_percent >= 1.0;
        steps.push(step);
        if lossy {
            break;
        }
    }
    stop.store(true, Ordering::Relaxed);
    let _ = pub_task.await;
    for s in subs {
        let _ = s.await;
    }
    let best = steps
        .iter()
        .filter(|s| s.loss_percent < 1.0)
        .map(|s| s.subscribers)
        .max()
        .unwrap_or(0);
    println!("  largest count with < 1 % loss: {best}");
    println!(
        "{}",
        serde_json::json!({ "steps": steps, "largestUnder1PercentLoss": best })
    );
    steps
}
