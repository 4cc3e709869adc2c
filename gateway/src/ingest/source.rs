//! A publishing H.264 source — an RTMP push or a pulled RTSP camera — and
//! everything it feeds: the room's publisher seat, the SFU (H.264 passed
//! through as RFC 6184 packets, audio as Opus or G.711), HLS and recordings
//! (H.264 + AAC, or + Opus made from a camera's G.711),
//! and the room's latest keyframe for `frame.jpg`.
//!
//! RTP packets are made only while a WebRTC viewer subscribes (a joining
//! viewer waits for the next keyframe anyway), and AAC is transcoded to
//! Opus only then. Access units are also offered to the room's H.264 →
//! MJPEG transcoder while MJPEG viewers watch.

use std::sync::Arc;

use camgate_protocols::flv::AacConfig;
use camgate_protocols::h264::{Packetizer, access_unit_is_keyframe, parse_sps};
use camgate_sfu::SourceKind;
use camgate_sfu::core::{SourceCodec, SourcePacket};
use tracing::warn;

use crate::hub::{PublisherGuard, RoomBusy, RoomKey};
use crate::server::SharedState;
use crate::transcode::aac_opus::AacToOpus;
use crate::transcode::g711_opus::{G711ToOpus, Law};
use crate::transcode::jpeg_h264::RTP_PAYLOAD_MTU;
use crate::webrtc::{RoomMedia, sfu_room};

/// The audio a source sends.
enum Audio {
    None,
    /// AAC: to HLS as it is, to WebRTC as Opus (when the converter could be
    /// built for the stream's configuration).
    Aac(Option<Box<AacToOpus>>),
    /// G.711 from a camera: to WebRTC as it is, to HLS as Opus (when the
    /// encoder could be built).
    G711(SourceCodec, Option<Box<G711ToOpus>>),
}

/// One live H.264 source in a room.
pub struct H264Source {
    state: SharedState,
    key: RoomKey,
    sfu_room: String,
    hls: Arc<crate::hls::Stream>,
    room_media: Arc<RoomMedia>,
    _seat: PublisherGuard,
    packetizer: Packetizer,
    next_seq: u64,
    /// The `profile-level-id` the SFU track was attached with.
    attached: Option<u32>,
    audio: Audio,
    audio_attached: bool,
    next_audio_seq: u64,
}

impl H264Source {
    /// Takes the room's publisher seat for `owner` (an ingress id) and opens
    /// its HLS stream.
    pub fn open(
        state: &SharedState,
        key: &RoomKey,
        kind: SourceKind,
        owner: &str,
    ) -> Result<H264Source, RoomBusy> {
        let seat = state
            .hub
            .publish(key, kind, owner, crate::webrtc::next_conn())?;
        let sfu_room = sfu_room(key);
        Ok(H264Source {
            state: state.clone(),
            hls: state.hls.open(key),
            room_media: state.media.room(&sfu_room),
            sfu_room,
            key: key.clone(),
            _seat: seat,
            packetizer: Packetizer::new(RTP_PAYLOAD_MTU),
            next_seq: 1,
            attached: None,
            audio: Audio::None,
            audio_attached: false,
            next_audio_seq: 1,
        })
    }

    /// The room.
    pub fn key(&self) -> &RoomKey {
        &self.key
    }

    /// An audio configuration was given.
    pub fn has_audio(&self) -> bool {
        !matches!(self.audio, Audio::None)
    }

    /// New SPS/PPS: HLS gets a new init segment; the SFU track is
    /// (re)attached when the profile changed. `size` is used when the SPS
    /// cannot be parsed.
    pub async fn video_config(&mut self, sps: &[u8], pps: &[u8], size: (u32, u32)) {
        let (width, height) = parse_sps(sps).map_or(size, |i| (i.width, i.height));
        let params = crate::hls::mux::VideoParams {
            width: width.min(65535) as u16,
            height: height.min(65535) as u16,
            sps: sps.to_vec(),
            pps: pps.to_vec(),
        };
        self.hls.with(|h| h.set_video(params));
        let Some(profile) = sps
            .get(1..4)
            .map(|b| u32::from(b[0]) << 16 | u32::from(b[1]) << 8 | u32::from(b[2]))
        else {
            return;
        };
        if self.attached == Some(profile) {
            return;
        }
        let sfu = self.state.media.sfu();
        if self.attached.is_some() {
            sfu.detach_source(&self.sfu_room).await;
        }
        let _ = sfu
            .attach_source(&self.sfu_room, SourceCodec::H264(profile))
            .await;
        self.attached = Some(profile);
        // Re-attaching video dropped the audio track with it.
        self.audio_attached = false;
        self.attach_audio().await;
    }

