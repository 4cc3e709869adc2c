//! JPEG frame checks and camgate's capture stamp.
//!
//! Cameras send one JPEG per WebSocket message. Before a frame is fanned out
//! to viewers the server checks it is one *whole* JPEG: it starts with SOI,
//! its header segments are well formed up to the start of scan, and it ends
//! with EOI. That catches truncated uploads, concatenated garbage and non-JPEG
//! payloads without decoding any pixels: the walk touches only the headers
//! (a handful of segments), so it costs microseconds even for large frames.
//!
//! Written by hand rather than with a decoder crate because decoding would
//! cost milliseconds per frame and camgate never needs the pixels here.

use std::fmt;
use std::str::FromStr;

const SOI: u8 = 0xD8;
const EOI: u8 = 0xD9;
const SOS: u8 = 0xDA;
const COM: u8 = 0xFE;

/// What is wrong with a frame that is not one whole JPEG.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum JpegError {
    /// Fewer bytes than the smallest possible JPEG (SOI + EOI).
    #[error("frame is {0} bytes, too short to be a JPEG")]
    TooShort(usize),
    /// The frame does not begin with the SOI marker `FF D8`.
    #[error("frame does not start with a JPEG SOI marker")]
    NoStartOfImage,
    /// A header segment claims more bytes than the frame holds.
    #[error("header segment {marker:#04x} at byte {offset} runs past the end of the frame")]
    TruncatedSegment {
        /// The segment's marker byte.
        marker: u8,
        /// Byte offset of the segment's marker.
        offset: usize,
    },
    /// Bytes that are not a marker where a marker must be.
    #[error("expected a marker at byte {offset}")]
    BadMarker {
        /// Byte offset where a marker was expected.
        offset: usize,
    },
    /// The headers end without a start-of-scan segment.
    #[error("no start-of-scan segment")]
    NoStartOfScan,
    /// The frame does not end with the EOI marker `FF D9` (it was cut short).
    #[error("frame does not end with a JPEG EOI marker (truncated?)")]
    NoEndOfImage,
}

/// How to treat bytes after the EOI marker.
///
/// Quirk: esp32-camera driver versions before 2.0 (Arduino core 1.0.x) hand
/// out frame buffers whose length is rounded up, so the JPEG is followed by
/// zero bytes. Browsers display such frames fine, so camgate accepts them and
/// trims the padding by default; a warning is logged once per camera.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
#[non_exhaustive]
pub enum TrailingPadding {
    /// Accept up to 4 KiB of zero bytes after EOI and trim them (default).
    #[default]
    TrimZeros,
    /// Reject any byte after EOI.
    Reject,
}

/// Most zero padding [`TrailingPadding::TrimZeros`] accepts.
pub const MAX_TRAILING_ZEROS: usize = 4096;

impl fmt::Display for TrailingPadding {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            TrailingPadding::TrimZeros => "trim-zeros",
            TrailingPadding::Reject => "reject",
        })
    }
}

impl FromStr for TrailingPadding {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s {
            "trim-zeros" => Ok(TrailingPadding::TrimZeros),
            "reject" => Ok(TrailingPadding::Reject),
            other => Err(format!(
                "unknown trailing padding policy {other:?} (trim-zeros | reject)"
            )),
        }
    }
}

/// What [`check`] learned about a valid frame.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct JpegInfo {
    /// Length of the JPEG itself, EOI included; anything after it was padding.
    pub len: usize,
    /// Width and height from the SOF segment, when one was present with
    /// both non-zero.
    pub dimensions: Option<(u16, u16)>,
    /// The capture stamp camsim and camgate-aware firmware embed, if any.
    pub stamp: Option<CaptureStamp>,
    /// Number of padding bytes trimmed after EOI.
    pub trimmed: usize,
}

