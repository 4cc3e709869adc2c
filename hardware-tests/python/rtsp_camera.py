#!/usr/bin/python3
"""A real RTSP camera for the tests: Debian's GStreamer RTSP server.

Mounts, all live test sources:
  /h264       H.264 640x360 15 fps (1 s GOP)
  /h264aac    H.264 + AAC 48 kHz
  /h264pcmu   H.264 + G.711 mu-law 8 kHz
  /mjpeg      MJPEG (RFC 2435) 640x360 10 fps
  /h265       H.265 640x360 15 fps
  /bench      H.264 1280x720 30 fps at 2 Mbit/s, 1 s GOP (benchmarks; one
              shared encode for every client)

Usage: rtsp_camera.py PORT [USER PASSWORD]
With USER and PASSWORD every mount needs them (digest authentication).
Prints "ready <port>" on stdout once it listens; runs until killed.
"""

import os
import sys

import gi

gi.require_version("Gst", "1.0")
gi.require_version("GstRtsp", "1.0")
gi.require_version("GstRtspServer", "1.0")
from gi.repository import GLib, Gst, GstRtsp, GstRtspServer  # noqa: E402

VIDEO = (
    "videotestsrc is-live=true pattern=ball ! "
    "video/x-raw,format=I420,width=640,height=360,framerate={fps}/1 ! "
)
H264 = (
    VIDEO.format(fps=15)
    + "x264enc tune=zerolatency speed-preset=ultrafast key-int-max=15 bitrate=1000 ! "
    "video/x-h264,profile=baseline ! rtph264pay name=pay0 pt=96 config-interval=-1"
)
AAC = (
    " audiotestsrc is-live=true wave=sine freq=440 ! audioconvert ! audioresample ! "
    "audio/x-raw,rate=48000,channels=2 ! avenc_aac ! rtpmp4gpay name=pay1 pt=97"
)
PCMU = (
    " audiotestsrc is-live=true wave=sine freq=440 ! audioconvert ! audioresample ! "
    "audio/x-raw,rate=8000,channels=1 ! mulawenc ! rtppcmupay name=pay1 pt=0"
)
MOUNTS = {
    "/h264": "( " + H264 + " )",
    "/h264aac": "( " + H264 + AAC + " )",
    "/h264pcmu": "( " + H264 + PCMU + " )",
    "/mjpeg": "( "
    + VIDEO.format(fps=10)
    + "jpegenc quality=70 ! rtpjpegpay name=pay0 pt=26 )",
    "/bench": "( videotestsrc is-live=true pattern=smpte horizontal-speed=5 ! "
    "video/x-raw,format=I420,width=1280,height=720,framerate=30/1 ! "
    "x264enc tune=zerolatency speed-preset=ultrafast key-int-max=30 "
    "bitrate=2000 pass=cbr ! video/x-h264,profile=baseline ! "
    "rtph264pay name=pay0 pt=96 config-interval=-1 )",
    "/h265": "( "
    + VIDEO.format(fps=15)
    + "x265enc tune=zerolatency speed-preset=ultrafast key-int-max=15 ! "
    "rtph265pay name=pay0 pt=96 config-interval=-1 )",
}


def main():
    Gst.init(None)
    port = sys.argv[1]
    server = GstRtspServer.RTSPServer()
    server.set_address(os.environ.get("RTSP_CAMERA_ADDRESS", "127.0.0.1"))
    server.set_service(port)
    mounts = server.get_mount_points()
    auth = None
    if len(sys.argv) >= 4:
        auth = GstRtspServer.RTSPAuth()
        token = GstRtspServer.RTSPToken()
        token.set_string("media.factory.role", "camera-user")
        basic = GstRtspServer.RTSPAuth.make_basic(sys.argv[2], sys.argv[3])
        auth.add_basic(basic, token)
        auth.add_digest(sys.argv[2], sys.argv[3], token)
        # Digest: what IP cameras ask for, and the harder of the two.
        auth.set_supported_methods(GstRtsp.RTSPAuthMethod.DIGEST)
        server.set_auth(auth)
    for path, launch in MOUNTS.items():
        factory = GstRtspServer.RTSPMediaFactory()
        factory.set_launch(launch)
        factory.set_shared(True)
        if auth is not None:
            permissions = GstRtspServer.RTSPPermissions()
            permissions.add_role("camera-user")
            permissions.add_permission_for_role("camera-user", "media.factory.access", True)
            permissions.add_permission_for_role("camera-user", "media.factory.construct", True)
            factory.set_permissions(permissions)
        mounts.add_factory(path, factory)
    if server.attach(None) == 0:
        print("could not listen", flush=True)
        sys.exit(1)
    print(f"ready {server.get_bound_port()}", flush=True)
    GLib.MainLoop().run()


if __name__ == "__main__":
    main()