    /// One access unit (Annex B, parameter sets in band before keyframes)
    /// with its decode time and composition offset in milliseconds.
    pub async fn video(&mut self, dts_ms: i64, cts_ms: i32, annex_b: &[u8]) {
        let keyframe = access_unit_is_keyframe(annex_b);
        self.hls
            .with(|h| h.push_video(dts_ms, cts_ms, keyframe, annex_b));
        if keyframe {
            self.room_media.set_keyframe(annex_b);
        }
        self.room_media.offer_access_unit(annex_b);
        if self.attached.is_none() || *self.room_media.subscribers.borrow() == 0 {
            return;
        }
        let pts_ms = dts_ms + i64::from(cts_ms);
        let time = (pts_ms.max(0) as u64 * 90) as u32;
        let payloads = self.packetizer.packetize(annex_b);
        let n = payloads.len();
        let mut packets = Vec::with_capacity(n);
        for (i, payload) in payloads.into_iter().enumerate() {
            packets.push(SourcePacket {
                seq: self.next_seq,
                time,
                marker: i + 1 == n,
                keyframe: keyframe && i == 0,
                payload: payload.into(),
            });
            self.next_seq += 1;
        }
        let _ = self
            .state
            .media
            .sfu()
            .write_source(&self.sfu_room, packets)
            .await;
    }

    /// A new AAC configuration: HLS gets it, and a new AAC → Opus converter
    /// is made for WebRTC viewers.
    pub async fn aac_config(&mut self, config: &AacConfig) {
        self.hls.with(|h| h.set_audio(config.clone()));
        let opus = match AacToOpus::new(config) {
            Ok(t) => Some(Box::new(t)),
            Err(e) => {
                warn!(room = %self.key.room, error = %e, "no audio for WebRTC viewers");
                None
            }
        };
        self.audio = Audio::Aac(opus);
        self.audio_attached = false;
        self.attach_audio().await;
    }

    /// One raw AAC frame at `dts_ms`.
    pub async fn aac(&mut self, dts_ms: i64, frame: &[u8]) {
        self.hls.with(|h| h.push_audio(dts_ms, frame));
        if !self.audio_attached || *self.room_media.subscribers.borrow() == 0 {
            return;
        }
        let Audio::Aac(Some(t)) = &mut self.audio else {
            return;
        };
        let packets = t.push(dts_ms, frame);
        if !packets.is_empty() {
            let _ = self
                .state
                .media
                .sfu()
                .write_source_audio(&self.sfu_room, packets)
                .await;
        }
    }

    /// The source's audio is G.711 (`SourceCodec::Pcmu` or `Pcma`).
    pub async fn g711_config(&mut self, codec: SourceCodec) {
        let law = if codec == SourceCodec::Pcma {
            Law::A
        } else {
            Law::Mu
        };
        let opus = match G711ToOpus::new(law) {
            Ok(t) => {
                self.hls.with(|h| h.set_opus(1));
                Some(Box::new(t))
            }
            Err(e) => {
                warn!(room = %self.key.room, error = %e, "no audio for HLS and recordings");
                None
            }
        };
        self.audio = Audio::G711(codec, opus);
        self.audio_attached = false;
        self.attach_audio().await;
    }

    /// One G.711 payload with its 8 kHz RTP timestamp and its time in
    /// milliseconds: to WebRTC as it is, to HLS as Opus.
    pub async fn g711(&mut self, time: u32, ms: i64, payload: &[u8]) {
        if let Audio::G711(_, Some(t)) = &mut self.audio {
            let packets = t.push(ms, payload);
            if !packets.is_empty() {
                self.hls.with(|h| {
                    for (at, p) in &packets {
                        h.push_audio(*at, p);
                    }
                });
            }
        }
        if !self.audio_attached || *self.room_media.subscribers.borrow() == 0 {
            return;
        }
        let packet = SourcePacket {
            seq: self.next_audio_seq,
            time,
            marker: false,
            keyframe: false,
            payload: payload.to_vec().into(),
        };
        self.next_audio_seq += 1;
        let _ = self
            .state
            .media
            .sfu()
            .write_source_audio(&self.sfu_room, vec![packet])
            .await;
    }

    async fn attach_audio(&mut self) {
        let codec = match &self.audio {
            Audio::Aac(Some(_)) => SourceCodec::Opus,
            Audio::G711(c, _) => *c,
            _ => return,
        };
        if self.attached.is_some() && !self.audio_attached {
            self.audio_attached = self
                .state
                .media
                .sfu()
                .attach_source(&self.sfu_room, codec)
                .await
                .is_ok_and(|r| r.is_ok());
        }
    }

    /// The source stopped: the SFU track goes, the HLS playlist ends, the
    /// seat is freed.
    pub async fn close(self) {
        if self.attached.is_some() {
            self.state.media.sfu().detach_source(&self.sfu_room).await;
        }
        self.room_media.clear_keyframe();
        self.state.hls.close(&self.key, &self.hls);
    }
}
