//! The platform API with real HTTP: apps and API tokens — scopes,
//! narrowed permissions, IP allow-lists, expiry and revocation — and the
//! isolation between apps.

use std::time::Duration;

use camgate_hardware_tests::Gateway;
use reqwest::Method;
use serde_json::{Value, json};

fn code(v: &Value) -> &str {
    v["error"]["code"].as_str().unwrap_or_default()
}

async fn new_token(gw: &Gateway, as_token: Option<&str>, body: Value) -> (u16, Value) {
    gw.api_as(as_token, Method::POST, "/api/v1/tokens", Some(body))
        .await
}

#[tokio::test]
async fn api_tokens_are_scoped_narrowed_and_revocable() {
    let gw = Gateway::start(&[]);
    for name in ["tenant-a", "tenant-b"] {
        let (status, v) = gw
            .api(Method::POST, "/api/v1/apps", Some(json!({ "name": name })))
            .await;
        assert_eq!(status, 201, "{v}");
    }

    // A full app token for tenant-a: sees only its app.
    let (status, v) = new_token(
        &gw,
        None,
        json!({ "name": "a-admin", "scope": "app", "app": "tenant-a" }),
    )
    .await;
    assert_eq!(status, 401, "{v}");
    let (status, v) = gw
        .api(
            Method::POST,
            "/api/v1/tokens",
            Some(json!({ "name": "a-admin", "scope": "app", "app": "tenant-a" })),
        )
        .await;
    assert_eq!(status, 201, "{v}");
    let a_admin = v["data"]["token"].as_str().expect("token").to_owned();
    assert!(a_admin.starts_with("sk_"), "{v}");
    let (_, me) = gw
        .api_as(Some(&a_admin), Method::GET, "/api/v1/auth/me", None)
        .await;
    assert_eq!(
        (me["data"]["scope"].as_str(), me["data"]["app"].as_str()),
        (Some("app"), Some("tenant-a")),
        "{me}"
    );
    let (_, apps) = gw
        .api_as(Some(&a_admin), Method::GET, "/api/v1/apps", None)
        .await;
    let names: Vec<&str> = apps["data"]
        .as_array()
        .expect("apps")
        .iter()
        .filter_map(|a| a["name"].as_str())
        .collect();
    assert_eq!(names, ["tenant-a"], "{apps}");
    // Nothing of tenant-b is reachable with it.
    for (method, path, body) in [
        (Method::GET, "/api/v1/apps/tenant-b", None),
        (Method::GET, "/api/v1/apps/tenant-b/ingress", None),
        (
            Method::POST,
            "/api/v1/apps/tenant-b/ingress",
            Some(json!({ "inputType": "rtmp" })),
        ),
        (
            Method::POST,
            "/api/v1/apps/tenant-b/ws-ingest",
            Some(json!({ "room": "cam" })),
        ),
        (
            Method::PATCH,
            "/api/v1/apps/tenant-b",
            Some(json!({ "displayName": "x" })),
        ),
        (Method::DELETE, "/api/v1/apps/tenant-b", None),
        (
            Method::POST,
            "/api/v1/apps",
            Some(json!({ "name": "tenant-c" })),
        ),
    ] {
        let (status, v) = gw.api_as(Some(&a_admin), method.clone(), path, body).await;
        assert_eq!(
            (status, code(&v)),
            (403, "permission_denied"),
            "{method} {path}: {v}"
        );
    }
    // It cannot mint a global token or one for another app.
    for body in [
        json!({ "name": "x", "scope": "global" }),
        json!({ "name": "x", "scope": "app", "app": "tenant-b" }),
    ] {
        let (status, v) = new_token(&gw, Some(&a_admin), body).await;
        assert_eq!(status, 403, "{v}");
    }

    // A narrowed token: ingress only, from loopback only.
    let (status, v) = new_token(
        &gw,
        Some(&a_admin),
        json!({ "name": "encoder-bot", "scope": "app", "app": "tenant-a",
                "permissions": ["ingress:*"], "allowedIps": ["127.0.0.1", "10.0.0.0/8"] }),
    )
    .await;
    assert_eq!(status, 201, "{v}");
    let narrow = v["data"]["token"].as_str().expect("token").to_owned();
    let (status, v) = gw
        .api_as(
            Some(&narrow),
            Method::POST,
            "/api/v1/apps/tenant-a/ingress",
            Some(json!({ "inputType": "rtmp", "room": "stage" })),
        )
        .await;
    assert_eq!(status, 201, "{v}");
    let (status, v) = gw
        .api_as(
            Some(&narrow),
            Method::POST,
            "/api/v1/apps/tenant-a/tokens",
            Some(json!({ "room": "stage", "canPublish": true })),
        )
        .await;
    assert_eq!((status, code(&v)), (403, "permission_denied"), "{v}");
    assert!(
        v["error"]["message"]
            .as_str()
            .unwrap_or_default()
            .contains("stream:write"),
        "{v}"
    );
    // …and it cannot mint anything wider than itself (it lacks token:create).
    let (status, v) = new_token(
        &gw,
        Some(&narrow),
        json!({ "name": "y", "scope": "app", "app": "tenant-a", "permissions": ["ingress:read"] }),
    )
    .await;
    assert_eq!(status, 403, "{v}");
    // A narrowed creator cannot hand out more than it has.
    let (status, v) = gw
        .api(Method::POST, "/api/v1/tokens", Some(json!({ "name": "minter", "scope": "app", "app": "tenant-a", "permissions": ["token:create", "stream:read"] })))
        .await;
    assert_eq!(status, 201, "{v}");
    let minter = v["data"]["token"].as_str().expect("token").to_owned();
    let (status, v) = new_token(
        &gw,
        Some(&minter),
        json!({ "name": "z", "scope": "app", "app": "tenant-a", "permissions": ["stream:write"] }),
    )
    .await;
    assert_eq!(status, 403, "{v}");
    let (status, v) = new_token(
        &gw,
        Some(&minter),
        json!({ "name": "z", "scope": "app", "app": "tenant-a" }),
    )
    .await;
    assert_eq!(status, 403, "{v}");
    let (status, v) = new_token(
        &gw,
        Some(&minter),
        json!({ "name": "z", "scope": "app", "app": "tenant-a", "permissions": ["stream:read"] }),
    )
    .await;
    assert_eq!(status, 201, "{v}");

    // An allow-list that does not include loopback: refused.
    let (_, v) = gw
        .api(
            Method::POST,
            "/api/v1/tokens",
            Some(json!({ "name": "lan", "scope": "global", "allowedIps": ["10.0.0.0/8"] })),
        )
        .await;
    let lan = v["data"]["token"].as_str().expect("token").to_owned();
    let (status, _) = gw
        .api_as(Some(&lan), Method::GET, "/api/v1/auth/me", None)
        .await;
    assert_eq!(status, 401);

    // Expiry and revocation.
    let (_, v) = gw
        .api(
            Method::POST,
            "/api/v1/tokens",
            Some(json!({ "name": "short", "scope": "global", "ttlSeconds": 1 })),
        )
        .await;
    let short = v["data"]["token"].as_str().expect("token").to_owned();
    assert!(v["data"]["expiresAt"].is_string(), "{v}");
    let (status, _) = gw
        .api_as(Some(&short), Method::GET, "/api/v1/auth/me", None)
        .await;
    assert_eq!(status, 200);
    tokio::time::sleep(Duration::from_millis(2100)).await;
    let (status, _) = gw
        .api_as(Some(&short), Method::GET, "/api/v1/auth/me", None)
        .await;
    assert_eq!(status, 401);
    let (_, me) = gw
        .api_as(Some(&narrow), Method::GET, "/api/v1/auth/me", None)
        .await;
    let narrow_id = me["data"]["tokenId"].as_i64().expect("id");
    let (status, _) = gw
        .api_as(
            Some(&a_admin),
            Method::DELETE,
            &format!("/api/v1/tokens/{narrow_id}"),
            None,
        )
        .await;
    assert_eq!(status, 204);
    let (status, _) = gw
        .api_as(
            Some(&narrow),
            Method::GET,
            "/api/v1/apps/tenant-a/ingress",
            None,
        )
        .await;
    assert_eq!(status, 401);

    // Listings never carry a secret; an app token lists only its app's.
    let (_, all) = gw.api(Method::GET, "/api/v1/tokens", None).await;
    let text = all.to_string();
    for t in [&a_admin, &narrow, &minter, &lan, &short] {
        assert!(!text.contains(t.as_str()), "secret listed");
    }
    assert!(!text.contains("hash"), "{all}");
    let (_, mine) = gw
        .api_as(Some(&a_admin), Method::GET, "/api/v1/tokens", None)
        .await;
    assert!(
        mine["data"]
            .as_array()
            .expect("rows")
            .iter()
            .all(|r| r["scope"] == "app"),
        "{mine}"
    );
    let revoked = mine["data"]
        .as_array()
        .expect("rows")
        .iter()
        .find(|r| r["id"] == narrow_id)
        .expect("row kept");
    assert_eq!(revoked["revoked"], true);

    // Bad bodies: a code naming the problem, nothing stored.
    for (body, want) in [
        (json!({ "name": "x", "scope": "galactic" }), "invalid_scope"),
        (
            json!({ "name": "x", "scope": "global", "permissions": ["root"] }),
            "invalid_permissions",
        ),
        (
            json!({ "name": "x", "scope": "global", "allowedIps": ["example.com"] }),
            "invalid_allowed_ips",
        ),
        (
            json!({ "name": "x", "scope": "global", "ttlSeconds": -5 }),
            "invalid_expiry",
        ),
        (
            json!({ "name": "x", "scope": "global", "isAdmin": true }),
            "unknown_field",
        ),
        (json!({ "name": "", "scope": "global" }), "invalid_name"),
    ] {
        let (status, v) = gw.api(Method::POST, "/api/v1/tokens", Some(body)).await;
        assert_eq!((status, code(&v)), (400, want), "{v}");
    }
    let (_, after) = gw.api(Method::GET, "/api/v1/tokens", None).await;
    assert_eq!(
        after["data"].as_array().map(Vec::len),
        all["data"].as_array().map(Vec::len)
    );
}

