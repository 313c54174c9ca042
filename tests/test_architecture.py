"""The structure that makes a leak a type error rather than a review finding: the import contract,
the redaction capability, sinks that refuse raw frames, no identification anywhere, and
`mypy --strict`. Each source scanner is first shown to catch a planted violation."""

from __future__ import annotations

import ast
import re
import subprocess
import sys
from collections.abc import Callable, Iterator
from fractions import Fraction
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from packaging.requirements import Requirement

import edge.sinks
from edge.config import RedactConfig, VideoConfig
from edge.frames import REDACTION_STAGE, RawFrame, RedactedFrame
from edge.redact import Redactor
from edge.sinks import ImageFileSink, VideoFileSink

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover
    import tomli as tomllib

ROOT = Path(__file__).resolve().parents[1]
EDGE = ROOT / "edge"


def _modules(under: Path = EDGE) -> Iterator[tuple[str, Path]]:
    for path in sorted(under.rglob("*.py")):
        parts = path.relative_to(ROOT).with_suffix("").parts
        if parts[-1] == "__init__":
            parts = parts[:-1]
        yield ".".join(parts), path


def _is_package(path: Path) -> bool:
    return path.name == "__init__.py"


# --- import graph -----------------------------------------------------------------------------


def imported_modules(source: str, module: str, *, is_package: bool = False) -> set[str]:
    """Every module `source` (the code of `module`) imports, absolute names, relative imports
    resolved; `from a import b` counts as both `a` and `a.b`, since `b` may be a submodule.
    String arguments of `importlib.import_module` / `__import__` count too."""
    package = module if is_package else module.rpartition(".")[0]
    found: set[str] = set()
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = package.split(".")
                base = base[: len(base) - (node.level - 1)]
                prefix = ".".join(base + ([node.module] if node.module else []))
            else:
                prefix = node.module or ""
            found.add(prefix)
            found.update(f"{prefix}.{alias.name}" for alias in node.names if alias.name != "*")
        elif isinstance(node, ast.Call):
            func = node.func
            name = func.attr if isinstance(func, ast.Attribute) else getattr(func, "id", "")
            if name in {"import_module", "__import__"} and node.args:
                first = node.args[0]
                if isinstance(first, ast.Constant) and isinstance(first.value, str):
                    found.add(first.value)
    return found


FORBIDDEN_FOR_SINKS = ("edge.capture", "edge.detect")


def forbidden_imports(
    source: str,
    module: str,
    *,
    is_package: bool = False,
    forbidden: tuple[str, ...] = FORBIDDEN_FOR_SINKS,
) -> set[str]:
    return {
        name
        for name in imported_modules(source, module, is_package=is_package)
        if any(name == bad or name.startswith(bad + ".") for bad in forbidden)
    }


@pytest.mark.parametrize(
    ("source", "caught"),
    [
        ("from edge.capture import VideoFileSource", True),
        ("import edge.detect.centerface as cf", True),
        ("from edge import detect", True),
        ("from edge import capture as c, frames", True),
        ("from ..capture.base import FrameSource", True),
        ("from .. import detect", True),
        ("import importlib\nimportlib.import_module('edge.capture.video_file')", True),
        ("def f():\n    from edge.detect.detections import Detections\n", True),
        ("from edge.frames import RedactedFrame\nfrom edge.sinks.atomic import AtomicFile", False),
        ('"""Sinks never import edge.capture or edge.detect."""\n# import edge.detect', False),
        ("from edge.detections_log import x\nimport edge.capturex", False),
    ],
)
def test_import_scanner_self_test(source: str, caught: bool) -> None:
    assert bool(forbidden_imports(source, "edge.sinks.planted")) is caught


def test_sinks_never_import_capture_or_detect() -> None:
    sinks = list(_modules(EDGE / "sinks"))
    assert len(sinks) >= 4  # __init__, base, image_file, video_file, ...
    leaks = {
        name: sorted(bad)
        for name, path in sinks
        if (
            bad := forbidden_imports(
                path.read_text(encoding="utf-8"), name, is_package=_is_package(path)
            )
        )
    }
    assert leaks == {}


# The stages and what they stand on; the run drives them and the CLI drives the run.
STAGES = ("capture", "detect", "track", "redact", "sinks", "models", "config")
ABOVE_THE_STAGES = ("edge.run", "edge.cli")


