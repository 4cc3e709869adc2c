//! `camgate-bench rtmp-hls`: RTMP publish → HLS-available latency, RTMP →
//! WebRTC latency, and CPU per concurrent 2 Mbit/s RTMP publisher — camgate
//! next to nginx + libnginx-mod-rtmp (Debian) doing RTMP → HLS on the same
//! input in the same run.
//!
//! The input is encoded once by ffmpeg (H.264 720p30 at 2 Mbit/s, 1 s GOP,
//! AAC) into an FLV file; a small RTMP publisher built on rml_rtmp's client
//! session then sends its tags in real time, so the wall-clock instant each
//! media timestamp was sent is known exactly (T0 + t). A segment or part
//! whose media ends at `t` and first appears in a playlist at `W` was
//! available `W − (T0 + t)` after its last frame was sent.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use bytes::Bytes;
use rml_rtmp::handshake::{Handshake, HandshakeProcessResult, PeerType};
use rml_rtmp::sessions::{
    ClientSession, ClientSessionConfig, ClientSessionEvent, ClientSessionResult, PublishRequestType,
};
use rml_rtmp::time::RtmpTimestamp;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

/// One FLV tag of the input file.
#[derive(Clone)]
pub struct Tag {
    /// 8 audio, 9 video.
    pub kind: u8,
    /// Milliseconds.
    pub timestamp: u32,
    /// Tag body.
    pub data: Bytes,
}

/// Reads the audio and video tags of an FLV file.
pub fn read_flv(path: &Path) -> Vec<Tag> {
    let bytes = std::fs::read(path).expect("read flv");
    let mut tags = Vec::new();
    let mut at = 9 + 4;
    while at + 11 <= bytes.len() {
        let kind = bytes[at] & 0x1f;
        let size = u32::from_be_bytes([0, bytes[at + 1], bytes[at + 2], bytes[at + 3]]) as usize;
        let ts = u32::from_be_bytes([bytes[at + 7], bytes[at + 4], bytes[at + 5], bytes[at + 6]]);
        let start = at + 11;
        if start + size > bytes.len() {
            break;
        }
        if kind == 8 || kind == 9 {
            tags.push(Tag {
                kind,
                timestamp: ts,
                data: Bytes::copy_from_slice(&bytes[start..start + size]),
            });
        }
        at = start + size + 4;
    }
    tags
}

/// Encodes the benchmark input: `seconds` of 720p30 H.264 at `kbps` with a
/// 1 s GOP and AAC, as FLV.
pub fn make_input(dir: &Path, seconds: u32, kbps: u32) -> PathBuf {
    let out = dir.join("input.flv");
    let status = Command::new("ffmpeg")
        .args(["-hide_banner", "-loglevel", "error", "-y"])
        .args(["-f", "lavfi", "-i", "testsrc2=size=1280x720:rate=30"])
        .args(["-f", "lavfi", "-i", "sine=frequency=440:sample_rate=48000"])
        .args(["-t", &seconds.to_string()])
        .args([
            "-c:v",
            "libx264",
            "-preset",
            "veryfast",
            "-tune",
            "zerolatency",
        ])
        .arg("-b:v")
        .arg(format!("{kbps}k"))
        .arg("-maxrate")
        .arg(format!("{kbps}k"))
        .arg("-bufsize")
        .arg(format!("{}k", kbps / 2))
        .args(["-g", "30", "-c:a", "aac", "-b:a", "96k", "-f", "flv"])
        .arg(&out)
        .status()
        .expect("run ffmpeg");
    assert!(status.success(), "ffmpeg could not encode the input");
    out
}

async fn apply(
    socket: &mut TcpStream,
    results: Vec<ClientSessionResult>,
    events: &mut Vec<ClientSessionEvent>,
) -> std::io::Result<()> {
    for r in results {
        match r {
            ClientSessionResult::OutboundResponse(p) => socket.write_all(&p.bytes).await?,
            ClientSessionResult::RaisedEvent(e) => events.push(e),
            ClientSessionResult::UnhandleableMessageReceived(_) => {}
        }
    }
    Ok(())
}

