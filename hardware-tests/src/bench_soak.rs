//! `camgate-bench soak`: a realistic mix for N minutes against one camgate,
//! then a report. The mix: cameras over the device WebSocket (simulated
//! ESP32s, reconnecting like the firmware), an RTMP publisher (camgate's
//! own RTMP client, real time, looped H.264 + AAC from ffmpeg), a pulled
//! RTSP camera (GStreamer), WebRTC viewers (str0m peers counting RTP
//! sequence numbers), MJPEG viewers of every camera, HLS viewers polling
//! the RTMP stream's playlist and fetching its new segments, and API
//! traffic (lists, stats, token create/revoke).
//!
//! Reported at the end: frames and packets lost, errors by code, RSS,
//! file descriptors and tasks over time, p99 latencies of API and HLS
//! requests. `pass` is true when nothing failed, WebRTC lost under 1 %,
//! MJPEG viewers got at least 90 % of the frames, and RSS and descriptors
//! stayed flat (last third of the run within 10 % + 8 MiB of the second
//! third; descriptors within 16).

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use camgate_firmware_sim::camera::{self, CameraOptions};
use camgate_firmware_sim::frames::FrameSource;
use camgate_protocols::device::FrameSize;

use crate::bench_sfu::{Totals, subscriber};
use crate::{Gateway, MjpegViewer, RtspCamera};

/// What to run.
#[derive(Debug, Clone)]
pub struct SoakArgs {
    /// Length of the run.
    pub minutes: f64,
    /// Cameras over the device WebSocket.
    pub cameras: usize,
    /// Frames per second per camera.
    pub fps: f64,
    /// MJPEG viewers per camera.
    pub mjpeg_per_camera: usize,
    /// WebRTC viewers of the RTMP stream.
    pub webrtc_viewers: usize,
    /// HLS viewers of the RTMP stream.
    pub hls_viewers: usize,
    /// API requests per second.
    pub api_rps: f64,
    /// Where ffmpeg writes the RTMP input.
    pub work_dir: std::path::PathBuf,
}

/// Counters of one kind of client.
#[derive(Default)]
struct Errors(Mutex<BTreeMap<String, u64>>);

impl Errors {
    fn add(&self, code: impl Into<String>) {
        *self
            .0
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .entry(code.into())
            .or_default() += 1;
    }
}

#[derive(Default)]
struct Latencies(Mutex<Vec<f64>>);

impl Latencies {
    fn add(&self, since: Instant) {
        self.0
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .push(since.elapsed().as_secs_f64() * 1000.0);
    }

    fn p(&self, q: f64) -> f64 {
        let mut v = self.0.lock().unwrap_or_else(|e| e.into_inner()).clone();
        if v.is_empty() {
            return f64::NAN;
        }
        v.sort_by(|a, b| a.total_cmp(b));
        v[((v.len() - 1) as f64 * q).round() as usize]
    }

    fn count(&self) -> usize {
        self.0.lock().unwrap_or_else(|e| e.into_inner()).len()
    }
}

/// One sample of camgate's process.
#[derive(Debug, Clone, serde::Serialize)]
struct Sample {
    secs: f64,
    rss_mb: f64,
    fds: usize,
    tasks: f64,
}

async fn sample(gw: &Gateway, t0: Instant) -> Sample {
    let pid = gw.pid();
    Sample {
        secs: t0.elapsed().as_secs_f64(),
        rss_mb: crate::proc_rss_kb(pid).unwrap_or(0) as f64 / 1024.0,
        fds: crate::proc_open_fds(pid),
        tasks: gw.metrics().await.get("tasks").copied().unwrap_or(f64::NAN),
    }
}

