//! FLV tag bodies as RTMP carries them: H.264 video (AVC sequence header
//! and length-prefixed NAL units) and AAC audio (AudioSpecificConfig and raw
//! frames), converted to what the rest of camgate speaks (Annex B access
//! units, raw AAC frames with their config).
//!
//! Written here rather than taken from a crate: rml_rtmp hands over the tag
//! bodies as bytes and stops there, and the FLV crates on crates.io either
//! parse whole files (with the 11-byte tag headers RTMP does not send) or
//! pull in an async I/O stack. The part needed is small and fully tested.
//!
//! Enhanced RTMP (the `IsExHeader` bit with a FourCC: HEVC, AV1, VP9) is
//! recognised and reported as [`FlvError::UnsupportedCodec`] so the
//! connection can be refused with a clear reason.

use crate::h264::{NAL_IDR, nal_type};

/// FLV video codec id of AVC (H.264).
pub const CODEC_AVC: u8 = 7;
/// FLV sound format of AAC.
pub const SOUND_AAC: u8 = 10;

/// Why a tag body was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum FlvError {
    /// Shorter than its headers say.
    #[error("truncated {0} tag")]
    Truncated(&'static str),
    /// A codec camgate does not take over RTMP.
    #[error("unsupported codec: {0}")]
    UnsupportedCodec(String),
    /// Media before its decoder configuration.
    #[error("{0} data before its sequence header")]
    NoConfig(&'static str),
    /// The decoder configuration is malformed.
    #[error("bad {0} configuration")]
    BadConfig(&'static str),
}

/// H.264 decoder configuration (`AVCDecoderConfigurationRecord`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AvcConfig {
    /// `profile_idc`, `constraint flags`, `level_idc` as in the SDP's
    /// `profile-level-id`.
    pub profile_level_id: u32,
    /// Bytes of each NAL unit length prefix (1, 2 or 4).
    pub length_size: usize,
    /// Sequence parameter sets.
    pub sps: Vec<Vec<u8>>,
    /// Picture parameter sets.
    pub pps: Vec<Vec<u8>>,
}

impl AvcConfig {
    /// Parses an `AVCDecoderConfigurationRecord`.
    pub fn parse(data: &[u8]) -> Result<AvcConfig, FlvError> {
        let bad = FlvError::BadConfig("AVC");
        if data.len() < 7 || data[0] != 1 {
            return Err(bad);
        }
        let profile_level_id =
            (u32::from(data[1]) << 16) | (u32::from(data[2]) << 8) | u32::from(data[3]);
        let length_size = usize::from(data[4] & 0x03) + 1;
        if length_size == 3 {
            return Err(bad);
        }
        let mut rest = &data[5..];
        let read_sets = |count: usize, rest: &mut &[u8]| -> Result<Vec<Vec<u8>>, FlvError> {
            let mut sets = Vec::with_capacity(count);
            for _ in 0..count {
                if rest.len() < 2 {
                    return Err(FlvError::BadConfig("AVC"));
                }
                let len = usize::from(u16::from_be_bytes([rest[0], rest[1]]));
                let set = rest
                    .get(2..2 + len)
                    .ok_or(FlvError::BadConfig("AVC"))?
                    .to_vec();
                if set.is_empty() {
                    return Err(FlvError::BadConfig("AVC"));
                }
                sets.push(set);
                *rest = &rest[2 + len..];
            }
            Ok(sets)
        };
        let n_sps = usize::from(rest[0] & 0x1f);
        rest = &rest[1..];
        let sps = read_sets(n_sps, &mut rest)?;
        let n_pps = usize::from(*rest.first().ok_or(FlvError::BadConfig("AVC"))?);
        rest = &rest[1..];
        let pps = read_sets(n_pps, &mut rest)?;
        if sps.is_empty() || pps.is_empty() {
            return Err(bad);
        }
        Ok(AvcConfig {
            profile_level_id,
            length_size,
            sps,
            pps,
        })
    }
}

/// One parsed video tag.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum VideoTag {
    /// A new decoder configuration.
    Config(AvcConfig),
    /// One access unit in Annex B form; keyframes start with SPS and PPS.
    Frame {
        /// Holds an IDR slice.
        keyframe: bool,
        /// Presentation − decoding time, milliseconds.
        composition_ms: i32,
        /// The access unit.
        annex_b: Vec<u8>,
    },
    /// End of sequence, or an empty frame: nothing to do.
    Skip,
}

