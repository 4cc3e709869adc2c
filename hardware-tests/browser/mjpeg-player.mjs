// Loads camgate's player page in headless Chromium and proves the MJPEG
// picture in its <img> changes: two canvas reads of the image, 1.5 s apart.
// Usage: node mjpeg-player.mjs <playerUrl> [screenshot.png]
// Prints one JSON line: {"width","height","changedPixels","samples","state"}.
import { launchChromium } from './launch.mjs';

const [url, shot] = process.argv.slice(2);
const browser = await launchChromium();
try {
  const page = await browser.newPage();
  await page.goto(url);
  await page.waitForFunction(() => {
    const img = document.getElementById('video');
    if (!img || img.naturalWidth === 0) return false;
    // Visible to a person: rendered, on screen, with a real size.
    const r = img.getBoundingClientRect();
    return getComputedStyle(img).display !== 'none' && r.width > 100 && r.height > 100;
  }, null, { timeout: 15000 });
  const read = () => page.evaluate(() => {
    const img = document.getElementById('video');
    const c = document.createElement('canvas');
    c.width = img.naturalWidth; c.height = img.naturalHeight;
    const ctx = c.getContext('2d');
    ctx.drawImage(img, 0, 0);
    return { w: c.width, h: c.height, data: Array.from(ctx.getImageData(0, 0, c.width, c.height).data) };
  });
  const a = await read();
  await page.waitForTimeout(1500);
  const b = await read();
  let changed = 0;
  for (let i = 0; i < a.data.length; i += 4) {
    if (Math.abs(a.data[i] - b.data[i]) + Math.abs(a.data[i + 1] - b.data[i + 1]) + Math.abs(a.data[i + 2] - b.data[i + 2]) > 30) changed++;
  }
  if (shot) await page.screenshot({ path: shot });
  const { state, shownWidth, shownHeight } = await page.evaluate(() => {
    const r = document.getElementById('video').getBoundingClientRect();
    return { state: document.getElementById('badge').textContent, shownWidth: Math.round(r.width), shownHeight: Math.round(r.height) };
  });
  console.log(JSON.stringify({ width: a.w, height: a.h, shownWidth, shownHeight, changedPixels: changed, samples: a.data.length / 4, state }));
} finally {
  await browser.close();
}
