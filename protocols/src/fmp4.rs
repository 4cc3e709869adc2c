//! CMAF / fragmented MP4 for HLS and recordings: one init segment
//! (`ftyp` and `moov`) per stream configuration and one `moof` and `mdat`
//! per partial segment, built with the mp4-atom crate's box types. (Here,
//! with the other sans-IO formats, so it is fuzzed with them.)
//!
//! Track 1 is H.264 (timescale 90 kHz, `avc1` with the stream's SPS/PPS in
//! `avcC`; samples are length-prefixed NAL units without parameter sets),
//! track 2 is the audio: AAC (timescale = sample rate, 1024 samples per
//! frame) or Opus (timescale 48 kHz, `Opus` + `dOps` as "Encapsulation of
//! Opus in ISO Base Media File Format" specifies; packets of any length).

use crate::flv::AacConfig;
use crate::h264::{NAL_AUD, NAL_PPS, NAL_SPS, nal_type, split_annex_b};
use mp4_atom::{
    Audio, Avc1, Avcc, Dinf, Dops, Dref, Encode, Esds, Ftyp, Hdlr, Mdhd, Mdia, Mfhd, Minf, Moof,
    Moov, Mp4a, Mvex, Mvhd, Opus, Smhd, Stbl, Stco, Stsc, Stsd, Stsz, Stts, Tfdt, Tfhd, Tkhd, Traf,
    Trak, Trex, Trun, TrunEntry, TrunSamples, Url, Visual, Vmhd, esds,
};

/// Video timescale (RTP's 90 kHz).
pub const VIDEO_TIMESCALE: u32 = 90_000;
/// Samples per AAC-LC frame.
pub const AAC_FRAME: u32 = 1024;
/// Opus's clock in MP4, whatever the input rate.
pub const OPUS_TIMESCALE: u32 = 48_000;

/// The audio track's codec and configuration.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum AudioParams {
    /// AAC with its AudioSpecificConfig.
    Aac(AacConfig),
    /// Opus (WebRTC publishers, G.711 cameras transcoded).
    Opus {
        /// Output channels (1 or 2).
        channels: u8,
    },
}

impl AudioParams {
    /// The track's timescale.
    pub fn timescale(&self) -> u32 {
        match self {
            AudioParams::Aac(a) => a.sample_rate.max(1),
            AudioParams::Opus { .. } => OPUS_TIMESCALE,
        }
    }

    /// Samples (in the timescale) that one frame plays, or `None` when the
    /// frame is malformed.
    pub fn frame_duration(&self, frame: &[u8]) -> Option<u32> {
        match self {
            AudioParams::Aac(_) => (!frame.is_empty()).then_some(AAC_FRAME),
            AudioParams::Opus { .. } => crate::audio::opus_packet_samples(frame),
        }
    }

    fn sample_entry(&self) -> mp4_atom::Codec {
        match self {
            AudioParams::Aac(a) => Mp4a {
                audio: Audio {
                    data_reference_index: 1,
                    channel_count: u16::from(a.channels.max(1)),
                    sample_size: 16,
                    sample_rate: (a.sample_rate.min(65535) as u16).into(),
                },
                esds: Esds {
                    es_desc: esds::EsDescriptor {
                        es_id: AUDIO_TRACK as u16,
                        depends_on_es_id: None,
                        url: None,
                        ocr_es_id: None,
                        stream_priority: 0,
                        dec_config: esds::DecoderConfig {
                            object_type_indication: 0x40,
                            stream_type: 5,
                            dec_specific: Some(esds::DecoderSpecific {
                                profile: a.object_type,
                                freq_index: freq_index(a.sample_rate),
                                chan_conf: a.channels,
                                raw: a.raw.clone(),
                            }),
                            ..Default::default()
                        },
                        sl_config: esds::SLConfig {},
                    },
                },
                btrt: None,
                taic: None,
            }
            .into(),
            AudioParams::Opus { channels } => Opus {
                audio: Audio {
                    data_reference_index: 1,
                    channel_count: u16::from((*channels).clamp(1, 2)),
                    sample_size: 16,
                    sample_rate: (OPUS_TIMESCALE as u16).into(),
                },
                dops: Dops {
                    output_channel_count: (*channels).clamp(1, 2),
                    // RTP carries no pre-skip; 0 keeps the track on the
                    // timestamps the packets came with.
                    pre_skip: 0,
                    input_sample_rate: OPUS_TIMESCALE,
                    output_gain: 0,
                    channel_mapping: None,
                },
                btrt: None,
            }
            .into(),
        }
    }
}

