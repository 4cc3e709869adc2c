"""An independent WebRTC peer (aiortc) for camgate's end-to-end tests.

Usage:
  aiortc_peer.py publish <whip-url> <token> <seconds>
  aiortc_peer.py play <whep-url> <token|-> <seconds>
  aiortc_peer.py chat <whep-url> <token|-> <seconds>

publish sends a moving 640x480 test picture and a 400 Hz tone over WHIP;
play receives over WHEP and counts decoded video and audio frames, with the
longest gap between video frames and the time spent in gaps over 200 ms.
chat plays over WHEP with a data channel, sends one chat message on it
once connected (claiming another sender, which camgate must ignore) and
collects every message the room sends it.
All print one JSON line and DELETE their session at the end.
"""

import array
import asyncio
import fractions
import json
import math
import sys
import time
import urllib.request
from urllib.parse import urljoin

import av
from aiortc import (
    AudioStreamTrack,
    RTCPeerConnection,
    RTCSessionDescription,
    VideoStreamTrack,
)


class Pattern(VideoStreamTrack):
    """A moving bright bar on a grey gradient, 640x480 at 30 fps."""

    W, H = 640, 480

    def __init__(self):
        super().__init__()
        self.n = 0
        self.row = bytes(x * 255 // self.W for x in range(self.W))

    async def recv(self):
        pts, time_base = await self.next_timestamp()
        col = (self.n * 8) % (self.W - 40)
        row = bytearray(self.row)
        row[col : col + 40] = b"\xff" * 40
        self.n += 1
        frame = av.VideoFrame(self.W, self.H, "yuv420p")
        for plane, value in zip(frame.planes, (None, 128, 96)):
            if value is None:
                data = bytes(row) * self.H
                width = self.W
            else:
                width = self.W // 2
                data = bytes([value]) * (width * self.H // 2)
            if plane.line_size == width:
                plane.update(data)
            else:
                padded = b"".join(
                    data[i : i + width] + bytes(plane.line_size - width)
                    for i in range(0, len(data), width)
                )
                plane.update(padded)
        frame.pts = pts
        frame.time_base = time_base
        return frame


class Tone(AudioStreamTrack):
    """A 400 Hz tone, 20 ms frames at 48 kHz (one frame computed once: 400 Hz
    fits a 20 ms frame exactly, so the same samples repeat seamlessly)."""

    PCM = array.array(
        "h",
        (int(math.sin(2 * math.pi * 400 * i / 48000) * 8000) for i in range(960)),
    ).tobytes()

    async def recv(self):
        # Paces 20 ms frames (of 8 kHz silence, so its pts counts 8 kHz).
        frame = await super().recv()
        out = av.AudioFrame(format="s16", layout="mono", samples=960)
        out.planes[0].update(self.PCM)
        out.sample_rate = 48000
        out.pts = frame.pts * 48000 // frame.sample_rate
        out.time_base = fractions.Fraction(1, 48000)
        return out


def post(url, token, sdp):
    headers = {"Content-Type": "application/sdp"}
    if token and token != "-":
        headers["Authorization"] = "Bearer " + token
    req = urllib.request.Request(url, data=sdp.encode(), headers=headers, method="POST")
    try:
        with urllib.request.urlopen(req, timeout=10) as r:
            return r.status, r.headers.get("Location"), r.read().decode()
    except urllib.error.HTTPError as e:
        return e.code, None, e.read().decode()


def delete(url):
    req = urllib.request.Request(url, method="DELETE")
    try:
        with urllib.request.urlopen(req, timeout=10) as r:
            return r.status
    except urllib.error.HTTPError as e:
        return e.code


async def wait_connected(pc, timeout=10):
    end = time.monotonic() + timeout
    while pc.connectionState != "connected" and time.monotonic() < end:
        await asyncio.sleep(0.05)
    return pc.connectionState


async def negotiate(pc, url, token):
    """WHIP/WHEP offer and answer, then waits for the connection. Returns
    (status, location, state), or None after printing the refusal."""
    await pc.setLocalDescription(await pc.createOffer())
    status, location, body = post(url, token, pc.localDescription.sdp)
    if status != 201:
        print(json.dumps({"status": status, "body": body}))
        await pc.close()
        return None
    await pc.setRemoteDescription(RTCSessionDescription(sdp=body, type="answer"))
    return status, location, await wait_connected(pc)


async def publish(url, token, seconds):
    pc = RTCPeerConnection()
    pc.addTransceiver(Pattern(), direction="sendonly")
    pc.addTransceiver(Tone(), direction="sendonly")
    negotiated = await negotiate(pc, url, token)
    if negotiated is None:
        return 1
    status, location, state = negotiated
    await asyncio.sleep(seconds)
    deleted = delete(urljoin(url, location))
    await pc.close()
    print(json.dumps({"status": status, "state": state, "deleteStatus": deleted}))
    return 0


async def play(url, token, seconds):
    pc = RTCPeerConnection()
    pc.addTransceiver("video", direction="recvonly")
    pc.addTransceiver("audio", direction="recvonly")
    counts = {"video": 0, "audio": 0, "width": 0, "height": 0, "first": None}
    # Freeze measurement: the longest gap between decoded frames, and the
    # time spent in gaps longer than 200 ms (what a viewer sees as frozen).
    gaps = {"last": None, "max": 0.0, "frozen": 0.0}
    tasks = []
    t0 = time.monotonic()

    async def consume(track):
        while True:
            try:
                frame = await track.recv()
            except Exception:
                return
            if track.kind == "video":
                now = time.monotonic()
                if counts["first"] is None:
                    counts["first"] = round((now - t0) * 1000)
                if gaps["last"] is not None:
                    gap = now - gaps["last"]
                    gaps["max"] = max(gaps["max"], gap)
                    if gap > 0.2:
                        gaps["frozen"] += gap
                gaps["last"] = now
                counts["video"] += 1
                counts["width"], counts["height"] = frame.width, frame.height
            else:
                counts["audio"] += 1

    @pc.on("track")
    def on_track(track):
        tasks.append(asyncio.ensure_future(consume(track)))

    negotiated = await negotiate(pc, url, token)
    if negotiated is None:
        return 1
    status, location, state = negotiated
    await asyncio.sleep(seconds)
    deleted = delete(urljoin(url, location))
    await pc.close()
    for t in tasks:
        t.cancel()
    print(
        json.dumps(
            {
                "status": status,
                "state": state,
                "frames": counts["video"],
                "audioFrames": counts["audio"],
                "width": counts["width"],
                "height": counts["height"],
                "firstFrameMs": counts["first"],
                "maxGapMs": round(gaps["max"] * 1000),
                "frozenMs": round(gaps["frozen"] * 1000),
                "deleteStatus": deleted,
            }
        )
    )
    return 0


async def chat(url, token, seconds):
    pc = RTCPeerConnection()
    pc.addTransceiver("video", direction="recvonly")
    channel = pc.createDataChannel("chat")
    received = []
    opened = asyncio.Event()

    @channel.on("open")
    def on_open():
        opened.set()

    @channel.on("message")
    def on_message(message):
        if isinstance(message, str):
            received.append(json.loads(message))

    negotiated = await negotiate(pc, url, token)
    if negotiated is None:
        return 1
    status, location, state = negotiated
    try:
        await asyncio.wait_for(opened.wait(), 10)
        channel.send(json.dumps({"topic": "chat", "message": "hello from aiortc", "from": "spoofed"}))
    except asyncio.TimeoutError:
        pass
    await asyncio.sleep(seconds)
    deleted = delete(urljoin(url, location))
    await pc.close()
    print(
        json.dumps(
            {
                "status": status,
                "state": state,
                "channelOpen": opened.is_set(),
                "received": received,
                "deleteStatus": deleted,
            }
        )
    )
    return 0


def main():
    mode, url, token, seconds = sys.argv[1], sys.argv[2], sys.argv[3], float(sys.argv[4])
    run = {"publish": publish, "play": play, "chat": chat}[mode]
    sys.exit(asyncio.run(run(url, token, seconds)))


if __name__ == "__main__":
    main()
