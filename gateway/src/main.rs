//! `camgate serve`: flags and environment variables, then the server.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::ExitCode;

use camgate::Config;
use clap::{Parser, Subcommand};

#[derive(Parser)]
#[command(
    name = "camgate",
    version,
    about = "Edge ingest gateway for cameras plus a WebRTC SFU"
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Run the server.
    Serve(ServeArgs),
}

#[derive(clap::Args)]
struct ServeArgs {
    /// TOML configuration file; flags and environment variables override it.
    #[arg(long, env = "CAMGATE_CONFIG")]
    config: Option<PathBuf>,
    /// Where the database and media live [default: ./camgate-data].
    #[arg(long, env = "CAMGATE_DATA_DIR")]
    data_dir: Option<PathBuf>,
    /// HTTP listen address [default: 0.0.0.0:8080].
    #[arg(long, env = "CAMGATE_HTTP")]
    http: Option<SocketAddr>,
    /// Base of every URL the API returns [default: derived from --http].
    #[arg(long, env = "CAMGATE_PUBLIC_URL")]
    public_url: Option<String>,
    /// Honour X-Forwarded-For (only behind a trusted reverse proxy).
    #[arg(long, env = "CAMGATE_TRUST_FORWARDED")]
    trust_forwarded: Option<bool>,
    /// Camera handshakes per minute per address (0 = unlimited) [default: 60].
    #[arg(long, env = "CAMGATE_WS_HANDSHAKES_PER_MINUTE")]
    ws_handshakes_per_minute: Option<u32>,
    /// Frames per second accepted per camera [default: 15].
    #[arg(long, env = "CAMGATE_WS_MAX_FPS")]
    ws_max_fps: Option<u32>,
    /// Largest camera frame in KiB [default: 256].
    #[arg(long, env = "CAMGATE_WS_MAX_FRAME_KB")]
    ws_max_frame_kb: Option<u32>,
    /// Seconds without a frame before a camera is closed [default: 30].
    #[arg(long, env = "CAMGATE_WS_IDLE_TIMEOUT")]
    ws_idle_timeout: Option<u32>,
    /// Seconds between pings to cameras [default: 15].
    #[arg(long, env = "CAMGATE_WS_PING_INTERVAL")]
    ws_ping_interval: Option<u32>,
    /// Rate asked of a camera nobody watches, 0 = never ask [default: 1].
    #[arg(long, env = "CAMGATE_WS_IDLE_FPS")]
    ws_idle_fps: Option<u32>,
    /// Seconds after the last viewer leaves before asking for the idle rate [default: 5].
    #[arg(long, env = "CAMGATE_WS_IDLE_GRACE")]
    ws_idle_grace: Option<u32>,
    /// UDP address of the WebRTC SFU, shared by every peer [default: 0.0.0.0:8189].
    #[arg(long, env = "CAMGATE_WEBRTC_UDP")]
    webrtc_udp: Option<std::net::SocketAddr>,
    /// Address advertised to WebRTC peers as a host candidate (repeatable or
    /// comma-separated) [default: the bound IP, or the default route's].
    #[arg(long, env = "CAMGATE_WEBRTC_IP", value_delimiter = ',')]
    webrtc_ip: Vec<std::net::IpAddr>,
    /// RTMP listen address [default: 0.0.0.0:1935].
    #[arg(long, env = "CAMGATE_RTMP")]
    rtmp: Option<std::net::SocketAddr>,
    /// Bitrate of the MJPEG→H.264 transcoder in kbit/s [default: 1000].
    #[arg(long, env = "CAMGATE_WEBRTC_H264_KBPS")]
    webrtc_h264_kbps: Option<u32>,
    /// Seconds a pulled camera has to answer [default: 10].
    #[arg(long, env = "CAMGATE_PULL_CONNECT_TIMEOUT")]
    pull_connect_timeout: Option<u32>,
    /// Seconds without a frame before a pulled camera counts as gone
    /// [default: 10].
    #[arg(long, env = "CAMGATE_PULL_FRAME_TIMEOUT")]
    pull_frame_timeout: Option<u32>,
    /// JPEG quality of MJPEG made from H.264 streams, 1–100 [default: 75].
    #[arg(long, env = "CAMGATE_MJPEG_QUALITY")]
    mjpeg_quality: Option<u32>,
    /// Most MJPEG frames per second made from H.264 streams [default: 10].
    #[arg(long, env = "CAMGATE_MJPEG_MAX_FPS")]
    mjpeg_max_fps: Option<u32>,
    /// Longest retry delay for pulled cameras, seconds [default: 30].
    #[arg(long, env = "CAMGATE_PULL_MAX_BACKOFF")]
    pull_max_backoff: Option<u32>,
    /// Directory of app files `<name>.toml` [default: <data-dir>/apps].
    #[arg(long, env = "CAMGATE_APPS_DIR")]
    apps_dir: Option<PathBuf>,
    /// PEM CA certificates trusted for rtmps:// restream destinations, in
    /// addition to the Mozilla roots.
    #[arg(long, env = "CAMGATE_RESTREAM_CA_FILE")]
    restream_ca_file: Option<PathBuf>,
    /// PEM certificate chain: serve HTTPS/WSS (with --tls-key).
    #[arg(long, env = "CAMGATE_TLS_CERT", requires = "tls_key")]
    tls_cert: Option<PathBuf>,
    /// PEM private key of --tls-cert.
    #[arg(long, env = "CAMGATE_TLS_KEY", requires = "tls_cert")]
    tls_key: Option<PathBuf>,
    /// RTMPS listen address (needs TLS) [default: none].
    #[arg(long, env = "CAMGATE_RTMPS")]
    rtmps: Option<SocketAddr>,
    /// API requests per minute per client address, 0 = unlimited
    /// [default: 3000].
    #[arg(long, env = "CAMGATE_API_REQUESTS_PER_MINUTE_PER_IP")]
    api_requests_per_minute_per_ip: Option<u32>,
    /// API requests per hour per app token, 0 = unlimited [default: 1000].
    #[arg(long, env = "CAMGATE_APP_TOKEN_REQUESTS_PER_HOUR")]
    app_token_requests_per_hour: Option<u32>,
    /// API requests per hour per global token, 0 = unlimited [default: 0].
    #[arg(long, env = "CAMGATE_ADMIN_TOKEN_REQUESTS_PER_HOUR")]
    admin_token_requests_per_hour: Option<u32>,
    /// Viewers of one stream (MJPEG, WebSocket, WHEP), 0 = unlimited
    /// [default: 0].
    #[arg(long, env = "CAMGATE_MAX_VIEWERS_PER_STREAM")]
    max_viewers_per_stream: Option<u32>,
    /// Open HTTP connections per client address, 0 = unlimited [default: 512].
    #[arg(long, env = "CAMGATE_MAX_HTTP_CONNECTIONS_PER_IP")]
    max_http_connections_per_ip: Option<u32>,
    /// Open RTMP connections per client address, 0 = unlimited [default: 50].
    #[arg(long, env = "CAMGATE_MAX_RTMP_CONNECTIONS_PER_IP")]
    max_rtmp_connections_per_ip: Option<u32>,
    /// Seconds to send a request head or finish a TLS handshake [default: 10].
    #[arg(long, env = "CAMGATE_HTTP_HEADER_TIMEOUT")]
    http_header_timeout: Option<u32>,
}

