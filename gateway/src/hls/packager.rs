//! One stream's HLS: cuts access units into partial segments and segments,
//! keeps a short ring of them in memory, and writes the playlist — LL-HLS
//! tags (`EXT-X-PART`, `EXT-X-PRELOAD-HINT`, `CAN-BLOCK-RELOAD`) that
//! hls.js and Safari use, on top of plain segments that ffmpeg and older
//! players read.
//!
//! Sans-IO: the caller pushes samples with their timestamps and reads the
//! playlist and the media; nothing here waits or touches a clock.
//!
//! * A **part** closes when the next video sample would make it longer than
//!   [`PART_TARGET`], or when a segment ends.
//! * A **segment** ends on a keyframe once it is at least
//!   [`SEGMENT_MIN`] long, so every segment starts on a keyframe.
//! * Timestamps that go backwards (an encoder restart, a broken muxer) are
//!   moved forward by one frame and counted; the playlist stays valid.
//! * A new stream configuration (another SPS, a new publisher) starts a new
//!   init segment with `EXT-X-DISCONTINUITY`.

use std::collections::VecDeque;
use std::fmt::Write;

use bytes::Bytes;
use camgate_protocols::flv::AacConfig;

use super::mux::{self, AudioParams, Sample, VIDEO_TIMESCALE, VideoParams};

/// Target duration of a partial segment, seconds.
pub const PART_TARGET: f64 = 0.334;
/// Shortest segment: a segment ends on the first keyframe after this.
pub const SEGMENT_MIN: f64 = 1.0;
/// Completed segments kept (and listed).
pub const SEGMENTS_KEPT: usize = 8;
/// Segments at the end of the playlist whose parts are listed.
const PARTS_LISTED_FOR: usize = 3;
/// Default frame duration when timestamps are unusable (90 kHz).
const FALLBACK_FRAME: u64 = 3000;

/// A partial segment.
#[derive(Debug, Clone)]
pub struct Part {
    /// `moof` + `mdat`.
    pub bytes: Bytes,
    /// Seconds.
    pub duration: f64,
    /// Starts with a keyframe.
    pub independent: bool,
}

/// A part as [`Packager::parts_after`] hands it out.
#[derive(Debug, Clone)]
pub struct PartRef {
    /// `(msn, index)`.
    pub at: (u64, usize),
    /// The init segment version it needs.
    pub init_version: u32,
    /// `moof` + `mdat`.
    pub bytes: Bytes,
    /// Seconds.
    pub duration: f64,
    /// Starts with a keyframe.
    pub independent: bool,
}

/// A segment: its parts in order.
#[derive(Debug, Clone)]
pub struct Segment {
    /// Media sequence number.
    pub msn: u64,
    /// Parts so far.
    pub parts: Vec<Part>,
    /// All parts are in.
    pub complete: bool,
    /// First segment after a configuration change.
    pub discontinuity: bool,
    /// The init segment version it needs.
    pub init_version: u32,
}

impl Segment {
    /// Seconds.
    pub fn duration(&self) -> f64 {
        self.parts.iter().map(|p| p.duration).sum()
    }

    /// The whole segment: its parts concatenated.
    pub fn bytes(&self) -> Bytes {
        let mut out = Vec::with_capacity(self.parts.iter().map(|p| p.bytes.len()).sum());
        for p in &self.parts {
            out.extend_from_slice(&p.bytes);
        }
        out.into()
    }
}

/// The HLS state of one stream.
#[derive(Debug)]
pub struct Packager {
    video: Option<VideoParams>,
    audio: Option<AudioParams>,
    init: Option<(u32, Bytes)>,
    init_version: u32,
    pending_discontinuity: bool,
    /// The last video sample, waiting for the next to know its duration.
    held: Option<Sample>,
    part_video: Vec<Sample>,
    part_audio: Vec<Sample>,
    /// Audio decode time of the next AAC frame (audio timescale).
    next_audio_dts: Option<u64>,
    /// Offset added to incoming video decode times (90 kHz) to keep them
    /// increasing.
    last_dts: Option<u64>,
    segments: VecDeque<Segment>,
    next_msn: u64,
    sequence: u32,
    target_duration: u64,
    ended: bool,
    /// Duration of the last video sample (90 kHz), for the held sample
    /// when the stream stops.
    last_duration: u32,
    /// Discontinuity tags that scrolled out of the playlist.
    dropped_discontinuities: u64,
    /// Samples whose timestamps had to be moved forward.
    pub timestamp_fixes: u64,
    /// Every accepted sample, with its repaired time, for restreams (sent
    /// only while someone listens).
    pub tap: Option<tokio::sync::broadcast::Sender<TapSample>>,
}

