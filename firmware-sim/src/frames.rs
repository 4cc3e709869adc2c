//! Synthetic camera frames: a moving colour pattern with the frame number
//! drawn large, encoded as JPEG with a capture stamp.

use std::sync::Arc;
use std::time::{SystemTime, UNIX_EPOCH};

use camgate_protocols::device::FrameSize;
use camgate_protocols::jpeg::CaptureStamp;
use jpeg_encoder::{ColorType, Encoder};

/// Microseconds since the Unix epoch, now.
pub fn unix_micros() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_micros() as u64)
}

/// The esp32-camera quality scale (0–63, lower is better) as a libjpeg-style
/// quality (1–100) for the encoder.
pub fn encoder_quality(esp_quality: u8) -> u8 {
    (100i32 - i32::from(esp_quality.min(63)) * 3).clamp(10, 95) as u8
}

// 3×5 digit glyphs, one bit per pixel, rows top to bottom.
const DIGITS: [[u8; 5]; 10] = [
    [7, 5, 5, 5, 7],
    [2, 6, 2, 2, 7],
    [7, 1, 7, 4, 7],
    [7, 1, 7, 1, 7],
    [5, 5, 7, 1, 1],
    [7, 4, 7, 1, 7],
    [7, 4, 7, 5, 7],
    [7, 1, 2, 2, 2],
    [7, 5, 7, 5, 7],
    [7, 5, 7, 1, 7],
];

/// Draws frame `n` of the test pattern as RGB.
pub fn render(size: FrameSize, n: u64) -> Vec<u8> {
    let (w, h) = size.dimensions();
    let (w, h) = (usize::from(w), usize::from(h));
    let mut rgb = vec![0u8; w * h * 3];
    let shift = (n * 4) as usize;
    for y in 0..h {
        for x in 0..w {
            let i = (y * w + x) * 3;
            rgb[i] = ((x + shift) * 255 / w) as u8;
            rgb[i + 1] = (y * 255 / h) as u8;
            rgb[i + 2] = (((x + y + shift) / 16) % 2 * 160) as u8;
        }
    }
    // A bar sweeping across makes motion obvious.
    let bar = shift % w;
    for y in 0..h {
        for x in bar..(bar + w / 20).min(w) {
            let i = (y * w + x) * 3;
            rgb[i..i + 3].copy_from_slice(&[255, 255, 255]);
        }
    }
    // The counter, in a black box at the top left.
    let text = format!("{n:06}");
    let scale = (h / 40).max(2);
    let (bx, by) = (scale * 2, scale * 2);
    let box_w = text.len() * 4 * scale + scale;
    let box_h = 7 * scale;
    for y in by - scale..(by + box_h - scale).min(h) {
        for x in bx - scale..(bx + box_w).min(w) {
            let i = (y * w + x) * 3;
            rgb[i..i + 3].copy_from_slice(&[0, 0, 0]);
        }
    }
    for (ci, ch) in text.bytes().enumerate() {
        let glyph = DIGITS[usize::from(ch - b'0')];
        for (gy, row) in glyph.iter().enumerate() {
            for gx in 0..3 {
                if row >> (2 - gx) & 1 == 1 {
                    for dy in 0..scale {
                        for dx in 0..scale {
                            let x = bx + (ci * 4 + gx) * scale + dx;
                            let y = by + gy * scale + dy;
                            if x < w && y < h {
                                let i = (y * w + x) * 3;
                                rgb[i..i + 3].copy_from_slice(&[255, 255, 0]);
                            }
                        }
                    }
                }
            }
        }
    }
    rgb
}

/// Encodes frame `n` as a stamped JPEG.
pub fn encode(size: FrameSize, n: u64, esp_quality: u8, stamp: CaptureStamp) -> Vec<u8> {
    let (w, h) = size.dimensions();
    let rgb = render(size, n);
    let mut out = Vec::new();
    let enc = Encoder::new(&mut out, encoder_quality(esp_quality));
    // Encoding into a Vec cannot fail for valid dimensions.
    if enc.encode(&rgb, w, h, ColorType::Rgb).is_err() {
        return Vec::new();
    }
    stamp.insert(&out)
}

/// Where a camera's frames come from.
#[derive(Clone, Debug)]
pub enum FrameSource {
    /// Render and encode every frame (single-camera mode: the counter on the
    /// picture is the real frame number).
    Live {
        /// Frame size.
        size: FrameSize,
        /// esp32-camera quality (0–63).
        quality: u8,
    },
    /// A ring of pre-encoded frames whose stamps are patched at send time
    /// (load mode: hundreds of cameras without hundreds of encoders).
    Ring(Arc<Vec<Vec<u8>>>),
}

impl FrameSource {
    /// A ring of `n` distinct pre-encoded frames.
    pub fn ring(size: FrameSize, quality: u8, n: u64) -> FrameSource {
        let frames = (0..n)
            .map(|i| {
                encode(
                    size,
                    i,
                    quality,
                    CaptureStamp {
                        seq: i,
                        unix_micros: 0,
                    },
                )
            })
            .collect();
        FrameSource::Ring(Arc::new(frames))
    }

    /// Frame `seq`, stamped now.
    pub fn frame(&self, seq: u64) -> Vec<u8> {
        let stamp = CaptureStamp {
            seq,
            unix_micros: unix_micros(),
        };
        match self {
            FrameSource::Live { size, quality } => encode(*size, seq, *quality, stamp),
            FrameSource::Ring(frames) => {
                let mut f = frames[(seq % frames.len() as u64) as usize].clone();
                stamp.patch(&mut f);
                f
            }
        }
    }

    /// Applies a `control` message's quality and frame size (live mode).
    pub fn apply_control(&mut self, quality: Option<u8>, frame_size: Option<FrameSize>) {
        if let FrameSource::Live { size, quality: q } = self {
            if let Some(nq) = quality {
                *q = nq.min(63);
            }
            if let Some(ns) = frame_size {
                *size = ns;
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use camgate_protocols::jpeg::{TrailingPadding, check};

    #[test]
    fn frames_are_valid_stamped_jpegs_of_the_right_size() {
        let src = FrameSource::Live {
            size: FrameSize::Qvga,
            quality: 12,
        };
        let f = src.frame(7);
        let info = check(&f, TrailingPadding::Reject).expect("valid jpeg");
        assert_eq!(info.dimensions, Some((320, 240)));
        assert_eq!(info.stamp.map(|s| s.seq), Some(7));
        let ring = FrameSource::ring(FrameSize::Qvga, 12, 3);
        let f = ring.frame(1000);
        assert_eq!(
            check(&f, TrailingPadding::Reject)
                .expect("valid")
                .stamp
                .map(|s| s.seq),
            Some(1000)
        );
        // The picture decodes and differs between frames.
        let a = render(FrameSize::Qvga, 1);
        let b = render(FrameSize::Qvga, 2);
        assert_ne!(a, b);
    }
}