/// Publishes `tags` (looped) to `rtmp://addr/{app}/{key}` in real time until
/// `stop`; returns the wall-clock instant of media time 0.
pub async fn publish(
    addr: SocketAddr,
    app: String,
    key: String,
    tags: Arc<Vec<Tag>>,
    stop: Arc<AtomicBool>,
    started: tokio::sync::oneshot::Sender<Instant>,
) -> Result<(), String> {
    let mut socket = TcpStream::connect(addr).await.map_err(|e| e.to_string())?;
    socket.set_nodelay(true).ok();
    let mut hs = Handshake::new(PeerType::Client);
    let p0p1 = hs
        .generate_outbound_p0_and_p1()
        .map_err(|e| format!("{e:?}"))?;
    socket.write_all(&p0p1).await.map_err(|e| e.to_string())?;
    let mut buf = vec![0u8; 64 * 1024];
    let rest = loop {
        let n = socket.read(&mut buf).await.map_err(|e| e.to_string())?;
        if n == 0 {
            return Err("closed in handshake".into());
        }
        match hs.process_bytes(&buf[..n]).map_err(|e| format!("{e:?}"))? {
            HandshakeProcessResult::InProgress { response_bytes } => socket
                .write_all(&response_bytes)
                .await
                .map_err(|e| e.to_string())?,
            HandshakeProcessResult::Completed {
                response_bytes,
                remaining_bytes,
            } => {
                socket
                    .write_all(&response_bytes)
                    .await
                    .map_err(|e| e.to_string())?;
                break remaining_bytes;
            }
        }
    };
    let mut config = ClientSessionConfig::new();
    config.tc_url = Some(format!("rtmp://{addr}/{app}"));
    let (mut session, initial) = ClientSession::new(config).map_err(|e| format!("{e:?}"))?;
    let mut events = Vec::new();
    apply(&mut socket, initial, &mut events)
        .await
        .map_err(|e| e.to_string())?;
    let r = session
        .request_connection(app.clone())
        .map_err(|e| format!("{e:?}"))?;
    apply(&mut socket, vec![r], &mut events)
        .await
        .map_err(|e| e.to_string())?;
    let mut pending = rest;
    let mut asked_publish = false;
    // Connect, then publish.
    loop {
        if !pending.is_empty() {
            let r = session
                .handle_input(&pending)
                .map_err(|e| format!("{e:?}"))?;
            apply(&mut socket, r, &mut events)
                .await
                .map_err(|e| e.to_string())?;
            pending.clear();
        }
        let mut publishing = false;
        for e in events.drain(..) {
            match e {
                ClientSessionEvent::ConnectionRequestAccepted if !asked_publish => {
                    asked_publish = true;
                    let r = session
                        .request_publishing(key.clone(), PublishRequestType::Live)
                        .map_err(|e| format!("{e:?}"))?;
                    if let ClientSessionResult::OutboundResponse(p) = r {
                        socket
                            .write_all(&p.bytes)
                            .await
                            .map_err(|e| e.to_string())?;
                    }
                }
                ClientSessionEvent::PublishRequestAccepted => publishing = true,
                ClientSessionEvent::ConnectionRequestRejected { description } => {
                    return Err(format!("connect rejected: {description}"));
                }
                _ => {}
            }
        }
        if publishing {
            break;
        }
        let n = tokio::time::timeout(Duration::from_secs(10), socket.read(&mut buf))
            .await
            .map_err(|_| "no answer to publish".to_owned())?
            .map_err(|e| e.to_string())?;
        if n == 0 {
            return Err("refused".into());
        }
        pending.extend_from_slice(&buf[..n]);
    }
    let (mut reader, mut writer) = socket.into_split();
    // Drain what the server sends (acks) without interpreting it.
    tokio::spawn(async move {
        let mut b = vec![0u8; 16 * 1024];
        while matches!(reader.read(&mut b).await, Ok(n) if n > 0) {}
    });
    let t0 = Instant::now();
    let _ = started.send(t0);
    let span = tags.last().map_or(1000, |t| t.timestamp) + 33;
    let mut offset = 0u32;
    'outer: loop {
        for t in tags.iter() {
            // Sequence headers only once (the first pass).
            if offset > 0 && t.data.get(1) == Some(&0) {
                continue;
            }
            if stop.load(Ordering::Relaxed) {
                break 'outer;
            }
            let ts = offset + t.timestamp;
            let due = t0 + Duration::from_millis(u64::from(ts));
            tokio::time::sleep_until(due.into()).await;
            let r = if t.kind == 9 {
                session.publish_video_data(t.data.clone(), RtmpTimestamp::new(ts), false)
            } else {
                session.publish_audio_data(t.data.clone(), RtmpTimestamp::new(ts), false)
            }
            .map_err(|e| format!("{e:?}"))?;
            if let ClientSessionResult::OutboundResponse(p) = r
                && writer.write_all(&p.bytes).await.is_err()
            {
                return Err("connection lost".into());
            }
        }
        offset += span;
    }
    Ok(())
}