fn load(args: ServeArgs) -> Result<Config, String> {
    let mut c = match &args.config {
        Some(path) => {
            let text =
                std::fs::read_to_string(path).map_err(|e| format!("{}: {e}", path.display()))?;
            Config::from_toml(&text).map_err(|e| format!("{}: {e}", path.display()))?
        }
        None => Config::default(),
    };
    if !args.webrtc_ip.is_empty() {
        c.webrtc.ips = args.webrtc_ip.clone();
    }
    macro_rules! set {
        ($($arg:ident => $($field:ident).+),* $(,)?) => {
            $( if let Some(v) = args.$arg { c.$($field).+ = v.into(); } )*
        };
    }
    set!(
        data_dir => data_dir,
        apps_dir => apps_dir,
        restream_ca_file => restream.ca_file,
        http => http,
        trust_forwarded => trust_forwarded,
        ws_handshakes_per_minute => ws_ingest.handshakes_per_minute,
        ws_max_fps => ws_ingest.max_fps,
        ws_max_frame_kb => ws_ingest.max_frame_kb,
        ws_idle_timeout => ws_ingest.idle_timeout_secs,
        ws_ping_interval => ws_ingest.ping_interval_secs,
        ws_idle_fps => ws_ingest.idle_fps,
        ws_idle_grace => ws_ingest.idle_grace_secs,
        webrtc_udp => webrtc.udp,
        webrtc_h264_kbps => webrtc.h264_bitrate_kbps,
        rtmp => rtmp,
        pull_connect_timeout => pull.connect_timeout_secs,
        pull_frame_timeout => pull.frame_timeout_secs,
        pull_max_backoff => pull.max_backoff_secs,
        mjpeg_quality => mjpeg.quality,
        mjpeg_max_fps => mjpeg.max_fps,
        api_requests_per_minute_per_ip => limits.api_requests_per_minute_per_ip,
        app_token_requests_per_hour => limits.app_token_requests_per_hour,
        admin_token_requests_per_hour => limits.admin_token_requests_per_hour,
        max_viewers_per_stream => limits.max_viewers_per_stream,
        max_http_connections_per_ip => limits.max_http_connections_per_ip,
        max_rtmp_connections_per_ip => limits.max_rtmp_connections_per_ip,
        http_header_timeout => limits.http_header_timeout_secs,
    );
    if let (Some(cert_file), Some(key_file)) = (args.tls_cert, args.tls_key) {
        let rtmps = c.tls.as_ref().and_then(|t| t.rtmps);
        c.tls = Some(camgate::config::TlsConfig {
            cert_file,
            key_file,
            rtmps,
            hsts_max_age_secs: c.tls.as_ref().map_or(31_536_000, |t| t.hsts_max_age_secs),
        });
    }
    if let Some(addr) = args.rtmps {
        match c.tls.as_mut() {
            Some(t) => t.rtmps = Some(addr),
            None => return Err("--rtmps needs TLS (--tls-cert and --tls-key)".into()),
        }
    }
    if let Some(u) = args.public_url {
        c.public_url = Some(u);
    }
    c.validate().map_err(|e| e.to_string())?;
    Ok(c)
}

