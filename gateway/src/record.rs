//! Recording: any live stream to fragmented MP4 in the data dir.
//!
//! A recorder follows the room's HLS packager, which already cuts every
//! source — RTMP, RTSP, WHIP, and MJPEG cameras through their H.264
//! transcoder — into CMAF fragments (`moof` + `mdat`, H.264 and AAC). The
//! file is the init segment followed by those fragments, appended as they
//! close (about three a second): a crash or a power cut leaves a file that
//! plays up to its last whole fragment. Data is flushed with `fdatasync`
//! every two seconds, and the VOD row's size and duration are updated then,
//! so a restart after a crash finalizes the row from what is on disk.
//!
//! Next to the MP4, `<file>.idx` lists each fragment's byte range and
//! duration (text, one line per fragment): the VOD's HLS playlist is built
//! from it with byte ranges, without re-reading the MP4.
//!
//! A recording ends when it is stopped, when the stream ends, when the
//! stream's codec configuration changes (a new init segment cannot go into
//! the same file), or after [`NO_MEDIA`] without a fragment. A write error
//! (a full disk) fails the recording with `recording_failed`; the live
//! stream is not touched.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use serde_json::json;
use tokio::io::AsyncWriteExt;
use tokio::sync::watch;
use tracing::{info, warn};

use crate::auth::{now_rfc3339, random_id};
use crate::hub::RoomKey;
use crate::server::SharedState;
use crate::store::{App, VodRow};
use crate::webrtc::sfu_room;

/// A recording without a new fragment for this long ends.
pub const NO_MEDIA: Duration = Duration::from_secs(15);
/// How often data is synced to disk and the row updated.
const SYNC_EVERY: Duration = Duration::from_secs(2);

/// Why a recording could not start.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum StartError {
    /// Nothing publishes in the room.
    NotLive,
    /// The stream is recorded already (the running VOD id).
    AlreadyRecording(i64),
}

#[derive(Debug)]
struct Running {
    app_id: i64,
    stream_id: String,
    stop: watch::Sender<bool>,
}

/// The recordings running now, by VOD id.
#[derive(Debug, Default)]
pub struct Recorders {
    running: Mutex<HashMap<i64, Running>>,
}

