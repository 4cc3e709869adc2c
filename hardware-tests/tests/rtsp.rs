//! Pulled cameras end to end. The camera is Debian's GStreamer RTSP server
//! (`python/rtsp_camera.py`) or `camsim serve` (the ESP32 CameraWebServer's
//! HTTP side); viewers are ffprobe, Chromium (WHEP) and plain MJPEG
//! clients. Failures (wrong credentials, nothing answering, a refused port,
//! H.265, garbage) show as the ingress's status and last error while other
//! streams go on.

use std::process::{Child, Command, Stdio};
use std::time::Duration;

use camgate_hardware_tests::{
    Gateway, MjpegViewer, RtspCamera, bin, browser_scripts, ffprobe_streams, free_port, run_node,
    whep_in_chromium,
};
use reqwest::Method;

const CREDS: (&str, &str) = ("viewer", "s3cret-pw");

/// Creates a `url` ingress; returns its `data`.
async fn pull(gw: &Gateway, room: &str, body: serde_json::Value) -> serde_json::Value {
    let mut body = body;
    body["inputType"] = "url".into();
    body["room"] = room.into();
    let (status, v) = gw
        .api(Method::POST, "/api/v1/apps/live/ingress", Some(body))
        .await;
    assert_eq!(status, 201, "{v}");
    v["data"].clone()
}

fn id(v: &serde_json::Value) -> String {
    v["ingressId"].as_str().expect("ingressId").to_owned()
}

