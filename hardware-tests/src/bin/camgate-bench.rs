//! `camgate-bench`: load benchmarks against the real release binary.
//!
//! `camgate-bench mjpeg` runs simulated cameras (pre-encoded, stamped frames)
//! and MJPEG viewers against a camgate it starts pinned to one core, and
//! prints frames in/out per second, delivery, added latency (camera stamp →
//! viewer receive), camgate's CPU in cores and its RSS. Not a test: it
//! reports figures and asserts nothing.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant};

use camgate_firmware_sim::camera::{self, CameraOptions};
use camgate_firmware_sim::frames::{FrameSource, unix_micros};
use camgate_hardware_tests::{ADMIN_TOKEN, Gateway, bin_dir};
use camgate_protocols::device::FrameSize;
use camgate_protocols::jpeg::{self, TrailingPadding};
use camgate_protocols::multipart;
use clap::{Parser, Subcommand};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

#[derive(Parser)]
#[command(
    name = "camgate-bench",
    about = "Benchmarks camgate against simulated cameras and viewers"
)]
struct Cli {
    #[command(subcommand)]
    cmd: Cmd,
}

#[derive(Subcommand)]
enum Cmd {
    /// Cameras over the device WebSocket, viewers over MJPEG.
    Mjpeg(MjpegArgs),
    /// VGA MJPEG → H.264 frames per second per core, next to GStreamer's
    /// openh264enc (same encoder) and ffmpeg's libx264.
    Transcode(TranscodeCli),
    /// One WHIP publisher to N WHEP subscribers (str0m peers in this
    /// process): camgate CPU per subscriber, packets/s, loss.
    Sfu(SfuCli),
    /// RTMP → HLS / WebRTC latency and CPU per RTMP publisher, next to
    /// nginx + libnginx-mod-rtmp.
    RtmpHls(RtmpHlsCli),
    /// N 2 Mbit/s H.264 RTSP cameras pulled and relayed to one WHEP viewer
    /// each; the cost of one MJPEG viewer of an H.264 camera vs ffmpeg.
    Rtsp(RtspCli),
    /// N concurrent recordings of 2 Mbit/s RTMP streams: CPU per recording
    /// and write amplification, next to nginx-rtmp's `record all`.
    Record(RecordCli),
    /// A realistic mix for N minutes (cameras, RTMP, RTSP, WebRTC, MJPEG,
    /// HLS, API): losses, errors by code, RSS/fds/tasks over time, p99
    /// latencies, and a pass/fail verdict (exit 1 on fail).
    Soak(SoakCli),
}

#[derive(clap::Args)]
struct SoakCli {
    /// Minutes to run.
    #[arg(long, default_value_t = 30.0)]
    minutes: f64,
    /// Cameras over the device WebSocket.
    #[arg(long, default_value_t = 8)]
    cameras: usize,
    /// Frames per second per camera.
    #[arg(long, default_value_t = 10.0)]
    fps: f64,
    /// MJPEG viewers per camera.
    #[arg(long, default_value_t = 2)]
    mjpeg_per_camera: usize,
    /// WebRTC viewers of the RTMP stream.
    #[arg(long, default_value_t = 4)]
    webrtc_viewers: usize,
    /// HLS viewers of the RTMP stream.
    #[arg(long, default_value_t = 4)]
    hls_viewers: usize,
    /// API requests per second.
    #[arg(long, default_value_t = 5.0)]
    api_rps: f64,
    /// camgate binary [default: next to this one].
    #[arg(long)]
    camgate: Option<std::path::PathBuf>,
}

#[derive(clap::Args)]
struct RecordCli {
    /// Concurrent stream counts to step through.
    #[arg(long, value_delimiter = ',', default_value = "1,10,20")]
    streams: Vec<usize>,
    /// Seconds measured per step.
    #[arg(long, default_value_t = 10)]
    seconds: u64,
    /// Bitrate of the input, kbit/s.
    #[arg(long, default_value_t = 2000)]
    kbps: u32,
    /// camgate binary [default: next to this one].
    #[arg(long)]
    camgate: Option<std::path::PathBuf>,
    /// Core for camgate and nginx (this process takes the others).
    #[arg(long, default_value_t = 0)]
    pin_core: i32,
}