/// Parses an FLV video tag body. `config` is the last [`VideoTag::Config`]
/// of this stream (needed for the NAL length size and the parameter sets).
pub fn parse_video(data: &[u8], config: Option<&AvcConfig>) -> Result<VideoTag, FlvError> {
    let first = *data.first().ok_or(FlvError::Truncated("video"))?;
    if first & 0x80 != 0 {
        // Enhanced RTMP: [IsExHeader | FrameType(3) | PacketType(4)] FourCC.
        let fourcc = data
            .get(1..5)
            .map(|f| String::from_utf8_lossy(f).into_owned())
            .ok_or(FlvError::Truncated("video"))?;
        return Err(FlvError::UnsupportedCodec(format!(
            "enhanced RTMP {fourcc} (camgate takes H.264 over RTMP)"
        )));
    }
    let frame_type = first >> 4;
    let codec = first & 0x0f;
    if codec != CODEC_AVC {
        return Err(FlvError::UnsupportedCodec(format!(
            "FLV video codec {codec} (camgate takes H.264 over RTMP)"
        )));
    }
    if frame_type == 5 {
        // Video info / command frame.
        return Ok(VideoTag::Skip);
    }
    if data.len() < 5 {
        return Err(FlvError::Truncated("video"));
    }
    let packet_type = data[1];
    // Composition time: signed 24 bits.
    let raw = (i32::from(data[2]) << 16) | (i32::from(data[3]) << 8) | i32::from(data[4]);
    let composition_ms = (raw << 8) >> 8;
    let body = &data[5..];
    match packet_type {
        0 => Ok(VideoTag::Config(AvcConfig::parse(body)?)),
        1 => {
            let config = config.ok_or(FlvError::NoConfig("video"))?;
            let mut annex_b = Vec::with_capacity(body.len() + 64);
            let mut keyframe = false;
            let mut rest = body;
            let n = config.length_size;
            let mut nals = Vec::new();
            while !rest.is_empty() {
                if rest.len() < n {
                    return Err(FlvError::Truncated("video"));
                }
                let len = rest[..n]
                    .iter()
                    .fold(0usize, |acc, b| (acc << 8) | usize::from(*b));
                let nal = rest.get(n..n + len).ok_or(FlvError::Truncated("video"))?;
                if !nal.is_empty() {
                    keyframe |= nal_type(nal[0]) == NAL_IDR;
                    nals.push(nal);
                }
                rest = &rest[n + len..];
            }
            if nals.is_empty() {
                return Ok(VideoTag::Skip);
            }
            // Keyframes carry their parameter sets in band, so a viewer (or
            // an HLS segment) starting on one can decode it alone.
            let has_sps = nals.iter().any(|n| nal_type(n[0]) == crate::h264::NAL_SPS);
            if keyframe && !has_sps {
                for set in config.sps.iter().chain(&config.pps) {
                    annex_b.extend_from_slice(&[0, 0, 0, 1]);
                    annex_b.extend_from_slice(set);
                }
            }
            for nal in nals {
                annex_b.extend_from_slice(&[0, 0, 0, 1]);
                annex_b.extend_from_slice(nal);
            }
            Ok(VideoTag::Frame {
                keyframe,
                composition_ms,
                annex_b,
            })
        }
        2 => Ok(VideoTag::Skip),
        other => Err(FlvError::UnsupportedCodec(format!(
            "AVC packet type {other}"
        ))),
    }
}

