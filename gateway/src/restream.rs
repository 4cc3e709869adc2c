//! Restream: forward a live stream to external RTMP destinations (YouTube,
//! Twitch, a custom `rtmp://` URL), with reconnects.
//!
//! A restream follows the room's HLS packager tap: every H.264 access unit
//! and AAC frame any source feeds it (RTMP, RTSP, WHIP, cameras through
//! their transcoder), with its repaired, increasing time. It waits for a
//! keyframe, sends the AVC and AAC sequence headers (again whenever the
//! stream's configuration changes), then the frames as FLV tags over an
//! rml_rtmp client session. A destination that refuses or drops the
//! connection is retried with backoff (1 s doubling to 30 s) and reported
//! as `retrying` with its last error; the stream ending stops it
//! (`completed`). URLs and keys are masked in every answer, callback and
//! log line.
//!
//! `rtmps://` (Facebook's preset) runs the same session over TLS (rustls
//! with the Mozilla roots of webpki-roots, plus an operator's own CA file,
//! `restream.ca_file`).

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicU32, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use bytes::Bytes;
use rml_rtmp::handshake::{Handshake, HandshakeProcessResult, PeerType};
use rml_rtmp::sessions::{
    ClientSession, ClientSessionConfig, ClientSessionEvent, ClientSessionResult, PublishRequestType,
};
use rml_rtmp::time::RtmpTimestamp;
use serde_json::json;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio::sync::{broadcast, watch};
use tracing::{info, warn};

use crate::hls::packager::TapSample;
use crate::server::SharedState;

/// An RTMP destination.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RtmpUrl {
    /// `rtmps://`: RTMP over TLS.
    pub tls: bool,
    /// Host name or address.
    pub host: String,
    /// Port (1935 when not given).
    pub port: u16,
    /// The RTMP application (path before the key).
    pub app: String,
    /// The stream key (last path segment, with any query).
    pub key: String,
}

impl RtmpUrl {
    /// Parses `rtmp[s]://host[:port]/app[/more]/key`.
    pub fn parse(url: &str) -> Result<RtmpUrl, &'static str> {
        let (tls, rest) = match url.strip_prefix("rtmps://") {
            Some(rest) => (true, rest),
            None => (
                false,
                url.strip_prefix("rtmp://")
                    .ok_or("the URL must start with rtmp:// or rtmps://")?,
            ),
        };
        let (authority, path) = rest.split_once('/').ok_or("the URL has no application")?;
        let (host, port) = match authority.rsplit_once(':') {
            Some((h, p)) if !h.contains(']') || h.ends_with(']') => {
                (h, p.parse().map_err(|_| "the URL's port is not a number")?)
            }
            _ => (authority, if tls { 443 } else { 1935 }),
        };
        if host.is_empty() || authority.contains('@') {
            return Err("the URL needs a host (and no credentials)");
        }
        let (app, key) = path
            .rsplit_once('/')
            .ok_or("the URL needs /app/streamKey")?;
        if app.is_empty() || key.is_empty() {
            return Err("the URL needs /app/streamKey");
        }
        Ok(RtmpUrl {
            tls,
            host: host.trim_matches(['[', ']']).to_owned(),
            port,
            app: app.to_owned(),
            key: key.to_owned(),
        })
    }

    /// The URL with its key masked (`rtmp://host/app/****abcd`).
    pub fn masked(&self) -> String {
        let tail: String = self
            .key
            .chars()
            .rev()
            .take(4)
            .collect::<Vec<_>>()
            .into_iter()
            .rev()
            .collect();
        let (scheme, default) = if self.tls {
            ("rtmps", 443)
        } else {
            ("rtmp", 1935)
        };
        let port = if self.port == default {
            String::new()
        } else {
            format!(":{}", self.port)
        };
        format!("{scheme}://{}{port}/{}/****{tail}", self.host, self.app)
    }
}

/// An app's restream quota, GB per month (0 = unlimited).
pub fn egress_limit_gb(app: &crate::store::App) -> f64 {
    app.setting("quotas", "max_egress_gb_month")
        .and_then(serde_json::Value::as_f64)
        .unwrap_or(0.0)
}

/// The calendar month (UTC) egress is counted in: `YYYY-MM`.
pub fn month() -> String {
    let t = time::OffsetDateTime::now_utc();
    format!("{:04}-{:02}", t.year(), u8::from(t.month()))
}

