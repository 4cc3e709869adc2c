//! H.264 elementary streams and their RTP payload format (RFC 6184).
//!
//! Written here rather than taken from a crate: the encoder hands camgate
//! Annex B access units and the SFU needs RTP payloads it can share by
//! reference between every viewer; str0m's own packetizer works per peer
//! (frame mode), which is exactly the per-viewer cost the SFU avoids. The
//! format is small (single NAL unit, STAP-A, FU-A) and fully covered here.
//!
//! * [`split_annex_b`] cuts an Annex B byte stream into NAL units.
//! * [`Packetizer`] turns one access unit into RTP payloads of at most `mtu`
//!   bytes (packetization-mode 1): parameter sets are aggregated into one
//!   STAP-A, small NAL units travel alone, big ones are fragmented as FU-A.
//! * [`Depacketizer`] reassembles RTP payloads into Annex B access units,
//!   dropping a picture that lost a packet (for snapshots of a WebRTC
//!   publisher).
//! * [`payload_starts_keyframe`] tells an SFU whether an RTP payload begins an
//!   IDR picture (or carries the SPS that precedes one), so a new viewer can
//!   be started on a decodable frame.
//!
//! ```
//! use camgate_protocols::h264::{Packetizer, split_annex_b};
//! let au = [0, 0, 0, 1, 0x67, 0x42, 0xe0, 0x1f, 0, 0, 0, 1, 0x68, 0xce, 0, 0, 1, 0x65, 0x88, 0x84];
//! let nals: Vec<&[u8]> = split_annex_b(&au).collect();
//! assert_eq!(nals.len(), 3);
//! let payloads = Packetizer::new(1200).packetize(&au);
//! assert_eq!(payloads.len(), 2); // STAP-A(SPS, PPS) + the IDR slice
//! ```

/// NAL unit type of a coded slice of a non-IDR picture.
pub const NAL_SLICE: u8 = 1;
/// NAL unit type of a coded slice of an IDR picture.
pub const NAL_IDR: u8 = 5;
/// NAL unit type of supplemental enhancement information.
pub const NAL_SEI: u8 = 6;
/// NAL unit type of a sequence parameter set.
pub const NAL_SPS: u8 = 7;
/// NAL unit type of a picture parameter set.
pub const NAL_PPS: u8 = 8;
/// NAL unit type of an access unit delimiter.
pub const NAL_AUD: u8 = 9;
/// RTP aggregation packet type STAP-A (RFC 6184 §5.7.1).
pub const STAP_A: u8 = 24;
/// RTP fragmentation unit type FU-A (RFC 6184 §5.8).
pub const FU_A: u8 = 28;

/// The `nal_unit_type` of a NAL unit's first byte.
pub fn nal_type(header: u8) -> u8 {
    header & 0x1f
}

/// Splits an Annex B byte stream (start codes `00 00 01` or `00 00 00 01`)
/// into NAL units without their start codes. Empty units are skipped and
/// bytes before the first start code are ignored.
pub fn split_annex_b(data: &[u8]) -> impl Iterator<Item = &[u8]> {
    let mut pos = next_start_code(data, 0).map(|(_, body)| body);
    std::iter::from_fn(move || {
        loop {
            let start = pos?;
            let (end, next) = match next_start_code(data, start) {
                Some((code_at, body)) => (code_at, Some(body)),
                None => (data.len(), None),
            };
            pos = next;
            // Trailing zero bytes belong to the next start code (a 4-byte one)
            // or are trailing_zero_8bits; neither is part of this NAL unit.
            let mut end = end;
            while end > start && data[end - 1] == 0 {
                end -= 1;
            }
            if end > start {
                return Some(&data[start..end]);
            }
            pos?;
        }
    })
}

/// Finds the next `00 00 01` at or after `from`: returns where the code
/// starts and where the NAL unit after it begins.
fn next_start_code(data: &[u8], from: usize) -> Option<(usize, usize)> {
    let mut i = from;
    while i + 3 <= data.len() {
        if data[i + 2] > 1 {
            i += 3;
        } else if data[i] == 0 && data[i + 1] == 0 && data[i + 2] == 1 {
            return Some((i, i + 3));
        } else {
            i += 1;
        }
    }
    None
}

