"""`veil bench`: decode only, decode + encode, the full pipeline, and the full pipeline writing
its audit log, on one generated clip of real faces, in one run, so the ratios are comparable on a
noisy machine."""

from __future__ import annotations

import json
import platform
import sys
import tempfile
import time
from pathlib import Path

import onnxruntime

from edge import __version__
from edge.audit import AuditLog, AuditTrail, load_or_create
from edge.capture import VideoFileSource
from edge.config import Config, load_config
from edge.detect import Detections, FaceDetector, build_detector
from edge.digest import sha256_file
from edge.frames import Pixels
from edge.redact import Redactor
from edge.run import RunReport, run
from edge.sample import write_sample
from edge.sinks.video_file import video_sink_for


class _NoFaces:
    """Stands in for the detector to time decode + redaction stage + encode alone."""

    name = "none (codec floor)"

    def detect(self, image: Pixels) -> Detections:
        return Detections.empty()


def _decode_only(clip: Path) -> tuple[int, float]:
    source = VideoFileSource(clip)
    start = time.perf_counter()
    frames = sum(1 for _ in source.frames())
    elapsed = time.perf_counter() - start
    source.close()
    return frames, elapsed


def _through(
    clip: Path, out: Path, detector: FaceDetector, redactor: Redactor, cfg: Config
) -> tuple[int, float, float]:
    source = VideoFileSource(clip)
    sink = video_sink_for(source, out, cfg.video)
    report = run(source, detector, redactor, sink, cfg.track)
    return report.frames_out, report.seconds, report.detect.percentile(50)


def _audited(
    clip: Path, out: Path, detector: FaceDetector, redactor: Redactor, cfg: Config, tmp: Path
) -> tuple[int, float]:
    """The full pipeline writing its audit log (input and output hashed, summaries, records
    signed and fsync'd). Time = the run's own plus every audit step outside it."""
    key, _ = load_or_create(tmp / "keys")
    with AuditLog(tmp / "audit.jsonl", key) as log:
        trail = AuditTrail(log, cfg)
        start = time.perf_counter()
        source_sha256 = sha256_file(clip)[1]
        trail.start("files")
        outside = time.perf_counter() - start
        source = VideoFileSource(clip)
        sink = video_sink_for(source, out, cfg.video)
        report = RunReport()
        run(source, detector, redactor, sink, cfg.track, observe=trail.observe, report=report)
        start = time.perf_counter()
        assert report.output is not None
        trail.file_closed(report, report.output, "video", source_sha256)
        trail.stop("ok")
        outside += time.perf_counter() - start
    return report.frames_out, report.seconds + outside


def bench_command(
    seconds: float, size: tuple[int, int], config: Path | None, json_path: Path | None
) -> int:
    cfg = load_config(config)
    width, height = size
    redactor = Redactor(cfg.redact)
    detector = build_detector(cfg.detector)
    with tempfile.TemporaryDirectory(prefix="veil-bench-") as tmp:
        clip = Path(tmp) / "clip.mp4"
        print(f"generating {width}x{height} 30 fps clip of {seconds:g} s ...", file=sys.stderr)
        write_sample(clip, width=width, height=height, seconds=seconds)
        results: dict[str, dict[str, float]] = {}
        n, t = _decode_only(clip)
        results["decode"] = {"frames": n, "seconds": t, "fps": n / t}
        n, t, _ = _through(clip, Path(tmp) / "floor.mp4", _NoFaces(), redactor, cfg)
        results["decode+encode"] = {"frames": n, "seconds": t, "fps": n / t}
        n, t, p50 = _through(clip, Path(tmp) / "full.mp4", detector, redactor, cfg)
        results["full pipeline"] = {"frames": n, "seconds": t, "fps": n / t, "detect_p50_ms": p50}
        n, t = _audited(clip, Path(tmp) / "audited.mp4", detector, redactor, cfg, Path(tmp))
        results["full + audit log"] = {"frames": n, "seconds": t, "fps": n / t}
    floor = results["decode+encode"]["fps"]
    print(
        f"veil {__version__}, onnxruntime {onnxruntime.__version__}, {platform.machine()}, "
        f"{width}x{height}, detector {detector.name}, "
        f"x264 {cfg.video.preset}"
    )
    print(f"{'stage':<18}{'frames/s':>10}{'vs decode+encode':>18}")
    for name, r in results.items():
        print(f"{name:<18}{r['fps']:>10.1f}{r['fps'] / floor:>18.2f}")
    print(f"detector p50: {results['full pipeline']['detect_p50_ms']:.1f} ms/frame")
    if json_path is not None:
        json_path.write_text(json.dumps({"size": [width, height], "results": results}, indent=2))
    return 0