@pytest.mark.parametrize(
    ("source", "caught"),
    [
        ("from edge.run import RunReport", True),
        ("from edge.run.report import RunReport", True),
        ("from ..run import vouch", True),
        ("import edge.cli.main", True),
        ("def f():\n    from edge.cli.outputs import build_outputs\n", True),
        ("from edge.runtime import x\nimport edge.client", False),
        ("from edge.frames import RawFrame\nfrom edge.config import LiveConfig", False),
    ],
)
def test_upward_scanner_self_test(source: str, caught: bool) -> None:
    found = forbidden_imports(source, "edge.capture.planted", forbidden=ABOVE_THE_STAGES)
    assert bool(found) is caught


def test_stages_never_import_the_run_or_the_cli() -> None:
    stages = [module for stage in STAGES for module in _modules(EDGE / stage)]
    assert len(stages) >= 40
    leaks = {
        name: sorted(bad)
        for name, path in stages
        if (
            bad := forbidden_imports(
                path.read_text(encoding="utf-8"),
                name,
                is_package=_is_package(path),
                forbidden=ABOVE_THE_STAGES,
            )
        )
    }
    assert leaks == {}


CONFIG = EDGE / "config"


def below_face(
    source: str, module: str, package: str, inner: set[str], *, is_package: bool = False
) -> set[str]:
    """The modules below `package`'s face (`inner`: their names) that `source` imports."""
    return {
        name
        for name in imported_modules(source, module, is_package=is_package)
        if name.startswith(package + ".") and name[len(package) + 1 :].split(".")[0] in inner
    }


def _config_modules() -> set[str]:
    return {path.stem for path in CONFIG.glob("*.py") if path.stem != "__init__"}


@pytest.mark.parametrize(
    ("source", "caught"),
    [
        ("from edge.config.load import Config", True),
        ("from edge.config import outputs", True),
        ("import edge.config.live as live", True),
        ("from ..config.pipeline import TrackConfig", True),
        ("def f():\n    from edge.config.errors import first_problem\n", True),
        ("from edge.config import Config, PreviewConfig, first_problem", False),
        ("import edge.config\nimport edge.configs.load", False),
    ],
)
def test_face_scanner_self_test(source: str, caught: bool) -> None:
    assert {"errors", "live", "load", "outputs", "pipeline"} <= _config_modules()
    found = below_face(source, "edge.sinks.planted", "edge.config", _config_modules())
    assert bool(found) is caught


def test_callers_import_the_config_through_its_face() -> None:
    """`edge.config` is one package with one face: which module holds a section is its own
    business, so that sections can move between them without touching a caller."""
    callers = [
        (name, path)
        for name, path in [*_modules(), *_modules(ROOT / "tests")]
        if CONFIG not in path.parents
    ]
    assert len(callers) > 100
    reach = {
        name: sorted(bad)
        for name, path in callers
        if (
            bad := below_face(
                path.read_text(encoding="utf-8"),
                name,
                "edge.config",
                _config_modules(),
                is_package=_is_package(path),
            )
        )
    }
    assert reach == {}


# --- the redaction capability -----------------------------------------------------------------


def _docstring_nodes(tree: ast.AST) -> set[int]:
    ids = set()
    for node in ast.walk(tree):
        if isinstance(node, (ast.Module, ast.ClassDef, ast.FunctionDef, ast.AsyncFunctionDef)):
            body = node.body
            if body and isinstance(body[0], ast.Expr) and isinstance(body[0].value, ast.Constant):
                ids.add(id(body[0].value))
    return ids


def references(source: str, name: str) -> list[int]:
    """Lines where code (not a docstring or comment) names `name`: as a variable, an attribute,
    an imported name, a string given to getattr and the like, or a star import of edge.frames."""
    tree = ast.parse(source)
    docs = _docstring_nodes(tree)
    lines = []
    for node in ast.walk(tree):
        hit = (
            (isinstance(node, ast.Name) and node.id == name)
            or (isinstance(node, ast.Attribute) and node.attr == name)
            or (isinstance(node, ast.alias) and name in (node.name, node.asname))
            or (
                isinstance(node, ast.Constant)
                and isinstance(node.value, str)
                and id(node) not in docs
                and name in node.value
            )
            or (
                isinstance(node, ast.ImportFrom)
                and (node.module or "").endswith("frames")
                and any(a.name == "*" for a in node.names)
            )
        )
        if hit:
            lines.append(getattr(node, "lineno", 0))
    return lines


@pytest.mark.parametrize(
    ("source", "caught"),
    [
        ("from edge.frames import REDACTION_STAGE", True),
        ("from edge.frames import REDACTION_STAGE as ok", True),
        ("import edge.frames\ncap = edge.frames.REDACTION_STAGE", True),
        ("import edge.frames as f\ncap = getattr(f, 'REDACTION_STAGE')", True),
        ("from edge.frames import *", True),
        ('"""Only the redaction stage holds REDACTION_STAGE."""\n# REDACTION_STAGE', False),
        ("from edge.frames import RawFrame, RedactedFrame", False),
    ],
)
def test_capability_scanner_self_test(source: str, caught: bool) -> None:
    assert bool(references(source, "REDACTION_STAGE")) is caught


