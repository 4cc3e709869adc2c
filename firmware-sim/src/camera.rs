//! One simulated camera: the device side of the protocol, like the sketch in
//! `docs/esp32/`.

use std::time::Duration;

use camgate_protocols::device::{DeviceMessage, FrameSize, ServerMessage};
use futures_util::{SinkExt, StreamExt};
use tokio::time::{Instant, MissedTickBehavior, interval, sleep};
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::tungstenite::client::IntoClientRequest;
use tokio_tungstenite::tungstenite::http::HeaderValue;

use crate::frames::FrameSource;

/// How a camera runs.
#[derive(Clone, Debug)]
pub struct CameraOptions {
    /// Device WebSocket URL (`ws://host/ingest/ws?app=live&room=cam1`).
    pub url: String,
    /// Camera key (`wsk_…`).
    pub key: String,
    /// Send the key as `?key=` instead of the Authorization header.
    pub key_in_query: bool,
    /// Target frames per second (lowered to the server's `maxFps`).
    pub fps: f64,
    /// Stop after this many frames.
    pub frames: Option<u64>,
    /// Stop after this long.
    pub duration: Option<Duration>,
    /// Frames to send.
    pub source: FrameSource,
    /// Reconnect after a close or failure, like the firmware.
    pub reconnect: bool,
    /// Give up after this many reconnects.
    pub max_reconnects: Option<u32>,
    /// Interval of `stats` messages.
    pub stats_every: Duration,
    /// Obey `control` messages.
    pub obey_control: bool,
}

impl CameraOptions {
    /// Options with firmware-like defaults.
    pub fn new(
        url: impl Into<String>,
        key: impl Into<String>,
        source: FrameSource,
    ) -> CameraOptions {
        CameraOptions {
            url: url.into(),
            key: key.into(),
            key_in_query: false,
            fps: 10.0,
            frames: None,
            duration: None,
            source,
            reconnect: true,
            max_reconnects: None,
            stats_every: Duration::from_secs(30),
            obey_control: true,
        }
    }
}

/// What happened to a camera, for the summary.
#[derive(Clone, Debug, Default, serde::Serialize)]
pub struct Summary {
    /// Frames sent.
    pub sent: u64,
    /// Connections made.
    pub connections: u32,
    /// Close codes received from the server, in order.
    pub closes: Vec<u16>,
    /// Last `error` message code from the server.
    pub last_error: Option<String>,
    /// Last rate the server asked for.
    pub asked_fps: Option<u32>,
}

enum ConnEnd {
    Done,
    Closed(u16),
    Lost(String),
}

/// Runs the camera until its frames or duration are used up, or it gives up.
pub async fn run(mut opts: CameraOptions) -> Summary {
    let mut summary = Summary::default();
    let deadline = opts.duration.map(|d| Instant::now() + d);
    let mut backoff = Duration::from_millis(500);
    let mut reconnects = 0u32;
    loop {
        let end = connect_and_stream(&mut opts, deadline, &mut summary).await;
        let fatal = match &end {
            ConnEnd::Done => return summary,
            ConnEnd::Closed(code) => {
                tracing::info!(code, "server closed the connection");
                summary.closes.push(*code);
                matches!(*code, 4401 | 4403)
            }
            ConnEnd::Lost(e) => {
                tracing::info!(error = %e, "connection lost");
                false
            }
        };
        let out_of_time = deadline.is_some_and(|d| Instant::now() >= d);
        if !opts.reconnect || out_of_time || opts.max_reconnects.is_some_and(|m| reconnects >= m) {
            return summary;
        }
        reconnects += 1;
        // A rejected key will not start working soon: wait the longest.
        let wait = if fatal {
            Duration::from_secs(30)
        } else {
            backoff
        };
        let jitter = Duration::from_millis(rand::random::<u64>() % 250);
        sleep(wait + jitter).await;
        backoff = (backoff * 2).min(Duration::from_secs(30));
        if summary.sent > 0 {
            backoff = Duration::from_millis(500);
        }
    }
}