impl Recorders {
    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<i64, Running>> {
        self.running.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// The VOD recording `stream_id` of `app_id` now, if any.
    pub fn recording(&self, app_id: i64, stream_id: &str) -> Option<i64> {
        self.lock()
            .iter()
            .find(|(_, r)| r.app_id == app_id && r.stream_id == stream_id)
            .map(|(id, _)| *id)
    }

    /// Asks recording `vod_id` to stop; false when it is not running.
    pub fn stop(&self, vod_id: i64) -> bool {
        self.lock()
            .get(&vod_id)
            .map(|r| r.stop.send(true).is_ok())
            .unwrap_or(false)
    }

    /// Recordings running.
    pub fn count(&self) -> usize {
        self.lock().len()
    }
}

/// The directory of an app's recordings, relative to the data dir.
pub fn app_dir(app: &str) -> PathBuf {
    Path::new("recordings").join(app)
}

/// Starts recording the stream publishing in `key` (its canonical id
/// `stream_id`); answers the VOD row, inserted with `status=recording`.
pub async fn start(
    state: &SharedState,
    app: &App,
    key: &RoomKey,
    stream_id: &str,
) -> Result<Result<VodRow, StartError>, sqlx::Error> {
    if state.hub.get(key).and_then(|r| r.publisher()).is_none() {
        return Ok(Err(StartError::NotLive));
    }
    if let Some(id) = state.recorders.recording(app.id, stream_id) {
        return Ok(Err(StartError::AlreadyRecording(id)));
    }
    let Some((stream, camera)) = crate::playback::hls::live_stream(state, key) else {
        return Ok(Err(StartError::NotLive));
    };
    let vod = new_vod(state, app, &key.room, stream_id).await?;
    let egress_id = vod.egress_id.clone();
    let (stop, stopped) = watch::channel(false);
    state.recorders.lock().insert(
        vod.id,
        Running {
            app_id: app.id,
            stream_id: stream_id.to_owned(),
            stop,
        },
    );
    info!(app = %app.name, room = %key.room, vod = vod.id, %egress_id, "recording started");
    state.webhooks.emit(
        &app.name,
        "recording_started",
        json!({
            "vodId": vod.id,
            "egressId": egress_id,
            "app": app.name,
            "room": key.room,
            "streamId": stream_id,
            "mode": "participant",
            "splitMinutes": app.setting("recording", "split_minutes").cloned().unwrap_or(json!(0)),
            "snapshotSeconds": app.setting("recording", "snapshot_seconds").cloned().unwrap_or(json!(0)),
        }),
    );
    let secs = |k| {
        app.setting("recording", k)
            .and_then(serde_json::Value::as_u64)
            .unwrap_or(0)
    };
    let task = Task {
        state: state.clone(),
        app: app.clone(),
        key: key.clone(),
        camera,
        stream,
        session: vod.egress_id.clone(),
        part_index: 0,
        split: Duration::from_secs(secs("split_minutes") * 60),
        snapshot_every: Duration::from_secs(secs("snapshot_seconds")),
        vod: vod.clone(),
        stopped,
    };
    tokio::spawn(task.run());
    Ok(Ok(vod))
}

/// Inserts the row of a new recording file (`status=recording`).
async fn new_vod(
    state: &SharedState,
    app: &App,
    room: &str,
    stream_id: &str,
) -> Result<VodRow, sqlx::Error> {
    let egress_id = random_id("EG_", 8);
    let t = time::OffsetDateTime::now_utc();
    let stamp = format!(
        "{:04}{:02}{:02}T{:02}{:02}{:02}Z",
        t.year(),
        u8::from(t.month()),
        t.day(),
        t.hour(),
        t.minute(),
        t.second()
    );
    let file = app_dir(&app.name).join(format!("{room}-{stamp}-{egress_id}.mp4"));
    let mut vod = VodRow {
        id: 0,
        app_id: app.id,
        room: room.to_owned(),
        stream_id: stream_id.to_owned(),
        egress_id,
        status: "recording".into(),
        file: file.to_string_lossy().into_owned(),
        snapshot_file: None,
        size_bytes: 0,
        duration_s: 0.0,
        width: None,
        height: None,
        format: "mp4".into(),
        has_audio: false,
        error: None,
        started_at: now_rfc3339(),
        ended_at: None,
    };
    vod.id = state.db.insert_vod(&vod).await?;
    Ok(vod)
}

/// How a recording ended.
enum End {
    Stopped,
    StreamEnded,
    Reconfigured,
    NoMedia,
    Shutdown,
    Split,
    Failed(String),
}

struct Task {
    state: SharedState,
    app: App,
    key: RoomKey,
    camera: bool,
    stream: Arc<crate::hls::Stream>,
    /// The first file's egress id: the session all split parts share.
    session: String,
    /// Which split part `vod` is.
    part_index: u32,
    /// Start a new file after this much media (zero = one file).
    split: Duration,
    /// Take a snapshot this often while recording (zero = never).
    snapshot_every: Duration,
    vod: VodRow,
    stopped: watch::Receiver<bool>,
}

struct Output {
    file: tokio::fs::File,
    index: tokio::fs::File,
    offset: u64,
    init_version: u32,
}

impl Task {
    async fn run(mut self) {
        let end = self.record().await;
        self.finish(end, true).await;
        self.state.recorders.lock().remove(&self.vod.id);
    }

