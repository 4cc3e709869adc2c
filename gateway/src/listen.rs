//! The front door: the HTTP(S) accept loop, TLS with certificate reload,
//! and the connection caps every listener shares.
//!
//! * Plain HTTP or HTTPS/WSS with rustls ([`Tls`]); the certificate and key
//!   are read at start and again on `SIGHUP` (a bad file keeps the old
//!   ones and logs why).
//! * A connection's first request head must arrive within
//!   `limits.http_header_timeout_secs`, and a TLS handshake must finish
//!   within it (slowloris); a keep-alive connection may then idle (or send
//!   a later head) for `limits.http_idle_timeout_secs`.
//! * [`ConnLimiter`] caps open connections in all and per address. A
//!   connection over a cap gets `503 too_many_connections` with
//!   `Retry-After` (within the first-head deadline) and is closed; while
//!   256 such answers are under way, further ones are closed without a
//!   word, so a flood costs little. A WebSocket keeps its connection's slot
//!   until it closes.

use std::collections::HashMap;
use std::convert::Infallible;
use std::net::{IpAddr, SocketAddr};
use std::path::Path;
use std::pin::Pin;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, RwLock};
use std::task::{Context, Poll};
use std::time::Duration;

use axum::Router;
use axum::extract::ConnectInfo;
use hyper::body::Incoming;
use hyper::server::conn::http1;
use hyper_util::rt::{TokioIo, TokioTimer};
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::TcpListener;
use tokio::sync::watch;
use tokio_rustls::rustls;
use tower::ServiceExt;
use tracing::{debug, info, warn};

use crate::config::TlsConfig;

/// Which cap a connection went over.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Over {
    /// The listener's total.
    Total,
    /// The per-address cap.
    PerIp,
}

impl Over {
    /// How it is named in errors and logs.
    pub fn code(self) -> &'static str {
        match self {
            Over::Total => "too_many_connections",
            Over::PerIp => "too_many_connections_from_address",
        }
    }
}

/// Open connections of one listener kind, in all and per address.
#[derive(Debug)]
pub struct ConnLimiter {
    name: &'static str,
    max_total: usize,
    max_per_ip: usize,
    total: AtomicUsize,
    per_ip: Mutex<HashMap<IpAddr, usize>>,
    /// Refused connections being answered with their error now.
    refusing: AtomicUsize,
}

/// Refused connections answered at once; beyond this they are dropped.
const MAX_REFUSING: usize = 256;

/// A refused connection being answered; counted out on drop.
#[derive(Debug)]
pub struct Refusing(Arc<ConnLimiter>);

impl Drop for Refusing {
    fn drop(&mut self) {
        self.0.refusing.fetch_sub(1, Ordering::Relaxed);
    }
}

/// One open connection's slot; freed on drop.
#[derive(Debug)]
pub struct ConnPermit {
    limiter: Arc<ConnLimiter>,
    ip: IpAddr,
}

impl Drop for ConnPermit {
    fn drop(&mut self) {
        self.limiter.total.fetch_sub(1, Ordering::Relaxed);
        let mut map = self.limiter.lock();
        if let Some(n) = map.get_mut(&self.ip) {
            *n -= 1;
            if *n == 0 {
                map.remove(&self.ip);
            }
        }
    }
}

impl ConnLimiter {
    /// A limiter (0 = unlimited for either cap).
    pub fn new(name: &'static str, max_total: u32, max_per_ip: u32) -> Arc<ConnLimiter> {
        let cap = |n: u32| if n == 0 { usize::MAX } else { n as usize };
        Arc::new(ConnLimiter {
            name,
            max_total: cap(max_total),
            max_per_ip: cap(max_per_ip),
            total: AtomicUsize::new(0),
            per_ip: Mutex::new(HashMap::new()),
            refusing: AtomicUsize::new(0),
        })
    }

    /// Open connections now.
    pub fn open(&self) -> usize {
        self.total.load(Ordering::Relaxed)
    }

