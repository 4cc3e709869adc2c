//! Outputs: MJPEG over HTTP and WebSocket, and the player pages.

pub mod mjpeg;
pub mod player;