/// The preset ingest URL of a platform, for a key.
pub fn preset(platform: &str, key: &str) -> Option<String> {
    let base = match platform {
        "youtube" => "rtmp://a.rtmp.youtube.com/live2",
        "twitch" => "rtmp://live.twitch.tv/app",
        "facebook" => "rtmps://live-api-s.facebook.com:443/rtmp",
        _ => return None,
    };
    Some(format!("{base}/{key}"))
}

/// FLV video tag body: the AVC sequence header of an SPS and a PPS.
pub fn avc_sequence_header(sps: &[u8], pps: &[u8]) -> Vec<u8> {
    let mut v = vec![0x17, 0x00, 0, 0, 0];
    v.extend([
        1,
        sps.get(1).copied().unwrap_or(0x42),
        sps.get(2).copied().unwrap_or(0),
        sps.get(3).copied().unwrap_or(0x1f),
    ]);
    v.push(0xff); // 4-byte NAL lengths
    v.push(0xe1); // one SPS
    v.extend((sps.len() as u16).to_be_bytes());
    v.extend(sps);
    v.push(1); // one PPS
    v.extend((pps.len() as u16).to_be_bytes());
    v.extend(pps);
    v
}

/// FLV video tag body of one access unit (Annex B in, length-prefixed out).
pub fn avc_frame(keyframe: bool, cts_ms: i32, annex_b: &[u8]) -> Vec<u8> {
    let cts = cts_ms.clamp(-(1 << 23), (1 << 23) - 1);
    let mut v = Vec::with_capacity(annex_b.len() + 16);
    v.push(if keyframe { 0x17 } else { 0x27 });
    v.push(0x01);
    v.extend(&cts.to_be_bytes()[1..]);
    for nal in camgate_protocols::h264::split_annex_b(annex_b) {
        v.extend((nal.len() as u32).to_be_bytes());
        v.extend(nal);
    }
    v
}

/// FLV audio tag body: the AAC sequence header (an AudioSpecificConfig).
pub fn aac_sequence_header(asc: &[u8]) -> Vec<u8> {
    let mut v = vec![0xaf, 0x00];
    v.extend(asc);
    v
}

/// FLV audio tag body of one raw AAC frame.
pub fn aac_frame(frame: &[u8]) -> Vec<u8> {
    let mut v = vec![0xaf, 0x01];
    v.extend(frame);
    v
}

/// A byte stream an RTMP session runs on: TCP, or TLS over TCP.
trait Io: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin + Send {}
impl<T: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin + Send> Io for T {}

/// The TLS client of `rtmps://`: the Mozilla roots, plus the certificates of
/// `ca_file` (PEM) when an operator gives one.
pub fn tls_config(
    ca_file: Option<&std::path::Path>,
) -> Result<tokio_rustls::rustls::ClientConfig, String> {
    use tokio_rustls::rustls;
    use tokio_rustls::rustls::pki_types::CertificateDer;
    use tokio_rustls::rustls::pki_types::pem::PemObject;
    let mut roots = rustls::RootCertStore::empty();
    roots.extend(webpki_roots::TLS_SERVER_ROOTS.iter().cloned());
    if let Some(path) = ca_file {
        let certs = CertificateDer::pem_file_iter(path)
            .map_err(|e| format!("restream CA file {}: {e}", path.display()))?;
        for cert in certs {
            let cert = cert.map_err(|e| format!("restream CA file {}: {e}", path.display()))?;
            roots
                .add(cert)
                .map_err(|e| format!("restream CA file {}: {e}", path.display()))?;
        }
    }
    Ok(rustls::ClientConfig::builder()
        .with_root_certificates(roots)
        .with_no_client_auth())
}

/// An RTMP client session that publishes.
pub struct Publisher {
    session: ClientSession,
    writer: tokio::io::WriteHalf<Box<dyn Io>>,
    /// Bytes written to the socket.
    pub sent: u64,
}

impl std::fmt::Debug for Publisher {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Publisher")
            .field("sent", &self.sent)
            .finish()
    }
}

