//! The walking skeleton end to end: a camera (camsim, or a raw WebSocket
//! client for bad input) pushes JPEGs into the real camgate binary and HTTP
//! and WebSocket viewers read them back.

use std::process::Command;
use std::time::Duration;

use camgate_hardware_tests::{ADMIN_TOKEN, Gateway, MjpegViewer, bin, spawn_camsim, stamp_seq};
use camgate_protocols::device::ServerMessage;
use camgate_protocols::jpeg::{self, CaptureStamp, TrailingPadding};
use futures_util::{SinkExt, StreamExt};
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::tungstenite::client::IntoClientRequest;

type Ws =
    tokio_tungstenite::WebSocketStream<tokio_tungstenite::MaybeTlsStream<tokio::net::TcpStream>>;

const T: Duration = Duration::from_secs(10);

fn test_jpeg(seq: u64) -> Vec<u8> {
    camgate_firmware_sim::frames::FrameSource::ring(
        camgate_protocols::device::FrameSize::Qvga,
        30,
        1,
    )
    .frame(seq)
}

async fn connect(url: &str, key: &str) -> Ws {
    let mut req = url.into_client_request().expect("request");
    req.headers_mut().insert(
        "authorization",
        format!("Bearer {key}").parse().expect("header"),
    );
    tokio_tungstenite::connect_async(req)
        .await
        .expect("ws connect")
        .0
}

/// Reads until the server closes; returns (close code, reason, error codes seen).
async fn read_until_close(ws: &mut Ws) -> (u16, String, Vec<String>) {
    let mut errors = Vec::new();
    loop {
        match tokio::time::timeout(T, ws.next())
            .await
            .expect("server closes in time")
        {
            Some(Ok(Message::Close(Some(f)))) => {
                return (f.code.into(), f.reason.to_string(), errors);
            }
            Some(Ok(Message::Close(None))) | None => return (1005, String::new(), errors),
            Some(Ok(Message::Text(t))) => {
                if let Some(ServerMessage::Error { code, .. }) = ServerMessage::parse(&t) {
                    errors.push(code);
                }
            }
            Some(Ok(_)) => {}
            Some(Err(e)) => panic!("transport error before close: {e}"),
        }
    }
}

/// Waits for `ready` and returns the parsed message.
async fn ready(ws: &mut Ws) -> ServerMessage {
    loop {
        match tokio::time::timeout(T, ws.next())
            .await
            .expect("ready in time")
        {
            Some(Ok(Message::Text(t))) => {
                let m = ServerMessage::parse(&t).expect("known message");
                if matches!(m, ServerMessage::Ready { .. }) {
                    return m;
                }
            }
            Some(Ok(Message::Close(f))) => panic!("closed before ready: {f:?}"),
            other => panic!("unexpected before ready: {other:?}"),
        }
    }
}

/// Sends frame `seq` from the healthy camera and checks its viewer gets it.
async fn healthy_frame_arrives(cam: &mut Ws, viewer: &mut MjpegViewer, seq: u64) {
    cam.send(Message::Binary(test_jpeg(seq).into()))
        .await
        .expect("send");
    let f = viewer
        .next_frame_within(T)
        .await
        .expect("healthy viewer unaffected");
    assert_eq!(stamp_seq(&f), Some(seq));
}

fn ws_url(gw: &Gateway, room: &str) -> String {
    format!("{}/ingest/ws?app=live&room={room}", gw.ws_base())
}