    async fn record(&mut self) -> End {
        let data_dir = self.state.config.data_dir.clone();
        let path = data_dir.join(&self.vod.file);
        // Only fragments made from now on.
        let mut cursor = self.stream.with(|p| p.last_part());
        let mut out: Option<Output> = None;
        let mut last_media = Instant::now();
        let mut last_sync = Instant::now();
        let mut last_snapshot = Instant::now();
        let mut shutdown = self.state.shutdown.clone();
        loop {
            let c = cursor;
            tokio::select! {
                _ = self.stopped.changed() => return End::Stopped,
                _ = shutdown.changed() => return End::Shutdown,
                _ = self.stream.wait_for(Duration::from_secs(1), |p| p.ended() || p.last_part() != c) => {}
            }
            if self.camera {
                // Recording is HLS demand: keeps the camera's transcoder on.
                self.state.media.room(&sfu_room(&self.key)).hls_touch();
            }
            let (parts, ended) = self.stream.with(|p| (p.parts_after(cursor), p.ended()));
            for part in parts {
                cursor = Some(part.at);
                // A split recording starts its next file on a keyframe.
                if out.is_some()
                    && !self.split.is_zero()
                    && part.independent
                    && self.vod.duration_s >= self.split.as_secs_f64()
                {
                    if let Some(o) = out.as_mut()
                        && let Err(e) = sync(o).await
                    {
                        return End::Failed(e);
                    }
                    out = None;
                    if let Err(e) = self.next_part().await {
                        return End::Failed(e);
                    }
                }
                let o = match out.as_mut() {
                    Some(o) if o.init_version != part.init_version => return End::Reconfigured,
                    Some(o) => o,
                    None => {
                        // A file starts on a keyframe, with its init segment.
                        if !part.independent {
                            continue;
                        }
                        let Some(init) = self.stream.with(|p| p.init_bytes(part.init_version))
                        else {
                            continue;
                        };
                        let (dims, audio) = self.stream.with(|p| (p.dimensions(), p.has_audio()));
                        self.vod.width = dims.map(|d| i64::from(d.0));
                        self.vod.height = dims.map(|d| i64::from(d.1));
                        self.vod.has_audio = audio;
                        match open(&path, &init).await {
                            Ok((file, index)) => {
                                self.snapshot(&data_dir).await;
                                out.insert(Output {
                                    file,
                                    index,
                                    offset: init.len() as u64,
                                    init_version: part.init_version,
                                })
                            }
                            Err(e) => return End::Failed(e),
                        }
                    }
                };
                if let Err(e) = append(o, &part.bytes, part.duration, part.independent).await {
                    return End::Failed(e);
                }
                self.vod.duration_s += part.duration;
                self.vod.size_bytes = o.offset as i64;
                last_media = Instant::now();
            }
            if ended {
                return End::StreamEnded;
            }
            if out.is_some()
                && !self.snapshot_every.is_zero()
                && last_snapshot.elapsed() >= self.snapshot_every
            {
                last_snapshot = Instant::now();
                self.periodic_snapshot().await;
            }
            if last_media.elapsed() > NO_MEDIA {
                return End::NoMedia;
            }
            if let Some(o) = out.as_mut()
                && last_sync.elapsed() >= SYNC_EVERY
            {
                last_sync = Instant::now();
                if let Err(e) = sync(o).await {
                    return End::Failed(e);
                }
                if let Err(e) = self.state.db.update_vod(&self.vod).await {
                    warn!(error = %e, vod = self.vod.id, "could not update the recording's row");
                }
            }
        }
    }

    /// Closes the current file as a finished split part and continues in
    /// a new VOD row.
    async fn next_part(&mut self) -> Result<(), String> {
        self.finish(End::Split, false).await;
        let next = new_vod(&self.state, &self.app, &self.key.room, &self.vod.stream_id)
            .await
            .map_err(|e| format!("database: {e}"))?;
        {
            let mut running = self.state.recorders.lock();
            if let Some(r) = running.remove(&self.vod.id) {
                running.insert(next.id, r);
            }
        }
        info!(app = %self.app.name, vod = next.id, part = self.part_index + 1, "recording continues in a new part");
        self.vod = next;
        self.part_index += 1;
        Ok(())
    }

