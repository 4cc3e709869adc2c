//! Recording and VODs end to end: Debian's ffmpeg pushes RTMP and camsim
//! pushes JPEGs; camgate records them to fragmented MP4; ffprobe reads the
//! files, their HLS playlists and what is left after a `kill -9`.

use std::process::Command;
use std::time::{Duration, Instant};

use camgate_hardware_tests::{
    Gateway, ffmpeg_push as push, ffprobe_duration, ffprobe_spans, ffprobe_streams, peer_available,
    spawn_camsim,
};
use reqwest::Method;
use serde_json::{Value, json};

fn code(v: &Value) -> &str {
    v["error"]["code"].as_str().unwrap_or_default()
}

/// Starts recording a stream through the API; returns the answer (201).
async fn start_recording(gw: &Gateway, stream: &str) -> Value {
    let (status, v) = gw
        .api(
            Method::POST,
            &format!("/api/v1/apps/live/streams/{}/record/start", enc(stream)),
            None,
        )
        .await;
    assert_eq!(status, 201, "{v}");
    v
}

/// Waits until the app lists one active stream; returns its `streamId`.
async fn live_stream(gw: &Gateway) -> String {
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        let (_, v) = gw.get_json("/api/v1/apps/live/streams").await;
        if let Some(id) = v["data"][0]["streamId"].as_str() {
            return id.to_owned();
        }
        assert!(Instant::now() < deadline, "no live stream: {v}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

fn enc(id: &str) -> String {
    id.replace('/', "%2F")
}

#[tokio::test]
async fn an_rtmp_stream_is_recorded_to_an_mp4_ffprobe_reads() {
    if !peer_available("ffmpeg") || !peer_available("ffprobe") {
        return;
    }
    let gw = Gateway::start(&[]);
    let ingress = gw.create_ingress("rec").await;
    let mut ffmpeg = push(ingress["rtmp_url"].as_str().expect("url"), 30);
    let stream = live_stream(&gw).await;
    let v = start_recording(&gw, &stream).await;
    assert_eq!(v["data"]["status"], "recording");
    let vod_id = v["data"]["vodId"].as_i64().expect("vodId");
    assert!(
        v["data"]["egressId"]
            .as_str()
            .unwrap_or("")
            .starts_with("EG_"),
        "{v}"
    );
    // One recorder per stream; the row exists at once.
    let (status, v) = gw
        .api(
            Method::POST,
            "/api/v1/apps/live/recording/start",
            Some(json!({ "roomName": "rec" })),
        )
        .await;
    assert_eq!((status, code(&v)), (409, "already_recording"), "{v}");
    let (status, v) = gw
        .get_json(&format!("/api/v1/apps/live/vods/{vod_id}/download"))
        .await;
    assert_eq!((status, code(&v)), (409, "vod_not_ready"), "{v}");

    tokio::time::sleep(Duration::from_secs(5)).await;
    let (status, v) = gw
        .api(
            Method::POST,
            &format!("/api/v1/apps/live/recording/{vod_id}/stop"),
            None,
        )
        .await;
    assert_eq!(status, 200, "{v}");
    assert_eq!(v["data"]["status"], "uploading", "{v}");
    let vod = gw.wait_vod(vod_id, "ready").await;
    let _ = ffmpeg.kill();
    let _ = ffmpeg.wait();
    let secs = vod["durationS"].as_f64().unwrap_or(0.0);
    assert!((3.5..8.0).contains(&secs), "{vod}");
    assert_eq!(
        (vod["width"].as_i64(), vod["height"].as_i64()),
        (Some(640), Some(360)),
        "{vod}"
    );
    assert_eq!(vod["hasAudio"], true, "{vod}");

    // The file as a player or downloader gets it: H.264 + AAC, and the
    // duration the row claims within a frame or two.
    let url = vod["url"].as_str().expect("signed url");
    let probed = ffprobe_streams(url);
    assert!(
        probed.contains("codec_name=h264|width=640|height=360"),
        "{probed}"
    );
    assert!(probed.contains("codec_name=aac"), "{probed}");
    let d = ffprobe_duration(url);
    assert!((d - secs).abs() < 0.2, "ffprobe {d} s vs row {secs} s");
    // Its HLS playlist (byte ranges into the same file).
    let hls = vod["hlsUrl"].as_str().expect("hlsUrl");
    let probed = ffprobe_streams(hls);
    assert!(probed.contains("codec_name=h264"), "{probed}");
    assert!((ffprobe_duration(hls) - secs).abs() < 0.5);

    // Range requests and signatures.
    let r = gw
        .http
        .get(url)
        .header("range", "bytes=0-99")
        .send()
        .await
        .expect("range");
    assert_eq!(r.status(), 206);
    let size = vod["sizeBytes"].as_u64().expect("size");
    assert_eq!(
        r.headers()["content-range"].to_str().unwrap_or(""),
        format!("bytes 0-99/{size}")
    );
    assert_eq!(r.bytes().await.expect("body").len(), 100);
    let r = gw
        .http
        .get(url)
        .header("range", format!("bytes={size}-"))
        .send()
        .await
        .expect("416");
    assert_eq!(r.status(), 416);
    let public = vod["publicUrl"].as_str().expect("publicUrl");
    let r = gw.http.get(public).send().await.expect("unsigned");
    assert_eq!(r.status(), 401, "no token, no signature");
    // A tampered signature or a changed expiry is refused.
    let mut segs: Vec<String> = url.split('/').map(str::to_owned).collect();
    let n = segs.len();
    let sig = segs[n - 2].clone();
    let flipped = if sig.ends_with('0') { "1" } else { "0" };
    segs[n - 2] = format!("{}{flipped}", &sig[..sig.len() - 1]);
    let r = gw.http.get(segs.join("/")).send().await.expect("tampered");
    assert_eq!(r.status(), 401, "tampered signature");
    segs[n - 2] = sig;
    segs[n - 3] = "4102444800".into();
    let r = gw.http.get(segs.join("/")).send().await.expect("re-dated");
    assert_eq!(r.status(), 401, "changed expiry");
    let r = gw
        .http
        .get(public)
        .bearer_auth(camgate_hardware_tests::ADMIN_TOKEN)
        .send()
        .await
        .expect("bearer");
    assert_eq!(r.status(), 200);
    let snap = gw
        .http
        .get(vod["snapshotUrl"].as_str().expect("snapshotUrl"))
        .send()
        .await
        .expect("snapshot");
    assert_eq!(snap.headers()["content-type"], "image/jpeg");
    let (status, v) = gw
        .get_json(&format!("/api/v1/apps/live/vods/{vod_id}/download"))
        .await;
    assert_eq!(status, 200, "{v}");
    assert!(
        v["data"]["url"]
            .as_str()
            .unwrap_or("")
            .contains("download=1"),
        "{v}"
    );

    // Listing, filters, paging.
    for (q, total) in [
        ("status=ready", 1),
        ("status=failed", 0),
        ("room=rec", 1),
        ("room=other", 0),
        ("since=2000-01-01", 1),
        ("until=2000-01-01", 0),
        ("order=size_bytes&dir=asc", 1),
        ("all=1", 1),
    ] {
        let (status, v) = gw.get_json(&format!("/api/v1/apps/live/vods?{q}")).await;
        assert_eq!(status, 200, "{q}: {v}");
        assert_eq!(v["total"], total, "{q}: {v}");
    }
    for (q, want) in [
        ("limit=1001", "invalid_limit"),
        ("order=name", "invalid_order"),
        ("since=yesterday", "invalid_since"),
        ("status=done", "invalid_status"),
    ] {
        let (status, v) = gw.get_json(&format!("/api/v1/apps/live/vods?{q}")).await;
        assert_eq!((status, code(&v)), (400, want), "{q}: {v}");
    }
    let (_, sizes) = gw.get_json("/api/v1/apps/live/sizes").await;
    assert_eq!(sizes["data"]["vods"]["count"], 1, "{sizes}");

    // Delete: row, file and thumbnail.
    let files = || {
        std::fs::read_dir(gw.data_dir.join("recordings/live"))
            .map(|d| d.count())
            .unwrap_or(0)
    };
    assert_eq!(files(), 3, "mp4, index, thumbnail");
    let (status, _) = gw
        .api(
            Method::DELETE,
            &format!("/api/v1/apps/live/vods/{vod_id}"),
            None,
        )
        .await;
    assert_eq!(status, 200);
    assert_eq!(files(), 0);
    let (status, v) = gw
        .get_json(&format!("/api/v1/apps/live/vods/{vod_id}"))
        .await;
    assert_eq!((status, code(&v)), (404, "vod_not_found"));
}

#[tokio::test]
async fn a_camera_recording_killed_with_sigkill_is_playable_after_restart() {
    if !peer_available("ffprobe") {
        return;
    }
    let gw = Gateway::start(&[]);
    let minted = gw.mint("yard").await;
    let mut cam = spawn_camsim(&minted, "15", "60");
    let stream = live_stream(&gw).await;
    let (status, v) = gw
        .api(
            Method::POST,
            "/api/v1/apps/live/recording/start",
            Some(json!({ "streamId": stream })),
        )
        .await;
    assert_eq!(status, 201, "{v}");
    let vod_id = v["data"]["vodId"].as_i64().expect("vodId");
    // Let a few seconds reach the disk, then pull the plug.
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        let (_, v) = gw
            .get_json(&format!("/api/v1/apps/live/vods/{vod_id}"))
            .await;
        if v["data"]["durationS"].as_f64().unwrap_or(0.0) >= 3.0 {
            break;
        }
        assert!(Instant::now() < deadline, "recording never grew: {v}");
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    let dir = gw.kill_keeping_data();
    let _ = cam.kill();
    let _ = cam.wait();

    let gw = Gateway::start_in(dir, &[]);
    let vod = gw.wait_vod(vod_id, "ready").await;
    assert!(
        vod["error"].as_str().unwrap_or("").contains("recovered"),
        "{vod}"
    );
    let url = vod["url"].as_str().expect("signed url");
    let probed = ffprobe_streams(url);
    assert!(
        probed.contains("codec_name=h264|width=320|height=240"),
        "{probed}"
    );
    let d = ffprobe_duration(url);
    assert!(d >= 2.5, "ffprobe reads {d} s of the killed recording");
    // Stale live state is cleaned: no active stream after the restart.
    let (_, v) = gw.get_json("/api/v1/apps/live/streams").await;
    assert_eq!(v["total"], 0, "{v}");
}

#[tokio::test]
async fn always_record_snapshots_and_retention() {
    if !peer_available("ffprobe") {
        return;
    }
    let gw = Gateway::start(&[]);
    let (status, v) = gw
        .api(
            Method::PATCH,
            "/api/v1/apps/live",
            Some(json!({ "alwaysRecord": true, "snapshotSeconds": 1 })),
        )
        .await;
    assert_eq!(status, 200, "{v}");
    assert_eq!(v["data"]["alwaysRecord"], true);
    let minted = gw.mint("gate").await;
    let mut cam = spawn_camsim(&minted, "15", "60");
    let stream = live_stream(&gw).await;

    // The camera is recorded without anyone asking.
    let deadline = Instant::now() + Duration::from_secs(20);
    let vod_id = loop {
        let (_, v) = gw.get_json("/api/v1/apps/live/vods?status=recording").await;
        if let Some(id) = v["data"][0]["id"].as_i64() {
            assert_eq!(v["data"][0]["streamId"], stream.as_str());
            break id;
        }
        assert!(Instant::now() < deadline, "never recorded: {v}");
        tokio::time::sleep(Duration::from_millis(200)).await;
    };
    // snapshotSeconds: snapshots of the stream pile up while it records.
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        let (_, v) = gw.get_json("/api/v1/apps/live/snapshots?room=gate").await;
        if v["total"].as_i64().unwrap_or(0) >= 3 {
            assert_eq!(v["data"][0]["streamId"], stream.as_str(), "{v}");
            break;
        }
        assert!(Instant::now() < deadline, "no periodic snapshots: {v}");
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
    // The camera leaves: the recording ends on its own and is playable.
    let _ = cam.kill();
    let _ = cam.wait();
    let vod = gw.wait_vod(vod_id, "ready").await;
    let probed = ffprobe_streams(vod["url"].as_str().expect("url"));
    assert!(probed.contains("codec_name=h264"), "{probed}");

    // Retention: a cap below one file's size deletes it (row and files).
    let (status, v) = gw
        .api(
            Method::PATCH,
            "/api/v1/apps/live",
            Some(json!({ "retentionMaxGb": 0.000001 })),
        )
        .await;
    assert_eq!(status, 200, "{v}");
    let deadline = Instant::now() + Duration::from_secs(25);
    loop {
        let (_, v) = gw.get_json("/api/v1/apps/live/vods").await;
        if v["total"] == 0 {
            break;
        }
        assert!(Instant::now() < deadline, "retention never applied: {v}");
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
    let left = std::fs::read_dir(gw.data_dir.join("recordings/live"))
        .map(|d| d.count())
        .unwrap_or(0);
    assert_eq!(left, 0, "files deleted with the rows");
}

/// Records the camera for about `secs` seconds; returns the ready VOD.
async fn record_for(gw: &Gateway, stream: &str, secs: u64) -> Value {
    let v = start_recording(gw, stream).await;
    let id = v["data"]["vodId"].as_i64().expect("vodId");
    tokio::time::sleep(Duration::from_secs(secs)).await;
    let (status, v) = gw
        .api(
            Method::POST,
            &format!("/api/v1/apps/live/streams/{}/record/stop", enc(stream)),
            None,
        )
        .await;
    assert_eq!(status, 200, "{v}");
    gw.wait_vod(id, "ready").await
}

#[tokio::test]
async fn a_day_of_recordings_is_indexed_and_plays_in_dash_js_and_hls_js() {
    use camgate_hardware_tests::{ADMIN_TOKEN, browser_scripts, run_node};
    let Some(dir) = browser_scripts() else {
        return;
    };
    let gw = Gateway::start(&[]);
    let minted = gw.mint("porch").await;
    let mut cam = spawn_camsim(&minted, "15", "60");
    let stream = live_stream(&gw).await;
    let first = record_for(&gw, &stream, 4).await;
    let _second = record_for(&gw, &stream, 3).await;
    let _ = cam.kill();
    let _ = cam.wait();

    // Seed 004's index: streams, then days, then the day's manifest.
    let (status, v) = gw.get_json("/api/playback").await;
    assert_eq!(status, 200);
    assert_eq!(v, json!(["live-porch"]));
    let (status, v) = gw.get_json("/api/playback/live-porch").await;
    assert_eq!(status, 200);
    let now = time_now_ymd();
    assert_eq!(
        (
            v[0]["year"].as_i64(),
            v[0]["month"].as_i64(),
            v[0]["day"].as_i64()
        ),
        (Some(now.0), Some(now.1), Some(now.2)),
        "{v}"
    );
    let mpd_path = v[0]["mpd_path"].as_str().expect("mpd_path").to_owned();
    assert_eq!(
        mpd_path,
        format!(
            "live-porch/{:04}/{:02}/{:02}/manifest.mpd",
            now.0, now.1, now.2
        )
    );
    for path in [mpd_path.clone(), mpd_path.replace('/', "%2F")] {
        let r = gw
            .http
            .get(format!("{}/api/record/object/{path}", gw.base))
            .bearer_auth(ADMIN_TOKEN)
            .send()
            .await
            .expect("mpd");
        assert_eq!(r.status(), 200, "{path}");
        assert_eq!(r.headers()["content-type"], "application/dash+xml");
        let text = r.text().await.expect("text");
        assert_eq!(text.matches("<Period ").count(), 2, "{text}");
    }
    // A recording as an object (video/mp4, ranges), and no token → 401.
    let object = format!(
        "{}/api/record/object/{}",
        gw.base,
        mpd_path.replace("manifest.mpd", &format!("{}.mp4", first["id"]))
    );
    let r = gw
        .http
        .get(&object)
        .bearer_auth(ADMIN_TOKEN)
        .header("range", "bytes=0-7")
        .send()
        .await
        .expect("object");
    assert_eq!(r.status(), 206);
    assert_eq!(r.headers()["content-type"], "video/mp4");
    let r = gw.http.get(&object).send().await.expect("object");
    assert_eq!(r.status(), 401);

    // dash.js plays the day (both recordings as periods) in Chromium.
    let v = run_node(
        &dir.join("dash.mjs"),
        vec![
            format!("{}/health", gw.base),
            format!("{}/api/record/object/{mpd_path}", gw.base),
            ADMIN_TOKEN.into(),
            "--seconds".into(),
            "3".into(),
        ],
    )
    .await;
    eprintln!("dash.js: {v}");
    assert_eq!(v["errors"], json!([]), "{v}");
    assert_eq!(v["periods"], 2, "{v}");
    assert_eq!(
        (v["width"].as_u64(), v["height"].as_u64()),
        (Some(320), Some(240)),
        "{v}"
    );
    assert!(v["frames"].as_u64().unwrap_or(0) >= 10, "{v}");
    assert!(
        v["currentTimeAdvanced"].as_f64().unwrap_or(0.0) >= 1.5,
        "{v}"
    );

    // hls.js plays the first VOD's HLS (byte ranges into its MP4).
    let v = camgate_hardware_tests::hls_in_chromium(
        &dir,
        &gw,
        first["hlsUrl"].as_str().expect("hlsUrl"),
        3,
        false,
    )
    .await;
    eprintln!("hls.js VOD: {v}");
    assert_eq!(v["errors"], json!([]), "{v}");
    assert!(v["frames"].as_u64().unwrap_or(0) >= 10, "{v}");
    assert!(
        v["currentTimeAdvanced"].as_f64().unwrap_or(0.0) >= 1.5,
        "{v}"
    );
}

fn time_now_ymd() -> (i64, i64, i64) {
    let out = Command::new("date")
        .args(["-u", "+%Y %m %d"])
        .output()
        .expect("date");
    let text = String::from_utf8_lossy(&out.stdout);
    let mut it = text
        .split_whitespace()
        .map(|s| s.parse::<i64>().unwrap_or(0));
    (
        it.next().unwrap_or(0),
        it.next().unwrap_or(0),
        it.next().unwrap_or(0),
    )
}

/// Unmounts a test's tmpfs when the test ends.
struct Mounted(std::path::PathBuf);

impl Drop for Mounted {
    fn drop(&mut self) {
        let _ = Command::new("umount").arg("-l").arg(&self.0).status();
        let _ = std::fs::remove_dir_all(self.0.parent().unwrap_or(&self.0));
    }
}

#[tokio::test]
async fn a_full_disk_fails_the_recording_cleanly_and_live_playback_goes_on() {
    if !peer_available("ffmpeg") || !peer_available("ffprobe") {
        return;
    }
    // The recordings directory on a 512 KiB tmpfs: full after ~2 s of
    // 2 Mbit/s.
    let data = std::env::temp_dir().join(format!("camgate-diskfull-{}", std::process::id()));
    let rec = data.join("recordings");
    std::fs::create_dir_all(&rec).expect("dir");
    let mounted = Command::new("mount")
        .args(["-t", "tmpfs", "-o", "size=512k", "tmpfs"])
        .arg(&rec)
        .status()
        .is_ok_and(|s| s.success());
    if !mounted {
        assert!(
            std::env::var("CI").as_deref() != Ok("true"),
            "mounting a tmpfs needs root (CI runs the suite as root)"
        );
        return;
    }
    let _unmount = Mounted(rec.clone());
    let gw = Gateway::start_in(data.clone(), &[]);
    let ingress = gw.create_ingress("full").await;
    let mut ffmpeg = push(ingress["rtmp_url"].as_str().expect("url"), 60);
    let stream = live_stream(&gw).await;
    let v = start_recording(&gw, &stream).await;
    let id = v["data"]["vodId"].as_i64().expect("vodId");
    let vod = gw.wait_vod(id, "failed").await;
    assert!(
        vod["error"].as_str().unwrap_or("").contains("disk full"),
        "{vod}"
    );
    // Live playback never noticed: HLS still plays, the ingress publishes.
    let probed = ffprobe_streams(&format!("{}/hls/live/live-full/index.m3u8", gw.base));
    assert!(probed.contains("codec_name=h264"), "{probed}");
    let (_, v) = gw.get_json("/api/v1/apps/live/streams").await;
    assert_eq!(v["data"][0]["status"], "active", "{v}");
    assert_eq!(
        gw.log().matches("recording failed").count(),
        1,
        "logged once"
    );
    let _ = ffmpeg.kill();
    let _ = ffmpeg.wait();
}

#[tokio::test]
async fn an_ingress_created_with_record_true_is_recorded_whenever_it_is_live() {
    if !peer_available("ffmpeg") {
        return;
    }
    let gw = Gateway::start(&[]);
    let (status, v) = gw
        .api(
            Method::POST,
            "/api/v1/apps/live/ingress",
            Some(json!({ "inputType": "rtmp", "room": "auto", "record": true })),
        )
        .await;
    assert_eq!(status, 201, "{v}");
    // Another ingress without it stays unrecorded.
    let other = gw.create_ingress("plain").await;
    let mut a = push(v["data"]["rtmp_url"].as_str().expect("url"), 30);
    let mut b = push(other["rtmp_url"].as_str().expect("url"), 30);
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        let (_, v) = gw.get_json("/api/v1/apps/live/vods?status=recording").await;
        if v["total"] == 1 {
            assert_eq!(v["data"][0]["room"], "live-auto", "{v}");
            break;
        }
        assert!(Instant::now() < deadline, "never recorded: {v}");
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    tokio::time::sleep(Duration::from_secs(2)).await;
    let (_, v) = gw.get_json("/api/v1/apps/live/vods").await;
    assert_eq!(v["total"], 1, "only the ingress asked for it: {v}");
    for c in [&mut a, &mut b] {
        let _ = c.kill();
        let _ = c.wait();
    }
}

/// Asserts a recording's audio and video cover the same time, within
/// `slack` seconds at either end (the tracks start and stop together).
fn assert_tracks_line_up(url: &str, slack: f64) {
    let spans = ffprobe_spans(url);
    let (Some(v), Some(a)) = (spans.get("video"), spans.get("audio")) else {
        panic!("video and audio expected: {spans:?}");
    };
    assert!(
        (v.0 - a.0).abs() < slack && (v.1 - a.1).abs() < slack,
        "video {v:?} vs audio {a:?}"
    );
}

#[tokio::test]
async fn a_whip_publishers_opus_is_recorded_next_to_its_video() {
    use camgate_hardware_tests::{aiortc_peer, aiortc_python, aiortc_result};
    if aiortc_python().is_none() || !peer_available("ffprobe") {
        return;
    }
    let gw = Gateway::start(&[]);
    let token = gw.token_for("py", true, false).await;
    let publisher = aiortc_peer("publish", &format!("{}/whip/live-py", gw.base), &token, 10);
    let stream = live_stream(&gw).await;
    // Both tracks flowing before the recording starts.
    tokio::time::sleep(Duration::from_secs(2)).await;
    let v = start_recording(&gw, &stream).await;
    let vod_id = v["data"]["vodId"].as_i64().expect("vodId");
    tokio::time::sleep(Duration::from_secs(5)).await;
    let vod = gw.stop_recording(vod_id).await;
    assert_eq!(vod["hasAudio"], true, "{vod}");
    let url = vod["url"].as_str().expect("signed url");
    let probed = ffprobe_streams(url);
    assert!(
        probed.contains("codec_name=h264|width=640|height=480"),
        "{probed}"
    );
    assert!(
        probed.contains("codec_name=opus|sample_rate=48000"),
        "{probed}"
    );
    let secs = vod["durationS"].as_f64().unwrap_or(0.0);
    assert!((3.0..8.0).contains(&secs), "{vod}");
    assert_tracks_line_up(url, 0.3);
    // Chromium plays its HLS with hls.js: picture and sound (Opus in fMP4).
    if let Some(dir) = camgate_hardware_tests::browser_scripts() {
        let v = camgate_hardware_tests::hls_in_chromium(
            &dir,
            &gw,
            vod["hlsUrl"].as_str().expect("hlsUrl"),
            3,
            false,
        )
        .await;
        eprintln!("whip vod over hls.js: {v}");
        assert_eq!(v["errors"], json!([]), "{v}");
        assert!(v["frames"].as_u64().unwrap_or(0) >= 20, "{v}");
        assert!(v["audioDecodedBytes"].as_u64().unwrap_or(0) > 0, "{v}");
    }
    let p = aiortc_result(publisher).await;
    assert_eq!(p["state"], "connected", "{p}");
}
