//! Harness for end-to-end tests and the benchmark: start the real `camgate`
//! binary on an ephemeral loopback port with a temp data dir, talk to it as
//! users' software does, and find real peers (Chromium, node) or fail under
//! `CI=true` when one is missing.
#![deny(missing_docs)]

pub mod bench_rtmp;
pub mod bench_rtsp;
pub mod bench_sfu;
pub mod bench_soak;
pub mod bench_transcode;

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use bytes::Bytes;
use camgate_protocols::api::MintedWsIngest;
use camgate_protocols::multipart;
use futures_util::StreamExt;

/// Admin token the harness gives every gateway it starts.
pub const ADMIN_TOKEN: &str = "sk_test_admin_token_0123456789";

/// The folder holding the workspace's built binaries (`target/<profile>`).
pub fn bin_dir() -> PathBuf {
    if let Ok(d) = std::env::var("CAMGATE_BIN_DIR") {
        return PathBuf::from(d);
    }
    // Test executables live in target/<profile>/deps.
    let exe = std::env::current_exe().expect("current exe");
    let dir = exe.parent().expect("exe dir");
    if dir.ends_with("deps") {
        dir.parent().expect("profile dir").to_path_buf()
    } else {
        dir.to_path_buf()
    }
}

/// Path of a workspace binary, failing clearly when it was not built.
pub fn bin(name: &str) -> PathBuf {
    let p = bin_dir().join(name);
    assert!(
        p.exists(),
        "{} not built: run `cargo build --workspace` first (scripts/test does)",
        p.display()
    );
    p
}

/// Whether a real peer program is available. Under `CI=true` a missing peer
/// is a failure, never a silent skip.
pub fn peer_available(program: &str) -> bool {
    let found = which(program).is_some();
    if !found {
        missing_peer(&format!("peer {program}"), "scripts/test installs it");
    }
    found
}

/// A test's peer is missing: under `CI=true` that fails the test (with
/// `how` saying where it comes from); elsewhere the test is skipped with a
/// line saying so.
pub fn missing_peer(what: &str, how: &str) {
    assert!(
        std::env::var("CI").as_deref() != Ok("true"),
        "{what} is missing and CI=true: {how}"
    );
    eprintln!("SKIP: {what} is missing ({how})");
}

/// Looks a program up on PATH.
pub fn which(program: &str) -> Option<PathBuf> {
    if program.contains('/') {
        return Path::new(program).exists().then(|| PathBuf::from(program));
    }
    std::env::var_os("PATH")?
        .to_str()?
        .split(':')
        .map(|d| Path::new(d).join(program))
        .find(|p| p.exists())
}

/// A running camgate.
pub struct Gateway {
    child: Option<Child>,
    /// `http://127.0.0.1:PORT`.
    pub base: String,
    /// `rtmp://127.0.0.1:PORT` (the RTMP listener).
    pub rtmp: String,
    /// `rtmps://127.0.0.1:PORT` when started with `--rtmps`.
    pub rtmps: Option<String>,
    /// Its temp data dir.
    pub data_dir: PathBuf,
    /// HTTP client.
    pub http: reqwest::Client,
    stderr_log: PathBuf,
}

impl Gateway {
    /// Starts camgate with extra flags (e.g. `--ws-idle-timeout 1`).
    pub fn start(extra: &[&str]) -> Gateway {
        Gateway::start_with(bin("camgate"), extra, &[])
    }

    /// Starts camgate on an existing data dir (a restart after
    /// [`Gateway::kill_keeping_data`]).
    pub fn start_in(data_dir: PathBuf, extra: &[&str]) -> Gateway {
        Gateway::start_at(bin("camgate"), Some(data_dir), extra, &[])
    }

    /// Starts a given camgate binary with extra flags and taskset-style prefix.
    pub fn start_with(binary: PathBuf, extra: &[&str], prefix: &[&str]) -> Gateway {
        Gateway::start_at(binary, None, extra, prefix)
    }