/// Cuts H.264 access units into RTP payloads (packetization-mode 1).
#[derive(Debug, Clone)]
pub struct Packetizer {
    mtu: usize,
}

impl Packetizer {
    /// A packetizer producing payloads of at most `mtu` bytes (at least 64).
    pub fn new(mtu: usize) -> Self {
        Self { mtu: mtu.max(64) }
    }

    /// RTP payloads for one Annex B access unit, in sending order. The last
    /// one carries the end of the picture (the RTP marker bit belongs on it).
    /// SPS and PPS are aggregated into one STAP-A when they fit; access unit
    /// delimiters are dropped (WebRTC receivers don't need them).
    pub fn packetize(&self, access_unit: &[u8]) -> Vec<Vec<u8>> {
        let mut out = Vec::new();
        let mut stap: Vec<&[u8]> = Vec::new();
        for nal in split_annex_b(access_unit) {
            let kind = nal_type(nal[0]);
            if kind == NAL_AUD {
                continue;
            }
            if matches!(kind, NAL_SPS | NAL_PPS) {
                let stap_len: usize = 1 + stap.iter().map(|n| 2 + n.len()).sum::<usize>();
                if stap_len + 2 + nal.len() <= self.mtu {
                    stap.push(nal);
                    continue;
                }
            }
            self.flush_stap(&mut stap, &mut out);
            self.push_nal(nal, &mut out);
        }
        self.flush_stap(&mut stap, &mut out);
        out
    }

    fn flush_stap(&self, stap: &mut Vec<&[u8]>, out: &mut Vec<Vec<u8>>) {
        match stap.len() {
            0 => {}
            1 => out.push(stap[0].to_vec()),
            _ => {
                // F bit: OR of the aggregated units; NRI: their maximum.
                let f = stap.iter().fold(0, |f, n| f | (n[0] & 0x80));
                let nri = stap.iter().map(|n| n[0] & 0x60).max().unwrap_or(0);
                let mut p = Vec::with_capacity(self.mtu);
                p.push(f | nri | STAP_A);
                for nal in stap.iter() {
                    p.extend_from_slice(&(nal.len() as u16).to_be_bytes());
                    p.extend_from_slice(nal);
                }
                out.push(p);
            }
        }
        stap.clear();
    }

    fn push_nal(&self, nal: &[u8], out: &mut Vec<Vec<u8>>) {
        if nal.len() <= self.mtu {
            out.push(nal.to_vec());
            return;
        }
        let indicator = (nal[0] & 0xe0) | FU_A;
        let kind = nal_type(nal[0]);
        let body = &nal[1..];
        let chunk = self.mtu - 2;
        let count = body.len().div_ceil(chunk);
        for (i, piece) in body.chunks(chunk).enumerate() {
            let mut fu_header = kind;
            if i == 0 {
                fu_header |= 0x80;
            }
            if i + 1 == count {
                fu_header |= 0x40;
            }
            let mut p = Vec::with_capacity(2 + piece.len());
            p.push(indicator);
            p.push(fu_header);
            p.extend_from_slice(piece);
            out.push(p);
        }
    }
}

/// Whether an RTP payload (RFC 6184) starts a picture a decoder can begin
/// with: an SPS or IDR slice as a single NAL unit, a STAP-A holding one, or
/// the first fragment of an IDR slice.
pub fn payload_starts_keyframe(payload: &[u8]) -> bool {
    let Some(&first) = payload.first() else {
        return false;
    };
    match nal_type(first) {
        NAL_SPS | NAL_IDR => true,
        STAP_A => {
            let mut rest = &payload[1..];
            while rest.len() > 2 {
                let len = u16::from_be_bytes([rest[0], rest[1]]) as usize;
                let Some(nal) = rest.get(2..2 + len) else {
                    return false;
                };
                if nal
                    .first()
                    .is_some_and(|h| matches!(nal_type(*h), NAL_SPS | NAL_IDR))
                {
                    return true;
                }
                rest = &rest[2 + len..];
            }
            false
        }
        FU_A => payload
            .get(1)
            .is_some_and(|h| h & 0x80 != 0 && nal_type(*h) == NAL_IDR),
        _ => false,
    }
}

/// Whether an Annex B access unit holds an IDR slice.
pub fn access_unit_is_keyframe(access_unit: &[u8]) -> bool {
    split_annex_b(access_unit).any(|n| nal_type(n[0]) == NAL_IDR)
}

