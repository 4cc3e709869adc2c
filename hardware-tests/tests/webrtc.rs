//! WebRTC end to end: headless Chromium publishes over WHIP and plays over
//! WHEP, a camsim camera is watched over WebRTC through the transcoder, and
//! the WHIP/WHEP error answers use seed 002's codes.

use std::time::Duration;

use camgate_hardware_tests::{Gateway, browser_scripts, run_node, spawn_camsim};

/// [`run_node`] with owned arguments, to run it as a task.
async fn run_node_owned(script: std::path::PathBuf, args: Vec<String>) -> serde_json::Value {
    run_node(&script, args).await
}

#[tokio::test]
async fn chromium_publishes_over_whip_and_another_page_plays_over_whep() {
    let Some(dir) = browser_scripts() else { return };
    let gw = Gateway::start(&[]);
    let token = gw.token_for("demo", true, true).await;
    let script = dir.join("webrtc.mjs");
    let node = tokio::spawn(run_node_owned(
        script,
        vec![
            format!("{}/health", gw.base),
            "--whip".into(),
            format!("{}/whip/live-demo", gw.base),
            token.clone(),
            "--whep".into(),
            format!("{}/whep/live-demo", gw.base),
            token,
            "--seconds".into(),
            "5".into(),
        ],
    ));
    // While it publishes, frame.jpg is a snapshot of its picture (decoded
    // from the publisher's keyframe), as for a camera.
    let mut snapshot = None;
    for _ in 0..80 {
        let r = gw
            .http
            .get(format!("{}/live/live/live-demo/frame.jpg", gw.base))
            .send()
            .await
            .expect("frame.jpg");
        if r.status() == 200 {
            let ct = r.headers()["content-type"]
                .to_str()
                .unwrap_or("")
                .to_owned();
            snapshot = Some((ct, r.bytes().await.expect("body")));
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let (ct, jpeg) = snapshot.expect("frame.jpg of the WHIP stream");
    // And HLS of its H.264 (camgate asks Chromium for keyframes so that
    // segments close): ffprobe reads it.
    let playlist = format!("{}/hls/live/live-demo/index.m3u8", gw.base);
    let mut probed = String::new();
    for _ in 0..40 {
        let r = gw.http.get(&playlist).send().await.expect("playlist");
        if r.status() == 200 {
            probed = camgate_hardware_tests::ffprobe_streams(&playlist);
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert!(
        probed.contains("codec_name=h264|width=640|height=480")
            && probed.contains("codec_name=opus|sample_rate=48000"),
        "HLS of the WHIP stream (H.264 + its Opus): {probed:?}"
    );
    assert_eq!(ct, "image/jpeg");
    let mut d = jpeg_decoder::Decoder::new(&jpeg[..]);
    d.decode().expect("a decodable JPEG");
    let info = d.info().expect("info");
    assert_eq!((info.width, info.height), (640, 480));
    let v = node.await.expect("node task");
    eprintln!("whip→whep: {v}");
    assert_eq!(v["published"], true, "{v}");
    assert_eq!(v["state"], "connected", "{v}");
    assert_eq!(
        (v["width"].as_u64(), v["height"].as_u64()),
        (Some(640), Some(480)),
        "{v}"
    );
    // Chromium's fake camera runs at 20-30 fps: 3 s of playback decode dozens.
    assert!(
        v["frames"].as_u64().unwrap_or(0) >= 20,
        "frames did not advance: {v}"
    );
    assert_eq!(v["audioTracks"], 1, "{v}");
    assert_eq!(v["deleteStatus"], 204, "{v}");
    let log = gw.log();
    assert!(
        log.contains("role=Publisher") && log.contains("role=Subscriber"),
        "{log}"
    );
}

#[tokio::test]
async fn chromium_watches_a_camsim_camera_over_webrtc_in_the_player_page() {
    let Some(dir) = browser_scripts() else { return };
    let gw = Gateway::start(&[]);
    let m = gw.mint("webrtc-cam").await;
    let mut camsim = spawn_camsim(&m, "15", "60");
    gw.wait_live(&m.mjpeg_url).await;
    let v = run_node(
        &dir.join("webrtc.mjs"),
        vec![
            format!("{}/health", gw.base),
            "--whep".into(),
            format!("{}/whep/{}", gw.base, m.room),
            "-".into(),
            "--page".into(),
            m.player_url.clone(),
            "--seconds".into(),
            "3".into(),
        ],
    )
    .await;
    eprintln!("camsim over webrtc (player page): {v}");
    let _ = camsim.kill();
    let _ = camsim.wait();
    assert_eq!(v["mode"], "webrtc", "{v}");
    assert_eq!(v["state"], "LIVE", "{v}");
    assert_eq!(
        (v["width"].as_u64(), v["height"].as_u64()),
        (Some(320), Some(240)),
        "{v}"
    );
    // 15 fps for 3 s; allow for start-up.
    assert!(
        v["frames"].as_u64().unwrap_or(0) >= 15,
        "frames did not advance: {v}"
    );
    assert!(gw.log().contains("transcoder started"));
}

#[tokio::test]
async fn chromium_plays_a_camsim_camera_over_plain_whep() {
    let Some(dir) = browser_scripts() else { return };
    let gw = Gateway::start(&[]);
    let m = gw.mint("whep-cam").await;
    let mut camsim = spawn_camsim(&m, "10", "60");
    gw.wait_live(&m.mjpeg_url).await;
    let v = run_node(
        &dir.join("webrtc.mjs"),
        vec![
            format!("{}/health", gw.base),
            "--whep".into(),
            format!("{}/whep/{}", gw.base, m.room),
            "-".into(),
            "--seconds".into(),
            "3".into(),
        ],
    )
    .await;
    eprintln!("camsim over whep: {v}");
    let _ = camsim.kill();
    let _ = camsim.wait();
    assert_eq!(v["videoCodec"], "video/H264", "{v}");
    assert!(v["frames"].as_u64().unwrap_or(0) >= 10, "{v}");
    assert_eq!(
        (v["width"].as_u64(), v["height"].as_u64()),
        (Some(320), Some(240)),
        "{v}"
    );
}

fn code(body: &str) -> String {
    serde_json::from_str::<serde_json::Value>(body)
        .ok()
        .and_then(|v| v["error"]["code"].as_str().map(str::to_owned))
        .unwrap_or_default()
}

#[tokio::test]
async fn whip_and_whep_answer_errors_with_seed_codes() {
    let gw = Gateway::start(&[]);
    let sdp = "application/sdp";
    let publisher = gw.token_for("errs", true, true).await;
    let viewer = gw.token_for("errs", false, true).await;
    let other_room = gw.token_for("elsewhere", true, true).await;

    // No token on WHIP.
    let (s, _, b) = gw.post_sdp("/whip/live-errs", None, sdp, "v=0").await;
    assert_eq!((s, code(&b).as_str()), (401, "auth_header_missing"), "{b}");
    // Corrupted token.
    let bad = format!("{}x", &publisher[..publisher.len() - 1]);
    let (s, _, b) = gw.post_sdp("/whip/live-errs", Some(&bad), sdp, "v=0").await;
    assert_eq!((s, code(&b).as_str()), (401, "token_invalid"), "{b}");
    // Subscribe-only token used to publish.
    let (s, _, b) = gw
        .post_sdp("/whip/live-errs", Some(&viewer), sdp, "v=0")
        .await;
    assert_eq!((s, code(&b).as_str()), (403, "role_insufficient"), "{b}");
    // A token for another room.
    let (s, _, b) = gw
        .post_sdp("/whip/live-errs", Some(&other_room), sdp, "v=0")
        .await;
    assert_eq!((s, code(&b).as_str()), (403, "room_mismatch"), "{b}");
    // Malformed SDP.
    let (s, _, b) = gw
        .post_sdp("/whip/live-errs", Some(&publisher), sdp, "hello")
        .await;
    assert_eq!((s, code(&b).as_str()), (400, "invalid_sdp"), "{b}");
    // Wrong content type.
    let (s, _, b) = gw
        .post_sdp(
            "/whip/live-errs",
            Some(&publisher),
            "application/json",
            "{}",
        )
        .await;
    assert_eq!(
        (s, code(&b).as_str()),
        (415, "unsupported_media_type"),
        "{b}"
    );
    // Nothing to watch yet.
    let (s, _, b) = gw
        .post_sdp("/whep/live-errs", Some(&viewer), sdp, "v=0")
        .await;
    assert_eq!(
        (s, code(&b).as_str()),
        (404, "no_publisher_available"),
        "{b}"
    );
    // A camera holds the room: a WHIP publisher is a second publisher.
    let m = gw.mint("errs").await;
    let mut camsim = spawn_camsim(&m, "5", "30");
    gw.wait_live(&m.mjpeg_url).await;
    let (s, _, b) = gw
        .post_sdp("/whip/live-errs", Some(&publisher), sdp, "v=0")
        .await;
    assert_eq!((s, code(&b).as_str()), (409, "room_full"), "{b}");
    let _ = camsim.kill();
    let _ = camsim.wait();
    // Unknown session.
    let r = gw
        .http
        .delete(format!("{}/session/live-errs/0123456789abcdef", gw.base))
        .send()
        .await
        .expect("delete");
    assert_eq!(r.status().as_u16(), 404);
    // CORS preflight as browsers send it.
    let r = gw
        .http
        .request(
            reqwest::Method::OPTIONS,
            format!("{}/whep/live-errs", gw.base),
        )
        .header("origin", "http://example.test")
        .header("access-control-request-method", "POST")
        .send()
        .await
        .expect("options");
    assert_eq!(r.status().as_u16(), 204);
    let h = r.headers();
    assert_eq!(h["access-control-allow-origin"], "*");
    assert!(
        h["access-control-allow-headers"]
            .to_str()
            .unwrap_or("")
            .contains("Authorization")
    );
    // An expired token (1 s lifetime, 2 s leeway).
    let (status, data) = gw
        .join_token(serde_json::json!({"room": "errs", "ttl": "1s"}))
        .await;
    assert_eq!(status, 201);
    tokio::time::sleep(Duration::from_millis(4500)).await;
    let expired = data["token"].as_str().expect("token");
    let (s, _, b) = gw
        .post_sdp("/whip/live-errs", Some(expired), sdp, "v=0")
        .await;
    assert_eq!((s, code(&b).as_str()), (401, "token_expired"), "{b}");
}

#[tokio::test]
async fn join_tokens_follow_the_seed_shape_and_rules() {
    let gw = Gateway::start(&[]);
    let (s, d) = gw
        .join_token(serde_json::json!({"room": "demo", "identity": "viewer-1", "canPublish": false, "ttl": "10m"}))
        .await;
    assert_eq!(s, 201, "{d}");
    for f in [
        "token", "app", "room", "identity", "wsUrl", "playUrl", "embedUrl", "iframe",
    ] {
        assert!(d[f].is_string(), "missing {f}: {d}");
    }
    assert_eq!(d["room"], "live-demo");
    assert_eq!(d["identity"], "viewer-1");
    assert!(
        d["playUrl"]
            .as_str()
            .unwrap_or("")
            .ends_with("/play/live/live-demo")
    );
    // Defaults: anon identity, room = app prefix.
    let (s, d) = gw.join_token(serde_json::json!({})).await;
    assert_eq!(s, 201);
    assert_eq!(d["room"], "live");
    assert!(
        d["identity"].as_str().unwrap_or("").starts_with("anon-"),
        "{d}"
    );
    // Validation.
    let (s, _) = gw
        .join_token(serde_json::json!({"room": "bad room!"}))
        .await;
    assert_eq!(s, 400);
    let (s, _) = gw.join_token(serde_json::json!({"ttl": "forever"})).await;
    assert_eq!(s, 400);
    let (s, _) = gw
        .join_token(serde_json::json!({"metadata": "x".repeat(2001)}))
        .await;
    assert_eq!(s, 400);
    // Needs an API token.
    let r = gw
        .http
        .post(format!("{}/api/v1/apps/live/tokens", gw.base))
        .json(&serde_json::json!({}))
        .send()
        .await
        .expect("post");
    assert_eq!(r.status().as_u16(), 401);
    // Public play and listen tokens.
    let (s, v) = gw
        .get_public_json("/api/v1/apps/live/play-token/cam1")
        .await;
    assert_eq!(s, 200, "{v}");
    assert_eq!(v["data"]["mode"], "viewer");
    assert_eq!(v["data"]["room"], "live-cam1");
    let (s, v) = gw
        .get_public_json("/api/v1/apps/live/radio/cam1/listen-token")
        .await;
    assert_eq!(s, 200, "{v}");
    assert_eq!(v["data"]["mode"], "listener");
}

#[tokio::test]
async fn aiortc_publishes_over_whip_and_plays_over_whep() {
    use camgate_hardware_tests::{aiortc_peer, aiortc_python, aiortc_result};
    if aiortc_python().is_none() {
        return;
    }
    let gw = Gateway::start(&[]);
    let token = gw.token_for("py", true, false).await;
    let publisher = aiortc_peer("publish", &format!("{}/whip/live-py", gw.base), &token, 9);
    // Live as a stream like any camera, typed `whip`.
    let mut live = serde_json::Value::Null;
    for _ in 0..100 {
        let (_, v) = gw
            .get_public_json("/api/v1/apps/live/ws-ingest/live/py")
            .await;
        if v["data"]["active"] == true {
            live = v;
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert_eq!(live["data"]["type"], "whip", "{live}");
    // A second publisher is refused while the first is live.
    let (s, _, b) = gw
        .post_sdp("/whip/live-py", Some(&token), "application/sdp", "v=0")
        .await;
    assert_eq!((s, code(&b).as_str()), (409, "room_full"), "{b}");
    let viewer = aiortc_peer("play", &format!("{}/whep/live-py", gw.base), "-", 4);
    let v = aiortc_result(viewer).await;
    eprintln!("aiortc play: {v}");
    assert_eq!(v["state"], "connected", "{v}");
    assert_eq!(
        (v["width"].as_u64(), v["height"].as_u64()),
        (Some(640), Some(480)),
        "{v}"
    );
    assert!(v["frames"].as_u64().unwrap_or(0) >= 30, "{v}");
    assert!(v["audioFrames"].as_u64().unwrap_or(0) > 0, "no audio: {v}");
    let p = aiortc_result(publisher).await;
    assert_eq!(p["state"], "connected", "{p}");
    assert_eq!(p["deleteStatus"], 204, "{p}");
    // The publisher's DELETE ended the stream.
    let mut ended = false;
    for _ in 0..50 {
        let (_, v) = gw
            .get_public_json("/api/v1/apps/live/ws-ingest/live/py")
            .await;
        if v["data"]["active"] == false {
            ended = true;
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert!(ended, "stream still live after DELETE");
}

#[tokio::test]
async fn whip_ingress_key_publishes_only_to_its_room_until_deleted() {
    let Some(dir) = browser_scripts() else { return };
    let gw = Gateway::start(&[]);
    let r = gw
        .http
        .post(format!("{}/api/v1/apps/live/ingress", gw.base))
        .bearer_auth(camgate_hardware_tests::ADMIN_TOKEN)
        .json(&serde_json::json!({ "inputType": "whip", "room": "ing" }))
        .send()
        .await
        .expect("create");
    assert_eq!(r.status(), 201);
    let v: serde_json::Value = r.json().await.expect("json");
    let d = &v["data"];
    let url = d["url"].as_str().expect("url").to_owned();
    let key = d["streamKey"].as_str().expect("key").to_owned();
    assert_eq!(url, format!("{}/whip/live-ing", gw.base));
    assert!(key.starts_with("wk-"), "{d}");
    assert!(d.get("rtmp_url").is_none(), "{d}");
    let id = d["ingressId"].as_str().expect("id").to_owned();

    // The key publishes from Chromium; viewers watch as usual.
    let v = run_node(
        &dir.join("webrtc.mjs"),
        vec![
            format!("{}/health", gw.base),
            "--whip".into(),
            url.clone(),
            key.clone(),
            "--whep".into(),
            format!("{}/whep/live-ing", gw.base),
            "-".into(),
            "--seconds".into(),
            "2".into(),
        ],
    )
    .await;
    assert_eq!(v["published"], true, "{v}");
    assert!(v["frames"].as_u64().unwrap_or(0) >= 10, "{v}");

    // Only publishing, only its room; dead once deleted.
    let sdp = "application/sdp";
    let (s, _, b) = gw.post_sdp("/whep/live-ing", Some(&key), sdp, "v=0").await;
    assert_eq!((s, b.contains("role_insufficient")), (403, true), "{b}");
    let (s, _, b) = gw
        .post_sdp("/whip/live-other", Some(&key), sdp, "v=0")
        .await;
    assert_eq!((s, b.contains("room_mismatch")), (403, true), "{b}");
    let r = gw
        .http
        .delete(format!("{}/api/v1/apps/live/ingress/{id}", gw.base))
        .bearer_auth(camgate_hardware_tests::ADMIN_TOKEN)
        .send()
        .await
        .expect("delete");
    assert_eq!(r.status(), 200);
    let (s, _, b) = gw.post_sdp("/whip/live-ing", Some(&key), sdp, "v=0").await;
    assert_eq!((s, b.contains("token_invalid")), (401, true), "{b}");
}

#[tokio::test]
async fn an_mjpeg_camera_plays_over_hls_through_the_transcoder() {
    let Some(dir) = browser_scripts() else { return };
    let gw = Gateway::start(&[]);
    let m = gw.mint("hls-cam").await;
    let mut camsim = spawn_camsim(&m, "15", "60");
    gw.wait_live(&m.mjpeg_url).await;
    let (_, live) = gw
        .get_public_json("/api/v1/apps/live/ws-ingest/live/hls-cam")
        .await;
    let playlist = live["data"]["hlsUrl"]
        .as_str()
        .unwrap_or_else(|| panic!("no hlsUrl for a live camera: {live}"))
        .to_owned();

    // The first request starts the transcoder and waits for a segment.
    let text = gw
        .http
        .get(&playlist)
        .send()
        .await
        .expect("playlist")
        .text()
        .await
        .expect("playlist body");
    assert!(text.starts_with("#EXTM3U"), "{text}");
    // Keyframes are asked for every two seconds whatever the encoder's
    // interval, so segments stay short.
    let target: u64 = text
        .lines()
        .find_map(|l| l.strip_prefix("#EXT-X-TARGETDURATION:"))
        .and_then(|v| v.trim().parse().ok())
        .expect("target duration");
    assert!(target <= 3, "{text}");
    let probed = tokio::task::spawn_blocking({
        let playlist = playlist.clone();
        move || camgate_hardware_tests::ffprobe_streams(&playlist)
    })
    .await
    .expect("ffprobe");
    assert!(
        probed.contains("codec_name=h264|width=320|height=240"),
        "{probed}"
    );

    let v = camgate_hardware_tests::hls_in_chromium(&dir, &gw, &playlist, 4, true).await;
    eprintln!("camera over hls.js: {v}");
    let _ = camsim.kill();
    let _ = camsim.wait();
    assert_eq!(v["errors"], serde_json::json!([]), "{v}");
    assert_eq!(
        (v["width"].as_u64(), v["height"].as_u64()),
        (Some(320), Some(240)),
        "{v}"
    );
    assert!(
        v["frames"].as_u64().unwrap_or(0) >= 20,
        "frames did not advance: {v}"
    );
    let log = gw.log();
    assert!(log.contains("transcoder started"), "{log}");
}

#[tokio::test]
async fn chat_rides_the_data_channel_both_ways_and_is_stored_under_the_sender() {
    use camgate_hardware_tests::{aiortc_peer, aiortc_python, aiortc_result};
    if aiortc_python().is_none() {
        return;
    }
    let gw = Gateway::start(&[]);
    let (status, _) = gw
        .api(
            reqwest::Method::PATCH,
            "/api/v1/apps/live",
            Some(serde_json::json!({ "features": { "chat": true } })),
        )
        .await;
    assert_eq!(status, 200);
    let minted = gw.mint("chatroom").await;
    let mut cam = camgate_hardware_tests::spawn_camsim(&minted, "10", "60");
    let _viewer = gw.wait_live(&minted.mjpeg_url).await;
    let (status, data) = gw
        .join_token(serde_json::json!({
            "room": "chatroom", "identity": "viewer-7", "canPublish": false, "ttl": "10m"
        }))
        .await;
    assert_eq!(status, 201, "{data}");
    let token = data["token"].as_str().expect("token").to_owned();
    let peer = aiortc_peer(
        "chat",
        &format!("{}/whep/{}", gw.base, minted.room),
        &token,
        5,
    );
    // Wait for the participant's own message to be stored, then send one
    // from the server side: it must reach the participant's channel.
    let stream_id = format!("{}/{}", minted.room, minted.identity).replace('/', "%2F");
    let chat_path = format!("/api/v1/apps/live/streams/{stream_id}/chat");
    let mut stored = serde_json::Value::Null;
    for _ in 0..150 {
        let (_, v) = gw.get_json(&chat_path).await;
        if v["total"].as_i64().unwrap_or(0) >= 1 {
            stored = v;
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert_eq!(
        stored["data"][0]["message"], "hello from aiortc",
        "{stored}"
    );
    // Stored under the authenticated identity, not the claimed sender.
    assert_eq!(stored["data"][0]["from"], "viewer-7", "{stored}");
    assert_eq!(stored["data"][0]["source"], "webrtc", "{stored}");
    let (status, v) = gw
        .api(
            reqwest::Method::POST,
            &format!("/api/v1/apps/live/streams/{stream_id}/data"),
            Some(serde_json::json!({ "from": "moderator", "message": "welcome, viewer-7" })),
        )
        .await;
    assert_eq!(status, 200, "{v}");
    let v = aiortc_result(peer).await;
    eprintln!("aiortc chat: {v}");
    assert_eq!(v["state"], "connected", "{v}");
    assert_eq!(v["channelOpen"], true, "{v}");
    let got = v["received"].as_array().cloned().unwrap_or_default();
    assert!(
        got.iter().any(|m| m["from"] == "moderator"
            && m["message"] == "welcome, viewer-7"
            && m["topic"] == "chat"),
        "server message reached the data channel: {v}"
    );
    let _ = cam.kill();
    let _ = cam.wait();
}
