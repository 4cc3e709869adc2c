//! An app's media config (reference §5): the WebRTC layer ladder, the
//! transcoding switches and the device-WebSocket limits, and the app config
//! file an operator may keep next to camgate.
//!
//! The config lives in the app row's settings (sections `webrtc`, `rtmp`,
//! `transcoding`, `ws_ingest`, snake_case as the reference's `config.yaml`
//! spells them). Three ways to change it: `PATCH /api/v1/apps/{app}/config`
//! (camelCase, partial; a `layers` array replaces the ladder),
//! `PATCH /api/v1/apps/{name}` for the top-level settings, and an app file
//! `<apps-dir>/<name>.toml` that camgate reads at start and on
//! `POST /api/v1/apps/{app}/reload`. The file is TOML, not YAML: camgate's
//! own config is TOML, the keys are the reference's `config.yaml` keys one
//! for one, and a maintained YAML crate for serde is not in the dependency
//! set. A file with an unknown key or a value out of range is refused with
//! the key named; nothing of it is applied.

use serde::{Deserialize, Serialize};
use serde_json::{Value, json};

/// One rung of the WebRTC rendition ladder.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Layer {
    /// `high`, `med`, `low`, …
    pub name: String,
    /// Picture height, 1..=4320.
    pub height: u32,
}

/// One VOD rendition.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Rendition {
    /// Picture height, 144..=4320.
    pub height: u32,
    /// Bitrate, 100..=50000 kbit/s.
    #[serde(alias = "bitrateKbps")]
    pub bitrate_kbps: u32,
}

/// Per-app limits of the device WebSocket (reference §5.3 `ws_ingest`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct WsIngestLimits {
    /// Cameras may connect at all.
    pub enabled: bool,
    /// Cameras live at once in the app (0 = unlimited).
    pub max_cameras: u32,
    /// Frames per second accepted per camera (never above the server's).
    pub max_fps: u32,
    /// Largest frame in KiB (never above the server's).
    pub max_frame_kb: u32,
}

impl Default for WsIngestLimits {
    fn default() -> Self {
        WsIngestLimits {
            enabled: true,
            max_cameras: 0,
            max_fps: 15,
            max_frame_kb: 256,
        }
    }
}

/// The media config of an app, defaults applied.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MediaConfig {
    /// `webrtc.adaptive`: simulcast ladder for WebRTC viewers.
    pub adaptive: bool,
    /// `webrtc.layers`: 1..=8 rungs.
    pub layers: Vec<Layer>,
    /// `rtmp.transcode` (only with `transcoding.enabled`).
    pub rtmp_transcode: bool,
    /// `transcoding.enabled`: the master switch (false = passthrough).
    pub transcoding_enabled: bool,
    /// `transcoding.encoding`: `h264` or `h264+vp8`.
    pub encoding: String,
    /// `transcoding.hwaccel`: `auto`, `gpu` or `cpu`.
    pub hwaccel: String,
    /// `transcoding.vod_adaptive`.
    pub vod_adaptive: bool,
    /// `transcoding.vod_renditions` (≤ 5).
    pub vod_renditions: Vec<Rendition>,
    /// `ws_ingest`.
    pub ws_ingest: WsIngestLimits,
}

/// The reference's default ladder: high 720 / med 480 / low 240.
pub fn default_layers() -> Vec<Layer> {
    [("high", 720), ("med", 480), ("low", 240)]
        .into_iter()
        .map(|(name, height)| Layer {
            name: name.into(),
            height,
        })
        .collect()
}

impl Default for MediaConfig {
    fn default() -> Self {
        MediaConfig {
            adaptive: true,
            layers: default_layers(),
            rtmp_transcode: true,
            transcoding_enabled: false,
            encoding: "h264".into(),
            hwaccel: "auto".into(),
            vod_adaptive: false,
            vod_renditions: Vec::new(),
            ws_ingest: WsIngestLimits::default(),
        }
    }
}

/// A config value out of range; names the key.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{field}: {message}")]
pub struct Invalid {
    /// The key, API spelling (`layers[1].height`).
    pub field: String,
    /// What is wrong.
    pub message: String,
}

