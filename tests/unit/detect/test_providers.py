"""`[detector.centerface] providers`: an allow-list, CPU last, and a fallback that is never
silent (a warning line, the detector's `fallback`, the audit log's `detector_ready` record)."""

from __future__ import annotations

import json
from pathlib import Path

import cv2
import numpy as np
import pytest
from pydantic import ValidationError

from conftest import veil
from edge.config import CenterFaceConfig, Config
from edge.detect import build_detector, fallback_warning, providers_of
from edge.detect.centerface import CenterFace
from edge.run import StatusBoard

CPU = "CPUExecutionProvider"
CUDA = "CUDAExecutionProvider"
WARNING = f"veil: warning: {CUDA} is not available; CenterFace runs on {CPU}"


def test_the_default_is_cpu_only() -> None:
    assert CenterFaceConfig().providers == (CPU,)


@pytest.mark.parametrize(
    "providers",
    [
        ["OpenVINOExecutionProvider", CPU],  # not on the allow-list
        [CUDA],  # no CPU fallback
        [CPU, CUDA],  # CPU not last
        [CUDA, CUDA, CPU],
        [],
    ],
)
def test_providers_off_the_allow_list_or_without_cpu_last_are_refused(
    providers: list[str],
) -> None:
    with pytest.raises(ValidationError):
        Config.model_validate({"detector": {"centerface": {"providers": providers}}})


def test_gpu_providers_are_accepted() -> None:
    cfg = Config.model_validate(
        {"detector": {"centerface": {"providers": ["TensorrtExecutionProvider", CUDA, CPU]}}}
    )
    assert cfg.detector.centerface.providers[-1] == CPU


def test_an_unavailable_provider_is_a_fallback_not_a_silence() -> None:
    import onnxruntime as ort

    if CUDA in ort.get_available_providers():
        pytest.skip("this onnxruntime has CUDA: no fallback to see")
    detector = CenterFace(providers=(CUDA, CPU))
    assert (detector.provider, detector.fallback) == (CPU, (CUDA,))
    assert fallback_warning(detector) == WARNING
    default = CenterFace()
    assert (default.provider, default.fallback) == (CPU, ())
    assert fallback_warning(default) is None


def test_an_ensemble_reports_its_centerface_provider() -> None:
    cfg = Config.model_validate({"detector": {"backend": "ensemble"}}).detector
    assert providers_of(build_detector(cfg)) == (CPU, ())
    blaze = Config.model_validate({"detector": {"backend": "blazeface"}}).detector
    assert providers_of(build_detector(blaze)) == (None, ())


def test_the_status_shows_the_provider(tmp_path: Path) -> None:
    from edge.run import RunReport

    board = StatusBoard(tmp_path / "status.json", RunReport(), tmp_path, "test", "0" * 32)
    assert board.snapshot()["detector_provider"] is None
    board.detector_provider = CPU
    assert board.snapshot()["detector_provider"] == CPU


def _redact(tmp_path: Path, astronaut: np.ndarray, providers: list[str]) -> tuple[str, list[dict]]:
    src = tmp_path / "in.png"
    cv2.imwrite(str(src), cv2.resize(astronaut, (256, 256)))
    config = tmp_path / "veil.toml"
    config.write_text(f"[detector.centerface]\nproviders = {json.dumps(providers)}\n")
    out = tmp_path / "out"
    out.mkdir()
    proc = veil(
        "redact", src, "-o", out / "in.png", "--config", config, "--key-dir", tmp_path / "keys"
    )
    assert proc.returncode == 0, proc.stderr
    log = out / "veil-audit.jsonl"
    records = [json.loads(line) for line in log.read_text().splitlines()]
    assert veil("audit", "verify", log).returncode == 0
    return proc.stderr, records


def test_redact_logs_and_warns_about_a_fallback(tmp_path: Path, astronaut: np.ndarray) -> None:
    import onnxruntime as ort

    if CUDA in ort.get_available_providers():
        pytest.skip("this onnxruntime has CUDA: no fallback to see")
    stderr, records = _redact(tmp_path, astronaut, [CUDA, CPU])
    assert WARNING in stderr.splitlines()
    ready = [r for r in records if r["type"] == "detector_ready"]
    assert [(r["detector"], r["provider"], r["fallback"]) for r in ready] == [
        ("centerface", CPU, [CUDA])
    ]
    assert [r["type"] for r in records].index("run_start") < records.index(ready[0])


def test_redact_with_the_default_gives_no_warning(tmp_path: Path, astronaut: np.ndarray) -> None:
    stderr, records = _redact(tmp_path, astronaut, [CPU])
    assert "warning" not in stderr
    ready = [r for r in records if r["type"] == "detector_ready"]
    assert [(r["provider"], r["fallback"]) for r in ready] == [(CPU, [])]