const VIDEO_TRACK: u32 = 1;
const AUDIO_TRACK: u32 = 2;
/// `sample_depends_on = 2` (an I frame).
const FLAGS_SYNC: u32 = 0x0200_0000;
/// `sample_depends_on = 1`, `sample_is_non_sync_sample`.
const FLAGS_DELTA: u32 = 0x0101_0000;

/// Why a box could not be built.
#[derive(Debug, thiserror::Error)]
#[error("mp4: {0}")]
pub struct MuxError(String);

impl From<mp4_atom::Error> for MuxError {
    fn from(e: mp4_atom::Error) -> Self {
        MuxError(e.to_string())
    }
}

/// What the init segment says about the video track.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct VideoParams {
    /// Width in pixels (0 when unknown: players read the SPS).
    pub width: u16,
    /// Height in pixels.
    pub height: u16,
    /// Sequence parameter set (without start code).
    pub sps: Vec<u8>,
    /// Picture parameter set.
    pub pps: Vec<u8>,
}

/// One sample of a fragment.
#[derive(Debug, Clone)]
pub struct Sample {
    /// Decode time in the track's timescale.
    pub dts: u64,
    /// Duration in the track's timescale.
    pub duration: u32,
    /// Presentation − decode time (B-frames).
    pub cts: i32,
    /// A sync sample (IDR).
    pub keyframe: bool,
    /// Sample bytes: AVCC (4-byte lengths) for video, a raw AAC frame.
    pub data: Vec<u8>,
}

/// An Annex B access unit as an AVCC sample: 4-byte length prefixes, the
/// parameter sets and access unit delimiters left out (they live in
/// `avcC`).
pub fn avcc_sample(annex_b: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(annex_b.len() + 16);
    for nal in split_annex_b(annex_b) {
        if matches!(nal_type(nal[0]), NAL_SPS | NAL_PPS | NAL_AUD) {
            continue;
        }
        out.extend_from_slice(&(nal.len() as u32).to_be_bytes());
        out.extend_from_slice(nal);
    }
    out
}

/// `ftyp` + `moov` for a video track and an optional audio track.
pub fn init_segment(video: &VideoParams, audio: Option<&AudioParams>) -> Result<Vec<u8>, MuxError> {
    let mut out = Vec::new();
    Ftyp {
        major_brand: b"iso6".into(),
        minor_version: 0,
        compatible_brands: vec![b"iso6".into(), b"cmfc".into(), b"mp41".into()],
    }
    .encode(&mut out)?;
    let dinf = || Dinf {
        dref: Dref {
            entries: vec![
                Url {
                    location: String::new(),
                }
                .into(),
            ],
        },
    };
    let sps = &video.sps;
    let mut traks = vec![Trak {
        tkhd: Tkhd {
            track_id: VIDEO_TRACK,
            enabled: true,
            in_movie: true,
            width: video.width.into(),
            height: video.height.into(),
            ..Default::default()
        },
        mdia: Mdia {
            mdhd: Mdhd {
                timescale: VIDEO_TIMESCALE,
                language: "und".into(),
                ..Default::default()
            },
            hdlr: Hdlr {
                handler: b"vide".into(),
                name: "camgate video".into(),
            },
            minf: Minf {
                vmhd: Some(Vmhd::default()),
                dinf: dinf(),
                stbl: stbl(
                    Avc1 {
                        visual: Visual {
                            data_reference_index: 1,
                            width: video.width,
                            height: video.height,
                            horizresolution: 72.into(),
                            vertresolution: 72.into(),
                            frame_count: 1,
                            compressor: "".into(),
                            depth: 24,
                        },
                        avcc: Avcc {
                            configuration_version: 1,
                            avc_profile_indication: sps.get(1).copied().unwrap_or(66),
                            profile_compatibility: sps.get(2).copied().unwrap_or(0),
                            avc_level_indication: sps.get(3).copied().unwrap_or(31),
                            length_size: 4,
                            sequence_parameter_sets: vec![video.sps.clone()],
                            picture_parameter_sets: vec![video.pps.clone()],
                            ext: None,
                        },
                        btrt: None,
                        colr: None,
                        pasp: None,
                        taic: None,
                        fiel: None,
                        spatial: Default::default(),
                    }
                    .into(),
                ),
                ..Default::default()
            },
        },
        ..Default::default()
    }];
    let mut trex = vec![Trex {
        track_id: VIDEO_TRACK,
        default_sample_description_index: 1,
        ..Default::default()
    }];
    if let Some(a) = audio {
        traks.push(Trak {
            tkhd: Tkhd {
                track_id: AUDIO_TRACK,
                alternate_group: 1,
                enabled: true,
                in_movie: true,
                volume: 1.into(),
                ..Default::default()
            },
            mdia: Mdia {
                mdhd: Mdhd {
                    timescale: a.timescale(),
                    language: "und".into(),
                    ..Default::default()
                },
                hdlr: Hdlr {
                    handler: b"soun".into(),
                    name: "camgate audio".into(),
                },
                minf: Minf {
                    smhd: Some(Smhd::default()),
                    dinf: dinf(),
                    stbl: stbl(a.sample_entry()),
                    ..Default::default()
                },
            },
            ..Default::default()
        });
        trex.push(Trex {
            track_id: AUDIO_TRACK,
            default_sample_description_index: 1,
            ..Default::default()
        });
    }
    Moov {
        mvhd: Mvhd {
            timescale: 1000,
            rate: 1.into(),
            volume: 1.into(),
            next_track_id: traks.len() as u32 + 1,
            ..Default::default()
        },
        mvex: Some(Mvex { mehd: None, trex }),
        trak: traks,
        ..Default::default()
    }
    .encode(&mut out)?;
    Ok(out)
}