/// What a sequence parameter set says about the picture.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SpsInfo {
    /// `profile_idc`.
    pub profile: u8,
    /// `level_idc`.
    pub level: u8,
    /// Displayed width (after cropping), pixels.
    pub width: u32,
    /// Displayed height (after cropping), pixels.
    pub height: u32,
}

/// Reads bits MSB first from an RBSP (emulation prevention removed).
struct Bits<'a> {
    data: &'a [u8],
    pos: usize,
}

impl Bits<'_> {
    fn bit(&mut self) -> Option<u32> {
        let byte = *self.data.get(self.pos / 8)?;
        let b = (byte >> (7 - self.pos % 8)) & 1;
        self.pos += 1;
        Some(u32::from(b))
    }

    fn bits(&mut self, n: u32) -> Option<u32> {
        (0..n).try_fold(0u32, |acc, _| Some((acc << 1) | self.bit()?))
    }

    /// Unsigned Exp-Golomb.
    fn ue(&mut self) -> Option<u32> {
        let mut zeros = 0;
        while self.bit()? == 0 {
            zeros += 1;
            if zeros > 31 {
                return None;
            }
        }
        Some((1u32 << zeros) - 1 + self.bits(zeros)?)
    }

    /// Signed Exp-Golomb.
    fn se(&mut self) -> Option<i32> {
        let k = self.ue()?;
        let v = k.div_ceil(2) as i32;
        Some(if k % 2 == 0 { -v } else { v })
    }
}

/// Parses the picture size out of an SPS NAL unit (with its header byte),
/// or `None` when it is malformed or of a kind camgate does not read.
pub fn parse_sps(nal: &[u8]) -> Option<SpsInfo> {
    if nal.first().map(|h| nal_type(*h)) != Some(NAL_SPS) || nal.len() < 4 {
        return None;
    }
    // Remove emulation prevention bytes (00 00 03 → 00 00).
    let mut rbsp = Vec::with_capacity(nal.len());
    let mut zeros = 0;
    for &b in &nal[1..] {
        if zeros >= 2 && b == 3 {
            zeros = 0;
            continue;
        }
        zeros = if b == 0 { zeros + 1 } else { 0 };
        rbsp.push(b);
    }
    let mut r = Bits {
        data: &rbsp,
        pos: 0,
    };
    let profile = r.bits(8)? as u8;
    r.bits(8)?; // constraint flags
    let level = r.bits(8)? as u8;
    r.ue()?; // seq_parameter_set_id
    let mut chroma_format = 1;
    if matches!(
        profile,
        100 | 110 | 122 | 244 | 44 | 83 | 86 | 118 | 128 | 138 | 139 | 134 | 135
    ) {
        chroma_format = r.ue()?;
        if chroma_format == 3 {
            r.bit()?; // separate_colour_plane_flag
        }
        r.ue()?; // bit_depth_luma_minus8
        r.ue()?; // bit_depth_chroma_minus8
        r.bit()?; // qpprime_y_zero_transform_bypass_flag
        if r.bit()? == 1 {
            let lists = if chroma_format == 3 { 12 } else { 8 };
            for i in 0..lists {
                if r.bit()? == 1 {
                    let size = if i < 6 { 16 } else { 64 };
                    let (mut last, mut next) = (8i32, 8i32);
                    for _ in 0..size {
                        if next != 0 {
                            // delta_scale is -128..=127; anything else is
                            // a broken SPS (found by fuzzing: it overflowed).
                            let delta = r.se()?;
                            if !(-128..=127).contains(&delta) {
                                return None;
                            }
                            next = (last + delta + 256) % 256;
                        }
                        last = if next == 0 { last } else { next };
                    }
                }
            }
        }
    }
    r.ue()?; // log2_max_frame_num_minus4
    match r.ue()? {
        0 => {
            r.ue()?; // log2_max_pic_order_cnt_lsb_minus4
        }
        1 => {
            r.bit()?;
            r.se()?;
            r.se()?;
            let n = r.ue()?;
            if n > 255 {
                return None;
            }
            for _ in 0..n {
                r.se()?;
            }
        }
        _ => {}
    }
    r.ue()?; // max_num_ref_frames
    r.bit()?; // gaps_in_frame_num_value_allowed_flag
    let width_mbs = r.ue()?.checked_add(1)?;
    let height_units = r.ue()?.checked_add(1)?;
    let frame_mbs_only = r.bit()?;
    if frame_mbs_only == 0 {
        r.bit()?; // mb_adaptive_frame_field_flag
    }
    r.bit()?; // direct_8x8_inference_flag
    let (mut cl, mut cr, mut ct, mut cb) = (0, 0, 0, 0);
    if r.bit()? == 1 {
        cl = r.ue()?;
        cr = r.ue()?;
        ct = r.ue()?;
        cb = r.ue()?;
    }
    let (sub_w, sub_h) = match chroma_format {
        1 => (2, 2),
        2 => (2, 1),
        _ => (1, 1),
    };
    let crop_x = if chroma_format == 0 { 1 } else { sub_w };
    let crop_y = (2 - frame_mbs_only) * if chroma_format == 0 { 1 } else { sub_h };
    // Every value is a 32-bit Exp-Golomb number from the stream: checked
    // arithmetic throughout (fuzzing found the unchecked products).
    let width = width_mbs
        .checked_mul(16)?
        .checked_sub(cl.checked_add(cr)?.checked_mul(crop_x)?)?;
    let height = height_units
        .checked_mul(16)?
        .checked_mul(2 - frame_mbs_only)?
        .checked_sub(ct.checked_add(cb)?.checked_mul(crop_y)?)?;
    (width > 0 && height > 0 && width <= 16384 && height <= 16384).then_some(SpsInfo {
        profile,
        level,
        width,
        height,
    })
}

