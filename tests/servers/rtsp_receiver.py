"""An RTSP receiver for the stream-out tests: FFmpeg's own RTSP demuxer in listen mode (what
`ffmpeg -rtsp_flags listen -i rtsp://...` does), through PyAV, so the stream out is checked
against a real, independent RTSP implementation.

Run by the venv python as a child of the test:

    python tests/servers/rtsp_receiver.py --port PORT --out frames.npz [--max-seconds 60]

It waits at rtsp://127.0.0.1:PORT/veil for one publisher (ANNOUNCE, SETUP over TCP, RECORD),
decodes every frame it sends and prints `listening` once its socket listens (it looks for the
port in /proc/net/tcp: av.open blocks in accept(), and a probe connection would be taken for the
publisher), then `frame PTS` for each decoded frame. When the publisher leaves (EOF), or after
--max-seconds, it writes the frames to --out (`frames`: N x H x W x 3 BGR, `pts` in `num`/`den`
seconds, `key`: keyframe or not) and exits 0. A receiver that is killed saves nothing.

Its timestamps are FFmpeg's: the RTP timestamps made relative to the publisher's first RTCP
sender report, i.e. the publisher's own less a constant (about the handshake's duration). The
first frame of a connection comes out of FFmpeg's demuxer with none at all: it is kept, with
`pts` = NO_PTS.
"""

from __future__ import annotations

import argparse
import sys
import threading
import time
from pathlib import Path

import av
import numpy as np

LISTEN = "0A"  # TCP state LISTEN in /proc/net/tcp
NO_PTS = np.iinfo(np.int64).min  # a frame that came without a timestamp


def listening(port: int) -> bool:
    want = f":{port:04X}"
    for table in ("/proc/net/tcp", "/proc/net/tcp6"):
        try:
            rows = Path(table).read_text().splitlines()[1:]
        except OSError:
            continue
        for row in rows:
            fields = row.split()
            if len(fields) > 3 and fields[1].endswith(want) and fields[3] == LISTEN:
                return True
    return False


def announce(port: int, stop: threading.Event) -> None:
    while not stop.is_set():
        if listening(port):
            print("listening", flush=True)
            return
        time.sleep(0.01)


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--out", type=Path, required=True)
    parser.add_argument("--max-seconds", type=float, default=60.0)
    args = parser.parse_args()

    stop = threading.Event()
    threading.Thread(target=announce, args=(args.port, stop), daemon=True).start()
    frames: list[np.ndarray] = []
    stamps: list[int] = []
    keys: list[bool] = []
    time_base = None
    deadline = time.monotonic() + args.max_seconds
    try:
        # listen_timeout: seconds to wait for the publisher; timeout: socket I/O, microseconds
        # (a publisher that goes quiet ends the read instead of hanging it).
        container = av.open(
            f"rtsp://127.0.0.1:{args.port}/veil",
            options={
                "rtsp_flags": "listen",
                "listen_timeout": str(int(args.max_seconds)),
                "timeout": str(5_000_000),
            },
        )
    except av.FFmpegError as exc:
        stop.set()
        print(f"error {type(exc).__name__}", flush=True)
        return 1
    try:
        stream = container.streams.video[0]
        for frame in container.decode(stream):
            time_base = frame.time_base or time_base
            frames.append(frame.to_ndarray(format="bgr24"))
            stamps.append(NO_PTS if frame.pts is None else frame.pts)
            keys.append(bool(frame.key_frame))
            print(f"frame {frame.pts}", flush=True)
            if time.monotonic() > deadline:
                break
    except av.FFmpegError as exc:  # the publisher went away mid-packet: keep what was decoded
        print(f"ended {type(exc).__name__}", flush=True)
    finally:
        container.close()
    num, den = (time_base.numerator, time_base.denominator) if time_base else (1, 1)
    shape = frames[0].shape if frames else (0, 0, 3)
    np.savez(
        args.out,
        frames=np.stack(frames) if frames else np.zeros((0, *shape), np.uint8),
        pts=np.asarray(stamps, dtype=np.int64),
        key=np.asarray(keys, dtype=bool),
        num=num,
        den=den,
    )
    print(f"saved {len(frames)}", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
