//! Sans-IO wire formats shared by every part of camgate.
//!
//! Nothing in this crate touches a socket, a clock or a runtime: callers pass
//! bytes in and take bytes or parsed values out, and time is a parameter.
//! That keeps every parser deterministic, fuzzable and usable from the server,
//! `camsim`, the end-to-end tests and the benchmark alike.
//!
//! * [`jpeg`]: checking that a camera message is one whole JPEG, reading its
//!   dimensions, and camgate's capture stamp (a JPEG comment segment).
//! * [`multipart`]: the `multipart/x-mixed-replace` MJPEG format, both the
//!   writer the server uses and a push/pull reader for clients.
//! * [`device`]: the WebSocket device protocol messages and close codes.
//! * [`h264`]: Annex B splitting and the RTP payload format (RFC 6184).
//! * [`flv`]: FLV tag bodies from RTMP (H.264 + AAC) into Annex B / raw AAC.
//! * [`fmp4`]: fragmented MP4 (CMAF) init segments and fragments.
//! * [`audio`]: Opus packet durations and G.711 to linear PCM.
//! * [`api`]: API paths, request/response types and the naming rules
//!   (slugs, room namespacing).
//!
//! ```
//! use camgate_protocols::{jpeg, multipart};
//! # let frame = camgate_protocols::jpeg::tests_support::tiny_jpeg();
//! let info = jpeg::check(&frame, jpeg::TrailingPadding::default()).expect("valid");
//! let part = multipart::Part::encode(&frame[..info.len]);
//! let mut reader = multipart::Reader::new(multipart::BOUNDARY);
//! reader.push(multipart::PREAMBLE);
//! reader.push(part.bytes());
//! let got = reader.pull().expect("no error").expect("one part");
//! assert_eq!(&got[..], &frame[..info.len]);
//! ```
#![deny(missing_docs)]

pub mod api;
pub mod audio;
pub mod device;
pub mod flv;
pub mod fmp4;
pub mod h264;
pub mod jpeg;
pub mod multipart;