async fn shutdown_signal() {
    let ctrl_c = async {
        let _ = tokio::signal::ctrl_c().await;
    };
    #[cfg(unix)]
    let term = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut s) => {
                s.recv().await;
            }
            Err(_) => std::future::pending().await,
        }
    };
    #[cfg(not(unix))]
    let term = std::future::pending::<()>();
    tokio::select! { _ = ctrl_c => {}, _ = term => {} }
}

#[tokio::main]
async fn main() -> ExitCode {
    use tracing_subscriber::Layer;
    use tracing_subscriber::layer::SubscriberExt;
    use tracing_subscriber::util::SubscriberInitExt;
    // Logs go to stderr (filtered by RUST_LOG, default info) and, at info
    // and above, into the event log behind GET /api/v1/logs.
    let (event_log, event_log_rx) = camgate::eventlog::layer();
    tracing_subscriber::registry()
        .with(
            tracing_subscriber::fmt::layer()
                .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
                .with_writer(std::io::stderr)
                .with_filter(
                    tracing_subscriber::EnvFilter::try_from_default_env()
                        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info")),
                ),
        )
        .with(
            event_log.with_filter(
                tracing_subscriber::filter::Targets::new()
                    .with_target("camgate", tracing::Level::INFO)
                    .with_target("camgate_sfu", tracing::Level::INFO),
            ),
        )
        .init();
    // A panic is a bug; it is logged as one line where the logs go (not a
    // multi-line dump on stderr), with where it happened. The task that
    // panicked ends; tokio keeps the server running.
    std::panic::set_hook(Box::new(|info| {
        if camgate::guard::expected() {
            return;
        }
        let at = info
            .location()
            .map(|l| format!("{}:{}", l.file(), l.line()))
            .unwrap_or_default();
        tracing::error!(%at, panic = %info.payload_as_str().unwrap_or("(non-string payload)"), "panic");
    }));
    let Command::Serve(args) = Cli::parse().command;
    let admin_token = std::env::var("CAMGATE_ADMIN_TOKEN")
        .ok()
        .filter(|t| !t.is_empty());
    let config = match load(args) {
        Ok(c) => c,
        Err(e) => {
            eprintln!("camgate: {e}");
            return ExitCode::from(2);
        }
    };
    let listener = match tokio::net::TcpListener::bind(config.http).await {
        Ok(l) => l,
        Err(e) => {
            eprintln!("camgate: cannot listen on {}: {e}", config.http);
            return ExitCode::FAILURE;
        }
    };
    let server = match camgate::Server::start(config, listener, admin_token).await {
        Ok(s) => s,
        Err(e) => {
            eprintln!("camgate: {e}");
            return ExitCode::FAILURE;
        }
    };
    server.record_events(event_log_rx);
    if let Some(token) = &server.generated_admin_token {
        // Shown once: only its hash is stored.
        println!("admin token (shown once, store it now): {token}");
    }
    println!("camgate rtmp on rtmp://{}", server.rtmp_addr);
    if let Some(addr) = server.rtmps_addr {
        println!("camgate rtmps on rtmps://{addr}");
    }
    println!(
        "camgate listening on {}://{} (public URL {})",
        if server.tls() { "https" } else { "http" },
        server.local_addr,
        server.public_base()
    );
    match server.run(shutdown_signal()).await {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("camgate: {e}");
            ExitCode::FAILURE
        }
    }
}
