//! Ingest adapters, one module per protocol.

pub mod pull;
pub mod rtmp;
pub mod source;
pub mod ws;
