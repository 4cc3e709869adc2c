//! A camera frame: the structure check never panics, what it accepts fits
//! the input, and the dimensions it reads are a picture's.
#![no_main]
use camgate_protocols::jpeg::{self, TrailingPadding};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    for padding in [TrailingPadding::default(), TrailingPadding::Reject] {
        if let Ok(info) = jpeg::check(data, padding) {
            assert!(info.len <= data.len());
            if let Some((w, h)) = info.dimensions {
                assert!(w > 0 && h > 0);
            }
        }
    }
});