fn invalid(field: impl Into<String>, message: impl Into<String>) -> Invalid {
    Invalid {
        field: field.into(),
        message: message.into(),
    }
}

impl MediaConfig {
    /// Reads the config from an app's settings; missing keys take their
    /// defaults, stored values that do not parse are ignored.
    pub fn from_settings(settings: &Value) -> MediaConfig {
        let d = MediaConfig::default();
        let get = |section: &str, key: &str| settings.get(section).and_then(|s| s.get(key));
        let b = |section, key, default: bool| {
            get(section, key)
                .and_then(Value::as_bool)
                .unwrap_or(default)
        };
        let s = |section, key, default: &str| {
            get(section, key)
                .and_then(Value::as_str)
                .unwrap_or(default)
                .to_owned()
        };
        MediaConfig {
            adaptive: b("webrtc", "adaptive", d.adaptive),
            layers: get("webrtc", "layers")
                .and_then(|v| serde_json::from_value(v.clone()).ok())
                .unwrap_or(d.layers),
            rtmp_transcode: b("rtmp", "transcode", d.rtmp_transcode),
            transcoding_enabled: b("transcoding", "enabled", d.transcoding_enabled),
            encoding: s("transcoding", "encoding", &d.encoding),
            hwaccel: s("transcoding", "hwaccel", &d.hwaccel),
            vod_adaptive: b("transcoding", "vod_adaptive", d.vod_adaptive),
            vod_renditions: get("transcoding", "vod_renditions")
                .and_then(|v| serde_json::from_value(v.clone()).ok())
                .unwrap_or(d.vod_renditions),
            ws_ingest: settings
                .get("ws_ingest")
                .and_then(|v| serde_json::from_value(v.clone()).ok())
                .unwrap_or(d.ws_ingest),
        }
    }

    /// Writes the config into an app's settings sections.
    pub fn store(&self, settings: &mut Value) {
        if !settings.is_object() {
            *settings = json!({});
        }
        let mut section = |name: &str, fields: Value| {
            let entry = settings
                .as_object_mut()
                .map(|o| o.entry(name.to_owned()).or_insert_with(|| json!({})));
            if let Some(Value::Object(existing)) = entry
                && let Value::Object(fields) = fields
            {
                existing.extend(fields);
            }
        };
        section(
            "webrtc",
            json!({ "adaptive": self.adaptive, "layers": self.layers }),
        );
        section("rtmp", json!({ "transcode": self.rtmp_transcode }));
        section(
            "transcoding",
            json!({
                "enabled": self.transcoding_enabled,
                "encoding": self.encoding,
                "hwaccel": self.hwaccel,
                "vod_adaptive": self.vod_adaptive,
                "vod_renditions": self.vod_renditions,
            }),
        );
        section(
            "ws_ingest",
            serde_json::to_value(self.ws_ingest).unwrap_or_default(),
        );
    }

    /// Checks every range the reference gives.
    pub fn validate(&self) -> Result<(), Invalid> {
        if self.layers.is_empty() || self.layers.len() > 8 {
            return Err(invalid("layers", "1 to 8 layers"));
        }
        for (i, l) in self.layers.iter().enumerate() {
            if l.name.is_empty()
                || l.name.len() > 32
                || !l
                    .name
                    .chars()
                    .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_')
            {
                return Err(invalid(
                    format!("layers[{i}].name"),
                    "1 to 32 letters, digits, - or _",
                ));
            }
            if !(1..=4320).contains(&l.height) {
                return Err(invalid(format!("layers[{i}].height"), "1..=4320"));
            }
            if self.layers[..i].iter().any(|o| o.name == l.name) {
                return Err(invalid(format!("layers[{i}].name"), "duplicate name"));
            }
        }
        if !["h264", "h264+vp8"].contains(&self.encoding.as_str()) {
            return Err(invalid("encoding", "h264 or h264+vp8"));
        }
        if !["auto", "gpu", "cpu"].contains(&self.hwaccel.as_str()) {
            return Err(invalid("hwaccel", "auto, gpu or cpu"));
        }
        if self.vod_renditions.len() > 5 {
            return Err(invalid("vodRenditions", "at most 5 renditions"));
        }
        for (i, r) in self.vod_renditions.iter().enumerate() {
            if !(144..=4320).contains(&r.height) {
                return Err(invalid(format!("vodRenditions[{i}].height"), "144..=4320"));
            }
            if !(100..=50_000).contains(&r.bitrate_kbps) {
                return Err(invalid(
                    format!("vodRenditions[{i}].bitrateKbps"),
                    "100..=50000",
                ));
            }
        }
        let w = &self.ws_ingest;
        if w.max_cameras > 100_000 {
            return Err(invalid("wsIngest.maxCameras", "0..=100000 (0 = unlimited)"));
        }
        if !(1..=1000).contains(&w.max_fps) {
            return Err(invalid("wsIngest.maxFps", "1..=1000"));
        }
        if !(1..=8192).contains(&w.max_frame_kb) {
            return Err(invalid("wsIngest.maxFrameKb", "1..=8192"));
        }
        Ok(())
    }

