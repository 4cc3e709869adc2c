// Plays a DASH manifest with dash.js (from node_modules, injected into the
// page: no CDN) in headless Chromium and proves decoded frames advance.
// The manifest is fetched with a bearer token (the playback index needs
// one) and handed to dash.js as a blob URL; its media URLs are absolute.
//
// Usage: node dash.mjs <origin> <manifest-url> <token> [--seconds N]
// Prints one JSON line:
// {"frames":n,"width":w,"height":h,"periods":p,"currentTimeAdvanced":s,"errors":[...]}
import { launchChromium } from './launch.mjs';
import { fileURLToPath } from 'node:url';

// dash.js's package exports do not list its UMD bundle: load the file.
const bundle = fileURLToPath(
  new URL('./node_modules/dashjs/dist/modern/umd/dash.all.min.js', import.meta.url));
const args = process.argv.slice(2);
const origin = args.shift();
const url = args.shift();
const token = args.shift();
let seconds = 3;
while (args.length) {
  const a = args.shift();
  if (a === '--seconds') seconds = Number(args.shift());
}

const browser = await launchChromium();
try {
  const page = await browser.newPage();
  await page.goto(origin);
  await page.addScriptTag({ path: bundle });
  const result = await page.evaluate(async ({ url, token, seconds }) => {
    const errors = [];
    if (!window.dashjs) return { errors: ['dash.js did not load'] };
    const res = await fetch(url, { headers: { Authorization: `Bearer ${token}` } });
    if (!res.ok) return { errors: [`manifest: HTTP ${res.status}`] };
    const text = await res.text();
    const periods = (text.match(/<Period /g) || []).length;
    const blob = URL.createObjectURL(new Blob([text], { type: 'application/dash+xml' }));
    const video = document.createElement('video');
    video.muted = true;
    video.autoplay = true;
    video.width = 640;
    document.body.appendChild(video);
    const player = dashjs.MediaPlayer().create();
    player.on(dashjs.MediaPlayer.events.ERROR, e => errors.push(JSON.stringify(e.error || e)));
    player.initialize(video, blob, true);
    for (let i = 0; i < 100 && video.readyState < 2; i++) await new Promise(r => setTimeout(r, 100));
    await video.play().catch(e => errors.push(`play: ${e}`));
    let frames = 0;
    const count = () => { frames++; video.requestVideoFrameCallback(count); };
    video.requestVideoFrameCallback(count);
    const t0 = video.currentTime;
    await new Promise(r => setTimeout(r, seconds * 1000));
    return {
      frames, width: video.videoWidth, height: video.videoHeight, periods,
      currentTimeAdvanced: video.currentTime - t0, errors,
    };
  }, { url, token, seconds });
  console.log(JSON.stringify(result));
} catch (e) {
  console.log(JSON.stringify({ errors: [String(e)] }));
} finally {
  await browser.close();
}
