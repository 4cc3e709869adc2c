//! `camgate-bench rtsp`: how many 2 Mbit/s H.264 RTSP cameras one core
//! pulls and relays to one WebRTC viewer each, and what one MJPEG viewer of
//! an H.264 camera costs next to ffmpeg doing the same H.264 → MJPEG
//! conversion.
//!
//! The camera is Debian's GStreamer RTSP server (`python/rtsp_camera.py`,
//! mount `/bench`: 720p30 H.264 at 2 Mbit/s CBR, 1 s GOP, one shared encode
//! for every client), pinned to the client core. Every "camera" is one
//! RTSP session to it (a `url` ingress each), so camgate does the full
//! per-camera work: RTSP/RTP over TCP, depacketizing, SPS tracking, HLS
//! muxing, RTP packetizing and SRTP for its viewer. Viewers are str0m WHEP
//! subscribers in this process (they count RTP without decrypting; see
//! `bench_sfu`). camgate runs pinned to its own core; its CPU comes from
//! /proc.
//!
//! MJPEG: one camera, first without viewers (the pull alone), then with one
//! MJPEG viewer (camgate decodes every frame and encodes 10 JPEGs a second
//! at quality 75), and ffmpeg pinned to the same core pulling the same
//! camera and converting it the same way (`-vf fps=10 -q:v 5 -f mjpeg`).

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use crate::bench_sfu::{Totals, subscriber};
use crate::{Gateway, RtspCamera};

/// Options of the RTSP benchmark.
#[derive(Debug, Clone)]
pub struct RtspArgs {
    /// Camera counts to step through.
    pub steps: Vec<usize>,
    /// Seconds measured per step.
    pub seconds: u64,
    /// Core camgate and ffmpeg are pinned to.
    pub core: u32,
}

fn cores_of(pid: u32, during: Duration) -> f64 {
    let ticks = crate::clock_ticks_per_sec();
    let c0 = crate::proc_cpu_ticks(pid).unwrap_or(0);
    let t0 = Instant::now();
    std::thread::sleep(during);
    let c1 = crate::proc_cpu_ticks(pid).unwrap_or(0);
    (c1.saturating_sub(c0)) as f64 / ticks / t0.elapsed().as_secs_f64()
}

async fn cores_async(pid: u32, during: Duration) -> f64 {
    tokio::task::spawn_blocking(move || cores_of(pid, during))
        .await
        .unwrap_or(0.0)
}

async fn add_camera(gw: &Gateway, url: &str, i: usize) -> String {
    let (status, v) = gw
        .api(
            reqwest::Method::POST,
            "/api/v1/apps/live/ingress",
            Some(serde_json::json!({ "inputType": "url", "room": format!("cam-{i}"), "url": url })),
        )
        .await;
    assert_eq!(status, 201, "{v}");
    v["data"]["ingressId"]
        .as_str()
        .expect("ingress id")
        .to_owned()
}