    /// The API shape (`GET /apps/{app}/config`), features added by the
    /// caller.
    pub fn to_api(&self) -> Value {
        json!({
            "adaptive": self.adaptive,
            "layers": self.layers,
            "rtmpTranscode": self.rtmp_transcode,
            "hwaccel": self.hwaccel,
            "transcodingEnabled": self.transcoding_enabled,
            "encoding": self.encoding,
            "vodAdaptive": self.vod_adaptive,
            "vodRenditions": self.vod_renditions.iter().map(|r| json!({
                "height": r.height, "bitrateKbps": r.bitrate_kbps,
            })).collect::<Vec<_>>(),
            "wsIngest": {
                "enabled": self.ws_ingest.enabled,
                "maxCameras": self.ws_ingest.max_cameras,
                "maxFps": self.ws_ingest.max_fps,
                "maxFrameKb": self.ws_ingest.max_frame_kb,
            },
        })
    }

    /// Applies a partial API patch.
    pub fn apply(&mut self, p: ConfigPatch) {
        let set = |slot: &mut bool, v: Option<bool>| {
            if let Some(v) = v {
                *slot = v;
            }
        };
        set(&mut self.adaptive, p.adaptive);
        if let Some(l) = p.layers {
            self.layers = l;
        }
        set(&mut self.rtmp_transcode, p.rtmp_transcode);
        if let Some(h) = p.hwaccel {
            self.hwaccel = h;
        }
        set(&mut self.transcoding_enabled, p.transcoding_enabled);
        if let Some(e) = p.encoding {
            self.encoding = e;
        }
        set(&mut self.vod_adaptive, p.vod_adaptive);
        if let Some(r) = p.vod_renditions {
            self.vod_renditions = r;
        }
        if let Some(w) = p.ws_ingest {
            set(&mut self.ws_ingest.enabled, w.enabled);
            if let Some(v) = w.max_cameras {
                self.ws_ingest.max_cameras = v;
            }
            if let Some(v) = w.max_fps {
                self.ws_ingest.max_fps = v;
            }
            if let Some(v) = w.max_frame_kb {
                self.ws_ingest.max_frame_kb = v;
            }
        }
    }
}

/// Body of `PATCH /api/v1/apps/{app}/config` (every field optional).
#[derive(Debug, Default, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct ConfigPatch {
    /// `webrtc.adaptive`.
    pub adaptive: Option<bool>,
    /// Replaces the whole ladder.
    pub layers: Option<Vec<Layer>>,
    /// `rtmp.transcode`.
    pub rtmp_transcode: Option<bool>,
    /// `transcoding.hwaccel`.
    pub hwaccel: Option<String>,
    /// Feature flags, as `PATCH /apps/{name}` takes them.
    pub features: Option<camgate_protocols::api::PatchFeatures>,
    /// `transcoding.enabled`.
    pub transcoding_enabled: Option<bool>,
    /// `transcoding.encoding`.
    pub encoding: Option<String>,
    /// `transcoding.vod_adaptive`.
    pub vod_adaptive: Option<bool>,
    /// Replaces the renditions.
    pub vod_renditions: Option<Vec<Rendition>>,
    /// camgate: the `ws_ingest` limits (the reference takes these only in
    /// its raw YAML editor).
    pub ws_ingest: Option<WsPatch>,
}