/// One request the receiver got.
#[derive(Debug, Clone)]
struct Received {
    headers: Vec<(String, String)>,
    body: Vec<u8>,
}

impl Received {
    fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }
}

/// A real HTTP receiver on loopback: records every request and answers the
/// statuses of `script` in turn (then 200).
async fn receiver(script: Vec<u16>) -> (String, std::sync::Arc<std::sync::Mutex<Vec<Received>>>) {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let url = format!("http://{}/hook", listener.local_addr().expect("addr"));
    let got = std::sync::Arc::new(std::sync::Mutex::new(Vec::new()));
    let script = std::sync::Arc::new(std::sync::Mutex::new(std::collections::VecDeque::from(
        script,
    )));
    let seen = got.clone();
    tokio::spawn(async move {
        loop {
            let Ok((mut s, _)) = listener.accept().await else {
                return;
            };
            let (seen, script) = (seen.clone(), script.clone());
            tokio::spawn(async move {
                let mut buf = Vec::new();
                let mut chunk = [0u8; 4096];
                loop {
                    let Some(end) = buf.windows(4).position(|w| w == b"\r\n\r\n") else {
                        match s.read(&mut chunk).await {
                            Ok(0) | Err(_) => return,
                            Ok(n) => buf.extend_from_slice(&chunk[..n]),
                        }
                        continue;
                    };
                    let head = String::from_utf8_lossy(&buf[..end]).to_string();
                    let headers: Vec<(String, String)> = head
                        .lines()
                        .skip(1)
                        .filter_map(|l| l.split_once(':'))
                        .map(|(k, v)| (k.trim().to_owned(), v.trim().to_owned()))
                        .collect();
                    let len: usize = headers
                        .iter()
                        .find(|(k, _)| k.eq_ignore_ascii_case("content-length"))
                        .and_then(|(_, v)| v.parse().ok())
                        .unwrap_or(0);
                    while buf.len() < end + 4 + len {
                        match s.read(&mut chunk).await {
                            Ok(0) | Err(_) => return,
                            Ok(n) => buf.extend_from_slice(&chunk[..n]),
                        }
                    }
                    let body = buf[end + 4..end + 4 + len].to_vec();
                    buf.drain(..end + 4 + len);
                    seen.lock().expect("lock").push(Received { headers, body });
                    let status = script.lock().expect("lock").pop_front().unwrap_or(200);
                    let reply = format!("HTTP/1.1 {status} X\r\ncontent-length: 0\r\n\r\n");
                    if s.write_all(reply.as_bytes()).await.is_err() {
                        return;
                    }
                }
            });
        }
    });
    (url, got)
}