    /// A `snapshotSeconds` snapshot: stored like an on-demand one.
    async fn periodic_snapshot(&self) {
        match crate::api::snapshots::capture(&self.state, &self.app, &self.key.room).await {
            Ok(row) => self.state.webhooks.emit(
                &self.app.name,
                "snapshot_taken",
                json!({
                    "app": self.app.name,
                    "room": self.key.room,
                    "streamId": self.vod.stream_id,
                    "vodId": self.vod.id,
                    "key": row.file,
                    "url": format!(
                        "{}/api/v1/apps/{}/snapshots/{}/image",
                        self.state.public_base, self.app.name, row.id
                    ),
                    "sizeBytes": row.size_bytes,
                }),
            ),
            Err(e) => tracing::debug!(error = %e, "periodic snapshot skipped"),
        }
    }

    /// The VOD's thumbnail: the stream's current picture.
    async fn snapshot(&mut self, data_dir: &Path) {
        let Ok(jpeg) = crate::playback::mjpeg::current_jpeg(&self.state, &self.key).await else {
            return;
        };
        let rel = format!("{}.jpg", self.vod.file.trim_end_matches(".mp4"));
        if tokio::fs::write(data_dir.join(&rel), &jpeg).await.is_ok() {
            self.vod.snapshot_file = Some(rel);
        }
    }

    /// Finalizes the current file's row and fires its callbacks; `last`
    /// says whether the session ends with it.
    async fn finish(&mut self, end: End, last: bool) {
        let data_dir = self.state.config.data_dir.clone();
        let path = data_dir.join(&self.vod.file);
        let size = tokio::fs::metadata(&path).await.map(|m| m.len()).ok();
        self.vod.ended_at = Some(now_rfc3339());
        let reason = match &end {
            End::Stopped => "stopped",
            End::StreamEnded => "stream_ended",
            End::Reconfigured => "stream_reconfigured",
            End::NoMedia => "no_media",
            End::Shutdown => "shutdown",
            End::Split => "split",
            End::Failed(_) => "failed",
        };
        let failure = match end {
            End::Failed(e) => Some(e),
            _ if size.unwrap_or(0) == 0 || self.vod.duration_s == 0.0 => {
                Some("no media was recorded (the stream sent no keyframe)".to_owned())
            }
            _ => None,
        };
        self.vod.size_bytes = size.unwrap_or(0) as i64;
        if let Some(error) = failure {
            self.vod.status = "failed".into();
            self.vod.error = Some(error.clone());
            warn!(app = %self.app.name, vod = self.vod.id, %error, "recording failed");
            if let Err(e) = self.state.db.update_vod(&self.vod).await {
                warn!(error = %e, "could not record a failed recording");
            }
            self.state.webhooks.emit(
                &self.app.name,
                "recording_failed",
                json!({
                    "vodId": self.vod.id,
                    "app": self.app.name,
                    "room": self.vod.room,
                    "streamId": self.vod.stream_id,
                    "reason": "recording failed",
                    "detail": error,
                }),
            );
            return;
        }
        self.vod.status = "ready".into();
        if let Err(e) = self.state.db.update_vod(&self.vod).await {
            warn!(error = %e, "could not finalize a recording");
            return;
        }
        info!(
            app = %self.app.name, vod = self.vod.id, reason,
            seconds = format!("{:.1}", self.vod.duration_s), bytes = self.vod.size_bytes,
            "recording ready"
        );
        let app = self.app.name.as_str();
        let data = ready_payload(&self.state, app, &self.vod);
        self.state.webhooks.emit(app, "vod_ready", data.clone());
        let split = !self.split.is_zero();
        let mut part = data;
        part["partIndex"] = json!(self.part_index);
        part["sessionId"] = json!(self.session);
        if split {
            self.state
                .webhooks
                .emit(app, "recording_part_ready", part.clone());
        }
        if last {
            part["split"] = json!(split);
            self.state.webhooks.emit(app, "recording_ready", part);
        }
    }
}

/// The `vod_ready` payload (reference §4.5).
pub fn ready_payload(state: &SharedState, app: &str, vod: &VodRow) -> serde_json::Value {
    let base = format!("{}/api/v1/apps/{app}/vods/{}", state.public_base, vod.id);
    json!({
        "vodId": vod.id,
        "app": app,
        "room": vod.room,
        "streamId": vod.stream_id,
        "fileKey": vod.file,
        "s3Url": null,
        "publicUrl": format!("{base}/raw"),
        "snapshotKey": vod.snapshot_file,
        "sizeBytes": vod.size_bytes,
        "durationS": (vod.duration_s * 1000.0).round() / 1000.0,
        "width": vod.width,
        "height": vod.height,
        "format": vod.format,
    })
}

async fn open(path: &Path, init: &[u8]) -> Result<(tokio::fs::File, tokio::fs::File), String> {
    let io = |e: std::io::Error| format!("{}: {e}", io_kind(&e));
    if let Some(dir) = path.parent() {
        tokio::fs::create_dir_all(dir).await.map_err(io)?;
    }
    let mut file = tokio::fs::File::create(path).await.map_err(io)?;
    file.write_all(init).await.map_err(io)?;
    let mut index = tokio::fs::File::create(index_path(path))
        .await
        .map_err(io)?;
    index
        .write_all(format!("init 0 {}\n", init.len()).as_bytes())
        .await
        .map_err(io)?;
    Ok((file, index))
}

async fn append(
    o: &mut Output,
    bytes: &[u8],
    duration: f64,
    independent: bool,
) -> Result<(), String> {
    let io = |e: std::io::Error| format!("{}: {e}", io_kind(&e));
    o.file.write_all(bytes).await.map_err(io)?;
    let line = format!(
        "frag {} {} {:.6} {}\n",
        o.offset,
        bytes.len(),
        duration,
        u8::from(independent)
    );
    o.index.write_all(line.as_bytes()).await.map_err(io)?;
    o.offset += bytes.len() as u64;
    Ok(())
}

async fn sync(o: &mut Output) -> Result<(), String> {
    let io = |e: std::io::Error| format!("{}: {e}", io_kind(&e));
    o.file.sync_data().await.map_err(io)?;
    o.index.sync_data().await.map_err(io)
}

fn io_kind(e: &std::io::Error) -> &'static str {
    match e.raw_os_error() {
        Some(28) => "disk full",
        _ => "write error",
    }
}

