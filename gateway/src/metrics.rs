//! Process-wide counters for `GET /metrics`: media in and out by source and
//! output, drops by reason, transcoder time, viewer connections and HTTP
//! latency. Plain atomics bumped on the media path (one relaxed add per
//! frame); the histogram map is keyed by the route template, so its size is
//! bounded by the router.

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicI64, AtomicU64, Ordering::Relaxed};
use std::sync::{LazyLock, Mutex};
use std::time::Duration;

/// Where media came from.
#[derive(Debug, Clone, Copy)]
pub enum Source {
    /// Device WebSocket cameras.
    WsMjpeg,
    /// RTMP pushes.
    Rtmp,
    /// Pulled RTSP cameras.
    Rtsp,
    /// Pulled HTTP MJPEG / snapshot cameras.
    HttpMjpeg,
}

impl Source {
    const ALL: [Source; 4] = [
        Source::WsMjpeg,
        Source::Rtmp,
        Source::Rtsp,
        Source::HttpMjpeg,
    ];
    fn label(self) -> &'static str {
        match self {
            Source::WsMjpeg => "ws-mjpeg",
            Source::Rtmp => "rtmp",
            Source::Rtsp => "rtsp",
            Source::HttpMjpeg => "http-mjpeg",
        }
    }
}

/// How media left.
#[derive(Debug, Clone, Copy)]
pub enum Output {
    /// `multipart/x-mixed-replace` viewers.
    Mjpeg,
    /// Viewer WebSocket.
    ViewerWs,
    /// `frame.jpg`.
    Snapshot,
}

impl Output {
    const ALL: [Output; 3] = [Output::Mjpeg, Output::ViewerWs, Output::Snapshot];
    fn label(self) -> &'static str {
        match self {
            Output::Mjpeg => "mjpeg",
            Output::ViewerWs => "viewer-ws",
            Output::Snapshot => "frame-jpg",
        }
    }
}

/// Why a frame was dropped.
#[derive(Debug, Clone, Copy)]
pub enum DropReason {
    /// Above the camera's fps cap.
    FpsCap,
    /// Not one whole JPEG.
    NotJpeg,
    /// Above the frame size cap (the connection is closed too).
    TooLarge,
}

impl DropReason {
    const ALL: [DropReason; 3] = [
        DropReason::FpsCap,
        DropReason::NotJpeg,
        DropReason::TooLarge,
    ];
    fn label(self) -> &'static str {
        match self {
            DropReason::FpsCap => "fps_cap",
            DropReason::NotJpeg => "not_jpeg",
            DropReason::TooLarge => "too_large",
        }
    }
}

/// A transcoder.
#[derive(Debug, Clone, Copy)]
pub enum Transcoder {
    /// MJPEG cameras → H.264 for WebRTC and HLS.
    JpegToH264,
    /// H.264 streams → MJPEG viewers.
    H264ToJpeg,
    /// RTMP AAC → Opus for WebRTC.
    AacToOpus,
    /// Camera G.711 → Opus for HLS and recordings.
    G711ToOpus,
}

impl Transcoder {
    const ALL: [Transcoder; 4] = [
        Transcoder::JpegToH264,
        Transcoder::H264ToJpeg,
        Transcoder::AacToOpus,
        Transcoder::G711ToOpus,
    ];
    fn label(self) -> &'static str {
        match self {
            Transcoder::JpegToH264 => "jpeg_h264",
            Transcoder::H264ToJpeg => "h264_jpeg",
            Transcoder::AacToOpus => "aac_opus",
            Transcoder::G711ToOpus => "g711_opus",
        }
    }
}

/// Upper bounds of the HTTP latency histogram, seconds.
const BUCKETS: [f64; 11] = [
    0.001, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 10.0,
];

#[derive(Debug, Default, Clone)]
struct Histogram {
    counts: [u64; BUCKETS.len()],
    count: u64,
    sum: f64,
}

