//! camgate: an edge ingest gateway for low-power cameras plus a WebRTC SFU.
//!
//! The binary (`src/main.rs`) parses configuration and calls [`Server`]; the
//! library holds everything else so tests can build the router directly:
//!
//! ```no_run
//! # async fn demo() -> Result<(), Box<dyn std::error::Error>> {
//! let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
//! let server = camgate::Server::start(camgate::Config::default(), listener, None).await?;
//! server.run(async { let _ = tokio::signal::ctrl_c().await; }).await?;
//! # Ok(()) }
//! ```
#![deny(missing_docs)]

pub mod api;
pub mod appconfig;
pub mod auth;
pub mod config;
pub mod eventlog;
pub mod guard;
pub mod hls;
pub mod hub;
pub mod ingest;
pub mod listen;
pub mod metrics;
pub mod playback;
pub mod record;
pub mod restream;
pub mod server;
pub mod store;
pub mod transcode;
pub mod webhooks;
pub mod webrtc;

pub use config::Config;
pub use server::{Server, app};
