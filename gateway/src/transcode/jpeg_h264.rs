//! JPEG → H.264 for MJPEG cameras watched over WebRTC.
//!
//! Pipeline per frame: decode the JPEG with zune-jpeg straight to YCbCr (no
//! RGB step), average the chroma 2×2 into I420 planes kept between frames,
//! encode with openh264 (constrained baseline, real-time camera mode),
//! packetize once per frame (RFC 6184, [`camgate_protocols::h264`]).
//!
//! Decoder choice, measured on this machine (VGA camsim frames, one core,
//! `camgate-bench transcode`): zune-jpeg to YCbCr ≈ 1.0 ms/frame against
//! jpeg-decoder to RGB ≈ 2.0 ms plus an RGB→I420 pass; both decoders are
//! pure Rust, so the faster one wins. The chroma downsampling is a plain
//! row loop over YCbCr triples (no per-pixel colour maths).
//!
//! openh264 uses its assembly kernels only when Debian's `nasm` is present
//! at build time (≈ 2.5× faster); the test command installs it.

use std::time::Instant;

use camgate_protocols::h264::{Packetizer, access_unit_is_keyframe};
use camgate_sfu::core::SourcePacket;
use openh264::OpenH264API;
use openh264::encoder::{
    BitRate, Encoder, EncoderConfig, FrameRate, IntraFramePeriod, Profile, RateControlMode,
    UsageType,
};
use openh264::formats::YUVSlices;
use zune_core::bytestream::ZCursor;
use zune_core::colorspace::ColorSpace;
use zune_core::options::DecoderOptions;
use zune_jpeg::JpegDecoder;

/// RTP payload size: leaves room for SRTP and header extensions in 1200.
pub const RTP_PAYLOAD_MTU: usize = 1100;

/// Encoder settings.
#[derive(Debug, Clone, Copy)]
pub struct H264Settings {
    /// Target bitrate, bits per second.
    pub bitrate_bps: u32,
    /// Expected frame rate (rate control hint).
    pub max_fps: f32,
    /// A keyframe at least every this many frames.
    pub keyframe_interval: u32,
}

impl Default for H264Settings {
    fn default() -> Self {
        H264Settings {
            bitrate_bps: 1_000_000,
            max_fps: 15.0,
            keyframe_interval: 150,
        }
    }
}

/// Why a frame could not be transcoded. The frame is skipped; the stream
/// goes on.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum TranscodeError {
    /// The JPEG could not be decoded.
    #[error("jpeg decode: {0}")]
    Decode(String),
    /// The image is too small to encode (under 16×16).
    #[error("image too small: {0}x{1}")]
    TooSmall(usize, usize),
    /// openh264 refused the frame.
    #[error("h264 encode: {0}")]
    Encode(String),
}

/// Time spent per stage of the last frame, for metrics and the benchmark.
#[derive(Debug, Clone, Copy, Default)]
pub struct StageTimes {
    /// JPEG decode + chroma downsampling, microseconds.
    pub decode_us: u64,
    /// H.264 encode + packetization, microseconds.
    pub encode_us: u64,
}

/// One camera's transcoder state: the encoder and reused picture planes.
pub struct JpegToH264 {
    settings: H264Settings,
    encoder: Option<(Encoder, usize, usize)>,
    y: Vec<u8>,
    u: Vec<u8>,
    v: Vec<u8>,
    ycbcr: Vec<u8>,
    packetizer: Packetizer,
    next_seq: u64,
    force_keyframe: bool,
    /// Frames encoded so far.
    pub frames: u64,
    /// Stage times of the last frame.
    pub last: StageTimes,
}

impl JpegToH264 {
    /// A transcoder with these settings; the encoder is created on the first
    /// frame (and again whenever the picture size changes).
    pub fn new(settings: H264Settings) -> Self {
        JpegToH264 {
            settings,
            encoder: None,
            y: Vec::new(),
            u: Vec::new(),
            v: Vec::new(),
            ycbcr: Vec::new(),
            packetizer: Packetizer::new(RTP_PAYLOAD_MTU),
            next_seq: 1,
            force_keyframe: false,
            frames: 0,
            last: StageTimes::default(),
        }
    }

    /// The next frame will be a keyframe (a viewer joined or lost packets).
    pub fn request_keyframe(&mut self) {
        self.force_keyframe = true;
    }

