//! Hardening end to end: TLS (HTTPS, WSS, RTMPS, certificate reload on
//! SIGHUP, HSTS) with curl, ffmpeg/ffprobe and a rustls WebSocket camera as
//! the clients, and every abuse limit answered with its own code while
//! other clients go on being served.

use std::net::SocketAddr;
use std::path::Path;
use std::process::Command;
use std::time::{Duration, Instant};

use camgate_hardware_tests::{
    ADMIN_TOKEN, Gateway, ffmpeg_push, ffprobe_streams, issue_cert, peer_available, spawn_camsim,
    test_pki,
};
use futures_util::{SinkExt, StreamExt};
use serde_json::{Value, json};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpSocket, TcpStream};
use tokio_tungstenite::tungstenite::Message;

/// `curl` against camgate over HTTPS trusting `ca`: status, headers, body.
fn curl(ca: &Path, method: &str, url: &str, body: Option<&Value>) -> (u16, String, String) {
    let mut cmd = Command::new("curl");
    cmd.args(["-sS", "-D", "-", "--cacert"])
        .arg(ca)
        .args(["-X", method, "-H"])
        .arg(format!("authorization: Bearer {ADMIN_TOKEN}"));
    if let Some(b) = body {
        cmd.args(["-H", "content-type: application/json", "--data"])
            .arg(b.to_string());
    }
    let out = cmd.arg(url).output().expect("run curl");
    let text = String::from_utf8_lossy(&out.stdout).into_owned();
    assert!(
        out.status.success(),
        "curl {url}: {text} {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let (head, body) = text.split_once("\r\n\r\n").unwrap_or((&text, ""));
    let status = head
        .split_whitespace()
        .nth(1)
        .and_then(|s| s.parse().ok())
        .unwrap_or(0);
    (status, head.to_ascii_lowercase(), body.to_owned())
}

/// The subject of the certificate a TLS server at `addr` presents.
fn served_subject(addr: &str) -> String {
    let out = Command::new("sh")
        .arg("-c")
        .arg(format!(
            "openssl s_client -connect {addr} </dev/null 2>/dev/null | openssl x509 -noout -subject"
        ))
        .output()
        .expect("openssl");
    String::from_utf8_lossy(&out.stdout).into_owned()
}

#[tokio::test]
async fn https_wss_and_rtmps_with_a_certificate_reloaded_on_sighup() {
    if !["openssl", "curl", "ffmpeg", "ffprobe"]
        .iter()
        .all(|p| peer_available(p))
    {
        return;
    }
    let dir = std::env::temp_dir().join(format!("camgate-tls-{}", std::process::id()));
    std::fs::create_dir_all(&dir).expect("dir");
    let (ca, cert, key) = test_pki(&dir);
    let (cert_s, key_s) = (cert.display().to_string(), key.display().to_string());
    let gw = Gateway::start(&[
        "--tls-cert",
        &cert_s,
        "--tls-key",
        &key_s,
        "--rtmps",
        "127.0.0.1:0",
    ]);
    assert!(gw.base.starts_with("https://127.0.0.1:"), "{}", gw.base);
    let host = gw.base.trim_start_matches("https://").to_owned();

    // HTTPS, with HSTS; returned URLs are https:// and wss://.
    let (status, head, _) = curl(&ca, "GET", &format!("{}/health", gw.base), None);
    assert_eq!(status, 200);
    assert!(
        head.contains("strict-transport-security: max-age=31536000"),
        "{head}"
    );
    let (status, _, body) = curl(
        &ca,
        "POST",
        &format!("{}/api/v1/apps/live/ws-ingest", gw.base),
        Some(&json!({ "room": "door" })),
    );
    assert_eq!(status, 201, "{body}");
    let minted: Value = serde_json::from_str(&body).expect("json");
    let ws_url = minted["data"]["wsUrl"].as_str().expect("wsUrl").to_owned();
    let key_secret = minted["data"]["streamKey"]
        .as_str()
        .expect("key")
        .to_owned();
    assert!(ws_url.starts_with("wss://"), "{ws_url}");
    assert!(
        minted["data"]["mjpegUrl"]
            .as_str()
            .unwrap_or("")
            .starts_with("https://"),
        "{minted}"
    );

    // A camera over WSS (rustls client trusting the test CA).
    let mut roots = tokio_rustls::rustls::RootCertStore::empty();
    {
        use tokio_rustls::rustls::pki_types::CertificateDer;
        use tokio_rustls::rustls::pki_types::pem::PemObject;
        for c in CertificateDer::pem_file_iter(&ca).expect("ca") {
            roots.add(c.expect("pem")).expect("root");
        }
    }
    let config = tokio_rustls::rustls::ClientConfig::builder_with_provider(std::sync::Arc::new(
        tokio_rustls::rustls::crypto::aws_lc_rs::default_provider(),
    ))
    .with_safe_default_protocol_versions()
    .expect("versions")
    .with_root_certificates(roots)
    .with_no_client_auth();
    let tcp = TcpStream::connect(&host).await.expect("connect");
    let tls = tokio_rustls::TlsConnector::from(std::sync::Arc::new(config))
        .connect(
            tokio_rustls::rustls::pki_types::ServerName::try_from("127.0.0.1").expect("name"),
            tcp,
        )
        .await
        .expect("tls handshake");
    let mut request =
        tokio_tungstenite::tungstenite::client::IntoClientRequest::into_client_request(
            ws_url.as_str(),
        )
        .expect("request");
    request.headers_mut().insert(
        "authorization",
        format!("Bearer {key_secret}").parse().expect("header"),
    );
    let (mut ws, _) = tokio_tungstenite::client_async(request, tls)
        .await
        .expect("wss handshake");
    let ready = tokio::time::timeout(Duration::from_secs(5), ws.next())
        .await
        .expect("ready in time")
        .expect("a message")
        .expect("ok");
    assert!(
        ready.to_text().unwrap_or("").contains("\"ready\""),
        "{ready:?}"
    );
    let jpeg = camgate_protocols::jpeg::tests_support::tiny_jpeg();
    for _ in 0..5 {
        ws.send(Message::Binary(jpeg.clone().into()))
            .await
            .expect("send");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let (_, _, body) = curl(
        &ca,
        "GET",
        &format!("{}/api/v1/apps/live/ws-ingest/live/door", gw.base),
        None,
    );
    assert!(body.contains("\"active\":true"), "{body}");

    // RTMPS: ffmpeg pushes over TLS; HLS of it is read over HTTPS.
    let (status, _, body) = curl(
        &ca,
        "POST",
        &format!("{}/api/v1/apps/live/ingress", gw.base),
        Some(&json!({ "inputType": "rtmp", "room": "enc" })),
    );
    assert_eq!(status, 201, "{body}");
    let ingress: Value = serde_json::from_str(&body).expect("json");
    let stream_key = ingress["data"]["streamKey"].as_str().expect("key");
    let rtmps = gw.rtmps.clone().expect("rtmps listener");
    let mut ffmpeg = ffmpeg_push(&format!("{rtmps}/live/{stream_key}"), 20);
    let playlist = format!("{}/hls/live/live-enc/index.m3u8", gw.base);
    let deadline = Instant::now() + Duration::from_secs(20);
    let probed = loop {
        let p = ffprobe_streams(&playlist);
        if p.contains("codec_name=h264") || Instant::now() > deadline {
            break p;
        }
        tokio::time::sleep(Duration::from_millis(300)).await;
    };
    let _ = ffmpeg.kill();
    let _ = ffmpeg.wait();
    assert!(
        probed.contains("codec_name=h264"),
        "HLS over HTTPS of an RTMPS push: {probed}"
    );

    // A renewed certificate is served after SIGHUP; a broken file keeps
    // the current one.
    assert!(served_subject(&host).contains("CN = 127.0.0.1"));
    let (new_cert, new_key) = issue_cert(&dir, "renewed", "camgate renewed");
    std::fs::copy(&new_cert, &cert).expect("copy cert");
    std::fs::copy(&new_key, &key).expect("copy key");
    let hup = |pid: u32| {
        Command::new("kill")
            .args(["-HUP", &pid.to_string()])
            .status()
            .expect("kill -HUP");
    };
    hup(gw.pid());
    let deadline = Instant::now() + Duration::from_secs(10);
    while !served_subject(&host).contains("camgate renewed") {
        assert!(Instant::now() < deadline, "certificate not reloaded");
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    std::fs::write(&cert, "not a certificate").expect("garbage");
    hup(gw.pid());
    let deadline = Instant::now() + Duration::from_secs(10);
    while !gw.log().contains("tls reload failed") {
        assert!(Instant::now() < deadline, "{}", gw.log());
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert!(served_subject(&host).contains("camgate renewed"));
    let (status, _, _) = curl(&ca, "GET", &format!("{}/health", gw.base), None);
    assert_eq!(status, 200);
    let _ = std::fs::remove_dir_all(&dir);
}

/// A client bound to another loopback address (its own rate-limit bucket).
fn client_from(ip: [u8; 4]) -> reqwest::Client {
    reqwest::Client::builder()
        .local_address(std::net::IpAddr::from(ip))
        .build()
        .expect("client")
}

async fn connect_from(ip: [u8; 4], to: SocketAddr) -> TcpStream {
    let s = TcpSocket::new_v4().expect("socket");
    s.bind(SocketAddr::from((ip, 0))).expect("bind");
    s.connect(to).await.expect("connect")
}

/// Writes a request on a raw connection; returns what came back.
async fn raw_request(mut s: TcpStream) -> String {
    s.write_all(b"GET /health HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
        .await
        .expect("write");
    let mut out = Vec::new();
    let _ = tokio::time::timeout(Duration::from_secs(10), s.read_to_end(&mut out)).await;
    String::from_utf8_lossy(&out).to_ascii_lowercase()
}

#[tokio::test]
async fn every_abuse_limit_answers_with_its_own_code_and_others_are_served() {
    let gw = Gateway::start(&[
        "--api-requests-per-minute-per-ip",
        "30",
        "--app-token-requests-per-hour",
        "5",
        "--max-http-connections-per-ip",
        "6",
        "--max-rtmp-connections-per-ip",
        "2",
        "--http-header-timeout",
        "2",
        "--max-viewers-per-stream",
        "1",
    ]);
    let addr: SocketAddr = gw.base.trim_start_matches("http://").parse().expect("addr");
    let health = || async {
        gw.http
            .get(format!("{}/api/v1/apps", gw.base))
            .bearer_auth(ADMIN_TOKEN)
            .send()
            .await
            .expect("request")
            .status()
            .as_u16()
    };

    // Per address: 30 API requests, then 429 with Retry-After.
    let abuser = client_from([127, 0, 0, 2]);
    let mut limited = None;
    for i in 0..40 {
        let r = abuser
            .get(format!("{}/api/v1/apps", gw.base))
            .send()
            .await
            .expect("request");
        if r.status() == 429 {
            let retry = r.headers().get("retry-after").cloned();
            let v: Value = r.json().await.expect("json");
            limited = Some((i, retry, v));
            break;
        }
    }
    let (i, retry, v) = limited.expect("the address was never limited");
    assert_eq!(i, 30, "after its 30 requests");
    assert_eq!(v["error"]["code"], "rate_limited", "{v}");
    assert!(retry.is_some_and(|r| r.to_str().unwrap_or("0") != "0"));
    assert_eq!(health().await, 200, "another address is served");

    // Per app token: 5 an hour, then 429; the admin token goes on.
    let (status, v) = gw
        .api(
            reqwest::Method::POST,
            "/api/v1/tokens",
            Some(json!({ "name": "sdk", "scope": "app", "app": "live" })),
        )
        .await;
    assert_eq!(status, 201, "{v}");
    let sdk = v["data"]["token"].as_str().expect("token").to_owned();
    let mut codes = Vec::new();
    for _ in 0..6 {
        let r = gw
            .http
            .get(format!("{}/api/v1/apps/live/streams", gw.base))
            .bearer_auth(&sdk)
            .send()
            .await
            .expect("request");
        codes.push(r.status().as_u16());
    }
    assert_eq!(codes, [200, 200, 200, 200, 200, 429]);
    assert_eq!(health().await, 200);

    // Slowloris: a request head that never ends is cut off; others are
    // served meanwhile.
    let mut slow = connect_from([127, 0, 0, 4], addr).await;
    slow.write_all(b"GET /health HTTP/1.1\r\nHost: x\r\n")
        .await
        .expect("write");
    assert_eq!(health().await, 200);
    let mut buf = [0u8; 512];
    let closed = tokio::time::timeout(Duration::from_secs(15), slow.read(&mut buf)).await;
    assert!(
        matches!(closed, Ok(Ok(_)) | Ok(Err(_))),
        "the half-sent request was never cut off"
    );

    // A keep-alive connection idle for longer than the first-head deadline
    // is still served (only the idle timeout, 120 s, closes it): a client
    // reusing a pooled connection is not cut off under its request.
    let mut keep = connect_from([127, 0, 0, 5], addr).await;
    for round in 0..2 {
        keep.write_all(b"GET /health HTTP/1.1\r\nHost: x\r\n\r\n")
            .await
            .expect("write");
        let mut got = Vec::new();
        while !String::from_utf8_lossy(&got).contains("\r\n\r\n") {
            let n = tokio::time::timeout(Duration::from_secs(5), keep.read(&mut buf))
                .await
                .expect("answer in time")
                .expect("read");
            assert!(n > 0, "closed before answering request {round}");
            got.extend_from_slice(&buf[..n]);
        }
        assert!(
            got.starts_with(b"HTTP/1.1 200"),
            "{}",
            String::from_utf8_lossy(&got)
        );
        // Drain the body, then idle past the 2 s first-head deadline.
        tokio::time::sleep(Duration::from_millis(3_000)).await;
        let _ = tokio::time::timeout(Duration::from_millis(50), keep.read(&mut buf)).await;
    }

    // A request head over the limit (32 KiB) gets 431; others go on.
    let big = gw
        .http
        .get(format!("{}/health", gw.base))
        .header("x-padding", "a".repeat(40 * 1024))
        .send()
        .await
        .expect("request");
    assert_eq!(big.status(), 431);
    assert_eq!(health().await, 200);

    // Connections per address: the seventh gets 503 with its code.
    let mut held = Vec::new();
    for _ in 0..6 {
        held.push(connect_from([127, 0, 0, 3], addr).await);
    }
    let over = raw_request(connect_from([127, 0, 0, 3], addr).await).await;
    assert!(over.starts_with("http/1.1 503"), "{over}");
    assert!(over.contains("too_many_connections_from_address"), "{over}");
    assert!(over.contains("retry-after: 5"), "{over}");
    drop(held.pop());
    let deadline = Instant::now() + Duration::from_secs(5);
    loop {
        let again = raw_request(connect_from([127, 0, 0, 3], addr).await).await;
        if again.starts_with("http/1.1 200") {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "a freed slot is not reused: {again}"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    drop(held);

    // RTMP connections per address: the third is closed at once.
    let rtmp: SocketAddr = gw.rtmp.trim_start_matches("rtmp://").parse().expect("rtmp");
    let _a = TcpStream::connect(rtmp).await.expect("first");
    let _b = TcpStream::connect(rtmp).await.expect("second");
    let mut third = TcpStream::connect(rtmp).await.expect("third");
    let n = tokio::time::timeout(Duration::from_secs(5), third.read(&mut buf))
        .await
        .expect("closed in time");
    assert!(matches!(n, Ok(0) | Err(_)), "{n:?}");
    assert!(gw.log().contains("rtmp connection refused"), "{}", gw.log());

    // Viewers per stream: the second MJPEG viewer gets 429 viewer_limit.
    let m = gw.mint("lobby").await;
    let mut camsim = spawn_camsim(&m, "10", "30");
    let first = gw.wait_live(&m.mjpeg_url).await;
    let r = gw
        .http
        .get(&m.mjpeg_url)
        .send()
        .await
        .expect("second viewer");
    assert_eq!(r.status(), 429);
    let v: Value = r.json().await.expect("json");
    assert_eq!(v["error"]["code"], "viewer_limit", "{v}");
    drop(first);
    let deadline = Instant::now() + Duration::from_secs(5);
    loop {
        let r = gw.http.get(&m.mjpeg_url).send().await.expect("viewer");
        if r.status() == 200 {
            break;
        }
        assert!(Instant::now() < deadline, "the slot was not freed");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let _ = camsim.kill();
    let _ = camsim.wait();
}