/// A sample as a restream sees it: times in milliseconds, increasing.
#[derive(Debug, Clone)]
pub enum TapSample {
    /// An H.264 access unit (Annex B).
    Video {
        /// Decode time.
        dts_ms: u64,
        /// Composition offset.
        cts_ms: i32,
        /// IDR.
        keyframe: bool,
        /// The access unit.
        annex_b: Bytes,
    },
    /// A raw AAC frame.
    Audio {
        /// Decode time.
        dts_ms: u64,
        /// The frame.
        frame: Bytes,
    },
}

impl Default for Packager {
    fn default() -> Self {
        Packager::new()
    }
}

impl Packager {
    /// An empty packager.
    pub fn new() -> Packager {
        Packager {
            video: None,
            audio: None,
            init: None,
            init_version: 0,
            pending_discontinuity: false,
            held: None,
            part_video: Vec::new(),
            part_audio: Vec::new(),
            next_audio_dts: None,
            last_dts: None,
            segments: VecDeque::new(),
            next_msn: 0,
            sequence: 1,
            target_duration: 2,
            ended: false,
            last_duration: FALLBACK_FRAME as u32,
            dropped_discontinuities: 0,
            timestamp_fixes: 0,
            tap: None,
        }
    }

    /// A new publisher takes over the stream: what is pending is closed, the
    /// next segment is a discontinuity with a new init segment.
    pub fn restart(&mut self) {
        self.finish_segment();
        self.ended = false;
        self.video = None;
        self.audio = None;
        self.init = None;
        self.last_dts = None;
        self.next_audio_dts = None;
        self.pending_discontinuity = !self.segments.is_empty();
    }

    /// The stream ended: the last segment closes, the playlist ends.
    pub fn end(&mut self) {
        self.finish_segment();
        self.ended = true;
    }

    /// Flushes everything pending, the held sample included (with the
    /// previous frame's duration), and closes the segment.
    fn finish_segment(&mut self) {
        if let Some(mut held) = self.held.take() {
            held.duration = self.last_duration;
            self.part_video.push(held);
        }
        self.close_segment();
    }

    /// Whether the stream ended.
    pub fn ended(&self) -> bool {
        self.ended
    }

    /// Sets the video configuration; a change starts a new init segment.
    pub fn set_video(&mut self, params: VideoParams) {
        if self.video.as_ref() == Some(&params) {
            return;
        }
        if self.video.is_some() {
            self.finish_segment();
            self.pending_discontinuity = true;
        }
        self.video = Some(params);
        self.init = None;
    }

    /// Sets the AAC configuration.
    pub fn set_audio(&mut self, config: AacConfig) {
        self.set_audio_params(AudioParams::Aac(config));
    }

    /// The audio track is Opus with this many channels.
    pub fn set_opus(&mut self, channels: u8) {
        self.set_audio_params(AudioParams::Opus { channels });
    }

    /// Sets the audio configuration; a change starts a new init segment.
    pub fn set_audio_params(&mut self, config: AudioParams) {
        if self.audio.as_ref() == Some(&config) {
            return;
        }
        // Fragments already made with another init segment (other audio,
        // or video alone) end their segment.
        if self.audio.is_some() || self.init.is_some() {
            self.finish_segment();
            self.pending_discontinuity = !self.segments.is_empty();
        }
        self.audio = Some(config);
        self.init = None;
        self.next_audio_dts = None;
    }

    /// The current init segment `(version, bytes)`, built on first use.
    pub fn init(&mut self) -> Option<(u32, Bytes)> {
        if self.init.is_none() {
            let video = self.video.as_ref()?;
            let bytes = mux::init_segment(video, self.audio.as_ref()).ok()?;
            self.init_version += 1;
            self.init = Some((self.init_version, bytes.into()));
        }
        self.init.clone()
    }