    fn start_at(
        binary: PathBuf,
        data_dir: Option<PathBuf>,
        extra: &[&str],
        prefix: &[&str],
    ) -> Gateway {
        let data_dir = data_dir.unwrap_or_else(|| {
            std::env::temp_dir().join(format!(
                "camgate-test-{}-{}",
                std::process::id(),
                rand_suffix()
            ))
        });
        std::fs::create_dir_all(&data_dir).expect("temp dir");
        let stderr_log = data_dir.join("camgate.log");
        let log = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(&stderr_log)
            .expect("log file");
        let mut cmd = if let Some((first, rest)) = prefix.split_first() {
            let mut c = Command::new(first);
            c.args(rest).arg(&binary);
            c
        } else {
            Command::new(&binary)
        };
        cmd.arg("serve").arg("--data-dir").arg(&data_dir);
        // Loopback defaults, unless the test gives its own.
        for (flag, value) in [
            ("--http", "127.0.0.1:0"),
            ("--webrtc-udp", "127.0.0.1:0"),
            ("--webrtc-ip", "127.0.0.1"),
            ("--rtmp", "127.0.0.1:0"),
        ] {
            if !extra.contains(&flag) {
                cmd.args([flag, value]);
            }
        }
        cmd.args(extra)
            .env("CAMGATE_ADMIN_TOKEN", ADMIN_TOKEN)
            .env(
                "RUST_LOG",
                std::env::var("CAMGATE_TEST_LOG").unwrap_or_else(|_| "info".into()),
            )
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(log);
        let mut child = cmd.spawn().expect("spawn camgate");
        let stdout = child.stdout.take().expect("stdout");
        let mut lines = BufReader::new(stdout).lines();
        let mut rtmp = String::new();
        let mut rtmps = None;
        let base = loop {
            let line = lines
                .next()
                .expect("camgate exited before listening")
                .expect("read stdout");
            if let Some(rest) = line.strip_prefix("camgate rtmp on ") {
                rtmp = rest.trim().to_owned();
            }
            if let Some(rest) = line.strip_prefix("camgate rtmps on ") {
                rtmps = Some(rest.trim().to_owned());
            }
            if let Some(rest) = line.strip_prefix("camgate listening on ") {
                break rest.split_whitespace().next().expect("address").to_owned();
            }
        };
        // Keep draining stdout so the child never blocks on it.
        std::thread::spawn(move || for _ in lines {});
        Gateway {
            child: Some(child),
            base,
            rtmp,
            rtmps,
            data_dir,
            http: reqwest::Client::new(),
            stderr_log,
        }
    }

    /// The server's log so far.
    pub fn log(&self) -> String {
        std::fs::read_to_string(&self.stderr_log).unwrap_or_default()
    }

    /// `ws://127.0.0.1:PORT`.
    pub fn ws_base(&self) -> String {
        self.base.replacen("http://", "ws://", 1)
    }

    /// Mints a camera key for `room` in app `live`.
    pub async fn mint(&self, room: &str) -> MintedWsIngest {
        camgate_firmware_sim::mint_key(&self.http, &self.base, ADMIN_TOKEN, "live", room)
            .await
            .expect("mint camera key")
    }

    /// GET with the admin token, returning status and JSON.
    pub async fn get_json(&self, path: &str) -> (u16, serde_json::Value) {
        self.get_json_as(path, Some(ADMIN_TOKEN)).await
    }

    /// Any method on an `/api/v1` path with the admin token and an
    /// optional JSON body; returns status and JSON (Null when none).
    pub async fn api(
        &self,
        method: reqwest::Method,
        path: &str,
        body: Option<serde_json::Value>,
    ) -> (u16, serde_json::Value) {
        self.api_as(Some(ADMIN_TOKEN), method, path, body).await
    }

    /// Like [`Gateway::api`] with another bearer token (or none).
    pub async fn api_as(
        &self,
        token: Option<&str>,
        method: reqwest::Method,
        path: &str,
        body: Option<serde_json::Value>,
    ) -> (u16, serde_json::Value) {
        let mut req = self.http.request(method, format!("{}{path}", self.base));
        if let Some(t) = token {
            req = req.bearer_auth(t);
        }
        if let Some(b) = body {
            req = req.json(&b);
        }
        let r = req.send().await.expect("request");
        let status = r.status().as_u16();
        (status, r.json().await.unwrap_or(serde_json::Value::Null))
    }

    /// GET without credentials (public routes), returning status and JSON.
    pub async fn get_public_json(&self, path: &str) -> (u16, serde_json::Value) {
        self.get_json_as(path, None).await
    }

    async fn get_json_as(&self, path: &str, token: Option<&str>) -> (u16, serde_json::Value) {
        let mut req = self.http.get(format!("{}{path}", self.base));
        if let Some(t) = token {
            req = req.bearer_auth(t);
        }
        let r = req.send().await.expect("request");
        let status = r.status().as_u16();
        (status, r.json().await.unwrap_or(serde_json::Value::Null))
    }

    /// Revokes camera key `id` of app `live`; returns the HTTP status.
    pub async fn revoke(&self, id: &str) -> u16 {
        self.http
            .delete(format!("{}/api/v1/apps/live/ws-ingest/{id}", self.base))
            .bearer_auth(ADMIN_TOKEN)
            .send()
            .await
            .expect("revoke request")
            .status()
            .as_u16()
    }

    /// The process id.
    pub fn pid(&self) -> u32 {
        self.child.as_ref().map_or(0, Child::id)
    }

    /// SIGKILLs camgate (no chance to clean up) and hands back its data
    /// dir, which is then not removed.
    pub fn kill_keeping_data(mut self) -> PathBuf {
        if let Some(mut c) = self.child.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
        std::mem::take(&mut self.data_dir)
    }