/// Runs the benchmark against a started (pinned) gateway.
pub async fn run(gw: Gateway, args: RtspArgs) {
    let client_core = 1 - args.core.min(1);
    let camera = RtspCamera::start_pinned(client_core).expect("GStreamer RTSP server");
    let url = camera.url(None, "bench");
    let gw = Arc::new(gw);
    let pid = gw.pid();
    let stop = Arc::new(AtomicBool::new(false));
    let totals = Arc::new(Totals::default());
    let mut ids: Vec<String> = Vec::new();
    let mut subs = Vec::new();
    println!(
        "camgate-bench rtsp: 720p30 H.264 2 Mbit/s RTSP cameras (GStreamer RTSP server), one WHEP viewer each; camgate pinned to core {}, camera and viewers on core {client_core}",
        args.core
    );
    for &n in &args.steps {
        while ids.len() < n {
            let i = ids.len();
            ids.push(add_camera(&gw, &url, i).await);
        }
        let deadline = Instant::now() + Duration::from_secs(60);
        loop {
            let (_, v) = gw.get_json("/api/v1/apps/live/ingress?limit=500").await;
            let publishing = v["data"].as_array().map_or(0, |a| {
                a.iter().filter(|r| r["status"] == "publishing").count()
            });
            if publishing >= n {
                break;
            }
            if Instant::now() >= deadline {
                let errors: Vec<String> = v["data"]
                    .as_array()
                    .map(|a| {
                        a.iter()
                            .filter(|r| r["status"] != "publishing")
                            .map(|r| format!("{} {}", r["status"], r["lastError"]))
                            .collect()
                    })
                    .unwrap_or_default();
                panic!("only {publishing} of {n} cameras publishing: {errors:?}");
            }
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
        while subs.len() < n {
            let i = subs.len();
            subs.push(tokio::spawn(subscriber(
                gw.clone(),
                format!("/whep/live-cam-{i}"),
                totals.clone(),
                stop.clone(),
            )));
        }
        let deadline = Instant::now() + Duration::from_secs(30);
        while totals.receiving.load(Ordering::Relaxed) + totals.failed.load(Ordering::Relaxed) < n
            && Instant::now() < deadline
        {
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        tokio::time::sleep(Duration::from_secs(2)).await;
        for c in [&totals.received, &totals.expected, &totals.bytes] {
            c.store(0, Ordering::Relaxed);
        }
        totals.measuring.store(true, Ordering::Relaxed);
        let t0 = Instant::now();
        let cores = cores_async(pid, Duration::from_secs(args.seconds)).await;
        totals.measuring.store(false, Ordering::Relaxed);
        let secs = t0.elapsed().as_secs_f64();
        let received = totals.received.load(Ordering::Relaxed);
        let expected = totals.expected.load(Ordering::Relaxed).max(1);
        let mbits = totals.bytes.load(Ordering::Relaxed) as f64 * 8.0 / secs / 1e6;
        let loss = 100.0 * expected.saturating_sub(received) as f64 / expected as f64;
        let receiving = totals.receiving.load(Ordering::Relaxed);
        println!(
            "  {n:4} cameras ({receiving} viewers receiving): camgate {cores:.3} cores = {:.1} mcores/camera ≈ {:.0} cameras/core; {mbits:.1} Mbit/s to viewers, loss {loss:.3} %, RSS {:.0} MB",
            1000.0 * cores / n as f64,
            n as f64 / cores.max(1e-6),
            crate::proc_rss_kb(pid).unwrap_or(0) as f64 / 1024.0,
        );
        if loss >= 1.0 {
            break;
        }
    }
    stop.store(true, Ordering::Relaxed);
    for s in subs.drain(..) {
        let _ = s.await;
    }
    for id in &ids {
        let _ = gw
            .api(
                reqwest::Method::DELETE,
                &format!("/api/v1/apps/live/ingress/{id}"),
                None,
            )
            .await;
    }
    tokio::time::sleep(Duration::from_secs(2)).await;

    // MJPEG of one H.264 camera: camgate vs ffmpeg on the same core.
    let id = add_camera(&gw, &url, 1000).await;
    gw.wait_ingress("live", &id, "publishing", Duration::from_secs(30))
        .await;
    tokio::time::sleep(Duration::from_secs(2)).await;
    let pull_only = cores_async(pid, Duration::from_secs(args.seconds)).await;
    let mjpeg_url = format!("{}/live/live/live-cam-1000/mjpeg", gw.base);
    let mut viewer = crate::MjpegViewer::open(&gw.http, &mjpeg_url)
        .await
        .expect("mjpeg viewer");
    let frames = Arc::new(std::sync::atomic::AtomicU64::new(0));
    let reader = {
        let frames = frames.clone();
        tokio::spawn(async move {
            while viewer.next_frame().await.is_some() {
                frames.fetch_add(1, Ordering::Relaxed);
            }
        })
    };
    tokio::time::sleep(Duration::from_secs(3)).await;
    let f0 = frames.load(Ordering::Relaxed);
    let t0 = Instant::now();
    let with_mjpeg = cores_async(pid, Duration::from_secs(args.seconds)).await;
    let fps = (frames.load(Ordering::Relaxed) - f0) as f64 / t0.elapsed().as_secs_f64();
    reader.abort();
    let ffmpeg = std::process::Command::new("taskset")
        .args(["-c", &args.core.to_string(), "ffmpeg"])
        .args(["-hide_banner", "-loglevel", "error", "-nostdin"])
        .args(["-rtsp_transport", "tcp", "-i", &url])
        .args([
            "-an",
            "-vf",
            "fps=10",
            "-q:v",
            "5",
            "-f",
            "mjpeg",
            "-y",
            "/dev/null",
        ])
        .spawn();
    let ffmpeg_cores = match ffmpeg {
        Ok(mut child) => {
            tokio::time::sleep(Duration::from_secs(3)).await;
            let c = cores_async(child.id(), Duration::from_secs(args.seconds)).await;
            let _ = child.kill();
            let _ = child.wait();
            Some(c)
        }
        Err(e) => {
            println!("  ffmpeg not run: {e}");
            None
        }
    };
    let mjpeg_cost = with_mjpeg - pull_only;
    println!(
        "  MJPEG of one 720p30 H.264 camera at {fps:.1} fps: camgate pull alone {pull_only:.3} cores, with one MJPEG viewer {with_mjpeg:.3} cores (the viewer costs {mjpeg_cost:.3} cores)"
    );
    if let Some(f) = ffmpeg_cores {
        println!(
            "  ffmpeg pulling the same camera and converting it to 10 fps MJPEG: {f:.3} cores → camgate/ffmpeg = {:.2} (whole pull + conversion)",
            with_mjpeg / f.max(1e-6)
        );
    }
    drop(camera);
}