#[tokio::test]
async fn webhooks_are_signed_retried_and_logged() {
    use hmac::{Hmac, Mac};
    let gw = Gateway::start(&[]);
    // The first delivery is answered 503 (retried) then 200; the second
    // 400 (final, not retried).
    let (url, got) = receiver(vec![503, 200, 400]).await;
    let secret = "hook-secret-1";
    let (status, v) = gw
        .api(
            Method::PATCH,
            "/api/v1/apps/live",
            Some(json!({ "callbackUrl": url, "callbackSecret": secret })),
        )
        .await;
    assert_eq!(status, 200, "{v}");
    // webhook_test: 503 then 200 → delivered after 2 attempts.
    let (status, _) = gw
        .api(Method::POST, "/api/v1/apps/live/webhooks/test", None)
        .await;
    assert_eq!(status, 200);
    // A second test event: 400 → failed, not retried.
    let wait_for = |n: usize| {
        let got = got.clone();
        async move {
            for _ in 0..100 {
                if got.lock().expect("lock").len() >= n {
                    return;
                }
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
            panic!("fewer than {n} requests arrived");
        }
    };
    wait_for(2).await;
    let (status, _) = gw
        .api(Method::POST, "/api/v1/apps/live/webhooks/test", None)
        .await;
    assert_eq!(status, 200);
    wait_for(3).await;

    // A camera comes and goes: camera_online, stream_started, stream_ended,
    // camera_offline.
    let m = gw.mint("hooked").await;
    let mut camsim = camgate_hardware_tests::spawn_camsim(&m, "5", "2");
    let _ = tokio::task::spawn_blocking(move || camsim.wait()).await;
    wait_for(7).await;
    tokio::time::sleep(Duration::from_millis(500)).await;

    let all = got.lock().expect("lock").clone();
    let mut events = Vec::new();
    for r in &all {
        // The signature is HMAC-SHA256 over the exact body, checked here
        // independently of camgate's code.
        let mut mac = Hmac::<sha2::Sha256>::new_from_slice(secret.as_bytes()).expect("key");
        mac.update(&r.body);
        let want: String = mac
            .finalize()
            .into_bytes()
            .iter()
            .map(|b| format!("{b:02x}"))
            .collect();
        assert_eq!(
            r.header("x-streamhub-signature"),
            Some(format!("sha256={want}").as_str())
        );
        let v: Value = serde_json::from_slice(&r.body).expect("json body");
        assert_eq!(r.header("x-streamhub-event"), v["event"].as_str());
        assert_eq!(r.header("x-streamhub-delivery"), v["id"].as_str());
        assert_eq!(r.header("x-streamhub-timestamp"), v["ts"].as_str());
        assert_eq!(r.header("content-type"), Some("application/json"));
        assert_eq!(v["app"], "live");
        assert_eq!(v["timestamp"], v["ts"]);
        events.push((v["event"].as_str().unwrap_or_default().to_owned(), v));
    }
    // The retried delivery carried the same id both times.
    assert_eq!(events[0].0, "webhook_test");
    assert_eq!(events[0].1["id"], events[1].1["id"]);
    let started = events
        .iter()
        .find(|(e, _)| e == "stream_started")
        .expect("stream_started");
    assert_eq!(started.1["room"], "live-hooked", "{:?}", started.1);
    assert_eq!(started.1["data"]["type"], "ws-mjpeg");
    assert_eq!(
        started.1["data"]["streamId"],
        format!("live-hooked/{}", m.identity)
    );
    assert_eq!(started.1["data"]["participant"], m.identity.as_str());
    for e in ["camera_online", "stream_ended", "camera_offline"] {
        assert!(events.iter().any(|(n, _)| n == e), "no {e}: {events:?}");
    }

    // The delivery log: delivered after 2 attempts, failed after 1.
    let (_, log) = gw.get_json("/api/v1/apps/live/webhooks/deliveries").await;
    let rows = log["data"].as_array().expect("rows");
    let tests: Vec<&Value> = rows
        .iter()
        .filter(|r| r["event"] == "webhook_test")
        .collect();
    assert_eq!(tests.len(), 2, "{log}");
    assert!(
        tests
            .iter()
            .any(|r| r["status"] == "delivered" && r["attempts"] == 2),
        "{log}"
    );
    assert!(
        tests
            .iter()
            .any(|r| r["status"] == "failed" && r["attempts"] == 1 && r["httpStatus"] == 400),
        "{log}"
    );
    // The secret is never shown back.
    let (_, app) = gw.get_json("/api/v1/apps/live").await;
    assert!(!app.to_string().contains(secret), "{app}");
}

#[tokio::test]
async fn a_private_app_plays_only_with_a_play_token() {
    use futures_util::StreamExt;
    let gw = Gateway::start(&[]);
    let (status, v) = gw
        .api(
            Method::POST,
            "/api/v1/apps",
            Some(json!({ "name": "private" })),
        )
        .await;
    assert_eq!(status, 201, "{v}");
    let (_, v) = gw
        .api(
            Method::PATCH,
            "/api/v1/apps/private",
            Some(json!({ "features": { "publicPlayback": false } })),
        )
        .await;
    assert_eq!(v["data"]["features"]["publicPlayback"], false, "{v}");
    let m = camgate_firmware_sim::mint_key(
        &gw.http,
        &gw.base,
        camgate_hardware_tests::ADMIN_TOKEN,
        "private",
        "door",
    )
    .await
    .expect("camera key");
    let mut camsim = camgate_hardware_tests::spawn_camsim(&m, "10", "60");
    // A subscribe-only join token for this room.
    let (status, v) = gw
        .api(
            Method::POST,
            "/api/v1/apps/private/tokens",
            Some(json!({ "room": "door", "canSubscribe": true, "canPublish": false })),
        )
        .await;
    assert_eq!(status, 201, "{v}");
    let token = v["data"]["token"].as_str().expect("token").to_owned();
    // A token for another room of the same app does not open this one.
    let (_, v) = gw
        .api(
            Method::POST,
            "/api/v1/apps/private/tokens",
            Some(json!({ "room": "other", "canSubscribe": true })),
        )
        .await;
    let other = v["data"]["token"].as_str().expect("token").to_owned();

    let base = format!("{}/live/private/private-door", gw.base);
    // Wait until the camera is live (with the token).
    let mut live = false;
    for _ in 0..100 {
        let r = gw
            .http
            .get(format!("{base}/frame.jpg?token={token}"))
            .send()
            .await
            .expect("frame");
        if r.status() == 200 {
            live = true;
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert!(live, "camera never live");
    for path in [
        format!("{base}/frame.jpg"),
        format!("{base}/mjpeg"),
        format!("{}/hls/private/private-door/index.m3u8", gw.base),
    ] {
        for t in [None, Some(other.as_str()), Some("garbage")] {
            let url = match t {
                Some(t) => format!("{path}?token={t}"),
                None => path.clone(),
            };
            let r = gw.http.get(&url).send().await.expect("request");
            assert_eq!(r.status(), 401, "{url}");
        }
    }
    let r = gw
        .http
        .get(format!("{base}/mjpeg?token={token}"))
        .send()
        .await
        .expect("mjpeg");
    assert_eq!(r.status(), 200);
    drop(r);
    let r = gw
        .http
        .get(format!(
            "{}/hls/private/private-door/index.m3u8?token={token}",
            gw.base
        ))
        .send()
        .await
        .expect("hls");
    assert_eq!(r.status(), 200);
    let playlist = r.text().await.expect("text");
    assert!(playlist.contains(&format!("?token={token}")), "{playlist}");

    // The viewer WebSocket: 4401 without, frames with.
    let ws = gw.ws_base();
    let (mut s, _) =
        tokio_tungstenite::connect_async(format!("{ws}/live/ws?app=private&room=door"))
            .await
            .expect("ws");
    let close = tokio::time::timeout(Duration::from_secs(5), s.next())
        .await
        .expect("answer");
    match close {
        Some(Ok(tokio_tungstenite::tungstenite::Message::Close(Some(f)))) => {
            assert_eq!(u16::from(f.code), 4401, "{f:?}")
        }
        other => panic!("expected a 4401 close, got {other:?}"),
    }
    let (mut s, _) = tokio_tungstenite::connect_async(format!(
        "{ws}/live/ws?app=private&room=door&token={token}"
    ))
    .await
    .expect("ws");
    let first = tokio::time::timeout(Duration::from_secs(5), s.next())
        .await
        .expect("frame");
    assert!(
        matches!(
            first,
            Some(Ok(tokio_tungstenite::tungstenite::Message::Binary(_)))
        ),
        "{first:?}"
    );

    // WHEP: 401 without a token; anonymous play tokens are refused.
    let (status, _, _) = gw
        .post_sdp(
            "/whep/private-door?app=private",
            None,
            "application/sdp",
            "v=0\r\n",
        )
        .await;
    assert_eq!(status, 401);
    let (status, _) = gw
        .get_public_json("/api/v1/apps/private/play-token/door")
        .await;
    assert_eq!(status, 404);
    // …and Chromium plays with the join token.
    if let Some(dir) = camgate_hardware_tests::browser_scripts() {
        let v = camgate_hardware_tests::run_node(
            &dir.join("webrtc.mjs"),
            vec![
                format!("{}/health", gw.base),
                "--whep".into(),
                format!("{}/whep/private-door?app=private", gw.base),
                token.clone(),
                "--seconds".into(),
                "2".into(),
            ],
        )
        .await;
        assert_eq!(v["videoCodec"], "video/H264", "{v}");
        assert!(v["frames"].as_u64().unwrap_or(0) >= 5, "{v}");
    }
    let _ = camsim.kill();
    let _ = camsim.wait();
}

#[tokio::test]
async fn stats_and_metrics_count_what_is_live() {
    let gw = Gateway::start(&[]);
    let m = gw.mint("counted").await;
    let mut camsim = camgate_hardware_tests::spawn_camsim(&m, "10", "30");
    let _viewer = gw.wait_live(&m.mjpeg_url).await;

    let (status, v) = gw.api(Method::GET, "/api/v1/stats", None).await;
    assert_eq!(status, 200, "{v}");
    let d = &v["data"];
    assert_eq!(d["counts"]["activeStreams"], 1, "{v}");
    assert_eq!(d["streamsByType"]["ws-mjpeg"], 1, "{v}");
    assert!(
        d["uptimeSeconds"].is_u64() && d["cpu"]["cores"].as_u64().unwrap_or(0) >= 1,
        "{v}"
    );
    assert!(d["memory"]["totalBytes"].as_u64().unwrap_or(0) > 0, "{v}");
    let (status, v) = gw.api(Method::GET, "/api/v1/apps/live/stats", None).await;
    assert_eq!(status, 200, "{v}");
    assert_eq!(v["data"]["live"]["activeStreams"], 1, "{v}");
    assert_eq!(v["data"]["live"]["viewers"], 1, "{v}");

    // An app token may read its app's stats, not the node's.
    let (_, t) = gw
        .api(
            Method::POST,
            "/api/v1/tokens",
            Some(json!({ "name": "dash", "scope": "app", "app": "live" })),
        )
        .await;
    let app_token = t["data"]["token"].as_str().expect("token").to_owned();
    let (status, _) = gw
        .api_as(Some(&app_token), Method::GET, "/api/v1/stats", None)
        .await;
    assert_eq!(status, 403);
    let (status, _) = gw
        .api_as(
            Some(&app_token),
            Method::GET,
            "/api/v1/apps/live/stats",
            None,
        )
        .await;
    assert_eq!(status, 200);

    // Prometheus text.
    let r = gw
        .http
        .get(format!("{}/metrics", gw.base))
        .send()
        .await
        .expect("metrics");
    assert_eq!(r.status(), 401);
    let r = gw
        .http
        .get(format!("{}/metrics", gw.base))
        .bearer_auth(camgate_hardware_tests::ADMIN_TOKEN)
        .send()
        .await
        .expect("metrics");
    assert_eq!(r.status(), 200);
    assert!(
        r.headers()["content-type"]
            .to_str()
            .unwrap_or("")
            .starts_with("text/plain")
    );
    let text = r.text().await.expect("text");
    for line in [
        "camgate_streams{type=\"ws-mjpeg\"} 1",
        "camgate_cameras_connected 1",
        "camgate_viewers 1",
        "# TYPE camgate_webhook_deliveries_total counter",
        "camgate_pulled_cameras{status=\"retrying\"} 0",
        "camgate_viewer_connections{output=\"mjpeg\"} 1",
        "camgate_frames_in_total{source=\"rtmp\"} 0",
        "# TYPE camgate_http_request_duration_seconds histogram",
        "# TYPE camgate_transcode_seconds_total counter",
        "camgate_frames_dropped_total{reason=\"not_jpeg\"} 0",
    ] {
        assert!(text.lines().any(|l| l == line), "{line} missing:\n{text}");
    }
    // Counters that move with the camera and its viewer.
    let value = |prefix: &str| -> f64 {
        text.lines()
            .find_map(|l| l.strip_prefix(prefix))
            .and_then(|v| v.trim().parse().ok())
            .unwrap_or(0.0)
    };
    assert!(
        value("camgate_frames_in_total{source=\"ws-mjpeg\"}") > 0.0,
        "{text}"
    );
    assert!(
        value("camgate_bytes_in_total{source=\"ws-mjpeg\"}") > 1000.0,
        "{text}"
    );
    assert!(
        value("camgate_frames_out_total{output=\"mjpeg\"}") > 0.0,
        "{text}"
    );
    // Latency is recorded under the route template, never the raw path.
    assert!(
        value(
            "camgate_http_request_duration_seconds_count{method=\"GET\",route=\"/api/v1/apps/{app}/stats\"}"
        ) >= 1.0,
        "{text}"
    );
    assert!(
        !text.contains("route=\"/api/v1/apps/live/stats\""),
        "{text}"
    );
    let _ = camsim.kill();
    let _ = camsim.wait();
}

#[tokio::test]
async fn the_event_log_is_persisted_filtered_and_scoped() {
    let gw = Gateway::start(&[]);
    let m = gw.mint("logged").await;
    let mut camsim = camgate_hardware_tests::spawn_camsim(&m, "5", "1");
    let _ = tokio::task::spawn_blocking(move || camsim.wait()).await;
    let mut found = Value::Null;
    for _ in 0..50 {
        let (_, v) = gw.get_json("/api/v1/logs?q=camera%20disconnected").await;
        if v["total"].as_u64().unwrap_or(0) >= 1 {
            found = v;
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    eprintln!("logs: {found}");
    let entry = &found["data"][0];
    assert_eq!(entry["level"], "info", "{found}");
    assert_eq!(entry["source"], "ingest::ws", "{found}");
    assert_eq!(entry["app"], "live", "{found}");
    assert!(entry["appId"].is_i64(), "{found}");
    let meta: Value =
        serde_json::from_str(entry["metaJson"].as_str().expect("meta")).expect("json");
    assert_eq!(meta["room"], "live-logged", "{meta}");
    // Per app, level filter (warn and worse), paging.
    let (_, v) = gw.get_json("/api/v1/apps/live/logs?limit=2").await;
    assert_eq!(v["limit"], 2);
    assert!(v["data"].as_array().expect("rows").len() <= 2);
    assert!(
        v["data"]
            .as_array()
            .expect("rows")
            .iter()
            .all(|e| e["app"] == "live"),
        "{v}"
    );
    let (_, v) = gw.get_json("/api/v1/logs?level=warn").await;
    assert!(
        v["data"]
            .as_array()
            .expect("rows")
            .iter()
            .all(|e| e["level"] == "warn" || e["level"] == "error"),
        "{v}"
    );
    for (q, code_want) in [
        ("level=loud", "invalid_level"),
        ("since=yesterday", "invalid_time"),
        ("limit=0", "invalid_limit"),
        ("limit=1001", "invalid_limit"),
    ] {
        let (status, v) = gw.get_json(&format!("/api/v1/logs?{q}")).await;
        assert_eq!((status, code(&v)), (400, code_want), "{q}: {v}");
    }
    // An app token reads its app's log only.
    let (_, t) = gw
        .api(
            Method::POST,
            "/api/v1/tokens",
            Some(json!({ "name": "ops", "scope": "app", "app": "live" })),
        )
        .await;
    let app_token = t["data"]["token"].as_str().expect("token").to_owned();
    let (status, _) = gw
        .api_as(Some(&app_token), Method::GET, "/api/v1/logs", None)
        .await;
    assert_eq!(status, 403);
    let (status, _) = gw
        .api_as(
            Some(&app_token),
            Method::GET,
            "/api/v1/apps/live/logs",
            None,
        )
        .await;
    assert_eq!(status, 200);
    // Nothing secret in the log.
    let (_, all) = gw.get_json("/api/v1/logs?limit=1000").await;
    assert!(
        !all.to_string().contains(&m.stream_key),
        "camera key in the log"
    );
}

/// Every resource and action a token permission can name.
const RESOURCES: &[&str] = &[
    "app",
    "config",
    "s3",
    "stream",
    "recording",
    "vod",
    "broadcast",
    "sample",
    "ingress",
    "tenant",
    "usage",
    "token",
];
const ACTIONS: &[&str] = &["read", "create", "write", "delete", "start", "stop"];

/// Every permission except `missing`, compressed with wildcards.
fn all_but(missing: &str) -> Vec<String> {
    let (res, action) = missing.split_once(':').expect("resource:action");
    let mut out: Vec<String> = RESOURCES
        .iter()
        .filter(|r| **r != res)
        .map(|r| format!("{r}:*"))
        .collect();
    out.extend(
        ACTIONS
            .iter()
            .filter(|a| **a != action)
            .map(|a| format!("{res}:{a}")),
    );
    out
}

/// Walks the OpenAPI document served by the real binary and calls every
/// operation with no token, an expired and a revoked token, a token of
/// another app, a token lacking the route's permission, and a token holding
/// only that permission. The document is generated from the same table
/// that builds the router, so this also proves every documented route is
/// served.
#[tokio::test]
async fn every_documented_route_is_served_and_guarded() {
    let gw = Gateway::start(&[]);
    let (status, doc) = gw.get_public_json("/api/v1/openapi.json").await;
    assert_eq!(status, 200);
    assert_eq!(doc["openapi"], "3.1.0");
    let docs_page = gw
        .http
        .get(format!("{}/api/v1/docs", gw.base))
        .send()
        .await
        .expect("docs");
    assert_eq!(docs_page.status(), 200);
    assert!(
        docs_page
            .text()
            .await
            .expect("text")
            .contains("openapi.json")
    );

    for name in ["other-app", "doomed"] {
        let (status, v) = gw
            .api(Method::POST, "/api/v1/apps", Some(json!({ "name": name })))
            .await;
        assert_eq!(status, 201, "{v}");
    }
    let mint = |body: Value| {
        let gw = &gw;
        async move {
            let (status, v) = gw.api(Method::POST, "/api/v1/tokens", Some(body)).await;
            assert_eq!(status, 201, "{v}");
            (
                v["data"]["token"].as_str().expect("token").to_owned(),
                v["data"]["id"].as_i64().expect("id"),
            )
        }
    };
    let (other_app, _) = mint(json!({ "name": "b", "scope": "app", "app": "other-app" })).await;
    let (revoked, revoked_id) = mint(json!({ "name": "r", "scope": "global" })).await;
    let (status, _) = gw
        .api(
            Method::DELETE,
            &format!("/api/v1/tokens/{revoked_id}"),
            None,
        )
        .await;
    assert_eq!(status, 204);
    let (expired, _) = mint(json!({ "name": "e", "scope": "global", "ttlSeconds": 1 })).await;
    tokio::time::sleep(Duration::from_millis(1500)).await;

    let mut tokens: std::collections::HashMap<(String, bool, bool), String> = Default::default();
    let mut checked = 0;
    let paths = doc["paths"].as_object().expect("paths");
    for (path, item) in paths {
        for (method, op) in item.as_object().expect("ops") {
            let access = op["x-access"].as_str().expect("x-access");
            let perm = op["x-permission"].as_str();
            // Concrete values; the app-deleting route gets its own app.
            let app = if method == "delete" && path == "/apps/{app}" {
                "doomed"
            } else {
                "live"
            };
            let url = format!(
                "/api/v1{}",
                path.replace("{app}", app)
                    .replace("{room}", "cam1")
                    .replace("{id}", "999999")
                    .replace("{exp}", "4102444800")
                    .replace("{sig}", "k0.00")
            );
            let m = Method::from_bytes(method.to_ascii_uppercase().as_bytes()).expect("method");
            let body = op["requestBody"]["content"]["application/json"]["example"].clone();
            let body = (!body.is_null()).then_some(body);
            let call = |token: Option<String>| {
                let (gw, m, url, body) = (&gw, m.clone(), url.clone(), body.clone());
                async move { gw.api_as(token.as_deref(), m, &url, body).await }
            };
            let what = format!("{method} {path}");
            if access == "public" {
                let (status, v) = call(None).await;
                if path.contains("{sig}") {
                    // Signed media URLs: a made-up signature is refused.
                    assert_eq!((status, code(&v)), (401, "unauthorized"), "{what}: {v}");
                } else {
                    assert!(![401, 403, 405].contains(&status), "{what}: {status}");
                }
                checked += 1;
                continue;
            }
            for (label, token) in [
                ("no token", None),
                ("expired", Some(expired.clone())),
                ("revoked", Some(revoked.clone())),
            ] {
                let (status, v) = call(token).await;
                assert_eq!(
                    (status, code(&v)),
                    (401, "unauthorized"),
                    "{what} {label}: {v}"
                );
            }
            if access == "token" {
                checked += 1;
                continue;
            }
            let perm = perm.expect("guarded routes name a permission");
            let (status, v) = call(Some(other_app.clone())).await;
            assert_eq!(
                (status, code(&v)),
                (403, "permission_denied"),
                "{what} other app: {v}"
            );

            let global = access != "app";
            let scoped = |permissions: Option<Vec<String>>| {
                let mut body = if global {
                    json!({ "name": "m", "scope": "global" })
                } else {
                    json!({ "name": "m", "scope": "app", "app": app })
                };
                if let Some(p) = permissions {
                    body["permissions"] = json!(p);
                }
                body
            };
            let lacking_perms = if perm == "*" {
                // Admin routes: any narrowed token lacks them.
                RESOURCES.iter().map(|r| format!("{r}:*")).collect()
            } else {
                all_but(perm)
            };
            let key = (format!("{perm}-{app}"), global, false);
            if !tokens.contains_key(&key) {
                let (t, _) = mint(scoped(Some(lacking_perms))).await;
                tokens.insert(key.clone(), t);
            }
            let (status, v) = call(tokens.get(&key).cloned()).await;
            assert_eq!(
                (status, code(&v)),
                (403, "permission_denied"),
                "{what} lacking: {v}"
            );
            if perm != "*" {
                let msg = v["error"]["message"].as_str().unwrap_or_default();
                assert!(msg.contains(perm), "{what}: 403 names {perm}: {msg}");
            }

            let right = (format!("{perm}-{app}"), global, true);
            if !tokens.contains_key(&right) {
                let only = (perm != "*").then(|| vec![perm.to_owned()]);
                let (t, _) = mint(scoped(only)).await;
                tokens.insert(right.clone(), t);
            }
            let (status, v) = call(tokens.get(&right).cloned()).await;
            assert!(
                ![401, 403, 405].contains(&status),
                "{what} with only {perm}: {status} {v}"
            );
            // Served by a handler, not the router's fallback.
            assert_ne!(code(&v), "route_not_found", "{what} is routed: {v}");
            checked += 1;
        }
    }
    assert!(checked >= 40, "walked {checked} operations");
    eprintln!("authorization matrix: {checked} operations");
}

#[tokio::test]
async fn bad_bodies_and_paging_are_refused_with_the_field_named_and_nothing_stored() {
    let gw = Gateway::start(&[]);
    let (_, before) = gw.get_json("/api/v1/apps/live/ingress").await;
    for (body, want, field) in [
        (
            json!({ "inputType": "rtmp", "room": "x", "roomm": 1 }),
            "unknown_field",
            Some("roomm"),
        ),
        (
            json!({ "inputType": 5 }),
            "invalid_field",
            Some("inputType"),
        ),
        (json!([1, 2]), "invalid_body", None),
        (json!("text"), "invalid_body", None),
    ] {
        let (status, v) = gw
            .api(
                Method::POST,
                "/api/v1/apps/live/ingress",
                Some(body.clone()),
            )
            .await;
        assert_eq!((status, code(&v)), (400, want), "{body}: {v}");
        assert_eq!(v["error"]["field"].as_str(), field, "{v}");
    }
    // Not JSON, the wrong content type, and an oversized body.
    let raw = |ct: &'static str, body: Vec<u8>| {
        gw.http
            .post(format!("{}/api/v1/apps/live/ingress", gw.base))
            .bearer_auth(camgate_hardware_tests::ADMIN_TOKEN)
            .header("content-type", ct)
            .body(body)
            .send()
    };
    let r = raw("application/json", b"{\"inputType\":".to_vec())
        .await
        .expect("req");
    assert_eq!(r.status(), 400);
    let v: Value = r.json().await.expect("json");
    assert_eq!(code(&v), "invalid_json");
    let r = raw("text/plain", b"{}".to_vec()).await.expect("req");
    assert_eq!(r.status(), 415);
    let mut big = b"{\"room\":\"".to_vec();
    big.extend(std::iter::repeat_n(b'a', 200 * 1024));
    big.extend(b"\"}");
    let r = raw("application/json", big).await.expect("req");
    assert_eq!(r.status(), 413);
    let v: Value = r.json().await.expect("json");
    assert_eq!(code(&v), "payload_too_large");
    for (q, want) in [
        ("limit=0", "invalid_limit"),
        ("limit=501", "invalid_limit"),
        ("offset=-1", "invalid_offset"),
        ("limit=abc", "invalid_limit"),
    ] {
        let (status, v) = gw.get_json(&format!("/api/v1/apps/live/ingress?{q}")).await;
        assert_eq!((status, code(&v)), (400, want), "{q}: {v}");
    }
    let (_, after) = gw.get_json("/api/v1/apps/live/ingress").await;
    assert_eq!(before["total"], after["total"], "nothing stored");
}

#[tokio::test]
async fn app_config_is_patched_validated_and_loaded_from_files() {
    // An app file, read at start.
    let apps_dir = std::env::temp_dir().join(format!("camgate-apps-{}", std::process::id()));
    std::fs::create_dir_all(&apps_dir).expect("dir");
    std::fs::write(
        apps_dir.join("lobby.toml"),
        r#"
name = "lobby"
display_name = "Lobby cameras"
max_concurrent_streams = 3
[features]
chat = true
[webrtc]
layers = [{ name = "high", height = 1080 }, { name = "low", height = 360 }]
[ws_ingest]
max_cameras = 2
max_fps = 5
"#,
    )
    .expect("write");
    let dir = apps_dir.to_str().expect("utf-8").to_owned();
    let gw = Gateway::start(&["--apps-dir", &dir]);
    let (status, app) = gw.get_json("/api/v1/apps/lobby").await;
    assert_eq!(status, 200, "{app}");
    assert_eq!(app["data"]["displayName"], "Lobby cameras");
    assert_eq!(app["data"]["features"]["chat"], true);
    assert_eq!(app["data"]["maxConcurrentStreams"], 3);
    let (_, layers) = gw.get_json("/api/v1/apps/lobby/transcoding/layers").await;
    assert_eq!(layers["data"]["layers"][0]["height"], 1080, "{layers}");
    let (_, cfg) = gw.get_json("/api/v1/apps/lobby/config").await;
    assert_eq!(cfg["data"]["wsIngest"]["maxCameras"], 2, "{cfg}");
    assert_eq!(cfg["data"]["wsIngest"]["maxFrameKb"], 256, "{cfg}");

    // Defaults of an app without a file follow the reference.
    let (_, cfg) = gw.get_json("/api/v1/apps/live/config").await;
    let d = &cfg["data"];
    assert_eq!(d["transcodingEnabled"], false, "{cfg}");
    let heights: Vec<i64> = d["layers"]
        .as_array()
        .expect("layers")
        .iter()
        .filter_map(|l| l["height"].as_i64())
        .collect();
    assert_eq!(heights, [720, 480, 240]);
    assert_eq!(d["wsIngest"]["maxFps"], 15);

    // PATCH: partial; layers replace the ladder; bad values name the field
    // and change nothing.
    let (status, v) = gw
        .api(
            Method::PATCH,
            "/api/v1/apps/live/config",
            Some(json!({ "layers": [{ "name": "only", "height": 480 }], "vodAdaptive": true })),
        )
        .await;
    assert_eq!(status, 200, "{v}");
    assert_eq!(v["data"]["layers"].as_array().map(Vec::len), Some(1));
    assert_eq!(v["data"]["vodAdaptive"], true);
    assert_eq!(v["data"]["adaptive"], true, "untouched keys kept");
    for (body, want) in [
        (
            json!({ "layers": [{ "name": "x", "height": 5000 }] }),
            "layers[0].height",
        ),
        (json!({ "layers": [] }), "layers"),
        (json!({ "hwaccel": "quantum" }), "hwaccel"),
        (
            json!({ "vodRenditions": [{ "height": 720, "bitrateKbps": 1 }] }),
            "vodRenditions[0].bitrateKbps",
        ),
        (json!({ "wsIngest": { "maxFps": 0 } }), "wsIngest.maxFps"),
    ] {
        let (status, v) = gw
            .api(
                Method::PATCH,
                "/api/v1/apps/live/config",
                Some(body.clone()),
            )
            .await;
        assert_eq!((status, code(&v)), (400, "invalid_config"), "{body}: {v}");
        let msg = v["error"]["message"].as_str().unwrap_or_default();
        assert!(msg.starts_with(want), "{body}: {msg}");
    }
    let (status, v) = gw
        .api(
            Method::PATCH,
            "/api/v1/apps/live/config",
            Some(json!({ "wsIngest": { "maxFsp": 3 } })),
        )
        .await;
    assert_eq!((status, code(&v)), (400, "unknown_field"), "{v}");
    assert_eq!(v["error"]["field"], "wsIngest.maxFsp");
    let (_, after) = gw.get_json("/api/v1/apps/live/transcoding/layers").await;
    assert_eq!(after["data"]["layers"][0]["name"], "only", "{after}");

    // Reload: an edited file applies; a broken one is refused, naming the
    // key, and changes nothing.
    std::fs::write(
        apps_dir.join("lobby.toml"),
        "name = \"lobby\"\n[ws_ingest]\nmax_cameras = 7\n",
    )
    .expect("write");
    let (status, v) = gw
        .api(Method::POST, "/api/v1/apps/lobby/reload", None)
        .await;
    assert_eq!(status, 200, "{v}");
    assert_eq!(v["data"]["wsIngest"]["maxCameras"], 7);
    std::fs::write(
        apps_dir.join("lobby.toml"),
        "name = \"lobby\"\n[ws_ingest]\nmax_camera = 9\n",
    )
    .expect("write");
    let (status, v) = gw
        .api(Method::POST, "/api/v1/apps/lobby/reload", None)
        .await;
    assert_eq!((status, code(&v)), (400, "invalid_config"), "{v}");
    assert!(
        v["error"]["message"]
            .as_str()
            .unwrap_or_default()
            .contains("max_camera"),
        "{v}"
    );
    assert!(
        !v["error"]["message"]
            .as_str()
            .unwrap_or_default()
            .contains(&dir),
        "{v}"
    );
    let (_, cfg) = gw.get_json("/api/v1/apps/lobby/config").await;
    assert_eq!(cfg["data"]["wsIngest"]["maxCameras"], 7);

    // camgate refuses to start on a broken app file, naming file and key.
    let data = std::env::temp_dir().join(format!("camgate-apps-data-{}", std::process::id()));
    let out = std::process::Command::new(camgate_hardware_tests::bin("camgate"))
        .args(["serve", "--http", "127.0.0.1:0", "--rtmp", "127.0.0.1:0"])
        .args(["--webrtc-udp", "127.0.0.1:0", "--webrtc-ip", "127.0.0.1"])
        .arg("--data-dir")
        .arg(&data)
        .args(["--apps-dir", &dir])
        .env("CAMGATE_ADMIN_TOKEN", camgate_hardware_tests::ADMIN_TOKEN)
        .output()
        .expect("run camgate");
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("lobby.toml") && err.contains("max_camera"),
        "{err}"
    );
    let _ = std::fs::remove_dir_all(&apps_dir);
    let _ = std::fs::remove_dir_all(&data);
}

#[tokio::test]
async fn chat_and_reactions_are_sent_stored_and_called_back() {
    use hmac::{Hmac, Mac};
    let gw = Gateway::start(&[]);
    let (url, got) = receiver(vec![]).await;
    let minted = gw.mint("talk").await;
    let mut cam = camgate_hardware_tests::spawn_camsim(&minted, "5", "60");
    let stream_id = format!("{}/{}", minted.room, minted.identity);
    let path = format!(
        "/api/v1/apps/live/streams/{}",
        stream_id.replace('/', "%2F")
    );
    let mut live = false;
    for _ in 0..100 {
        let (status, v) = gw.get_json(&path).await;
        if status == 200 && v["data"]["status"] == "active" {
            live = true;
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert!(live, "camera stream is listed");

    // Flags off (the default): the server-side send 404s, as the reference does.
    let send = |body: Value| {
        let (gw, path) = (&gw, format!("{path}/data"));
        async move { gw.api(Method::POST, &path, Some(body)).await }
    };
    let (status, v) = send(json!({ "message": "hi" })).await;
    assert_eq!((status, code(&v)), (404, "feature_disabled"), "{v}");

    let (status, v) = gw
        .api(
            Method::PATCH,
            "/api/v1/apps/live",
            Some(json!({
                "features": { "chat": true, "reactions": true },
                "callbackUrl": url,
                "callbackSecret": "chat-secret",
            })),
        )
        .await;
    assert_eq!(status, 200, "{v}");
    let (status, v) = send(json!({ "topic": "chat", "from": "mod", "message": "Welcome!" })).await;
    assert_eq!(status, 200, "{v}");
    assert_eq!(v["data"]["streamId"], stream_id.as_str());
    let (status, v) = send(json!({ "topic": "reaction", "reaction": "👍" })).await;
    assert_eq!(status, 200, "{v}");
    assert_eq!(v["data"]["from"], "server");
    for (body, want) in [
        (json!({ "topic": "chat" }), "invalid_message"),
        (json!({ "topic": "poll", "message": "x" }), "invalid_topic"),
        (json!({ "message": "x".repeat(2001) }), "invalid_message"),
    ] {
        let (status, v) = send(body.clone()).await;
        assert_eq!((status, code(&v)), (400, want), "{body}: {v}");
    }

    // Stored with the stream, oldest first, readable after it ends.
    let _ = cam.kill();
    let _ = cam.wait();
    let (status, v) = gw.get_json(&format!("{path}/chat")).await;
    assert_eq!(status, 200, "{v}");
    assert_eq!(v["total"], 2, "{v}");
    assert_eq!(v["data"][0]["message"], "Welcome!");
    assert_eq!(v["data"][0]["from"], "mod");
    assert_eq!(v["data"][1]["reaction"], "👍");
    let first = v["data"][0]["id"].as_i64().expect("id");
    let (_, v) = gw.get_json(&format!("{path}/chat?after={first}")).await;
    assert_eq!(v["total"], 1, "{v}");

    // Callbacks: chat_message and reaction, signed.
    for _ in 0..100 {
        if got.lock().expect("lock").len() >= 2 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let got = got.lock().expect("lock");
    let mut events: Vec<(String, Value)> = Vec::new();
    for r in got.iter() {
        let sig = r.header("X-StreamHub-Signature").expect("signature");
        let mut mac = Hmac::<sha2::Sha256>::new_from_slice(b"chat-secret").expect("key");
        mac.update(&r.body);
        let hex: String = mac
            .finalize()
            .into_bytes()
            .iter()
            .map(|b| format!("{b:02x}"))
            .collect();
        assert_eq!(sig, format!("sha256={hex}"));
        let v: Value = serde_json::from_slice(&r.body).expect("json");
        events.push((
            v["event"].as_str().unwrap_or_default().to_owned(),
            v["data"].clone(),
        ));
    }
    let chat = events
        .iter()
        .find(|(e, _)| e == "chat_message")
        .expect("chat_message callback");
    assert_eq!(chat.1["message"], "Welcome!");
    assert_eq!(chat.1["streamId"], stream_id.as_str());
    assert_eq!(chat.1["topic"], "chat");
    let reaction = events
        .iter()
        .find(|(e, _)| e == "reaction")
        .expect("reaction callback");
    assert_eq!(reaction.1["reaction"], "👍");
}