#[tokio::test]
async fn camsim_to_mjpeg_and_ws_viewers_frames_whole_and_in_order() {
    let gw = Gateway::start(&[]);
    let minted = gw.mint("cam1").await;
    assert!(minted.stream_key.starts_with("wsk_"));
    assert_eq!(minted.room, "live-cam1");
    assert!(minted.mjpeg_url.ends_with("/live/live/live-cam1/mjpeg"));

    let mut camsim = spawn_camsim(&minted, "12", "30");
    let mut viewer = gw.wait_live(&minted.mjpeg_url).await;
    assert_eq!(
        viewer.content_type,
        "multipart/x-mixed-replace; boundary=frame"
    );

    let mut last_seq = None;
    for _ in 0..20 {
        let f = viewer.next_frame_within(T).await.expect("frame");
        let info = jpeg::check(&f, TrailingPadding::Reject).expect("whole JPEG");
        assert_eq!(info.dimensions, Some((320, 240)));
        let seq = info.stamp.expect("stamped").seq;
        if let Some(prev) = last_seq {
            assert!(seq > prev, "frames out of order: {seq} after {prev}");
        }
        last_seq = Some(seq);
    }

    // frame.jpg: the latest frame, whole.
    let r = gw
        .http
        .get(&minted.frame_url)
        .send()
        .await
        .expect("frame.jpg");
    assert_eq!(r.status(), 200);
    assert_eq!(r.headers()["content-type"], "image/jpeg");
    let body = r.bytes().await.expect("body");
    jpeg::check(&body, TrailingPadding::Reject).expect("frame.jpg is a whole JPEG");

    // The viewer WebSocket: one binary JPEG per message.
    let (mut vws, _) =
        tokio_tungstenite::connect_async(format!("{}/live/ws?app=live&room=cam1", gw.ws_base()))
            .await
            .expect("viewer ws");
    let mut got = 0;
    while got < 5 {
        match tokio::time::timeout(T, vws.next()).await.expect("ws frame") {
            Some(Ok(Message::Binary(b))) => {
                jpeg::check(&b, TrailingPadding::Reject).expect("ws frame is a JPEG");
                got += 1;
            }
            Some(Ok(_)) => {}
            other => panic!("viewer ws ended: {other:?}"),
        }
    }

    // Live state through the API, key masked.
    let (status, list) = gw.get_json("/api/v1/apps/live/ws-ingest").await;
    assert_eq!(status, 200);
    let row = &list["data"][0];
    assert_eq!(row["active"], true);
    assert_eq!(row["room"], "live-cam1");
    assert_ne!(
        row["streamKey"],
        minted.stream_key.as_str(),
        "keys are listed masked"
    );
    assert!(row["viewers"].as_u64().expect("viewers") >= 1);
    let (status, live) = gw
        .get_public_json("/api/v1/apps/live/ws-ingest/live/cam1")
        .await;
    assert_eq!(status, 200);
    assert_eq!(live["data"]["active"], true);
    assert_eq!(live["data"]["type"], "ws-mjpeg");

    // The player page is served.
    let page = gw
        .http
        .get(&minted.player_url)
        .send()
        .await
        .expect("player");
    assert_eq!(page.status(), 200);
    assert!(page.text().await.expect("html").contains("<img"));

    let _ = camsim.kill();
    let _ = camsim.wait();
}