/// The fragment index next to a recording.
pub fn index_path(mp4: &Path) -> PathBuf {
    let mut p = mp4.as_os_str().to_owned();
    p.push(".idx");
    PathBuf::from(p)
}

/// One line of a fragment index.
#[derive(Debug, Clone, PartialEq)]
pub struct Fragment {
    /// Byte offset in the MP4.
    pub offset: u64,
    /// Length.
    pub len: u64,
    /// Seconds.
    pub duration: f64,
    /// Starts with a keyframe.
    pub independent: bool,
}

/// Parses a fragment index: the init segment's length and the fragments.
/// A torn last line (a crash mid-write) is ignored.
pub fn parse_index(text: &str) -> Option<(u64, Vec<Fragment>)> {
    let mut lines = text.lines();
    let init: u64 = lines.next()?.strip_prefix("init 0 ")?.trim().parse().ok()?;
    let frags = lines
        .filter_map(|l| {
            let mut f = l.strip_prefix("frag ")?.split(' ');
            Some(Fragment {
                offset: f.next()?.parse().ok()?,
                len: f.next()?.parse().ok()?,
                duration: f.next()?.parse().ok()?,
                independent: f.next()? == "1",
            })
        })
        .collect();
    Some((init, frags))
}

/// At start-up: recordings a previous run left open (a crash or a kill)
/// are finalized from their files: `ready` when media reached the disk,
/// else `failed`. Only whole fragments listed in the index count.
pub async fn recover(state: &SharedState) -> Result<usize, sqlx::Error> {
    let mut n = 0;
    for mut vod in state.db.unfinished_vods().await? {
        let path = state.config.data_dir.join(&vod.file);
        let size = tokio::fs::metadata(&path)
            .await
            .map(|m| m.len())
            .unwrap_or(0);
        let index = tokio::fs::read_to_string(index_path(&path))
            .await
            .ok()
            .and_then(|t| parse_index(&t));
        let whole = index.as_ref().map(|(init, frags)| {
            let end = frags
                .iter()
                .filter(|f| f.offset + f.len <= size)
                .map(|f| f.offset + f.len)
                .max()
                .unwrap_or(*init);
            let secs: f64 = frags
                .iter()
                .filter(|f| f.offset + f.len <= size)
                .map(|f| f.duration)
                .sum();
            (end, secs)
        });
        vod.ended_at = Some(now_rfc3339());
        match whole {
            Some((end, secs)) if secs > 0.0 => {
                // Cut a torn last fragment so every player reads the file.
                if end < size
                    && let Ok(f) = std::fs::OpenOptions::new().write(true).open(&path)
                {
                    let _ = f.set_len(end);
                }
                vod.status = "ready".into();
                vod.size_bytes = end as i64;
                vod.duration_s = secs;
                vod.error = Some("recovered after an unclean stop".into());
            }
            _ => {
                vod.status = "failed".into();
                vod.error = Some("no media reached the disk before an unclean stop".into());
            }
        }
        state.db.update_vod(&vod).await?;
        warn!(vod = vod.id, status = %vod.status, "recording left open by a previous run finalized");
        n += 1;
    }
    Ok(n)
}