async fn apply(
    socket: &mut (impl tokio::io::AsyncWrite + Unpin),
    results: Vec<ClientSessionResult>,
    events: &mut Vec<ClientSessionEvent>,
) -> std::io::Result<()> {
    for r in results {
        match r {
            ClientSessionResult::OutboundResponse(p) => socket.write_all(&p.bytes).await?,
            ClientSessionResult::RaisedEvent(e) => events.push(e),
            ClientSessionResult::UnhandleableMessageReceived(_) => {}
        }
    }
    Ok(())
}

impl Publisher {
    /// Connects, shakes hands, and asks to publish `url.key` in `url.app`;
    /// fails with a plain-words error (never containing the key). `tls` is
    /// the client configuration of `rtmps://` destinations.
    pub async fn connect(
        url: &RtmpUrl,
        tls: Option<Arc<tokio_rustls::rustls::ClientConfig>>,
        timeout: Duration,
    ) -> Result<Publisher, String> {
        tokio::time::timeout(timeout, Self::connect_inner(url, tls))
            .await
            .map_err(|_| "the destination did not answer in time".to_owned())?
    }

    async fn connect_inner(
        url: &RtmpUrl,
        tls: Option<Arc<tokio_rustls::rustls::ClientConfig>>,
    ) -> Result<Publisher, String> {
        let io = |e: std::io::Error| format!("connection: {}", e.kind());
        let addr = tokio::net::lookup_host((url.host.as_str(), url.port))
            .await
            .map_err(|_| "the destination's host does not resolve".to_owned())?
            .next()
            .ok_or("the destination's host does not resolve")?;
        let tcp = TcpStream::connect::<SocketAddr>(addr)
            .await
            .map_err(|e| format!("unreachable ({})", e.kind()))?;
        tcp.set_nodelay(true).ok();
        let mut socket: Box<dyn Io> = if url.tls {
            let config = tls.ok_or("rtmps:// needs a TLS configuration")?;
            let name = tokio_rustls::rustls::pki_types::ServerName::try_from(url.host.clone())
                .map_err(|_| "the destination's host is not a valid TLS name".to_owned())?;
            let stream = tokio_rustls::TlsConnector::from(config)
                .connect(name, tcp)
                .await
                .map_err(|e| format!("TLS: {e}"))?;
            Box::new(stream)
        } else {
            Box::new(tcp)
        };
        let mut hs = Handshake::new(PeerType::Client);
        let p0p1 = hs
            .generate_outbound_p0_and_p1()
            .map_err(|e| format!("handshake: {e:?}"))?;
        socket.write_all(&p0p1).await.map_err(io)?;
        let mut buf = vec![0u8; 64 * 1024];
        let rest = loop {
            let n = socket.read(&mut buf).await.map_err(io)?;
            if n == 0 {
                return Err("closed during the handshake".into());
            }
            match hs
                .process_bytes(&buf[..n])
                .map_err(|e| format!("handshake: {e:?}"))?
            {
                HandshakeProcessResult::InProgress { response_bytes } => {
                    socket.write_all(&response_bytes).await.map_err(io)?
                }
                HandshakeProcessResult::Completed {
                    response_bytes,
                    remaining_bytes,
                } => {
                    socket.write_all(&response_bytes).await.map_err(io)?;
                    break remaining_bytes;
                }
            }
        };
        let mut config = ClientSessionConfig::new();
        config.tc_url = Some(format!("rtmp://{}:{}/{}", url.host, url.port, url.app));
        config.chunk_size = 4096;
        let (mut session, initial) =
            ClientSession::new(config).map_err(|e| format!("session: {e:?}"))?;
        let mut events = Vec::new();
        apply(&mut socket, initial, &mut events).await.map_err(io)?;
        let r = session
            .request_connection(url.app.clone())
            .map_err(|e| format!("connect: {e:?}"))?;
        apply(&mut socket, vec![r], &mut events).await.map_err(io)?;
        let mut pending = rest;
        let mut asked = false;
        loop {
            if !pending.is_empty() {
                let r = session
                    .handle_input(&pending)
                    .map_err(|e| format!("protocol: {e:?}"))?;
                apply(&mut socket, r, &mut events).await.map_err(io)?;
                pending.clear();
            }
            let mut publishing = false;
            let raised = std::mem::take(&mut events);
            for e in raised {
                match e {
                    ClientSessionEvent::ConnectionRequestAccepted if !asked => {
                        asked = true;
                        let r = session
                            .request_publishing(url.key.clone(), PublishRequestType::Live)
                            .map_err(|e| format!("publish: {e:?}"))?;
                        apply(&mut socket, vec![r], &mut events).await.map_err(io)?;
                    }
                    ClientSessionEvent::PublishRequestAccepted => publishing = true,
                    ClientSessionEvent::ConnectionRequestRejected { .. } => {
                        return Err("the destination refused the connection".into());
                    }
                    _ => {}
                }
            }
            if publishing {
                break;
            }
            let n = socket.read(&mut buf).await.map_err(io)?;
            if n == 0 {
                return Err("the destination refused to publish (wrong key?)".into());
            }
            pending.extend_from_slice(&buf[..n]);
        }
        let (mut reader, writer) = tokio::io::split(socket);
        // What the destination sends from now on (acks, pings) is read
        // and dropped so its window never blocks it.
        tokio::spawn(async move {
            let mut b = vec![0u8; 16 * 1024];
            while matches!(reader.read(&mut b).await, Ok(n) if n > 0) {}
        });
        Ok(Publisher {
            session,
            writer,
            sent: 0,
        })
    }

