//! Small audio facts camgate needs without a codec library: how long an
//! Opus packet plays (RFC 6716 §3.1, read from its TOC byte) and G.711
//! µ-law / A-law to linear PCM (ITU-T G.711).
//!
//! Both are a few lines of table arithmetic; pulling in a codec crate for
//! them would add a dependency for no gain.

/// Samples at 48 kHz that an Opus packet decodes to, from its TOC byte and
/// frame count (RFC 6716 §3.1). `None` for an empty packet, a code-3 packet
/// without its frame count byte, or more than 120 ms (invalid).
pub fn opus_packet_samples(packet: &[u8]) -> Option<u32> {
    let toc = *packet.first()?;
    let config = toc >> 3;
    // Frame length in 48 kHz samples, per configuration range.
    let frame = match config {
        0..=11 => [480, 960, 1920, 2880][usize::from(config & 3)],
        12..=15 => [480, 960][usize::from(config & 1)],
        _ => [120, 240, 480, 960][usize::from(config & 3)],
    };
    let frames = match toc & 3 {
        0 => 1,
        1 | 2 => 2,
        _ => u32::from(*packet.get(1)? & 0x3f),
    };
    let samples = frame * frames;
    (frames > 0 && samples <= 5760).then_some(samples)
}

/// One G.711 µ-law byte as a 16-bit linear sample.
pub fn ulaw_to_linear(byte: u8) -> i16 {
    let u = !byte;
    let exponent = (u >> 4) & 7;
    let mantissa = i32::from(u & 0x0f);
    let magnitude = (((mantissa << 3) + 0x84) << exponent) - 0x84;
    (if u & 0x80 != 0 { -magnitude } else { magnitude }) as i16
}

/// One G.711 A-law byte as a 16-bit linear sample.
pub fn alaw_to_linear(byte: u8) -> i16 {
    let a = byte ^ 0x55;
    let exponent = (a >> 4) & 7;
    let mantissa = i32::from(a & 0x0f);
    let magnitude = match exponent {
        0 => (mantissa << 4) + 8,
        e => ((mantissa << 4) + 0x108) << (e - 1),
    };
    (if a & 0x80 != 0 { magnitude } else { -magnitude }) as i16
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn opus_durations_follow_the_toc() {
        // CELT 20 ms, one frame (what browsers send).
        assert_eq!(opus_packet_samples(&[0xfc, 0]), Some(960));
        // SILK 10 ms, two frames.
        assert_eq!(opus_packet_samples(&[0x01, 0]), Some(960));
        // Hybrid 20 ms, code 3 with 3 frames.
        assert_eq!(opus_packet_samples(&[0x6b, 0x03]), Some(2880));
        // Code 3 without the count byte, zero frames, over 120 ms.
        assert_eq!(opus_packet_samples(&[0x03]), None);
        assert_eq!(opus_packet_samples(&[0x03, 0x00]), None);
        assert_eq!(opus_packet_samples(&[0x1b, 0x03]), None);
        assert_eq!(opus_packet_samples(&[]), None);
    }

    #[test]
    fn g711_matches_the_reference_values() {
        // µ-law: 0xff and 0x7f are the two zeros, 0x00 / 0x80 the extremes.
        assert_eq!(ulaw_to_linear(0xff), 0);
        assert_eq!(ulaw_to_linear(0x7f), 0);
        assert_eq!(ulaw_to_linear(0x80), 32124);
        assert_eq!(ulaw_to_linear(0x00), -32124);
        // A-law: 0xd5 / 0x55 are the smallest magnitudes, 0xaa / 0x2a the
        // largest.
        assert_eq!(alaw_to_linear(0xd5), 8);
        assert_eq!(alaw_to_linear(0x55), -8);
        assert_eq!(alaw_to_linear(0xaa), 32256);
        assert_eq!(alaw_to_linear(0x2a), -32256);
        // Monotonic over each half.
        let mut prev = i16::MIN;
        for b in (0x80..=0xffu8).rev() {
            let v = ulaw_to_linear(b);
            assert!(v >= prev || b == 0xff);
            prev = v;
        }
    }
}
