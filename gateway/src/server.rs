//! The HTTP server: shared state, the router and the serve loop.

use std::future::Future;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};

use axum::Router;
use axum::extract::{DefaultBodyLimit, State};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use camgate_protocols::api::{self as api_paths, INGEST_WS_PATH, LIVE_WS_PATH};
use tokio::net::TcpListener;
use tokio::sync::watch;

use crate::api::{self, ApiError};
use crate::auth::jwt::Keyring;
use crate::auth::{RateLimiter, hash_secret, random_secret};
use crate::config::Config;
use crate::hub::Hub;
use crate::ingest::ws::Cameras;
use crate::playback::{mjpeg, player};
use crate::store::Db;
use crate::webrtc::Media;

/// Largest JSON body the API accepts.
pub const MAX_API_BODY: usize = 64 * 1024;

/// State shared by every handler.
#[derive(Debug)]
pub struct AppState {
    /// Validated configuration.
    pub config: Config,
    /// Platform state.
    pub db: Db,
    /// Live rooms.
    pub hub: Arc<Hub>,
    /// Connected cameras by key.
    pub cameras: Cameras,
    /// Device handshake limiter per address.
    pub handshake_limiter: RateLimiter,
    /// API requests per address.
    pub api_ip_limiter: RateLimiter<std::net::IpAddr>,
    /// API requests per token id.
    pub api_token_limiter: RateLimiter<i64>,
    /// API requests per global token id.
    pub admin_token_limiter: RateLimiter<i64>,
    /// Open HTTP connections.
    pub http_conns: Arc<crate::listen::ConnLimiter>,
    /// Open RTMP and RTMPS connections.
    pub rtmp_conns: Arc<crate::listen::ConnLimiter>,
    /// The certificate, when TLS is on.
    pub tls: Option<Arc<crate::listen::Tls>>,
    /// Base of returned URLs, without trailing slash.
    pub public_base: String,
    /// Flips to true when the server shuts down.
    pub shutdown: watch::Receiver<bool>,
    /// Process start.
    pub started: Instant,
    /// WebRTC sessions over the SFU.
    pub media: Media,
    /// Join token signing keys.
    pub keys: Keyring,
    /// Live RTMP publishers.
    pub rtmp: crate::ingest::rtmp::RtmpSessions,
    /// Pulled cameras (`url` ingresses) and their state.
    pub pulls: crate::ingest::pull::Pulls,
    /// Webhook dispatcher.
    pub webhooks: crate::webhooks::Webhooks,
    /// Cached `/stats` answers.
    pub stats_cache: crate::api::stats::StatsCache,
    /// HLS streams.
    pub hls: Arc<crate::hls::Hls>,
    /// The bound RTMP address.
    pub rtmp_addr: SocketAddr,
    /// Recordings running.
    pub recorders: crate::record::Recorders,
    /// Restreams running.
    pub restreams: crate::restream::Restreams,
    /// The TLS client of `rtmps://` restream destinations.
    pub restream_tls: Arc<tokio_rustls::rustls::ClientConfig>,
}

/// How handlers hold the state.
pub type SharedState = Arc<AppState>;

/// Playback URLs of a room.
#[derive(Debug)]
pub struct Urls {
    /// MJPEG stream.
    pub mjpeg: String,
    /// Last frame.
    pub frame: String,
    /// Player page.
    pub player: String,
    /// Embeddable player.
    pub embed: String,
}

impl AppState {
    /// Playback URLs for `room` (namespaced) of `app`.
    pub fn urls(&self, app: &str, room: &str) -> Urls {
        let b = &self.public_base;
        Urls {
            mjpeg: format!("{b}{}", api_paths::mjpeg_path(app, room)),
            frame: format!("{b}{}", api_paths::frame_path(app, room)),
            player: format!("{b}/play/{app}/{room}"),
            embed: format!("{b}/embed/{app}/{room}"),
        }
    }

    /// The public base as a WebSocket URL (`ws://` or `wss://`).
    pub fn ws_base(&self) -> String {
        match self.public_base.strip_prefix("https://") {
            Some(rest) => format!("wss://{rest}"),
            None => format!("ws://{}", self.public_base.trim_start_matches("http://")),
        }
    }

