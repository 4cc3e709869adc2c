//! The persisted event log behind `GET /api/v1/logs` (reference §2.3).
//!
//! A `tracing` layer copies camgate's own events at `info` and above —
//! with the fields of the event and of the spans it happened in (so a
//! pulled camera's failure carries its `ingress`) — into a bounded channel
//! (never blocking the caller; when full, entries are dropped and counted);
//! a task writes them to SQLite in batches and keeps the newest
//! [`KEEP_ROWS`]. What is logged is already free of secrets (camgate masks
//! URLs and never logs keys or passwords), and the layer drops any field
//! whose name says it holds one anyway.

use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use serde_json::{Map, Value};
use tokio::sync::mpsc;
use tracing::field::{Field, Visit};
use tracing::{Event, Level, Subscriber};
use tracing_subscriber::Layer;
use tracing_subscriber::layer::Context;
use tracing_subscriber::registry::LookupSpan;

use crate::store::{Db, LogEntry};

/// Rows kept in the log.
pub const KEEP_ROWS: i64 = 100_000;
/// Entries queued before new ones are dropped.
const QUEUE: usize = 4096;

/// Entries dropped because the queue was full.
pub static DROPPED: AtomicU64 = AtomicU64::new(0);

/// The layer; see the module docs.
#[derive(Debug)]
pub struct EventLogLayer {
    tx: mpsc::Sender<LogEntry>,
}

/// The receiving end, handed to [`run`] once the database is open.
#[derive(Debug)]
pub struct EventLogReceiver(mpsc::Receiver<LogEntry>);

/// A layer and its receiver.
pub fn layer() -> (EventLogLayer, EventLogReceiver) {
    let (tx, rx) = mpsc::channel(QUEUE);
    (EventLogLayer { tx }, EventLogReceiver(rx))
}

/// Field names never stored.
fn secret_name(name: &str) -> bool {
    let n = name.to_ascii_lowercase();
    ["password", "secret", "token", "key"]
        .iter()
        .any(|s| n == *s || n.ends_with(&format!("_{s}")))
}

#[derive(Default)]
struct Fields {
    message: Option<String>,
    map: Map<String, Value>,
}

impl Visit for Fields {
    fn record_debug(&mut self, field: &Field, value: &dyn std::fmt::Debug) {
        self.put(field, format!("{value:?}"));
    }

    fn record_str(&mut self, field: &Field, value: &str) {
        self.put(field, value.to_owned());
    }

    fn record_i64(&mut self, field: &Field, value: i64) {
        self.map.insert(field.name().to_owned(), value.into());
    }

    fn record_u64(&mut self, field: &Field, value: u64) {
        self.map.insert(field.name().to_owned(), value.into());
    }

    fn record_bool(&mut self, field: &Field, value: bool) {
        self.map.insert(field.name().to_owned(), value.into());
    }
}

impl Fields {
    fn put(&mut self, field: &Field, value: String) {
        if field.name() == "message" {
            self.message = Some(value);
        } else if !secret_name(field.name()) {
            self.map
                .insert(field.name().to_owned(), Value::String(value));
        }
    }
}

/// A span's fields, kept in its extensions.
struct SpanFields(Map<String, Value>);

impl<S> Layer<S> for EventLogLayer
where
    S: Subscriber + for<'a> LookupSpan<'a>,
{
    fn on_new_span(
        &self,
        attrs: &tracing::span::Attributes<'_>,
        id: &tracing::span::Id,
        ctx: Context<'_, S>,
    ) {
        if !attrs.metadata().target().starts_with("camgate") {
            return;
        }
        let mut f = Fields::default();
        attrs.record(&mut f);
        if let Some(span) = ctx.span(id) {
            span.extensions_mut().insert(SpanFields(f.map));
        }
    }

    fn on_event(&self, event: &Event<'_>, ctx: Context<'_, S>) {
        let meta = event.metadata();
        if *meta.level() > Level::INFO || !meta.target().starts_with("camgate") {
            return;
        }
        let mut f = Fields::default();
        if let Some(scope) = ctx.event_scope(event) {
            for span in scope.from_root() {
                if let Some(SpanFields(m)) = span.extensions().get::<SpanFields>() {
                    for (k, v) in m {
                        f.map.insert(k.clone(), v.clone());
                    }
                }
            }
        }
        event.record(&mut f);
        let app = f.map.get("app").and_then(Value::as_str).map(str::to_owned);
        let entry = LogEntry {
            id: 0,
            ts: crate::auth::now_rfc3339(),
            level: meta.level().as_str().to_ascii_lowercase(),
            source: meta
                .target()
                .strip_prefix("camgate::")
                .unwrap_or(meta.target())
                .to_owned(),
            app,
            message: f.message.unwrap_or_default(),
            meta_json: (!f.map.is_empty()).then(|| Value::Object(f.map).to_string()),
        };
        if self.tx.try_send(entry).is_err() {
            DROPPED.fetch_add(1, Ordering::Relaxed);
        }
    }
}

/// Writes queued entries to the database until the channel closes.
pub async fn run(db: Db, rx: EventLogReceiver) {
    let mut rx = rx.0;
    let mut batch = Vec::new();
    let mut since_trim = 0usize;
    loop {
        let first = rx.recv().await;
        let Some(first) = first else { break };
        batch.push(first);
        // Gather what arrives within a moment into one transaction.
        let deadline = tokio::time::Instant::now() + Duration::from_millis(200);
        while batch.len() < 500 {
            match tokio::time::timeout_at(deadline, rx.recv()).await {
                Ok(Some(e)) => batch.push(e),
                _ => break,
            }
        }
        since_trim += batch.len();
        if let Err(e) = db.insert_logs(&batch).await {
            // Not logged through tracing: that would feed this loop.
            eprintln!("camgate: event log write failed: {e}");
        }
        batch.clear();
        if since_trim >= 1000 {
            since_trim = 0;
            let _ = db.trim_logs(KEEP_ROWS).await;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn secret_looking_fields_are_never_kept() {
        for n in ["password", "stream_key", "token", "callback_secret", "key"] {
            assert!(secret_name(n), "{n}");
        }
        for n in ["ingress", "app", "keyframe", "room", "url"] {
            assert!(!secret_name(n), "{n}");
        }
    }
}
