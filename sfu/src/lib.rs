//! camgate's selective forwarding unit.
//!
//! The SFU is where every source becomes a track: a camera, an RTMP encoder
//! and a browser publishing over WHIP are all publishers of tracks in a room,
//! and every player subscribes to tracks.
//!
//! * [`core`]: the sans-IO engine on str0m — rooms, peers, routing, keyframe
//!   requests, data channels. No sockets, no clock.
//! * [`driver`]: the thin tokio layer owning the one UDP socket.
//!
//! The run loop, in short (the driver does exactly this):
//!
//! ```no_run
//! # use camgate_sfu::core::{Output, Sfu};
//! # use std::time::Instant;
//! # fn recv() -> (std::net::SocketAddr, Vec<u8>) { unimplemented!() }
//! # fn send(_: &str::net::Transmit) {}
//! # mod str { pub use str0m::net; }
//! let local = "127.0.0.1:8189".parse().unwrap();
//! let mut sfu = Sfu::new(vec![local]);
//! loop {
//!     let deadline = loop {
//!         match sfu.poll_output() {
//!             Output::Transmit(t) => send(&t),
//!             Output::Event(e) => println!("{e:?}"),
//!             Output::Timeout(t) => break t,
//!         }
//!     };
//!     // Wait for a datagram or the deadline, whichever is first.
//!     let (from, data) = recv();
//!     sfu.handle_datagram(Instant::now(), from, local, &data);
//!     if Instant::now() >= deadline {
//!         sfu.handle_timeout(Instant::now());
//!     }
//! }
//! ```
#![deny(missing_docs)]

pub mod core;
pub mod driver;

pub use driver::SfuHandle;

use std::fmt;

/// The codec a track carries in its native form.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum Codec {
    /// Motion JPEG: every frame a whole JPEG image (ESP32-CAM, HTTP MJPEG).
    Jpeg,
    /// RTP media negotiated over WebRTC (H.264, VP8, Opus, G.711).
    Rtp,
}

impl Codec {
    /// The media type of one frame of this codec.
    pub fn mime_type(self) -> &'static str {
        match self {
            Codec::Jpeg => "image/jpeg",
            Codec::Rtp => "application/rtp",
        }
    }
}

impl fmt::Display for Codec {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Codec::Jpeg => "jpeg",
            Codec::Rtp => "rtp",
        })
    }
}

/// What kind of source publishes a track, as the streams API names it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum SourceKind {
    /// A camera pushing JPEG frames over the device WebSocket.
    WsMjpeg,
    /// A WebRTC publisher (WHIP).
    Whip,
    /// An RTMP encoder (H.264 passthrough).
    Rtmp,
    /// A pulled RTSP camera sending H.264 (passthrough).
    Rtsp,
    /// A pulled RTSP camera sending MJPEG (RFC 2435).
    RtspJpeg,
    /// A pulled HTTP camera: multipart MJPEG or polled snapshots.
    HttpJpeg,
}

impl SourceKind {
    /// The API's `type` value (`ws-mjpeg`, …).
    pub fn as_str(self) -> &'static str {
        match self {
            SourceKind::WsMjpeg => "ws-mjpeg",
            SourceKind::Whip => "whip",
            SourceKind::Rtmp => "rtmp",
            SourceKind::Rtsp | SourceKind::RtspJpeg => "rtsp",
            SourceKind::HttpJpeg => "http-mjpeg",
        }
    }

    /// The codec this kind of source publishes.
    pub fn codec(self) -> Codec {
        match self {
            SourceKind::WsMjpeg | SourceKind::RtspJpeg | SourceKind::HttpJpeg => Codec::Jpeg,
            SourceKind::Whip | SourceKind::Rtmp | SourceKind::Rtsp => Codec::Rtp,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names() {
        assert_eq!(SourceKind::WsMjpeg.as_str(), "ws-mjpeg");
        assert_eq!(SourceKind::WsMjpeg.codec().mime_type(), "image/jpeg");
        assert_eq!(Codec::Jpeg.to_string(), "jpeg");
    }
}