/// Largest access unit the [`Depacketizer`] assembles; bigger pictures are
/// dropped (a 4K IDR at high quality is well under this).
pub const MAX_ACCESS_UNIT: usize = 4 * 1024 * 1024;

/// Reassembles RTP payloads (RFC 6184: single NAL unit, STAP-A, FU-A) into
/// Annex B access units. Feed packets in arrival order with their sequence
/// number, timestamp and marker bit; an access unit comes out on the marker
/// (or when the timestamp changes). A gap in sequence numbers or a broken
/// fragment drops the access unit under construction: a picture with a hole
/// in it would decode to garbage.
#[derive(Debug, Default)]
pub struct Depacketizer {
    au: Vec<u8>,
    time: Option<u32>,
    last_seq: Option<u16>,
    /// The picture under construction lost data.
    broken: bool,
    /// Inside an FU-A run.
    in_fu: bool,
}

impl Depacketizer {
    /// An empty depacketizer.
    pub fn new() -> Self {
        Self::default()
    }

    /// Adds one RTP payload; returns a complete access unit when this packet
    /// ends one.
    pub fn push(&mut self, seq: u16, time: u32, marker: bool, payload: &[u8]) -> Option<Vec<u8>> {
        let gap = self.last_seq.is_some_and(|l| l.wrapping_add(1) != seq);
        self.last_seq = Some(seq);
        let mut done = None;
        if self.time.is_some_and(|t| t != time) {
            // A new picture began without the previous one's marker.
            done = self.finish();
        }
        if gap {
            self.broken = true;
            self.in_fu = false;
        }
        self.time = Some(time);
        if !self.add(payload) {
            self.broken = true;
        }
        if self.au.len() > MAX_ACCESS_UNIT {
            self.broken = true;
            self.au.clear();
        }
        if marker {
            return self.finish().or(done);
        }
        done
    }

    fn finish(&mut self) -> Option<Vec<u8>> {
        let au = std::mem::take(&mut self.au);
        let ok = !self.broken && !self.in_fu && !au.is_empty();
        self.broken = false;
        self.in_fu = false;
        self.time = None;
        ok.then_some(au)
    }

