//! The MJPEG multipart reader (HTTP-MJPEG pull): arbitrary bytes cut at
//! arbitrary points never panic, buffering stays bounded by the part limit,
//! and a part written by camgate's own writer reads back whole after any
//! garbage the reader rejected.
#![no_main]
use camgate_protocols::multipart::{self, Reader};
use libfuzzer_sys::fuzz_target;

const LIMIT: usize = 64 * 1024;

fuzz_target!(|data: &[u8]| {
    let (cuts, body) = data.split_at(data.len().min(4));
    let mut reader = Reader::with_limit(multipart::BOUNDARY, LIMIT);
    let mut rest = body;
    let mut i = 0;
    while !rest.is_empty() {
        let n = usize::from(*cuts.get(i % cuts.len().max(1)).unwrap_or(&255)).max(1);
        let (chunk, tail) = rest.split_at(n.min(rest.len()));
        reader.push(chunk);
        rest = tail;
        i += 1;
        loop {
            match reader.pull() {
                Ok(Some(part)) => assert!(part.len() <= LIMIT),
                Ok(None) => break,
                Err(_) => return,
            }
        }
        assert!(reader.buffered() <= LIMIT + Reader::MAX_HEADER + 2 * 256 + 64);
    }
    // Round trip: the writer's framing of the input reads back as it was.
    let jpeg = body;
    if jpeg.len() <= LIMIT {
        let mut r = Reader::with_limit(multipart::BOUNDARY, LIMIT);
        r.push(multipart::PREAMBLE);
        r.push(multipart::Part::encode(jpeg).bytes());
        if let Ok(Some(got)) = r.pull() {
            assert_eq!(&got[..], jpeg);
        }
    }
});