/// Deletes a VOD's file, index and thumbnail (missing ones are fine).
pub async fn delete_files(data_dir: &Path, vod: &VodRow) -> std::io::Result<()> {
    let path = data_dir.join(&vod.file);
    for p in [path.clone(), index_path(&path)]
        .into_iter()
        .chain(vod.snapshot_file.as_ref().map(|s| data_dir.join(s)))
    {
        if let Err(e) = tokio::fs::remove_file(&p).await
            && e.kind() != std::io::ErrorKind::NotFound
        {
            return Err(e);
        }
    }
    Ok(())
}

/// Runs for the server's life: starts a recording for every live stream
/// of an app with `recording.always`, and for the streams of ingresses
/// created with `record: true` (once a second); and applies each
/// app's retention (`recording.retention_days`, `recording.retention_max_gb`)
/// every ten seconds.
pub async fn supervise(state: SharedState) {
    let mut tick = tokio::time::interval(Duration::from_secs(1));
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    let mut shutdown = state.shutdown.clone();
    let mut n: u64 = 0;
    loop {
        tokio::select! {
            _ = tick.tick() => {}
            _ = shutdown.changed() => return,
        }
        let apps = match state.db.list_apps(None).await {
            Ok(a) => a,
            Err(e) => {
                warn!(error = %e, "recording supervisor could not list apps");
                continue;
            }
        };
        for app in &apps {
            if n.is_multiple_of(10) {
                retention(&state, app).await;
            }
            // Nothing to start where nothing is live (and no database work).
            if state.hub.publishers_in_app(&app.name) == 0 {
                continue;
            }
            let always = app
                .setting("recording", "always")
                .and_then(serde_json::Value::as_bool)
                .unwrap_or(false);
            if always {
                always_record(&state, app, None).await;
                continue;
            }
            // Rooms of ingresses created with `record: true`.
            let rooms: Vec<String> = state
                .db
                .app_ingresses(app.id)
                .await
                .unwrap_or_default()
                .into_iter()
                .filter(|i| {
                    i.options
                        .as_deref()
                        .and_then(|o| serde_json::from_str::<serde_json::Value>(o).ok())
                        .and_then(|o| o.get("record").and_then(serde_json::Value::as_bool))
                        .unwrap_or(false)
                })
                .map(|i| i.room)
                .collect();
            if !rooms.is_empty() {
                always_record(&state, app, Some(&rooms)).await;
            }
        }
        n += 1;
    }
}