/// nginx with libnginx-mod-rtmp writing HLS (2 s fragments) to a temp dir,
/// pinned to `core`; serves the HLS over HTTP.
pub struct Nginx {
    child: Child,
    /// RTMP address.
    pub rtmp: SocketAddr,
    /// `http://127.0.0.1:port`.
    pub http: String,
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("free port")
}

impl Nginx {
    /// Starts nginx, or `None` when it or its RTMP module is missing.
    pub fn start(dir: &Path, core: i32, fragment_secs: u32) -> Option<Nginx> {
        let module = Path::new("/usr/lib/nginx/modules/ngx_rtmp_module.so");
        if !module.exists() || crate::which("nginx").is_none() {
            return None;
        }
        let (rtmp_port, http_port) = (free_port(), free_port());
        let hls = dir.join("hls");
        std::fs::create_dir_all(&hls).ok()?;
        let conf = dir.join("nginx.conf");
        std::fs::write(
            &conf,
            format!(
                "load_module {module};\n\
                 daemon off; worker_processes 1; pid {dir}/nginx.pid; error_log {dir}/error.log;\n\
                 events {{ worker_connections 4096; }}\n\
                 rtmp {{ server {{ listen 127.0.0.1:{rtmp_port}; chunk_size 4096;\n\
                   application live {{ live on; record off; hls on; hls_path {hls};\n\
                     hls_fragment {fragment_secs}s; hls_playlist_length 20s; }} }} }}\n\
                 http {{ access_log off; server {{ listen 127.0.0.1:{http_port};\n\
                   location /hls/ {{ alias {hls}/; types {{ application/vnd.apple.mpegurl m3u8; video/mp2t ts; }} }} }} }}\n",
                module = module.display(),
                dir = dir.display(),
                hls = hls.display(),
            ),
        )
        .ok()?;
        let child = Command::new("taskset")
            .args(["-c", &core.max(0).to_string(), "nginx", "-c"])
            .arg(&conf)
            .args(["-p"])
            .arg(dir)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .ok()?;
        std::thread::sleep(Duration::from_millis(500));
        Some(Nginx {
            child,
            rtmp: SocketAddr::from(([127, 0, 0, 1], rtmp_port)),
            http: format!("http://127.0.0.1:{http_port}"),
        })
    }

    /// The pids of nginx's master and worker.
    pub fn pids(&self) -> Vec<u32> {
        let mut pids = vec![self.child.id()];
        if let Ok(out) = Command::new("pgrep")
            .args(["-P", &self.child.id().to_string()])
            .output()
        {
            pids.extend(
                String::from_utf8_lossy(&out.stdout)
                    .lines()
                    .filter_map(|l| l.trim().parse::<u32>().ok()),
            );
        }
        pids
    }
}