/// AAC decoder configuration (`AudioSpecificConfig`), kept whole for
/// muxers plus the fields camgate needs.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AacConfig {
    /// The raw `AudioSpecificConfig` bytes.
    pub raw: Vec<u8>,
    /// Audio object type (2 = AAC-LC).
    pub object_type: u8,
    /// Sampling rate, Hz.
    pub sample_rate: u32,
    /// Channel configuration (1 = mono, 2 = stereo).
    pub channels: u8,
}

const AAC_RATES: [u32; 13] = [
    96000, 88200, 64000, 48000, 44100, 32000, 24000, 22050, 16000, 12000, 11025, 8000, 7350,
];

impl AacConfig {
    /// Parses an `AudioSpecificConfig` (the common forms: no escape object
    /// types, a table sampling frequency index or an explicit 24-bit rate).
    pub fn parse(data: &[u8]) -> Result<AacConfig, FlvError> {
        let bad = FlvError::BadConfig("AAC");
        if data.len() < 2 {
            return Err(bad);
        }
        let object_type = data[0] >> 3;
        let index = ((data[0] & 0x07) << 1) | (data[1] >> 7);
        let (sample_rate, channels) = if index == 15 {
            if data.len() < 5 {
                return Err(bad);
            }
            let rate = ((u32::from(data[1]) & 0x7f) << 17)
                | (u32::from(data[2]) << 9)
                | (u32::from(data[3]) << 1)
                | (u32::from(data[4]) >> 7);
            (rate, (data[4] >> 3) & 0x0f)
        } else {
            let rate = *AAC_RATES.get(usize::from(index)).ok_or(bad.clone())?;
            (rate, (data[1] >> 3) & 0x0f)
        };
        if object_type == 0 || object_type == 31 || sample_rate == 0 {
            return Err(bad);
        }
        Ok(AacConfig {
            raw: data.to_vec(),
            object_type,
            sample_rate,
            channels,
        })
    }
}

/// One parsed audio tag.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum AudioTag {
    /// A new AAC configuration.
    Config(AacConfig),
    /// One raw AAC frame (no ADTS header).
    Frame(Vec<u8>),
}