    /// Takes a slot for a connection from `ip`.
    pub fn try_acquire(self: &Arc<Self>, ip: IpAddr) -> Result<ConnPermit, Over> {
        let mut map = self.lock();
        let n = map.get(&ip).copied().unwrap_or(0);
        if n >= self.max_per_ip {
            return Err(Over::PerIp);
        }
        if self.total.load(Ordering::Relaxed) >= self.max_total {
            return Err(Over::Total);
        }
        map.insert(ip, n + 1);
        self.total.fetch_add(1, Ordering::Relaxed);
        Ok(ConnPermit {
            limiter: self.clone(),
            ip,
        })
    }

    /// A slot for answering a refused connection with its error, or `None`
    /// when that many are being answered already (a flood): then the
    /// connection is dropped without a word.
    fn refusal(self: &Arc<Self>) -> Option<Refusing> {
        let n = self.refusing.fetch_add(1, Ordering::Relaxed);
        if n >= MAX_REFUSING {
            self.refusing.fetch_sub(1, Ordering::Relaxed);
            return None;
        }
        Some(Refusing(self.clone()))
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<IpAddr, usize>> {
        self.per_ip.lock().unwrap_or_else(|e| e.into_inner())
    }
}

/// The server's certificate, reloadable.
#[derive(Debug)]
pub struct Tls {
    files: TlsConfig,
    /// For HTTPS (ALPN `http/1.1`).
    http: RwLock<Arc<rustls::ServerConfig>>,
    /// For RTMPS (no ALPN).
    plain: RwLock<Arc<rustls::ServerConfig>>,
}

impl Tls {
    /// Reads the certificate and key.
    pub fn load(files: &TlsConfig) -> Result<Arc<Tls>, String> {
        let (http, plain) = server_configs(&files.cert_file, &files.key_file)?;
        Ok(Arc::new(Tls {
            files: files.clone(),
            http: RwLock::new(http),
            plain: RwLock::new(plain),
        }))
    }

    /// Reads the files again; on error the current certificate stays.
    pub fn reload(&self) -> Result<(), String> {
        let (http, plain) = server_configs(&self.files.cert_file, &self.files.key_file)?;
        *self.http.write().unwrap_or_else(|e| e.into_inner()) = http;
        *self.plain.write().unwrap_or_else(|e| e.into_inner()) = plain;
        Ok(())
    }

    /// An acceptor with the current certificate for HTTPS.
    pub fn http_acceptor(&self) -> tokio_rustls::TlsAcceptor {
        let c = self.http.read().unwrap_or_else(|e| e.into_inner()).clone();
        tokio_rustls::TlsAcceptor::from(c)
    }

    /// An acceptor with the current certificate for RTMPS.
    pub fn rtmps_acceptor(&self) -> tokio_rustls::TlsAcceptor {
        let c = self.plain.read().unwrap_or_else(|e| e.into_inner()).clone();
        tokio_rustls::TlsAcceptor::from(c)
    }

    /// Reloads on every `SIGHUP` until the process ends.
    pub fn reload_on_sighup(self: &Arc<Self>) {
        #[cfg(unix)]
        {
            let tls = self.clone();
            tokio::spawn(async move {
                use tokio::signal::unix::{SignalKind, signal};
                let Ok(mut hup) = signal(SignalKind::hangup()) else {
                    return;
                };
                while hup.recv().await.is_some() {
                    match tls.reload() {
                        Ok(()) => info!("tls certificate reloaded"),
                        Err(e) => {
                            warn!(error = %e, "tls reload failed; keeping the old certificate")
                        }
                    }
                }
            });
        }
    }
}

type ServerConfigs = (Arc<rustls::ServerConfig>, Arc<rustls::ServerConfig>);

fn server_configs(cert: &Path, key: &Path) -> Result<ServerConfigs, String> {
    use rustls::pki_types::pem::PemObject;
    use rustls::pki_types::{CertificateDer, PrivateKeyDer};
    let certs = CertificateDer::pem_file_iter(cert)
        .and_then(|i| i.collect::<Result<Vec<_>, _>>())
        .map_err(|e| format!("{}: {e}", cert.display()))?;
    if certs.is_empty() {
        return Err(format!("{}: no certificate", cert.display()));
    }
    let key = PrivateKeyDer::from_pem_file(key).map_err(|e| format!("{}: {e}", key.display()))?;
    let provider = Arc::new(rustls::crypto::aws_lc_rs::default_provider());
    let build = |alpn: &[&[u8]]| -> Result<Arc<rustls::ServerConfig>, String> {
        let mut c = rustls::ServerConfig::builder_with_provider(provider.clone())
            .with_safe_default_protocol_versions()
            .map_err(|e| e.to_string())?
            .with_no_client_auth()
            .with_single_cert(certs.clone(), key.clone_key())
            .map_err(|e| format!("certificate and key: {e}"))?;
        c.alpn_protocols = alpn.iter().map(|p| p.to_vec()).collect();
        Ok(Arc::new(c))
    };
    Ok((build(&[b"http/1.1"])?, build(&[])?))
}

/// Keeps a connection's slot for as long as its socket is open, also after
/// an upgrade to WebSocket.
struct Counted<I> {
    io: I,
    _permit: ConnPermit,
}

impl<I: AsyncRead + Unpin> AsyncRead for Counted<I> {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<std::io::Result<()>> {
        Pin::new(&mut self.get_mut().io).poll_read(cx, buf)
    }
}

impl<I: AsyncWrite + Unpin> AsyncWrite for Counted<I> {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<std::io::Result<usize>> {
        Pin::new(&mut self.get_mut().io).poll_write(cx, buf)
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Pin::new(&mut self.get_mut().io).poll_flush(cx)
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Pin::new(&mut self.get_mut().io).poll_shutdown(cx)
    }

