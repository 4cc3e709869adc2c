//! One attempt at pulling an RTSP camera with retina.
//!
//! DESCRIBE, SETUP of the first H.264 or MJPEG video stream and the first
//! AAC or G.711 audio stream, PLAY, then frames until the camera stops:
//!
//! * H.264 goes to an [`H264Source`] (passthrough to WebRTC, HLS, the
//!   keyframe cache). retina hands over Annex B access units with SPS/PPS
//!   in front of every keyframe.
//! * MJPEG (RFC 2435) frames are whole JPEGs: they go to the hub like a
//!   WebSocket camera's (MJPEG out as they are; WebRTC and HLS through the
//!   transcoder).
//! * AAC goes to HLS and, as Opus, to WebRTC; G.711 goes to WebRTC as it is.
//!
//! Every step up to PLAY must finish within `pull.connect_timeout_secs`, and
//! a camera sending no video for `pull.frame_timeout_secs` counts as gone.
//!
//! Camera quirks are retina's named policies, set per ingress:
//! `initialTimestamp` (cameras whose first RTP timestamp disagrees with the
//! RTP-Info header, e.g. some Reolink firmware) and `initialSeq` (cameras
//! whose RTP-Info `seq` is wrong, e.g. Geovision). Timestamps that jump
//! (a server joining a client to a running shared stream starts about a
//! GOP back) are tolerated; HLS moves a backwards step forward.

use std::time::Instant;

use camgate_protocols::flv::AacConfig;
use camgate_sfu::SourceKind;
use camgate_sfu::core::SourceCodec;
use futures_util::StreamExt;
use retina::client::{
    Credentials, InitialSequenceNumberPolicy, InitialTimestampPolicy, PlayOptions, Session,
    SessionOptions, SetupOptions, Transport,
};
use retina::codec::{CodecItem, FrameFormat, ParametersRef, VideoParametersCodec};
use tracing::{debug, info, warn};

use super::{Attempt, PullError, credentials};
use crate::ingest::source::H264Source;

