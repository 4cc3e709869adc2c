//! Transcoders that attach on demand: they start when the first consumer
//! that needs them arrives and stop after the last one leaves.
//!
//! * [`jpeg_h264`]: MJPEG cameras → H.264 RTP for WebRTC viewers.
//! * [`aac_opus`]: AAC → Opus for WebRTC viewers of RTMP streams.
//! * [`g711_opus`]: a camera's G.711 → Opus for HLS and recordings.
//! * [`h264_jpeg`]: one H.264 keyframe → JPEG (`frame.jpg` of H.264 streams).
//! * [`h264_mjpeg`]: H.264 → MJPEG while MJPEG viewers watch an H.264 stream.
//! * [`camera`]: the task that runs one camera's transcoder while WebRTC
//!   subscribers watch it.

pub mod aac_opus;
pub mod camera;
pub mod g711_opus;
pub mod h264_jpeg;
pub mod h264_mjpeg;
pub mod jpeg_h264;