    /// Decodes a JPEG into the I420 planes; returns the (even) dimensions.
    pub fn decode(&mut self, jpeg: &[u8]) -> Result<(usize, usize), TranscodeError> {
        let options = DecoderOptions::default().jpeg_set_out_colorspace(ColorSpace::YCbCr);
        let mut decoder = JpegDecoder::new_with_options(ZCursor::new(jpeg), options);
        decoder
            .decode_headers()
            .map_err(|e| TranscodeError::Decode(e.to_string()))?;
        let (w, h) = decoder
            .dimensions()
            .ok_or_else(|| TranscodeError::Decode("no dimensions".into()))?;
        let size = decoder
            .output_buffer_size()
            .ok_or_else(|| TranscodeError::Decode("no output size".into()))?;
        if size != w * h * 3 {
            return Err(TranscodeError::Decode("not a 3-component image".into()));
        }
        self.ycbcr.resize(size, 0);
        decoder
            .decode_into(&mut self.ycbcr)
            .map_err(|e| TranscodeError::Decode(e.to_string()))?;
        // H.264 4:2:0 wants even dimensions: drop an odd last row/column.
        let (ew, eh) = (w & !1, h & !1);
        if ew < 16 || eh < 16 {
            return Err(TranscodeError::TooSmall(w, h));
        }
        self.y.resize(ew * eh, 0);
        self.u.resize(ew * eh / 4, 0);
        self.v.resize(ew * eh / 4, 0);
        let src = &self.ycbcr;
        for row in 0..eh {
            let line = &src[row * w * 3..row * w * 3 + ew * 3];
            let out = &mut self.y[row * ew..(row + 1) * ew];
            for (o, px) in out.iter_mut().zip(line.chunks_exact(3)) {
                *o = px[0];
            }
        }
        let cw = ew / 2;
        for crow in 0..eh / 2 {
            let a = &src[(2 * crow) * w * 3..(2 * crow) * w * 3 + ew * 3];
            let b = &src[(2 * crow + 1) * w * 3..(2 * crow + 1) * w * 3 + ew * 3];
            let uo = &mut self.u[crow * cw..(crow + 1) * cw];
            let vo = &mut self.v[crow * cw..(crow + 1) * cw];
            for (i, (pa, pb)) in a.chunks_exact(6).zip(b.chunks_exact(6)).enumerate() {
                let cb = pa[1] as u16 + pa[4] as u16 + pb[1] as u16 + pb[4] as u16;
                let cr = pa[2] as u16 + pa[5] as u16 + pb[2] as u16 + pb[5] as u16;
                uo[i] = ((cb + 2) / 4) as u8;
                vo[i] = ((cr + 2) / 4) as u8;
            }
        }
        Ok((ew, eh))
    }

    /// Transcodes one JPEG frame taken at RTP time `time` (90 kHz) into RTP
    /// payloads. An empty result means the encoder skipped the frame.
    pub fn transcode(
        &mut self,
        jpeg: &[u8],
        time: u32,
    ) -> Result<Vec<SourcePacket>, TranscodeError> {
        let t0 = Instant::now();
        let (w, h) = self.decode(jpeg)?;
        let t1 = Instant::now();
        let access_unit = self.encode(w, h)?;
        let packets = self.packetize(&access_unit, time);
        self.last = StageTimes {
            decode_us: (t1 - t0).as_micros() as u64,
            encode_us: t1.elapsed().as_micros() as u64,
        };
        Ok(packets)
    }