    /// Adds a video access unit (Annex B) with its RTMP-style times in
    /// milliseconds.
    pub fn push_video(&mut self, dts_ms: i64, cts_ms: i32, keyframe: bool, annex_b: &[u8]) {
        if self.video.is_none() || self.ended {
            return;
        }
        let mut dts = (dts_ms.max(0) as u64) * 90;
        if let Some(last) = self.last_dts
            && dts <= last
        {
            dts = last + FALLBACK_FRAME;
            self.timestamp_fixes += 1;
        }
        self.last_dts = Some(dts);
        if self.init().is_none() {
            return;
        }
        if let Some(tap) = self.tap.as_ref().filter(|t| t.receiver_count() > 0) {
            let _ = tap.send(TapSample::Video {
                dts_ms: dts / 90,
                cts_ms,
                keyframe,
                annex_b: Bytes::copy_from_slice(annex_b),
            });
        }
        let sample = Sample {
            dts,
            duration: 0,
            cts: cts_ms.saturating_mul(90),
            keyframe,
            data: mux::avcc_sample(annex_b),
        };
        let Some(mut prev) = self.held.replace(sample) else {
            return;
        };
        prev.duration = dts.saturating_sub(prev.dts).clamp(1, u64::from(u32::MAX)) as u32;
        self.last_duration = prev.duration;
        // Segment boundary: this new sample is a keyframe and the segment
        // is long enough.
        let next_is_key = self.held.as_ref().is_some_and(|s| s.keyframe);
        let part_secs = self.part_video_secs();
        let new_part_secs = part_secs + f64::from(prev.duration) / f64::from(VIDEO_TIMESCALE);
        if !self.part_video.is_empty() && new_part_secs > PART_TARGET + 0.001 {
            self.close_part();
        }
        self.part_video.push(prev);
        if next_is_key && self.open_segment_secs() >= SEGMENT_MIN {
            self.close_segment();
        }
    }

    /// Adds one raw AAC frame or Opus packet; its time comes from counting
    /// samples from the first one's `dts_ms` (an AAC frame is 1024 samples,
    /// an Opus packet says its length), moved forward when the source's
    /// clock runs more than 100 ms ahead (a gap), never backwards. A
    /// malformed frame (empty, an Opus TOC that does not parse) is dropped.
    pub fn push_audio(&mut self, dts_ms: i64, frame: &[u8]) {
        let Some(config) = &self.audio else {
            return;
        };
        if self.ended || self.video.is_none() {
            return;
        }
        let Some(duration) = config.frame_duration(frame) else {
            return;
        };
        let aac = matches!(config, AudioParams::Aac(_));
        let rate = u64::from(config.timescale());
        let from_clock = (dts_ms.max(0) as u64) * rate / 1000;
        // Follow the encoder's clock forward (a gap), never backwards: a
        // clock that jumps back keeps the frame count going.
        let dts = match self.next_audio_dts {
            Some(n) if from_clock > n + rate / 10 => from_clock,
            Some(n) => n,
            None => from_clock,
        };
        self.next_audio_dts = Some(dts + u64::from(duration));
        // Restreams carry AAC only (FLV has no Opus).
        if aac && let Some(tap) = self.tap.as_ref().filter(|t| t.receiver_count() > 0) {
            let _ = tap.send(TapSample::Audio {
                dts_ms: dts * 1000 / rate.max(1),
                frame: Bytes::copy_from_slice(frame),
            });
        }
        self.part_audio.push(Sample {
            dts,
            duration,
            cts: 0,
            keyframe: true,
            data: frame.to_vec(),
        });
    }

    fn part_video_secs(&self) -> f64 {
        self.part_video
            .iter()
            .map(|s| f64::from(s.duration))
            .sum::<f64>()
            / f64::from(VIDEO_TIMESCALE)
    }

    /// Seconds of media in the open (unfinished) segment.
    pub fn open_segment_secs(&self) -> f64 {
        let done = self
            .segments
            .back()
            .filter(|s| !s.complete)
            .map_or(0.0, Segment::duration);
        done + self.part_video_secs()
    }