#[derive(clap::Args)]
struct RtspCli {
    /// Camera counts to step through (comma separated).
    #[arg(long, value_delimiter = ',', default_value = "10,25,50,75,100")]
    cameras: Vec<usize>,
    /// Seconds measured per step.
    #[arg(long, default_value_t = 10)]
    seconds: u64,
    /// camgate binary [default: next to this one].
    #[arg(long)]
    camgate: Option<std::path::PathBuf>,
    /// Core for camgate and ffmpeg (the camera and viewers take the other).
    #[arg(long, default_value_t = 0)]
    pin_core: i32,
}

#[derive(clap::Args)]
struct RtmpHlsCli {
    /// Concurrent publisher counts for the CPU measurement.
    #[arg(long, value_delimiter = ',', default_value = "1,10,20,40")]
    publishers: Vec<usize>,
    /// Seconds measured per step.
    #[arg(long, default_value_t = 10)]
    seconds: u64,
    /// Seconds of latency observation.
    #[arg(long, default_value_t = 12)]
    latency_seconds: u64,
    /// Bitrate of the input, kbit/s.
    #[arg(long, default_value_t = 2000)]
    kbps: u32,
    /// nginx-rtmp HLS fragment length, seconds.
    #[arg(long, default_value_t = 2)]
    nginx_fragment: u32,
    /// camgate binary [default: next to this one].
    #[arg(long)]
    camgate: Option<std::path::PathBuf>,
    /// Core for camgate and nginx (this process takes the others).
    #[arg(long, default_value_t = 0)]
    pin_core: i32,
}

#[derive(clap::Args)]
struct SfuCli {
    /// Subscriber counts to step through (comma separated).
    #[arg(
        long,
        value_delimiter = ',',
        default_value = "100,250,500,750,1000,1250,1500"
    )]
    subscribers: Vec<usize>,
    /// Seconds measured per step.
    #[arg(long, default_value_t = 10)]
    seconds: u64,
    /// Publisher bitrate, kbit/s.
    #[arg(long, default_value_t = 1500)]
    kbps: u32,
    /// Publisher frames per second.
    #[arg(long, default_value_t = 30)]
    fps: u32,
    /// Seconds between keyframes.
    #[arg(long, default_value_t = 2)]
    gop: u32,
    /// camgate binary [default: next to this one].
    #[arg(long)]
    camgate: Option<std::path::PathBuf>,
    /// Core to pin camgate to (this process takes the others); -1 = no pinning.
    #[arg(long, default_value_t = 0)]
    pin_core: i32,
}

#[derive(clap::Args)]
struct TranscodeCli {
    /// Seconds per measurement.
    #[arg(long, default_value_t = 10)]
    seconds: u64,
    /// esp32-camera quality of the input (0-63, lower is better).
    #[arg(long, default_value_t = 12)]
    quality: u8,
    /// Core for this process and the reference encoders (-1 = no pinning).
    #[arg(long, default_value_t = 1)]
    core: i32,
    /// Target bitrate, kbit/s.
    #[arg(long, default_value_t = 1000)]
    kbps: u32,
}

#[derive(clap::Args)]
struct MjpegArgs {
    /// Cameras.
    #[arg(long, default_value_t = 1)]
    cameras: u32,
    /// MJPEG viewers per camera.
    #[arg(long, default_value_t = 1)]
    viewers_per_camera: u32,
    /// Total viewers of a single camera (shorthand for --cameras 1 --viewers-per-camera N).
    #[arg(long)]
    viewers: Option<u32>,
    /// Frames per second per camera.
    #[arg(long, default_value_t = 25.0)]
    fps: f64,
    /// Frame size (QVGA ≈ 8 KB, VGA ≈ 30 KB frames at the default quality).
    #[arg(long, default_value = "VGA")]
    size: FrameSize,
    /// esp32-camera quality (0-63).
    #[arg(long, default_value_t = 12)]
    quality: u8,
    /// Seconds measured (after warm-up).
    #[arg(long, default_value_t = 20)]
    seconds: u64,
    /// Seconds of warm-up before measuring.
    #[arg(long, default_value_t = 3)]
    warmup: u64,
    /// camgate binary [default: next to this one].
    #[arg(long)]
    camgate: Option<std::path::PathBuf>,
    /// Core to pin camgate to (this process takes the others); -1 = no pinning.
    #[arg(long, default_value_t = 0)]
    pin_core: i32,
}

