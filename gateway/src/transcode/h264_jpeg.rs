//! H.264 keyframe → JPEG, for `frame.jpg` of a WebRTC (WHIP) publisher.
//!
//! One picture on request, never a running decoder: openh264 decodes the
//! publisher's latest keyframe (cached by the SFU), libjpeg-turbo compresses
//! the decoded I420 planes as they are (no colour conversion).

use openh264::OpenH264API;
use openh264::decoder::{Decoder, DecoderConfig};
use openh264::formats::YUVSource;
use turbojpeg::{Subsamp, YuvImage};

/// JPEG quality of snapshots (libjpeg scale).
pub const SNAPSHOT_QUALITY: i32 = 85;

/// Why a keyframe could not become a JPEG.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum SnapshotError {
    /// openh264 could not decode the access unit (e.g. a CABAC profile).
    #[error("h264 decode: {0}")]
    Decode(String),
    /// The decoder produced no picture from it.
    #[error("the keyframe decoded to no picture")]
    NoPicture,
    /// libjpeg-turbo refused the picture.
    #[error("jpeg encode: {0}")]
    Encode(String),
}

/// Decodes an Annex B keyframe and encodes it as a JPEG.
pub fn keyframe_to_jpeg(access_unit: &[u8], quality: i32) -> Result<Vec<u8>, SnapshotError> {
    let mut decoder = Decoder::with_api_config(OpenH264API::from_source(), DecoderConfig::new())
        .map_err(|e| SnapshotError::Decode(e.to_string()))?;
    let decoded = decoder
        .decode(access_unit)
        .map_err(|e| SnapshotError::Decode(e.to_string()))?;
    let planes = match decoded {
        Some(yuv) => i420(&yuv),
        None => {
            let rest = decoder
                .flush_remaining()
                .map_err(|e| SnapshotError::Decode(e.to_string()))?;
            rest.last().map(i420).ok_or(SnapshotError::NoPicture)?
        }
    };
    let (pixels, width, height) = planes;
    i420_to_jpeg(&pixels, width, height, quality).map_err(SnapshotError::Encode)
}

/// Compresses a packed I420 picture (rows aligned to 1) as a JPEG.
pub(crate) fn i420_to_jpeg(
    pixels: &[u8],
    width: usize,
    height: usize,
    quality: i32,
) -> Result<Vec<u8>, String> {
    let image = YuvImage {
        pixels,
        width,
        align: 1,
        height,
        subsamp: Subsamp::Sub2x2,
    };
    turbojpeg::compress_yuv(image, quality)
        .map(|j| j.to_vec())
        .map_err(|e| e.to_string())
}

/// The decoded picture as one tightly packed I420 buffer (libjpeg-turbo's
/// layout with row alignment 1).
pub(crate) fn i420(yuv: &impl YUVSource) -> (Vec<u8>, usize, usize) {
    let (w, h) = yuv.dimensions();
    let (cw, ch) = (w.div_ceil(2), h.div_ceil(2));
    let (ys, us, vs) = yuv.strides();
    let mut out = Vec::with_capacity(w * h + 2 * cw * ch);
    for row in 0..h {
        out.extend_from_slice(&yuv.y()[row * ys..row * ys + w]);
    }
    for (plane, stride) in [(yuv.u(), us), (yuv.v(), vs)] {
        for row in 0..ch {
            out.extend_from_slice(&plane[row * stride..row * stride + cw]);
        }
    }
    (out, w, h)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::transcode::jpeg_h264::{H264Settings, JpegToH264};

    #[test]
    fn a_transcoded_keyframe_comes_back_as_a_jpeg_of_the_same_size() {
        let mut rgb = Vec::new();
        for y in 0..120u32 {
            for x in 0..160u32 {
                rgb.extend_from_slice(&[(x * 2) as u8, (y * 2) as u8, 90]);
            }
        }
        let mut jpeg = Vec::new();
        jpeg_encoder::Encoder::new(&mut jpeg, 90)
            .encode(&rgb, 160, 120, jpeg_encoder::ColorType::Rgb)
            .expect("test jpeg");
        let mut t = JpegToH264::new(H264Settings::default());
        let (w, h) = t.decode(&jpeg).expect("decode");
        let au = t.encode(w, h).expect("encode");
        let out = keyframe_to_jpeg(&au, SNAPSHOT_QUALITY).expect("snapshot");
        let header = turbojpeg::read_header(&out).expect("a jpeg");
        assert_eq!((header.width, header.height), (160, 120));
        assert!(keyframe_to_jpeg(&[0, 0, 0, 1, 0x65, 1, 2, 3], SNAPSHOT_QUALITY).is_err());
    }
}
