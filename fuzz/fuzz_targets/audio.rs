//! Opus TOC reading and G.711 decoding: never panic, durations stay within
//! Opus's 120 ms limit.
#![no_main]
use camgate_protocols::audio;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    if let Some(n) = audio::opus_packet_samples(data) {
        assert!(n > 0 && n <= 5760);
    }
    for b in data {
        let _ = audio::ulaw_to_linear(*b);
        let _ = audio::alaw_to_linear(*b);
    }
});
