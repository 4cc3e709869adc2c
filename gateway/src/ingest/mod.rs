//! Ingest adapters, one module per protocol.

pub mod rtmp;
pub mod ws;
