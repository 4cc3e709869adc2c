//! The HTTP server: shared state, the router and the serve loop.

use std::future::Future;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};

use axum::Router;
use axum::extract::{DefaultBodyLimit, State};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::serve::ListenerExt;
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
        // The route guard of the catalogue reads the state from here.
        .layer(axum::Extension(state.clone()));
    Router::new()
        .route("/health", get(health))
        .route("/metrics", get(crate::api::stats::metrics))
        .nest("/api/v1", api)
        .merge(api::whip::routes())
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
        .layer(axum::middleware::from_fn(crate::metrics::http_latency))
        .with_state(state)
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
    shutdown_tx: watch::Sender<bool>,
    /// A newly generated admin token, to be shown once.
    pub generated_admin_token: Option<String>,
    /// The bound HTTP address.
    pub local_addr: SocketAddr,
    /// The bound RTMP address.
    pub rtmp_addr: SocketAddr,
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
            handshake_limiter: RateLimiter::new(config.ws_ingest.handshakes_per_minute),
            config,
            db,
            hub: Hub::new(),
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
            shutdown_tx,
            generated_admin_token,
            local_addr,
            rtmp_addr,
        })
    }

    /// The public base URL.
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
            shutdown_tx,
            ..
        } = self;
        tokio::spawn(crate::ingest::rtmp::serve(state.clone(), rtmp_listener));
        crate::ingest::pull::start_all(&state).await;
        tokio::spawn(crate::record::supervise(state.clone()));
        let router = app(state.clone()).into_make_service_with_connect_info::<SocketAddr>();
        let tx = shutdown_tx.clone();
        // Media is latency-sensitive: a frame smaller than the MSS must not
        // wait behind Nagle for the viewer's previous ACK.
        let listener = listener.tap_io(|tcp| {
            if let Err(e) = tcp.set_nodelay(true) {
                tracing::debug!(error = %e, "could not set TCP_NODELAY");
            }
        });
        axum::serve(listener, router)
            .with_graceful_shutdown(async move {
                shutdown.await;
                tracing::info!("shutting down");
                let _ = tx.send(true);
            })
            .await?;
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