/// Partial `wsIngest`.
#[derive(Debug, Default, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct WsPatch {
    /// See [`WsIngestLimits`].
    pub enabled: Option<bool>,
    /// See [`WsIngestLimits`].
    pub max_cameras: Option<u32>,
    /// See [`WsIngestLimits`].
    pub max_fps: Option<u32>,
    /// See [`WsIngestLimits`].
    pub max_frame_kb: Option<u32>,
}

/// An app file, `<apps-dir>/<name>.toml`: the reference's `config.yaml`
/// keys in TOML. Every key is optional except `name`.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AppFile {
    /// The app slug; must match the file name.
    pub name: String,
    /// Display name.
    pub display_name: Option<String>,
    /// Room prefix.
    pub room_prefix: Option<String>,
    /// Live publishers allowed at once (0 = unlimited).
    pub max_concurrent_streams: Option<u32>,
    /// Restream GB per calendar month (0 = unlimited).
    pub max_egress_gb_month: Option<f64>,
    /// `[recording]`.
    pub recording: Option<FileRecording>,
    /// `[callbacks]`.
    pub callbacks: Option<FileCallbacks>,
    /// `[features]`, snake_case.
    pub features: Option<FileFeatures>,
    /// `[webrtc]`.
    pub webrtc: Option<FileWebrtc>,
    /// `[rtmp]`.
    pub rtmp: Option<FileRtmp>,
    /// `[transcoding]`.
    pub transcoding: Option<FileTranscoding>,
    /// `[ws_ingest]`.
    pub ws_ingest: Option<WsIngestLimits>,
}

/// `[recording]` of an app file.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FileRecording {
    /// `recording.enabled`.
    pub enabled: Option<bool>,
    /// 0, 15, 30, 60, 90 or 120.
    pub split_minutes: Option<u32>,
    /// 0, 1, 30, 60, 120 or 360.
    pub snapshot_seconds: Option<u32>,
    /// camgate: record every stream of the app.
    pub always: Option<bool>,
    /// camgate: delete VODs older than this many days (0 = keep).
    pub retention_days: Option<u32>,
    /// camgate: delete the oldest VODs above this many GB (0 = no cap).
    pub retention_max_gb: Option<f64>,
}

/// `[callbacks]` of an app file. The secret is named by an environment
/// variable, never written in the file (reference §5: credentials live
/// outside the config).
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FileCallbacks {
    /// Callback URL (`""` = off).
    pub url: Option<String>,
    /// Environment variable holding the HMAC secret.
    pub secret_env: Option<String>,
}

/// `[features]` of an app file.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
#[allow(missing_docs)]
pub struct FileFeatures {
    pub rtmp_password: Option<bool>,
    pub viewer_counter: Option<bool>,
    pub chat: Option<bool>,
    pub reactions: Option<bool>,
    pub hidden_qc: Option<bool>,
    pub adaptive_player: Option<bool>,
    pub public_playback: Option<bool>,
}

/// `[webrtc]` of an app file.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FileWebrtc {
    /// Simulcast ladder on.
    pub adaptive: Option<bool>,
    /// The ladder.
    pub layers: Option<Vec<Layer>>,
}

/// `[rtmp]` of an app file.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FileRtmp {
    /// RTMP ingress allowed.
    pub enabled: Option<bool>,
    /// Transcode RTMP (with `transcoding.enabled`).
    pub transcode: Option<bool>,
}

/// `[transcoding]` of an app file.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FileTranscoding {
    /// Master switch.
    pub enabled: Option<bool>,
    /// `h264` or `h264+vp8`.
    pub encoding: Option<String>,
    /// `auto`, `gpu`, `cpu`.
    pub hwaccel: Option<String>,
    /// Adaptive HLS VOD.
    pub vod_adaptive: Option<bool>,
    /// VOD renditions.
    pub vod_renditions: Option<Vec<Rendition>>,
}

