//! FLV tag bodies from RTMP: AVC and AAC configuration records and media
//! tags parse or fail without panicking, with or without a configuration
//! taken from the input itself.
#![no_main]
use camgate_protocols::flv::{self, AacConfig, AvcConfig};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let (head, tail) = data.split_at(data.len() / 2);
    let avc = AvcConfig::parse(head).ok();
    let _ = flv::parse_video(data, None);
    let _ = flv::parse_video(tail, avc.as_ref());
    let _ = AacConfig::parse(data);
    let _ = flv::parse_audio(data);
});