async fn connect_and_stream(
    opts: &mut CameraOptions,
    deadline: Option<Instant>,
    summary: &mut Summary,
) -> ConnEnd {
    let url = if opts.key_in_query {
        format!("{}&key={}", opts.url, opts.key)
    } else {
        opts.url.clone()
    };
    let mut req = match url.as_str().into_client_request() {
        Ok(r) => r,
        Err(e) => return ConnEnd::Lost(format!("bad url: {e}")),
    };
    if !opts.key_in_query {
        match HeaderValue::from_str(&format!("Bearer {}", opts.key)) {
            Ok(v) => {
                req.headers_mut().insert("authorization", v);
            }
            Err(e) => return ConnEnd::Lost(format!("bad key: {e}")),
        }
    }
    let mut ws = match tokio_tungstenite::connect_async(req).await {
        Ok((ws, _)) => ws,
        Err(e) => return ConnEnd::Lost(format!("connect: {e}")),
    };
    summary.connections += 1;
    let mut max_fps = f64::MAX;
    let mut fps = opts.fps;
    let mut tick = frame_interval(fps);
    let mut stats = interval(opts.stats_every);
    stats.tick().await;
    let mut sent_this_conn = 0u64;
    let started = Instant::now();
    loop {
        if opts.frames.is_some_and(|n| summary.sent >= n)
            || deadline.is_some_and(|d| Instant::now() >= d)
        {
            let _ = ws.close(None).await;
            // Drain until the server's close reply so the close is clean.
            let _ = tokio::time::timeout(Duration::from_secs(2), async {
                while let Some(Ok(_)) = ws.next().await {}
            })
            .await;
            return ConnEnd::Done;
        }
        tokio::select! {
            _ = tick.tick() => {
                let frame = opts.source.frame(summary.sent);
                if let Err(e) = ws.send(Message::Binary(frame.into())).await {
                    return ConnEnd::Lost(format!("send: {e}"));
                }
                summary.sent += 1;
                sent_this_conn += 1;
            }
            _ = stats.tick() => {
                let secs = started.elapsed().as_secs_f64().max(0.001);
                let msg = DeviceMessage::Stats {
                    fps: Some(sent_this_conn as f64 / secs),
                    rssi: Some(-55),
                    heap_free: Some(180_000),
                    frames: Some(summary.sent),
                };
                let text = serde_json::to_string(&msg).unwrap_or_default();
                if let Err(e) = ws.send(Message::Text(text.into())).await {
                    return ConnEnd::Lost(format!("send: {e}"));
                }
            }
            msg = ws.next() => match msg {
                None => return ConnEnd::Lost("closed without a close frame".into()),
                Some(Err(e)) => return ConnEnd::Lost(e.to_string()),
                Some(Ok(Message::Close(frame))) => {
                    return ConnEnd::Closed(frame.map_or(1005, |f| u16::from(f.code)));
                }
                Some(Ok(Message::Text(text))) => match ServerMessage::parse(&text) {
                    Some(ServerMessage::Ready { max_fps: m, .. }) => {
                        tracing::debug!(max_fps = m, "ready");
                        max_fps = f64::from(m.max(1));
                        if fps > max_fps {
                            fps = max_fps;
                            tick = frame_interval(fps);
                        }
                    }
                    Some(ServerMessage::Control { fps: want, quality, frame_size, .. }) if opts.obey_control => {
                        summary.asked_fps = want.or(summary.asked_fps);
                        if let Some(w) = want {
                            let new = f64::from(w.max(1)).min(max_fps).min(opts.fps);
                            if (new - fps).abs() > f64::EPSILON {
                                tracing::debug!(fps = new, "server asked for a new rate");
                                fps = new;
                                tick = frame_interval(fps);
                            }
                        }
                        let size = frame_size.and_then(|s| s.parse::<FrameSize>().ok());
                        opts.source.apply_control(quality, size);
                    }
                    Some(ServerMessage::Error { code, message }) => {
                        tracing::info!(%code, %message, "server error");
                        summary.last_error = Some(code);
                    }
                    _ => {}
                },
                Some(Ok(_)) => {}
            }
        }
    }
}

fn frame_interval(fps: f64) -> tokio::time::Interval {
    let period = Duration::from_secs_f64(1.0 / fps.max(0.01));
    let mut i = interval(period);
    i.set_missed_tick_behavior(MissedTickBehavior::Skip);
    i
}