/// Checks that `frame` is one whole JPEG and reads its headers.
pub fn check(frame: &[u8], padding: TrailingPadding) -> Result<JpegInfo, JpegError> {
    if frame.len() < 4 {
        return Err(JpegError::TooShort(frame.len()));
    }
    if frame[0] != 0xFF || frame[1] != SOI {
        return Err(JpegError::NoStartOfImage);
    }
    let len = end_of_image(frame, padding)?;
    let mut dimensions = None;
    let mut stamp = None;
    let mut pos = 2;
    loop {
        // Fill bytes (0xFF) may precede a marker.
        let marker_at = pos;
        if pos >= len || frame[pos] != 0xFF {
            return Err(JpegError::BadMarker { offset: pos });
        }
        while pos < len && frame[pos] == 0xFF {
            pos += 1;
        }
        let Some(&marker) = frame.get(pos) else {
            return Err(JpegError::NoStartOfScan);
        };
        pos += 1;
        match marker {
            // Standalone markers carry no length.
            0x01 | 0xD0..=0xD7 => continue,
            EOI => return Err(JpegError::NoStartOfScan),
            0x00 | SOI => return Err(JpegError::BadMarker { offset: marker_at }),
            _ => {}
        }
        let Some(seg_len) = frame
            .get(pos..pos + 2)
            .map(|b| usize::from(u16::from_be_bytes([b[0], b[1]])))
        else {
            return Err(JpegError::TruncatedSegment {
                marker,
                offset: marker_at,
            });
        };
        if seg_len < 2 || pos + seg_len > len {
            return Err(JpegError::TruncatedSegment {
                marker,
                offset: marker_at,
            });
        }
        let body = &frame[pos + 2..pos + seg_len];
        match marker {
            // SOF0..SOF15 except DHT (C4), JPG (C8) and DAC (CC).
            0xC0..=0xCF
                if marker != 0xC4 && marker != 0xC8 && marker != 0xCC && body.len() >= 5 =>
            {
                let h = u16::from_be_bytes([body[1], body[2]]);
                let w = u16::from_be_bytes([body[3], body[4]]);
                // Height 0 means "given later by a DNL marker" and width 0
                // is invalid: neither is a size to report (found by
                // fuzzing).
                dimensions = (w > 0 && h > 0).then_some((w, h));
            }
            COM if stamp.is_none() => stamp = CaptureStamp::parse(body),
            SOS => {
                return Ok(JpegInfo {
                    len,
                    dimensions,
                    stamp,
                    trimmed: frame.len() - len,
                });
            }
            _ => {}
        }
        pos += seg_len;
    }
}

/// Finds the end of the JPEG (just past EOI), allowing padding per policy.
fn end_of_image(frame: &[u8], padding: TrailingPadding) -> Result<usize, JpegError> {
    let n = frame.len();
    if frame[n - 2] == 0xFF && frame[n - 1] == EOI {
        return Ok(n);
    }
    if padding == TrailingPadding::Reject {
        return Err(JpegError::NoEndOfImage);
    }
    let last_nonzero = frame
        .iter()
        .rposition(|&b| b != 0)
        .ok_or(JpegError::NoEndOfImage)?;
    let end = last_nonzero + 1;
    if end >= 4 && n - end <= MAX_TRAILING_ZEROS && frame[end - 2] == 0xFF && frame[end - 1] == EOI
    {
        Ok(end)
    } else {
        Err(JpegError::NoEndOfImage)
    }
}

/// A capture stamp: the camera's frame sequence number and capture time.
///
/// Carried in a JPEG comment (COM) segment right after SOI with fixed-width
/// text, `camgate seq=0000000042 ts=01700000000000000` (ts in microseconds
/// since the Unix epoch), so a sender can patch a pre-encoded frame in place
/// and a receiver can measure end-to-end latency. Viewers ignore comments.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct CaptureStamp {
    /// Frame sequence number, counted by the camera.
    pub seq: u64,
    /// Capture time in microseconds since the Unix epoch.
    pub unix_micros: u64,
}