/// A lean MJPEG viewer: HTTP/1.0 over a raw socket (so the body is plain,
/// not chunked) and the sans-IO multipart reader, so the benchmark's own CPU
/// per frame stays small next to the server's.
struct RawViewer {
    sock: tokio::net::TcpStream,
    reader: multipart::Reader,
    buf: Vec<u8>,
}

impl RawViewer {
    async fn open(url: &str) -> Option<RawViewer> {
        let rest = url.strip_prefix("http://")?;
        let (host, path) = rest.split_once('/')?;
        let mut sock = tokio::net::TcpStream::connect(host).await.ok()?;
        sock.set_nodelay(true).ok()?;
        sock.write_all(format!("GET /{path} HTTP/1.0\r\nHost: {host}\r\n\r\n").as_bytes())
            .await
            .ok()?;
        let mut head = Vec::new();
        let mut buf = vec![0u8; 256 * 1024];
        let body_start = loop {
            let n = sock.read(&mut buf).await.ok()?;
            if n == 0 {
                return None;
            }
            head.extend_from_slice(&buf[..n]);
            if let Some(i) = head.windows(4).position(|w| w == b"\r\n\r\n") {
                break i + 4;
            }
        };
        if !head.starts_with(b"HTTP/1.1 200") && !head.starts_with(b"HTTP/1.0 200") {
            return None;
        }
        let mut reader = multipart::Reader::new(multipart::BOUNDARY);
        reader.push(&head[body_start..]);
        Some(RawViewer { sock, reader, buf })
    }

    async fn next(&mut self) -> Option<bytes::Bytes> {
        loop {
            if let Some(p) = self.reader.pull().ok()? {
                return Some(p);
            }
            let n = self.sock.read(&mut self.buf).await.ok()?;
            if n == 0 {
                return None;
            }
            self.reader.push(&self.buf[..n]);
        }
    }
}

fn percentile(sorted: &[u64], p: f64) -> f64 {
    if sorted.is_empty() {
        return f64::NAN;
    }
    let i = ((sorted.len() - 1) as f64 * p).round() as usize;
    sorted[i] as f64 / 1000.0
}

