//! AAC → Opus, so RTMP streams have sound in the browser (WebRTC has no
//! AAC). symphonia decodes AAC to PCM, rubato resamples to 48 kHz when the
//! stream runs at another rate, libopus (the `opus` crate) encodes 20 ms
//! stereo packets; each packet is one RTP payload (RFC 7587).
//!
//! Runs only while a WebRTC viewer subscribes; a gap in the AAC input (no
//! viewer for a while, a lost frame) restarts the timeline from the
//! frame's own timestamp.

use camgate_protocols::flv::AacConfig;
use camgate_sfu::core::SourcePacket;
use rubato::{FastFixedIn, PolynomialDegree, Resampler};
use symphonia::core::audio::SampleBuffer;
use symphonia::core::codecs::{CODEC_TYPE_AAC, CodecParameters, Decoder, DecoderOptions};
use symphonia::core::formats::Packet;

/// Opus runs at 48 kHz; 20 ms frames.
const RATE: u32 = 48_000;
const FRAME: usize = 960;
/// Resampler input chunk (frames).
const CHUNK: usize = 1024;

/// Why AAC cannot be turned into Opus.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum AudioError {
    /// The AAC decoder refused the configuration.
    #[error("aac decoder: {0}")]
    Decoder(String),
    /// The Opus encoder or the resampler could not be created.
    #[error("opus encoder: {0}")]
    Encoder(String),
}

/// One stream's AAC → Opus state.
pub struct AacToOpus {
    decoder: Box<dyn Decoder>,
    resampler: Option<FastFixedIn<f32>>,
    /// Planar input waiting for the resampler.
    resample_in: [Vec<f32>; 2],
    encoder: opus::Encoder,
    /// Interleaved 48 kHz stereo waiting for a full Opus frame.
    pcm: Vec<f32>,
    /// RTP time (48 kHz) of the first sample in `pcm`.
    next_time: Option<u64>,
    /// Where the next AAC frame is expected, milliseconds.
    expected_ms: Option<i64>,
    next_seq: u64,
    aac_frame_ms: f64,
    packet: Vec<u8>,
}

impl AacToOpus {
    /// A converter for this AAC configuration.
    pub fn new(config: &AacConfig) -> Result<AacToOpus, AudioError> {
        let mut params = CodecParameters::new();
        params
            .for_codec(CODEC_TYPE_AAC)
            .with_sample_rate(config.sample_rate)
            .with_extra_data(config.raw.clone().into_boxed_slice());
        let decoder = symphonia::default::get_codecs()
            .make(&params, &DecoderOptions::default())
            .map_err(|e| AudioError::Decoder(e.to_string()))?;
        let resampler = if config.sample_rate == RATE {
            None
        } else {
            Some(
                FastFixedIn::new(
                    f64::from(RATE) / f64::from(config.sample_rate),
                    1.0,
                    PolynomialDegree::Cubic,
                    CHUNK,
                    2,
                )
                .map_err(|e| AudioError::Encoder(e.to_string()))?,
            )
        };
        let encoder = opus::Encoder::new(RATE, opus::Channels::Stereo, opus::Application::Audio)
            .map_err(|e| AudioError::Encoder(e.to_string()))?;
        Ok(AacToOpus {
            decoder,
            resampler,
            resample_in: [Vec::new(), Vec::new()],
            encoder,
            pcm: Vec::with_capacity(FRAME * 4),
            next_time: None,
            expected_ms: None,
            next_seq: 1,
            aac_frame_ms: 1_024_000.0 / f64::from(config.sample_rate),
            packet: vec![0; 4000],
        })
    }

    /// Converts one raw AAC frame taken at `dts_ms`; returns the Opus RTP
    /// payloads completed by it (usually zero to two).
    pub fn push(&mut self, dts_ms: i64, aac: &[u8]) -> Vec<SourcePacket> {
        let t0 = std::time::Instant::now();
        let out = self.push_inner(dts_ms, aac);
        crate::metrics::METRICS.transcoded(crate::metrics::Transcoder::AacToOpus, t0.elapsed());
        out
    }

