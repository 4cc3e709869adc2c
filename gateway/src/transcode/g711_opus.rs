//! G.711 → Opus, so an IP camera's µ-law or A-law sound is kept in HLS and
//! in recordings (MP4 players and browsers' MSE have no G.711). WebRTC
//! viewers get the G.711 packets as they are; this runs next to that.
//!
//! G.711 decodes by table to 8 kHz PCM; libopus takes 8 kHz input directly
//! and encodes 20 ms mono packets (160 input samples, 960 on Opus's 48 kHz
//! clock). A gap in the input (a lost packet, a clock jump) restarts the
//! timeline from the packet's own time.

use camgate_protocols::audio::{alaw_to_linear, ulaw_to_linear};

/// G.711's rate and the Opus frame at that rate (20 ms).
const RATE: u32 = 8_000;
const FRAME: usize = 160;

/// Which G.711.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Law {
    /// µ-law (PCMU).
    Mu,
    /// A-law (PCMA).
    A,
}

/// One stream's G.711 → Opus state.
pub struct G711ToOpus {
    law: Law,
    encoder: opus::Encoder,
    pcm: Vec<i16>,
    /// Milliseconds of the first sample in `pcm`.
    pcm_start_ms: i64,
    /// Where the next packet is expected, milliseconds.
    expected_ms: Option<i64>,
    packet: Vec<u8>,
}

impl G711ToOpus {
    /// A converter for `law`.
    pub fn new(law: Law) -> Result<G711ToOpus, opus::Error> {
        let mut encoder = opus::Encoder::new(RATE, opus::Channels::Mono, opus::Application::Voip)?;
        // Telephone-band speech: 24 kbit/s is transparent for it.
        encoder.set_bitrate(opus::Bitrate::Bits(24_000))?;
        Ok(G711ToOpus {
            law,
            encoder,
            pcm: Vec::with_capacity(FRAME * 4),
            pcm_start_ms: 0,
            expected_ms: None,
            packet: vec![0; 1500],
        })
    }

    /// Converts one G.711 payload taken at `ms`; returns the Opus packets it
    /// completed with their times in milliseconds.
    pub fn push(&mut self, ms: i64, payload: &[u8]) -> Vec<(i64, Vec<u8>)> {
        let t0 = std::time::Instant::now();
        if self.expected_ms.is_none_or(|e| (e - ms).abs() > 100) {
            self.pcm.clear();
        }
        if self.pcm.is_empty() {
            self.pcm_start_ms = ms;
        }
        self.expected_ms = Some(ms + payload.len() as i64 * 1000 / i64::from(RATE));
        let decode = match self.law {
            Law::Mu => ulaw_to_linear,
            Law::A => alaw_to_linear,
        };
        self.pcm.extend(payload.iter().map(|b| decode(*b)));
        let mut out = Vec::new();
        let mut used = 0;
        while self.pcm.len() - used >= FRAME {
            let frame = &self.pcm[used..used + FRAME];
            let at = self.pcm_start_ms + (used as i64) * 1000 / i64::from(RATE);
            used += FRAME;
            if let Ok(n) = self.encoder.encode(frame, &mut self.packet) {
                out.push((at, self.packet[..n].to_vec()));
            }
        }
        self.pcm.drain(..used);
        self.pcm_start_ms += (used as i64) * 1000 / i64::from(RATE);
        crate::metrics::METRICS.transcoded(crate::metrics::Transcoder::G711ToOpus, t0.elapsed());
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn twenty_ms_payloads_become_twenty_ms_opus_packets_on_their_clock() {
        let mut t = G711ToOpus::new(Law::Mu).expect("encoder");
        let mut packets = Vec::new();
        // 1 s of a 400 Hz tone in 30 ms payloads (240 bytes).
        for i in 0..34 {
            let payload: Vec<u8> = (0..240)
                .map(|n| {
                    let s = ((i * 240 + n) as f32 * 400.0 * std::f32::consts::TAU / 8000.0).sin();
                    // Coarse µ-law-ish: the sign bit and a mid magnitude.
                    if s >= 0.0 { 0xa0 } else { 0x20 }
                })
                .collect();
            packets.extend(t.push(1000 + i * 30, &payload));
        }
        assert_eq!(packets.len(), 34 * 240 / 160);
        for (k, (at, p)) in packets.iter().enumerate() {
            assert_eq!(*at, 1000 + k as i64 * 20);
            assert_eq!(camgate_protocols::audio::opus_packet_samples(p), Some(960));
        }
        // A jump restarts the clock at the new time.
        let after = t.push(60_000, &[0xff; 160]);
        assert_eq!(after.len(), 1);
        assert_eq!(after[0].0, 60_000);
    }
}