async fn mjpeg(args: MjpegArgs) {
    let (cameras, per_camera) = match args.viewers {
        Some(v) => (1, v),
        None => (args.cameras, args.viewers_per_camera),
    };
    let gw = start_pinned(
        args.camgate.clone(),
        args.pin_core,
        &[
            "--ws-handshakes-per-minute",
            "0",
            "--ws-max-fps",
            &(args.fps.ceil() as u32 + 5).to_string(),
            "--ws-idle-fps",
            "0",
        ],
    );
    let pid = gw.pid();
    let total_secs = args.warmup + args.seconds + 2;
    // Cameras.
    let source = FrameSource::ring(args.size, args.quality, 30);
    let frame_bytes = source.frame(0).len();
    let mut mjpeg_urls = Vec::new();
    let mut cams = Vec::new();
    for i in 0..cameras {
        let m = camgate_firmware_sim::mint_key(
            &gw.http,
            &gw.base,
            ADMIN_TOKEN,
            "live",
            &format!("bench-{i}"),
        )
        .await
        .expect("mint");
        let mut o = CameraOptions::new(m.ws_url.clone(), m.stream_key.clone(), source.clone());
        o.fps = args.fps;
        o.duration = Some(Duration::from_secs(total_secs + 2));
        o.obey_control = false;
        o.stats_every = Duration::from_secs(3600);
        cams.push(tokio::spawn(camera::run(o)));
        mjpeg_urls.push(m.mjpeg_url);
    }

    // Viewers: open once each camera is live.
    let measuring = Arc::new(AtomicBool::new(false));
    let received = Arc::new(AtomicU64::new(0));
    let latencies = Arc::new(std::sync::Mutex::new(Vec::<u64>::new()));
    let stop_at = Instant::now() + Duration::from_secs(total_secs);
    let mut viewers = Vec::new();
    for url in &mjpeg_urls {
        for _ in 0..per_camera {
            let (url, measuring, received, latencies) = (
                url.clone(),
                measuring.clone(),
                received.clone(),
                latencies.clone(),
            );
            viewers.push(tokio::spawn(async move {
                let mut v = loop {
                    match RawViewer::open(&url).await {
                        Some(v) => break v,
                        None if Instant::now() < stop_at => {
                            tokio::time::sleep(Duration::from_millis(50)).await
                        }
                        None => return,
                    }
                };
                let mut local = Vec::new();
                while Instant::now() < stop_at {
                    let Ok(Some(f)) = tokio::time::timeout(Duration::from_secs(2), v.next()).await
                    else {
                        continue;
                    };
                    let now = unix_micros();
                    if measuring.load(Ordering::Relaxed) {
                        received.fetch_add(1, Ordering::Relaxed);
                        if let Some(s) = jpeg::check(&f, TrailingPadding::Reject)
                            .ok()
                            .and_then(|i| i.stamp)
                        {
                            local.push(now.saturating_sub(s.unix_micros));
                        }
                    }
                }
                latencies.lock().expect("lock").extend(local);
            }));
        }
    }

    tokio::time::sleep(Duration::from_secs(args.warmup)).await;
    let ticks = camgate_hardware_tests::clock_ticks_per_sec();
    let in0 = gw.camera_frames_in().await;
    let cpu0 = camgate_hardware_tests::proc_cpu_ticks(pid).unwrap_or(0);
    let t0 = Instant::now();
    measuring.store(true, Ordering::Relaxed);
    let mut rss_max = 0;
    let mut rss_samples = Vec::new();
    while t0.elapsed() < Duration::from_secs(args.seconds) {
        tokio::time::sleep(Duration::from_secs(1)).await;
        let rss = camgate_hardware_tests::proc_rss_kb(pid).unwrap_or(0);
        rss_max = rss_max.max(rss);
        rss_samples.push(rss);
    }
    measuring.store(false, Ordering::Relaxed);
    let elapsed = t0.elapsed().as_secs_f64();
    let cpu1 = camgate_hardware_tests::proc_cpu_ticks(pid).unwrap_or(0);
    let in1 = gw.camera_frames_in().await;
    for v in viewers {
        let _ = v.await;
    }
    for c in cams {
        c.abort();
    }
    let frames_in = in1 - in0;
    let frames_out = received.load(Ordering::Relaxed);
    let expected_out = frames_in * u64::from(per_camera);
    let mut lat = latencies.lock().expect("lock").clone();
    lat.sort_unstable();
    let cores = (cpu1 - cpu0) as f64 / ticks / elapsed;
    let result = serde_json::json!({
        "cameras": cameras,
        "viewersPerCamera": per_camera,
        "fps": args.fps,
        "size": args.size.name(),
        "frameBytes": frame_bytes,
        "seconds": elapsed,
        "framesInPerSec": frames_in as f64 / elapsed,
        "framesOutPerSec": frames_out as f64 / elapsed,
        "delivered": if expected_out > 0 { frames_out as f64 / expected_out as f64 } else { 0.0 },
        "latencyMsP50": percentile(&lat, 0.50),
        "latencyMsP99": percentile(&lat, 0.99),
        "camgateCores": cores,
        "camgateRssMbMax": rss_max as f64 / 1024.0,
        "camgateRssMbFirst": rss_samples.first().copied().unwrap_or(0) as f64 / 1024.0,
        "pinnedCore": args.pin_core,
    });
    println!(
        "camgate-bench mjpeg: {cameras} camera(s) × {per_camera} viewer(s), {} {} fps, ~{} KB frames, {:.0} s\n  \
         frames in {:.1}/s, out {:.1}/s, delivered {:.2} %\n  \
         added latency p50 {:.2} ms, p99 {:.2} ms\n  \
         camgate CPU {:.3} cores, RSS max {:.1} MB",
        args.size.name(),
        args.fps,
        frame_bytes / 1024,
        elapsed,
        frames_in as f64 / elapsed,
        frames_out as f64 / elapsed,
        result["delivered"].as_f64().unwrap_or(0.0) * 100.0,
        result["latencyMsP50"].as_f64().unwrap_or(f64::NAN),
        result["latencyMsP99"].as_f64().unwrap_or(f64::NAN),
        cores,
        rss_max as f64 / 1024.0,
    );
    println!("{result}");
}

