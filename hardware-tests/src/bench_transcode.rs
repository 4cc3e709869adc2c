//! `camgate-bench transcode`: VGA MJPEG → H.264 frames per second on one
//! core, camgate's transcoder next to ffmpeg doing the same conversion with
//! the same encoder (libopenh264) on the same input, plus the decoder
//! comparison behind camgate's choice (libjpeg-turbo to planes against the
//! pure-Rust zune-jpeg to YCbCr and jpeg-decoder to RGB with openh264's
//! RGB→I420 converter).

use std::path::Path;
use std::process::Command;
use std::time::{Duration, Instant};

use camgate::transcode::jpeg_h264::{H264Settings, JpegToH264};
use camgate_firmware_sim::frames::FrameSource;
use camgate_protocols::device::FrameSize;

/// Options of the transcode benchmark.
#[derive(Debug, Clone)]
pub struct TranscodeArgs {
    /// Seconds per measurement.
    pub seconds: u64,
    /// esp32-camera quality of the input frames.
    pub quality: u8,
    /// Core to pin this process and ffmpeg to (-1 = none).
    pub core: i32,
    /// Encoder bitrate, kbit/s.
    pub kbps: u32,
}

/// Pins this process (all threads) to `core`.
pub fn pin_self(core: i32) {
    if core < 0 {
        return;
    }
    let _ = Command::new("taskset")
        .args([
            "-a",
            "-p",
            "-c",
            &core.to_string(),
            &std::process::id().to_string(),
        ])
        .stdout(std::process::Stdio::null())
        .status();
}

fn per_frame(frames: u64, elapsed: Duration) -> (f64, f64) {
    let fps = frames as f64 / elapsed.as_secs_f64();
    (fps, 1000.0 / fps)
}

