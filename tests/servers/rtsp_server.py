"""A real RTSP server for the live-source tests: GStreamer's gst-rtsp-server through PyGObject.

Run by the SYSTEM python (`/usr/bin/python3`, where Debian's python3-gi lives; the venv has no
`gi`), as a child of the test, on 127.0.0.1:

    /usr/bin/python3 tests/servers/rtsp_server.py --frames clip.bgr --width 384 --height 216 \
        [--fps 15] [--port 0] [--user U --password P]

It serves H.264 (x264, zerolatency) at rtsp://127.0.0.1:PORT/cam, looping over the raw BGR
frames in `--frames` (W*H*3 bytes each, decoded by the test from a real picture), and prints
`READY <port>` once it listens. With --user/--password it demands HTTP basic auth, so that
credentials in the client's URL are exercised for real. `--check` only says whether everything
the server needs is installed (exit 0), or what is missing (exit 3).

Each frame carries two stripes of 16x16 black/white blocks that survive the encoder: the top one
is CLOCK_MONOTONIC in ms (mod 2**24) when the frame was handed to the encoder, the next one a
frame counter (mod 2**24). CLOCK_MONOTONIC is shared by every process on the machine, so the
client can measure capture-to-decode latency and see that frames are fresh and in order.

It exits when stdin closes (the test died), on SIGTERM/SIGINT, or after --max-seconds.
"""

from __future__ import annotations

import argparse
import signal
import sys
import time
from typing import Any

BITS = 24
BLOCK = 16
ELEMENTS = {
    "appsrc": "gstreamer1.0-plugins-base",
    "videoconvert": "gstreamer1.0-plugins-base",
    "x264enc": "gstreamer1.0-plugins-ugly",
    "rtph264pay": "gstreamer1.0-plugins-good",
    "rtpbin": "gstreamer1.0-plugins-good",
}
HINT = "install them with: bash tests/system-packages.sh"


def _load_gi() -> tuple[Any, Any, Any]:
    """(Gst, GstRtspServer, GLib), or exit 3 with what is missing."""
    try:
        import gi

        gi.require_version("Gst", "1.0")
        gi.require_version("GstRtspServer", "1.0")
        from gi.repository import GLib, Gst, GstRtspServer
    except (ImportError, ValueError) as exc:
        print(f"MISSING python3-gi / gir1.2-gst-rtsp-server-1.0 ({exc}); {HINT}", flush=True)
        sys.exit(3)
    Gst.init(None)
    absent = [f"{e} ({pkg})" for e, pkg in ELEMENTS.items() if not Gst.ElementFactory.find(e)]
    if absent:
        print(f"MISSING GStreamer elements {', '.join(absent)}; {HINT}", flush=True)
        sys.exit(3)
    return Gst, GstRtspServer, GLib