    /// The RTMP server URL of an app (`rtmp://host:port/{app}`): the public
    /// URL's host with the bound RTMP port.
    pub fn rtmp_url(&self, app: &str) -> String {
        let host = self
            .public_base
            .split("://")
            .nth(1)
            .unwrap_or("localhost")
            .split('/')
            .next()
            .unwrap_or("localhost");
        // Strip a port, keeping bracketed IPv6 literals whole.
        let host = match host.rfind(':') {
            Some(i) if !host[i..].contains(']') => &host[..i],
            _ => host,
        };
        format!("rtmp://{host}:{}/{app}", self.rtmp_addr.port())
    }

    /// The device WebSocket URL for a camera of `room` (as given).
    pub fn ingest_ws_url(&self, app: &str, room: &str) -> String {
        format!("{}{INGEST_WS_PATH}?app={app}&room={room}", self.ws_base())
    }

    /// The viewer WebSocket URL of a room.
    pub fn viewer_ws_url(&self, app: &str, room: &str) -> String {
        format!("{}{LIVE_WS_PATH}?app={app}&room={room}", self.ws_base())
    }
}

/// The whole router, apart from `main` so tests can drive it directly.
pub fn app(state: SharedState) -> Router {
    let api = api::native::routes()
        .finish()
        .fallback(|| async { ApiError::not_found("route_not_found", "no such route") })
        .layer(DefaultBodyLimit::max(MAX_API_BODY))
        .layer(axum::middleware::from_fn(api::limits::per_ip))
        // The route guard of the catalogue reads the state from here.
        .layer(axum::Extension(state.clone()));
    let whip = api::whip::routes()
        .layer(axum::middleware::from_fn(api::limits::per_ip))
        .layer(axum::Extension(state.clone()));
    let hsts = state
        .config
        .tls
        .as_ref()
        .map(|t| t.hsts_max_age_secs)
        .filter(|age| *age > 0)
        .and_then(|age| axum::http::HeaderValue::from_str(&format!("max-age={age}")).ok());
    let router = Router::new()
        .route("/health", get(health))
        .route("/metrics", get(crate::api::stats::metrics))
        .nest("/api/v1", api)
        .merge(whip)
        .route(INGEST_WS_PATH, get(crate::ingest::ws::handler))
        .route(LIVE_WS_PATH, get(mjpeg::viewer_ws))
        .route("/live/{app}/{room}/mjpeg", get(mjpeg::mjpeg))
        .route("/live/{app}/{room}/frame.jpg", get(mjpeg::frame))
        .route(
            "/hls/{app}/{room}/index.m3u8",
            get(crate::playback::hls::playlist),
        )
        .route("/hls/{app}/{room}/{file}", get(crate::playback::hls::media))
        .route("/api/playback", get(crate::playback::index::streams))
        .route("/api/playback/{stream}", get(crate::playback::index::days))
        .route(
            "/api/record/object/{*path}",
            get(crate::playback::index::object),
        )
        .route("/play/{app}/{room}", get(player::page))
        .route("/embed/{app}/{room}", get(player::page))
        .fallback(|| async { ApiError::not_found("route_not_found", "no such route") })
        .layer(axum::middleware::from_fn(crate::metrics::http_latency));
    let router = match hsts {
        // Browsers that saw HTTPS once keep using it.
        Some(value) => router.layer(axum::middleware::map_response(move |mut r: Response| {
            let value = value.clone();
            async move {
                r.headers_mut().insert("strict-transport-security", value);
                r
            }
        })),
        None => router,
    };
    router.with_state(state)
}

async fn health(State(state): State<SharedState>) -> Response {
    let (rooms, viewers, publishers) = state.hub.counts();
    axum::Json(serde_json::json!({
        "status": "ok",
        "up": true,
        "version": env!("CARGO_PKG_VERSION"),
        "ts": crate::auth::now_rfc3339(),
        "uptimeSeconds": state.started.elapsed().as_secs(),
        "live": {
            "cameras": state.cameras.count(),
            "publishers": publishers,
            "rooms": rooms,
            "viewers": viewers,
        },
    }))
    .into_response()
}