/// The counters.
#[derive(Debug, Default)]
pub struct Metrics {
    frames_in: [AtomicU64; 4],
    bytes_in: [AtomicU64; 4],
    frames_out: [AtomicU64; 3],
    bytes_out: [AtomicU64; 3],
    drops: [AtomicU64; 3],
    transcode_ns: [AtomicU64; 4],
    transcode_runs: [AtomicU64; 4],
    viewers: [AtomicI64; 3],
    http: Mutex<BTreeMap<(String, String), Histogram>>,
}

/// The one registry of the process.
pub static METRICS: LazyLock<Metrics> = LazyLock::new(Metrics::default);

impl Metrics {
    /// A frame (or access unit) of `bytes` arrived from `source`.
    pub fn frame_in(&self, source: Source, bytes: usize) {
        self.frames_in[source as usize].fetch_add(1, Relaxed);
        self.bytes_in[source as usize].fetch_add(bytes as u64, Relaxed);
    }

    /// A frame of `bytes` was sent to a viewer.
    pub fn frame_out(&self, output: Output, bytes: usize) {
        self.frames_out[output as usize].fetch_add(1, Relaxed);
        self.bytes_out[output as usize].fetch_add(bytes as u64, Relaxed);
    }

    /// A frame was dropped.
    pub fn dropped(&self, reason: DropReason) {
        self.drops[reason as usize].fetch_add(1, Relaxed);
    }

    /// A transcoder spent `took` on one frame.
    pub fn transcoded(&self, t: Transcoder, took: Duration) {
        self.transcode_ns[t as usize].fetch_add(took.as_nanos() as u64, Relaxed);
        self.transcode_runs[t as usize].fetch_add(1, Relaxed);
    }

    /// A viewer connection of `output` opened; the guard closes it.
    pub fn viewer(&'static self, output: Output) -> ViewerConn {
        self.viewers[output as usize].fetch_add(1, Relaxed);
        ViewerConn(output)
    }

    /// An HTTP request to `route` answered its head after `took`.
    pub fn http(&self, method: &str, route: &str, took: Duration) {
        let secs = took.as_secs_f64();
        let mut map = self.http.lock().unwrap_or_else(|e| e.into_inner());
        let h = map
            .entry((method.to_owned(), route.to_owned()))
            .or_default();
        h.count += 1;
        h.sum += secs;
        for (i, le) in BUCKETS.iter().enumerate() {
            if secs <= *le {
                h.counts[i] += 1;
            }
        }
    }