/// Parses an FLV audio tag body.
pub fn parse_audio(data: &[u8]) -> Result<AudioTag, FlvError> {
    let first = *data.first().ok_or(FlvError::Truncated("audio"))?;
    let format = first >> 4;
    if format != SOUND_AAC {
        return Err(FlvError::UnsupportedCodec(format!(
            "FLV sound format {format} (camgate takes AAC over RTMP)"
        )));
    }
    let packet_type = *data.get(1).ok_or(FlvError::Truncated("audio"))?;
    let body = &data[2..];
    match packet_type {
        0 => Ok(AudioTag::Config(AacConfig::parse(body)?)),
        1 => Ok(AudioTag::Frame(body.to_vec())),
        other => Err(FlvError::UnsupportedCodec(format!(
            "AAC packet type {other}"
        ))),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::h264::{NAL_PPS, NAL_SPS, split_annex_b};

    fn avc_record() -> Vec<u8> {
        let sps = [0x67, 0x64, 0x00, 0x1f, 0xac, 0xd9];
        let pps = [0x68, 0xeb, 0xe3, 0xcb];
        let mut r = vec![1, 0x64, 0x00, 0x1f, 0xff, 0xe1];
        r.extend_from_slice(&(sps.len() as u16).to_be_bytes());
        r.extend_from_slice(&sps);
        r.push(1);
        r.extend_from_slice(&(pps.len() as u16).to_be_bytes());
        r.extend_from_slice(&pps);
        r
    }

    fn video_tag(key: bool, packet_type: u8, cts: i32, body: &[u8]) -> Vec<u8> {
        let mut t = vec![if key { 0x17 } else { 0x27 }, packet_type];
        t.extend_from_slice(&cts.to_be_bytes()[1..]);
        t.extend_from_slice(body);
        t
    }

    #[test]
    fn sequence_header_then_keyframe_gets_parameter_sets_in_band() {
        let VideoTag::Config(c) =
            parse_video(&video_tag(true, 0, 0, &avc_record()), None).expect("config")
        else {
            panic!("not a config");
        };
        assert_eq!(c.profile_level_id, 0x64001f);
        assert_eq!(c.length_size, 4);
        let mut body = Vec::new();
        for nal in [&[0x06u8, 5, 5][..], &[0x65, 0x88, 0x80, 0x40]] {
            body.extend_from_slice(&(nal.len() as u32).to_be_bytes());
            body.extend_from_slice(nal);
        }
        let tag = parse_video(&video_tag(true, 1, -40, &body), Some(&c)).expect("frame");
        let VideoTag::Frame {
            keyframe,
            composition_ms,
            annex_b,
        } = tag
        else {
            panic!("not a frame");
        };
        assert!(keyframe);
        assert_eq!(composition_ms, -40);
        let types: Vec<u8> = split_annex_b(&annex_b).map(|n| nal_type(n[0])).collect();
        assert_eq!(types, vec![NAL_SPS, NAL_PPS, 6, NAL_IDR]);
        // A delta frame gets no parameter sets.
        let mut delta = Vec::new();
        delta.extend_from_slice(&2u32.to_be_bytes());
        delta.extend_from_slice(&[0x41, 0x9a]);
        let VideoTag::Frame {
            annex_b, keyframe, ..
        } = parse_video(&video_tag(false, 1, 0, &delta), Some(&c)).expect("delta")
        else {
            panic!("not a frame");
        };
        assert!(!keyframe);
        assert_eq!(annex_b, vec![0, 0, 0, 1, 0x41, 0x9a]);
    }

    #[test]
    fn bad_video_is_a_clear_error_never_a_panic() {
        let c = AvcConfig::parse(&avc_record()).expect("config");
        assert_eq!(
            parse_video(&video_tag(true, 1, 0, &[0, 0, 0, 9, 0x65]), Some(&c)),
            Err(FlvError::Truncated("video"))
        );
        assert_eq!(
            parse_video(&video_tag(true, 1, 0, &[0, 0, 0, 1, 0x65]), None),
            Err(FlvError::NoConfig("video"))
        );
        assert!(matches!(
            parse_video(&[0x90, b'h', b'v', b'c', b'1', 0], None),
            Err(FlvError::UnsupportedCodec(m)) if m.contains("hvc1")
        ));
        assert!(matches!(
            parse_video(&[0x12, 0], None),
            Err(FlvError::UnsupportedCodec(_))
        ));
        // Every truncation of a valid sequence header and frame.
        let header = video_tag(true, 0, 0, &avc_record());
        for i in 0..header.len() {
            let _ = parse_video(&header[..i], None);
        }
        let frame = video_tag(true, 1, 0, &[0, 0, 0, 2, 0x65, 1, 0, 0, 0, 1, 0x41]);
        for i in 0..frame.len() {
            let _ = parse_video(&frame[..i], Some(&c));
        }
        for i in 0..avc_record().len() {
            assert!(AvcConfig::parse(&avc_record()[..i]).is_err(), "{i}");
        }
    }

    #[test]
    fn aac_config_and_frames() {
        // AAC-LC, 44.1 kHz (index 4), stereo.
        let AudioTag::Config(c) = parse_audio(&[0xaf, 0, 0x12, 0x10]).expect("config") else {
            panic!("not a config");
        };
        assert_eq!((c.object_type, c.sample_rate, c.channels), (2, 44100, 2));
        // AAC-LC 48 kHz mono.
        let c = AacConfig::parse(&[0x11, 0x88]).expect("48k");
        assert_eq!((c.sample_rate, c.channels), (48000, 1));
        assert_eq!(
            parse_audio(&[0xaf, 1, 1, 2, 3]),
            Ok(AudioTag::Frame(vec![1, 2, 3]))
        );
        assert!(matches!(
            parse_audio(&[0x2f, 1]),
            Err(FlvError::UnsupportedCodec(_))
        ));
        assert!(parse_audio(&[]).is_err());
        assert!(parse_audio(&[0xaf]).is_err());
        assert!(AacConfig::parse(&[0x12]).is_err());
    }
}
