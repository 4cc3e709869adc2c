//! `camsim serve`: the HTTP side of the stock ESP32 CameraWebServer
//! firmware, for pulling (camgate `url` ingresses).
//!
//! * `GET /stream` — `multipart/x-mixed-replace` with the firmware's
//!   boundary and part headers (`Content-Type`, `Content-Length`,
//!   `X-Timestamp`), one part per frame at `--fps`.
//! * `GET /capture` — one JPEG.
//!
//! Plain HTTP/1.1 on tokio, one connection per client, no keep-alive on
//! `/stream` (as the firmware). `--garbage` makes `/stream` send random
//! bytes instead of parts, to test that a puller copes.

use std::net::SocketAddr;
use std::time::Duration;

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};

use crate::frames::FrameSource;

/// The firmware's part boundary.
pub const BOUNDARY: &str = "123456789000000000000987654321";

/// How `camsim serve` behaves.
#[derive(Clone, Debug)]
pub struct ServeOptions {
    /// Frames per second on `/stream`.
    pub fps: f64,
    /// Where frames come from.
    pub source: FrameSource,
    /// Send random bytes on `/stream` instead of frames.
    pub garbage: bool,
}

/// Serves until the process ends; prints `listening <addr>` first.
pub async fn serve(listen: SocketAddr, options: ServeOptions) -> std::io::Result<()> {
    let listener = TcpListener::bind(listen).await?;
    println!("listening {}", listener.local_addr()?);
    loop {
        let (socket, _) = listener.accept().await?;
        let _ = socket.set_nodelay(true);
        let options = options.clone();
        tokio::spawn(async move {
            let _ = handle(socket, &options).await;
        });
    }
}

async fn handle(mut socket: TcpStream, o: &ServeOptions) -> std::io::Result<()> {
    let mut head = Vec::new();
    let mut buf = [0u8; 1024];
    while !head.windows(4).any(|w| w == b"\r\n\r\n") {
        let n = socket.read(&mut buf).await?;
        if n == 0 || head.len() > 16 * 1024 {
            return Ok(());
        }
        head.extend_from_slice(&buf[..n]);
    }
    let text = String::from_utf8_lossy(&head);
    let path = text.split_whitespace().nth(1).unwrap_or("/");
    let path = path.split('?').next().unwrap_or(path);
    match path {
        "/capture" => {
            let jpeg = o.source.frame(0);
            let header = format!(
                "HTTP/1.1 200 OK\r\nContent-Type: image/jpeg\r\nContent-Length: {}\r\n\
                 Content-Disposition: inline; filename=capture.jpg\r\n\
                 Access-Control-Allow-Origin: *\r\nConnection: close\r\n\r\n",
                jpeg.len()
            );
            socket.write_all(header.as_bytes()).await?;
            socket.write_all(&jpeg).await
        }
        "/stream" => {
            let header = format!(
                "HTTP/1.1 200 OK\r\nContent-Type: multipart/x-mixed-replace;boundary={BOUNDARY}\r\n\
                 Access-Control-Allow-Origin: *\r\nX-Framerate: {}\r\n\r\n",
                o.fps.round()
            );
            socket.write_all(header.as_bytes()).await?;
            let mut tick = tokio::time::interval(Duration::from_secs_f64(1.0 / o.fps.max(0.1)));
            let mut seq = 0u64;
            loop {
                tick.tick().await;
                if o.garbage {
                    let junk: Vec<u8> = (0..4096).map(|_| rand::random::<u8>()).collect();
                    socket.write_all(&junk).await?;
                    continue;
                }
                let jpeg = o.source.frame(seq);
                let micros = crate::frames::unix_micros();
                let part = format!(
                    "\r\n--{BOUNDARY}\r\nContent-Type: image/jpeg\r\nContent-Length: {}\r\n\
                     X-Timestamp: {}.{:06}\r\n\r\n",
                    jpeg.len(),
                    micros / 1_000_000,
                    micros % 1_000_000
                );
                socket.write_all(part.as_bytes()).await?;
                socket.write_all(&jpeg).await?;
                seq += 1;
            }
        }
        _ => {
            socket
                .write_all(
                    b"HTTP/1.1 404 Not Found\r\nContent-Length: 0\r\nConnection: close\r\n\r\n",
                )
                .await
        }
    }
}