    /// Sends SIGTERM and waits for the exit status.
    pub fn terminate(&mut self) -> Option<std::process::ExitStatus> {
        let mut child = self.child.take()?;
        let _ = Command::new("kill")
            .arg("-TERM")
            .arg(child.id().to_string())
            .status();
        for _ in 0..100 {
            if let Ok(Some(s)) = child.try_wait() {
                return Some(s);
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        let _ = child.kill();
        child.wait().ok()
    }
}

impl Drop for Gateway {
    fn drop(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
        if std::thread::panicking() {
            eprintln!("--- camgate log ---\n{}", self.log());
        }
        if !self.data_dir.as_os_str().is_empty() {
            let _ = std::fs::remove_dir_all(&self.data_dir);
        }
    }
}

fn rand_suffix() -> u64 {
    use std::sync::atomic::{AtomicU64, Ordering};
    static N: AtomicU64 = AtomicU64::new(0);
    let t = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.subsec_nanos() as u64);
    t ^ (N.fetch_add(1, Ordering::Relaxed) << 32)
}

/// An MJPEG viewer reading `multipart/x-mixed-replace` as a player does.
pub struct MjpegViewer {
    body: std::pin::Pin<Box<dyn futures_util::Stream<Item = reqwest::Result<Bytes>> + Send>>,
    reader: multipart::Reader,
    /// The response's Content-Type.
    pub content_type: String,
}

impl MjpegViewer {
    /// Opens an MJPEG URL; `Err(status)` when the server refuses it.
    pub async fn open(http: &reqwest::Client, url: &str) -> Result<MjpegViewer, u16> {
        let r = http.get(url).send().await.map_err(|_| 0u16)?;
        if !r.status().is_success() {
            return Err(r.status().as_u16());
        }
        let content_type = r
            .headers()
            .get("content-type")
            .and_then(|v| v.to_str().ok())
            .unwrap_or_default()
            .to_owned();
        let boundary = content_type
            .split("boundary=")
            .nth(1)
            .unwrap_or(multipart::BOUNDARY)
            .to_owned();
        Ok(MjpegViewer {
            body: Box::pin(r.bytes_stream()),
            reader: multipart::Reader::new(&boundary),
            content_type,
        })
    }

    /// The next whole part, or `None` when the stream ends.
    pub async fn next_frame(&mut self) -> Option<Bytes> {
        loop {
            if let Some(p) = self.reader.pull().expect("valid multipart") {
                return Some(p);
            }
            let chunk = self.body.next().await?.ok()?;
            self.reader.push(&chunk);
        }
    }