    /// Writes the counters in Prometheus text format.
    pub fn render(&self, out: &mut String) {
        use std::fmt::Write;
        let mut family = |name: &str, kind: &str, help: &str, rows: Vec<(String, f64)>| {
            let _ = writeln!(out, "# HELP camgate_{name} {help}");
            let _ = writeln!(out, "# TYPE camgate_{name} {kind}");
            for (labels, v) in rows {
                let _ = writeln!(out, "camgate_{name}{labels} {v}");
            }
        };
        let by = |key: &str, labels: &[&str], values: &[AtomicU64]| -> Vec<(String, f64)> {
            labels
                .iter()
                .zip(values)
                .map(|(l, v)| (format!("{{{key}=\"{l}\"}}"), v.load(Relaxed) as f64))
                .collect()
        };
        let sources: Vec<&str> = Source::ALL.iter().map(|s| s.label()).collect();
        let outputs: Vec<&str> = Output::ALL.iter().map(|s| s.label()).collect();
        let drops: Vec<&str> = DropReason::ALL.iter().map(|s| s.label()).collect();
        let transcoders: Vec<&str> = Transcoder::ALL.iter().map(|s| s.label()).collect();
        family(
            "frames_in_total",
            "counter",
            "Frames (JPEG) or access units (H.264) received, by source.",
            by("source", &sources, &self.frames_in),
        );
        family(
            "bytes_in_total",
            "counter",
            "Media bytes received, by source.",
            by("source", &sources, &self.bytes_in),
        );
        family(
            "frames_out_total",
            "counter",
            "JPEG frames sent to viewers, by output.",
            by("output", &outputs, &self.frames_out),
        );
        family(
            "bytes_out_total",
            "counter",
            "JPEG bytes sent to viewers, by output.",
            by("output", &outputs, &self.bytes_out),
        );
        family(
            "frames_dropped_total",
            "counter",
            "Frames dropped, by reason.",
            by("reason", &drops, &self.drops),
        );
        let secs: Vec<(String, f64)> = transcoders
            .iter()
            .zip(&self.transcode_ns)
            .map(|(l, v)| {
                (
                    format!("{{transcoder=\"{l}\"}}"),
                    v.load(Relaxed) as f64 / 1e9,
                )
            })
            .collect();
        family(
            "transcode_seconds_total",
            "counter",
            "Time spent transcoding, by transcoder.",
            secs,
        );
        family(
            "transcode_frames_total",
            "counter",
            "Frames transcoded, by transcoder.",
            by("transcoder", &transcoders, &self.transcode_runs),
        );
        let viewers: Vec<(String, f64)> = outputs
            .iter()
            .zip(&self.viewers)
            .map(|(l, v)| (format!("{{output=\"{l}\"}}"), v.load(Relaxed) as f64))
            .collect();
        family(
            "viewer_connections",
            "gauge",
            "Open viewer connections, by output.",
            viewers,
        );
        let map = self.http.lock().unwrap_or_else(|e| e.into_inner()).clone();
        let _ = writeln!(
            out,
            "# HELP camgate_http_request_duration_seconds Time to the response head, by route."
        );
        let _ = writeln!(
            out,
            "# TYPE camgate_http_request_duration_seconds histogram"
        );
        for ((method, route), h) in map {
            let l = format!("method=\"{method}\",route=\"{route}\"");
            for (le, c) in BUCKETS.iter().zip(h.counts) {
                let _ = writeln!(
                    out,
                    "camgate_http_request_duration_seconds_bucket{{{l},le=\"{le}\"}} {c}"
                );
            }
            let _ = writeln!(
                out,
                "camgate_http_request_duration_seconds_bucket{{{l},le=\"+Inf\"}} {}",
                h.count
            );
            let _ = writeln!(
                out,
                "camgate_http_request_duration_seconds_sum{{{l}}} {}",
                h.sum
            );
            let _ = writeln!(
                out,
                "camgate_http_request_duration_seconds_count{{{l}}} {}",
                h.count
            );
        }
    }
}

/// An open viewer connection; closing it (drop) lowers the gauge.
#[derive(Debug)]
pub struct ViewerConn(Output);

impl std::ops::Drop for ViewerConn {
    fn drop(&mut self) {
        METRICS.viewers[self.0 as usize].fetch_sub(1, Relaxed);
    }
}

/// Middleware: records each request's time to its response head under its
/// route template (`/api/v1/apps/{app}/streams`), never the raw path.
pub async fn http_latency(
    req: axum::extract::Request,
    next: axum::middleware::Next,
) -> axum::response::Response {
    let route = req
        .extensions()
        .get::<axum::extract::MatchedPath>()
        .map_or_else(|| "unmatched".to_owned(), |p| p.as_str().to_owned());
    let method = req.method().as_str().to_owned();
    let t0 = std::time::Instant::now();
    let resp = next.run(req).await;
    METRICS.http(&method, &route, t0.elapsed());
    resp
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn renders_counters_and_histograms() {
        let m = Metrics::default();
        m.frame_in(Source::Rtmp, 100);
        m.dropped(DropReason::FpsCap);
        m.http("GET", "/health", Duration::from_millis(3));
        m.http("GET", "/health", Duration::from_secs(20));
        let mut out = String::new();
        m.render(&mut out);
        assert!(out.contains("camgate_frames_in_total{source=\"rtmp\"} 1\n"));
        assert!(out.contains("camgate_bytes_in_total{source=\"rtmp\"} 100\n"));
        assert!(out.contains("camgate_frames_dropped_total{reason=\"fps_cap\"} 1\n"));
        assert!(out.contains(
            "camgate_http_request_duration_seconds_bucket{method=\"GET\",route=\"/health\",le=\"0.005\"} 1\n"
        ));
        assert!(out.contains(
            "camgate_http_request_duration_seconds_bucket{method=\"GET\",route=\"/health\",le=\"+Inf\"} 2\n"
        ));
        assert!(out.contains(
            "camgate_http_request_duration_seconds_count{method=\"GET\",route=\"/health\"} 2\n"
        ));
    }
}
