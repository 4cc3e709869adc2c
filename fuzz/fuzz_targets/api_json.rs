//! The API's JSON bodies as camgate's types read them: any bytes are
//! refused or accepted without panicking, and an accepted body written back
//! out reads the same again.
#![no_main]
use camgate_protocols::api::{CreateApp, MintIngress, MintJoinToken, MintWsIngest, PatchApp};
use libfuzzer_sys::fuzz_target;

fn round_trip<T: serde::de::DeserializeOwned + serde::Serialize>(data: &[u8]) {
    if let Ok(v) = serde_json::from_slice::<T>(data) {
        let text = serde_json::to_string(&v).expect("serializes");
        let again: T = serde_json::from_str(&text).expect("own output parses");
        assert_eq!(serde_json::to_string(&again).expect("serializes"), text);
    }
}

fuzz_target!(|data: &[u8]| {
    round_trip::<MintWsIngest>(data);
    round_trip::<MintJoinToken>(data);
    round_trip::<MintIngress>(data);
    round_trip::<CreateApp>(data);
    round_trip::<PatchApp>(data);
    let _ = camgate_protocols::api::validate_slug(std::str::from_utf8(data).unwrap_or(""));
});
