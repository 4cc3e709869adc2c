//! Ingest adapters, one module per protocol.

pub mod ws;