def stamp(frame: bytearray, width: int, row: int, value: int) -> None:
    """Write `value` as BITS blocks (MSB first, white = 1) into block row `row` of a BGR frame."""
    for bit in range(BITS):
        on = (value >> (BITS - 1 - bit)) & 1
        block = (b"\xff" if on else b"\x00") * (BLOCK * 3)
        x = bit * BLOCK * 3
        for y in range(row * BLOCK, (row + 1) * BLOCK):
            start = y * width * 3 + x
            frame[start : start + BLOCK * 3] = block


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--frames", help="raw BGR frames, width*height*3 bytes each")
    parser.add_argument("--width", type=int, default=384)
    parser.add_argument("--height", type=int, default=216)
    parser.add_argument("--fps", type=int, default=15)
    parser.add_argument("--port", type=int, default=0, help="0: any free port")
    parser.add_argument("--user")
    parser.add_argument("--password")
    parser.add_argument("--max-seconds", type=float, default=120.0)
    parser.add_argument("--check", action="store_true")
    args = parser.parse_args()

    Gst, GstRtspServer, GLib = _load_gi()
    if args.check:
        print("ok", flush=True)
        return 0
    if args.width < BITS * BLOCK or args.height < 2 * BLOCK:
        parser.error(f"frames must be at least {BITS * BLOCK}x{2 * BLOCK} for the stamps")
    size = args.width * args.height * 3
    with open(args.frames, "rb") as f:
        data = f.read()
    if not data or len(data) % size:
        parser.error(f"{args.frames}: not a whole number of {args.width}x{args.height} BGR frames")
    frames = [data[i : i + size] for i in range(0, len(data), size)]

    caps = f"video/x-raw,format=BGR,width={args.width},height={args.height},framerate={args.fps}/1"
    launch = (
        f"( appsrc name=src is-live=true do-timestamp=true format=time caps={caps} "
        "! videoconvert ! video/x-raw,format=I420 "
        f"! x264enc tune=zerolatency speed-preset=ultrafast key-int-max={args.fps} bitrate=3000 "
        "! video/x-h264,profile=constrained-baseline "
        "! rtph264pay name=pay0 pt=96 )"
    )
    sources: list[Any] = []  # the appsrc of every client's media

    def configured(_factory: Any, media: Any) -> None:
        src = media.get_element().get_by_name_recurse_up("src")
        sources.append(src)

        def gone(_media: Any) -> None:  # the client left: stop feeding its pipeline
            if src in sources:
                sources.remove(src)

        media.connect("unprepared", gone)

    ticks = 0

    def tick() -> bool:
        nonlocal ticks
        frame = bytearray(frames[ticks % len(frames)])
        stamp(frame, args.width, 0, (time.monotonic_ns() // 1_000_000) % (1 << BITS))
        stamp(frame, args.width, 1, ticks % (1 << BITS))
        ticks += 1
        for src in list(sources):
            src.emit("push-buffer", Gst.Buffer.new_wrapped(bytes(frame)))
        return True

    factory = GstRtspServer.RTSPMediaFactory()
    factory.set_launch(launch)
    factory.set_shared(True)  # like a camera: one encoder, clients join between keyframes
    factory.connect("media-configure", configured)
    server = GstRtspServer.RTSPServer()
    server.set_address("127.0.0.1")
    server.set_service(str(args.port))
    if args.user is not None:
        token = GstRtspServer.RTSPToken()
        token.set_string(GstRtspServer.RTSP_TOKEN_MEDIA_FACTORY_ROLE, args.user)
        auth = GstRtspServer.RTSPAuth()
        auth.add_basic(GstRtspServer.RTSPAuth.make_basic(args.user, args.password or ""), token)
        server.set_auth(auth)
        permissions = GstRtspServer.RTSPPermissions()
        for what in (
            GstRtspServer.RTSP_PERM_MEDIA_FACTORY_ACCESS,
            GstRtspServer.RTSP_PERM_MEDIA_FACTORY_CONSTRUCT,
        ):
            permissions.add_permission_for_role(args.user, what, True)
        factory.set_permissions(permissions)
    server.get_mount_points().add_factory("/cam", factory)

    loop = GLib.MainLoop()
    if server.attach(None) == 0:
        print(f"FAILED to listen on 127.0.0.1:{args.port}", flush=True)
        return 1
    GLib.timeout_add(max(1, round(1000 / args.fps)), tick)
    GLib.timeout_add(round(args.max_seconds * 1000), loop.quit)
    # stdin closing means the test that started us is gone: do not outlive it.
    GLib.io_add_watch(sys.stdin.fileno(), GLib.IO_IN | GLib.IO_HUP, lambda *_: loop.quit())
    for sig in (signal.SIGTERM, signal.SIGINT):
        GLib.unix_signal_add(GLib.PRIORITY_DEFAULT, sig, loop.quit)
    print(f"READY {server.get_bound_port()}", flush=True)
    loop.run()
    return 0


if __name__ == "__main__":
    sys.exit(main())
