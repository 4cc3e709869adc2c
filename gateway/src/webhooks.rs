//! Webhooks (reference §4): each app's `callbacks.url` gets a POST per
//! event, signed with `callbacks.secret`.
//!
//! * Envelope: `{id, event, app, room, ts, timestamp, data}`.
//! * Headers: `X-StreamHub-Event`, `X-StreamHub-Delivery` (= `id`),
//!   `X-StreamHub-Timestamp` (= `ts`), and, when the app has a secret,
//!   `X-StreamHub-Signature: sha256=<hex>` — HMAC-SHA256 of the exact body
//!   bytes. The reference's header names are kept so a receiver written for
//!   it verifies camgate's deliveries unchanged.
//! * Up to 3 attempts, waiting 500 ms then 1 s, 10 s timeout each; 5xx, 408,
//!   429 and network errors are retried, other answers are final.
//!
//! Emitting never waits: [`Webhooks::emit`] queues the event (bounded;
//! when full the event is dropped and counted) and a worker task delivers
//! it, at most [`MAX_IN_FLIGHT`] deliveries at a time. Every delivery's
//! outcome is written to a bounded log (`webhook_deliveries`, the last
//! [`KEEP_DELIVERIES`] per app) that `GET /api/v1/apps/{app}/webhooks/deliveries`
//! shows, and counted for `/metrics`.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use hmac::{Hmac, Mac};
use serde_json::{Value, json};
use sha2::Sha256;
use tokio::sync::{Semaphore, mpsc};
use tracing::{debug, warn};

use crate::auth::now_rfc3339;
use crate::store::Db;

/// Events waiting for delivery before new ones are dropped.
const QUEUE: usize = 1024;
/// Deliveries running at once.
pub const MAX_IN_FLIGHT: usize = 16;
/// Delivery log rows kept per app.
pub const KEEP_DELIVERIES: i64 = 1000;
/// Attempts per delivery.
const ATTEMPTS: u32 = 3;
/// Timeout of one attempt.
const ATTEMPT_TIMEOUT: Duration = Duration::from_secs(10);

/// One event to deliver.
#[derive(Debug)]
struct Event {
    app: String,
    event: &'static str,
    data: Value,
}

/// Delivery counters (for `/metrics`).
#[derive(Debug, Default)]
pub struct Counters {
    /// Acknowledged with a 2xx.
    pub delivered: AtomicU64,
    /// Given up on (rejected, or out of attempts).
    pub failed: AtomicU64,
    /// Not queued: the queue was full.
    pub dropped: AtomicU64,
}

/// The webhook dispatcher.
#[derive(Debug)]
pub struct Webhooks {
    tx: mpsc::Sender<Event>,
    /// Delivery counters.
    pub counters: Arc<Counters>,
}

impl Webhooks {
    /// Starts the worker.
    pub fn start(db: Db) -> Webhooks {
        let (tx, rx) = mpsc::channel(QUEUE);
        let counters = Arc::new(Counters::default());
        tokio::spawn(worker(db, rx, counters.clone()));
        Webhooks { tx, counters }
    }

    /// Queues `event` of app `app`; never waits. `data.room` becomes the
    /// envelope's `room`.
    pub fn emit(&self, app: &str, event: &'static str, data: Value) {
        let e = Event {
            app: app.to_owned(),
            event,
            data,
        };
        if self.tx.try_send(e).is_err() {
            self.counters.dropped.fetch_add(1, Ordering::Relaxed);
            debug!(event, "webhook queue full; event dropped");
        }
    }
}

