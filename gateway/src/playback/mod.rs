//! Outputs: MJPEG over HTTP and WebSocket, HLS, and the player pages.

pub mod hls;
pub mod index;
pub mod mjpeg;
pub mod player;
