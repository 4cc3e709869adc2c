//! JPEG → H.264 for MJPEG cameras watched over WebRTC.
//!
//! Pipeline per frame: libjpeg-turbo (through the `turbojpeg` crate)
//! decodes the JPEG straight into its YCbCr planes, skipping both colour
//! conversion and chroma upsampling; a 4:2:0 JPEG's planes are handed to
//! openh264 as they are (zero copy, strides only), other subsamplings are
//! brought to 4:2:0 with a plain row loop. openh264 encodes (constrained
//! baseline, real-time camera mode); the access unit is packetized once
//! (RFC 6184, [`camgate_protocols::h264`]).
//!
//! Decoder choice, measured on this machine (`camgate-bench transcode`,
//! 60 VGA camsim frames of ~42 KB, one core), per frame to I420 planes:
//! libjpeg-turbo to planes ≈ 0.6 ms, zune-jpeg to interleaved YCbCr plus a
//! 2×2 chroma average ≈ 1.4 ms, jpeg-decoder to RGB plus openh264's
//! RGB→I420 ≈ 1.9 ms. The decoder is more than half of the pipeline next
//! to openh264's ≈ 1.8 ms, so the SIMD decoder is what lets one core keep
//! up with GStreamer doing the same conversion. libjpeg-turbo is built from
//! the crate's vendored source (needs cmake and nasm at build time) because
//! Debian 12 ships the 2.1 library and the crate speaks the 3.x API.
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
use turbojpeg::{Decompressor, Subsamp, YuvImage};

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
    /// JPEG decode to I420 planes, microseconds.
    pub decode_us: u64,
    /// H.264 encode + packetization, microseconds.
    pub encode_us: u64,
}

/// Where the decoded picture's planes are.
#[derive(Debug, Clone, Copy, Default)]
struct Layout {
    /// Row stride of the luma plane at the start of `planes`.
    y_stride: usize,
    /// `(u offset, v offset, stride)` of 4:2:0 chroma inside `planes`;
    /// `None` when it was converted into `u` and `v` (stride `w / 2`).
    chroma: Option<(usize, usize, usize)>,
}

/// One camera's transcoder state: the encoder and reused picture planes.
pub struct JpegToH264 {
    settings: H264Settings,
    encoder: Option<(Encoder, usize, usize)>,
    decompressor: Option<Decompressor>,
    /// libjpeg-turbo's output: the JPEG's own planes, row alignment 1.
    planes: Vec<u8>,
    layout: Layout,
    /// 4:2:0 chroma when the JPEG's own is not.
    u: Vec<u8>,
    v: Vec<u8>,
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
            decompressor: None,
            planes: Vec::new(),
            layout: Layout::default(),
            u: Vec::new(),
            v: Vec::new(),
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