    /// Turns the pending samples into a part of the open segment.
    fn close_part(&mut self) {
        if self.part_video.is_empty() {
            return;
        }
        let Some((init_version, _)) = self.init() else {
            return;
        };
        let video = std::mem::take(&mut self.part_video);
        // Audio up to the end of this part's video.
        let end_video = video.last().map_or(0, |s| s.dts + u64::from(s.duration));
        let rate = self.audio.as_ref().map_or(1, |a| u64::from(a.timescale()));
        let cut = end_video * rate / u64::from(VIDEO_TIMESCALE);
        let split = self.part_audio.partition_point(|s| s.dts < cut);
        let audio: Vec<Sample> = self.part_audio.drain(..split).collect();
        let duration =
            video.iter().map(|s| f64::from(s.duration)).sum::<f64>() / f64::from(VIDEO_TIMESCALE);
        let independent = video[0].keyframe;
        let Ok(bytes) = mux::fragment(self.sequence, &video, &audio) else {
            return;
        };
        self.sequence += 1;
        let needs_new = self.segments.back().is_none_or(|s| s.complete);
        if needs_new {
            let discontinuity = std::mem::take(&mut self.pending_discontinuity);
            self.segments.push_back(Segment {
                msn: self.next_msn,
                parts: Vec::new(),
                complete: false,
                discontinuity,
                init_version,
            });
            self.next_msn += 1;
        }
        if let Some(seg) = self.segments.back_mut() {
            seg.parts.push(Part {
                bytes: bytes.into(),
                duration,
                independent,
            });
        }
    }

    /// Closes the open part and segment.
    fn close_segment(&mut self) {
        if self.ended {
            return;
        }
        self.close_part();
        if let Some(seg) = self.segments.back_mut()
            && !seg.complete
        {
            seg.complete = true;
            let d = seg.duration().ceil() as u64;
            self.target_duration = self.target_duration.max(d);
        }
        while self.segments.iter().filter(|s| s.complete).count() > SEGMENTS_KEPT {
            if let Some(s) = self.segments.pop_front()
                && s.discontinuity
            {
                self.dropped_discontinuities += 1;
            }
        }
    }

    /// The highest (msn, part index) that exists.
    pub fn last_part(&self) -> Option<(u64, usize)> {
        let seg = self.segments.back()?;
        match seg.parts.len() {
            0 => None,
            n => Some((seg.msn, n - 1)),
        }
    }

    /// Whether part `part` of segment `msn` (or the whole segment when
    /// `part` is `None`) exists.
    pub fn has(&self, msn: u64, part: Option<usize>) -> bool {
        match self.segments.iter().find(|s| s.msn == msn) {
            Some(s) => match part {
                Some(p) => p < s.parts.len(),
                None => s.complete,
            },
            None => self.segments.back().is_some_and(|s| s.msn > msn),
        }
    }

    /// Whether a whole segment exists (players that ignore parts need one).
    pub fn has_segment(&self) -> bool {
        self.segments.iter().any(|s| s.complete)
    }

    /// The next media sequence number to be created.
    pub fn next_msn(&self) -> u64 {
        self.next_msn
    }

    /// A segment's bytes.
    pub fn segment(&self, msn: u64) -> Option<Bytes> {
        self.segments
            .iter()
            .find(|s| s.msn == msn && s.complete)
            .map(Segment::bytes)
    }

    /// A part's bytes.
    pub fn part(&self, msn: u64, index: usize) -> Option<Bytes> {
        self.segments
            .iter()
            .find(|s| s.msn == msn)?
            .parts
            .get(index)
            .map(|p| p.bytes.clone())
    }

    /// Every part after `after` (`(msn, index)`; `None` = all kept), in
    /// order, with what a recorder needs to append it to a file.
    pub fn parts_after(&self, after: Option<(u64, usize)>) -> Vec<PartRef> {
        let mut out = Vec::new();
        for seg in &self.segments {
            for (i, p) in seg.parts.iter().enumerate() {
                if after.is_none_or(|a| (seg.msn, i) > a) {
                    out.push(PartRef {
                        at: (seg.msn, i),
                        init_version: seg.init_version,
                        bytes: p.bytes.clone(),
                        duration: p.duration,
                        independent: p.independent,
                    });
                }
            }
        }
        out
    }

    /// The current video configuration.
    pub fn video_params(&self) -> Option<VideoParams> {
        self.video.clone()
    }

    /// The current AAC configuration.
    pub fn audio_config(&self) -> Option<AacConfig> {
        match &self.audio {
            Some(AudioParams::Aac(a)) => Some(a.clone()),
            _ => None,
        }
    }

    /// The picture size of the current video configuration.
    pub fn dimensions(&self) -> Option<(u16, u16)> {
        self.video.as_ref().map(|v| (v.width, v.height))
    }

    /// Whether the current configuration carries AAC audio.
    pub fn has_audio(&self) -> bool {
        self.audio.is_some()
    }

    /// The init segment of a version, when it is the current one.
    pub fn init_bytes(&mut self, version: u32) -> Option<Bytes> {
        self.init().filter(|(v, _)| *v == version).map(|(_, b)| b)
    }