/// Runs the soak against a started gateway; prints a summary and returns
/// the report.
pub async fn run(gw: Gateway, args: SoakArgs) -> serde_json::Value {
    let gw = Arc::new(gw);
    let run_for = Duration::from_secs_f64(args.minutes * 60.0);
    let stop = Arc::new(AtomicBool::new(false));
    let errors = Arc::new(Errors::default());

    // Cameras, reconnecting like the firmware.
    let source = FrameSource::ring(FrameSize::Qvga, 12, 30);
    let mut cams = Vec::new();
    let mut mjpeg_urls = Vec::new();
    for i in 0..args.cameras {
        let m = gw.mint(&format!("soak-{i}")).await;
        let mut o = CameraOptions::new(m.ws_url.clone(), m.stream_key.clone(), source.clone());
        o.fps = args.fps;
        // Set-up takes a while; the cameras are stopped at the end anyway.
        o.duration = Some(run_for + Duration::from_secs(120));
        o.reconnect = true;
        o.obey_control = false;
        cams.push(tokio::spawn(camera::run(o)));
        mjpeg_urls.push(m.mjpeg_url);
    }

    // The RTMP publisher (looped, real time) and its ingress.
    let input = crate::bench_rtmp::make_input(&args.work_dir, 10, 1000);
    let tags = Arc::new(crate::bench_rtmp::read_flv(&input));
    let ingress = gw.create_ingress("soak-rtmp").await;
    let key = ingress["streamKey"].as_str().unwrap_or_default().to_owned();
    let rtmp_addr: std::net::SocketAddr = gw
        .rtmp
        .trim_start_matches("rtmp://")
        .parse()
        .expect("rtmp address");
    let (tx, _rx) = tokio::sync::oneshot::channel();
    let publisher = {
        let (stop, errors, tags) = (stop.clone(), errors.clone(), tags.clone());
        tokio::spawn(async move {
            if let Err(e) =
                crate::bench_rtmp::publish(rtmp_addr, "live".into(), key, tags, stop, tx).await
            {
                errors.add(format!("rtmp_publisher: {e}"));
            }
        })
    };

    // The pulled RTSP camera.
    let rtsp = RtspCamera::start(0, None);
    if let Some(cam) = &rtsp {
        let (status, v) = gw
            .api(
                reqwest::Method::POST,
                "/api/v1/apps/live/ingress",
                Some(serde_json::json!({
                    "inputType": "url", "room": "soak-rtsp", "url": cam.url(None, "h264")
                })),
            )
            .await;
        if status != 201 {
            errors.add(format!("rtsp_ingress_{status}: {v}"));
        }
    }

    // Wait until the RTMP stream is live before viewers join it.
    let deadline = Instant::now() + Duration::from_secs(20);
    while Instant::now() < deadline {
        let (_, v) = gw.get_json("/api/v1/apps/live/ingress?limit=50").await;
        let live = v["data"]
            .as_array()
            .into_iter()
            .flatten()
            .any(|i| i["room"] == "live-soak-rtmp" && i["status"] == "publishing");
        if live {
            break;
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }

    let mut tasks = Vec::new();
    // WebRTC viewers of the RTMP stream.
    let totals = Arc::new(Totals::default());
    totals.measuring.store(true, Ordering::Relaxed);
    for _ in 0..args.webrtc_viewers {
        tasks.push(tokio::spawn(subscriber(
            gw.clone(),
            "/whep/live-soak-rtmp".into(),
            totals.clone(),
            stop.clone(),
        )));
    }

    // MJPEG viewers: count frames against what the camera sent.
    let mjpeg_frames = Arc::new(AtomicU64::new(0));
    for url in &mjpeg_urls {
        for _ in 0..args.mjpeg_per_camera {
            let (gw, url, stop, frames, errors) = (
                gw.clone(),
                url.clone(),
                stop.clone(),
                mjpeg_frames.clone(),
                errors.clone(),
            );
            tasks.push(tokio::spawn(async move {
                while !stop.load(Ordering::Relaxed) {
                    let mut v = match MjpegViewer::open(&gw.http, &url).await {
                        Ok(v) => v,
                        Err(status) => {
                            errors.add(format!("mjpeg_{status}"));
                            tokio::time::sleep(Duration::from_millis(500)).await;
                            continue;
                        }
                    };
                    while !stop.load(Ordering::Relaxed) {
                        match v.next_frame_within(Duration::from_secs(3)).await {
                            Some(_) => {
                                frames.fetch_add(1, Ordering::Relaxed);
                            }
                            None => {
                                if !stop.load(Ordering::Relaxed) {
                                    errors.add("mjpeg_stalled");
                                }
                                break;
                            }
                        }
                    }
                }
            }));
        }
    }

    // HLS viewers: the playlist every second, each new segment once.
    let hls = Arc::new(Latencies::default());
    for _ in 0..args.hls_viewers {
        let (gw, stop, hls, errors) = (gw.clone(), stop.clone(), hls.clone(), errors.clone());
        tasks.push(tokio::spawn(async move {
            let base = format!("{}/hls/live/live-soak-rtmp/", gw.base);
            let mut seen = std::collections::HashSet::new();
            while !stop.load(Ordering::Relaxed) {
                let t = Instant::now();
                match gw.http.get(format!("{base}index.m3u8")).send().await {
                    Ok(r) if r.status() == 200 => {
                        let text = r.text().await.unwrap_or_default();
                        hls.add(t);
                        for line in text.lines().filter(|l| l.starts_with("seg-")) {
                            let name = line.split('?').next().unwrap_or(line).to_owned();
                            if !seen.insert(name.clone()) {
                                continue;
                            }
                            let t = Instant::now();
                            match gw.http.get(format!("{base}{name}")).send().await {
                                Ok(r) if r.status() == 200 => {
                                    let _ = r.bytes().await;
                                    hls.add(t);
                                }
                                Ok(r) => errors.add(format!("hls_segment_{}", r.status().as_u16())),
                                Err(_) => errors.add("hls_segment_io"),
                            }
                        }
                    }
                    Ok(r) => errors.add(format!("hls_playlist_{}", r.status().as_u16())),
                    Err(_) => errors.add("hls_playlist_io"),
                }
                tokio::time::sleep(Duration::from_secs(1)).await;
            }
        }));
    }

    // API traffic.
    let api = Arc::new(Latencies::default());
    {
        let (gw, stop, api, errors) = (gw.clone(), stop.clone(), api.clone(), errors.clone());
        let every = Duration::from_secs_f64(1.0 / args.api_rps.max(0.1));
        tasks.push(tokio::spawn(async move {
            let mut i = 0u64;
            while !stop.load(Ordering::Relaxed) {
                let t = Instant::now();
                let (status, v) = match i % 4 {
                    0 => gw.get_json("/api/v1/apps/live/streams").await,
                    1 => gw.get_json("/api/v1/stats").await,
                    2 => gw.get_json("/api/v1/apps/live/ingress").await,
                    _ => {
                        let (s, v) = gw
                            .api(
                                reqwest::Method::POST,
                                "/api/v1/tokens",
                                Some(serde_json::json!({
                                    "name": format!("soak-{i}"), "scope": "app", "app": "live"
                                })),
                            )
                            .await;
                        if let Some(id) = v["data"]["id"].as_i64() {
                            let _ = gw.revoke(&id.to_string()).await;
                        }
                        (if s == 201 { 200 } else { s }, v)
                    }
                };
                api.add(t);
                if status != 200 {
                    let code = v["error"]["code"].as_str().unwrap_or("").to_owned();
                    errors.add(format!("api_{status}_{code}"));
                }
                i += 1;
                tokio::time::sleep(every.saturating_sub(t.elapsed())).await;
            }
        }));
    }

    // Samples while it runs: the run's length counts from here, once
    // everything is connected.
    let t0 = Instant::now();
    let every = Duration::from_secs_f64((run_for.as_secs_f64() / 30.0).clamp(2.0, 60.0));
    let mut samples = vec![sample(&gw, t0).await];
    let mjpeg0 = mjpeg_frames.load(Ordering::Relaxed);
    let frames_in0 = gw.camera_frames_in().await;
    let measured_from = Instant::now();
    while t0.elapsed() < run_for {
        tokio::time::sleep(every.min(run_for.saturating_sub(t0.elapsed()))).await;
        samples.push(sample(&gw, t0).await);
    }
    let frames_in = gw.camera_frames_in().await.saturating_sub(frames_in0);
    let mjpeg_got = mjpeg_frames.load(Ordering::Relaxed) - mjpeg0;
    let measured = measured_from.elapsed().as_secs_f64();
    stop.store(true, Ordering::Relaxed);
    for t in tasks {
        let _ = tokio::time::timeout(Duration::from_secs(5), t).await;
    }
    let _ = tokio::time::timeout(Duration::from_secs(5), publisher).await;
    for c in cams {
        c.abort();
    }
    drop(rtsp);

    // Verdict.
    let expected_mjpeg = frames_in * args.mjpeg_per_camera as u64;
    let mjpeg_delivered = if expected_mjpeg > 0 {
        mjpeg_got as f64 / expected_mjpeg as f64
    } else {
        0.0
    };
    let (received, expected) = (
        totals.received.load(Ordering::Relaxed),
        totals.expected.load(Ordering::Relaxed),
    );
    let webrtc_loss = if expected > 0 {
        1.0 - received as f64 / expected as f64
    } else {
        1.0
    };
    let third = |k: usize| {
        let n = samples.len();
        let part: Vec<&Sample> = samples[n * k / 3..n * (k + 1) / 3].iter().collect();
        if part.is_empty() {
            return (f64::NAN, 0usize);
        }
        (
            part.iter().map(|s| s.rss_mb).sum::<f64>() / part.len() as f64,
            part.iter().map(|s| s.fds).max().unwrap_or(0),
        )
    };
    let (rss_mid, fds_mid) = third(1);
    let (rss_end, fds_end) = third(2);
    let rss_flat = rss_end <= rss_mid * 1.10 + 8.0;
    let fds_flat = fds_end <= fds_mid + 16;
    let errors = errors.0.lock().unwrap_or_else(|e| e.into_inner()).clone();
    let failed_webrtc = totals.failed.load(Ordering::Relaxed);
    let pass = errors.is_empty()
        && failed_webrtc == 0
        && webrtc_loss < 0.01
        && mjpeg_delivered >= 0.9
        && rss_flat
        && fds_flat;
    let report = serde_json::json!({
        "minutes": args.minutes,
        "mix": {
            "cameras": args.cameras, "fps": args.fps, "mjpegViewersPerCamera": args.mjpeg_per_camera,
            "rtmpPublishers": 1, "rtspPulls": 1, "webrtcViewers": args.webrtc_viewers,
            "hlsViewers": args.hls_viewers, "apiRequestsPerSecond": args.api_rps,
        },
        "cameraFramesIn": frames_in,
        "mjpegFramesOut": mjpeg_got,
        "mjpegDelivered": mjpeg_delivered,
        "webrtcPacketsReceived": received,
        "webrtcPacketsLost": expected.saturating_sub(received),
        "webrtcLoss": webrtc_loss,
        "webrtcFailed": failed_webrtc,
        "errors": errors,
        "apiRequests": api.count(),
        "apiMsP50": api.p(0.50),
        "apiMsP99": api.p(0.99),
        "hlsRequests": hls.count(),
        "hlsMsP50": hls.p(0.50),
        "hlsMsP99": hls.p(0.99),
        "rssMb": samples.iter().map(|s| (s.secs.round(), (s.rss_mb * 10.0).round() / 10.0)).collect::<Vec<_>>(),
        "fds": samples.iter().map(|s| s.fds).collect::<Vec<_>>(),
        "tasks": samples.iter().map(|s| s.tasks).collect::<Vec<_>>(),
        "rssFlat": rss_flat,
        "fdsFlat": fds_flat,
        "measuredSeconds": measured,
        "pass": pass,
    });
    println!(
        "camgate-bench soak: {:.1} min, {} cameras × {} MJPEG viewers, 1 RTMP + 1 RTSP, {} WebRTC, {} HLS, {} API req/s\n  \
         camera frames in {frames_in}, MJPEG delivered {:.1} %, WebRTC loss {:.3} %\n  \
         API p50 {:.1} ms p99 {:.1} ms ({} requests), HLS p50 {:.1} ms p99 {:.1} ms ({} requests)\n  \
         RSS {:.1} → {:.1} MiB (flat: {rss_flat}), fds {} → {} (flat: {fds_flat}), errors {:?}\n  \
         pass: {pass}",
        args.minutes,
        args.cameras,
        args.mjpeg_per_camera,
        args.webrtc_viewers,
        args.hls_viewers,
        args.api_rps,
        mjpeg_delivered * 100.0,
        webrtc_loss * 100.0,
        api.p(0.5),
        api.p(0.99),
        api.count(),
        hls.p(0.5),
        hls.p(0.99),
        hls.count(),
        samples.first().map_or(0.0, |s| s.rss_mb),
        samples.last().map_or(0.0, |s| s.rss_mb),
        samples.first().map_or(0, |s| s.fds),
        samples.last().map_or(0, |s| s.fds),
        report["errors"],
    );
    report
}