    /// Decodes a JPEG into I420 planes; returns the (even) dimensions.
    pub fn decode(&mut self, jpeg: &[u8]) -> Result<(usize, usize), TranscodeError> {
        let decode_err = |e: turbojpeg::Error| TranscodeError::Decode(e.to_string());
        if self.decompressor.is_none() {
            self.decompressor = Some(Decompressor::new().map_err(decode_err)?);
        }
        let Some(decompressor) = self.decompressor.as_mut() else {
            return Err(TranscodeError::Decode("no decompressor".into()));
        };
        let header = decompressor.read_header(jpeg).map_err(decode_err)?;
        let (w, h) = (header.width, header.height);
        // H.264 4:2:0 wants even dimensions: an odd last row/column is left
        // out through the strides.
        let (ew, eh) = (w & !1, h & !1);
        if ew < 16 || eh < 16 {
            return Err(TranscodeError::TooSmall(w, h));
        }
        let mut image = YuvImage {
            pixels: std::mem::take(&mut self.planes),
            width: w,
            align: 1,
            height: h,
            subsamp: header.subsamp,
        };
        let len = turbojpeg::yuv_pixels_len(w, 1, h, header.subsamp).map_err(decode_err)?;
        image.pixels.resize(len, 0);
        let result = decompressor.decompress_to_yuv(jpeg, image.as_deref_mut());
        let (y_stride, y_rows) = image.y_size();
        let (c_stride, c_rows) = image.uv_size();
        self.planes = image.pixels;
        result.map_err(decode_err)?;

        let y_len = y_stride * y_rows;
        self.layout = Layout {
            y_stride,
            chroma: None,
        };
        let cw = ew / 2;
        let ch = eh / 2;
        match header.subsamp {
            Subsamp::Sub2x2 => {
                self.layout.chroma = Some((y_len, y_len + c_stride * c_rows, c_stride));
                return Ok((ew, eh));
            }
            Subsamp::Gray => {
                self.u.clear();
                self.u.resize(cw * ch, 128);
                self.v.clear();
                self.v.resize(cw * ch, 128);
                return Ok((ew, eh));
            }
            _ => {}
        }
        // Other subsamplings: average the source chroma samples that cover
        // each 2×2 block (4:2:2 and 4:4:0 average two, 4:4:4 four, 4:1:1
        // takes its one).
        let (sx, sy) = (w.div_ceil(c_stride.max(1)), h.div_ceil(c_rows.max(1)));
        let (nx, ny) = ((2 / sx).max(1), (2 / sy).max(1));
        let planes = &self.planes;
        let (cb, cr) = (
            &planes[y_len..y_len + c_stride * c_rows],
            &planes[y_len + c_stride * c_rows..y_len + 2 * c_stride * c_rows],
        );
        self.u.resize(cw * ch, 0);
        self.v.resize(cw * ch, 0);
        for row in 0..ch {
            let src_row = row * 2 / sy;
            let uo = &mut self.u[row * cw..(row + 1) * cw];
            let vo = &mut self.v[row * cw..(row + 1) * cw];
            for col in 0..cw {
                let src_col = col * 2 / sx;
                let (mut su, mut sv) = (0u32, 0u32);
                for dy in 0..ny {
                    let base = (src_row + dy).min(c_rows - 1) * c_stride;
                    for dx in 0..nx {
                        let i = base + (src_col + dx).min(c_stride - 1);
                        su += u32::from(cb[i]);
                        sv += u32::from(cr[i]);
                    }
                }
                let n = (nx * ny) as u32;
                uo[col] = ((su + n / 2) / n) as u8;
                vo[col] = ((sv + n / 2) / n) as u8;
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
        let access_unit = self.access_unit(jpeg)?;
        Ok(self.packetize(&access_unit, time))
    }

    /// Transcodes one JPEG frame into an Annex B access unit (empty when
    /// the encoder skipped the frame), for consumers that want the
    /// elementary stream (HLS) and not RTP.
    pub fn access_unit(&mut self, jpeg: &[u8]) -> Result<Vec<u8>, TranscodeError> {
        let t0 = Instant::now();
        let (w, h) = self.decode(jpeg)?;
        let t1 = Instant::now();
        let access_unit = self.encode(w, h)?;
        self.last = StageTimes {
            decode_us: (t1 - t0).as_micros() as u64,
            encode_us: t1.elapsed().as_micros() as u64,
        };
        crate::metrics::METRICS.transcoded(crate::metrics::Transcoder::JpegToH264, t0.elapsed());
        Ok(access_unit)
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
        let Layout { y_stride, chroma } = self.layout;
        let y = self
            .planes
            .get(..y_stride * h)
            .ok_or_else(|| TranscodeError::Encode("no decoded picture".into()))?;
        let (u, v, c_stride) = match chroma {
            Some((u_off, v_off, stride)) => (
                &self.planes[u_off..u_off + stride * (h / 2)],
                &self.planes[v_off..v_off + stride * (h / 2)],
                stride,
            ),
            None => (&self.u[..], &self.v[..], w / 2),
        };
        let yuv = YUVSlices::new((y, u, v), (w, h), (y_stride, c_stride, c_stride));
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
        // The SPS reader agrees with the encoder about the size.
        let sps = split_annex_b(&au)
            .find(|n| nal_type(n[0]) == NAL_SPS)
            .and_then(camgate_protocols::h264::parse_sps)
            .expect("sps parses");
        assert_eq!((sps.width, sps.height), (160, 120));
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

    /// A flat-colour JPEG with the given chroma sampling.
    fn flat_jpeg(w: u16, h: u16, rgb: [u8; 3], sampling: jpeg_encoder::SamplingFactor) -> Vec<u8> {
        let pixels: Vec<u8> = (0..w as usize * h as usize).flat_map(|_| rgb).collect();
        let mut out = Vec::new();
        let mut enc = jpeg_encoder::Encoder::new(&mut out, 95);
        enc.set_sampling_factor(sampling);
        enc.encode(&pixels, w, h, jpeg_encoder::ColorType::Rgb)
            .expect("encode test jpeg");
        out
    }

    /// The I420 picture `decode` produced, as owned planes.
    fn i420(t: &JpegToH264, w: usize, h: usize) -> (Vec<u8>, Vec<u8>, Vec<u8>) {
        let Layout { y_stride, chroma } = t.layout;
        let y: Vec<u8> = (0..h)
            .flat_map(|r| t.planes[r * y_stride..r * y_stride + w].to_vec())
            .collect();
        let (u, v) = match chroma {
            Some((uo, vo, cs)) => (
                (0..h / 2)
                    .flat_map(|r| t.planes[uo + r * cs..uo + r * cs + w / 2].to_vec())
                    .collect(),
                (0..h / 2)
                    .flat_map(|r| t.planes[vo + r * cs..vo + r * cs + w / 2].to_vec())
                    .collect(),
            ),
            None => (t.u.clone(), t.v.clone()),
        };
        (y, u, v)
    }

    #[test]
    fn every_chroma_sampling_becomes_the_same_i420_picture() {
        use jpeg_encoder::SamplingFactor as S;
        // Orange: Y≈158, Cb≈39, Cr≈197 (BT.601 full range).
        let rgb = [255, 140, 0];
        for sampling in [S::F_1_1, S::F_2_1, S::F_1_2, S::F_2_2, S::F_4_1] {
            let mut t = JpegToH264::new(H264Settings::default());
            let (w, h) = t.decode(&flat_jpeg(67, 35, rgb, sampling)).expect("decode");
            assert_eq!((w, h), (66, 34), "{sampling:?}");
            let (y, u, v) = i420(&t, w, h);
            assert_eq!((y.len(), u.len(), v.len()), (66 * 34, 33 * 17, 33 * 17));
            let near = |p: &[u8], want: i32| p.iter().all(|&x| (x as i32 - want).abs() <= 3);
            assert!(
                near(&y, 158) && near(&u, 39) && near(&v, 197),
                "{sampling:?}: y {:?} u {:?} v {:?}",
                &y[..4],
                &u[..4],
                &v[..4]
            );
            // The encoder accepts the picture whatever layout it came in.
            t.encode(w, h).expect("encode");
        }
    }

    #[test]
    fn grayscale_jpeg_has_neutral_chroma() {
        let pixels = vec![200u8; 32 * 32];
        let mut out = Vec::new();
        jpeg_encoder::Encoder::new(&mut out, 90)
            .encode(&pixels, 32, 32, jpeg_encoder::ColorType::Luma)
            .expect("encode gray");
        let mut t = JpegToH264::new(H264Settings::default());
        let (w, h) = t.decode(&out).expect("decode gray");
        let (y, u, v) = i420(&t, w, h);
        assert!(y.iter().all(|&x| x.abs_diff(200) <= 2));
        assert!(u.iter().chain(&v).all(|&x| x == 128));
        t.encode(w, h).expect("encode gray");
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
