// Plays an HLS playlist with hls.js (from node_modules, injected into the
// page: no CDN) in headless Chromium and proves decoded frames advance.
//
// Usage: node hls.mjs <origin> <playlist-url> [--seconds N] [--no-low-latency]
// Prints one JSON line:
// {"frames":n,"width":w,"height":h,"latency":s,"lowLatency":bool,
//  "currentTimeAdvanced":s,"audioDecodedBytes":n,"errors":[...]}
// (audioDecodedBytes is Chromium's count of audio bytes it decoded.)
import { launchChromium } from './launch.mjs';
import { createRequire } from 'node:module';

const require = createRequire(import.meta.url);
const args = process.argv.slice(2);
const origin = args.shift();
const url = args.shift();
let seconds = 4, lowLatency = true;
while (args.length) {
  const a = args.shift();
  if (a === '--seconds') seconds = Number(args.shift());
  else if (a === '--no-low-latency') lowLatency = false;
}

const browser = await launchChromium();
try {
  const page = await browser.newPage();
  await page.goto(origin);
  await page.addScriptTag({ path: require.resolve('hls.js/dist/hls.min.js') });
  const result = await page.evaluate(async ({ url, seconds, lowLatency }) => {
    const errors = [];
    if (!window.Hls || !Hls.isSupported()) return { errors: ['hls.js not supported (no MSE?)'] };
    const video = document.createElement('video');
    video.muted = true;
    video.autoplay = true;
    video.width = 640;
    document.body.appendChild(video);
    const hls = new Hls({ lowLatencyMode: lowLatency });
    hls.on(Hls.Events.ERROR, (_, d) => { if (d.fatal) errors.push(`${d.type}/${d.details}`); });
    hls.loadSource(url);
    hls.attachMedia(video);
    // Wait for the first frame (up to 10 s).
    for (let i = 0; i < 100 && video.readyState < 2; i++) await new Promise(r => setTimeout(r, 100));
    await video.play().catch(e => errors.push(`play: ${e}`));
    let frames = 0;
    const count = () => { frames++; video.requestVideoFrameCallback(count); };
    video.requestVideoFrameCallback(count);
    const t0 = video.currentTime;
    await new Promise(r => setTimeout(r, seconds * 1000));
    const latency = hls.latency;
    return {
      frames, width: video.videoWidth, height: video.videoHeight,
      latency, lowLatency: hls.lowLatencyMode,
      currentTimeAdvanced: video.currentTime - t0,
      audioDecodedBytes: video.webkitAudioDecodedByteCount ?? null, errors,
    };
  }, { url, seconds, lowLatency });
  console.log(JSON.stringify(result));
} catch (e) {
  console.log(JSON.stringify({ errors: [String(e)] }));
} finally {
  await browser.close();
}