    fn push_inner(&mut self, dts_ms: i64, aac: &[u8]) -> Vec<SourcePacket> {
        // A gap or a jump: restart the timeline at this frame.
        if self.expected_ms.is_none_or(|e| (e - dts_ms).abs() > 100) {
            self.pcm.clear();
            self.resample_in[0].clear();
            self.resample_in[1].clear();
            self.next_time = Some((dts_ms.max(0) as u64) * u64::from(RATE) / 1000);
            self.decoder.reset();
        }
        self.expected_ms = Some(dts_ms + self.aac_frame_ms.round() as i64);
        let Ok(decoded) = self
            .decoder
            .decode(&Packet::new_from_slice(0, 0, 1024, aac))
        else {
            // A broken frame is skipped; the next one resyncs if needed.
            return Vec::new();
        };
        let spec = *decoded.spec();
        let channels = spec.channels.count().max(1);
        let mut samples = SampleBuffer::<f32>::new(decoded.capacity() as u64, spec);
        samples.copy_interleaved_ref(decoded);
        let interleaved = samples.samples();
        let frames = interleaved.len() / channels;
        // To stereo.
        let (left, right) = (0, if channels > 1 { 1 } else { 0 });
        match &mut self.resampler {
            None => {
                for f in 0..frames {
                    self.pcm.push(interleaved[f * channels + left]);
                    self.pcm.push(interleaved[f * channels + right]);
                }
            }
            Some(r) => {
                for f in 0..frames {
                    self.resample_in[0].push(interleaved[f * channels + left]);
                    self.resample_in[1].push(interleaved[f * channels + right]);
                }
                while self.resample_in[0].len() >= r.input_frames_next() {
                    let need = r.input_frames_next();
                    let chunk = [&self.resample_in[0][..need], &self.resample_in[1][..need]];
                    let Ok(out) = r.process(&chunk, None) else {
                        break;
                    };
                    for (l, r) in out[0].iter().zip(&out[1]) {
                        self.pcm.push(*l);
                        self.pcm.push(*r);
                    }
                    self.resample_in[0].drain(..need);
                    self.resample_in[1].drain(..need);
                }
            }
        }
        let mut out = Vec::new();
        while self.pcm.len() >= FRAME * 2 {
            let time = self.next_time.unwrap_or(0);
            self.next_time = Some(time + FRAME as u64);
            if let Ok(n) = self
                .encoder
                .encode_float(&self.pcm[..FRAME * 2], &mut self.packet)
            {
                let seq = self.next_seq;
                self.next_seq += 1;
                out.push(SourcePacket {
                    seq,
                    time: time as u32,
                    marker: false,
                    keyframe: true,
                    payload: self.packet[..n].to_vec().into(),
                });
            }
            self.pcm.drain(..FRAME * 2);
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A silent AAC-LC stereo frame as ffmpeg's encoder writes it.
    const SILENT: [u8; 9] = [0x21, 0x00, 0x49, 0x90, 0x02, 0x19, 0x00, 0x23, 0x80];

    #[test]
    fn aac_at_44k1_becomes_20_ms_opus_packets_on_a_48k_clock() {
        let c = AacConfig::parse(&[0x12, 0x10]).expect("44.1 kHz stereo");
        let mut t = AacToOpus::new(&c).expect("converter");
        let mut packets = Vec::new();
        for i in 0..100i64 {
            packets.extend(t.push(1000 + i * 1_024_000 / 44_100, &SILENT));
        }
        // 100 × 1024 samples at 44.1 kHz = 2.32 s ≈ 116 packets of 20 ms
        // (less the resampler's fill).
        assert!((100..=117).contains(&packets.len()), "{}", packets.len());
        assert_eq!(packets[0].time, 48_000);
        for w in packets.windows(2) {
            assert_eq!(w[1].time - w[0].time, 960);
            assert_eq!(w[1].seq, w[0].seq + 1);
        }
        assert!(
            packets
                .iter()
                .all(|p| !p.payload.is_empty() && p.payload.len() < 1000)
        );
        // Garbage is skipped without a panic; a jump restarts the clock.
        let _ = t.push(5000, &[0xff, 0x00, 0x12]);
        let later = t.push(60_000, &SILENT);
        if let Some(p) = later.first() {
            assert!(p.time >= 60 * 48_000);
        }
    }

    #[test]
    fn common_configurations_build() {
        for asc in [[0x12u8, 0x10], [0x11, 0x90], [0x11, 0x88]] {
            let c = AacConfig::parse(&asc).expect("config");
            assert!(AacToOpus::new(&c).is_ok());
        }
    }
}
