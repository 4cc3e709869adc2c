// Publishes Chromium's fake camera over WHIP and/or plays a stream over WHEP
// in headless Chromium, and proves decoded video frames advance.
//
// Usage: node webrtc.mjs <origin> [--whip <url> <token>] [--whep <url> <token|->]
//                        [--seconds N] [--page <url>]
// <origin> is an http://127.0.0.1:port page of camgate (getUserMedia needs a
// real origin). With --page, the WHEP side is camgate's own player page
// instead of this script's player.
// Prints one JSON line:
// {"published":bool,"frames":n,"width":w,"height":h,"firstFrameMs":ms,
//  "audioTracks":n,"videoCodec":"…","state":"…","audioCodec":"…",
//  "audioPackets":n,"audioEnergy":x}
import { launchChromium } from './launch.mjs';

const args = process.argv.slice(2);
const origin = args.shift();
let whip = null, whep = null, seconds = 3, playerPage = null;
while (args.length) {
  const a = args.shift();
  if (a === '--whip') whip = { url: args.shift(), token: args.shift() };
  else if (a === '--whep') whep = { url: args.shift(), token: args.shift() };
  else if (a === '--seconds') seconds = Number(args.shift());
  else if (a === '--page') playerPage = args.shift();
}

const browser = await launchChromium();
const result = { published: false };
try {
  if (whip) {
    const pub = await browser.newPage();
    await pub.goto(origin);
    const r = await pub.evaluate(async ({ url, token }) => {
      const stream = await navigator.mediaDevices.getUserMedia({ video: { width: 640, height: 480 }, audio: true });
      const pc = new RTCPeerConnection();
      for (const t of stream.getTracks()) pc.addTransceiver(t, { direction: 'sendonly' });
      // A loaded test machine must not make Chromium shrink the picture
      // the test checks: lower the frame rate instead.
      for (const s of pc.getSenders().filter(s => s.track?.kind === 'video')) {
        s.track.contentHint = 'detail';
      }
      await pc.setLocalDescription(await pc.createOffer());
      for (const s of pc.getSenders().filter(s => s.track?.kind === 'video')) {
        const p = s.getParameters();
        p.degradationPreference = 'maintain-resolution';
        await s.setParameters(p).catch(() => {});
      }
      const res = await fetch(url, {
        method: 'POST',
        headers: { 'Content-Type': 'application/sdp', Authorization: `Bearer ${token}` },
        body: pc.localDescription.sdp,
      });
      if (res.status !== 201) return { status: res.status, body: await res.text() };
      await pc.setRemoteDescription({ type: 'answer', sdp: await res.text() });
      window.__pc = pc;
      for (let i = 0; i < 100 && pc.connectionState !== 'connected'; i++) await new Promise(r => setTimeout(r, 100));
      return { status: 201, state: pc.connectionState, location: res.headers.get('Location') };
    }, whip);
    if (r.status !== 201 || r.state !== 'connected') {
      console.log(JSON.stringify({ ...result, error: 'whip', detail: r }));
      process.exit(1);
    }
    result.published = true;
    result.location = r.location;
  }
  if (whep && playerPage) {
    const page = await browser.newPage();
    const t0 = Date.now();
    await page.goto(playerPage);
    await page.waitForFunction(() => {
      const v = document.getElementById('webrtc');
      return v && v.videoWidth > 0 && v.style.display !== 'none';
    }, null, { timeout: 20000 });
    result.firstFrameMs = Date.now() - t0;
    const frames = await page.evaluate(async (seconds) => {
      const v = document.getElementById('webrtc');
      let n = 0;
      const tick = () => { n++; v.requestVideoFrameCallback(tick); };
      v.requestVideoFrameCallback(tick);
      await new Promise(r => setTimeout(r, seconds * 1000));
      return { n, w: v.videoWidth, h: v.videoHeight, state: document.getElementById('badge').textContent, mode: document.body.dataset.mode };
    }, seconds);
    Object.assign(result, { frames: frames.n, width: frames.w, height: frames.h, state: frames.state, mode: frames.mode });
  } else if (whep) {
    const page = await browser.newPage();
    await page.goto(origin);
    const r = await page.evaluate(async ({ url, token, seconds }) => {
      const pc = new RTCPeerConnection();
      pc.addTransceiver('video', { direction: 'recvonly' });
      pc.addTransceiver('audio', { direction: 'recvonly' });
      const v = document.createElement('video');
      v.muted = true; v.autoplay = true; v.playsInline = true;
      document.body.appendChild(v);
      const ms = new MediaStream();
      pc.ontrack = (e) => { ms.addTrack(e.track); v.srcObject = ms; };
      await pc.setLocalDescription(await pc.createOffer());
      const headers = { 'Content-Type': 'application/sdp' };
      if (token && token !== '-') headers.Authorization = `Bearer ${token}`;
      const t0 = performance.now();
      const res = await fetch(url, { method: 'POST', headers, body: pc.localDescription.sdp });
      if (res.status !== 201) return { status: res.status, body: await res.text() };
      await pc.setRemoteDescription({ type: 'answer', sdp: await res.text() });
      let first = null, n = 0;
      await new Promise((resolve) => {
        const tick = () => {
          n++;
          if (first === null) { first = performance.now() - t0; setTimeout(resolve, seconds * 1000); }
          v.requestVideoFrameCallback(tick);
        };
        v.requestVideoFrameCallback(tick);
        setTimeout(resolve, 20000);
      });
      const stats = await pc.getStats();
      let codec = null, audioCodec = null, audioPackets = 0, audioEnergy = 0;
      // Video receive figures from Chromium's own stats (freezes are
      // Chromium's definition: a frame later than 3× the mean delta or
      // +150 ms).
      let video = {};
      stats.forEach((s) => {
        if (s.type === 'codec' && s.mimeType && s.mimeType.startsWith('video/')) codec = s.mimeType;
        if (s.type === 'codec' && s.mimeType && s.mimeType.startsWith('audio/')) audioCodec = s.mimeType;
        if (s.type === 'inbound-rtp' && s.kind === 'video') {
          video = {
            freezeCount: s.freezeCount ?? null,
            totalFreezesDuration: s.totalFreezesDuration ?? null,
            nackCount: s.nackCount ?? null, pliCount: s.pliCount ?? null,
            packetsLost: s.packetsLost ?? null, packetsReceived: s.packetsReceived ?? null,
            framesDecoded: s.framesDecoded ?? null,
          };
        }
        if (s.type === 'inbound-rtp' && s.kind === 'audio') {
          audioPackets = s.packetsReceived || 0;
          audioEnergy = s.totalAudioEnergy || 0;
        }
      });
      return {
        status: 201, frames: n, width: v.videoWidth, height: v.videoHeight, firstFrameMs: first,
        audioTracks: ms.getAudioTracks().length, videoCodec: codec, state: pc.connectionState,
        audioCodec, audioPackets, audioEnergy, video,
        location: res.headers.get('Location'),
      };
    }, { ...whep, seconds });
    if (r.status !== 201) {
      console.log(JSON.stringify({ ...result, error: 'whep', detail: r }));
      process.exit(1);
    }
    Object.assign(result, r);
    if (r.location) {
      const del = await page.evaluate(async (u) => (await fetch(u, { method: 'DELETE' })).status, new URL(r.location, origin).href);
      result.deleteStatus = del;
    }
  }
  console.log(JSON.stringify(result));
} finally {
  await browser.close();
}