    /// Sends one FLV video tag body at `ms`.
    pub async fn video(&mut self, data: Vec<u8>, ms: u32) -> Result<(), String> {
        let r = self
            .session
            .publish_video_data(Bytes::from(data), RtmpTimestamp::new(ms), false)
            .map_err(|e| format!("protocol: {e:?}"))?;
        self.write(r).await
    }

    /// Sends one FLV audio tag body at `ms`.
    pub async fn audio(&mut self, data: Vec<u8>, ms: u32) -> Result<(), String> {
        let r = self
            .session
            .publish_audio_data(Bytes::from(data), RtmpTimestamp::new(ms), false)
            .map_err(|e| format!("protocol: {e:?}"))?;
        self.write(r).await
    }

    async fn write(&mut self, r: ClientSessionResult) -> Result<(), String> {
        if let ClientSessionResult::OutboundResponse(p) = r {
            self.writer
                .write_all(&p.bytes)
                .await
                .map_err(|e| format!("connection lost ({})", e.kind()))?;
            self.sent += p.bytes.len() as u64;
        }
        Ok(())
    }
}

/// One destination's live state.
#[derive(Debug)]
pub struct Target {
    /// `EG_…`.
    pub egress_id: String,
    /// `RT_…`.
    pub target_id: String,
    /// App id.
    pub app_id: i64,
    /// App name.
    pub app: String,
    /// Room.
    pub room: String,
    /// `<room>/<identity>`.
    pub stream_id: String,
    /// Label.
    pub name: String,
    /// `youtube`, `twitch`, `facebook`, `custom`.
    pub platform: String,
    /// Masked URL.
    pub url: String,
    /// When it was asked for.
    pub created_at: String,
    status: Mutex<(&'static str, Option<String>)>,
    retries: AtomicU32,
    bytes: AtomicU64,
    stop: watch::Sender<bool>,
}

impl Target {
    /// `starting`, `active`, `retrying`.
    pub fn status(&self) -> (&'static str, Option<String>) {
        self.status
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .clone()
    }

    fn set(&self, status: &'static str, error: Option<String>) {
        *self.status.lock().unwrap_or_else(|e| e.into_inner()) = (status, error);
    }

    /// The API shape.
    pub fn info(&self) -> serde_json::Value {
        let (status, error) = self.status();
        json!({
            "egressId": self.egress_id,
            "targetId": self.target_id,
            "streamId": self.stream_id,
            "room": self.room,
            "name": self.name,
            "platform": self.platform,
            "url": self.url,
            "status": status,
            "error": error,
            "retries": self.retries.load(Ordering::Relaxed),
            "bytesSent": self.bytes.load(Ordering::Relaxed),
            "createdAt": self.created_at,
        })
    }