/// Runs the benchmark and prints a report.
pub fn run(args: TranscodeArgs) {
    pin_self(args.core);
    let source = FrameSource::ring(FrameSize::Vga, args.quality, 60);
    let frames: Vec<Vec<u8>> = (0..60).map(|i| source.frame(i)).collect();
    let avg_kb = frames.iter().map(Vec::len).sum::<usize>() as f64 / frames.len() as f64 / 1024.0;
    println!(
        "input: 60 distinct VGA camsim frames, {avg_kb:.1} KB average (quality {}), core {}",
        args.quality, args.core
    );
    let budget = Duration::from_secs(args.seconds);

    // camgate: the whole per-frame pipeline.
    let mut t = JpegToH264::new(H264Settings {
        bitrate_bps: args.kbps * 1000,
        max_fps: 30.0,
        keyframe_interval: 150,
    });
    let (mut n, mut dec_us, mut enc_us, mut bytes) = (0u64, 0u64, 0u64, 0usize);
    let start = Instant::now();
    while start.elapsed() < budget {
        let f = &frames[(n % 60) as usize];
        let packets = t.transcode(f, (n * 3000) as u32).expect("transcode");
        bytes += packets.iter().map(|p| p.payload.len()).sum::<usize>();
        dec_us += t.last.decode_us;
        enc_us += t.last.encode_us;
        n += 1;
    }
    let (fps, ms) = per_frame(n, start.elapsed());
    println!(
        "camgate  : {fps:7.1} frames/s per core ({ms:.2} ms/frame: decode+I420 {:.2} ms, encode+packetize {:.2} ms), output {:.0} kbit/s at 30 fps",
        dec_us as f64 / n as f64 / 1000.0,
        enc_us as f64 / n as f64 / 1000.0,
        bytes as f64 * 8.0 / n as f64 * 30.0 / 1000.0
    );

    // Decoder comparison: libjpeg-turbo to planes (camgate) against
    // zune-jpeg → YCbCr → 2×2 chroma average, and jpeg-decoder → RGB →
    // openh264's RGB→I420.
    let mut t = JpegToH264::new(H264Settings::default());
    let (mut tn, start) = (0u64, Instant::now());
    while start.elapsed() < budget / 3 {
        t.decode(&frames[(tn % 60) as usize]).expect("decode");
        tn += 1;
    }
    let (_, tms) = per_frame(tn, start.elapsed());
    let (mut zn, start) = (0u64, Instant::now());
    let (mut ycbcr, mut u, mut v) = (Vec::new(), Vec::new(), Vec::new());
    while start.elapsed() < budget / 3 {
        zune_to_i420(&frames[(zn % 60) as usize], &mut ycbcr, &mut u, &mut v);
        zn += 1;
    }
    let (_, zms) = per_frame(zn, start.elapsed());
    let (mut jn, start) = (0u64, Instant::now());
    while start.elapsed() < budget / 3 {
        let f = &frames[(jn % 60) as usize];
        let mut d = jpeg_decoder::Decoder::new(&f[..]);
        let rgb = d.decode().expect("jpeg-decoder");
        let info = d.info().expect("info");
        let src =
            openh264::formats::RgbSliceU8::new(&rgb, (info.width as usize, info.height as usize));
        let yuv = openh264::formats::YUVBuffer::from_rgb8_source(src);
        std::hint::black_box(&yuv);
        jn += 1;
    }
    let (_, jms) = per_frame(jn, start.elapsed());
    println!(
        "decoders : libjpeg-turbo→I420 planes {tms:.2} ms/frame (camgate), zune-jpeg→YCbCr→I420 {zms:.2} ms/frame ({:.1}×), jpeg-decoder→RGB→I420 {jms:.2} ms/frame ({:.1}×)",
        zms / tms,
        jms / tms
    );

    // ffmpeg: the same frames as an MJPEG file, libopenh264, one thread.
    let dir = std::env::temp_dir().join(format!("camgate-bench-{}", std::process::id()));
    std::fs::create_dir_all(&dir).expect("temp dir");
    let input = dir.join("in.mjpeg");
    let reps = ((fps * args.seconds as f64) as usize / 60).max(2);
    let mut data = Vec::new();
    for _ in 0..reps {
        for f in &frames {
            data.extend_from_slice(f);
        }
    }
    std::fs::write(&input, &data).expect("write input");
    let total = reps * 60;
    // The same encoder (Debian's libopenh264) driven by GStreamer: Debian's
    // ffmpeg 5.1 is not built with libopenh264.
    match gstreamer_openh264(&input, total, args.kbps, args.core, true) {
        Some(gfps) => {
            let dec = gstreamer_openh264(&input, total, args.kbps, args.core, false)
                .map(|d| format!("{:.2}", 1000.0 / d))
                .unwrap_or_else(|| "?".into());
            println!(
                "gstreamer: {gfps:7.1} frames/s per core ({:.2} ms/frame, of which jpegdec+I420 {dec} ms; openh264enc, same encoder library)\nratio    : camgate / gstreamer-openh264 = {:.2}",
                1000.0 / gfps,
                fps / gfps
            )
        }
        None => println!("gstreamer: not available (gstreamer1.0-tools + plugins-good/bad)"),
    }
    match ffmpeg(&input, total, args.kbps, args.core) {
        Some(ffps) => println!(
            "ffmpeg   : {ffps:7.1} frames/s per core (mjpeg decoder + libx264 ultrafast/zerolatency baseline, -threads 1: a different encoder)\nratio    : camgate / ffmpeg-x264 = {:.2}",
            fps / ffps
        ),
        None => println!("ffmpeg   : not available (Debian's ffmpeg)"),
    }
    let _ = std::fs::remove_dir_all(&dir);
}