def test_only_the_redaction_stage_references_the_capability() -> None:
    allowed = {EDGE / "frames.py"}
    users = {}
    for _, path in _modules():
        if path in allowed or (EDGE / "redact") in path.parents:
            continue
        if lines := references(path.read_text(encoding="utf-8"), "REDACTION_STAGE"):
            users[str(path.relative_to(ROOT))] = lines
    assert users == {}
    # And the redaction stage does hold it (otherwise the scan above would be checking nothing).
    assert any(
        references(p.read_text(encoding="utf-8"), "REDACTION_STAGE")
        for _, p in _modules(EDGE / "redact")
    )


def _pixels() -> np.ndarray:
    return np.full((48, 64, 3), 200, dtype=np.uint8)


def test_redacted_frame_needs_the_capability() -> None:
    meta = dict(index=0, pts=0, time_base=Fraction(1, 30), faces=0, obscured=False)
    with pytest.raises(TypeError):
        RedactedFrame(_pixels(), **meta)
    for fake in (None, object(), type(REDACTION_STAGE)(), "REDACTION_STAGE"):
        with pytest.raises(TypeError, match="only the redaction stage"):
            RedactedFrame(_pixels(), **meta, capability=fake)
    # The real one works, and freezes the pixels.
    frame = RedactedFrame(_pixels(), **meta, capability=REDACTION_STAGE)
    assert not frame.pixels.flags.writeable


# --- sinks refuse raw frames --------------------------------------------------------------------

SinkFactory = Callable[[Path], Any]
SINKS: dict[type, tuple[str, SinkFactory]] = {
    ImageFileSink: ("out.png", lambda p: ImageFileSink(p)),
    VideoFileSink: (
        "out.mp4",
        lambda p: VideoFileSink(p, width=64, height=48, rate=Fraction(30), cfg=VideoConfig()),
    ),
}


def test_every_exported_sink_is_covered() -> None:
    exported = {
        obj
        for name in edge.sinks.__all__
        if isinstance(obj := getattr(edge.sinks, name), type) and name != "Sink"
    }
    assert exported == set(SINKS)


@pytest.mark.parametrize("sink_type", list(SINKS), ids=lambda t: t.__name__)
@pytest.mark.parametrize(
    "bad",
    [lambda: RawFrame(_pixels(), 0, 0, Fraction(1, 30)), _pixels],
    ids=["RawFrame", "ndarray"],
)
def test_sink_rejects_unredacted_frames(
    sink_type: type, bad: Callable[[], object], tmp_path: Path
) -> None:
    name, make = SINKS[sink_type]
    sink = make(tmp_path / name)
    with pytest.raises(TypeError, match="RedactedFrame"):
        sink.write(bad())
    sink.abort()
    assert list(tmp_path.iterdir()) == []


@pytest.mark.parametrize("sink_type", list(SINKS), ids=lambda t: t.__name__)
def test_sink_accepts_a_redacted_frame(sink_type: type, tmp_path: Path) -> None:
    """The control: the same sink, set up the same way, takes the real thing and publishes it."""
    name, make = SINKS[sink_type]
    sink = make(tmp_path / name)
    sink.write(Redactor(RedactConfig()).obscure(RawFrame(_pixels(), 0, 0, Fraction(1, 30))))
    sink.close()
    assert [p.name for p in tmp_path.iterdir()] == [name]
    assert (tmp_path / name).stat().st_size > 0


# --- no identification --------------------------------------------------------------------------

DENY = (
    "face_recognition",
    "dlib",
    "insightface",
    "deepface",
    "facenet",
    "facenet_pytorch",
    "FaceRecognizerSF",
    "face_recognizer",
    "arcface",
    "sface",
    "embedding",
)


def _denied(identifier: str) -> list[str]:
    low = identifier.lower().replace("-", "_")
    return [term for term in DENY if term.lower() in low]


def identification_names(source: str) -> list[tuple[int, str]]:
    """Identifiers in code that name an identification library or concept: imported modules and
    names, variables, attributes, definitions, arguments, keywords, and strings given to
    `import_module`. Docstrings, comments and other strings are not code and are not read."""
    tree = ast.parse(source)
    hits: list[tuple[int, str]] = []

    def check(name: str | None, node: ast.AST) -> None:
        if name and _denied(name):
            hits.append((getattr(node, "lineno", 0), name))

    for name in imported_modules(source, "edge.planted"):
        check(name, tree)
    for node in ast.walk(tree):
        if isinstance(node, ast.alias):
            check(node.name, node)
            check(node.asname, node)
        elif isinstance(node, ast.Name):
            check(node.id, node)
        elif isinstance(node, ast.Attribute):
            check(node.attr, node)
        elif isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)):
            check(node.name, node)
        elif isinstance(node, ast.arg):
            check(node.arg, node)
        elif isinstance(node, ast.keyword):
            check(node.arg, node)
        elif isinstance(node, (ast.Global, ast.Nonlocal)):
            for n in node.names:
                check(n, node)
    return hits