/// Starts camgate pinned to `pin_core` and moves this process (all its
/// threads) to the other cores.
fn start_pinned(camgate: Option<std::path::PathBuf>, pin_core: i32, flags: &[&str]) -> Gateway {
    if pin_core >= 0 {
        // Leave camgate's core to camgate: this process and its threads take the rest.
        let others: Vec<String> = (0..std::thread::available_parallelism().map_or(2, |n| n.get())
            as i32)
            .filter(|c| *c != pin_core)
            .map(|c| c.to_string())
            .collect();
        if !others.is_empty() {
            let _ = std::process::Command::new("taskset")
                .args([
                    "-a",
                    "-p",
                    "-c",
                    &others.join(","),
                    &std::process::id().to_string(),
                ])
                .stdout(std::process::Stdio::null())
                .status();
        }
    }
    let binary = camgate.unwrap_or_else(|| bin_dir().join("camgate"));
    let core = pin_core.to_string();
    let prefix: Vec<&str> = if pin_core >= 0 {
        vec!["taskset", "-c", &core]
    } else {
        vec![]
    };
    Gateway::start_with(binary, flags, &prefix)
}

async fn create_ingress(gw: &Gateway, room: &str) -> String {
    gw.create_ingress(room).await["streamKey"]
        .as_str()
        .expect("key")
        .to_owned()
}

fn stats(v: &[f64]) -> String {
    use camgate_hardware_tests::bench_rtmp::median;
    if v.is_empty() {
        return "no samples".into();
    }
    let p = |q: f64| v[((v.len() - 1) as f64 * q).round() as usize];
    format!(
        "median {:.3} s, p10 {:.3} s, p90 {:.3} s ({} samples)",
        median(v),
        p(0.1),
        p(0.9),
        v.len()
    )
}

/// CPU (cores) of `pids` over `secs`.
async fn cpu_of(pids: &[u32], secs: u64) -> f64 {
    let ticks = camgate_hardware_tests::clock_ticks_per_sec();
    let sum = |pids: &[u32]| -> u64 {
        pids.iter()
            .filter_map(|p| camgate_hardware_tests::proc_cpu_ticks(*p))
            .sum()
    };
    let c0 = sum(pids);
    let t0 = Instant::now();
    tokio::time::sleep(Duration::from_secs(secs)).await;
    (sum(pids) - c0) as f64 / ticks / t0.elapsed().as_secs_f64()
}

type Publishers = (
    Arc<AtomicBool>,
    Vec<tokio::task::JoinHandle<Result<(), String>>>,
);

/// Real-time RTMP publishers of `tags` to `addr`, app `live`, one per key.
fn publishers(
    addr: std::net::SocketAddr,
    keys: Vec<String>,
    tags: &Arc<Vec<camgate_hardware_tests::bench_rtmp::Tag>>,
) -> Publishers {
    let stop = Arc::new(AtomicBool::new(false));
    let tasks = keys
        .into_iter()
        .map(|k| {
            let (tx, _rx) = tokio::sync::oneshot::channel();
            tokio::spawn(camgate_hardware_tests::bench_rtmp::publish(
                addr,
                "live".into(),
                k,
                tags.clone(),
                stop.clone(),
                tx,
            ))
        })
        .collect();
    (stop, tasks)
}

async fn stop_publishers((stop, tasks): Publishers) {
    stop.store(true, Ordering::Relaxed);
    for t in tasks {
        let _ = t.await;
    }
}