impl AppFile {
    /// Parses a file's text; errors name the key (and line).
    pub fn parse(text: &str) -> Result<AppFile, String> {
        toml::from_str(text).map_err(|e| e.to_string())
    }

    /// The media config this file gives, over `base`.
    pub fn media(&self, base: &MediaConfig) -> MediaConfig {
        let mut m = base.clone();
        if let Some(w) = &self.webrtc {
            m.adaptive = w.adaptive.unwrap_or(m.adaptive);
            if let Some(l) = &w.layers {
                m.layers = l.clone();
            }
        }
        if let Some(r) = &self.rtmp {
            m.rtmp_transcode = r.transcode.unwrap_or(m.rtmp_transcode);
        }
        if let Some(t) = &self.transcoding {
            m.transcoding_enabled = t.enabled.unwrap_or(m.transcoding_enabled);
            if let Some(e) = &t.encoding {
                m.encoding = e.clone();
            }
            if let Some(h) = &t.hwaccel {
                m.hwaccel = h.clone();
            }
            m.vod_adaptive = t.vod_adaptive.unwrap_or(m.vod_adaptive);
            if let Some(r) = &t.vod_renditions {
                m.vod_renditions = r.clone();
            }
        }
        if let Some(w) = self.ws_ingest {
            m.ws_ingest = w;
        }
        m
    }
}

/// The settings an app file changes, applied to `app` (nothing is applied
/// when a value is invalid). `secret_of` looks up the callback secret's
/// environment variable.
pub fn apply_file(
    app: &mut crate::store::App,
    file: &AppFile,
    secret_of: impl Fn(&str) -> Option<String>,
) -> Result<(), Invalid> {
    if let Some(d) = &file.display_name {
        if d.is_empty() || d.chars().count() > 100 {
            return Err(invalid("display_name", "1 to 100 characters"));
        }
        app.display_name = d.clone();
    }
    if let Some(p) = &file.room_prefix {
        if !camgate_protocols::api::valid_room_prefix(p) {
            return Err(invalid(
                "room_prefix",
                "must match ^[a-z0-9][a-z0-9-]{0,39}$",
            ));
        }
        app.room_prefix = p.clone();
    }
    if let Some(m) = file.max_concurrent_streams {
        app.max_concurrent_streams = i64::from(m);
    }
    if let Some(g) = file.max_egress_gb_month
        && !(0.0..=1_000_000.0).contains(&g)
    {
        return Err(invalid(
            "max_egress_gb_month",
            "0..=1000000 (0 = unlimited)",
        ));
    }
    let media = file.media(&MediaConfig::from_settings(&app.settings));
    media.validate()?;
    let mut settings = app.settings.clone();
    if !settings.is_object() {
        settings = json!({});
    }
    if let Some(r) = &file.recording {
        let mut rec = settings
            .get("recording")
            .and_then(Value::as_object)
            .cloned()
            .unwrap_or_default();
        if let Some(on) = r.enabled {
            rec.insert("enabled".into(), json!(on));
        }
        if let Some(m) = r.split_minutes {
            if !SPLIT_MINUTES.contains(&m) {
                return Err(invalid(
                    "recording.split_minutes",
                    "0, 15, 30, 60, 90 or 120",
                ));
            }
            rec.insert("split_minutes".into(), json!(m));
        }
        if let Some(s) = r.snapshot_seconds {
            if !SNAPSHOT_SECONDS.contains(&s) {
                return Err(invalid(
                    "recording.snapshot_seconds",
                    "0, 1, 30, 60, 120 or 360",
                ));
            }
            rec.insert("snapshot_seconds".into(), json!(s));
        }
        if let Some(on) = r.always {
            rec.insert("always".into(), json!(on));
        }
        if let Some(d) = r.retention_days {
            rec.insert("retention_days".into(), json!(d));
        }
        if let Some(g) = r.retention_max_gb {
            if !(0.0..=1_000_000.0).contains(&g) {
                return Err(invalid("recording.retention_max_gb", "0..=1000000"));
            }
            rec.insert("retention_max_gb".into(), json!(g));
        }
        settings["recording"] = Value::Object(rec);
    }
    if let Some(c) = &file.callbacks {
        if let Some(url) = &c.url {
            check_callback_url(url).map_err(|m| invalid("callbacks.url", m))?;
            settings["callbacks"]["url"] = json!(url);
        }
        if let Some(var) = &c.secret_env {
            let secret = secret_of(var).ok_or_else(|| {
                invalid(
                    "callbacks.secret_env",
                    format!("environment variable {var} is not set"),
                )
            })?;
            if secret.len() > 256 {
                return Err(invalid("callbacks.secret_env", "secret longer than 256"));
            }
            settings["callbacks"]["secret"] = json!(secret);
        }
    }
    if let Some(f) = &file.features {
        let mut flags: camgate_protocols::api::AppFeatures = settings
            .get("features")
            .and_then(|v| serde_json::from_value(v.clone()).ok())
            .unwrap_or(camgate_protocols::api::AppFeatures::NEW_APP);
        let set = |slot: &mut bool, v: Option<bool>| {
            if let Some(v) = v {
                *slot = v;
            }
        };
        set(&mut flags.rtmp_password, f.rtmp_password);
        set(&mut flags.viewer_counter, f.viewer_counter);
        set(&mut flags.chat, f.chat);
        set(&mut flags.reactions, f.reactions);
        set(&mut flags.hidden_qc, f.hidden_qc);
        set(&mut flags.adaptive_player, f.adaptive_player);
        set(&mut flags.public_playback, f.public_playback);
        app.public_playback = flags.public_playback;
        app.hidden_qc = flags.hidden_qc;
        settings["features"] = serde_json::to_value(flags).unwrap_or_default();
    }
    if let Some(g) = file.max_egress_gb_month {
        settings["quotas"] = json!({ "max_egress_gb_month": g });
    }
    media.store(&mut settings);
    app.settings = settings;
    Ok(())
}

