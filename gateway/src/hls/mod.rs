//! HLS and low-latency HLS from a memory ring.

pub mod mux;