/// Why the server could not start or run.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ServeError {
    /// The database could not be opened or migrated.
    #[error("database: {0}")]
    Db(#[from] sqlx::Error),
    /// The listener failed.
    #[error("io: {0}")]
    Io(#[from] std::io::Error),
    /// An app file (or another file the config names) is invalid.
    #[error("config: {0}")]
    AppFile(String),
    /// The admin token from the environment is unusable.
    #[error("CAMGATE_ADMIN_TOKEN must be at least 16 characters")]
    WeakAdminToken,
}

/// A server that has opened its database and bound its listener.
#[derive(Debug)]
pub struct Server {
    state: SharedState,
    listener: TcpListener,
    rtmp_listener: TcpListener,
    rtmps_listener: Option<TcpListener>,
    shutdown_tx: watch::Sender<bool>,
    /// A newly generated admin token, to be shown once.
    pub generated_admin_token: Option<String>,
    /// The bound HTTP address.
    pub local_addr: SocketAddr,
    /// The bound RTMP address.
    pub rtmp_addr: SocketAddr,
    /// The bound RTMPS address, when TLS and `tls.rtmps` are set.
    pub rtmps_addr: Option<SocketAddr>,
}

impl Server {
    /// Stores the events of an event-log layer (see [`crate::eventlog`])
    /// in this server's database, for `GET /api/v1/logs`.
    pub fn record_events(&self, rx: crate::eventlog::EventLogReceiver) {
        tokio::spawn(crate::eventlog::run(self.state.db.clone(), rx));
    }

    /// Opens the data dir, migrates, bootstraps the admin token and the
    /// default app, and ends streams a previous run left active.
    pub async fn start(
        config: Config,
        listener: TcpListener,
        admin_token: Option<String>,
    ) -> Result<Server, ServeError> {
        let db = Db::open(&config.data_dir).await?;
        let webhooks = crate::webhooks::Webhooks::start(db.clone());
        db.ensure_default_app().await?;
        let apps = crate::appconfig::load_dir(&db, &config.apps_dir(), None)
            .await
            .map_err(ServeError::AppFile)?;
        if apps > 0 {
            tracing::info!(apps, "app config files applied");
        }
        let generated_admin_token = match admin_token {
            Some(t) if t.len() < 16 => return Err(ServeError::WeakAdminToken),
            Some(t) => {
                db.set_admin_token(&hash_secret(&t)).await?;
                None
            }
            None if !db.has_global_token().await? => {
                let t = random_secret("sk_", 32);
                db.set_admin_token(&hash_secret(&t)).await?;
                Some(t)
            }
            None => None,
        };
        let stale = db.end_stale_streams().await?;
        if stale > 0 {
            tracing::info!(stale, "marked streams of a previous run as ended");
        }
        let local_addr = listener.local_addr()?;
        let rtmp_listener = TcpListener::bind(config.rtmp).await?;
        let rtmp_addr = rtmp_listener.local_addr()?;
        let tls = match &config.tls {
            Some(files) => Some(crate::listen::Tls::load(files).map_err(ServeError::AppFile)?),
            None => None,
        };
        let rtmps_listener = match config.tls.as_ref().and_then(|t| t.rtmps) {
            Some(addr) => Some(TcpListener::bind(addr).await?),
            None => None,
        };
        let rtmps_addr = match &rtmps_listener {
            Some(l) => Some(l.local_addr()?),
            None => None,
        };
        let limits = &config.limits;
        let hub = Hub::new();
        hub.set_max_viewers(limits.max_viewers_per_stream as usize);
        let per_hour = |n: u32| RateLimiter::new(n, Duration::from_secs(3600));
        let (api_token_limiter, admin_token_limiter) = (
            per_hour(limits.app_token_requests_per_hour),
            per_hour(limits.admin_token_requests_per_hour),
        );
        let api_ip_limiter = RateLimiter::new(
            limits.api_requests_per_minute_per_ip,
            Duration::from_secs(60),
        );
        let http_conns = crate::listen::ConnLimiter::new(
            "http",
            limits.max_http_connections,
            limits.max_http_connections_per_ip,
        );
        let rtmp_conns = crate::listen::ConnLimiter::new(
            "rtmp",
            limits.max_rtmp_connections,
            limits.max_rtmp_connections_per_ip,
        );
        let keys = Keyring::open(&config.data_dir)?;
        let restream_tls = Arc::new(
            crate::restream::tls_config(config.restream.ca_file.as_deref())
                .map_err(ServeError::AppFile)?,
        );
        let (media, sfu_events) =
            Media::start(config.webrtc.udp, config.webrtc.ips.clone()).await?;
        let (shutdown_tx, shutdown) = watch::channel(false);
        let state = Arc::new(AppState {
            public_base: config.public_base(local_addr),
            handshake_limiter: RateLimiter::new(
                config.ws_ingest.handshakes_per_minute,
                Duration::from_secs(60),
            ),
            api_ip_limiter,
            api_token_limiter,
            admin_token_limiter,
            http_conns,
            rtmp_conns,
            tls,
            config,
            db,
            hub,
            cameras: Cameras::default(),
            shutdown,
            started: Instant::now(),
            media,
            keys,
            rtmp: Default::default(),
            pulls: Default::default(),
            webhooks,
            stats_cache: Default::default(),
            hls: Default::default(),
            rtmp_addr,
            recorders: Default::default(),
            restreams: Default::default(),
            restream_tls,
        });
        let recovered = crate::record::recover(&state).await?;
        if recovered > 0 {
            tracing::info!(recovered, "recordings of a previous run finalized");
        }
        tokio::spawn(Media::run_events(Arc::downgrade(&state), sfu_events));
        Ok(Server {
            state,
            listener,
            rtmp_listener,
            rtmps_listener,
            shutdown_tx,
            generated_admin_token,
            local_addr,
            rtmp_addr,
            rtmps_addr,
        })
    }

    /// Whether HTTPS (and WSS) is on.
    pub fn tls(&self) -> bool {
        self.state.tls.is_some()
    }

    /// The base of every URL the API returns.
    pub fn public_base(&self) -> &str {
        &self.state.public_base
    }

    /// Serves until `shutdown` resolves, then closes every connection
    /// cleanly (cameras get 1001) and closes the database.
    pub async fn run(
        self,
        shutdown: impl Future<Output = ()> + Send + 'static,
    ) -> Result<(), ServeError> {
        let Server {
            state,
            listener,
            rtmp_listener,
            rtmps_listener,
            shutdown_tx,
            ..
        } = self;
        tokio::spawn(crate::ingest::rtmp::serve(
            state.clone(),
            rtmp_listener,
            None,
        ));
        if let (Some(l), Some(tls)) = (rtmps_listener, state.tls.clone()) {
            tokio::spawn(crate::ingest::rtmp::serve(state.clone(), l, Some(tls)));
        }
        if let Some(tls) = &state.tls {
            tls.reload_on_sighup();
        }
        crate::ingest::pull::start_all(&state).await;
        tokio::spawn(crate::record::supervise(state.clone()));
        let tx = shutdown_tx.clone();
        tokio::spawn(async move {
            shutdown.await;
            tracing::info!("shutting down");
            let _ = tx.send(true);
        });
        let front = crate::listen::HttpFront {
            listener,
            router: app(state.clone()),
            tls: state.tls.clone(),
            conns: state.http_conns.clone(),
            header_timeout: Duration::from_secs(u64::from(
                state.config.limits.http_header_timeout_secs,
            )),
            idle_timeout: Duration::from_secs(u64::from(
                state.config.limits.http_idle_timeout_secs,
            )),
            max_header_bytes: state.config.limits.max_header_kb as usize * 1024,
        };
        crate::listen::serve_http(front, state.shutdown.clone()).await;
        // Upgraded WebSockets are not tracked by the HTTP server: give them
        // a moment to send their close frames and record stream ends.
        let deadline = Instant::now() + Duration::from_secs(3);
        // Recordings finalize their files and rows the same way.
        while (state.cameras.count() > 0 || state.recorders.count() > 0)
            && Instant::now() < deadline
        {
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        state.db.close().await;
        Ok(())
    }
}