/// Allowed `splitMinutes`.
pub const SPLIT_MINUTES: [u32; 6] = [0, 15, 30, 60, 90, 120];
/// Allowed `snapshotSeconds`.
pub const SNAPSHOT_SECONDS: [u32; 6] = [0, 1, 30, 60, 120, 360];

/// A callback URL: empty (off) or http(s), at most 2048 bytes.
pub fn check_callback_url(url: &str) -> Result<(), &'static str> {
    if url.len() > 2048 {
        return Err("longer than 2048");
    }
    if !(url.is_empty() || url.starts_with("http://") || url.starts_with("https://")) {
        return Err("must be an http(s) URL");
    }
    Ok(())
}

/// Reads `<dir>/<name>.toml` files and applies each to its app, creating
/// apps that do not exist. Answers how many were applied; the first bad
/// file stops it with the file and key named. `only` limits it to one app.
pub async fn load_dir(
    db: &crate::store::Db,
    dir: &std::path::Path,
    only: Option<&str>,
) -> Result<usize, String> {
    let entries = match std::fs::read_dir(dir) {
        Ok(e) => e,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(0),
        Err(e) => return Err(format!("{}: {e}", dir.display())),
    };
    let mut paths: Vec<_> = entries
        .filter_map(Result::ok)
        .map(|e| e.path())
        .filter(|p| p.extension().is_some_and(|x| x == "toml"))
        .filter(|p| only.is_none_or(|o| p.file_stem().is_some_and(|s| s == o)))
        .collect();
    paths.sort();
    let mut applied = 0;
    for path in paths {
        let shown = path.display().to_string();
        let text = std::fs::read_to_string(&path).map_err(|e| format!("{shown}: {e}"))?;
        let file = AppFile::parse(&text).map_err(|e| format!("{shown}: {e}"))?;
        if path.file_stem().is_none_or(|s| *s != *file.name) {
            return Err(format!(
                "{shown}: name {} does not match the file name",
                file.name
            ));
        }
        if !camgate_protocols::api::valid_app_name(&file.name) {
            return Err(format!(
                "{shown}: name must match ^[a-z0-9][a-z0-9-]{{1,30}}[a-z0-9]$"
            ));
        }
        let db_err = |e: sqlx::Error| format!("{shown}: database: {e}");
        if db.app_by_name(&file.name).await.map_err(db_err)?.is_none() {
            let features = serde_json::to_value(camgate_protocols::api::AppFeatures::NEW_APP)
                .unwrap_or_default();
            db.insert_app(
                &file.name,
                &file.name,
                &file.name,
                &json!({ "features": features }),
            )
            .await
            .map_err(db_err)?;
        }
        let Some(mut app) = db.app_by_name(&file.name).await.map_err(db_err)? else {
            return Err(format!("{shown}: app vanished while loading"));
        };
        apply_file(&mut app, &file, |var| std::env::var(var).ok())
            .map_err(|e| format!("{shown}: {e}"))?;
        db.update_app(&app).await.map_err(db_err)?;
        tracing::info!(app = %app.name, file = %shown, "app config file applied");
        applied += 1;
    }
    Ok(applied)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_follow_the_reference() {
        let m = MediaConfig::from_settings(&json!({}));
        assert!(!m.transcoding_enabled);
        assert_eq!(
            m.layers.iter().map(|l| l.height).collect::<Vec<_>>(),
            [720, 480, 240]
        );
        assert_eq!(m.ws_ingest.max_fps, 15);
        assert_eq!(m.ws_ingest.max_frame_kb, 256);
        assert!(m.ws_ingest.enabled);
        assert_eq!(m.validate(), Ok(()));
    }

    #[test]
    fn store_and_read_back_keep_other_sections() {
        let mut settings = json!({ "features": { "chat": true }, "ws_ingest": { "max_fps": 5 } });
        let mut m = MediaConfig::from_settings(&settings);
        assert_eq!(m.ws_ingest.max_fps, 5);
        m.apply(ConfigPatch {
            layers: Some(vec![Layer {
                name: "only".into(),
                height: 360,
            }]),
            transcoding_enabled: Some(true),
            ..ConfigPatch::default()
        });
        m.store(&mut settings);
        assert_eq!(settings["features"]["chat"], true);
        let back = MediaConfig::from_settings(&settings);
        assert_eq!(back, m);
        assert_eq!(back.layers.len(), 1);
    }

    #[test]
    fn validation_names_the_field() {
        let mut m = MediaConfig::default();
        m.layers[1].height = 5000;
        assert_eq!(m.validate().expect_err("refused").field, "layers[1].height");
        let m = MediaConfig {
            vod_renditions: vec![Rendition {
                height: 720,
                bitrate_kbps: 50,
            }],
            ..MediaConfig::default()
        };
        assert_eq!(
            m.validate().expect_err("refused").field,
            "vodRenditions[0].bitrateKbps"
        );
        let mut m = MediaConfig::default();
        m.layers.clear();
        assert_eq!(m.validate().expect_err("refused").field, "layers");
        let mut m = MediaConfig::default();
        m.ws_ingest.max_fps = 0;
        assert_eq!(m.validate().expect_err("refused").field, "wsIngest.maxFps");
    }

    #[test]
    fn app_file_parses_and_refuses_unknown_keys() {
        let f = AppFile::parse(
            r#"
name = "lobby"
display_name = "Lobby"
[features]
chat = true
[webrtc]
layers = [{ name = "high", height = 1080 }, { name = "low", height = 360 }]
[ws_ingest]
max_cameras = 4
max_fps = 10
"#,
        )
        .expect("parses");
        let m = f.media(&MediaConfig::default());
        assert_eq!(m.layers[0].height, 1080);
        assert_eq!(m.ws_ingest.max_cameras, 4);
        assert_eq!(m.ws_ingest.max_frame_kb, 256);
        let err = AppFile::parse("name = \"x\"\n[ws_ingest]\nmax_fsp = 3\n").expect_err("refused");
        assert!(err.contains("max_fsp"), "{err}");
    }
}