    /// Encodes the planes filled by [`JpegToH264::decode`] into one Annex B
    /// access unit.
    pub fn encode(&mut self, w: usize, h: usize) -> Result<Vec<u8>, TranscodeError> {
        if !matches!(&self.encoder, Some((_, ew, eh)) if *ew == w && *eh == h) {
            let config = EncoderConfig::new()
                .bitrate(BitRate::from_bps(self.settings.bitrate_bps))
                .max_frame_rate(FrameRate::from_hz(self.settings.max_fps))
                .usage_type(UsageType::CameraVideoRealTime)
                .rate_control_mode(RateControlMode::Bitrate)
                .profile(Profile::Baseline)
                .skip_frames(true)
                .intra_frame_period(IntraFramePeriod::from_num_frames(
                    self.settings.keyframe_interval,
                ))
                .num_threads(1);
            let encoder = Encoder::with_api_config(OpenH264API::from_source(), config)
                .map_err(|e| TranscodeError::Encode(e.to_string()))?;
            self.encoder = Some((encoder, w, h));
        }
        let Some((encoder, _, _)) = self.encoder.as_mut() else {
            return Err(TranscodeError::Encode("no encoder".into()));
        };
        if std::mem::take(&mut self.force_keyframe) {
            encoder.force_intra_frame();
        }
        let yuv = YUVSlices::new((&self.y, &self.u, &self.v), (w, h), (w, w / 2, w / 2));
        let bitstream = encoder
            .encode(&yuv)
            .map_err(|e| TranscodeError::Encode(e.to_string()))?;
        self.frames += 1;
        Ok(bitstream.to_vec())
    }

    /// Cuts an access unit into RTP payloads with this track's numbering.
    pub fn packetize(&mut self, access_unit: &[u8], time: u32) -> Vec<SourcePacket> {
        let keyframe = access_unit_is_keyframe(access_unit);
        let payloads = self.packetizer.packetize(access_unit);
        let n = payloads.len();
        payloads
            .into_iter()
            .enumerate()
            .map(|(i, p)| {
                let seq = self.next_seq;
                self.next_seq += 1;
                SourcePacket {
                    seq,
                    time,
                    marker: i + 1 == n,
                    keyframe: keyframe && i == 0,
                    payload: p.into(),
                }
            })
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use camgate_protocols::h264::{NAL_IDR, NAL_SPS, nal_type, split_annex_b};

    fn test_jpeg(w: u16, h: u16, shade: u8) -> Vec<u8> {
        let mut rgb = Vec::with_capacity(w as usize * h as usize * 3);
        for y in 0..h {
            for x in 0..w {
                rgb.extend_from_slice(&[(x as u8).wrapping_add(shade), y as u8, shade]);
            }
        }
        let mut out = Vec::new();
        jpeg_encoder::Encoder::new(&mut out, 80)
            .encode(&rgb, w, h, jpeg_encoder::ColorType::Rgb)
            .expect("encode test jpeg");
        out
    }

    #[test]
    fn first_frame_is_a_keyframe_and_requests_work() {
        let mut t = JpegToH264::new(H264Settings::default());
        let (w, h) = t.decode(&test_jpeg(161, 121, 0)).expect("decode");
        assert_eq!((w, h), (160, 120));
        let au = t.encode(w, h).expect("encode");
        let kinds: Vec<u8> = split_annex_b(&au).map(|n| nal_type(n[0])).collect();
        assert!(
            kinds.contains(&NAL_SPS) && kinds.contains(&NAL_IDR),
            "{kinds:?}"
        );
        let packets = t.packetize(&au, 0);
        assert!(packets[0].keyframe);
        assert!(packets.last().is_some_and(|p| p.marker));
        assert!(packets.iter().all(|p| p.payload.len() <= RTP_PAYLOAD_MTU));

        let p2 = t.transcode(&test_jpeg(161, 121, 40), 3000).expect("second");
        assert!(
            !p2.is_empty() && !p2[0].keyframe,
            "second frame is a delta frame"
        );
        assert_eq!(p2[0].seq, packets.last().map(|p| p.seq + 1).unwrap_or(0));
        t.request_keyframe();
        let p3 = t.transcode(&test_jpeg(161, 121, 80), 6000).expect("third");
        assert!(p3[0].keyframe, "requested keyframe");
    }

    #[test]
    fn size_change_restarts_the_encoder_and_garbage_is_an_error() {
        let mut t = JpegToH264::new(H264Settings::default());
        t.transcode(&test_jpeg(64, 48, 0), 0).expect("small");
        let p = t.transcode(&test_jpeg(96, 64, 0), 3000).expect("bigger");
        assert!(p[0].keyframe);
        assert!(matches!(
            t.transcode(b"not a jpeg", 0),
            Err(TranscodeError::Decode(_))
        ));
        assert!(matches!(
            t.transcode(&test_jpeg(8, 8, 0), 0),
            Err(TranscodeError::TooSmall(8, 8))
        ));
    }
}
