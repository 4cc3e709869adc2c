//! Stats and metrics: `GET /api/v1/stats` (reference §2.3, global),
//! `GET /api/v1/apps/{app}/stats` (`app:read`), both cached 5 s, and the
//! Prometheus text at `GET /metrics` (a global token, as a bearer).
//!
//! The Prometheus exposition format is a few lines of text per metric, and
//! camgate's numbers already live in its own state (hub, SFU, pulls,
//! webhooks) — so `/metrics` renders them directly instead of mirroring
//! them into a metrics registry crate.

use std::sync::Mutex;
use std::time::{Duration, Instant};

use axum::extract::{Path, State};
use axum::http::Method;
use axum::http::{HeaderValue, header};
use axum::response::{IntoResponse, Response};
use serde_json::{Value, json};

use super::catalog::{Access, Routes};
use super::native::app_for;
use super::{ApiError, Auth, ok};
use crate::server::SharedState;

/// How long a stats answer is reused.
const CACHE: Duration = Duration::from_secs(5);

/// Cached stats answers.
#[derive(Debug, Default)]
pub struct StatsCache {
    global: Mutex<Option<(Instant, Value)>>,
    apps: Mutex<std::collections::HashMap<i64, (Instant, Value)>>,
}

/// Routes under `/api/v1`.
pub fn routes() -> Routes {
    Routes::new()
        .op(
            Method::GET,
            "/stats",
            Access::Global("usage:read"),
            "Platform totals (cached 5 s)",
            global,
        )
        .op(
            Method::GET,
            "/apps/{app}/stats",
            Access::App("app:read"),
            "Live/VOD/storage/ingress snapshot of an app (cached 5 s)",
            app_stats,
        )
        .op(
            Method::GET,
            "/logs",
            Access::Global("usage:read"),
            "Event log (?app, level, source, q, since, until, limit, offset)",
            global_logs,
        )
        .op(
            Method::GET,
            "/apps/{app}/logs",
            Access::App("usage:read"),
            "Event log of one app (same filters)",
            app_logs,
        )
}

/// Query of `GET /logs` (reference §2.3).
#[derive(Debug, serde::Deserialize)]
struct LogQuery {
    app: Option<String>,
    level: Option<String>,
    source: Option<String>,
    q: Option<String>,
    since: Option<String>,
    until: Option<String>,
    limit: Option<String>,
    offset: Option<String>,
}

const LEVELS: [&str; 6] = ["trace", "debug", "info", "warn", "error", "fatal"];

async fn logs(state: &SharedState, q: LogQuery, app: Option<String>) -> Result<Response, ApiError> {
    let bad = |code, m: &str| ApiError::bad_request(code, m.to_owned());
    let too_long = |v: &Option<String>, n: usize| v.as_ref().is_some_and(|s| s.chars().count() > n);
    if too_long(&q.app, 64) || too_long(&q.source, 64) {
        return Err(bad(
            "invalid_query",
            "app and source are at most 64 characters",
        ));
    }
    if too_long(&q.q, 200) {
        return Err(bad("invalid_query", "q is at most 200 characters"));
    }
    // `level=warn` shows warn and worse.
    let levels = match q.level.as_deref() {
        None => None,
        Some(l) => {
            let at = LEVELS.iter().position(|x| *x == l).ok_or_else(|| {
                bad(
                    "invalid_level",
                    "level is trace, debug, info, warn, error or fatal",
                )
            })?;
            Some(LEVELS[at..].to_vec())
        }
    };
    let time = |v: &Option<String>, name: &str| -> Result<Option<String>, ApiError> {
        v.as_deref()
            .map(|t| {
                time::OffsetDateTime::parse(t, &time::format_description::well_known::Rfc3339)
                    .map(|_| t.to_owned())
                    .map_err(|_| bad("invalid_time", &format!("{name} must be an ISO-8601 time")))
            })
            .transpose()
    };
    let filter = crate::store::LogFilter {
        app: app.or(q.app),
        levels,
        source: q.source,
        q: q.q.filter(|s| !s.is_empty()),
        since: time(&q.since, "since")?,
        until: time(&q.until, "until")?,
    };
    let (limit, offset) = super::paging(q.limit.as_deref(), q.offset.as_deref(), 100, 1000)?;
    let (rows, total) = state.db.list_logs(&filter, limit, offset).await?;
    let mut ids = std::collections::HashMap::new();
    for a in state.db.list_apps(None).await? {
        ids.insert(a.name, a.id);
    }
    let data: Vec<Value> = rows
        .into_iter()
        .map(|e| {
            json!({
                "id": e.id,
                "ts": e.ts,
                "level": e.level,
                "source": e.source,
                "appId": e.app.as_ref().and_then(|a| ids.get(a)),
                "app": e.app,
                "message": e.message,
                "metaJson": e.meta_json,
            })
        })
        .collect();
    Ok(super::page(data, total, limit, offset))
}