/// Annex B H.264 with parameter sets before every keyframe, raw AAC.
const FORMAT: FrameFormat = FrameFormat {
    h26x_framing: retina::codec::h26x::Framing::AnnexB,
    parameter_set_insertion: retina::codec::ParameterSetInsertion::EachKeyFrame,
    aac_framing: retina::codec::aac::Framing::Raw,
};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Video {
    H264,
    Jpeg,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Audio {
    Aac,
    G711(SourceCodec),
}

/// The first line of a retina error, without connection details.
fn short(e: &retina::Error) -> String {
    let s = e.to_string();
    let line = s.lines().next().unwrap_or_default();
    line.chars().take(160).collect()
}

fn classify(e: retina::Error) -> PullError {
    match e.status_code() {
        Some(401 | 403) => return PullError::Unauthorized,
        Some(404) => return PullError::Protocol("the camera has no such stream (404)".into()),
        _ => {}
    }
    let s = short(&e);
    match s.strip_prefix("Unable to connect to RTSP server: ") {
        Some(reason) => PullError::Unreachable(reason.to_owned()),
        None => PullError::Protocol(s),
    }
}

/// Connects, publishes until the camera stops; an `Err` says why.
pub async fn run(a: &Attempt<'_>) -> Result<(), PullError> {
    let mut url = url::Url::parse(a.url).map_err(|_| PullError::Protocol("invalid url".into()))?;
    let creds = credentials(&url).map(|(username, password)| Credentials { username, password });
    let _ = url.set_username("");
    let _ = url.set_password(None);
    let options = SessionOptions::default()
        .creds(creds)
        .user_agent(format!("camgate/{}", env!("CARGO_PKG_VERSION")));
    let transport = if a.options.udp {
        Transport::Udp(Default::default())
    } else {
        Transport::Tcp(Default::default())
    };
    // Timestamps that jump are tolerated, not fatal: a server joining a
    // client to a running shared stream (GStreamer's RTSP server, NVRs)
    // starts about one GOP back. HLS moves a backwards step forward.
    let mut play = PlayOptions::default();
    if let Some(p) = &a.options.initial_timestamp
        && let Ok(policy) = p.parse::<InitialTimestampPolicy>()
    {
        play = play.initial_timestamp(policy);
    }
    if let Some(p) = &a.options.initial_seq
        && let Ok(policy) = p.parse::<InitialSequenceNumberPolicy>()
    {
        play = play.initial_seq(policy);
    }
    let connect = async {
        let mut session = Session::describe(url, options).await.map_err(classify)?;
        let streams = session.streams();
        let video = streams.iter().enumerate().find_map(|(i, s)| {
            (s.media() == "video")
                .then(|| match s.encoding_name() {
                    "h264" => Some((i, Video::H264)),
                    "jpeg" => Some((i, Video::Jpeg)),
                    _ => None,
                })
                .flatten()
        });
        let Some((video_i, video)) = video else {
            let names: Vec<String> = streams
                .iter()
                .filter(|s| s.media() == "video")
                .map(|s| s.encoding_name().to_uppercase())
                .collect();
            return Err(PullError::UnsupportedCodec(if names.is_empty() {
                "(the camera offers no video)".into()
            } else {
                format!(
                    "{} (camgate relays H.264 and MJPEG cameras)",
                    names.join(", ")
                )
            }));
        };
        let audio = streams.iter().enumerate().find_map(|(i, s)| {
            (s.media() == "audio")
                .then(|| match s.encoding_name() {
                    "mpeg4-generic" => Some((i, Audio::Aac)),
                    "pcmu" => Some((i, Audio::G711(SourceCodec::Pcmu))),
                    "pcma" => Some((i, Audio::G711(SourceCodec::Pcma))),
                    _ => None,
                })
                .flatten()
        });
        let setup = || {
            SetupOptions::default()
                .transport(transport.clone())
                .frame_format(FORMAT)
        };
        session.setup(video_i, setup()).await.map_err(classify)?;
        let audio = match audio {
            Some((i, kind)) => match session.setup(i, setup()).await {
                Ok(()) => Some((i, kind)),
                Err(e) => {
                    debug!(error = %short(&e), "audio not set up; video only");
                    None
                }
            },
            None => None,
        };
        let playing = session.play(play).await.map_err(classify)?;
        let demuxed = playing.demuxed().map_err(classify)?;
        Ok((demuxed, video_i, video, audio))
    };
    let (mut demuxed, video_i, video, audio) = tokio::time::timeout(a.connect_timeout(), connect)
        .await
        .map_err(|_| PullError::Timeout("no answer from the camera"))??;
    info!(?video, ?audio, "rtsp camera playing");

    let mut sink = match video {
        Video::H264 => Sink::H264(Box::new(
            H264Source::open(a.state, a.key, SourceKind::Rtsp, &a.ingress.id)
                .map_err(|_| PullError::RoomBusy(a.key.room.clone()))?,
        )),
        Video::Jpeg => Sink::Jpeg(
            a.state
                .hub
                .publish(
                    a.key,
                    SourceKind::RtspJpeg,
                    &a.ingress.id,
                    crate::webrtc::next_conn(),
                )
                .map_err(|_| PullError::RoomBusy(a.key.room.clone()))?,
        ),
    };
    let kind = match video {
        Video::H264 => SourceKind::Rtsp,
        Video::Jpeg => SourceKind::RtspJpeg,
    };
    let row = super::http::StreamRow::start(a, kind).await;
    let result = pump(a, &mut demuxed, &mut sink, video_i, audio).await;
    if let Sink::H264(src) = sink {
        src.close().await;
    }
    row.end(a).await;
    result
}

enum Sink {
    H264(Box<H264Source>),
    Jpeg(crate::hub::PublisherGuard),
}

async fn pump(
    a: &Attempt<'_>,
    demuxed: &mut retina::client::Demuxed,
    sink: &mut Sink,
    video_i: usize,
    audio: Option<(usize, Audio)>,
) -> Result<(), PullError> {
    let mut configured = false;
    let mut started = false;
    let mut warned_loss = false;
    loop {
        let item = tokio::time::timeout(a.frame_timeout(), demuxed.next())
            .await
            .map_err(|_| PullError::Timeout("the camera stopped sending"))?;
        let item = match item {
            None => return Err(PullError::Ended),
            Some(Err(e)) => return Err(classify(e)),
            Some(Ok(item)) => item,
        };
        match item {
            CodecItem::VideoFrame(f) if f.stream_id() == video_i => {
                if f.loss() > 0 && !warned_loss {
                    warn!(
                        lost = f.loss(),
                        "camera packets lost (logged once per connection)"
                    );
                    warned_loss = true;
                }
                a.live.add_bytes(f.data().len());
                let ms =
                    f.timestamp().elapsed() * 1000 / i64::from(f.timestamp().clock_rate().get());
                match sink {
                    Sink::H264(src) => {
                        if (!configured || f.has_new_parameters())
                            && let Some(ParametersRef::Video(p)) =
                                demuxed.streams()[video_i].parameters()
                            && let VideoParametersCodec::H264 { sps, pps } = p.codec_params()
                        {
                            let (w, h) = p.pixel_dimensions();
                            a.live.set_size(w, h);
                            src.video_config(sps, pps, (w, h)).await;
                            configured = true;
                        }
                        if !configured {
                            continue;
                        }
                        crate::metrics::METRICS
                            .frame_in(crate::metrics::Source::Rtsp, f.data().len());
                        src.video(ms, 0, f.data()).await;
                    }
                    Sink::Jpeg(seat) => {
                        if !configured && let Ok(header) = turbojpeg::read_header(f.data()) {
                            a.live.set_size(header.width as u32, header.height as u32);
                            configured = true;
                        }
                        crate::metrics::METRICS
                            .frame_in(crate::metrics::Source::Rtsp, f.data().len());
                        seat.room().publish(f.data(), Instant::now());
                    }
                }
                if !started {
                    started = true;
                    a.live.publishing();
                }
            }
            CodecItem::AudioFrame(f) => {
                let (Some((audio_i, kind)), Sink::H264(src)) = (audio, &mut *sink) else {
                    continue;
                };
                if f.stream_id() != audio_i {
                    continue;
                }
                a.live.add_bytes(f.data().len());
                match kind {
                    Audio::Aac => {
                        if !src.has_audio()
                            && let Some(ParametersRef::Audio(p)) =
                                demuxed.streams()[audio_i].parameters()
                        {
                            match AacConfig::parse(p.extra_data()) {
                                Ok(c) => src.aac_config(&c).await,
                                Err(e) => {
                                    debug!(error = %e, "bad AAC config; video only");
                                    continue;
                                }
                            }
                        }
                        let ms = f.timestamp().elapsed() * 1000
                            / i64::from(f.timestamp().clock_rate().get());
                        src.aac(ms, f.data()).await;
                    }
                    Audio::G711(codec) => {
                        if !src.has_audio() {
                            src.g711_config(codec).await;
                        }
                        let ms = f.timestamp().elapsed() * 1000
                            / i64::from(f.timestamp().clock_rate().get());
                        src.g711(f.timestamp().timestamp() as u32, ms, f.data())
                            .await;
                    }
                }
            }
            _ => {}
        }
    }
}