#[tokio::test]
async fn broken_frames_are_dropped_camera_stays_and_others_unaffected() {
    let gw = Gateway::start(&["--ws-max-fps", "100"]);
    // A healthy camera with a viewer, to prove it never notices.
    let good = gw.mint("good").await;
    let mut good_ws = connect(&ws_url(&gw, "good"), &good.stream_key).await;
    ready(&mut good_ws).await;
    good_ws
        .send(Message::Binary(test_jpeg(0).into()))
        .await
        .expect("send");
    let mut viewer = MjpegViewer::open(&gw.http, &good.mjpeg_url)
        .await
        .expect("viewer");
    viewer.next_frame_within(T).await.expect("first frame");

    let bad = gw.mint("bad").await;
    let mut ws = connect(&ws_url(&gw, "bad"), &bad.stream_key).await;
    ready(&mut ws).await;
    let whole = test_jpeg(1);
    let broken: Vec<Vec<u8>> = vec![
        b"definitely not a jpeg".to_vec(),
        whole[..whole.len() / 2].to_vec(), // truncated, no EOI
        whole[2..].to_vec(),               // no SOI
        vec![0xFF, 0xD8, 0xFF],            // too short
    ];
    for (i, b) in broken.iter().enumerate() {
        ws.send(Message::Binary(b.clone().into()))
            .await
            .expect("send broken");
        ws.send(Message::Text(r#"{"type":"hello","x":1}"#.into()))
            .await
            .expect("unknown text");
        // The healthy camera keeps flowing to its viewer meanwhile.
        healthy_frame_arrives(&mut good_ws, &mut viewer, 10 + i as u64).await;
    }
    // Still connected: a good frame after the broken ones is published.
    ws.send(Message::Binary(test_jpeg(77).into()))
        .await
        .expect("send good");
    let mut published = false;
    for _ in 0..50 {
        let r = gw.http.get(&bad.frame_url).send().await.expect("frame.jpg");
        if r.status() == 200 {
            let b = r.bytes().await.expect("body");
            if stamp_seq(&b) == Some(77) {
                published = true;
                break;
            }
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert!(published, "camera stayed connected after broken frames");
    let (_, list) = gw.get_json("/api/v1/apps/live/ws-ingest").await;
    let row = list["data"]
        .as_array()
        .expect("rows")
        .iter()
        .find(|r| r["room"] == "live-bad")
        .expect("row")
        .clone();
    assert_eq!(row["framesDropped"]["not_jpeg"], 4);
    assert_eq!(row["active"], true);

    // Five broken frames in a row: `invalid_frames`, close 1003.
    for _ in 0..5 {
        ws.send(Message::Binary(b"garbage".to_vec().into()))
            .await
            .expect("send");
    }
    let (code, _, errors) = read_until_close(&mut ws).await;
    assert_eq!(code, 1003);
    assert_eq!(errors, vec!["invalid_frames".to_string()]);

    // The healthy camera and its viewer never noticed.
    healthy_frame_arrives(&mut good_ws, &mut viewer, 99).await;
    // Logged once per connection, not per frame.
    let log = gw.log();
    assert_eq!(
        log.matches("dropping frame that is not one whole JPEG")
            .count(),
        1,
        "{log}"
    );
}

#[tokio::test]
async fn oversized_frame_closes_4413() {
    let gw = Gateway::start(&["--ws-max-frame-kb", "8"]);
    let m = gw.mint("big").await;
    let mut ws = connect(&ws_url(&gw, "big"), &m.stream_key).await;
    match ready(&mut ws).await {
        ServerMessage::Ready {
            max_frame_bytes, ..
        } => assert_eq!(max_frame_bytes, 8192),
        other => panic!("{other:?}"),
    }
    let mut big = test_jpeg(0);
    let eoi = big.split_off(big.len() - 2);
    big.extend(std::iter::repeat_n(0x55u8, 9000));
    big.extend(eoi);
    ws.send(Message::Binary(big.into())).await.expect("send");
    let (code, reason, errors) = read_until_close(&mut ws).await;
    assert_eq!((code, reason.as_str()), (4413, "frame_too_large"));
    assert_eq!(errors, vec!["frame_too_large".to_string()]);
}

#[tokio::test]
async fn keys_wrong_revoked_and_replaced() {
    let gw = Gateway::start(&[]);
    let m = gw.mint("cam").await;

    // Wrong key, and a right key for another room.
    let mut ws = connect(&ws_url(&gw, "cam"), "wsk_not_a_real_key_000000000000000").await;
    let (code, reason, errors) = read_until_close(&mut ws).await;
    assert_eq!((code, reason.as_str()), (4401, "invalid_key"));
    assert_eq!(errors, vec!["4401".to_string()]);
    let mut ws = connect(&ws_url(&gw, "other"), &m.stream_key).await;
    assert_eq!(read_until_close(&mut ws).await.1, "room_mismatch");
    // Key in the query works too, and the namespaced room form.
    let (mut q, _) = tokio_tungstenite::connect_async(format!(
        "{}&key={}",
        ws_url(&gw, "live-cam"),
        m.stream_key
    ))
    .await
    .expect("connect");
    ready(&mut q).await;

    // A newer connection with the same key wins; the old one gets 4409.
    let mut newer = connect(&ws_url(&gw, "cam"), &m.stream_key).await;
    ready(&mut newer).await;
    let (code, _, _) = read_until_close(&mut q).await;
    assert_eq!(code, 4409);
    newer
        .send(Message::Binary(test_jpeg(5).into()))
        .await
        .expect("send");

    // Revoking closes the live connection at once with 4401 `key revoked`.
    assert_eq!(gw.revoke(&m.id).await, 200);
    let (code, reason, _) = read_until_close(&mut newer).await;
    assert_eq!((code, reason.as_str()), (4401, "key revoked"));
    // And the key no longer connects.
    let mut again = connect(&ws_url(&gw, "cam"), &m.stream_key).await;
    assert_eq!(read_until_close(&mut again).await.0, 4401);
    // Revoking twice is a 404.
    assert_eq!(gw.revoke(&m.id).await, 404);
}

#[tokio::test]
async fn fps_cap_drops_silently_and_idle_camera_is_closed_4408() {
    let gw = Gateway::start(&["--ws-max-fps", "5", "--ws-idle-timeout", "2"]);
    let m = gw.mint("fast").await;
    let mut ws = connect(&ws_url(&gw, "fast"), &m.stream_key).await;
    ready(&mut ws).await;
    for i in 0..30 {
        ws.send(Message::Binary(test_jpeg(i).into()))
            .await
            .expect("send");
    }
    let mut dropped = 0;
    for _ in 0..50 {
        let (_, list) = gw.get_json("/api/v1/apps/live/ws-ingest").await;
        let row = &list["data"][0];
        let received = row["framesReceived"].as_u64().unwrap_or(0);
        dropped = row["framesDropped"]["fps"].as_u64().unwrap_or(0);
        if received + dropped == 30 {
            assert!(received <= 5, "cap held: {received} accepted");
            break;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert!(dropped >= 25, "excess frames dropped, got {dropped}");
    // No more frames: closed as idle, and marked offline.
    let (code, reason, errors) = read_until_close(&mut ws).await;
    assert_eq!((code, reason.as_str()), (4408, "idle_timeout"));
    assert_eq!(errors, vec!["idle_timeout".to_string()]);
    tokio::time::sleep(Duration::from_millis(200)).await;
    let (_, list) = gw.get_json("/api/v1/apps/live/ws-ingest").await;
    assert_eq!(list["data"][0]["active"], false);
    let r = gw.http.get(&m.frame_url).send().await.expect("frame.jpg");
    assert_eq!(
        r.status(),
        404,
        "offline camera with no viewers has no live frame"
    );
}

#[tokio::test]
async fn handshake_rate_limit_closes_4429() {
    let gw = Gateway::start(&["--ws-handshakes-per-minute", "2"]);
    let m = gw.mint("rl").await;
    for _ in 0..2 {
        let mut ws = connect(&ws_url(&gw, "rl"), &m.stream_key).await;
        ready(&mut ws).await;
        ws.close(None).await.expect("close");
    }
    let mut ws = connect(&ws_url(&gw, "rl"), &m.stream_key).await;
    let (code, reason, _) = read_until_close(&mut ws).await;
    assert_eq!((code, reason.as_str()), (4429, "rate_limited"));
}

#[tokio::test]
async fn api_conventions_and_errors() {
    let gw = Gateway::start(&[]);
    let post = |body: &'static str, token: &'static str| {
        gw.http
            .post(format!("{}/api/v1/apps/live/ws-ingest", gw.base))
            .bearer_auth(token)
            .header("content-type", "application/json")
            .body(body)
            .send()
    };
    let r = post(r#"{"room":"cam1"}"#, "sk_wrong").await.expect("req");
    assert_eq!(r.status(), 401);
    let v: serde_json::Value = r.json().await.expect("json");
    assert_eq!(v["data"], serde_json::Value::Null);
    assert_eq!(v["error"]["code"], "unauthorized");
    let long = Box::leak(format!(r#"{{"room":"{}"}}"#, "a".repeat(65)).into_boxed_str());
    for (body, code) in [
        (r#"{"room":"bad room"}"#, "invalid_room"),
        (&*long, "invalid_room"),
        (r#"{"room":"ok","identity":"-no"}"#, "invalid_identity"),
        (r#"{"nope":1}"#, "missing_field"),
        ("not json", "invalid_json"),
    ] {
        let r = post(body, ADMIN_TOKEN).await.expect("req");
        assert_eq!(r.status(), 400, "{body}");
        let v: serde_json::Value = r.json().await.expect("json");
        assert_eq!(v["error"]["code"], code, "{body}");
    }
    let (status, v) = gw.get_json("/api/v1/apps/nope/ws-ingest").await;
    assert_eq!(
        (status, v["error"]["code"].as_str()),
        (404, Some("app_not_found"))
    );
    let r = gw
        .http
        .get(format!("{}/live/live/never/frame.jpg", gw.base))
        .send()
        .await
        .expect("req");
    assert_eq!(r.status(), 404);
    let v: serde_json::Value = r.json().await.expect("json");
    assert_eq!(v["error"]["code"], "stream_not_found");
    let r = gw
        .http
        .get(format!("{}/live/live/never/mjpeg", gw.base))
        .send()
        .await
        .expect("req");
    assert_eq!(r.status(), 404);
    let (status, health) = gw.get_public_json("/health").await;
    assert_eq!(status, 200);
    assert_eq!(health["status"], "ok");
    assert!(health["version"].is_string() && health["live"]["cameras"].is_number());
    // Oversized body.
    let huge = format!(r#"{{"room":"{}"}}"#, "a".repeat(100_000));
    let r = gw
        .http
        .post(format!("{}/api/v1/apps/live/ws-ingest", gw.base))
        .bearer_auth(ADMIN_TOKEN)
        .header("content-type", "application/json")
        .body(huge)
        .send()
        .await
        .expect("req");
    assert_eq!(r.status(), 413);
}

#[tokio::test]
async fn graceful_shutdown_closes_cameras_1001() {
    let mut gw = Gateway::start(&[]);
    let m = gw.mint("bye").await;
    let mut ws = connect(&ws_url(&gw, "bye"), &m.stream_key).await;
    ready(&mut ws).await;
    ws.send(Message::Binary(test_jpeg(1).into()))
        .await
        .expect("send");
    let status = tokio::task::spawn_blocking(move || {
        let s = gw.terminate();
        (s, gw)
    });
    let (code, _, _) = read_until_close(&mut ws).await;
    assert_eq!(code, 1001);
    let (status, _gw) = status.await.expect("join");
    assert!(status.expect("exited").success());
}

#[tokio::test]
async fn stamp_survives_the_trip() {
    // The capture stamp the bench relies on reaches viewers unchanged.
    let gw = Gateway::start(&[]);
    let m = gw.mint("stamp").await;
    let mut ws = connect(&ws_url(&gw, "stamp"), &m.stream_key).await;
    ready(&mut ws).await;
    let stamp = CaptureStamp {
        seq: 4242,
        unix_micros: 1_800_000_000_000_000,
    };
    let mut f = test_jpeg(0);
    assert!(stamp.patch(&mut f));
    ws.send(Message::Binary(f.clone().into()))
        .await
        .expect("send");
    let mut viewer = MjpegViewer::open(&gw.http, &m.mjpeg_url)
        .await
        .expect("viewer");
    let got = viewer.next_frame_within(T).await.expect("frame");
    assert_eq!(&got[..], &f[..], "bytes pass through untouched");
}

#[tokio::test]
async fn unwatched_camera_is_asked_to_slow_down_and_camsim_obeys() {
    let gw = Gateway::start(&["--ws-idle-fps", "2", "--ws-idle-grace", "0"]);
    let m = gw.mint("lazy").await;
    let out = tokio::task::spawn_blocking(move || {
        Command::new(bin("camsim"))
            .args(["--url", &m.ws_url, "--key", &m.stream_key])
            .args([
                "--fps",
                "10",
                "--duration",
                "3",
                "--size",
                "QVGA",
                "--no-reconnect",
            ])
            .output()
            .expect("run camsim")
    })
    .await
    .expect("join");
    let summary: serde_json::Value =
        serde_json::from_str(String::from_utf8_lossy(&out.stdout).trim()).expect("camsim summary");
    assert_eq!(summary["asked_fps"], 2, "{summary}");
    // 3 s at 10 fps would be 30 frames; slowed to 2 fps almost at once.
    let sent = summary["sent"].as_u64().expect("sent");
    assert!((1..=12).contains(&sent), "camsim kept its rate: {summary}");
}

#[tokio::test]
async fn camsim_load_mode_runs_many_cameras() {
    let gw = Gateway::start(&["--ws-handshakes-per-minute", "0"]);
    let base = gw.base.clone();
    let out = tokio::task::spawn_blocking(move || {
        Command::new(bin("camsim"))
            .args([
                "load",
                "--cameras",
                "4",
                "--api",
                &base,
                "--token",
                ADMIN_TOKEN,
            ])
            .args([
                "--fps",
                "20",
                "--frames",
                "10",
                "--size",
                "QVGA",
                "--no-reconnect",
            ])
            .output()
            .expect("run camsim load")
    })
    .await
    .expect("join");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let summary: serde_json::Value =
        serde_json::from_str(String::from_utf8_lossy(&out.stdout).trim()).expect("summary");
    assert_eq!(summary["cameras"], 4);
    assert_eq!(summary["sent"], 40, "{summary}");
    let (_, list) = gw.get_json("/api/v1/apps/live/ws-ingest").await;
    assert_eq!(list["data"].as_array().map(Vec::len), Some(4));
}

#[tokio::test]
async fn viewer_ws_for_a_room_that_is_not_live_closes_4404() {
    let gw = Gateway::start(&[]);
    let (mut ws, _) =
        tokio_tungstenite::connect_async(format!("{}/live/ws?app=live&room=nobody", gw.ws_base()))
            .await
            .expect("viewer ws");
    let (code, reason, _) = read_until_close(&mut ws).await;
    assert_eq!((code, reason.as_str()), (4404, "stream_not_found"));
}

#[tokio::test]
async fn a_second_key_for_a_live_room_is_refused_4403() {
    let gw = Gateway::start(&[]);
    let first = gw.mint("shared").await;
    let second = gw.mint("shared").await;
    let mut a = connect(&ws_url(&gw, "shared"), &first.stream_key).await;
    ready(&mut a).await;
    a.send(Message::Binary(test_jpeg(1).into()))
        .await
        .expect("send");
    let mut b = connect(&ws_url(&gw, "shared"), &second.stream_key).await;
    let (code, reason, errors) = read_until_close(&mut b).await;
    assert_eq!((code, reason.as_str()), (4403, "room_busy"));
    assert_eq!(errors, vec!["4403".to_string()]);
    // The first camera keeps publishing, alone.
    let mut viewer = MjpegViewer::open(&gw.http, &first.mjpeg_url)
        .await
        .expect("viewer");
    assert_eq!(
        stamp_seq(&viewer.next_frame_within(T).await.expect("frame")),
        Some(1)
    );
    a.send(Message::Binary(test_jpeg(2).into()))
        .await
        .expect("send");
    assert_eq!(
        stamp_seq(&viewer.next_frame_within(T).await.expect("frame")),
        Some(2)
    );
    // Once it leaves, the other key may publish.
    a.close(None).await.expect("close");
    let _ = read_until_close(&mut a).await;
    tokio::time::sleep(Duration::from_millis(100)).await;
    let mut b = connect(&ws_url(&gw, "shared"), &second.stream_key).await;
    ready(&mut b).await;
}

#[tokio::test]
async fn an_app_s_ws_ingest_limits_narrow_the_server_s() {
    let gw = Gateway::start(&[]);
    let a = gw.mint("lim-a").await;
    let b = gw.mint("lim-b").await;
    let (status, v) = gw
        .api(
            reqwest::Method::PATCH,
            "/api/v1/apps/live/config",
            Some(serde_json::json!({
                "wsIngest": { "maxCameras": 1, "maxFps": 5, "maxFrameKb": 16 }
            })),
        )
        .await;
    assert_eq!(status, 200, "{v}");

    // The camera is told the app's narrower limits, and they hold.
    let mut cam_a = connect(&ws_url(&gw, "lim-a"), &a.stream_key).await;
    match ready(&mut cam_a).await {
        ServerMessage::Ready {
            max_fps,
            max_frame_bytes,
            ..
        } => assert_eq!((max_fps, max_frame_bytes), (5, 16 * 1024)),
        other => panic!("{other:?}"),
    }
    // A second camera is over the app's camera cap.
    let mut cam_b = connect(&ws_url(&gw, "lim-b"), &b.stream_key).await;
    let (code, reason, _) = read_until_close(&mut cam_b).await;
    assert_eq!((code, reason.as_str()), (4403, "camera_limit"));
    // The same camera reconnecting is not a second camera: it takes over.
    let mut cam_a2 = connect(&ws_url(&gw, "lim-a"), &a.stream_key).await;
    ready(&mut cam_a2).await;
    let (code, _, _) = read_until_close(&mut cam_a).await;
    assert_eq!(code, 4409);
    // A frame above the app's 16 KiB closes with 4413.
    let mut big = test_jpeg(1);
    big.resize(20 * 1024, 0);
    cam_a2
        .send(Message::Binary(big.into()))
        .await
        .expect("send");
    let (code, _, _) = read_until_close(&mut cam_a2).await;
    assert_eq!(code, 4413);

    // Ingest switched off for the app: refused at the handshake.
    let (status, _) = gw
        .api(
            reqwest::Method::PATCH,
            "/api/v1/apps/live/config",
            Some(serde_json::json!({ "wsIngest": { "enabled": false } })),
        )
        .await;
    assert_eq!(status, 200);
    let mut cam_b = connect(&ws_url(&gw, "lim-b"), &b.stream_key).await;
    let (code, reason, _) = read_until_close(&mut cam_b).await;
    assert_eq!((code, reason.as_str()), (4403, "ws_ingest_disabled"));
}