const STAMP_PREFIX: &[u8] = b"camgate seq=";
const STAMP_TS: &[u8] = b" ts=";
const SEQ_DIGITS: usize = 10;
const TS_DIGITS: usize = 17;
/// Length of the stamp text.
pub const STAMP_TEXT_LEN: usize = STAMP_PREFIX.len() + SEQ_DIGITS + STAMP_TS.len() + TS_DIGITS;
/// Length of the whole COM segment carrying a stamp (marker + length + text).
pub const STAMP_SEGMENT_LEN: usize = 4 + STAMP_TEXT_LEN;

impl CaptureStamp {
    fn parse(body: &[u8]) -> Option<CaptureStamp> {
        let rest = body.strip_prefix(STAMP_PREFIX)?;
        let seq = parse_digits(rest.get(..SEQ_DIGITS)?)?;
        let rest = rest.get(SEQ_DIGITS..)?.strip_prefix(STAMP_TS)?;
        let unix_micros = parse_digits(rest.get(..TS_DIGITS)?)?;
        Some(CaptureStamp { seq, unix_micros })
    }

    /// Writes the stamp text (exactly [`STAMP_TEXT_LEN`] bytes) into `out`.
    fn write_text(&self, out: &mut [u8]) {
        let (p, rest) = out.split_at_mut(STAMP_PREFIX.len());
        p.copy_from_slice(STAMP_PREFIX);
        let (s, rest) = rest.split_at_mut(SEQ_DIGITS);
        write_digits(s, self.seq);
        let (t, rest) = rest.split_at_mut(STAMP_TS.len());
        t.copy_from_slice(STAMP_TS);
        write_digits(&mut rest[..TS_DIGITS], self.unix_micros);
    }

    /// Returns `jpeg` with a stamp segment inserted right after SOI.
    ///
    /// The stamp can later be rewritten in place with [`CaptureStamp::patch`].
    pub fn insert(&self, jpeg: &[u8]) -> Vec<u8> {
        let mut out = Vec::with_capacity(jpeg.len() + STAMP_SEGMENT_LEN);
        out.extend_from_slice(&jpeg[..2.min(jpeg.len())]);
        out.extend_from_slice(&[0xFF, COM]);
        let seg_len = u16::try_from(2 + STAMP_TEXT_LEN).unwrap_or(u16::MAX);
        out.extend_from_slice(&seg_len.to_be_bytes());
        let at = out.len();
        out.resize(at + STAMP_TEXT_LEN, 0);
        self.write_text(&mut out[at..]);
        out.extend_from_slice(jpeg.get(2..).unwrap_or_default());
        out
    }

    /// Rewrites the stamp of a frame made by [`CaptureStamp::insert`].
    ///
    /// Returns false (and leaves the frame alone) when it carries no stamp.
    pub fn patch(&self, frame: &mut [u8]) -> bool {
        let text = 6..6 + STAMP_TEXT_LEN;
        let has_stamp = frame.len() >= STAMP_SEGMENT_LEN + 2
            && frame[2] == 0xFF
            && frame[3] == COM
            && frame[6..].starts_with(STAMP_PREFIX);
        if has_stamp {
            self.write_text(&mut frame[text]);
        }
        has_stamp
    }
}

fn parse_digits(d: &[u8]) -> Option<u64> {
    d.iter().try_fold(0u64, |acc, &b| {
        b.is_ascii_digit()
            .then(|| acc.wrapping_mul(10).wrapping_add(u64::from(b - b'0')))
    })
}

fn write_digits(out: &mut [u8], mut v: u64) {
    for slot in out.iter_mut().rev() {
        *slot = b'0' + (v % 10) as u8;
        v /= 10;
    }
}

