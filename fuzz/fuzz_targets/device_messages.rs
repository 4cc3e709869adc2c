//! Device-protocol text messages: parsing never panics, and every server
//! message camgate writes parses back to itself.
#![no_main]
use camgate_protocols::device::{DeviceMessage, ServerMessage};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    let _ = DeviceMessage::parse(text);
    if let Some(m) = ServerMessage::parse(text) {
        let again = ServerMessage::parse(&m.to_json()).expect("own output parses");
        assert_eq!(again.to_json(), m.to_json());
    }
});