/// Waits until the ingress's last error contains `needle`.
async fn wait_error(gw: &Gateway, id: &str, needle: &str) -> serde_json::Value {
    let deadline = std::time::Instant::now() + Duration::from_secs(30);
    loop {
        let (_, v) = gw
            .get_json(&format!("/api/v1/apps/live/ingress/{id}"))
            .await;
        if v["data"]["lastError"]
            .as_str()
            .is_some_and(|e| e.contains(needle))
        {
            return v["data"].clone();
        }
        assert!(
            std::time::Instant::now() < deadline,
            "no error {needle:?}: {v}"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

async fn probe(url: String) -> String {
    tokio::task::spawn_blocking(move || ffprobe_streams(&url))
        .await
        .expect("ffprobe")
}

#[tokio::test]
async fn an_rtsp_camera_is_pulled_played_everywhere_and_resumes_after_a_restart() {
    let Some(mut camera) = RtspCamera::start(0, Some(CREDS)) else {
        return;
    };
    let gw = Gateway::start(&["--pull-max-backoff", "2"]);
    let row = pull(
        &gw,
        "gate",
        serde_json::json!({ "url": camera.url(Some(CREDS), "h264aac") }),
    )
    .await;
    let ingress = id(&row);
    // Credentials are used, never returned.
    assert_eq!(
        row["url"],
        format!("rtsp://127.0.0.1:{}/h264aac", camera.port),
        "{row}"
    );
    assert!(!row.to_string().contains(CREDS.1), "{row}");
    let live = gw
        .wait_ingress("live", &ingress, "publishing", Duration::from_secs(20))
        .await;
    assert_eq!(
        (live["width"].as_u64(), live["height"].as_u64()),
        (Some(640), Some(360)),
        "{live}"
    );
    assert!(!live.to_string().contains(CREDS.1), "{live}");

    // HLS: H.264 passthrough + AAC.
    let hls = format!("{}/hls/live/live-gate/index.m3u8", gw.base);
    let probed = probe(hls).await;
    assert!(
        probed.contains("codec_name=h264|width=640|height=360")
            && probed.contains("codec_name=aac"),
        "{probed}"
    );

    // Chromium over WHEP: frames advance, audio (AAC → Opus) present.
    if let Some(dir) = browser_scripts() {
        let v = whep_in_chromium(&dir, &gw, "live-gate", 3).await;
        eprintln!("rtsp over whep: {v}");
        assert_eq!(v["videoCodec"], "video/H264", "{v}");
        assert!(v["frames"].as_u64().unwrap_or(0) >= 20, "{v}");
        assert_eq!(
            (v["width"].as_u64(), v["height"].as_u64()),
            (Some(640), Some(360)),
            "{v}"
        );
        assert_eq!(v["audioCodec"], "audio/opus", "{v}");
        assert!(v["audioPackets"].as_u64().unwrap_or(0) > 50, "{v}");
    }

    // MJPEG of the H.264 camera: decoded and re-encoded while watched.
    let mjpeg = format!("{}/live/live/live-gate/mjpeg", gw.base);
    let mut viewer = MjpegViewer::open(&gw.http, &mjpeg)
        .await
        .expect("mjpeg viewer");
    let started = std::time::Instant::now();
    for _ in 0..10 {
        let frame = viewer
            .next_frame_within(Duration::from_secs(5))
            .await
            .expect("frame");
        camgate_hardware_tests::assert_jpeg(&frame, 640, 360);
    }
    eprintln!(
        "10 MJPEG frames of an H.264 camera in {:?}",
        started.elapsed()
    );
    drop(viewer);
    let snap = gw
        .http
        .get(format!("{}/live/live/live-gate/frame.jpg", gw.base))
        .send()
        .await
        .expect("frame.jpg");
    assert_eq!(snap.status(), 200);
    let snap = snap.bytes().await.expect("body");
    let info =
        camgate_protocols::jpeg::check(&snap, camgate_protocols::jpeg::TrailingPadding::Reject)
            .expect("frame.jpg is a jpeg");
    assert_eq!(info.dimensions, Some((640, 360)));
    // Chromium shows it in the player's <img> (MJPEG mode).
    if let Some(dir) = browser_scripts() {
        let v = run_node(
            &dir.join("mjpeg-player.mjs"),
            vec![format!(
                "{}?mode=mjpeg",
                row["player_url"].as_str().expect("player_url")
            )],
        )
        .await;
        eprintln!("rtsp camera as mjpeg in chromium: {v}");
        assert_eq!(
            (v["width"].as_u64(), v["height"].as_u64()),
            (Some(640), Some(360)),
            "{v}"
        );
        assert!(
            v["changedPixels"].as_u64().unwrap_or(0) > 500,
            "picture did not change: {v}"
        );
    }

    // The camera dies: the ingress says so and retries; it comes back on
    // the same address and the pull resumes on its own.
    let port = camera.port;
    camera.kill();
    let down = wait_error(&gw, &ingress, "").await;
    assert_eq!(down["status"], "retrying", "{down}");
    let _camera = RtspCamera::start(port, Some(CREDS)).expect("camera restarts");
    let back = gw
        .wait_ingress("live", &ingress, "publishing", Duration::from_secs(30))
        .await;
    assert_eq!(back["lastError"], serde_json::Value::Null, "{back}");
    // The playlist continues after a discontinuity; once three segments of
    // the new connection are in, ffprobe (which starts near the live edge)
    // reads the new stream.
    let playlist = format!("{}/hls/live/live-gate/index.m3u8", gw.base);
    let deadline = std::time::Instant::now() + Duration::from_secs(20);
    loop {
        let text = gw
            .http
            .get(&playlist)
            .send()
            .await
            .expect("playlist")
            .text()
            .await
            .expect("text");
        let after = text
            .rsplit("#EXT-X-DISCONTINUITY\n")
            .next()
            .unwrap_or_default();
        if text.contains("#EXT-X-DISCONTINUITY\n") && after.matches("\nseg-").count() >= 3 {
            break;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "no segments after the restart: {text}"
        );
        tokio::time::sleep(Duration::from_millis(300)).await;
    }
    let probed = probe(playlist).await;
    assert!(probed.contains("codec_name=h264"), "{probed}");

    // Deleting the ingress stops the pull and frees the room.
    let (status, _) = gw
        .api(
            Method::DELETE,
            &format!("/api/v1/apps/live/ingress/{ingress}"),
            None,
        )
        .await;
    assert_eq!(status, 200);
    let log = gw.log();
    assert!(!log.contains(CREDS.1), "a password was logged");
    assert!(log.contains("rtsp://***@127.0.0.1"), "{log}");
}

/// `camsim serve` (the ESP32 CameraWebServer's HTTP side) on a free port;
/// returns the process and its base URL.
fn camsim_serve(extra: &[&str]) -> (Child, String) {
    let mut child = Command::new(bin("camsim"))
        .args([
            "serve",
            "--listen",
            "127.0.0.1:0",
            "--size",
            "QVGA",
            "--fps",
            "10",
        ])
        .args(extra)
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .expect("spawn camsim serve");
    let mut line = String::new();
    let stdout = child.stdout.take().expect("stdout");
    std::io::BufRead::read_line(&mut std::io::BufReader::new(stdout), &mut line).expect("line");
    let addr = line
        .trim()
        .strip_prefix("listening ")
        .unwrap_or_else(|| panic!("camsim serve did not start: {line}"))
        .to_owned();
    (child, format!("http://{addr}"))
}

/// A TCP server that accepts and then answers `reply` to whatever comes
/// (empty: never answers).
fn fake_server(reply: &'static [u8]) -> u16 {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
    let port = listener.local_addr().expect("addr").port();
    std::thread::spawn(move || {
        for conn in listener.incoming() {
            let Ok(mut conn) = conn else { continue };
            std::thread::spawn(move || {
                use std::io::{Read, Write};
                let mut buf = [0u8; 4096];
                while let Ok(n) = conn.read(&mut buf) {
                    if n == 0 {
                        break;
                    }
                    if !reply.is_empty() && conn.write_all(reply).is_err() {
                        break;
                    }
                }
            });
        }
    });
    port
}

#[tokio::test]
async fn camera_failures_show_in_plain_words_and_other_streams_go_on() {
    let Some(camera) = RtspCamera::start(0, Some(CREDS)) else {
        return;
    };
    let gw = Gateway::start(&["--pull-connect-timeout", "2", "--pull-max-backoff", "2"]);
    let good = id(&pull(
        &gw,
        "good",
        serde_json::json!({ "url": camera.url(Some(CREDS), "h264") }),
    )
    .await);
    gw.wait_ingress("live", &good, "publishing", Duration::from_secs(20))
        .await;

    let cases: Vec<(&str, String, &str)> = vec![
        (
            "wrongpw",
            camera.url(Some((CREDS.0, "nope")), "h264"),
            "unauthorized",
        ),
        ("nocreds", camera.url(None, "h264"), "unauthorized"),
        (
            "silent",
            format!("rtsp://127.0.0.1:{}/x", fake_server(b"")),
            "timeout",
        ),
        (
            "refused",
            format!("rtsp://127.0.0.1:{}/x", free_port()),
            "unreachable",
        ),
        (
            "hevc",
            camera.url(Some(CREDS), "h265"),
            "unsupported codec H265",
        ),
        (
            "garbage",
            format!(
                "rtsp://127.0.0.1:{}/x",
                fake_server(b"\x00\xffNOT RTSP AT ALL\r\n\r\n")
            ),
            "protocol error",
        ),
    ];
    let (mut garbage_http, http_base) = camsim_serve(&["--garbage"]);
    let mut ids = Vec::new();
    for (room, url, _) in &cases {
        ids.push(id(&pull(&gw, room, serde_json::json!({ "url": url })).await));
    }
    let http_bad = id(&pull(
        &gw,
        "httpgarbage",
        serde_json::json!({ "url": format!("{http_base}/stream") }),
    )
    .await);
    for ((room, _, needle), ingress) in cases.iter().zip(&ids) {
        let row = wait_error(&gw, ingress, needle).await;
        eprintln!("{room}: {}", row["lastError"]);
        assert_eq!(row["status"], "retrying", "{row}");
    }
    let row = wait_error(&gw, &http_bad, "").await;
    eprintln!("http garbage: {}", row["lastError"]);
    // Let every bad camera be retried a few times.
    tokio::time::sleep(Duration::from_secs(5)).await;
    let _ = garbage_http.kill();
    let _ = garbage_http.wait();

    // The good camera was never disturbed.
    let (_, v) = gw
        .get_json(&format!("/api/v1/apps/live/ingress/{good}"))
        .await;
    assert_eq!(v["data"]["status"], "publishing", "{v}");
    assert_eq!(v["data"]["retries"], 0, "{v}");
    let probed = probe(format!("{}/hls/live/live-good/index.m3u8", gw.base)).await;
    assert!(
        probed.contains("codec_name=h264|width=640|height=360"),
        "{probed}"
    );

    // Each failing camera was logged once per reason, not once per retry.
    let log = gw.log();
    for ingress in &ids {
        let (_, v) = gw
            .get_json(&format!("/api/v1/apps/live/ingress/{ingress}"))
            .await;
        assert!(v["data"]["retries"].as_u64().unwrap_or(0) >= 2, "{v}");
        let lines = log
            .lines()
            .filter(|l| l.contains(ingress.as_str()) && l.contains("camera pull failed"))
            .count();
        assert_eq!(lines, 1, "{ingress}: {log}");
    }
    assert!(!log.contains("panicked"), "{log}");
}

#[tokio::test]
async fn mjpeg_and_g711_cameras_are_pulled_over_rtsp_and_http() {
    let Some(camera) = RtspCamera::start(0, None) else {
        return;
    };
    let gw = Gateway::start(&[]);
    let (mut esp32, esp32_base) = camsim_serve(&[]);

    // MJPEG over RTSP: JPEGs go out as they came.
    let rtsp_mjpeg = id(&pull(
        &gw,
        "rmjpeg",
        serde_json::json!({ "url": camera.url(None, "mjpeg") }),
    )
    .await);
    gw.wait_ingress("live", &rtsp_mjpeg, "publishing", Duration::from_secs(20))
        .await;
    let mut viewer = MjpegViewer::open(
        &gw.http,
        &format!("{}/live/live/live-rmjpeg/mjpeg", gw.base),
    )
    .await
    .expect("mjpeg viewer");
    for _ in 0..5 {
        let frame = viewer
            .next_frame_within(Duration::from_secs(5))
            .await
            .expect("frame");
        camgate_hardware_tests::assert_jpeg(&frame, 640, 360);
    }

    // The ESP32 firmware's /stream: frames arrive whole, stamps in order.
    let http_mjpeg = id(&pull(
        &gw,
        "esp32",
        serde_json::json!({ "url": format!("{esp32_base}/stream") }),
    )
    .await);
    gw.wait_ingress("live", &http_mjpeg, "publishing", Duration::from_secs(20))
        .await;
    let mut viewer =
        MjpegViewer::open(&gw.http, &format!("{}/live/live/live-esp32/mjpeg", gw.base))
            .await
            .expect("mjpeg viewer");
    let mut last = None;
    for _ in 0..5 {
        let frame = viewer
            .next_frame_within(Duration::from_secs(5))
            .await
            .expect("frame");
        let seq = camgate_hardware_tests::stamp_seq(&frame).expect("stamp");
        assert!(
            last.is_none_or(|l| seq > l),
            "out of order: {last:?} then {seq}"
        );
        last = Some(seq);
    }
    // …and plays in Chromium over WHEP through the transcoder.
    if let Some(dir) = browser_scripts() {
        let v = whep_in_chromium(&dir, &gw, "live-esp32", 3).await;
        eprintln!("esp32 pull over whep: {v}");
        assert_eq!(v["videoCodec"], "video/H264", "{v}");
        assert!(v["frames"].as_u64().unwrap_or(0) >= 10, "{v}");
        assert_eq!(
            (v["width"].as_u64(), v["height"].as_u64()),
            (Some(320), Some(240)),
            "{v}"
        );
    }

    // A snapshot URL polled five times a second.
    let snap = id(&pull(
        &gw,
        "snap",
        serde_json::json!({ "url": format!("{esp32_base}/capture"), "pollFps": 5.0 }),
    )
    .await);
    gw.wait_ingress("live", &snap, "publishing", Duration::from_secs(20))
        .await;
    let frame = gw
        .http
        .get(format!("{}/live/live/live-snap/frame.jpg", gw.base))
        .send()
        .await
        .expect("frame.jpg");
    assert_eq!(frame.status(), 200);

    // G.711 from the camera reaches WebRTC as it is.
    let pcmu = id(&pull(
        &gw,
        "pcmu",
        serde_json::json!({ "url": camera.url(None, "h264pcmu") }),
    )
    .await);
    gw.wait_ingress("live", &pcmu, "publishing", Duration::from_secs(20))
        .await;
    if let Some(dir) = browser_scripts() {
        let v = whep_in_chromium(&dir, &gw, "live-pcmu", 3).await;
        eprintln!("pcmu camera over whep: {v}");
        assert_eq!(v["videoCodec"], "video/H264", "{v}");
        assert_eq!(v["audioCodec"], "audio/PCMU", "{v}");
        // GStreamer's test camera sends 128 ms of G.711 per packet.
        assert!(v["audioPackets"].as_u64().unwrap_or(0) > 10, "{v}");
    }

    // Snapshots on demand: an H.264 camera (decoded keyframe) and an MJPEG
    // one (its frame), stored, listed by room, fetched, deleted.
    let mut taken = Vec::new();
    for (body, size) in [
        (serde_json::json!({ "room": "pcmu" }), (640, 360)),
        (
            serde_json::json!({ "streamId": "live-esp32/ingress-live" }),
            (320, 240),
        ),
    ] {
        let (status, v) = gw
            .api(Method::POST, "/api/v1/apps/live/snapshots", Some(body))
            .await;
        assert_eq!(status, 201, "{v}");
        let d = &v["data"];
        assert_eq!(
            (d["width"].as_u64(), d["height"].as_u64()),
            (Some(size.0), Some(size.1)),
            "{v}"
        );
        assert!(d["sizeBytes"].as_u64().unwrap_or(0) > 1000, "{v}");
        let image = gw
            .http
            .get(d["url"].as_str().expect("url"))
            .bearer_auth(camgate_hardware_tests::ADMIN_TOKEN)
            .send()
            .await
            .expect("image");
        assert_eq!(image.status(), 200);
        let bytes = image.bytes().await.expect("bytes");
        assert_eq!(bytes.len() as u64, d["sizeBytes"].as_u64().unwrap_or(0));
        camgate_protocols::jpeg::check(&bytes, camgate_protocols::jpeg::TrailingPadding::Reject)
            .expect("a whole jpeg");
        assert!(gw.data_dir.join(d["key"].as_str().expect("key")).exists());
        taken.push(d["id"].as_str().expect("id").to_owned());
    }
    let (_, list) = gw.get_json("/api/v1/apps/live/snapshots?room=esp32").await;
    assert_eq!(list["total"], 1, "{list}");
    assert_eq!(
        list["data"][0]["streamId"], "live-esp32/ingress-live",
        "{list}"
    );
    let (status, v) = gw
        .api(
            Method::POST,
            "/api/v1/apps/live/snapshots",
            Some(serde_json::json!({ "room": "nobody" })),
        )
        .await;
    assert_eq!(
        (status, v["error"]["code"].as_str()),
        (404, Some("stream_not_found")),
        "{v}"
    );
    let (status, _) = gw
        .api(
            Method::DELETE,
            &format!("/api/v1/apps/live/snapshots/{}", taken[1]),
            None,
        )
        .await;
    assert_eq!(status, 200);
    let (_, list) = gw.get_json("/api/v1/apps/live/snapshots").await;
    assert_eq!(list["total"], 1, "{list}");

    let _ = esp32.kill();
    let _ = esp32.wait();
}

#[tokio::test]
async fn a_pulled_rtsp_camera_is_recorded_with_its_audio() {
    let Some(camera) = RtspCamera::start(0, Some(CREDS)) else {
        return;
    };
    let gw = Gateway::start(&[]);
    // AAC is kept as it is; G.711 becomes Opus (MP4 players and browsers
    // have no G.711).
    for (room, mount, audio) in [
        ("drive", "h264aac", "codec_name=aac"),
        ("door", "h264pcmu", "codec_name=opus|sample_rate=48000"),
    ] {
        let row = pull(
            &gw,
            room,
            serde_json::json!({ "url": camera.url(Some(CREDS), mount), "record": true }),
        )
        .await;
        gw.wait_ingress("live", &id(&row), "publishing", Duration::from_secs(20))
            .await;
        // `record: true`: the ingress is recorded without being asked.
        let deadline = std::time::Instant::now() + Duration::from_secs(20);
        let vod_id = loop {
            let (_, v) = gw
                .get_json(&format!(
                    "/api/v1/apps/live/vods?status=recording&room={room}"
                ))
                .await;
            if let Some(id) = v["data"][0]["id"].as_i64() {
                break id;
            }
            assert!(std::time::Instant::now() < deadline, "never recorded: {v}");
            tokio::time::sleep(Duration::from_millis(200)).await;
        };
        tokio::time::sleep(Duration::from_secs(4)).await;
        let vod = gw.stop_recording(vod_id).await;
        let url = vod["url"].as_str().expect("url").to_owned();
        let probed = probe(url.clone()).await;
        assert!(
            probed.contains("codec_name=h264|width=640|height=360") && probed.contains(audio),
            "{mount}: {probed}"
        );
        let spans = camgate_hardware_tests::ffprobe_spans(&url);
        let (Some(v), Some(a)) = (spans.get("video"), spans.get("audio")) else {
            panic!("{mount}: video and audio expected: {spans:?}");
        };
        // GStreamer's camera sends 128 ms of G.711 per packet.
        assert!(
            (v.0 - a.0).abs() < 0.4 && (v.1 - a.1).abs() < 0.4,
            "{mount}: video {v:?} vs audio {a:?}"
        );
    }
}
