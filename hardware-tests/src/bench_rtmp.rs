//! `camgate-bench rtmp-hls`: RTMP publish → HLS-available latency, RTMP →
//! WebRTC latency, and CPU per concurrent 2 Mbit/s RTMP publisher — camgate
//! next to nginx + libnginx-mod-rtmp (Debian) doing RTMP → HLS on the same
//! input in the same run.
//!
//! The input is encoded once by ffmpeg (H.264 720p30 at 2 Mbit/s, 1 s GOP,
//! AAC) into an FLV file; camgate's own RTMP publisher (the restream client,
//! on rml_rtmp's client session) then sends its tags in real time, so the wall-clock instant each
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

/// Publishes `tags` (looped) to `rtmp://addr/{app}/{key}` in real time until
/// `stop`; returns the wall-clock instant of media time 0. The RTMP client
/// is camgate's own restream publisher.
pub async fn publish(
    addr: SocketAddr,
    app: String,
    key: String,
    tags: Arc<Vec<Tag>>,
    stop: Arc<AtomicBool>,
    started: tokio::sync::oneshot::Sender<Instant>,
) -> Result<(), String> {
    let url = camgate::restream::RtmpUrl {
        tls: false,
        host: addr.ip().to_string(),
        port: addr.port(),
        app,
        key,
    };
    let mut publisher =
        camgate::restream::Publisher::connect(&url, None, Duration::from_secs(10)).await?;
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
            if t.kind == 9 {
                publisher.video(t.data.to_vec(), ts).await?;
            } else {
                publisher.audio(t.data.to_vec(), ts).await?;
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
        Nginx::start_on(dir, core, fragment_secs, free_port())
    }

    /// Starts nginx with its RTMP server on `rtmp_port` (a restart on the
    /// same address).
    pub fn start_on(dir: &Path, core: i32, fragment_secs: u32, rtmp_port: u16) -> Option<Nginx> {
        let hls = dir.join("hls");
        std::fs::create_dir_all(&hls).ok()?;
        let app = format!(
            "live on; record off; hls on; hls_path {hls};\n\
             hls_fragment {fragment_secs}s; hls_playlist_length 20s;",
            hls = hls.display()
        );
        Nginx::launch(dir, core, rtmp_port, &app)
    }

    /// Starts nginx recording every stream of application `live` to FLV
    /// files in `<dir>/rec` (`record all`), no HLS.
    pub fn start_recording(dir: &Path, core: i32) -> Option<Nginx> {
        let rec = dir.join("rec");
        std::fs::create_dir_all(&rec).ok()?;
        // nginx's worker drops to `nobody` when started as root.
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(&rec, std::fs::Permissions::from_mode(0o777)).ok()?;
        let app = format!(
            "live on; hls off; record all; record_path {}; record_unique on;",
            rec.display()
        );
        Nginx::launch(dir, core, free_port(), &app)
    }

    /// Starts nginx-rtmp (application `live`) behind a TLS terminator
    /// (nginx's stream module) on the returned port: an `rtmps://` server
    /// with `cert` and `key` (PEM files).
    pub fn start_rtmps(dir: &Path, core: i32, cert: &Path, key: &Path) -> Option<(Nginx, u16)> {
        let stream_module = Path::new("/usr/lib/nginx/modules/ngx_stream_module.so");
        if !stream_module.exists() {
            return None;
        }
        let (rtmp_port, tls_port) = (free_port(), free_port());
        let extra = format!(
            "stream {{ server {{ listen 127.0.0.1:{tls_port} ssl;\n\
               ssl_certificate {cert}; ssl_certificate_key {key};\n\
               proxy_pass 127.0.0.1:{rtmp_port}; }} }}\n",
            cert = cert.display(),
            key = key.display(),
        );
        let nginx = Nginx::launch_with(
            dir,
            core,
            rtmp_port,
            "live on; record off; hls off;",
            &format!("load_module {};\n", stream_module.display()),
            &extra,
        )?;
        Some((nginx, tls_port))
    }

    fn launch(dir: &Path, core: i32, rtmp_port: u16, application: &str) -> Option<Nginx> {
        Nginx::launch_with(dir, core, rtmp_port, application, "", "")
    }

    fn launch_with(
        dir: &Path,
        core: i32,
        rtmp_port: u16,
        application: &str,
        modules: &str,
        extra: &str,
    ) -> Option<Nginx> {
        let module = Path::new("/usr/lib/nginx/modules/ngx_rtmp_module.so");
        if !module.exists() || crate::which("nginx").is_none() {
            return None;
        }
        let http_port = free_port();
        let hls = dir.join("hls");
        let conf = dir.join("nginx.conf");
        std::fs::write(
            &conf,
            format!(
                "load_module {module};\n{modules}\
                 daemon off; worker_processes 1; pid {dir}/nginx.pid; error_log {dir}/error.log;\n\
                 events {{ worker_connections 4096; }}\n\
                 rtmp {{ server {{ listen 127.0.0.1:{rtmp_port}; chunk_size 4096;\n\
                   application live {{ {application} }} }} }}\n\
                 http {{ access_log off; server {{ listen 127.0.0.1:{http_port};\n\
                   location /hls/ {{ alias {hls}/; types {{ application/vnd.apple.mpegurl m3u8; video/mp2t ts; }} }} }} }}\n{extra}",
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
        // The workers too: they would keep the port.
        for pid in self.pids().into_iter().skip(1) {
            let _ = Command::new("kill").args(["-9", &pid.to_string()]).status();
        }
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
