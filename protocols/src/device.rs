//! The WebSocket device protocol spoken between a camera and camgate.
//!
//! Wire compatible with the ESP32 WS ingest of the StreamHub reference: the
//! camera sends one binary message per JPEG and may send `stats` text
//! messages; the server sends `ready`, `error` and (camgate's extension)
//! `control`. Unknown text messages are ignored by both sides. The full
//! protocol is written down in `docs/device-protocol.md`.

use serde::{Deserialize, Serialize};

/// Close codes the server uses, with the reasons it sends.
pub mod close {
    /// Normal close.
    pub const NORMAL: u16 = 1000;
    /// Repeated non-JPEG data (`unsupported data`).
    pub const UNSUPPORTED_DATA: u16 = 1003;
    /// Server shutting down.
    pub const GOING_AWAY: u16 = 1001;
    /// Bad key, unknown app, room mismatch or revoked key.
    pub const UNAUTHORIZED: u16 = 4401;
    /// Ingest disabled, quota or camera cap reached.
    pub const FORBIDDEN: u16 = 4403;
    /// No accepted frame within the idle timeout.
    pub const IDLE_TIMEOUT: u16 = 4408;
    /// Replaced by a newer connection with the same key.
    pub const REPLACED: u16 = 4409;
    /// Frame larger than `maxFrameBytes`.
    pub const FRAME_TOO_LARGE: u16 = 4413;
    /// Handshake rate limit per address.
    pub const RATE_LIMITED: u16 = 4429;
}

/// A text message from the server to a device.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "lowercase")]
#[non_exhaustive]
pub enum ServerMessage {
    /// Sent once the connection is accepted.
    #[serde(rename_all = "camelCase")]
    Ready {
        /// Namespaced room (`live-cam1`).
        room: String,
        /// Stream id, `<room>/<identity>`.
        stream_id: String,
        /// Frames per second above which frames are dropped.
        max_fps: u32,
        /// Largest accepted frame in bytes.
        max_frame_bytes: u32,
        /// Seconds without an accepted frame before the server closes.
        idle_timeout_sec: u32,
    },
    /// Sent just before an abnormal close.
    Error {
        /// Machine-readable code (`frame_too_large`, `idle_timeout`, or the
        /// close code as a string for handshake rejections).
        code: String,
        /// Human-readable reason.
        message: String,
    },
    /// camgate extension: the rate and quality the server wants now.
    ///
    /// Sent after `ready` and whenever the wish changes (for example when
    /// the last viewer leaves). Every field is optional; a device that does
    /// not know this message ignores it, which is always safe.
    #[serde(rename_all = "camelCase")]
    Control {
        /// Target frames per second (never above `maxFps`).
        #[serde(default, skip_serializing_if = "Option::is_none")]
        fps: Option<u32>,
        /// JPEG quality for the esp32-camera driver (0–63, lower is better).
        #[serde(default, skip_serializing_if = "Option::is_none")]
        quality: Option<u8>,
        /// Frame size name (`QVGA`, `VGA`, `SVGA`, `HD`, …).
        #[serde(default, skip_serializing_if = "Option::is_none")]
        frame_size: Option<String>,
        /// Why the server asks (`no_viewers`, `viewers`).
        #[serde(default, skip_serializing_if = "Option::is_none")]
        reason: Option<String>,
    },
}

/// A text message from a device to the server.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "lowercase")]
#[non_exhaustive]
pub enum DeviceMessage {
    /// Periodic device health, about every 30 s.
    #[serde(rename_all = "camelCase")]
    Stats {
        /// Frames per second the device is sending.
        #[serde(default)]
        fps: Option<f64>,
        /// WiFi signal strength in dBm.
        #[serde(default)]
        rssi: Option<i32>,
        /// Free heap in bytes.
        #[serde(default)]
        heap_free: Option<u64>,
        /// Frames sent since boot.
        #[serde(default)]
        frames: Option<u64>,
    },
}

impl DeviceMessage {
    /// Parses a device text message; `None` for anything unknown or malformed
    /// (the protocol says such messages are ignored).
    pub fn parse(text: &str) -> Option<DeviceMessage> {
        serde_json::from_str(text).ok()
    }
}

impl ServerMessage {
    /// Parses a server text message; `None` for anything unknown.
    pub fn parse(text: &str) -> Option<ServerMessage> {
        serde_json::from_str(text).ok()
    }

    /// The message as JSON text.
    pub fn to_json(&self) -> String {
        // Serializing these plain structs cannot fail.
        serde_json::to_string(self).unwrap_or_default()
    }
}

/// Frame sizes of the OV2640 that camsim and the control message name.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum FrameSize {
    /// 320×240.
    Qvga,
    /// 640×480.
    Vga,
    /// 800×600.
    Svga,
    /// 1280×720.
    Hd,
}

impl FrameSize {
    /// Width and height in pixels.
    pub fn dimensions(self) -> (u16, u16) {
        match self {
            FrameSize::Qvga => (320, 240),
            FrameSize::Vga => (640, 480),
            FrameSize::Svga => (800, 600),
            FrameSize::Hd => (1280, 720),
        }
    }

    /// The esp32-camera name (`QVGA`, …).
    pub fn name(self) -> &'static str {
        match self {
            FrameSize::Qvga => "QVGA",
            FrameSize::Vga => "VGA",
            FrameSize::Svga => "SVGA",
            FrameSize::Hd => "HD",
        }
    }
}

impl std::str::FromStr for FrameSize {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s.to_ascii_uppercase().as_str() {
            "QVGA" => Ok(FrameSize::Qvga),
            "VGA" => Ok(FrameSize::Vga),
            "SVGA" => Ok(FrameSize::Svga),
            "HD" => Ok(FrameSize::Hd),
            _ => Err(format!("unknown frame size {s:?} (QVGA | VGA | SVGA | HD)")),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ready_uses_reference_field_names() {
        let m = ServerMessage::Ready {
            room: "live-cam1".into(),
            stream_id: "live-cam1/cam1".into(),
            max_fps: 15,
            max_frame_bytes: 262_144,
            idle_timeout_sec: 30,
        };
        let v: serde_json::Value = serde_json::from_str(&m.to_json()).expect("json");
        assert_eq!(v["type"], "ready");
        assert_eq!(v["streamId"], "live-cam1/cam1");
        assert_eq!(v["maxFps"], 15);
        assert_eq!(v["maxFrameBytes"], 262_144);
        assert_eq!(v["idleTimeoutSec"], 30);
        assert_eq!(ServerMessage::parse(&m.to_json()), Some(m));
    }

    #[test]
    fn control_omits_unset_fields() {
        let m = ServerMessage::Control {
            fps: Some(1),
            quality: None,
            frame_size: None,
            reason: None,
        };
        assert_eq!(m.to_json(), r#"{"type":"control","fps":1}"#);
    }

    #[test]
    fn device_messages() {
        let s = DeviceMessage::parse(
            r#"{"type":"stats","fps":9.5,"rssi":-61,"heapFree":123,"frames":7}"#,
        );
        assert_eq!(
            s,
            Some(DeviceMessage::Stats {
                fps: Some(9.5),
                rssi: Some(-61),
                heap_free: Some(123),
                frames: Some(7)
            })
        );
        assert_eq!(DeviceMessage::parse(r#"{"type":"hello"}"#), None);
        assert_eq!(DeviceMessage::parse("not json"), None);
        assert_eq!("vga".parse(), Ok(FrameSize::Vga));
    }
}
