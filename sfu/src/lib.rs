//! camgate's selective forwarding unit.
//!
//! The SFU is where every source becomes a track: a camera, an RTMP encoder
//! and a browser publishing over WHIP are all publishers of tracks in a room,
//! and every player subscribes to tracks. The WebRTC engine (str0m, sans-IO)
//! arrives with the WebRTC issue; today the crate holds the vocabulary the
//! stream hub already uses to describe a track, so the hub and the SFU speak
//! of tracks the same way from the start.
#![deny(missing_docs)]

use std::fmt;

/// The codec a track carries in its native form.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum Codec {
    /// Motion JPEG: every frame a whole JPEG image (ESP32-CAM, HTTP MJPEG).
    Jpeg,
}

impl Codec {
    /// The media type of one frame of this codec.
    pub fn mime_type(self) -> &'static str {
        match self {
            Codec::Jpeg => "image/jpeg",
        }
    }
}

impl fmt::Display for Codec {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Codec::Jpeg => "jpeg",
        })
    }
}

/// What kind of source publishes a track, as the streams API names it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum SourceKind {
    /// A camera pushing JPEG frames over the device WebSocket.
    WsMjpeg,
}

impl SourceKind {
    /// The API's `type` value (`ws-mjpeg`, …).
    pub fn as_str(self) -> &'static str {
        match self {
            SourceKind::WsMjpeg => "ws-mjpeg",
        }
    }

    /// The codec this kind of source publishes.
    pub fn codec(self) -> Codec {
        match self {
            SourceKind::WsMjpeg => Codec::Jpeg,
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