/// A sample table with just the codec: fragmented files carry their
/// samples in `moof`s.
fn stbl(codec: mp4_atom::Codec) -> Stbl {
    Stbl {
        stsd: Stsd {
            codecs: vec![codec],
        },
        stts: Stts::default(),
        stsc: Stsc::default(),
        stsz: Stsz::default(),
        stco: Some(Stco::default()),
        ..Default::default()
    }
}

fn freq_index(rate: u32) -> u8 {
    const RATES: [u32; 13] = [
        96000, 88200, 64000, 48000, 44100, 32000, 24000, 22050, 16000, 12000, 11025, 8000, 7350,
    ];
    RATES.iter().position(|r| *r == rate).unwrap_or(15) as u8
}

/// One `moof` + `mdat` with the given video and audio samples (either may
/// be empty, not both).
pub fn fragment(sequence: u32, video: &[Sample], audio: &[Sample]) -> Result<Vec<u8>, MuxError> {
    let tracks: Vec<(u32, &[Sample])> = [(VIDEO_TRACK, video), (AUDIO_TRACK, audio)]
        .into_iter()
        .filter(|(_, s)| !s.is_empty())
        .collect();
    if tracks.is_empty() {
        return Err(MuxError("empty fragment".into()));
    }
    let build = |offsets: &[i32]| Moof {
        mfhd: Mfhd {
            sequence_number: sequence,
        },
        traf: tracks
            .iter()
            .zip(offsets)
            .map(|((id, samples), offset)| Traf {
                tfhd: Tfhd {
                    track_id: *id,
                    default_base_is_moof: true,
                    ..Default::default()
                },
                tfdt: Some(Tfdt {
                    base_media_decode_time: samples[0].dts,
                }),
                trun: vec![Trun {
                    data_offset: Some(*offset),
                    samples: TrunSamples::Explicit(
                        samples
                            .iter()
                            .map(|s| TrunEntry {
                                duration: Some(s.duration),
                                size: Some(s.data.len() as u32),
                                flags: Some(if *id == AUDIO_TRACK || s.keyframe {
                                    FLAGS_SYNC
                                } else {
                                    FLAGS_DELTA
                                }),
                                cts: Some(i64::from(s.cts)),
                            })
                            .collect(),
                    ),
                }],
                ..Default::default()
            })
            .collect(),
    };
    // The offsets depend on the moof's size, which does not depend on
    // their values: measure with zeros, then write the real ones.
    let mut probe = Vec::new();
    build(&vec![0; tracks.len()]).encode(&mut probe)?;
    let mut offsets = Vec::with_capacity(tracks.len());
    let mut at = probe.len() as i32 + 8;
    for (_, samples) in &tracks {
        offsets.push(at);
        at += samples.iter().map(|s| s.data.len() as i32).sum::<i32>();
    }
    let mut out = Vec::with_capacity(at as usize);
    build(&offsets).encode(&mut out)?;
    // mdat written directly: one copy of each sample into the output.
    let data_len: usize = tracks
        .iter()
        .flat_map(|(_, samples)| samples.iter().map(|s| s.data.len()))
        .sum();
    out.extend_from_slice(&((data_len + 8) as u32).to_be_bytes());
    out.extend_from_slice(b"mdat");
    for (_, samples) in &tracks {
        for s in *samples {
            out.extend_from_slice(&s.data);
        }
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use mp4_atom::Decode;

    fn params() -> VideoParams {
        VideoParams {
            width: 640,
            height: 360,
            sps: vec![0x67, 0x64, 0x00, 0x1e, 0xac, 0xd9],
            pps: vec![0x68, 0xeb, 0xe3, 0xcb],
        }
    }

    #[test]
    fn init_segment_round_trips() {
        let aac = AacConfig::parse(&[0x11, 0x90]).expect("aac");
        let init = init_segment(&params(), Some(&AudioParams::Aac(aac.clone()))).expect("init");
        let mut cur = std::io::Cursor::new(&init[..]);
        let ftyp = Ftyp::decode(&mut cur).expect("ftyp");
        assert_eq!(ftyp.major_brand, b"iso6".into());
        let moov = Moov::decode(&mut cur).expect("moov");
        assert_eq!(moov.trak.len(), 2);
        assert_eq!(moov.trak[0].mdia.mdhd.timescale, VIDEO_TIMESCALE);
        assert_eq!(moov.trak[1].mdia.mdhd.timescale, 48000);
        assert_eq!(cur.position() as usize, init.len());
    }

    #[test]
    fn fragment_offsets_point_at_each_tracks_samples() {
        let v = vec![
            Sample {
                dts: 9000,
                duration: 3000,
                cts: 0,
                keyframe: true,
                data: vec![0, 0, 0, 2, 0x65, 1],
            },
            Sample {
                dts: 12000,
                duration: 3000,
                cts: 3000,
                keyframe: false,
                data: vec![0, 0, 0, 2, 0x41, 2],
            },
        ];
        let a = vec![Sample {
            dts: 4800,
            duration: AAC_FRAME,
            cts: 0,
            keyframe: true,
            data: vec![0x21, 0x10, 0x05],
        }];
        let f = fragment(7, &v, &a).expect("fragment");
        let mut cur = std::io::Cursor::new(&f[..]);
        let moof = Moof::decode(&mut cur).expect("moof");
        let mdat_start = cur.position() as usize;
        let mdat = mp4_atom::Mdat::decode(&mut cur).expect("mdat");
        assert_eq!(mdat.data.len(), 15);
        assert_eq!(cur.position() as usize, f.len());
        assert_eq!(moof.mfhd.sequence_number, 7);
        let off_v = moof.traf[0].trun[0].data_offset.expect("offset") as usize;
        let off_a = moof.traf[1].trun[0].data_offset.expect("offset") as usize;
        assert_eq!(off_v, mdat_start + 8);
        assert_eq!(&f[off_v..off_v + 6], &[0, 0, 0, 2, 0x65, 1]);
        assert_eq!(&f[off_a..off_a + 3], &[0x21, 0x10, 0x05]);
        assert_eq!(
            moof.traf[1].tfdt.as_ref().map(|t| t.base_media_decode_time),
            Some(4800)
        );
        assert!(fragment(1, &[], &[]).is_err());
    }

    #[test]
    fn avcc_samples_drop_parameter_sets() {
        let au = [
            0, 0, 0, 1, 0x67, 1, 0, 0, 0, 1, 0x68, 2, 0, 0, 1, 0x65, 9, 9,
        ];
        assert_eq!(avcc_sample(&au), vec![0, 0, 0, 3, 0x65, 9, 9]);
    }
}