    /// The media playlist. `query` is appended to every URI (a playback
    /// token for private apps).
    pub fn playlist(&self, query: &str) -> Option<String> {
        let first = self.segments.front()?;
        let mut p = String::with_capacity(2048);
        let _ = writeln!(p, "#EXTM3U");
        let _ = writeln!(p, "#EXT-X-VERSION:9");
        let _ = writeln!(p, "#EXT-X-TARGETDURATION:{}", self.target_duration);
        let _ = writeln!(
            p,
            "#EXT-X-SERVER-CONTROL:CAN-BLOCK-RELOAD=YES,PART-HOLD-BACK={:.3}",
            PART_TARGET * 3.0
        );
        let _ = writeln!(p, "#EXT-X-PART-INF:PART-TARGET={PART_TARGET:.3}");
        let _ = writeln!(p, "#EXT-X-MEDIA-SEQUENCE:{}", first.msn);
        // The front segment's tag is not written (nothing precedes it), so
        // it counts as scrolled out.
        let discontinuities = self.dropped_discontinuities + u64::from(first.discontinuity);
        let _ = writeln!(p, "#EXT-X-DISCONTINUITY-SEQUENCE:{discontinuities}");
        let mut init_version = None;
        let n = self.segments.len();
        for (i, seg) in self.segments.iter().enumerate() {
            if seg.discontinuity && i > 0 {
                let _ = writeln!(p, "#EXT-X-DISCONTINUITY");
            }
            if init_version != Some(seg.init_version) {
                let _ = writeln!(p, "#EXT-X-MAP:URI=\"init-{}.mp4{query}\"", seg.init_version);
                init_version = Some(seg.init_version);
            }
            if i + PARTS_LISTED_FOR >= n {
                for (j, part) in seg.parts.iter().enumerate() {
                    let _ = writeln!(
                        p,
                        "#EXT-X-PART:DURATION={:.5},URI=\"part-{}-{j}.m4s{query}\"{}",
                        part.duration,
                        seg.msn,
                        if part.independent {
                            ",INDEPENDENT=YES"
                        } else {
                            ""
                        }
                    );
                }
            }
            if seg.complete {
                let _ = writeln!(p, "#EXTINF:{:.5},", seg.duration());
                let _ = writeln!(p, "seg-{}.m4s{query}", seg.msn);
            }
        }
        if self.ended {
            let _ = writeln!(p, "#EXT-X-ENDLIST");
        } else {
            // The next part: in the open segment, or the first of the next.
            let (msn, idx) = match self.segments.back() {
                Some(s) if !s.complete => (s.msn, s.parts.len()),
                _ => (self.next_msn, 0),
            };
            let _ = writeln!(
                p,
                "#EXT-X-PRELOAD-HINT:TYPE=PART,URI=\"part-{msn}-{idx}.m4s{query}\""
            );
        }
        Some(p)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn params() -> VideoParams {
        VideoParams {
            width: 320,
            height: 240,
            sps: vec![0x67, 0x42, 0xe0, 0x1e, 0xda],
            pps: vec![0x68, 0xce, 0x3c, 0x80],
        }
    }

    fn au(key: bool) -> Vec<u8> {
        vec![0, 0, 0, 1, if key { 0x65 } else { 0x41 }, 0x88, 0x84]
    }

    /// 30 fps with a keyframe every `gop` frames, AAC at 48 kHz alongside.
    fn feed(p: &mut Packager, from: u64, frames: u64, gop: u64) {
        for i in from..from + frames {
            let ms = (i * 1000 / 30) as i64;
            p.push_video(ms, 0, i % gop == 0, &au(i % gop == 0));
            // ~1.4 AAC frames per video frame at 48 kHz.
            while p.next_audio_dts.map_or(0, |d| d * 1000 / 48000) <= ms as u64 {
                let before = p.next_audio_dts;
                let ams = before.map_or(0, |d| d * 1000 / 48000) as i64;
                p.push_audio(ams, &[0x21, 0x10, 0x04]);
                if p.next_audio_dts == before {
                    break;
                }
            }
        }
    }

    fn packager() -> Packager {
        let mut p = Packager::new();
        p.set_video(params());
        p.set_audio(AacConfig::parse(&[0x11, 0x90]).expect("aac"));
        p
    }

    #[test]
    fn segments_start_on_keyframes_and_parts_respect_the_target() {
        let mut p = packager();
        feed(&mut p, 0, 30 * 5, 30);
        let segs: Vec<&Segment> = p.segments.iter().filter(|s| s.complete).collect();
        assert!(segs.len() >= 4, "{}", segs.len());
        for s in &segs {
            assert!(
                s.parts[0].independent,
                "segment {} starts on a keyframe",
                s.msn
            );
            assert!(
                (s.duration() - 1.0).abs() < 0.05,
                "1 s GOP: {}",
                s.duration()
            );
            for part in &s.parts {
                assert!(part.duration <= PART_TARGET + 0.001, "{}", part.duration);
            }
        }
        let pl = p.playlist("").expect("playlist");
        assert!(pl.contains("#EXT-X-MAP:URI=\"init-1.mp4\""), "{pl}");
        assert!(pl.contains("#EXT-X-PRELOAD-HINT:TYPE=PART"), "{pl}");
        assert!(pl.contains("#EXT-X-TARGETDURATION:2"), "{pl}");
        assert!(!pl.contains("ENDLIST"));
        // Every listed URI resolves.
        for line in pl.lines() {
            if let Some(seg) = line.strip_prefix("seg-") {
                let msn: u64 = seg.trim_end_matches(".m4s").parse().expect("msn");
                assert!(p.segment(msn).is_some(), "{line}");
            }
        }
        p.end();
        assert!(p.playlist("").expect("playlist").contains("#EXT-X-ENDLIST"));
    }

    #[test]
    fn backwards_timestamps_are_fixed_and_restart_is_a_discontinuity() {
        let mut p = packager();
        feed(&mut p, 0, 60, 30);
        // The encoder's clock jumps back.
        feed(&mut p, 0, 60, 30);
        assert!(p.timestamp_fixes > 0);
        // Audio from a clock that went back keeps counting forward.
        let before = p.next_audio_dts.unwrap_or(0);
        p.push_audio(0, &[0x21, 0x10, 0x04]);
        assert_eq!(p.next_audio_dts, Some(before + u64::from(mux::AAC_FRAME)));
        let mut last = 0;
        for s in &p.segments {
            for part in &s.parts {
                assert!(part.duration > 0.0);
            }
            assert!(s.msn >= last);
            last = s.msn;
        }
        p.restart();
        p.set_video(params());
        p.set_audio(AacConfig::parse(&[0x11, 0x90]).expect("aac"));
        feed(&mut p, 0, 60, 30);
        let pl = p.playlist("?token=t").expect("playlist");
        assert!(pl.contains("#EXT-X-DISCONTINUITY\n"), "{pl}");
        assert!(pl.contains("init-2.mp4?token=t"), "{pl}");
    }

    #[test]
    fn blocking_reload_bookkeeping() {
        let mut p = packager();
        assert!(p.playlist("").is_none());
        feed(&mut p, 0, 45, 30);
        let (msn, part) = p.last_part().expect("a part");
        assert!(p.has(msn, Some(part)));
        assert!(!p.has(msn, Some(part + 1)));
        assert!(p.has(0, None));
        assert!(p.part(msn, part).is_some());
    }

    #[test]
    fn opus_packets_are_timed_by_their_toc_and_bad_ones_dropped() {
        let mut p = Packager::new();
        p.set_video(params());
        p.set_opus(2);
        let (_, init) = p.init().expect("init");
        assert!(init.windows(4).any(|w| w == b"Opus"));
        assert!(init.windows(4).any(|w| w == b"dOps"));
        for i in 0..90u64 {
            let ms = (i * 1000 / 30) as i64;
            p.push_video(ms, 0, i % 30 == 0, &au(i % 30 == 0));
            // 20 ms CELT packets; one garbage (empty) packet per frame.
            while p.next_audio_dts.map_or(0, |d| d / 48) <= ms as u64 {
                let at = p.next_audio_dts.map_or(0, |d| d / 48) as i64;
                p.push_audio(at, &[0xfc, 0xff, 0xfe]);
            }
            p.push_audio(ms, &[]);
        }
        // Every packet advanced the clock by 960 samples; none by the
        // empty ones.
        let next = p.next_audio_dts.expect("audio");
        assert_eq!(next % 960, 0);
        assert!((2900 * 48..=3100 * 48).contains(&next), "{next}");
        assert_eq!(p.audio_config(), None, "no AAC for restreams");
    }
}