/// The pure-Rust alternative: zune-jpeg to interleaved YCbCr, then the
/// Y plane copied out and the chroma averaged 2×2 (I420).
fn zune_to_i420(jpeg: &[u8], ycbcr: &mut Vec<u8>, u: &mut Vec<u8>, v: &mut Vec<u8>) {
    use zune_core::bytestream::ZCursor;
    use zune_core::colorspace::ColorSpace;
    use zune_core::options::DecoderOptions;
    let options = DecoderOptions::default().jpeg_set_out_colorspace(ColorSpace::YCbCr);
    let mut d = zune_jpeg::JpegDecoder::new_with_options(ZCursor::new(jpeg), options);
    d.decode_headers().expect("zune headers");
    let (w, h) = d.dimensions().expect("dimensions");
    ycbcr.resize(w * h * 3, 0);
    d.decode_into(ycbcr).expect("zune decode");
    let mut y = vec![0u8; w * h];
    for (o, px) in y.iter_mut().zip(ycbcr.chunks_exact(3)) {
        *o = px[0];
    }
    std::hint::black_box(&y);
    let cw = w / 2;
    u.resize(cw * (h / 2), 0);
    v.resize(cw * (h / 2), 0);
    for crow in 0..h / 2 {
        let a = &ycbcr[2 * crow * w * 3..(2 * crow + 1) * w * 3];
        let b = &ycbcr[(2 * crow + 1) * w * 3..(2 * crow + 2) * w * 3];
        for (i, (pa, pb)) in a.chunks_exact(6).zip(b.chunks_exact(6)).enumerate() {
            let cb = pa[1] as u16 + pa[4] as u16 + pb[1] as u16 + pb[4] as u16;
            let cr = pa[2] as u16 + pa[5] as u16 + pb[2] as u16 + pb[5] as u16;
            u[crow * cw + i] = ((cb + 2) / 4) as u8;
            v[crow * cw + i] = ((cr + 2) / 4) as u8;
        }
    }
}

/// GStreamer's frames per second for the same conversion with openh264enc,
/// pinned to one core (wall time on an otherwise idle core ≥ CPU time, so
/// this flatters camgate by nothing).
/// With `encode` false the pipeline stops after the decode to I420.
fn gstreamer_openh264(
    input: &Path,
    frames: usize,
    kbps: u32,
    core: i32,
    encode: bool,
) -> Option<f64> {
    let mut cmd = Command::new("taskset");
    cmd.args(["-c", &core.max(0).to_string(), "gst-launch-1.0", "-q"]);
    cmd.arg("filesrc")
        .arg(format!("location={}", input.display()))
        .args([
            "!",
            "image/jpeg,framerate=30/1",
            "!",
            "jpegparse",
            "!",
            "jpegdec",
        ])
        .args(["!", "videoconvert", "!", "video/x-raw,format=I420"]);
    if encode {
        cmd.args(["!", "openh264enc"])
            .arg(format!("bitrate={}", kbps * 1000))
            .args([
                "usage-type=camera",
                "rate-control=bitrate",
                "multi-thread=1",
            ]);
    }
    let start = Instant::now();
    let out = cmd.args(["!", "fakesink", "sync=false"]).output().ok()?;
    let wall = start.elapsed().as_secs_f64();
    if !out.status.success() {
        eprintln!("{}", String::from_utf8_lossy(&out.stderr));
        return None;
    }
    Some(frames as f64 / wall)
}

/// ffmpeg's frames per CPU-second for the conversion with libx264, from its
/// `-benchmark` user+system time.
fn ffmpeg(input: &Path, frames: usize, kbps: u32, core: i32) -> Option<f64> {
    let mut cmd = if core >= 0 {
        let mut c = Command::new("taskset");
        c.args(["-c", &core.to_string(), "ffmpeg"]);
        c
    } else {
        Command::new("ffmpeg")
    };
    let out = cmd
        .args(["-hide_banner", "-nostdin", "-benchmark", "-threads", "1"])
        .args(["-f", "mjpeg", "-framerate", "30", "-i"])
        .arg(input)
        .args([
            "-c:v",
            "libx264",
            "-preset",
            "ultrafast",
            "-tune",
            "zerolatency",
        ])
        .args([
            "-profile:v",
            "baseline",
            "-x264-params",
            "threads=1",
            "-b:v",
        ])
        .arg(format!("{kbps}k"))
        .args(["-f", "null", "-"])
        .output()
        .ok()?;
    if !out.status.success() {
        eprintln!("{}", String::from_utf8_lossy(&out.stderr));
        return None;
    }
    let err = String::from_utf8_lossy(&out.stderr);
    // "bench: utime=1.234s stime=0.012s rtime=1.250s"
    let line = err.lines().find(|l| l.starts_with("bench: utime="))?;
    let field = |name: &str| -> Option<f64> {
        line.split_whitespace()
            .find_map(|w| w.strip_prefix(name))?
            .trim_end_matches('s')
            .parse()
            .ok()
    };
    let cpu = field("utime=")? + field("stime=")?;
    Some(frames as f64 / cpu)
}