/// Starts recordings for the app's live streams that are not recorded:
/// all of them, or those in `only` rooms.
async fn always_record(state: &SharedState, app: &App, only: Option<&[String]>) {
    let live: Vec<String> = state
        .hub
        .rooms()
        .into_iter()
        .filter(|r| r.key().app == app.name && r.publisher().is_some())
        .filter(|r| only.is_none_or(|rooms| rooms.contains(&r.key().room)))
        .map(|r| r.key().room.clone())
        .collect();
    for room in live {
        let Ok(Some(stream_id)) = state.db.active_stream_id(app.id, &room).await else {
            continue;
        };
        if state.recorders.recording(app.id, &stream_id).is_some() {
            continue;
        }
        let key = RoomKey {
            app: app.name.clone(),
            room,
        };
        match start(state, app, &key, &stream_id).await {
            Ok(Ok(vod)) => {
                info!(app = %app.name, vod = vod.id, stream = %stream_id, "always-record started a recording")
            }
            Ok(Err(_)) => {}
            Err(e) => warn!(error = %e, "always-record could not start a recording"),
        }
    }
}

/// Deletes an app's finished VODs past its retention: older than
/// `retention_days`, then the oldest while the total is above
/// `retention_max_gb`. Running recordings are never touched.
pub async fn retention(state: &SharedState, app: &App) {
    let days = app
        .setting("recording", "retention_days")
        .and_then(serde_json::Value::as_u64)
        .unwrap_or(0);
    let max_gb = app
        .setting("recording", "retention_max_gb")
        .and_then(serde_json::Value::as_f64)
        .unwrap_or(0.0);
    if days == 0 && max_gb <= 0.0 {
        return;
    }
    let filter = crate::store::VodFilter {
        order: "started_at",
        desc: false,
        ..Default::default()
    };
    let Ok((vods, _)) = state.db.list_vods(app.id, &filter, None, 0).await else {
        return;
    };
    let cutoff = (days > 0).then(|| {
        (time::OffsetDateTime::now_utc() - time::Duration::days(days as i64))
            .format(&time::format_description::well_known::Rfc3339)
            .unwrap_or_default()
    });
    let mut total: i64 = vods.iter().map(|v| v.size_bytes).sum();
    let cap = (max_gb * 1e9) as i64;
    for vod in vods {
        if !(vod.status == "ready" || vod.status == "failed") {
            continue;
        }
        let too_old = cutoff.as_ref().is_some_and(|c| vod.started_at < *c);
        let too_big = cap > 0 && total > cap;
        if !(too_old || too_big) {
            // Oldest first: every later VOD is newer, and the total only
            // shrinks, so neither rule can apply further on.
            break;
        }
        if let Err(e) = delete_files(&state.config.data_dir, &vod).await {
            warn!(vod = vod.id, error = %e, "retention could not delete a VOD's files");
            continue;
        }
        if state.db.delete_vod(app.id, vod.id).await.unwrap_or(false) {
            total -= vod.size_bytes;
            info!(app = %app.name, vod = vod.id, too_old, too_big, "VOD deleted by the retention policy");
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn index_round_trip_ignores_a_torn_line() {
        let text = "init 0 700\nfrag 700 5000 0.333333 1\nfrag 5700 4000 0.333333 0\nfrag 97";
        let (init, frags) = parse_index(text).expect("parses");
        assert_eq!(init, 700);
        assert_eq!(frags.len(), 2);
        assert_eq!(
            frags[1],
            Fragment {
                offset: 5700,
                len: 4000,
                duration: 0.333333,
                independent: false
            }
        );
        assert!(parse_index("garbage").is_none());
    }
}