    /// The next part within `timeout`.
    pub async fn next_frame_within(&mut self, timeout: Duration) -> Option<Bytes> {
        tokio::time::timeout(timeout, self.next_frame())
            .await
            .ok()
            .flatten()
    }
}

/// Spawns the real `camsim` for a minted key, QVGA, no reconnect, with
/// `--fps` and `--duration` as given; output discarded.
pub fn spawn_camsim(minted: &MintedWsIngest, fps: &str, duration: &str) -> Child {
    Command::new(bin("camsim"))
        .args(["--url", &minted.ws_url, "--key", &minted.stream_key])
        .args([
            "--fps",
            fps,
            "--duration",
            duration,
            "--size",
            "QVGA",
            "--no-reconnect",
        ])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("spawn camsim")
}

/// Asserts `frame` is one whole JPEG of `width`×`height`.
pub fn assert_jpeg(frame: &[u8], width: u16, height: u16) {
    let info =
        camgate_protocols::jpeg::check(frame, camgate_protocols::jpeg::TrailingPadding::Reject)
            .expect("a whole JPEG");
    assert_eq!(info.dimensions, Some((width, height)));
}

/// The capture-stamp sequence number of a frame, panicking on a broken one.
pub fn stamp_seq(frame: &[u8]) -> Option<u64> {
    camgate_protocols::jpeg::check(frame, camgate_protocols::jpeg::TrailingPadding::Reject)
        .expect("whole JPEG")
        .stamp
        .map(|s| s.seq)
}

impl Gateway {
    /// Opens an MJPEG URL as soon as its camera is live (up to 10 s).
    pub async fn wait_live(&self, mjpeg_url: &str) -> MjpegViewer {
        for _ in 0..100 {
            if let Ok(v) = MjpegViewer::open(&self.http, mjpeg_url).await {
                return v;
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        panic!("camera never went live at {mjpeg_url}");
    }
}

impl Gateway {
    /// Mints a join token in app `live` with the given body; returns the
    /// HTTP status and the `data` object.
    pub async fn join_token(&self, body: serde_json::Value) -> (u16, serde_json::Value) {
        let r = self
            .http
            .post(format!("{}/api/v1/apps/live/tokens", self.base))
            .bearer_auth(ADMIN_TOKEN)
            .json(&body)
            .send()
            .await
            .expect("token request");
        let status = r.status().as_u16();
        let v: serde_json::Value = r.json().await.unwrap_or_default();
        (status, v["data"].clone())
    }

    /// Creates an RTMP ingress for `room` in app `live`; returns the `data`
    /// object (with the stream key, shown once).
    pub async fn create_ingress(&self, room: &str) -> serde_json::Value {
        let r = self
            .http
            .post(format!("{}/api/v1/apps/live/ingress", self.base))
            .bearer_auth(ADMIN_TOKEN)
            .json(&serde_json::json!({ "inputType": "rtmp", "room": room }))
            .send()
            .await
            .expect("create ingress");
        assert_eq!(r.status(), 201);
        let v: serde_json::Value = r.json().await.expect("json");
        v["data"].clone()
    }

    /// A join token string for `room` (app `live`) with the given grants.
    pub async fn token_for(&self, room: &str, publish: bool, subscribe: bool) -> String {
        let (status, data) = self
            .join_token(serde_json::json!({
                "room": room, "canPublish": publish, "canSubscribe": subscribe, "ttl": "10m"
            }))
            .await;
        assert_eq!(status, 201, "{data}");
        data["token"].as_str().expect("token").to_owned()
    }

    /// POSTs an SDP offer to a WHIP/WHEP path; returns status, headers and body.
    pub async fn post_sdp(
        &self,
        path: &str,
        token: Option<&str>,
        content_type: &str,
        sdp: &str,
    ) -> (u16, reqwest::header::HeaderMap, String) {
        let mut req = self
            .http
            .post(format!("{}{path}", self.base))
            .header("content-type", content_type)
            .body(sdp.to_owned());
        if let Some(t) = token {
            req = req.bearer_auth(t);
        }
        let r = req.send().await.expect("sdp request");
        let status = r.status().as_u16();
        let headers = r.headers().clone();
        (status, headers, r.text().await.unwrap_or_default())
    }
}

/// The folder of the browser scripts, or `None` (a failure under `CI=true`)
/// when Chromium, node or playwright-core is missing.
pub fn browser_scripts() -> Option<PathBuf> {
    if !peer_available("chromium") || !peer_available("node") {
        return None;
    }
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("browser");
    if !dir.join("node_modules/playwright-core").exists() {
        missing_peer(
            "playwright-core in hardware-tests/browser",
            "scripts/test runs npm ci",
        );
        return None;
    }
    Some(dir)
}

/// Runs a node script of the browser folder and parses its one JSON line.
pub async fn run_node(script: &Path, args: Vec<String>) -> serde_json::Value {
    let script = script.to_owned();
    let out = tokio::task::spawn_blocking(move || {
        Command::new("node")
            .arg(&script)
            .args(&args)
            .output()
            .expect("run node")
    })
    .await
    .expect("join");
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "browser script failed: {stdout}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    serde_json::from_str(stdout.trim()).expect("json result")
}

/// The Python of the aiortc virtualenv that `scripts/test` creates, or `None`
/// (a failure under `CI=true`) when it is missing.
pub fn aiortc_python() -> Option<PathBuf> {
    let py = Path::new(env!("CARGO_MANIFEST_DIR")).join("python/.venv/bin/python");
    let ok = py.exists()
        && Command::new(&py)
            .args(["-c", "import aiortc"])
            .status()
            .is_ok_and(|s| s.success());
    if !ok {
        missing_peer("aiortc", "scripts/test creates hardware-tests/python/.venv");
        return None;
    }
    Some(py)
}

/// Chromium plays `/whep/{stream}` for `seconds` with `browser/webrtc.mjs`;
/// returns its JSON report (codecs, frames, size, audio packets).
pub async fn whep_in_chromium(
    dir: &Path,
    gw: &Gateway,
    stream: &str,
    seconds: u32,
) -> serde_json::Value {
    run_node(
        &dir.join("webrtc.mjs"),
        vec![
            format!("{}/health", gw.base),
            "--whep".into(),
            format!("{}/whep/{stream}", gw.base),
            "-".into(),
            "--seconds".into(),
            seconds.to_string(),
        ],
    )
    .await
}

/// Chromium plays an HLS playlist with hls.js (`browser/hls.mjs`) for
/// `seconds`, in low-latency mode unless `low_latency` is false; returns
/// its JSON report (frames, size, latency, audio bytes decoded, errors).
pub async fn hls_in_chromium(
    dir: &Path,
    gw: &Gateway,
    playlist: &str,
    seconds: u32,
    low_latency: bool,
) -> serde_json::Value {
    let mut args = vec![
        format!("{}/health", gw.base),
        playlist.to_owned(),
        "--seconds".into(),
        seconds.to_string(),
    ];
    if !low_latency {
        args.push("--no-low-latency".into());
    }
    run_node(&dir.join("hls.mjs"), args).await
}

/// Runs the aiortc peer (`publish` or `play`) and parses its JSON line.
pub fn aiortc_peer(mode: &str, url: &str, token: &str, seconds: u32) -> std::process::Child {
    let py = aiortc_python().expect("aiortc available");
    Command::new(py)
        .arg(Path::new(env!("CARGO_MANIFEST_DIR")).join("python/aiortc_peer.py"))
        .args([mode, url, token, &seconds.to_string()])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn aiortc peer")
}

/// Waits for an aiortc peer and parses its one JSON line.
pub async fn aiortc_result(child: std::process::Child) -> serde_json::Value {
    let out = tokio::task::spawn_blocking(move || child.wait_with_output())
        .await
        .expect("join")
        .expect("aiortc output");
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "aiortc peer failed: {stdout}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    serde_json::from_str(stdout.trim()).expect("json result")
}

/// utime + stime of a process, in clock ticks.
pub fn proc_cpu_ticks(pid: u32) -> Option<u64> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    let after = stat.rsplit_once(')')?.1;
    let f: Vec<&str> = after.split_whitespace().collect();
    // Fields 14 and 15 (utime, stime) are at 11 and 12 after the comm field.
    Some(f.get(11)?.parse::<u64>().ok()? + f.get(12)?.parse::<u64>().ok()?)
}

/// Resident set size of a process, KiB.
pub fn proc_rss_kb(pid: u32) -> Option<u64> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    status
        .lines()
        .find(|l| l.starts_with("VmRSS:"))?
        .split_whitespace()
        .nth(1)?
        .parse()
        .ok()
}

/// File descriptors a process has open.
pub fn proc_open_fds(pid: u32) -> usize {
    std::fs::read_dir(format!("/proc/{pid}/fd")).map_or(0, |d| d.count())
}

/// Clock ticks per second (`getconf CLK_TCK`).
pub fn clock_ticks_per_sec() -> f64 {
    std::process::Command::new("getconf")
        .arg("CLK_TCK")
        .output()
        .ok()
        .and_then(|o| String::from_utf8(o.stdout).ok())
        .and_then(|s| s.trim().parse().ok())
        .unwrap_or(100.0)
}

/// ffmpeg (Debian's) pushing a 640×360 test pattern with a 440 Hz tone
/// over RTMP to `url` for `seconds`.
pub fn ffmpeg_push(url: &str, seconds: u32) -> Child {
    Command::new("ffmpeg")
        .args(["-hide_banner", "-loglevel", "error", "-nostdin", "-re"])
        .args(["-f", "lavfi", "-i", "testsrc2=size=640x360:rate=30"])
        .args(["-f", "lavfi", "-i", "sine=frequency=440:sample_rate=48000"])
        .args([
            "-c:v",
            "libx264",
            "-preset",
            "ultrafast",
            "-tune",
            "zerolatency",
        ])
        .args(["-g", "30", "-c:a", "aac", "-b:a", "64k"])
        .args(["-t", &seconds.to_string(), "-f", "flv", url])
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("spawn ffmpeg")
}

/// The duration ffprobe reads from a URL's container, in seconds (0 when
/// it reads none).
pub fn ffprobe_duration(url: &str) -> f64 {
    let out = Command::new("ffprobe")
        .args(["-v", "error", "-show_entries", "format=duration"])
        .args(["-of", "default=nw=1:nk=1", url])
        .output()
        .expect("run ffprobe");
    String::from_utf8_lossy(&out.stdout)
        .trim()
        .parse()
        .unwrap_or(0.0)
}

/// ffprobe's view of a URL: `codec_name,width,height,sample_rate` of each
/// stream, one compact line per stream (fields a stream lacks are left out).
pub fn ffprobe_streams(url: &str) -> String {
    let out = Command::new("ffprobe")
        .args([
            "-v",
            "error",
            "-show_entries",
            "stream=codec_name,width,height,sample_rate",
        ])
        .args(["-of", "compact=p=0", url])
        .output()
        .expect("run ffprobe");
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// The first and last presentation time (seconds) of each track of a URL
/// as ffprobe reads its packets, by `codec_type` (`video`, `audio`).
pub fn ffprobe_spans(url: &str) -> std::collections::HashMap<String, (f64, f64)> {
    let out = Command::new("ffprobe")
        .args(["-v", "error", "-show_entries", "packet=codec_type,pts_time"])
        .args(["-of", "csv=p=0", url])
        .output()
        .expect("run ffprobe");
    let mut spans = std::collections::HashMap::<String, (f64, f64)>::new();
    for line in String::from_utf8_lossy(&out.stdout).lines() {
        let mut fields = line.split(',');
        let (Some(kind), Some(Ok(t))) = (fields.next(), fields.next().map(str::parse::<f64>))
        else {
            continue;
        };
        let e = spans.entry(kind.to_owned()).or_insert((t, t));
        e.0 = e.0.min(t);
        e.1 = e.1.max(t);
    }
    spans
}

impl Gateway {
    /// camgate's samples from `/metrics`, by name without the `camgate_`
    /// prefix (labelled ones as `name{labels}`); empty when unreachable.
    pub async fn metrics(&self) -> std::collections::HashMap<String, f64> {
        let text = match self
            .http
            .get(format!("{}/metrics", self.base))
            .bearer_auth(ADMIN_TOKEN)
            .send()
            .await
        {
            Ok(r) => r.text().await.unwrap_or_default(),
            Err(_) => String::new(),
        };
        text.lines()
            .filter(|l| !l.starts_with('#'))
            .filter_map(|l| {
                let (k, v) = l.rsplit_once(' ')?;
                Some((k.strip_prefix("camgate_")?.to_owned(), v.parse().ok()?))
            })
            .collect()
    }

    /// Frames camgate accepted from the cameras of app `live` so far.
    pub async fn camera_frames_in(&self) -> u64 {
        let (_, v) = self.get_json("/api/v1/apps/live/ws-ingest").await;
        v["data"]
            .as_array()
            .into_iter()
            .flatten()
            .filter_map(|k| k["framesReceived"].as_u64())
            .sum()
    }

    /// Waits (up to 20 s) until VOD `id` of app `live` has `status`;
    /// returns the VOD.
    pub async fn wait_vod(&self, id: i64, status: &str) -> serde_json::Value {
        let deadline = std::time::Instant::now() + Duration::from_secs(20);
        loop {
            let (_, v) = self.get_json(&format!("/api/v1/apps/live/vods/{id}")).await;
            if v["data"]["status"] == status {
                return v["data"].clone();
            }
            assert!(
                std::time::Instant::now() < deadline,
                "VOD never {status}: {v}"
            );
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    /// Stops recording `vod_id` of app `live`; returns its VOD once ready.
    pub async fn stop_recording(&self, vod_id: i64) -> serde_json::Value {
        let (status, v) = self
            .api(
                reqwest::Method::POST,
                &format!("/api/v1/apps/live/recording/{vod_id}/stop"),
                None,
            )
            .await;
        assert_eq!(status, 200, "{v}");
        self.wait_vod(vod_id, "ready").await
    }
}

impl Gateway {
    /// Waits (up to `within`) until ingress `id` of `app` shows `status`;
    /// returns its row.
    pub async fn wait_ingress(
        &self,
        app: &str,
        id: &str,
        status: &str,
        within: Duration,
    ) -> serde_json::Value {
        let deadline = std::time::Instant::now() + within;
        loop {
            let (_, v) = self
                .get_json(&format!("/api/v1/apps/{app}/ingress/{id}"))
                .await;
            if v["data"]["status"] == status {
                return v["data"].clone();
            }
            assert!(
                std::time::Instant::now() < deadline,
                "ingress never {status}: {v}"
            );
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }
}

/// A free TCP port on loopback (bound and released; for peers that want a
/// port number on their command line).
pub fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("free port")
}

/// A real RTSP camera: Debian's GStreamer RTSP server
/// (`python/rtsp_camera.py`) on a loopback port, with mounts `/h264`,
/// `/h264aac`, `/h264pcmu`, `/mjpeg`, `/h265`. Killed on drop.
pub struct RtspCamera {
    child: Child,
    /// Its port.
    pub port: u16,
    /// Its address.
    pub host: String,
}

impl RtspCamera {
    /// Starts the camera on `port` (0 = a free one), optionally requiring
    /// `(user, password)`; `None` when GStreamer's RTSP server is missing
    /// outside CI (under `CI=true` that fails).
    pub fn start(port: u16, creds: Option<(&str, &str)>) -> Option<RtspCamera> {
        RtspCamera::launch(port, creds, None)
    }

    /// Starts the camera on a free port pinned to CPU `core` (benchmarks).
    pub fn start_pinned(core: u32) -> Option<RtspCamera> {
        RtspCamera::launch(0, None, Some(core))
    }

    /// Starts the camera inside network namespace `ns`, listening on
    /// `addr` (the namespace's address).
    pub fn start_in_netns(ns: &NetNs) -> Option<RtspCamera> {
        RtspCamera::launch_with(0, None, None, Some(ns))
    }

    fn launch(port: u16, creds: Option<(&str, &str)>, core: Option<u32>) -> Option<RtspCamera> {
        RtspCamera::launch_with(port, creds, core, None)
    }

    fn launch_with(
        port: u16,
        creds: Option<(&str, &str)>,
        core: Option<u32>,
        ns: Option<&NetNs>,
    ) -> Option<RtspCamera> {
        let ok = Command::new("/usr/bin/python3")
            .args([
                "-c",
                "import gi; gi.require_version('GstRtspServer', '1.0')",
            ])
            .status()
            .is_ok_and(|s| s.success());
        if !ok {
            missing_peer(
                "GStreamer's RTSP server",
                "scripts/test installs gir1.2-gst-rtsp-server-1.0",
            );
            return None;
        }
        let port = if port == 0 { free_port() } else { port };
        let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("python/rtsp_camera.py");
        let mut cmd = match (core, ns) {
            (Some(c), _) => {
                let mut cmd = Command::new("taskset");
                cmd.args(["-c", &c.to_string(), "/usr/bin/python3"]);
                cmd
            }
            (None, Some(ns)) => {
                let mut cmd = ns.command("/usr/bin/python3");
                cmd.env("RTSP_CAMERA_ADDRESS", &ns.inner_ip);
                cmd
            }
            (None, None) => Command::new("/usr/bin/python3"),
        };
        cmd.arg(script).arg(port.to_string());
        if let Some((u, p)) = creds {
            cmd.args([u, p]);
        }
        let mut child = cmd
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .expect("spawn rtsp camera");
        let stdout = child.stdout.take().expect("stdout");
        let mut line = String::new();
        std::io::BufRead::read_line(&mut std::io::BufReader::new(stdout), &mut line)
            .expect("camera output");
        assert!(
            line.starts_with("ready"),
            "rtsp camera did not start: {line}"
        );
        let host = ns.map_or_else(|| "127.0.0.1".to_owned(), |n| n.inner_ip.clone());
        Some(RtspCamera { child, port, host })
    }

    /// `rtsp://[user:pass@]HOST:PORT/{mount}`.
    pub fn url(&self, creds: Option<(&str, &str)>, mount: &str) -> String {
        let auth = creds.map(|(u, p)| format!("{u}:{p}@")).unwrap_or_default();
        format!("rtsp://{auth}{}:{}/{mount}", self.host, self.port)
    }

    /// Kills it (a camera that drops off the network).
    pub fn kill(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Drop for RtspCamera {
    fn drop(&mut self) {
        self.kill();
    }
}

/// A CA and a server certificate for 127.0.0.1 signed by it (openssl), in
/// `dir`: `(ca.pem, server.pem, server.key)`.
pub fn test_pki(dir: &Path) -> (PathBuf, PathBuf, PathBuf) {
    openssl(
        dir,
        &[
            "req",
            "-x509",
            "-newkey",
            "rsa:2048",
            "-nodes",
            "-keyout",
            "ca.key",
            "-out",
            "ca.pem",
            "-days",
            "2",
            "-subj",
            "/CN=camgate test CA",
        ],
    );
    let (cert, key) = issue_cert(dir, "server", "127.0.0.1");
    (dir.join("ca.pem"), cert, key)
}

/// Another certificate for 127.0.0.1 from `test_pki`'s CA in `dir`, with
/// common name `cn`: `(<name>.pem, <name>.key)`.
pub fn issue_cert(dir: &Path, name: &str, cn: &str) -> (PathBuf, PathBuf) {
    let (key, csr, pem) = (
        format!("{name}.key"),
        format!("{name}.csr"),
        format!("{name}.pem"),
    );
    let subject = format!("/CN={cn}");
    openssl(
        dir,
        &[
            "req", "-newkey", "rsa:2048", "-nodes", "-keyout", &key, "-out", &csr, "-subj",
            &subject,
        ],
    );
    std::fs::write(dir.join("san.ext"), "subjectAltName=IP:127.0.0.1\n").expect("ext");
    openssl(
        dir,
        &[
            "x509",
            "-req",
            "-in",
            &csr,
            "-CA",
            "ca.pem",
            "-CAkey",
            "ca.key",
            "-CAcreateserial",
            "-out",
            &pem,
            "-days",
            "2",
            "-extfile",
            "san.ext",
        ],
    );
    (dir.join(pem), dir.join(key))
}

fn openssl(dir: &Path, args: &[&str]) {
    let ok = Command::new("openssl")
        .args(args)
        .current_dir(dir)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .is_ok_and(|s| s.success());
    assert!(ok, "openssl {args:?}");
}

/// A network namespace joined to this one by a veth pair, made by the test
/// (root only): a host on its own link that can be cut off. Removed on
/// drop.
#[derive(Debug)]
pub struct NetNs {
    /// Namespace name.
    pub name: String,
    /// The address of this side of the link.
    pub outer_ip: String,
    /// The address inside the namespace.
    pub inner_ip: String,
    outer_if: String,
    inner_if: String,
}

impl NetNs {
    /// Creates namespace number `n` (0–200) of this test process; `None`
    /// when namespaces cannot be made (not root) outside CI (under
    /// `CI=true` that fails).
    pub fn create(n: u8) -> Option<NetNs> {
        let id = format!("{}{}", std::process::id() % 10_000, n);
        let subnet = format!("10.{}.{}", 200 + (n % 50), std::process::id() % 250);
        let ns = NetNs {
            name: format!("cg{id}"),
            outer_ip: format!("{subnet}.1"),
            inner_ip: format!("{subnet}.2"),
            outer_if: format!("cgo{id}"),
            inner_if: format!("cgi{id}"),
        };
        let (name, outer, inner) = (&ns.name, &ns.outer_if, &ns.inner_if);
        // `ip` argument lists (no value holds a space); `-n` runs inside.
        let steps = [
            format!("netns add {name}"),
            format!("link add {outer} type veth peer name {inner}"),
            format!("link set {inner} netns {name}"),
            format!("addr add {}/24 dev {outer}", ns.outer_ip),
            format!("link set {outer} up"),
            format!("-n {name} addr add {}/24 dev {inner}", ns.inner_ip),
            format!("-n {name} link set {inner} up"),
            format!("-n {name} link set lo up"),
        ];
        for step in steps {
            let ok = Command::new("ip")
                .args(step.split_whitespace())
                .stderr(Stdio::null())
                .status()
                .is_ok_and(|s| s.success());
            if !ok {
                missing_peer(
                    &format!("a network namespace (ip {step})"),
                    "the fault tests need root and iproute2",
                );
                return None;
            }
        }
        Some(ns)
    }

    /// Takes the link down (`false`) or up again (`true`).
    pub fn link(&self, up: bool) {
        let state = if up { "up" } else { "down" };
        let ok = Command::new("ip")
            .args(["link", "set", &self.outer_if, state])
            .status()
            .is_ok_and(|s| s.success());
        assert!(ok, "ip link set {state}");
    }

    /// A command run inside the namespace.
    pub fn command(&self, program: &str) -> Command {
        let mut c = Command::new("ip");
        c.args(["netns", "exec", &self.name, program]);
        c
    }
}

impl Drop for NetNs {
    fn drop(&mut self) {
        let _ = Command::new("ip")
            .args(["link", "del", &self.outer_if])
            .status();
        let _ = Command::new("ip")
            .args(["netns", "del", &self.name])
            .status();
    }
}

/// A UDP relay that impairs a link in user space: datagrams between one
/// client and `target` are dropped with probability `loss` and delayed by
/// `delay ± jitter` (uniform, so they also reorder), in both directions.
/// The client talks to `listen`; `target` sees the relay's own socket on
/// `via` (another loopback address). Used where the kernel has no
/// `sch_netem`. Deterministic for a given `seed`; the impairment can be
/// changed while it runs. Stops when dropped.
pub struct LossyRelay {
    task: tokio::task::JoinHandle<()>,
    impairment: std::sync::Arc<std::sync::Mutex<(f64, Duration, Duration)>>,
}

impl LossyRelay {
    /// Starts the relay.
    pub async fn start(
        listen: std::net::SocketAddr,
        via: std::net::IpAddr,
        target: std::net::SocketAddr,
        (loss, delay, jitter): (f64, Duration, Duration),
        seed: u64,
    ) -> LossyRelay {
        use std::sync::Arc;
        let front = Arc::new(
            tokio::net::UdpSocket::bind(listen)
                .await
                .expect("relay front"),
        );
        let back = Arc::new(
            tokio::net::UdpSocket::bind(std::net::SocketAddr::new(via, 0))
                .await
                .expect("relay back"),
        );
        let impairment = Arc::new(std::sync::Mutex::new((loss, delay, jitter)));
        let now = impairment.clone();
        let task = tokio::spawn(async move {
            // xorshift64*: a small deterministic generator.
            let mut state = seed | 1;
            let mut next = move || {
                state ^= state >> 12;
                state ^= state << 25;
                state ^= state >> 27;
                (state.wrapping_mul(0x2545_f491_4f6c_dd1d) >> 11) as f64 / (1u64 << 53) as f64
            };
            let mut client = None;
            let (mut a, mut b) = (vec![0u8; 2048], vec![0u8; 2048]);
            loop {
                let (data, to, out) = tokio::select! {
                    r = front.recv_from(&mut a) => {
                        let Ok((n, from)) = r else { return };
                        client = Some(from);
                        (a[..n].to_vec(), target, back.clone())
                    }
                    r = back.recv_from(&mut b) => {
                        let Ok((n, _)) = r else { return };
                        let Some(c) = client else { continue };
                        (b[..n].to_vec(), c, front.clone())
                    }
                };
                let (loss, delay, jitter) = *now.lock().unwrap_or_else(|e| e.into_inner());
                if next() < loss {
                    continue;
                }
                let spread = jitter.as_secs_f64() * (2.0 * next() - 1.0);
                let wait = Duration::from_secs_f64((delay.as_secs_f64() + spread).max(0.0));
                tokio::spawn(async move {
                    tokio::time::sleep(wait).await;
                    let _ = out.send_to(&data, to).await;
                });
            }
        });
        LossyRelay { task, impairment }
    }

    /// Changes the loss and delay from now on.
    pub fn set(&self, loss: f64, delay: Duration, jitter: Duration) {
        *self.impairment.lock().unwrap_or_else(|e| e.into_inner()) = (loss, delay, jitter);
    }
}

impl Drop for LossyRelay {
    fn drop(&mut self) {
        self.task.abort();
    }
}

/// A free UDP port on `ip` (bound and released).
pub fn free_udp_port(ip: std::net::IpAddr) -> u16 {
    std::net::UdpSocket::bind((ip, 0))
        .and_then(|s| s.local_addr())
        .map(|a| a.port())
        .expect("free udp port")
}