impl Drop for Nginx {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// When each media time became available in a playlist: polls `url` every
/// 20 ms for `window`, and for every new segment (or part, when `parts`)
/// records `(media_end_secs, seen_at)`. What the first playlist already
/// lists is counted for media time but not recorded (its arrival time is
/// unknown).
pub async fn watch_playlist(
    http: &reqwest::Client,
    url: &str,
    window: Duration,
    parts: bool,
) -> Vec<(f64, Instant)> {
    let mut seen = std::collections::HashSet::new();
    let mut out = Vec::new();
    let mut media_end = 0.0;
    let mut part_end = 0.0;
    let deadline = Instant::now() + window;
    let mut first = true;
    while Instant::now() < deadline {
        if let Ok(r) = http.get(url).send().await
            && r.status().is_success()
            && let Ok(text) = r.text().await
        {
            let now = Instant::now();
            let record = !std::mem::replace(&mut first, false);
            let mut duration = 0.0;
            for line in text.lines() {
                if let Some(d) = line.strip_prefix("#EXTINF:") {
                    duration = d.trim_end_matches(',').parse().unwrap_or(0.0);
                } else if parts && line.starts_with("#EXT-X-PART:") {
                    let d: f64 = line
                        .split("DURATION=")
                        .nth(1)
                        .and_then(|r| r.split(',').next())
                        .and_then(|d| d.parse().ok())
                        .unwrap_or(0.0);
                    let uri = line.split("URI=\"").nth(1).unwrap_or("").to_owned();
                    if seen.insert(uri) {
                        part_end += d;
                        if record {
                            out.push((part_end, now));
                        }
                    }
                } else if !line.starts_with('#') && !line.is_empty() && seen.insert(line.to_owned())
                {
                    media_end += duration;
                    if !parts && record {
                        out.push((media_end, now));
                    }
                }
            }
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    out
}

/// Availability latency of each observation, seconds, sorted: `W − (T0+t)`.
pub fn availability(obs: &[(f64, Instant)], t0: Instant) -> Vec<f64> {
    let mut v: Vec<f64> = obs
        .iter()
        .map(|(t, w)| w.duration_since(t0).as_secs_f64() - t)
        .collect();
    v.sort_by(|a, b| a.total_cmp(b));
    v
}

/// Median of a sorted slice.
pub fn median(v: &[f64]) -> f64 {
    if v.is_empty() {
        return f64::NAN;
    }
    v[v.len() / 2]
}

/// RTMP → WebRTC latency: a WHEP subscriber (str0m) takes the last packet of
/// each video frame off the wire; its RTP timestamp is the RTMP timestamp
/// × 90 (camgate passes it through), so the frame was sent at
/// `t0 + ts / 90 kHz`. Returns seconds per frame, sorted.
pub async fn whep_latency(
    gw: &crate::Gateway,
    stream: &str,
    t0: Instant,
    window: Duration,
) -> Vec<f64> {
    use str0m::change::SdpAnswer;
    use str0m::media::Direction;
    use str0m::net::{Protocol, Receive};
    use str0m::{Input, Rtc};

    use crate::bench_sfu::{drain, exchange, local_offer, new_peer};
    let (mut rtc, socket, addr): (Rtc, _, _) = new_peer().await;
    let (offer, pending, _) = local_offer(&mut rtc, Direction::RecvOnly);
    let Ok(answer) = exchange(gw, &format!("/whep/{stream}"), None, &offer).await else {
        return Vec::new();
    };
    let Ok(answer) = SdpAnswer::from_sdp_string(&answer) else {
        return Vec::new();
    };
    if rtc.sdp_api().accept_answer(pending, answer).is_err() {
        return Vec::new();
    }
    let mut out = Vec::new();
    let mut buf = vec![0u8; 2000];
    let deadline = Instant::now() + window;
    let mut timeout = drain(&mut rtc, &socket, |_| {});
    while Instant::now() < deadline {
        let until = timeout.min(deadline);
        if let Ok(Ok((n, from))) =
            tokio::time::timeout_at(until.into(), socket.recv_from(&mut buf)).await
        {
            let d = &buf[..n];
            let rtp = n >= 12 && (128..192).contains(&d[0]) && !(192..=223).contains(&d[1]);
            if rtp {
                if d[1] & 0x80 != 0 {
                    let ts = u32::from_be_bytes([d[4], d[5], d[6], d[7]]);
                    let sent = t0 + Duration::from_secs_f64(f64::from(ts) / 90_000.0);
                    out.push(Instant::now().saturating_duration_since(sent).as_secs_f64());
                }
            } else if let Ok(r) = Receive::new(Protocol::Udp, from, addr, d) {
                let _ = rtc.handle_input(Input::Receive(Instant::now(), r));
            }
        }
        let _ = rtc.handle_input(Input::Timeout(Instant::now()));
        timeout = drain(&mut rtc, &socket, |_| {});
    }
    out.sort_by(|a, b| a.total_cmp(b));
    out
}