@pytest.mark.parametrize(
    ("source", "caught"),
    [
        ("import face_recognition", True),
        ("import dlib as d", True),
        ("from insightface.app import FaceAnalysis", True),
        ("from deepface import DeepFace", True),
        ("from facenet_pytorch import InceptionResnetV1", True),
        ("import cv2\nrec = cv2.FaceRecognizerSF.create('m.onnx', '')", True),
        ("import cv2\nrec = cv2.FaceRecognizerSF_create", True),
        ("def face_embeddings(x):\n    return x", True),
        ("class ArcFaceHead:\n    pass", True),
        ("vec = model.get_embedding(img)", True),
        ("def f(*, sface_path): ...", True),
        ("run(Embedding=1)", True),
        ("import importlib\nm = importlib.import_module('insightface')", True),
        ('"""No face_recognition, dlib or embedding here."""\n# import insightface\nx = 1', False),
        ("msg = 'Identification (face_recognition, embeddings) is disabled'", False),
        ("def has_faces(faces, is_face): return faces", False),
    ],
)
def test_identification_scanner_self_test(source: str, caught: bool) -> None:
    assert bool(identification_names(source)) is caught


def test_no_identification_in_code() -> None:
    found = {}
    for _, path in _modules():
        if hits := identification_names(path.read_text(encoding="utf-8")):
            found[str(path.relative_to(ROOT))] = hits
    assert found == {}


def dependency_names(pyproject_text: str) -> list[str]:
    """Every distribution the project asks for: build requirements, dependencies, all extras."""
    data = tomllib.loads(pyproject_text)
    project = data.get("project", {})
    specs = list(data.get("build-system", {}).get("requires", []))
    specs += project.get("dependencies", [])
    for extra in project.get("optional-dependencies", {}).values():
        specs += extra
    for group in data.get("dependency-groups", {}).values():
        specs += [s for s in group if isinstance(s, str)]
    return [Requirement(spec).name for spec in specs]


def denied_dependencies(pyproject_text: str) -> list[str]:
    return [name for name in dependency_names(pyproject_text) if _denied(name)]


def test_dependency_scanner_self_test() -> None:
    planted = """
[project]
name = "x"
dependencies = ["numpy>=1.24"]
[project.optional-dependencies]
fetch = ["onnx"]
extras = ["Face-Recognition>=1.3; python_version >= '3.10'"]
"""
    assert denied_dependencies(planted) == ["Face-Recognition"]
    assert dependency_names(planted) == ["numpy", "onnx", "Face-Recognition"]
    assert denied_dependencies(planted.replace("Face-Recognition>=1.3", "tqdm")) == []


def test_no_identification_dependencies() -> None:
    text = (ROOT / "pyproject.toml").read_text(encoding="utf-8")
    names = dependency_names(text)
    assert {"numpy", "onnxruntime", "av", "onnx", "scikit-image", "pytest", "mypy"} <= set(names)
    assert denied_dependencies(text) == []


def test_manifest_allows_only_face_detection() -> None:
    manifest = tomllib.loads((ROOT / "models" / "manifest.toml").read_text(encoding="utf-8"))
    models = manifest["models"]
    assert models, "the manifest lists no model"
    assert {name: entry.get("task") for name, entry in models.items()} == {
        name: "face-detection" for name in models
    }
    for name, entry in models.items():
        assert not _denied(name) and not _denied(entry["file"]), name
    # No model file sits in the folder without a manifest entry.
    listed = {entry["file"] for entry in models.values()}
    on_disk = {
        p.name
        for p in (ROOT / "models").iterdir()
        if p.is_file() and re.search(r"\.(onnx|tflite|pt|pth|bin)$", p.name)
    }
    assert on_disk <= listed


# --- types --------------------------------------------------------------------------------------


def test_mypy_strict_passes() -> None:
    result = subprocess.run(
        [sys.executable, "-m", "mypy"],  # [tool.mypy] in pyproject.toml: strict, packages = edge
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert "No module named mypy" not in result.stderr, "mypy is in the test extra; install it"
    assert result.returncode == 0, result.stdout + result.stderr
    assert "Success: no issues found" in result.stdout