/// Who publishes a stream, for `stream_started` / `stream_ended`.
#[derive(Debug, Clone, Copy)]
pub enum Publisher<'a> {
    /// A participant (WebRTC/WHIP, ws-mjpeg cameras): its identity.
    Participant(&'a str),
    /// An ingress (RTMP, RTSP/HTTP pull): its id.
    Ingress(&'a str),
}

impl Webhooks {
    /// `stream_started` (reference §4.5): `streamId`, `room`, `type`, then
    /// `participant` or `ingressId`. Cameras (ws-mjpeg and pulled MJPEG or
    /// RTSP) also fire `camera_online`.
    pub fn stream_started(
        &self,
        app: &str,
        room: &str,
        stream_id: &str,
        kind: camgate_sfu::SourceKind,
        who: Publisher<'_>,
    ) {
        let data = stream_data(room, stream_id, kind, who, None);
        if is_camera(kind) {
            self.emit(app, "camera_online", data.clone());
        }
        self.emit(app, "stream_started", data);
    }

    /// `stream_ended`, with an optional `reason` (e.g.
    /// `unauthorized_rtmp_password`); cameras also fire `camera_offline`.
    pub fn stream_ended(
        &self,
        app: &str,
        room: &str,
        stream_id: &str,
        kind: camgate_sfu::SourceKind,
        who: Publisher<'_>,
        reason: Option<&str>,
    ) {
        let data = stream_data(room, stream_id, kind, who, reason);
        if is_camera(kind) {
            self.emit(app, "camera_offline", data.clone());
        }
        self.emit(app, "stream_ended", data);
    }
}

fn is_camera(kind: camgate_sfu::SourceKind) -> bool {
    use camgate_sfu::SourceKind::*;
    matches!(kind, WsMjpeg | Rtsp | RtspJpeg | HttpJpeg)
}

fn stream_data(
    room: &str,
    stream_id: &str,
    kind: camgate_sfu::SourceKind,
    who: Publisher<'_>,
    reason: Option<&str>,
) -> Value {
    let mut data = json!({ "streamId": stream_id, "room": room, "type": kind.as_str() });
    match who {
        Publisher::Participant(p) => data["participant"] = json!(p),
        Publisher::Ingress(i) => data["ingressId"] = json!(i),
    }
    if let Some(r) = reason {
        data["reason"] = json!(r);
    }
    data
}

async fn worker(db: Db, mut rx: mpsc::Receiver<Event>, counters: Arc<Counters>) {
    let Ok(client) = reqwest::Client::builder()
        .timeout(ATTEMPT_TIMEOUT)
        .user_agent(concat!(
            "camgate/",
            env!("CARGO_PKG_VERSION"),
            " (callbacks)"
        ))
        .build()
    else {
        warn!("no HTTP client: webhooks disabled");
        return;
    };
    let slots = Arc::new(Semaphore::new(MAX_IN_FLIGHT));
    while let Some(e) = rx.recv().await {
        let Ok(Some(app)) = db.app_by_name(&e.app).await else {
            continue;
        };
        let url = app
            .setting("callbacks", "url")
            .and_then(Value::as_str)
            .unwrap_or_default()
            .to_owned();
        if url.is_empty() {
            continue;
        }
        let secret = app
            .setting("callbacks", "secret")
            .and_then(Value::as_str)
            .filter(|s| !s.is_empty())
            .map(str::to_owned);
        let Ok(permit) = slots.clone().acquire_owned().await else {
            return;
        };
        let (client, db, counters) = (client.clone(), db.clone(), counters.clone());
        tokio::spawn(async move {
            let _permit = permit;
            deliver(&client, &db, &counters, app.id, &e, &url, secret.as_deref()).await;
        });
    }
}

/// The body and headers of one delivery.
pub fn envelope(app: &str, event: &str, data: &Value, id: &str, ts: &str) -> Vec<u8> {
    let body = json!({
        "id": id,
        "event": event,
        "app": app,
        "room": data.get("room").cloned().unwrap_or(Value::Null),
        "ts": ts,
        "timestamp": ts,
        "data": data,
    });
    serde_json::to_vec(&body).unwrap_or_default()
}

/// `sha256=<hex>` of HMAC-SHA256(`secret`, `body`).
pub fn signature(secret: &str, body: &[u8]) -> String {
    let Ok(mut mac) = Hmac::<Sha256>::new_from_slice(secret.as_bytes()) else {
        return String::new();
    };
    mac.update(body);
    let digest = mac.finalize().into_bytes();
    let hex: String = digest.iter().map(|b| format!("{b:02x}")).collect();
    format!("sha256={hex}")
}

/// A random UUID v4 (delivery ids).
fn uuid() -> String {
    let mut b: [u8; 16] = rand::random();
    b[6] = (b[6] & 0x0f) | 0x40;
    b[8] = (b[8] & 0x3f) | 0x80;
    let h: String = b.iter().map(|x| format!("{x:02x}")).collect();
    format!(
        "{}-{}-{}-{}-{}",
        &h[0..8],
        &h[8..12],
        &h[12..16],
        &h[16..20],
        &h[20..32]
    )
}

async fn deliver(
    client: &reqwest::Client,
    db: &Db,
    counters: &Counters,
    app_id: i64,
    e: &Event,
    url: &str,
    secret: Option<&str>,
) {
    let id = uuid();
    let ts = now_rfc3339();
    let body = envelope(&e.app, e.event, &e.data, &id, &ts);
    let signature = secret.map(|s| signature(s, &body));
    let mut attempts = 0;
    let mut outcome: (bool, Option<u16>, Option<String>) = (false, None, None);
    while attempts < ATTEMPTS {
        if attempts > 0 {
            tokio::time::sleep(Duration::from_millis(500 << (attempts - 1))).await;
        }
        attempts += 1;
        let mut req = client
            .post(url)
            .header("content-type", "application/json")
            .header("x-streamhub-event", e.event)
            .header("x-streamhub-delivery", &id)
            .header("x-streamhub-timestamp", &ts)
            .body(body.clone());
        if let Some(s) = &signature {
            req = req.header("x-streamhub-signature", s);
        }
        match req.send().await {
            Ok(r) if r.status().is_success() => {
                outcome = (true, Some(r.status().as_u16()), None);
                break;
            }
            Ok(r) => {
                let status = r.status().as_u16();
                outcome = (false, Some(status), Some(format!("HTTP {status}")));
                if !(status >= 500 || status == 408 || status == 429) {
                    break;
                }
            }
            Err(err) => {
                let why = if err.is_timeout() {
                    "timeout".to_owned()
                } else if err.is_connect() {
                    "connection failed".to_owned()
                } else {
                    "request failed".to_owned()
                };
                outcome = (false, None, Some(why));
            }
        }
    }
    let (ok, status, error) = outcome;
    if ok {
        counters.delivered.fetch_add(1, Ordering::Relaxed);
    } else {
        counters.failed.fetch_add(1, Ordering::Relaxed);
        warn!(app = %e.app, event = e.event, delivery = %id, error = error.as_deref().unwrap_or(""), attempts, "webhook not delivered");
    }
    let row = crate::store::DeliveryRow {
        id,
        app_id,
        event: e.event.to_owned(),
        status: if ok { "delivered" } else { "failed" }.to_owned(),
        attempts: i64::from(attempts),
        http_status: status.map(i64::from),
        error,
        created_at: ts,
    };
    if let Err(err) = db.insert_delivery(&row, KEEP_DELIVERIES).await {
        debug!(error = %err, "delivery not logged");
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_signature_is_hmac_sha256_hex_of_the_body() {
        // RFC 4231 test case 2.
        assert_eq!(
            signature("Jefe", b"what do ya want for nothing?"),
            "sha256=5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843"
        );
        let id = uuid();
        assert_eq!(id.len(), 36);
        assert_eq!(&id[14..15], "4");
        let body = envelope(
            "live",
            "stream_started",
            &json!({ "room": "live-a" }),
            &id,
            "t",
        );
        let v: Value = serde_json::from_slice(&body).expect("json");
        assert_eq!(v["room"], "live-a");
        assert_eq!(v["timestamp"], v["ts"]);
    }
}
