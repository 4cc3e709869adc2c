//! fMP4 muxing round trip (HLS parts and recordings): samples made from
//! the input (sizes, durations, composition offsets, keyframes; video and
//! AAC or Opus audio) are written as an init segment and a fragment, read
//! back with mp4-atom, and must come back as they went in: every sample's
//! size, duration and offset, each track's first decode time, and its bytes
//! where the data offset points.
#![no_main]
use camgate_protocols::flv::AacConfig;
use camgate_protocols::fmp4::{self, AudioParams, Sample, VideoParams};
use libfuzzer_sys::fuzz_target;
use mp4_atom::{Decode, Ftyp, Mdat, Moof, Moov};

fn samples(data: &mut &[u8], max: usize, audio: bool) -> Vec<Sample> {
    let mut out = Vec::new();
    let mut dts = 0u64;
    while out.len() < max && data.len() >= 4 {
        let (head, rest) = data.split_at(4);
        let len = usize::from(head[0] % 64);
        let take = len.min(rest.len());
        let duration = u32::from(u16::from_be_bytes([head[1], head[2]])).max(1);
        let sample = Sample {
            dts,
            duration,
            cts: if audio {
                0
            } else {
                i32::from(head[3] as i8) * 100
            },
            keyframe: audio || head[3] & 1 == 1,
            data: rest[..take].to_vec(),
        };
        dts += u64::from(duration);
        *data = &rest[take..];
        out.push(sample);
    }
    out
}

fuzz_target!(|input: &[u8]| {
    let Some((&mode, mut data)) = input.split_first() else {
        return;
    };
    let audio_params = match mode % 3 {
        0 => None,
        1 => Some(AudioParams::Aac(
            AacConfig::parse(&[0x11, 0x90]).expect("aac"),
        )),
        _ => Some(AudioParams::Opus {
            channels: 1 + mode % 2,
        }),
    };
    let video = VideoParams {
        width: 640,
        height: 360,
        sps: vec![0x67, 0x64, 0x00, 0x1f, 0xac],
        pps: vec![0x68, 0xee, 0x3c, 0x80],
    };
    let init = fmp4::init_segment(&video, audio_params.as_ref()).expect("init segment");
    let mut cur = std::io::Cursor::new(&init[..]);
    Ftyp::decode(&mut cur).expect("ftyp reads back");
    let moov = Moov::decode(&mut cur).expect("moov reads back");
    assert_eq!(moov.trak.len(), 1 + usize::from(audio_params.is_some()));

    let v = samples(&mut data, 40, false);
    let a = if audio_params.is_some() {
        samples(&mut data, 40, true)
    } else {
        Vec::new()
    };
    let sequence = u32::from(mode);
    let Ok(fragment) = fmp4::fragment(sequence, &v, &a) else {
        assert!(
            v.is_empty() && a.is_empty(),
            "only an empty fragment is refused"
        );
        return;
    };
    let mut cur = std::io::Cursor::new(&fragment[..]);
    let moof = Moof::decode(&mut cur).expect("moof reads back");
    let mdat = Mdat::decode(&mut cur).expect("mdat reads back");
    assert_eq!(cur.position() as usize, fragment.len());
    assert_eq!(moof.mfhd.sequence_number, sequence);
    let tracks: Vec<&Vec<Sample>> = [&v, &a].into_iter().filter(|s| !s.is_empty()).collect();
    assert_eq!(moof.traf.len(), tracks.len());
    let total: usize = tracks
        .iter()
        .flat_map(|t| t.iter())
        .map(|s| s.data.len())
        .sum();
    assert_eq!(mdat.data.len(), total);
    for (traf, want) in moof.traf.iter().zip(&tracks) {
        assert_eq!(
            traf.tfdt.as_ref().map(|t| t.base_media_decode_time),
            Some(want[0].dts)
        );
        let trun = &traf.trun[0];
        let mut at = trun.data_offset.expect("data offset") as usize;
        let mut n = 0;
        if let mp4_atom::TrunSamples::Explicit(entries) = &trun.samples {
            for (e, s) in entries.iter().zip(want.iter()) {
                assert_eq!(e.duration, Some(s.duration));
                assert_eq!(e.size, Some(s.data.len() as u32));
                assert_eq!(e.cts, Some(i64::from(s.cts)));
                assert_eq!(&fragment[at..at + s.data.len()], &s.data[..]);
                at += s.data.len();
                n += 1;
            }
        }
        assert_eq!(n, want.len());
    }
});
