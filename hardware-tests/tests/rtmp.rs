//! RTMP ingest end to end: Debian's ffmpeg pushes `testsrc2` + `sine` over
//! RTMP; the ingress API shows it live; Chromium plays it over WHEP (H.264
//! passthrough, AAC → Opus) and as HLS with hls.js; ffprobe reads the HLS. Bad input: wrong key, unknown app, garbage after the
//! handshake, the same key twice, deleting a live ingress, a publisher
//! killed mid-GOP — each refused or recovered, logged, nothing else
//! affected.

use std::io::{Read, Write};
use std::process::Child;
use std::time::{Duration, Instant};

use camgate_hardware_tests::{
    ADMIN_TOKEN, Gateway, browser_scripts, ffmpeg_push as push, ffprobe_streams, peer_available,
    whep_in_chromium,
};

/// Creates an RTMP ingress for `room`; returns (id, rtmp_url, body).
async fn create_ingress(gw: &Gateway, room: &str) -> (String, String, serde_json::Value) {
    let d = gw.create_ingress(room).await;
    (
        d["ingressId"].as_str().expect("id").to_owned(),
        d["rtmp_url"].as_str().expect("rtmp_url").to_owned(),
        d,
    )
}

/// Waits for a child to exit; `None` when it is still running at the end.
fn wait_exit(child: &mut Child, within: Duration) -> Option<std::process::ExitStatus> {
    let deadline = Instant::now() + within;
    while Instant::now() < deadline {
        if let Ok(Some(s)) = child.try_wait() {
            return Some(s);
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    None
}

async fn ingress_row(gw: &Gateway, id: &str) -> (u16, serde_json::Value) {
    gw.get_json(&format!("/api/v1/apps/live/ingress/{id}"))
        .await
}

/// Waits until the ingress shows `publishing` (and its metadata arrived).
async fn wait_publishing(gw: &Gateway, id: &str) -> serde_json::Value {
    let deadline = Instant::now() + Duration::from_secs(15);
    loop {
        let (_, v) = ingress_row(gw, id).await;
        if v["data"]["status"] == "publishing" && v["data"]["width"].is_u64() {
            return v["data"].clone();
        }
        assert!(Instant::now() < deadline, "never publishing: {v}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// Completes an RTMP handshake on a raw socket, sends `bytes`, and waits
/// until the server closes the connection (it must, within the idle
/// timeout at the latest).
fn raw_rtmp(addr: &str, bytes: &[u8]) {
    let mut s = std::net::TcpStream::connect(addr).expect("connect");
    s.set_read_timeout(Some(Duration::from_secs(35))).ok();
    let mut c0c1 = vec![3u8];
    c0c1.extend((0..1536u32).map(|i| (i * 7) as u8));
    s.write_all(&c0c1).expect("c0c1");
    let mut s0s1s2 = vec![0u8; 1 + 1536 * 2];
    s.read_exact(&mut s0s1s2).expect("s0s1s2");
    s.write_all(&s0s1s2[1..1537]).expect("c2");
    let _ = s.write_all(bytes);
    let mut rest = Vec::new();
    let r = s.read_to_end(&mut rest);
    assert!(r.is_ok(), "server did not close: {r:?}");
}

fn count(log: &str, needle: &str) -> usize {
    log.matches(needle).count()
}

#[tokio::test]
async fn ffmpeg_pushes_rtmp_and_chromium_plays_it_over_whep() {
    let Some(dir) = browser_scripts() else { return };
    if !peer_available("ffmpeg") {
        return;
    }
    let gw = Gateway::start(&[]);
    let (id, url, created) = create_ingress(&gw, "enc").await;
    // The seed's fields, key shown once in both spellings.
    assert_eq!(created["roomName"], "live-enc");
    assert_eq!(created["streamKey"], created["stream_key"]);
    assert!(url.starts_with(&format!("{}/live/sk-", gw.rtmp)), "{url}");
    assert!(
        created["player_url"]
            .as_str()
            .is_some_and(|u| u.ends_with("/play/live/live-enc"))
    );
    let mut ffmpeg = push(&url, 20);
    let row = wait_publishing(&gw, &id).await;
    assert_eq!(
        (row["width"].as_u64(), row["height"].as_u64()),
        (Some(640), Some(360))
    );
    // The listing never shows the key, only its tail.
    let (_, list) = gw.get_json("/api/v1/apps/live/ingress?limit=10").await;
    assert_eq!(list["total"], 1, "{list}");
    assert_eq!(list["limit"], 10);
    let key = created["streamKey"].as_str().unwrap_or_default();
    assert!(!list.to_string().contains(key), "{list}");

    let v = whep_in_chromium(&dir, &gw, "live-enc", 3).await;
    eprintln!("rtmp → whep: {v}");
    assert_eq!(v["state"], "connected", "{v}");
    assert_eq!(
        (v["width"].as_u64(), v["height"].as_u64()),
        (Some(640), Some(360)),
        "{v}"
    );
    assert!(
        v["frames"].as_u64().unwrap_or(0) >= 20,
        "frames did not advance: {v}"
    );
    // Sound: the AAC arrived as Opus, ~50 packets a second.
    assert_eq!(v["audioCodec"], "audio/opus", "{v}");
    assert!(
        v["audioPackets"].as_u64().unwrap_or(0) >= 50,
        "no audio: {v}"
    );
    let (_, row) = ingress_row(&gw, &id).await;
    assert!(
        row["data"]["bitrate"].as_u64().unwrap_or(0) > 100_000,
        "{row}"
    );
    // The same stream as MJPEG (H.264 → JPEG while watched) and frame.jpg.
    let mut viewer = camgate_hardware_tests::MjpegViewer::open(
        &gw.http,
        &format!("{}/live/live/live-enc/mjpeg", gw.base),
    )
    .await
    .expect("mjpeg viewer");
    for _ in 0..3 {
        let frame = viewer
            .next_frame_within(Duration::from_secs(5))
            .await
            .expect("mjpeg frame");
        camgate_hardware_tests::assert_jpeg(&frame, 640, 360);
    }
    let snap = gw
        .http
        .get(format!("{}/live/live/live-enc/frame.jpg", gw.base))
        .send()
        .await
        .expect("frame.jpg");
    assert_eq!(snap.status(), 200);
    let _ = ffmpeg.kill();
    let _ = ffmpeg.wait();
}

#[tokio::test]
async fn bad_rtmp_input_is_refused_and_nothing_else_is_affected() {
    if !peer_available("ffmpeg") {
        return;
    }
    let gw = Gateway::start(&[]);
    let (good_id, good_url, _) = create_ingress(&gw, "good").await;
    let mut good = push(&good_url, 60);
    wait_publishing(&gw, &good_id).await;

    // Wrong key and unknown app: ffmpeg is refused quickly.
    let mut wrong = push(&format!("{}/live/sk-not-a-key", gw.rtmp), 5);
    let s = wait_exit(&mut wrong, Duration::from_secs(10)).expect("wrong key refused");
    assert!(!s.success());
    let mut no_app = push(&format!("{}/nosuchapp/sk-x", gw.rtmp), 5);
    let s = wait_exit(&mut no_app, Duration::from_secs(10)).expect("unknown app refused");
    assert!(!s.success());

    // Garbage after a valid handshake; a chunk size of 2^31-1 with a 16 MB
    // message cut short; a message header changing mid-message (rml_rtmp's
    // chunk reader would panic on it). Each connection is closed.
    let chunk = |csid: u8, len: u32, kind: u8| {
        let mut h = vec![csid, 0, 0, 0];
        h.extend_from_slice(&len.to_be_bytes()[1..]);
        h.extend_from_slice(&[kind, 1, 0, 0, 0]);
        h
    };
    let mut huge = chunk(2, 4, 1);
    huge.extend_from_slice(&0x7fff_ffffu32.to_be_bytes());
    huge.extend(chunk(6, 0xff_ffff, 9));
    huge.extend_from_slice(&[0x17; 4096]);
    let mut mid = chunk(6, 4096, 9);
    mid.extend_from_slice(&[0x17; 128]);
    mid.extend(chunk(6, 16, 9));
    mid.extend_from_slice(&[0x17; 16]);
    for bytes in [vec![0xffu8; 8192], huge, mid] {
        let addr = gw.rtmp.trim_start_matches("rtmp://").to_owned();
        let raw = tokio::task::spawn_blocking(move || raw_rtmp(&addr, &bytes));
        tokio::time::timeout(Duration::from_secs(40), raw)
            .await
            .expect("server closed the bad connection")
            .expect("raw task");
    }

    // None of that touched the good stream.
    let (_, row) = ingress_row(&gw, &good_id).await;
    assert_eq!(row["data"]["status"], "publishing", "{row}");
    assert!(
        good.try_wait().expect("try_wait").is_none(),
        "good push ended"
    );

    // The same key twice: the newer connection takes over (an encoder
    // reconnecting after a drop), the older is closed.
    let mut twice = push(&good_url, 60);
    let s = wait_exit(&mut good, Duration::from_secs(10)).expect("old publisher replaced");
    assert!(!s.success());
    wait_publishing(&gw, &good_id).await;
    assert!(
        twice.try_wait().expect("try_wait").is_none(),
        "new push ended"
    );

    let log = gw.log();
    assert_eq!(count(&log, "reason=unknown stream key"), 1, "{log}");
    assert_eq!(count(&log, "reason=unknown app \"nosuchapp\""), 1, "{log}");
    assert_eq!(
        count(&log, "replaced by a new connection with the same key"),
        2,
        "{log}"
    );
    assert!(
        log.contains("reason=protocol error") || log.contains("reason=handshake failed"),
        "{log}"
    );

    // Killed mid-GOP: the ingress goes inactive, a new push works.
    let _ = twice.kill();
    let _ = twice.wait();
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let (_, row) = ingress_row(&gw, &good_id).await;
        if row["data"]["status"] == "inactive" {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "still publishing after kill: {row}"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let mut again = push(&good_url, 60);
    wait_publishing(&gw, &good_id).await;

    // Deleting a live ingress drops its publisher at once; its key is dead.
    let r = gw
        .http
        .delete(format!("{}/api/v1/apps/live/ingress/{good_id}", gw.base))
        .bearer_auth(ADMIN_TOKEN)
        .send()
        .await
        .expect("delete");
    assert_eq!(r.status(), 200);
    let s = wait_exit(&mut again, Duration::from_secs(10)).expect("publisher dropped on delete");
    assert!(!s.success());
    let (status, _) = ingress_row(&gw, &good_id).await;
    assert_eq!(status, 404);
    let mut dead = push(&good_url, 5);
    let s = wait_exit(&mut dead, Duration::from_secs(10)).expect("deleted key refused");
    assert!(!s.success());
}

#[tokio::test]
async fn rtmp_stream_plays_as_hls_in_ffprobe_and_in_chromium_with_hls_js() {
    let Some(dir) = browser_scripts() else { return };
    if !peer_available("ffmpeg") || !peer_available("ffprobe") {
        return;
    }
    let gw = Gateway::start(&[]);
    let (id, url, created) = create_ingress(&gw, "hls").await;
    let playlist = format!("{}/hls/live/live-hls/index.m3u8", gw.base);
    assert_eq!(created["hlsUrl"], playlist.as_str());
    let mut ffmpeg = push(&url, 40);
    wait_publishing(&gw, &id).await;
    // The first segment needs a second of media.
    let deadline = Instant::now() + Duration::from_secs(10);
    let text = loop {
        let r = gw.http.get(&playlist).send().await.expect("playlist");
        if r.status() == 200 {
            break r.text().await.expect("text");
        }
        assert!(Instant::now() < deadline, "no playlist");
        tokio::time::sleep(Duration::from_millis(200)).await;
    };
    assert!(text.contains("#EXT-X-PART-INF:PART-TARGET="), "{text}");
    // The public live info names it, with the stream's type.
    let (_, live) = gw
        .get_public_json("/api/v1/apps/live/ws-ingest/live/hls")
        .await;
    assert_eq!(live["data"]["type"], "rtmp", "{live}");
    assert_eq!(live["data"]["hlsUrl"], playlist.as_str(), "{live}");
    assert!(text.contains("CAN-BLOCK-RELOAD=YES"), "{text}");
    assert!(text.contains("#EXT-X-PRELOAD-HINT:TYPE=PART"), "{text}");

    // Plain HLS client: ffprobe sees H.264 640x360 and AAC 48 kHz.
    let probe = ffprobe_streams(&playlist);
    assert!(
        probe.contains("codec_name=h264|width=640|height=360"),
        "{probe}"
    );
    assert!(
        probe.contains("codec_name=aac|sample_rate=48000"),
        "{probe}"
    );

    // Blocking reload: ask for the part after the preload hint's.
    let hint = text
        .lines()
        .find_map(|l| l.strip_prefix("#EXT-X-PRELOAD-HINT:TYPE=PART,URI=\"part-"))
        .expect("hint")
        .trim_end_matches(".m4s\"")
        .to_owned();
    let (msn, part) = hint.split_once('-').expect("msn-part");
    let t0 = Instant::now();
    let r = gw
        .http
        .get(format!("{playlist}?_HLS_msn={msn}&_HLS_part={part}"))
        .send()
        .await
        .expect("blocking reload");
    assert_eq!(r.status(), 200);
    let blocked = r.text().await.expect("text");
    assert!(
        blocked.contains(&format!("part-{msn}-{part}.m4s")),
        "{blocked}"
    );
    eprintln!("blocking reload answered after {:?}", t0.elapsed());
    let r = gw
        .http
        .get(format!("{playlist}?_HLS_msn=999999"))
        .send()
        .await
        .expect("far ahead");
    assert_eq!(r.status(), 400);

    // hls.js (low-latency mode) in Chromium: frames advance, right size.
    let v = camgate_hardware_tests::hls_in_chromium(&dir, &gw, &playlist, 4, true).await;
    eprintln!("hls.js: {v}");
    assert_eq!(v["errors"], serde_json::json!([]), "{v}");
    assert_eq!(
        (v["width"].as_u64(), v["height"].as_u64()),
        (Some(640), Some(360)),
        "{v}"
    );
    assert!(
        v["frames"].as_u64().unwrap_or(0) >= 30,
        "frames did not advance: {v}"
    );
    assert!(
        v["currentTimeAdvanced"].as_f64().unwrap_or(0.0) > 2.0,
        "{v}"
    );

    // The stream ends: the playlist says so.
    let _ = ffmpeg.kill();
    let _ = ffmpeg.wait();
    let deadline = Instant::now() + Duration::from_secs(10);
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
        if text.contains("#EXT-X-ENDLIST") {
            break;
        }
        assert!(Instant::now() < deadline, "no ENDLIST: {text}");
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

#[tokio::test]
async fn timestamps_going_backwards_keep_hls_valid() {
    use camgate_hardware_tests::bench_rtmp::{make_input, publish, read_flv};
    use std::sync::Arc;
    use std::sync::atomic::AtomicBool;
    if !peer_available("ffmpeg") || !peer_available("ffprobe") {
        return;
    }
    let gw = Gateway::start(&[]);
    let dir = gw.data_dir.join("input");
    std::fs::create_dir_all(&dir).expect("dir");
    let tags = read_flv(&make_input(&dir, 3, 800));
    // The same 3 s twice in one connection: at 3 s the encoder's clock
    // jumps back to 0 (an encoder restarting its clock without reconnecting).
    let twice: Vec<_> = tags.iter().chain(tags.iter()).cloned().collect();
    let (id, _, created) = create_ingress(&gw, "back").await;
    let key = created["streamKey"].as_str().expect("key").to_owned();
    let addr = gw.rtmp.trim_start_matches("rtmp://").parse().expect("addr");
    let stop = Arc::new(AtomicBool::new(false));
    let (tx, _rx) = tokio::sync::oneshot::channel();
    let pusher = tokio::spawn(publish(
        addr,
        "live".into(),
        key,
        Arc::new(twice),
        stop.clone(),
        tx,
    ));
    // (This publisher sends no onMetaData, so no size: wait on status.)
    let deadline = Instant::now() + Duration::from_secs(10);
    while ingress_row(&gw, &id).await.1["data"]["status"] != "publishing" {
        assert!(Instant::now() < deadline, "never publishing");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    tokio::time::sleep(Duration::from_millis(6500)).await;
    let playlist = format!("{}/hls/live/live-back/index.m3u8", gw.base);
    let text = gw
        .http
        .get(&playlist)
        .send()
        .await
        .expect("playlist")
        .text()
        .await
        .expect("text");
    stop.store(true, std::sync::atomic::Ordering::Relaxed);
    let _ = pusher.await;
    // Every segment has a positive duration and the media is ~6 s.
    let durations: Vec<f64> = text
        .lines()
        .filter_map(|l| l.strip_prefix("#EXTINF:"))
        .map(|d| d.trim_end_matches(',').parse().expect("duration"))
        .collect();
    assert!(durations.len() >= 4, "{text}");
    assert!(durations.iter().all(|d| *d > 0.0), "{text}");
    let total: f64 = durations.iter().sum();
    assert!(total > 4.0, "{text}");
    // A plain HLS client still reads it.
    let probe = ffprobe_streams(&playlist);
    assert!(probe.contains("codec_name=h264"), "{probe}");
    assert!(probe.contains("codec_name=aac"), "{probe}");
}

/// Waits until an ingress row of `app` shows `status`.
async fn wait_status(gw: &Gateway, app: &str, id: &str, status: &str) -> serde_json::Value {
    let deadline = Instant::now() + Duration::from_secs(15);
    loop {
        let (_, v) = gw
            .get_json(&format!("/api/v1/apps/{app}/ingress/{id}"))
            .await;
        if v["data"]["status"] == status {
            return v["data"].clone();
        }
        assert!(Instant::now() < deadline, "never {status}: {v}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

#[tokio::test]
async fn an_app_with_rtmp_password_takes_only_validated_pushes() {
    use reqwest::Method;
    assert!(peer_available("ffmpeg"), "ffmpeg is needed");
    let gw = Gateway::start(&[]);

    // A new app, created and configured over the apps API.
    let (status, v) = gw
        .api(
            Method::POST,
            "/api/v1/apps",
            Some(serde_json::json!({ "name": "secure", "displayName": "Secure site" })),
        )
        .await;
    assert_eq!(status, 201, "{v}");
    assert_eq!(v["data"]["livekitRoomPrefix"], "secure", "{v}");
    assert_eq!(v["data"]["features"]["rtmpPassword"], false, "{v}");
    let (status, v) = gw
        .api(
            Method::POST,
            "/api/v1/apps",
            Some(serde_json::json!({ "name": "secure" })),
        )
        .await;
    assert_eq!(
        (status, v["error"]["code"].as_str()),
        (409, Some("app_exists"))
    );
    let (status, v) = gw
        .api(
            Method::POST,
            "/api/v1/apps",
            Some(serde_json::json!({ "name": "Bad_Name" })),
        )
        .await;
    assert_eq!(
        (status, v["error"]["code"].as_str()),
        (400, Some("invalid_name"))
    );
    let (status, v) = gw
        .api(
            Method::PATCH,
            "/api/v1/apps/secure",
            Some(serde_json::json!({ "splitMinutes": 7 })),
        )
        .await;
    assert_eq!(
        (status, v["error"]["code"].as_str()),
        (400, Some("invalid_split_minutes"))
    );
    let (status, v) = gw
        .api(
            Method::PATCH,
            "/api/v1/apps/secure",
            Some(serde_json::json!({
                "features": { "rtmpPassword": true },
                "callbackUrl": "http://127.0.0.1:9/hook",
                "callbackSecret": "s3cret-value",
            })),
        )
        .await;
    assert_eq!(status, 200, "{v}");
    assert_eq!(v["data"]["features"]["rtmpPassword"], true, "{v}");
    assert_eq!(v["data"]["features"]["publicPlayback"], true, "{v}");
    assert_eq!(v["data"]["callbackSecretSet"], true, "{v}");
    assert!(
        !v.to_string().contains("s3cret-value"),
        "secret echoed: {v}"
    );
    let (_, list) = gw.get_json("/api/v1/apps").await;
    let names: Vec<&str> = list["data"]
        .as_array()
        .expect("apps")
        .iter()
        .filter_map(|a| a["name"].as_str())
        .collect();
    assert_eq!(names, ["live", "secure"], "{list}");

    let create = |room: &'static str| {
        let gw = &gw;
        async move {
            let (status, v) = gw
                .api(
                    Method::POST,
                    "/api/v1/apps/secure/ingress",
                    Some(serde_json::json!({ "inputType": "rtmp", "room": room })),
                )
                .await;
            assert_eq!(status, 201, "{v}");
            v["data"].clone()
        }
    };
    let never = create("never").await;
    let later = create("later").await;
    let inline = create("inline").await;
    assert_eq!(later["requires_password"], true, "{later}");
    let password = later["stream_password"].as_str().expect("stream_password");

    // A push nobody validates is dropped when the window ends (15 s); it
    // runs alongside the rest.
    let mut unvalidated = push(never["rtmp_url"].as_str().expect("url"), 40);

    // A push without its password waits, takes no seat…
    let later_id = later["ingressId"].as_str().expect("id");
    let mut waiting = push(later["rtmp_url"].as_str().expect("url"), 30);
    wait_status(&gw, "secure", later_id, "pending_validation").await;
    let validate = |pw: &str| {
        let body = serde_json::json!({ "password": pw });
        let path = format!("/api/v1/apps/secure/ingress/{later_id}/validate");
        let gw = &gw;
        async move { gw.api(Method::POST, &path, Some(body)).await }
    };
    let (status, v) = validate("not-it").await;
    assert_eq!(
        (status, &v["data"]["valid"]),
        (200, &serde_json::json!(false)),
        "{v}"
    );
    assert_eq!(
        gw.get_json(&format!("/api/v1/apps/secure/ingress/{later_id}"))
            .await
            .1["data"]["status"],
        "pending_validation"
    );
    // …and starts once validated, with the configuration it sent while
    // waiting (HLS needs the AVC and AAC sequence headers).
    let (status, v) = validate(password).await;
    assert_eq!(
        (status, &v["data"]["valid"]),
        (200, &serde_json::json!(true)),
        "{v}"
    );
    let row = wait_status(&gw, "secure", later_id, "publishing").await;
    assert_eq!(row["requiresPassword"], true, "{row}");
    let playlist = format!("{}/hls/secure/secure-later/index.m3u8", gw.base);
    let probed = tokio::task::spawn_blocking(move || ffprobe_streams(&playlist))
        .await
        .expect("ffprobe");
    assert!(
        probed.contains("codec_name=h264|width=640|height=360")
            && probed.contains("codec_name=aac"),
        "{probed}"
    );

    // The password in the key (`?password=`) is checked at once: wrong is
    // refused, right publishes.
    let inline_id = inline["ingressId"].as_str().expect("id");
    let inline_url = inline["rtmp_url"].as_str().expect("url");
    let mut wrong = push(&format!("{inline_url}?password=nope"), 10);
    assert!(wait_exit(&mut wrong, Duration::from_secs(10)).is_some_and(|s| !s.success()));
    let pw = inline["stream_password"].as_str().expect("pw");
    let mut right = push(&format!("{inline_url}?password={pw}"), 30);
    wait_status(&gw, "secure", inline_id, "publishing").await;

    // The unvalidated push is gone by now or soon.
    assert!(
        wait_exit(&mut unvalidated, Duration::from_secs(20)).is_some(),
        "an unvalidated push was kept"
    );
    let log = gw.log();
    assert_eq!(
        count(&log, "unauthorized_rtmp_password: wrong stream password"),
        1,
        "{log}"
    );
    assert_eq!(
        count(
            &log,
            "unauthorized_rtmp_password: the stream password was not validated in time"
        ),
        1,
        "{log}"
    );
    assert!(
        !log.contains(password) && !log.contains(pw),
        "a password was logged"
    );

    // Deleting the app drops its live pushes and everything it owned.
    let (status, v) = gw.api(Method::DELETE, "/api/v1/apps/secure", None).await;
    assert_eq!(
        (status, &v["data"]["deleted"]),
        (200, &serde_json::json!(true)),
        "{v}"
    );
    assert!(wait_exit(&mut waiting, Duration::from_secs(10)).is_some());
    assert!(wait_exit(&mut right, Duration::from_secs(10)).is_some());
    let (status, _) = gw.get_json("/api/v1/apps/secure").await;
    assert_eq!(status, 404);
    let (status, _) = gw.get_json("/api/v1/apps/live").await;
    assert_eq!(status, 200);
}

#[tokio::test]
async fn streams_are_listed_counted_and_stopped_through_the_api() {
    use reqwest::Method;
    assert!(peer_available("ffmpeg"), "ffmpeg is needed");
    let gw = Gateway::start(&[]);
    let (status, _) = gw
        .api(
            Method::PATCH,
            "/api/v1/apps/live",
            Some(serde_json::json!({ "features": { "viewerCounter": true } })),
        )
        .await;
    assert_eq!(status, 200);
    let m = gw.mint("yard").await;
    let mut camsim = camgate_hardware_tests::spawn_camsim(&m, "10", "60");
    let mut viewer = gw.wait_live(&m.mjpeg_url).await;
    let (id, url, _) = create_ingress(&gw, "stage").await;
    let mut ffmpeg = push(&url, 60);
    wait_publishing(&gw, &id).await;

    let (_, list) = gw.get_json("/api/v1/apps/live/streams").await;
    let rows = list["data"].as_array().expect("rows");
    let kinds: Vec<(&str, &str)> = rows
        .iter()
        .map(|r| {
            (
                r["room"].as_str().unwrap_or(""),
                r["type"].as_str().unwrap_or(""),
            )
        })
        .collect();
    assert!(kinds.contains(&("live-yard", "ws-mjpeg")), "{list}");
    assert!(kinds.contains(&("live-stage", "rtmp")), "{list}");
    assert!(rows.iter().all(|r| r["status"] == "active"), "{list}");

    // Detail by canonical id (URL-encoded), with the viewer count.
    let cam_id = format!("live-yard/{}", m.identity);
    let path = format!("/api/v1/apps/live/streams/{}", cam_id.replace('/', "%2F"));
    let _ = viewer.next_frame().await;
    let (status, one) = gw.get_json(&path).await;
    assert_eq!(status, 200, "{one}");
    assert_eq!(one["data"]["streamId"], cam_id.as_str(), "{one}");
    assert_eq!(one["data"]["viewers"], 1, "{one}");
    let stats: serde_json::Value =
        serde_json::from_str(one["data"]["lastStatsJson"].as_str().expect("stats")).expect("json");
    assert_eq!(stats["live"], true, "{one}");

    // Stop the camera: it is disconnected, the row ends.
    let (status, _) = gw.api(Method::DELETE, &path, None).await;
    assert_eq!(status, 204);
    let (_, one) = gw.get_json(&path).await;
    assert_eq!(one["data"]["status"], "ended", "{one}");
    assert!(gw.log().contains("stream stopped through the API"));

    // Stop the RTMP stream: the ingress goes with it, the encoder is cut.
    let rtmp_id = "live-stage/ingress-live";
    let (status, _) = gw
        .api(
            Method::DELETE,
            &format!("/api/v1/apps/live/streams/{}", rtmp_id.replace('/', "%2F")),
            None,
        )
        .await;
    assert_eq!(status, 204);
    assert!(
        wait_exit(&mut ffmpeg, Duration::from_secs(10)).is_some(),
        "encoder still connected"
    );
    let (status, _) = ingress_row(&gw, &id).await;
    assert_eq!(status, 404);
    let (_, ended) = gw.get_json("/api/v1/apps/live/streams?status=ended").await;
    assert_eq!(ended["total"], 2, "{ended}");
    let (status, v) = gw.get_json("/api/v1/apps/live/streams?status=bogus").await;
    assert_eq!(
        (status, v["error"]["code"].as_str()),
        (400, Some("invalid_status"))
    );
    let (status, v) = gw
        .api(Method::DELETE, "/api/v1/apps/live/streams/nope", None)
        .await;
    assert_eq!(
        (status, v["error"]["code"].as_str()),
        (404, Some("stream_not_found"))
    );
    let _ = camsim.kill();
    let _ = camsim.wait();
    let _ = ffmpeg.kill();
    let _ = ffmpeg.wait();
}

/// Polls a stream's restreams until the first one shows `status`.
async fn wait_restream(gw: &Gateway, path: &str, status: &str) -> serde_json::Value {
    let deadline = Instant::now() + Duration::from_secs(45);
    loop {
        let (_, v) = gw.get_json(path).await;
        if v["data"][0]["status"] == status {
            return v["data"][0].clone();
        }
        assert!(Instant::now() < deadline, "restream never {status}: {v}");
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

#[tokio::test]
async fn a_stream_is_restreamed_to_nginx_rtmp_and_resumes_after_nginx_restarts() {
    use camgate_hardware_tests::bench_rtmp::Nginx;
    if !peer_available("ffmpeg") || !peer_available("nginx") {
        return;
    }
    let dir = std::env::temp_dir().join(format!("camgate-restream-{}", std::process::id()));
    std::fs::create_dir_all(&dir).expect("dir");
    let port = camgate_hardware_tests::free_port();
    let nginx = Nginx::start_on(&dir, 0, 2, port);
    assert!(
        nginx.is_some() || std::env::var("CI").as_deref() != Ok("true"),
        "nginx with libnginx-mod-rtmp is needed (scripts/test installs it)"
    );
    let Some(nginx) = nginx else { return };

    let gw = Gateway::start(&[]);
    let (id, url, _) = create_ingress(&gw, "fwd").await;
    let mut ffmpeg = push(&url, 60);
    wait_publishing(&gw, &id).await;
    let (_, streams) = gw.get_json("/api/v1/apps/live/streams").await;
    let stream = streams["data"][0]["streamId"]
        .as_str()
        .expect("stream")
        .replace('/', "%2F");
    let path = format!("/api/v1/apps/live/streams/{stream}/restream");

    // Bad destinations are refused up front, naming the problem.
    for (body, want) in [
        (serde_json::json!({ "platform": "youtube" }), "invalid_key"),
        (
            serde_json::json!({ "url": "http://127.0.0.1/live/x" }),
            "invalid_url",
        ),
        (
            serde_json::json!({ "url": "rtmp://user:pw@127.0.0.1/live/x" }),
            "invalid_url",
        ),
        (
            serde_json::json!({ "platform": "myspace", "key": "k" }),
            "invalid_platform",
        ),
    ] {
        let (status, v) = gw
            .api(reqwest::Method::POST, &path, Some(body.clone()))
            .await;
        assert_eq!((status, code(&v).as_str()), (400, want), "{body}: {v}");
    }
    let secret = "restreamed-secret-key";
    let (status, v) = gw
        .api(
            reqwest::Method::POST,
            &path,
            Some(serde_json::json!({
                "url": format!("rtmp://127.0.0.1:{port}/live"),
                "key": secret,
                "name": "local nginx",
            })),
        )
        .await;
    assert_eq!(status, 201, "{v}");
    assert!(!v.to_string().contains(secret), "key masked: {v}");
    assert_eq!(
        v["data"]["url"],
        format!("rtmp://127.0.0.1:{port}/live/****-key")
    );
    let egress = v["data"]["egressId"].as_str().expect("egressId").to_owned();
    wait_restream(&gw, &path, "active").await;

    // A real RTMP server has the stream: ffprobe reads it back from nginx.
    let from_nginx = format!("rtmp://127.0.0.1:{port}/live/{secret}");
    let probed = ffprobe_streams(&from_nginx);
    assert!(
        probed.contains("codec_name=h264|width=640|height=360"),
        "{probed}"
    );
    assert!(probed.contains("codec_name=aac"), "{probed}");

    // The destination goes away: camgate retries with the error in plain
    // words; it comes back: the restream resumes on its own.
    drop(nginx);
    let failing = wait_restream(&gw, &path, "retrying").await;
    assert!(
        failing["error"]
            .as_str()
            .is_some_and(|e| !e.contains(secret)),
        "{failing}"
    );
    let nginx = Nginx::start_on(&dir, 0, 2, port).expect("nginx restarts");
    let back = wait_restream(&gw, &path, "active").await;
    assert!(back["retries"].as_u64().unwrap_or(0) >= 1, "{back}");
    let probed = ffprobe_streams(&from_nginx);
    assert!(
        probed.contains("codec_name=h264"),
        "after the restart: {probed}"
    );
    assert!(!gw.log().contains(secret), "the key never reaches the log");

    let (status, _) = gw
        .api(reqwest::Method::DELETE, &format!("{path}/{egress}"), None)
        .await;
    assert_eq!(status, 204);
    let (_, v) = gw.get_json(&path).await;
    assert_eq!(v["data"], serde_json::json!([]), "{v}");
    let (status, v) = gw
        .api(reqwest::Method::DELETE, &format!("{path}/{egress}"), None)
        .await;
    assert_eq!((status, code(&v).as_str()), (404, "restream_not_found"));

    // The egress quota: what was sent is counted for the month; once it is
    // used up a new destination is refused with 429 quota_exceeded.
    let (_, stats) = gw.get_json("/api/v1/apps/live/stats").await;
    assert!(
        stats["data"]["egress"]["bytes"].as_u64().unwrap_or(0) > 100_000,
        "{stats}"
    );
    let (status, v) = gw
        .api(
            reqwest::Method::PATCH,
            "/api/v1/apps/live",
            Some(serde_json::json!({ "maxEgressGbMonth": 0.00001 })),
        )
        .await;
    assert_eq!(status, 200, "{v}");
    assert_eq!(v["data"]["maxEgressGbMonth"], 0.00001);
    let (status, v) = gw
        .api(
            reqwest::Method::POST,
            &path,
            Some(serde_json::json!({ "url": format!("rtmp://127.0.0.1:{port}/live/again") })),
        )
        .await;
    assert_eq!((status, code(&v).as_str()), (429, "quota_exceeded"), "{v}");
    drop(nginx);
    let _ = ffmpeg.kill();
    let _ = ffmpeg.wait();
    let _ = std::fs::remove_dir_all(&dir);
}

fn code(v: &serde_json::Value) -> String {
    v["error"]["code"].as_str().unwrap_or_default().to_owned()
}

#[tokio::test]
async fn a_stream_is_restreamed_over_rtmps_to_a_server_with_a_private_ca() {
    use camgate_hardware_tests::bench_rtmp::Nginx;
    if !peer_available("ffmpeg") || !peer_available("nginx") || !peer_available("openssl") {
        return;
    }
    let dir = std::env::temp_dir().join(format!("camgate-rtmps-{}", std::process::id()));
    std::fs::create_dir_all(&dir).expect("dir");
    let (ca, cert, key) = camgate_hardware_tests::test_pki(&dir);
    let server = Nginx::start_rtmps(&dir, 0, &cert, &key);
    assert!(
        server.is_some() || std::env::var("CI").as_deref() != Ok("true"),
        "nginx with its rtmp and stream modules is needed (scripts/test installs them)"
    );
    let Some((nginx, tls_port)) = server else {
        return;
    };
    let ca = ca.to_str().expect("utf-8").to_owned();
    let gw = Gateway::start(&["--restream-ca-file", &ca]);
    let (id, url, _) = create_ingress(&gw, "tls").await;
    let mut ffmpeg = push(&url, 60);
    wait_publishing(&gw, &id).await;
    let (_, streams) = gw.get_json("/api/v1/apps/live/streams").await;
    let stream = streams["data"][0]["streamId"]
        .as_str()
        .expect("stream")
        .replace('/', "%2F");
    let path = format!("/api/v1/apps/live/streams/{stream}/restream");
    let (status, v) = gw
        .api(
            reqwest::Method::POST,
            &path,
            Some(
                serde_json::json!({ "url": format!("rtmps://127.0.0.1:{tls_port}/live/over-tls") }),
            ),
        )
        .await;
    assert_eq!(status, 201, "{v}");
    assert!(
        v["data"]["url"]
            .as_str()
            .unwrap_or("")
            .starts_with("rtmps://"),
        "{v}"
    );
    wait_restream(&gw, &path, "active").await;
    // Behind the TLS terminator, nginx-rtmp has the stream.
    let probed = ffprobe_streams(&format!("rtmp://{}/live/over-tls", nginx.rtmp));
    assert!(
        probed.contains("codec_name=h264|width=640|height=360"),
        "{probed}"
    );
    drop(nginx);
    let _ = ffmpeg.kill();
    let _ = ffmpeg.wait();
    let _ = std::fs::remove_dir_all(&dir);
}
