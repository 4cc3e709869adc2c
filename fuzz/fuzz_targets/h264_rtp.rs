//! H.264 over RTP (RFC 6184): the input is an access unit (Annex B) plus a
//! loss pattern. Splitting, SPS parsing and keyframe detection never
//! panic; packetizing and depacketizing without loss gives the NAL units
//! back; with loss (and timestamp jumps) the depacketizer never hands out a
//! picture that lost a packet.
#![no_main]
use camgate_protocols::h264::{self, Depacketizer, Packetizer};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Some((&control, au)) = data.split_first() else {
        return;
    };
    for nal in h264::split_annex_b(au) {
        let _ = h264::parse_sps(nal);
    }
    let _ = h264::access_unit_is_keyframe(au);
    let mtu = 64 + usize::from(control & 0x3f) * 8;
    let packets = Packetizer::new(mtu).packetize(au);
    for p in &packets {
        assert!(p.len() <= mtu);
        let _ = h264::payload_starts_keyframe(p);
    }
    // Access unit delimiters are not sent over RTP (documented).
    let nals: Vec<&[u8]> = h264::split_annex_b(au)
        .filter(|n| !n.is_empty() && h264::nal_type(n[0]) != h264::NAL_AUD)
        .collect();
    // The round trip holds for NAL units an encoder can make: types 1–23
    // (24–31 are RTP's own or unspecified), emulation prevention keeps
    // `00 00 0x` (x ≤ 3) out of them, and none ends in a zero byte.
    let valid = nals.iter().all(|n| {
        (1..=23).contains(&h264::nal_type(n[0]))
            && n[0] & 0x80 == 0
            && n.last() != Some(&0)
            && !n.windows(3).any(|w| w[0] == 0 && w[1] == 0 && w[2] <= 3)
    });
    // No loss: one access unit with the same NAL units.
    let mut d = Depacketizer::new();
    let mut out = None;
    for (i, p) in packets.iter().enumerate() {
        if let Some(a) = d.push(i as u16, 9000, i + 1 == packets.len(), p) {
            out = Some(a);
        }
    }
    if valid
        && !packets.is_empty()
        && let Some(a) = out
    {
        let got: Vec<&[u8]> = h264::split_annex_b(&a).filter(|n| !n.is_empty()).collect();
        assert_eq!(got, nals);
    }
    // Loss of one packet (chosen by `control`) of the second picture of a
    // stream: the damaged picture never comes out. (The loss of a stream's
    // very first packet cannot be seen: there is no sequence number before
    // it.)
    if packets.len() >= 2 {
        let lost = usize::from(control) % packets.len();
        let mut d = Depacketizer::new();
        let mut seq = 100u16;
        for (i, p) in packets.iter().enumerate() {
            seq = seq.wrapping_add(1);
            let _ = d.push(seq, 500, i + 1 == packets.len(), p);
        }
        for (i, p) in packets.iter().enumerate() {
            seq = seq.wrapping_add(1);
            if i == lost {
                continue;
            }
            let done = d.push(seq, 1000, i + 1 == packets.len(), p);
            assert!(done.is_none(), "a picture with a hole came out");
        }
        // The next picture (a timestamp jump) still decodes.
        for (i, p) in packets.iter().enumerate() {
            seq = seq.wrapping_add(1);
            let _ = d.push(
                seq,
                1000u32.wrapping_add(u32::from(control) << 20),
                i + 1 == packets.len(),
                p,
            );
        }
    }
});
