//! `camsim`: run one simulated ESP32-CAM, or many (`camsim load`).

use std::process::ExitCode;
use std::time::Duration;

use camgate_firmware_sim::camera::{self, CameraOptions};
use camgate_firmware_sim::frames::FrameSource;
use camgate_firmware_sim::mint_key;
use camgate_protocols::device::FrameSize;
use clap::{Parser, Subcommand};

#[derive(Parser)]
#[command(name = "camsim", version, about = "A simulated ESP32-CAM for camgate")]
struct Cli {
    #[command(subcommand)]
    load: Option<Load>,
    #[command(flatten)]
    one: One,
}

#[derive(clap::Args)]
struct One {
    /// Device WebSocket URL, e.g. ws://127.0.0.1:8080/ingest/ws?app=live&room=cam1
    #[arg(long, env = "CAMSIM_URL")]
    url: Option<String>,
    /// Camera key (wsk_…).
    #[arg(long, env = "CAMSIM_KEY")]
    key: Option<String>,
    #[command(flatten)]
    common: Common,
}

#[derive(clap::Args, Clone)]
struct Common {
    /// Target frames per second.
    #[arg(long, default_value_t = 10.0)]
    fps: f64,
    /// Stop after this many frames.
    #[arg(long)]
    frames: Option<u64>,
    /// Stop after this many seconds.
    #[arg(long)]
    duration: Option<f64>,
    /// Frame size: QVGA, VGA, SVGA or HD.
    #[arg(long, default_value = "VGA")]
    size: FrameSize,
    /// JPEG quality on the esp32-camera scale (0-63, lower is better).
    #[arg(long, default_value_t = 12)]
    quality: u8,
    /// Do not reconnect after a close (default: reconnect with backoff).
    #[arg(long)]
    no_reconnect: bool,
    /// Give up after this many reconnects.
    #[arg(long)]
    max_reconnects: Option<u32>,
    /// Send the key as ?key= instead of the Authorization header.
    #[arg(long)]
    key_in_query: bool,
    /// Seconds between stats messages.
    #[arg(long, default_value_t = 30.0)]
    stats_every: f64,
    /// Ignore the server's control messages.
    #[arg(long)]
    ignore_control: bool,
}

#[derive(Subcommand)]
enum Load {
    /// Run many cameras from one process, minting a key for each.
    Load {
        /// Number of cameras.
        #[arg(long, default_value_t = 10)]
        cameras: u32,
        /// camgate base URL, e.g. http://127.0.0.1:8080
        #[arg(long)]
        api: String,
        /// API token (sk_…) allowed to mint camera keys.
        #[arg(long, env = "CAMGATE_TOKEN")]
        token: String,
        /// App to create cameras in.
        #[arg(long, default_value = "live")]
        app: String,
        /// Room name prefix; cameras use <prefix>-<n>.
        #[arg(long, default_value = "load")]
        room_prefix: String,
        #[command(flatten)]
        common: Common,
    },
    /// Serve the stock CameraWebServer firmware's HTTP side: `/stream`
    /// (multipart MJPEG) and `/capture` (one JPEG), for pulling.
    Serve {
        /// Listen address.
        #[arg(long, default_value = "127.0.0.1:8081")]
        listen: std::net::SocketAddr,
        /// Send random bytes on /stream instead of frames.
        #[arg(long)]
        garbage: bool,
        #[command(flatten)]
        common: Common,
    },
}

impl Common {
    fn options(&self, url: String, key: String, source: FrameSource) -> CameraOptions {
        let mut o = CameraOptions::new(url, key, source);
        o.fps = self.fps;
        o.frames = self.frames;
        o.duration = self.duration.map(Duration::from_secs_f64);
        o.reconnect = !self.no_reconnect;
        o.max_reconnects = self.max_reconnects;
        o.key_in_query = self.key_in_query;
        o.stats_every = Duration::from_secs_f64(self.stats_every.max(0.1));
        o.obey_control = !self.ignore_control;
        o
    }
}

#[tokio::main]
async fn main() -> ExitCode {
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env()
                .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info")),
        )
        .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
        .with_writer(std::io::stderr)
        .init();
    let cli = Cli::parse();
    match cli.load {
        None => {
            let (Some(url), Some(key)) = (cli.one.url, cli.one.key) else {
                eprintln!("camsim: --url and --key are required (or use `camsim load`)");
                return ExitCode::from(2);
            };
            let c = cli.one.common;
            let source = FrameSource::Live {
                size: c.size,
                quality: c.quality,
            };
            let summary = camera::run(c.options(url, key, source)).await;
            println!("{}", serde_json::to_string(&summary).unwrap_or_default());
            if summary.sent == 0 {
                ExitCode::FAILURE
            } else {
                ExitCode::SUCCESS
            }
        }
        Some(Load::Serve {
            listen,
            garbage,
            common,
        }) => {
            let options = camgate_firmware_sim::http_cam::ServeOptions {
                fps: common.fps,
                source: FrameSource::Live {
                    size: common.size,
                    quality: common.quality,
                },
                garbage,
            };
            match camgate_firmware_sim::http_cam::serve(listen, options).await {
                Ok(()) => ExitCode::SUCCESS,
                Err(e) => {
                    eprintln!("camsim serve: {e}");
                    ExitCode::FAILURE
                }
            }
        }
        Some(Load::Load {
            cameras,
            api,
            token,
            app,
            room_prefix,
            common,
        }) => {
            let http = reqwest::Client::new();
            let source = FrameSource::ring(common.size, common.quality, 30);
            let mut tasks = Vec::new();
            for i in 0..cameras {
                let minted = match mint_key(
                    &http,
                    &api,
                    &token,
                    &app,
                    &format!("{room_prefix}-{i}"),
                )
                .await
                {
                    Ok(m) => m,
                    Err(e) => {
                        eprintln!("camsim: {e}");
                        return ExitCode::FAILURE;
                    }
                };
                let opts = common.options(minted.ws_url, minted.stream_key, source.clone());
                tasks.push(tokio::spawn(camera::run(opts)));
            }
            let mut sent = 0;
            let mut closes = 0;
            for t in tasks {
                if let Ok(s) = t.await {
                    sent += s.sent;
                    closes += s.closes.len();
                }
            }
            println!(
                "{}",
                serde_json::json!({ "cameras": cameras, "sent": sent, "serverCloses": closes })
            );
            ExitCode::SUCCESS
        }
    }
}