async fn record(a: RecordCli) {
    use camgate_hardware_tests::bench_rtmp::{Nginx, make_input, read_flv};
    let dir = std::env::temp_dir().join(format!("camgate-bench-rec-{}", std::process::id()));
    std::fs::create_dir_all(dir.join("nginx")).expect("dir");
    let input = make_input(&dir, 10, a.kbps);
    let tags = Arc::new(read_flv(&input));
    let media_secs = f64::from(tags.last().map_or(1000, |t| t.timestamp) + 33) / 1000.0;
    let input_bps = tags.iter().map(|t| t.data.len() as f64).sum::<f64>() / media_secs;
    let gw = start_pinned(a.camgate.clone(), a.pin_core, &[]);
    let rtmp: std::net::SocketAddr = gw
        .rtmp
        .trim_start_matches("rtmp://")
        .parse()
        .expect("rtmp addr");
    let nginx = Nginx::start_recording(&dir.join("nginx"), a.pin_core);
    println!(
        "camgate-bench record: 720p30 H.264 {} kbit/s + AAC ({:.0} kB/s of FLV tag data) per stream, real-time RTMP publishers; camgate and nginx pinned to core {}",
        a.kbps,
        input_bps / 1000.0,
        a.pin_core
    );
    let mut rows = Vec::new();
    for &n in &a.streams {
        let mut keys = Vec::new();
        for i in 0..n {
            keys.push(create_ingress(&gw, &format!("rec{n}x{i}")).await);
        }
        let pubs = publishers(rtmp, keys, &tags);
        tokio::time::sleep(Duration::from_secs(3)).await;
        let live = cpu_of(&[gw.pid()], a.seconds).await;
        let mut vods = Vec::new();
        for i in 0..n {
            let (status, v) = gw
                .api(
                    reqwest::Method::POST,
                    "/api/v1/apps/live/recording/start",
                    Some(serde_json::json!({ "roomName": format!("rec{n}x{i}") })),
                )
                .await;
            assert_eq!(status, 201, "{v}");
            vods.push(v["data"]["vodId"].as_i64().expect("vodId"));
        }
        tokio::time::sleep(Duration::from_secs(1)).await;
        let recording = cpu_of(&[gw.pid()], a.seconds).await;
        let (mut bytes, mut secs) = (0.0, 0.0);
        for id in &vods {
            gw.api(
                reqwest::Method::POST,
                &format!("/api/v1/apps/live/recording/{id}/stop"),
                None,
            )
            .await;
        }
        for id in &vods {
            let deadline = Instant::now() + Duration::from_secs(20);
            loop {
                let (_, v) = gw.get_json(&format!("/api/v1/apps/live/vods/{id}")).await;
                if v["data"]["status"] == "ready" {
                    bytes += v["data"]["sizeBytes"].as_f64().unwrap_or(0.0);
                    secs += v["data"]["durationS"].as_f64().unwrap_or(0.0);
                    break;
                }
                assert!(Instant::now() < deadline, "VOD {id} never ready: {v}");
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
            gw.api(
                reqwest::Method::DELETE,
                &format!("/api/v1/apps/live/vods/{id}"),
                None,
            )
            .await;
        }
        stop_publishers(pubs).await;
        let per = (recording - live).max(0.0) / n as f64;
        let amplification = bytes / (input_bps * secs).max(1.0);
        print!(
            "  {n:3} streams: camgate live {live:.3} cores, recording {recording:.3} cores (+{:.2} mcores per recording), wrote {:.1} MB for {secs:.0} s of media, write amplification {amplification:.3}",
            1000.0 * per,
            bytes / 1e6
        );
        let mut row = serde_json::json!({
            "streams": n, "camgateLiveCores": live, "camgateRecordingCores": recording,
            "camgateWriteAmplification": amplification,
        });
        if let Some(ng) = &nginx {
            let keys: Vec<String> = (0..n).map(|i| format!("rec{n}x{i}")).collect();
            let rec_dir = dir.join("nginx/rec");
            let before: u64 = dir_bytes(&rec_dir);
            let pubs = publishers(ng.rtmp, keys, &tags);
            let t0 = Instant::now();
            tokio::time::sleep(Duration::from_secs(3)).await;
            let c = cpu_of(&ng.pids(), a.seconds).await;
            stop_publishers(pubs).await;
            let elapsed = t0.elapsed().as_secs_f64();
            tokio::time::sleep(Duration::from_millis(500)).await;
            let written = dir_bytes(&rec_dir).saturating_sub(before) as f64;
            let nginx_amp = written / (input_bps * elapsed * n as f64);
            println!(
                "; nginx-rtmp record all {c:.3} cores, write amplification {nginx_amp:.3}; camgate/nginx CPU = {:.2}",
                recording / c.max(1e-9)
            );
            for f in std::fs::read_dir(&rec_dir).into_iter().flatten().flatten() {
                let _ = std::fs::remove_file(f.path());
            }
            row["nginxCores"] = serde_json::json!(c);
            row["nginxWriteAmplification"] = serde_json::json!(nginx_amp);
        } else {
            println!("; nginx-rtmp not installed");
        }
        rows.push(row);
    }
    println!("{}", serde_json::json!({ "record": rows }));
    let _ = std::fs::remove_dir_all(&dir);
}

fn dir_bytes(dir: &std::path::Path) -> u64 {
    std::fs::read_dir(dir)
        .map(|d| {
            d.filter_map(Result::ok)
                .filter_map(|e| e.metadata().ok())
                .map(|m| m.len())
                .sum()
        })
        .unwrap_or(0)
}

async fn rtmp_hls(a: RtmpHlsCli) {
    use camgate_hardware_tests::bench_rtmp::{
        Nginx, availability, make_input, publish, read_flv, watch_playlist, whep_latency,
    };
    let dir = std::env::temp_dir().join(format!("camgate-bench-rtmp-{}", std::process::id()));
    std::fs::create_dir_all(&dir).expect("dir");
    let input = make_input(&dir, 10, a.kbps);
    let tags = Arc::new(read_flv(&input));
    let gw = start_pinned(a.camgate.clone(), a.pin_core, &[]);
    let rtmp: std::net::SocketAddr = gw
        .rtmp
        .trim_start_matches("rtmp://")
        .parse()
        .expect("rtmp addr");
    let nginx = Nginx::start(&dir, a.pin_core, a.nginx_fragment);
    println!(
        "camgate-bench rtmp-hls: 720p30 H.264 {} kbit/s + AAC, 1 s GOP, real-time RTMP publisher (rml_rtmp); camgate and nginx pinned to core {}",
        a.kbps, a.pin_core
    );
    let window = Duration::from_secs(a.latency_seconds);

    // Latency, camgate: one publisher; LL-HLS parts, segments, WebRTC.
    let key = create_ingress(&gw, "lat").await;
    let stop = Arc::new(AtomicBool::new(false));
    let (tx, rx) = tokio::sync::oneshot::channel();
    let pubt = tokio::spawn(publish(
        rtmp,
        "live".into(),
        key.clone(),
        tags.clone(),
        stop.clone(),
        tx,
    ));
    let t0 = rx.await.expect("camgate publish started");
    let url = format!("{}/hls/live/live-lat/index.m3u8", gw.base);
    let (parts, segs, rtc) = tokio::join!(
        watch_playlist(&gw.http, &url, window, true),
        watch_playlist(&gw.http, &url, window, false),
        async {
            tokio::time::sleep(Duration::from_secs(2)).await;
            whep_latency(&gw, "live-lat", t0, window - Duration::from_secs(2)).await
        }
    );
    stop.store(true, Ordering::Relaxed);
    let _ = pubt.await;
    let parts = availability(&parts, t0);
    let segs = availability(&segs, t0);
    println!(
        "  camgate LL-HLS part available after last frame sent: {}",
        stats(&parts)
    );
    println!(
        "  camgate HLS segment available after last frame sent: {}",
        stats(&segs)
    );
    println!(
        "  camgate LL-HLS player latency ≈ PART-HOLD-BACK 1.0 s + part availability ≈ {:.2} s",
        1.002 + camgate_hardware_tests::bench_rtmp::median(&parts)
    );
    println!("  camgate RTMP → WebRTC frame latency: {}", stats(&rtc));

    // Latency, nginx-rtmp.
    let mut nginx_segment = f64::NAN;
    if let Some(n) = &nginx {
        let stop = Arc::new(AtomicBool::new(false));
        let (tx, rx) = tokio::sync::oneshot::channel();
        let pubt = tokio::spawn(publish(
            n.rtmp,
            "live".into(),
            "lat".into(),
            tags.clone(),
            stop.clone(),
            tx,
        ));
        let t0 = rx.await.expect("nginx publish started");
        let url = format!("{}/hls/lat.m3u8", n.http);
        let segs = watch_playlist(&gw.http, &url, window + Duration::from_secs(4), false).await;
        stop.store(true, Ordering::Relaxed);
        let _ = pubt.await;
        let segs = availability(&segs, t0);
        nginx_segment = camgate_hardware_tests::bench_rtmp::median(&segs);
        println!(
            "  nginx-rtmp ({} s fragments) segment available after last frame sent: {}",
            a.nginx_fragment,
            stats(&segs)
        );
        println!(
            "  nginx-rtmp standard player latency ≈ 3 × {} s + availability ≈ {:.2} s",
            a.nginx_fragment,
            3.0 * f64::from(a.nginx_fragment) + nginx_segment
        );
    } else {
        println!("  nginx-rtmp: not installed (apt install nginx libnginx-mod-rtmp)");
    }

    // CPU per publisher.
    let mut rows = Vec::new();
    for &n in &a.publishers {
        let mut keys = Vec::new();
        for i in 0..n {
            keys.push(create_ingress(&gw, &format!("cpu{n}x{i}")).await);
        }
        let run = |addr, keys| publishers(addr, keys, &tags);
        let (stop, tasks) = run(rtmp, keys);
        tokio::time::sleep(Duration::from_secs(3)).await;
        let cg = cpu_of(&[gw.pid()], a.seconds).await;
        stop.store(true, Ordering::Relaxed);
        for t in tasks {
            let _ = t.await;
        }
        let ng = match &nginx {
            Some(ng) => {
                let keys: Vec<String> = (0..n).map(|i| format!("cpu{n}x{i}")).collect();
                let (stop, tasks) = run(ng.rtmp, keys);
                tokio::time::sleep(Duration::from_secs(3)).await;
                let c = cpu_of(&ng.pids(), a.seconds).await;
                stop.store(true, Ordering::Relaxed);
                for t in tasks {
                    let _ = t.await;
                }
                Some(c)
            }
            None => None,
        };
        println!(
            "  {n:3} publishers: camgate {cg:.3} cores ({:.2} mcores each){}",
            1000.0 * cg / n as f64,
            match ng {
                Some(c) => format!(
                    ", nginx-rtmp {c:.3} cores ({:.2} mcores each), camgate/nginx = {:.2}",
                    1000.0 * c / n as f64,
                    cg / c.max(1e-9)
                ),
                None => String::new(),
            }
        );
        rows.push(serde_json::json!({ "publishers": n, "camgateCores": cg, "nginxCores": ng }));
    }
    println!(
        "{}",
        serde_json::json!({
            "partAvailabilityMedian": camgate_hardware_tests::bench_rtmp::median(&parts),
            "segmentAvailabilityMedian": camgate_hardware_tests::bench_rtmp::median(&segs),
            "webrtcLatencyMedian": camgate_hardware_tests::bench_rtmp::median(&rtc),
            "nginxSegmentAvailabilityMedian": nginx_segment,
            "cpu": rows,
        })
    );
    drop(nginx);
    let _ = std::fs::remove_dir_all(&dir);
}

#[tokio::main]
async fn main() {
    match Cli::parse().cmd {
        Cmd::Mjpeg(a) => mjpeg(a).await,
        Cmd::RtmpHls(a) => rtmp_hls(a).await,
        Cmd::Record(a) => record(a).await,
        Cmd::Soak(a) => {
            let binary = a
                .camgate
                .clone()
                .unwrap_or_else(|| bin_dir().join("camgate"));
            let gw = Gateway::start_with(binary, &["--ws-handshakes-per-minute", "0"], &[]);
            let work_dir = gw.data_dir.join("soak-input");
            std::fs::create_dir_all(&work_dir).expect("work dir");
            let report = camgate_hardware_tests::bench_soak::run(
                gw,
                camgate_hardware_tests::bench_soak::SoakArgs {
                    minutes: a.minutes,
                    cameras: a.cameras,
                    fps: a.fps,
                    mjpeg_per_camera: a.mjpeg_per_camera,
                    webrtc_viewers: a.webrtc_viewers,
                    hls_viewers: a.hls_viewers,
                    api_rps: a.api_rps,
                    work_dir,
                },
            )
            .await;
            println!("{report}");
            if report["pass"] != true {
                std::process::exit(1);
            }
        }
        Cmd::Rtsp(a) => {
            let gw = start_pinned(a.camgate.clone(), a.pin_core, &[]);
            camgate_hardware_tests::bench_rtsp::run(
                gw,
                camgate_hardware_tests::bench_rtsp::RtspArgs {
                    steps: a.cameras,
                    seconds: a.seconds,
                    core: a.pin_core.max(0) as u32,
                },
            )
            .await;
        }
        Cmd::Sfu(a) => {
            let gw = start_pinned(a.camgate.clone(), a.pin_core, &[]);
            camgate_hardware_tests::bench_sfu::run(
                gw,
                camgate_hardware_tests::bench_sfu::SfuArgs {
                    steps: a.subscribers,
                    seconds: a.seconds,
                    kbps: a.kbps,
                    fps: a.fps,
                    gop_secs: a.gop,
                },
            )
            .await;
        }
        Cmd::Transcode(a) => {
            tokio::task::spawn_blocking(move || {
                camgate_hardware_tests::bench_transcode::run(
                    camgate_hardware_tests::bench_transcode::TranscodeArgs {
                        seconds: a.seconds,
                        quality: a.quality,
                        core: a.core,
                        kbps: a.kbps,
                    },
                )
            })
            .await
            .expect("transcode bench");
        }
    }
}