    fn poll_write_vectored(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[std::io::IoSlice<'_>],
    ) -> Poll<std::io::Result<usize>> {
        Pin::new(&mut self.get_mut().io).poll_write_vectored(cx, bufs)
    }

    fn is_write_vectored(&self) -> bool {
        self.io.is_write_vectored()
    }
}

/// What the HTTP accept loop needs.
pub struct HttpFront {
    /// The bound listener.
    pub listener: TcpListener,
    /// The application.
    pub router: Router,
    /// HTTPS when set.
    pub tls: Option<Arc<Tls>>,
    /// Open HTTP connections.
    pub conns: Arc<ConnLimiter>,
    /// First request head and TLS handshake deadline.
    pub header_timeout: Duration,
    /// How long a keep-alive connection may idle (or trickle a later
    /// request head).
    pub idle_timeout: Duration,
    /// Largest request head, bytes (hyper answers `431` above it).
    pub max_header_bytes: usize,
}

/// Serves HTTP(S) until `shutdown` flips, then lets open requests finish
/// (up to 5 s).
pub async fn serve_http(front: HttpFront, mut shutdown: watch::Receiver<bool>) {
    let HttpFront {
        listener,
        router,
        tls,
        conns,
        header_timeout,
        idle_timeout,
        max_header_bytes,
    } = front;
    let limits = ConnLimits {
        header_timeout,
        idle_timeout,
        max_header_bytes,
    };
    let tasks = Arc::new(());
    loop {
        let (tcp, peer) = tokio::select! {
            r = listener.accept() => match r {
                Ok(a) => a,
                Err(e) => {
                    debug!(error = %e, "http accept failed");
                    tokio::time::sleep(Duration::from_millis(50)).await;
                    continue;
                }
            },
            _ = shutdown.changed() => break,
        };
        let permit = match conns.try_acquire(peer.ip()) {
            Ok(p) => Ok(p),
            Err(over) => match conns.refusal() {
                Some(refusing) => {
                    info!(listener = conns.name, %peer, code = over.code(), "connection refused");
                    Err((over, refusing))
                }
                // A flood: no answer, no log line.
                None => continue,
            },
        };
        // Media is latency-sensitive: a frame smaller than the MSS must not
        // wait behind Nagle for the viewer's previous ACK.
        let _ = tcp.set_nodelay(true);
        let (router, tls, shutdown, task) =
            (router.clone(), tls.clone(), shutdown.clone(), tasks.clone());
        tokio::spawn(async move {
            let _task = task;
            let Some(tls) = tls else {
                serve_conn(tcp, peer, permit, router, limits, shutdown).await;
                return;
            };
            match tokio::time::timeout(header_timeout, tls.http_acceptor().accept(tcp)).await {
                Ok(Ok(stream)) => {
                    serve_conn(stream, peer, permit, router, limits, shutdown).await;
                }
                Ok(Err(e)) => debug!(%peer, error = %e, "tls handshake failed"),
                Err(_) => debug!(%peer, "tls handshake timed out"),
            }
        });
    }
    let deadline = tokio::time::Instant::now() + Duration::from_secs(5);
    while Arc::strong_count(&tasks) > 1 && tokio::time::Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// Per-connection limits.
#[derive(Debug, Clone, Copy)]
struct ConnLimits {
    header_timeout: Duration,
    idle_timeout: Duration,
    max_header_bytes: usize,
}

async fn serve_conn<I>(
    io: I,
    peer: SocketAddr,
    permit: Result<ConnPermit, (Over, Refusing)>,
    router: Router,
    limits: ConnLimits,
    mut shutdown: watch::Receiver<bool>,
) where
    I: AsyncRead + AsyncWrite + Unpin + Send + 'static,
{
    // hyper's header timer also runs while a keep-alive connection is idle,
    // so it is the idle timeout here; the first request head has its own,
    // shorter deadline below (the slowloris case: many connections, each
    // trickling its first request).
    let ConnLimits {
        header_timeout,
        idle_timeout,
        max_header_bytes,
    } = limits;
    let mut builder = http1::Builder::new();
    builder
        .timer(TokioTimer::new())
        .header_read_timeout(idle_timeout)
        .max_header_size(max_header_bytes);
    let permit = match permit {
        Ok(p) => p,
        Err((over, _refusing)) => {
            let svc =
                hyper::service::service_fn(move |_req: hyper::Request<Incoming>| async move {
                    Ok::<_, Infallible>(too_many(over))
                });
            // One answer, within the first-head deadline.
            let answer = builder
                .keep_alive(false)
                .serve_connection(TokioIo::new(io), svc);
            let _ = tokio::time::timeout(header_timeout, answer).await;
            return;
        }
    };
    let io = Counted {
        io,
        _permit: permit,
    };
    let first = Arc::new(tokio::sync::Notify::new());
    let seen = first.clone();
    let svc = hyper::service::service_fn(move |mut req: hyper::Request<Incoming>| {
        seen.notify_one();
        req.extensions_mut().insert(ConnectInfo(peer));
        router.clone().oneshot(req)
    });
    let conn = builder
        .serve_connection(TokioIo::new(io), svc)
        .with_upgrades();
    tokio::pin!(conn);
    let first_head = async {
        if tokio::time::timeout(header_timeout, first.notified())
            .await
            .is_ok()
        {
            std::future::pending::<()>().await;
        }
    };
    tokio::pin!(first_head);
    tokio::select! {
        r = conn.as_mut() => {
            if let Err(e) = r {
                debug!(%peer, error = %e, "http connection ended");
            }
        }
        () = &mut first_head => {
            debug!(%peer, "no request head in time; closed");
        }
        () = async { let _ = shutdown.wait_for(|s| *s).await; } => {
            conn.as_mut().graceful_shutdown();
            let _ = tokio::time::timeout(Duration::from_secs(5), conn).await;
        }
    }
}

/// `503` for a connection over a cap.
fn too_many(over: Over) -> hyper::Response<axum::body::Body> {
    let body = serde_json::json!({
        "error": {
            "code": over.code(),
            "message": "too many open connections; retry later",
        }
    });
    hyper::Response::builder()
        .status(503)
        .header("content-type", "application/json")
        .header("retry-after", "5")
        .header("connection", "close")
        .body(axum::body::Body::from(body.to_string()))
        .unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn caps_count_per_address_and_in_all_and_free_on_drop() {
        let l = ConnLimiter::new("test", 3, 2);
        let a: IpAddr = [10, 0, 0, 1].into();
        let b: IpAddr = [10, 0, 0, 2].into();
        let p1 = l.try_acquire(a).expect("first");
        let _p2 = l.try_acquire(a).expect("second");
        assert_eq!(l.try_acquire(a).err(), Some(Over::PerIp));
        let _p3 = l.try_acquire(b).expect("other address");
        assert_eq!(l.try_acquire(b).err(), Some(Over::Total));
        drop(p1);
        assert_eq!(l.open(), 2);
        let _p4 = l.try_acquire(a).expect("freed slot");
    }
}