/// Small valid JPEGs for doc tests and other crates' tests.
#[doc(hidden)]
pub mod tests_support {
    /// A structurally complete (if not decodable) baseline JPEG, 16×8 pixels.
    pub fn tiny_jpeg() -> Vec<u8> {
        let mut v = vec![0xFF, 0xD8];
        // APP0 JFIF
        v.extend_from_slice(&[0xFF, 0xE0, 0x00, 0x10]);
        v.extend_from_slice(b"JFIF\0\x01\x01\0\0\x01\0\x01\0\0");
        // SOF0: precision 8, height 8, width 16, 1 component
        v.extend_from_slice(&[0xFF, 0xC0, 0x00, 0x0B, 8, 0, 8, 0, 16, 1, 1, 0x11, 0]);
        // SOS: 1 component
        v.extend_from_slice(&[0xFF, 0xDA, 0x00, 0x08, 1, 1, 0, 0, 63, 0]);
        v.extend_from_slice(&[0x12, 0x34, 0xFF, 0x00, 0x56]);
        v.extend_from_slice(&[0xFF, 0xD9]);
        v
    }
}

#[cfg(test)]
mod tests {
    use super::tests_support::tiny_jpeg;
    use super::*;

    #[test]
    fn accepts_whole_jpeg_and_reads_dimensions() {
        let f = tiny_jpeg();
        let info = check(&f, TrailingPadding::Reject).expect("valid");
        assert_eq!(info.len, f.len());
        assert_eq!(info.dimensions, Some((16, 8)));
        assert_eq!(info.stamp, None);
    }

    #[test]
    fn rejects_garbage_and_truncation() {
        assert_eq!(
            check(b"", TrailingPadding::default()),
            Err(JpegError::TooShort(0))
        );
        assert_eq!(
            check(b"hello world", TrailingPadding::default()),
            Err(JpegError::NoStartOfImage)
        );
        let f = tiny_jpeg();
        for cut in 4..f.len() - 1 {
            assert!(
                check(&f[..cut], TrailingPadding::default()).is_err(),
                "truncated at {cut} accepted"
            );
        }
        // SOI + EOI only: no scan.
        assert_eq!(
            check(&[0xFF, 0xD8, 0xFF, 0xD9], TrailingPadding::default()),
            Err(JpegError::NoStartOfScan)
        );
    }

    #[test]
    fn padding_policy() {
        let mut f = tiny_jpeg();
        let n = f.len();
        f.extend_from_slice(&[0; 100]);
        let info = check(&f, TrailingPadding::TrimZeros).expect("trimmed");
        assert_eq!((info.len, info.trimmed), (n, 100));
        assert_eq!(
            check(&f, TrailingPadding::Reject),
            Err(JpegError::NoEndOfImage)
        );
        f.push(1);
        assert_eq!(
            check(&f, TrailingPadding::TrimZeros),
            Err(JpegError::NoEndOfImage)
        );
        assert_eq!("reject".parse(), Ok(TrailingPadding::Reject));
    }

    #[test]
    fn stamp_round_trip_and_patch() {
        let stamp = CaptureStamp {
            seq: 42,
            unix_micros: 1_700_000_000_123_456,
        };
        let mut f = stamp.insert(&tiny_jpeg());
        let info = check(&f, TrailingPadding::Reject).expect("valid");
        assert_eq!(info.stamp, Some(stamp));
        let later = CaptureStamp {
            seq: 43,
            unix_micros: 1_700_000_000_223_456,
        };
        assert!(later.patch(&mut f));
        assert_eq!(
            check(&f, TrailingPadding::Reject).expect("valid").stamp,
            Some(later)
        );
        assert!(!later.patch(&mut tiny_jpeg()));
    }

    #[test]
    fn never_panics_on_any_prefix_or_flip() {
        let f = CaptureStamp {
            seq: 1,
            unix_micros: 2,
        }
        .insert(&tiny_jpeg());
        for i in 0..f.len() {
            for b in [0x00, 0xFF, 0xD9, 0xDA, 0x7F] {
                let mut g = f.clone();
                g[i] = b;
                let _ = check(&g, TrailingPadding::default());
                let _ = check(&g[..i], TrailingPadding::default());
            }
        }
    }
}