    fn event(&self) -> serde_json::Value {
        json!({
            "app": self.app,
            "room": self.room,
            "streamId": self.stream_id,
            "targetId": self.target_id,
            "name": self.name,
            "platform": self.platform,
            "url": self.url,
            "egressId": self.egress_id,
        })
    }
}

/// The restreams running, by egress id.
#[derive(Debug, Default)]
pub struct Restreams {
    targets: Mutex<HashMap<String, Arc<Target>>>,
}

impl Restreams {
    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<String, Arc<Target>>> {
        self.targets.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// A stream's destinations.
    pub fn of_stream(&self, app_id: i64, stream_id: &str) -> Vec<Arc<Target>> {
        let mut v: Vec<_> = self
            .lock()
            .values()
            .filter(|t| t.app_id == app_id && t.stream_id == stream_id)
            .cloned()
            .collect();
        v.sort_by(|a, b| a.created_at.cmp(&b.created_at));
        v
    }

    /// Stops one destination; false when there is none.
    pub fn stop(&self, app_id: i64, stream_id: &str, egress_id: &str) -> bool {
        self.lock()
            .get(egress_id)
            .filter(|t| t.app_id == app_id && t.stream_id == stream_id)
            .map(|t| t.stop.send(true).is_ok())
            .unwrap_or(false)
    }

    /// Destinations of an app running now.
    pub fn count_app(&self, app_id: i64) -> usize {
        self.lock().values().filter(|t| t.app_id == app_id).count()
    }
}

/// What a new destination is.
pub struct NewTarget {
    /// App id and name.
    pub app: (i64, String),
    /// Room.
    pub room: String,
    /// `<room>/<identity>`.
    pub stream_id: String,
    /// Label.
    pub name: String,
    /// Platform.
    pub platform: String,
    /// The destination.
    pub url: RtmpUrl,
    /// Called every second while the restream runs: keeps an on-demand
    /// source (a camera's transcoder) producing.
    pub keep_alive: Box<dyn Fn() + Send + Sync>,
}

/// Starts forwarding a stream's HLS tap to a destination.
pub fn start(state: &SharedState, stream: Arc<crate::hls::Stream>, t: NewTarget) -> Arc<Target> {
    let (stop, stopped) = watch::channel(false);
    let target = Arc::new(Target {
        egress_id: crate::auth::random_id("EG_", 8),
        target_id: crate::auth::random_id("RT_", 6),
        app_id: t.app.0,
        app: t.app.1,
        room: t.room,
        stream_id: t.stream_id,
        name: t.name,
        platform: t.platform,
        url: t.url.masked(),
        created_at: crate::auth::now_rfc3339(),
        status: Mutex::new(("starting", None)),
        retries: AtomicU32::new(0),
        bytes: AtomicU64::new(0),
        stop,
    });
    state
        .restreams
        .lock()
        .insert(target.egress_id.clone(), target.clone());
    tokio::spawn(run(
        state.clone(),
        stream,
        target.clone(),
        t.url,
        t.keep_alive,
        stopped,
    ));
    target
}

enum Ended {
    Stopped,
    Completed,
    Shutdown,
    Quota(String),
    Lost(String),
}

async fn run(
    state: SharedState,
    stream: Arc<crate::hls::Stream>,
    target: Arc<Target>,
    url: RtmpUrl,
    keep_alive: Box<dyn Fn() + Send + Sync>,
    mut stopped: watch::Receiver<bool>,
) {
    let mut backoff = Duration::from_secs(1);
    let mut announced = false;
    let mut shutdown = state.shutdown.clone();
    let reason = loop {
        keep_alive();
        if stream.with(|p| p.ended()) {
            break "completed";
        }
        let Some(rx) = stream.subscribe() else {
            break "aborted";
        };
        let tls = url.tls.then(|| state.restream_tls.clone());
        let ended = match Publisher::connect(&url, tls, Duration::from_secs(10)).await {
            Ok(p) => {
                target.set("active", None);
                backoff = Duration::from_secs(1);
                info!(app = %target.app, egress = %target.egress_id, url = %target.url, "restream connected");
                if !announced {
                    announced = true;
                    let mut e = target.event();
                    e["status"] = json!("active");
                    state.webhooks.emit(&target.app, "restream_started", e);
                }
                forward(
                    &state,
                    &stream,
                    rx,
                    p,
                    &target,
                    &*keep_alive,
                    &mut stopped,
                    &mut shutdown,
                )
                .await
            }
            Err(e) => Ended::Lost(e),
        };
        match ended {
            Ended::Stopped => break "stopped_by_user",
            Ended::Completed => break "completed",
            Ended::Shutdown => break "aborted",
            Ended::Quota(error) => {
                warn!(app = %target.app, egress = %target.egress_id, %error, "restream stopped");
                let mut e = target.event();
                e["error"] = json!(error);
                e["retries"] = json!(target.retries.load(Ordering::Relaxed));
                state.webhooks.emit(&target.app, "restream_failed", e);
                break "aborted";
            }
            Ended::Lost(error) => {
                let retries = target.retries.fetch_add(1, Ordering::Relaxed) + 1;
                warn!(app = %target.app, egress = %target.egress_id, url = %target.url, %error, retries, "restream failed; retrying");
                target.set("retrying", Some(error.clone()));
                let mut e = target.event();
                e["error"] = json!(error);
                e["retries"] = json!(retries);
                state.webhooks.emit(&target.app, "restream_failed", e);
            }
        }
        tokio::select! {
            _ = tokio::time::sleep(backoff) => {}
            _ = stopped.changed() => break "stopped_by_user",
            _ = shutdown.changed() => break "aborted",
        }
        backoff = (backoff * 2).min(Duration::from_secs(30));
    };
    state.restreams.lock().remove(&target.egress_id);
    info!(app = %target.app, egress = %target.egress_id, reason, "restream stopped");
    let mut e = target.event();
    e["reason"] = json!(reason);
    state.webhooks.emit(&target.app, "restream_stopped", e);
}

/// Forwards tapped samples until the destination fails, the stream ends
/// or the restream is stopped.
/// Adds what was sent since the last call to the app's month; ends the
/// restream when the app's egress quota is used up.
async fn count_egress(
    state: &SharedState,
    target: &Target,
    counted: &mut u64,
    sent: u64,
) -> Option<Ended> {
    let delta = sent.saturating_sub(*counted);
    *counted = sent;
    let month = month();
    if delta > 0
        && let Err(e) = state
            .db
            .add_egress(target.app_id, &month, delta as i64)
            .await
    {
        warn!(error = %e, "could not count restream bytes");
    }
    let app = state.db.app_by_id(target.app_id).await.ok()??;
    let limit = egress_limit_gb(&app);
    let used = state.db.egress(target.app_id, &month).await.ok()?;
    (limit > 0.0 && used as f64 >= limit * 1e9).then(|| {
        Ended::Quota(format!(
            "egress quota used up: {:.3} GB of {limit} GB this month",
            used as f64 / 1e9
        ))
    })
}

#[allow(clippy::too_many_arguments)]
async fn forward(
    state: &SharedState,
    stream: &crate::hls::Stream,
    mut rx: broadcast::Receiver<TapSample>,
    mut p: Publisher,
    target: &Target,
    keep_alive: &(dyn Fn() + Send + Sync),
    stopped: &mut watch::Receiver<bool>,
    shutdown: &mut watch::Receiver<bool>,
) -> Ended {
    let mut sent_video: Option<crate::hls::mux::VideoParams> = None;
    let mut sent_audio: Option<camgate_protocols::flv::AacConfig> = None;
    let mut base: Option<u64> = None;
    let mut synced = false;
    let mut counted = 0u64;
    let mut check = tokio::time::interval(Duration::from_secs(1));
    loop {
        let sample = tokio::select! {
            _ = stopped.changed() => return Ended::Stopped,
            _ = shutdown.changed() => return Ended::Shutdown,
            _ = check.tick() => {
                keep_alive();
                if stream.with(|p| p.ended()) {
                    return Ended::Completed;
                }
                if let Some(over) = count_egress(state, target, &mut counted, p.sent).await {
                    return over;
                }
                continue;
            }
            s = rx.recv() => s,
        };
        let sample = match sample {
            Ok(s) => s,
            // Fell behind: resume at the next keyframe.
            Err(broadcast::error::RecvError::Lagged(_)) => {
                synced = false;
                continue;
            }
            Err(broadcast::error::RecvError::Closed) => return Ended::Completed,
        };
        let r = match sample {
            TapSample::Video {
                dts_ms,
                cts_ms,
                keyframe,
                annex_b,
            } => {
                if !synced && !keyframe {
                    continue;
                }
                synced = true;
                let base = *base.get_or_insert(dts_ms);
                let ms = dts_ms.saturating_sub(base) as u32;
                if keyframe {
                    let (video, audio) = stream.with(|p| (p.video_params(), p.audio_config()));
                    if video != sent_video
                        && let Some(v) = &video
                    {
                        if let Err(e) = p.video(avc_sequence_header(&v.sps, &v.pps), ms).await {
                            return Ended::Lost(e);
                        }
                        sent_video = video;
                    }
                    if audio != sent_audio
                        && let Some(a) = &audio
                    {
                        if let Err(e) = p.audio(aac_sequence_header(&a.raw), ms).await {
                            return Ended::Lost(e);
                        }
                        sent_audio = audio;
                    }
                }
                p.video(avc_frame(keyframe, cts_ms, &annex_b), ms).await
            }
            TapSample::Audio { dts_ms, frame } => {
                let Some(base) = base.filter(|_| synced && sent_audio.is_some()) else {
                    continue;
                };
                let ms = dts_ms.saturating_sub(base) as u32;
                p.audio(aac_frame(&frame), ms).await
            }
        };
        if let Err(e) = r {
            return Ended::Lost(e);
        }
        target.bytes.store(p.sent, Ordering::Relaxed);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn urls_parse_and_mask() {
        let u = RtmpUrl::parse("rtmp://a.rtmp.youtube.com/live2/abcd-efgh-ijkl").expect("parses");
        assert_eq!(
            (u.host.as_str(), u.port, u.app.as_str(), u.key.as_str()),
            ("a.rtmp.youtube.com", 1935, "live2", "abcd-efgh-ijkl")
        );
        assert_eq!(u.masked(), "rtmp://a.rtmp.youtube.com/live2/****ijkl");
        let u = RtmpUrl::parse("rtmp://127.0.0.1:19350/live/app2/key?x=1").expect("parses");
        assert_eq!(
            (u.port, u.app.as_str(), u.key.as_str()),
            (19350, "live/app2", "key?x=1")
        );
        assert!(!u.masked().contains("key?"));
        let u =
            RtmpUrl::parse("rtmps://live-api-s.facebook.com:443/rtmp/FB-123-abcd").expect("rtmps");
        assert!(u.tls);
        assert_eq!(u.port, 443);
        assert_eq!(u.masked(), "rtmps://live-api-s.facebook.com/rtmp/****abcd");
        assert_eq!(RtmpUrl::parse("rtmps://x/app/k").map(|u| u.port), Ok(443));
        assert!(RtmpUrl::parse("http://x/app/k").is_err());
        assert!(RtmpUrl::parse("rtmp://x/k").is_err());
        assert!(RtmpUrl::parse("rtmp://user:pw@x/app/k").is_err());
        assert_eq!(
            preset("twitch", "live_123").as_deref(),
            Some("rtmp://live.twitch.tv/app/live_123")
        );
    }

    #[test]
    fn flv_bodies_round_trip_through_the_parser() {
        let sps = [0x67, 0x42, 0xc0, 0x1e, 0xda, 0x02];
        let pps = [0x68, 0xce, 0x3c, 0x80];
        let header = avc_sequence_header(&sps, &pps);
        let config = camgate_protocols::flv::AvcConfig::parse(&header[5..]).expect("avcC");
        assert_eq!(config.sps, vec![sps.to_vec()]);
        assert_eq!(config.pps, vec![pps.to_vec()]);
        assert_eq!(config.length_size, 4);
        let au = [0, 0, 0, 1, 0x65, 1, 2, 3, 0, 0, 1, 0x06, 9];
        let tag = avc_frame(true, 40, &au);
        match camgate_protocols::flv::parse_video(&tag, Some(&config)).expect("parses") {
            camgate_protocols::flv::VideoTag::Frame {
                composition_ms,
                annex_b,
                ..
            } => {
                assert_eq!(composition_ms, 40);
                // The parser puts the parameter sets in band before a
                // keyframe; the frame's own two NAL units follow whole.
                let nals: Vec<&[u8]> = camgate_protocols::h264::split_annex_b(&annex_b).collect();
                assert_eq!(
                    &nals[nals.len() - 2..],
                    &[&[0x65, 1, 2, 3][..], &[0x06, 9][..]]
                );
            }
            other => panic!("{other:?}"),
        }
        assert_eq!(
            aac_sequence_header(&[0x12, 0x10]),
            vec![0xaf, 0, 0x12, 0x10]
        );
        assert_eq!(aac_frame(&[1, 2]), vec![0xaf, 1, 1, 2]);
    }
}