    /// Appends a payload's NAL units; `false` when the payload is malformed.
    fn add(&mut self, payload: &[u8]) -> bool {
        let Some(&header) = payload.first() else {
            return false;
        };
        match nal_type(header) {
            1..=23 => {
                self.au.extend_from_slice(&[0, 0, 0, 1]);
                self.au.extend_from_slice(payload);
                !self.in_fu
            }
            STAP_A => {
                let mut rest = &payload[1..];
                while !rest.is_empty() {
                    if rest.len() < 2 {
                        return false;
                    }
                    let len = u16::from_be_bytes([rest[0], rest[1]]) as usize;
                    let Some(nal) = rest.get(2..2 + len) else {
                        return false;
                    };
                    if !nal.is_empty() {
                        self.au.extend_from_slice(&[0, 0, 0, 1]);
                        self.au.extend_from_slice(nal);
                    }
                    rest = &rest[2 + len..];
                }
                !self.in_fu
            }
            FU_A => {
                let Some(&fu) = payload.get(1) else {
                    return false;
                };
                let (start, end) = (fu & 0x80 != 0, fu & 0x40 != 0);
                if start {
                    if self.in_fu {
                        return false;
                    }
                    self.au
                        .extend_from_slice(&[0, 0, 0, 1, (header & 0xe0) | (fu & 0x1f)]);
                    self.in_fu = true;
                } else if !self.in_fu {
                    // A middle or end fragment whose start we never saw.
                    return false;
                }
                self.au.extend_from_slice(&payload[2..]);
                if end {
                    self.in_fu = false;
                }
                true
            }
            // STAP-B, MTAP, FU-B: not in packetization-mode 1.
            _ => false,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Reassembles payloads back into NAL units the way a receiver would.
    fn depacketize(payloads: &[Vec<u8>]) -> Vec<Vec<u8>> {
        let mut nals = Vec::new();
        let mut fu: Option<Vec<u8>> = None;
        for p in payloads {
            match nal_type(p[0]) {
                STAP_A => {
                    let mut rest = &p[1..];
                    while rest.len() >= 2 {
                        let len = u16::from_be_bytes([rest[0], rest[1]]) as usize;
                        nals.push(rest[2..2 + len].to_vec());
                        rest = &rest[2 + len..];
                    }
                }
                FU_A => {
                    if p[1] & 0x80 != 0 {
                        fu = Some(vec![(p[0] & 0xe0) | nal_type(p[1])]);
                    }
                    let buf = fu.as_mut().expect("fragment after a start");
                    buf.extend_from_slice(&p[2..]);
                    if p[1] & 0x40 != 0 {
                        nals.push(fu.take().expect("open fragment"));
                    }
                }
                _ => nals.push(p.clone()),
            }
        }
        nals
    }

    fn annex_b(nals: &[Vec<u8>]) -> Vec<u8> {
        let mut out = Vec::new();
        for n in nals {
            out.extend_from_slice(&[0, 0, 0, 1]);
            out.extend_from_slice(n);
        }
        out
    }

    #[test]
    fn split_handles_both_start_codes_and_junk() {
        let data = [
            9, 9, 0, 0, 1, 0x67, 1, 0, 0, 0, 1, 0x68, 2, 0, 0, 1, 0x65, 3, 0,
        ];
        let nals: Vec<&[u8]> = split_annex_b(&data).collect();
        assert_eq!(nals, vec![&[0x67, 1][..], &[0x68, 2], &[0x65, 3]]);
        assert_eq!(split_annex_b(&[]).count(), 0);
        assert_eq!(split_annex_b(&[0, 0, 1]).count(), 0);
        assert_eq!(split_annex_b(&[0, 0, 1, 0, 0, 1]).count(), 0);
    }

    #[test]
    fn round_trip_at_every_mtu() {
        let sps = vec![0x67, 0x42, 0xe0, 0x1f, 0xda];
        let pps = vec![0x68, 0xce, 0x3c, 0x80];
        let idr: Vec<u8> = std::iter::once(0x65)
            .chain((0..5000u32).map(|i| (i % 251) as u8 | 1))
            .collect();
        let slice: Vec<u8> = std::iter::once(0x41)
            .chain((0..700u32).map(|i| (i % 13) as u8 + 2))
            .collect();
        let input = vec![
            vec![0x09, 0xf0],
            sps.clone(),
            pps.clone(),
            idr.clone(),
            slice.clone(),
        ];
        for mtu in [64, 100, 700, 701, 702, 1200, 6000] {
            let payloads = Packetizer::new(mtu).packetize(&annex_b(&input));
            assert!(payloads.iter().all(|p| p.len() <= mtu), "mtu {mtu}");
            assert!(payload_starts_keyframe(&payloads[0]), "mtu {mtu}");
            let got = depacketize(&payloads);
            assert_eq!(
                got,
                vec![sps.clone(), pps.clone(), idr.clone(), slice.clone()],
                "mtu {mtu}"
            );
        }
    }

    #[test]
    fn keyframe_detection() {
        assert!(payload_starts_keyframe(&[0x65, 1]));
        assert!(!payload_starts_keyframe(&[0x41, 1]));
        assert!(payload_starts_keyframe(&[0x7c, 0x85, 1]));
        assert!(!payload_starts_keyframe(&[0x7c, 0x05, 1]));
        assert!(!payload_starts_keyframe(&[0x7c, 0x81, 1]));
        assert!(payload_starts_keyframe(&[0x78, 0, 2, 0x67, 1, 0, 1, 0x68]));
        assert!(!payload_starts_keyframe(&[0x78, 0, 9, 0x67]));
        assert!(!payload_starts_keyframe(&[]));
        assert!(!payload_starts_keyframe(&[0x7c]));
        assert!(access_unit_is_keyframe(&[0, 0, 1, 0x65, 0]));
    }

    #[test]
    fn no_panic_on_any_short_input() {
        for a in 0..=255u8 {
            for b in [0u8, 1, 0x80, 0xff] {
                let _ = payload_starts_keyframe(&[a, b]);
                let _ = payload_starts_keyframe(&[a, b, 0]);
                let _ = Packetizer::new(64).packetize(&[0, 0, 1, a, b]);
            }
        }
    }

    fn big_idr_au() -> Vec<u8> {
        let mut au = vec![0, 0, 0, 1, 0x67, 0x42, 0xe0, 0x1f, 0, 0, 0, 1, 0x68, 0xce];
        au.extend_from_slice(&[0, 0, 0, 1, 0x65]);
        au.extend((0..5000u32).map(|i| (i % 200) as u8 + 16));
        au
    }

    #[test]
    fn depacketizer_round_trips_the_packetizer() {
        let au = big_idr_au();
        let payloads = Packetizer::new(1100).packetize(&au);
        assert!(payloads.len() > 3, "STAP-A + several FU-A");
        let mut d = Depacketizer::new();
        let n = payloads.len();
        let mut out = None;
        for (i, p) in payloads.iter().enumerate() {
            out = d.push(100 + i as u16, 9000, i + 1 == n, p);
            assert_eq!(out.is_some(), i + 1 == n);
        }
        let got = out.expect("access unit");
        let want: Vec<&[u8]> = split_annex_b(&au).collect();
        let have: Vec<&[u8]> = split_annex_b(&got).collect();
        assert_eq!(want, have);
        assert!(access_unit_is_keyframe(&got));
    }

    #[test]
    fn depacketizer_drops_a_picture_with_a_hole_and_recovers() {
        let au = big_idr_au();
        let payloads = Packetizer::new(1100).packetize(&au);
        let n = payloads.len() as u16;
        let mut d = Depacketizer::new();
        // Every single lost packet breaks the picture, wherever it is.
        for lost in 0..n {
            let base = 1000 + lost * 100;
            // A whole small picture first, so a loss at the very start of
            // the next one is a visible gap.
            assert!(d.push(base - 1, 1, true, &[0x41, 9]).is_some());
            for (i, p) in payloads.iter().enumerate() {
                let i = i as u16;
                if i == lost {
                    continue;
                }
                let out = d.push(base + i, u32::from(base), i + 1 == n, p);
                assert!(out.is_none(), "lost {lost}, at {i}");
            }
            // A gap is charged to the picture it falls in, or — when it
            // is at a boundary (the lost packet was the last one) — to the
            // next as well: it cannot be told from a lost start. The one
            // after that is whole again.
            let mut last = None;
            for pic in 1..=2u16 {
                for (i, p) in payloads.iter().enumerate() {
                    let i = i as u16;
                    let seq = base + pic * n + i;
                    last = d.push(seq, u32::from(base) + u32::from(pic), i + 1 == n, p);
                }
                if lost + 1 < n {
                    assert!(last.is_some(), "picture {pic} after losing {lost}");
                }
            }
            assert!(last.is_some(), "recovered after losing {lost}");
            d = Depacketizer::new();
        }
    }

    #[test]
    fn depacketizer_survives_garbage() {
        let mut d = Depacketizer::new();
        let junk: [&[u8]; 7] = [
            &[],
            &[FU_A],
            &[STAP_A, 0],
            &[STAP_A, 0xff, 0xff, 1],
            &[FU_A, 0x45, 1, 2],
            &[0x1e, 1, 2],
            &[FU_A, 0x85, 1],
        ];
        for (i, j) in junk.iter().enumerate() {
            assert!(d.push(i as u16, 1, true, j).is_none(), "{j:?}");
        }
        // A new picture without a marker on the previous one still comes out.
        assert!(d.push(7, 2, false, &[0x65, 1, 2]).is_none());
        let au = d.push(8, 3, false, &[0x41, 3]);
        assert_eq!(au.as_deref(), Some(&[0, 0, 0, 1, 0x65, 1, 2][..]));
    }

    #[test]
    fn sps_sizes_with_and_without_cropping() {
        // x264 High profile 1280x720 (cropped from 1280x720: no crop).
        let hd = [
            0x67, 0x64, 0x00, 0x1f, 0xac, 0xd9, 0x40, 0x50, 0x05, 0xbb, 0x01, 0x10, 0x00, 0x00,
            0x03, 0x00, 0x10, 0x00, 0x00, 0x03, 0x03, 0xc0, 0xf1, 0x83, 0x19, 0x60,
        ];
        let info = parse_sps(&hd).expect("hd sps");
        assert_eq!((info.width, info.height, info.profile), (1280, 720, 100));
        // Baseline 1920x1080 (1088 coded, cropped by 8).
        let fhd = [
            0x67, 0x42, 0xc0, 0x28, 0xda, 0x01, 0xe0, 0x08, 0x9f, 0x96, 0x10, 0x00, 0x00, 0x03,
            0x00, 0x10, 0x00, 0x00, 0x03, 0x03, 0xc8, 0xf1, 0x83, 0x2a,
        ];
        let info = parse_sps(&fhd).expect("fhd sps");
        assert_eq!((info.width, info.height), (1920, 1080));
        // Every truncation: None or a value, never a panic.
        for i in 0..hd.len() {
            let _ = parse_sps(&hd[..i]);
        }
        assert!(parse_sps(&[0x68, 1, 2, 3]).is_none());
    }

    #[test]
    fn an_sps_with_an_impossible_scaling_delta_is_refused_not_overflowed() {
        // Found by fuzz/h264_rtp: High-family profile, scaling lists whose
        // delta_scale is far outside -128..=127.
        let nal = [
            0x67, 0x56, 0x56, 0x56, 0x56, 0x56, 0x56, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff,
            0x3a, 0xff, 0xff, 0xff, 0xff,
        ];
        let _ = parse_sps(&nal);
        let second = [
            0x67, 0x56, 0x56, 0x56, 0x56, 0x56, 0x56, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff,
            0xff, 0x00, 0x84, 0x00, 0x00, 0x00, 0x00, 0xff, 0xff, 0xff, 0x3c, 0x06,
        ];
        assert_eq!(parse_sps(&second), None);
    }

    #[test]
    fn an_sps_with_a_huge_crop_is_refused_not_overflowed() {
        // Found by fuzz/h264_rtp: cropping offsets near 2^32.
        let nal = [
            0x67, 0x80, 0xe5, 0xc0, 0x44, 0x61, 0x00, 0x00, 0x20, 0x00, 0x00, 0x00, 0x00, 0xc8,
            0x00, 0x00, 0x00, 0x46, 0xff, 0x03, 0x86, 0x4a, 0x4b, 0x4c, 0x00, 0x00, 0x4a, 0x4b,
            0x4c, 0x00, 0x00, 0x00, 0x00, 0x00, 0x07,
        ];
        let _ = parse_sps(&nal);
        let other = [
            0x67, 0x41, 0x42, 0xc0, 0x0d, 0x0e, 0x6d, 0x00, 0x00, 0x00, 0x10, 0x00, 0x00, 0x00,
            0x00, 0x00, 0xfd, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff,
        ];
        let _ = parse_sps(&other);
        let last = [
            0x67, 0x80, 0xbf, 0xe5, 0xc0, 0x1e, 0x72, 0xda, 0x02, 0x00, 0x02, 0x00, 0x3c,
        ];
        let _ = parse_sps(&last);
    }
}