/// `GET /api/v1/logs` (global token, `usage:read`).
async fn global_logs(
    State(state): State<SharedState>,
    Auth(who): Auth,
    axum::extract::Query(q): axum::extract::Query<LogQuery>,
) -> Result<Response, ApiError> {
    who.require_global("usage:read")?;
    logs(&state, q, None).await
}

/// `GET /api/v1/apps/{app}/logs` (`usage:read`).
async fn app_logs(
    State(state): State<SharedState>,
    Auth(who): Auth,
    Path(app): Path<String>,
    axum::extract::Query(q): axum::extract::Query<LogQuery>,
) -> Result<Response, ApiError> {
    let app = app_for(&state, &who, &app, "usage:read").await?;
    logs(&state, q, Some(app.name)).await
}

/// Live counts over the hub: (rooms, viewers, publishers by type).
fn live_counts(
    state: &SharedState,
    app: Option<&str>,
) -> (usize, usize, Vec<(&'static str, usize)>) {
    let rooms = state.hub.rooms();
    let mut by_type: Vec<(&'static str, usize)> = Vec::new();
    let mut viewers = 0;
    let mut n = 0;
    for r in rooms
        .iter()
        .filter(|r| app.is_none_or(|a| r.key().app == a))
    {
        n += 1;
        viewers += r.viewer_count();
        if let Some(kind) = r.publisher() {
            match by_type.iter_mut().find(|(k, _)| *k == kind.as_str()) {
                Some((_, c)) => *c += 1,
                None => by_type.push((kind.as_str(), 1)),
            }
        }
    }
    (n, viewers, by_type)
}

fn read_proc(path: &str) -> Option<String> {
    std::fs::read_to_string(path).ok()
}

fn meminfo(key: &str, text: &str) -> Option<u64> {
    text.lines()
        .find_map(|l| l.strip_prefix(key))
        .and_then(|rest| {
            rest.trim()
                .trim_end_matches("kB")
                .trim()
                .parse::<u64>()
                .ok()
        })
        .map(|kb| kb * 1024)
}

async fn global(State(state): State<SharedState>, Auth(who): Auth) -> Result<Response, ApiError> {
    who.require_global("usage:read")?;
    if let Some((at, v)) = state
        .stats_cache
        .global
        .lock()
        .unwrap_or_else(|e| e.into_inner())
        .clone()
        && at.elapsed() < CACHE
    {
        return Ok(ok(v));
    }
    let load: Vec<f64> = read_proc("/proc/loadavg")
        .map(|t| {
            t.split_whitespace()
                .take(3)
                .filter_map(|x| x.parse().ok())
                .collect()
        })
        .unwrap_or_default();
    let mem = read_proc("/proc/meminfo").unwrap_or_default();
    let total = meminfo("MemTotal:", &mem);
    let free = meminfo("MemAvailable:", &mem);
    let apps = state.db.list_apps(None).await?.len();
    let (rooms, viewers, by_type) = live_counts(&state, None);
    let active: usize = by_type.iter().map(|(_, c)| c).sum();
    let sfu = state.media.sfu().stats().await.ok();
    let v = json!({
        "ts": crate::auth::now_rfc3339(),
        "uptimeSeconds": state.started.elapsed().as_secs(),
        "version": env!("CARGO_PKG_VERSION"),
        "cpu": {
            "loadAvg": load,
            "cores": std::thread::available_parallelism().map(|n| n.get()).unwrap_or(1),
        },
        "memory": {
            "totalBytes": total,
            "freeBytes": free,
            "usedBytes": total.zip(free).map(|(t, f)| t.saturating_sub(f)),
        },
        "disk": null,
        // The reference's media server is LiveKit; camgate's is its SFU.
        "livekitReachable": sfu.is_some(),
        "counts": { "apps": apps, "rooms": rooms, "activeStreams": active, "viewers": viewers },
        "streamsByType": by_type.iter().map(|(k, c)| (k.to_string(), json!(c))).collect::<serde_json::Map<_, _>>(),
        "sfu": sfu.map(|s| json!({
            "peers": s.peers, "rooms": s.rooms, "packetsIn": s.packets_in, "packetsOut": s.packets_out,
        })),
        "egress": { "reachable": false, "active": 0, "total": 0 },
        "ingress": { "rtmpPublishing": state.rtmp.count(), "pulled": state.pulls.count() },
    });
    *state
        .stats_cache
        .global
        .lock()
        .unwrap_or_else(|e| e.into_inner()) = Some((Instant::now(), v.clone()));
    Ok(ok(v))
}

async fn app_stats(
    State(state): State<SharedState>,
    Auth(who): Auth,
    Path(app): Path<String>,
) -> Result<Response, ApiError> {
    let app = app_for(&state, &who, &app, "app:read").await?;
    if let Some((at, v)) = state
        .stats_cache
        .apps
        .lock()
        .unwrap_or_else(|e| e.into_inner())
        .get(&app.id)
        .cloned()
        && at.elapsed() < CACHE
    {
        return Ok(ok(v));
    }
    let (rooms, viewers, by_type) = live_counts(&state, Some(&app.name));
    let active: usize = by_type.iter().map(|(_, c)| c).sum();
    let (_, streams_total) = state.db.list_streams(app.id, None, 1, 0).await?;
    let (_, snapshots) = state.db.list_snapshots(app.id, None, 1, 0).await?;
    let (_, ingresses) = state.db.list_ingresses(app.id, None, None, 1, 0).await?;
    let (vods, vod_bytes) = state.db.vod_usage(app.id).await?;
    let v = json!({
        "ts": crate::auth::now_rfc3339(),
        "app": app.name,
        "live": { "rooms": rooms, "activeStreams": active, "viewers": viewers,
                  "streamsByType": by_type.iter().map(|(k, c)| (k.to_string(), json!(c))).collect::<serde_json::Map<_, _>>() },
        "streams": { "total": streams_total },
        "ingress": { "total": ingresses },
        "snapshots": { "total": snapshots },
        "vod": { "total": vods, "bytes": vod_bytes },
        "egress": {
            "month": crate::restream::month(),
            "bytes": state.db.egress(app.id, &crate::restream::month()).await?,
            "limitGb": crate::restream::egress_limit_gb(&app),
            "restreams": state.restreams.count_app(app.id),
        },
    });
    state
        .stats_cache
        .apps
        .lock()
        .unwrap_or_else(|e| e.into_inner())
        .insert(app.id, (Instant::now(), v.clone()));
    Ok(ok(v))
}

/// `GET /metrics`: Prometheus text format, names prefixed `camgate_`.
pub async fn metrics(
    State(state): State<SharedState>,
    Auth(who): Auth,
) -> Result<Response, ApiError> {
    use std::fmt::Write;
    use std::sync::atomic::Ordering::Relaxed;
    who.require_global("usage:read")?;
    let mut out = String::new();
    let mut metric = |name: &str, kind: &str, help: &str, samples: &[(String, f64)]| {
        let _ = writeln!(out, "# HELP camgate_{name} {help}");
        let _ = writeln!(out, "# TYPE camgate_{name} {kind}");
        for (labels, v) in samples {
            let _ = writeln!(out, "camgate_{name}{labels} {v}");
        }
    };
    let one = |v: f64| vec![(String::new(), v)];
    metric(
        "uptime_seconds",
        "gauge",
        "Seconds since start.",
        &one(state.started.elapsed().as_secs_f64()),
    );
    // Process figures for leak checks: tasks, file descriptors, memory,
    // open connections.
    metric(
        "tasks",
        "gauge",
        "Tokio tasks alive.",
        &one(tokio::runtime::Handle::current()
            .metrics()
            .num_alive_tasks() as f64),
    );
    if let Ok(fds) = std::fs::read_dir("/proc/self/fd") {
        metric(
            "open_fds",
            "gauge",
            "File descriptors open.",
            &one(fds.count() as f64),
        );
    }
    if let Some(rss) = std::fs::read_to_string("/proc/self/statm")
        .ok()
        .and_then(|s| s.split_whitespace().nth(1)?.parse::<f64>().ok())
    {
        metric(
            "resident_bytes",
            "gauge",
            "Resident memory (4 KiB pages × 4096).",
            &one(rss * 4096.0),
        );
    }
    metric(
        "connections",
        "gauge",
        "Open connections by listener.",
        &[
            ("{listener=\"http\"}".into(), state.http_conns.open() as f64),
            ("{listener=\"rtmp\"}".into(), state.rtmp_conns.open() as f64),
        ],
    );
    let (rooms, viewers, by_type) = live_counts(&state, None);
    metric(
        "rooms",
        "gauge",
        "Rooms with a publisher or viewers.",
        &one(rooms as f64),
    );
    metric(
        "viewers",
        "gauge",
        "Viewers (MJPEG, viewer WebSocket, WebRTC; hidden ones not counted).",
        &one(viewers as f64),
    );
    let streams: Vec<(String, f64)> = ["ws-mjpeg", "whip", "rtmp", "rtsp", "http-mjpeg"]
        .iter()
        .map(|k| {
            let n = by_type.iter().find(|(t, _)| t == k).map_or(0, |(_, c)| *c);
            (format!("{{type=\"{k}\"}}"), n as f64)
        })
        .collect();
    metric("streams", "gauge", "Live streams by source type.", &streams);
    metric(
        "cameras_connected",
        "gauge",
        "Cameras connected over the device WebSocket.",
        &one(state.cameras.count() as f64),
    );
    metric(
        "rtmp_publishers",
        "gauge",
        "RTMP pushes publishing.",
        &one(state.rtmp.count() as f64),
    );
    let pulls: Vec<(String, f64)> = ["connecting", "publishing", "retrying"]
        .iter()
        .map(|s| {
            (
                format!("{{status=\"{s}\"}}"),
                state.pulls.count_status(s) as f64,
            )
        })
        .collect();
    metric(
        "pulled_cameras",
        "gauge",
        "Pulled cameras by status.",
        &pulls,
    );
    if let Ok(s) = state.media.sfu().stats().await {
        metric("sfu_peers", "gauge", "WebRTC peers.", &one(s.peers as f64));
        metric(
            "sfu_packets_in_total",
            "counter",
            "RTP packets received by the SFU.",
            &one(s.packets_in as f64),
        );
        metric(
            "sfu_packets_out_total",
            "counter",
            "RTP packets sent to subscribers.",
            &one(s.packets_out as f64),
        );
        metric(
            "sfu_unmatched_datagrams_total",
            "counter",
            "UDP datagrams that matched no peer.",
            &one(s.unmatched_datagrams as f64),
        );
    }
    let w = &state.webhooks.counters;
    metric(
        "webhook_deliveries_total",
        "counter",
        "Webhook deliveries by result.",
        &[
            (
                "{result=\"delivered\"}".into(),
                w.delivered.load(Relaxed) as f64,
            ),
            ("{result=\"failed\"}".into(), w.failed.load(Relaxed) as f64),
            (
                "{result=\"dropped\"}".into(),
                w.dropped.load(Relaxed) as f64,
            ),
        ],
    );
    crate::metrics::METRICS.render(&mut out);
    let mut resp = out.into_response();
    resp.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("text/plain; version=0.0.4; charset=utf-8"),
    );
    Ok(resp)
}
