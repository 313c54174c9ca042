"""The `blazeface-boxes` fetch-time rewrite of the BlazeFace `.tflite` files.

Each BlazeFace regressor head is a 1x1 convolution with 16 output channels per anchor: the box
(centre offset x, y, width, height) followed by six facial keypoints. The rewrite keeps only the
four box channels of every head (weights and biases are cut, shapes follow), so the file Veil
loads outputs `boxes` (1, anchors, 4) and `logits` (1, anchors, 1) and cannot produce keypoints
at all. The result must reproduce the original's box columns and scores on a random input, or the
fetch fails. Packing through the flatbuffers object API is deterministic: same input, same bytes.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from edge.errors import ModelError

_MISSING = (
    "BlazeFace needs ai-edge-litert, a dependency of Veil: pip install 'ai-edge-litert>=2.3,<3'"
)

_PER_ANCHOR = 16  # 4 box values + 6 keypoints x 2
_BOX = 4
_TOLERANCE = 1e-4  # box values are input pixels (up to ~200); scores are logits
_DTYPES = {0: np.float32, 1: np.float16}  # TensorType FLOAT32, FLOAT16


def _schema() -> Any:
    try:
        from ai_edge_litert import schema_py_generated
    except ImportError:
        raise ModelError(_MISSING) from None
    return schema_py_generated


class _Graph:
    """The one subgraph of a model, with each tensor's producing operator."""

    def __init__(self, schema: Any, model: Any) -> None:
        if len(model.subgraphs) != 1:
            raise ModelError("BlazeFace model must have exactly one subgraph")
        self.schema = schema
        self.model = model
        self.graph = model.subgraphs[0]
        self.producer = {int(o): op for op in self.graph.operators for o in op.outputs}

    def tensor(self, index: int) -> Any:
        return self.graph.tensors[index]

    def opcode(self, op: Any) -> int:
        code = self.model.operatorCodes[op.opcodeIndex]
        return int(max(code.builtinCode, code.deprecatedBuiltinCode))

    def made_by(self, index: int, opcode: int) -> Any:
        op = self.producer.get(index)
        if op is not None and self.opcode(op) == opcode:
            return op
        name = self.tensor(index).name.decode(errors="replace")
        raise ModelError(f"BlazeFace graph: tensor {name!r} is not made by the expected operator")

    def constant(self, index: int) -> int:
        """The tensor holding the weights behind `index`: itself, or what a DEQUANTIZE reads."""
        if self.model.buffers[self.tensor(index).buffer].data is None:
            op = self.made_by(index, self.schema.BuiltinOperator.DEQUANTIZE)
            index = int(op.inputs[0])
        buffer = self.tensor(index).buffer
        users = sum(t.buffer == buffer for t in self.graph.tensors)
        if buffer == 0 or users != 1 or self.model.buffers[buffer].data is None:
            raise ModelError("BlazeFace graph: a head's weights are not a constant of its own")
        return index


def _narrow_shape(tensor: Any, axis: int, size: int) -> None:
    shape = [int(d) for d in tensor.shape]
    shape[axis] = size
    tensor.shape = np.array(shape, dtype=np.int32)
    if tensor.shapeSignature is not None:
        signature = [int(d) for d in tensor.shapeSignature]
        signature[axis] = size
        tensor.shapeSignature = np.array(signature, dtype=np.int32)


def _narrow_head(g: _Graph, conv: Any) -> int:
    """Keep the box channels of one regressor convolution; returns its new channel count."""
    out = g.tensor(int(conv.outputs[0]))
    channels = int(out.shape[-1])
    if channels % _PER_ANCHOR:
        raise ModelError(f"BlazeFace head has {channels} channels, not a multiple of 16")
    keep = np.arange(channels) % _PER_ANCHOR < _BOX
    kept = int(keep.sum())
    for index in (int(conv.inputs[1]), int(conv.inputs[2])):  # kernel (O, kh, kw, I), bias (O,)
        const = g.tensor(g.constant(index))
        dtype = _DTYPES.get(int(const.type))
        if dtype is None or int(const.shape[0]) != channels:
            raise ModelError("BlazeFace head weights have an unexpected type or shape")
        buffer = g.model.buffers[const.buffer]
        values = np.frombuffer(buffer.data.tobytes(), dtype=dtype).reshape(const.shape)
        buffer.data = np.frombuffer(values[keep].tobytes(), dtype=np.uint8).copy()
        _narrow_shape(const, 0, kept)
        if g.tensor(index) is not const:  # the float32 tensor a DEQUANTIZE makes from it
            _narrow_shape(g.tensor(index), 0, kept)
    _narrow_shape(out, -1, kept)
    return kept


def rewrite(original: bytes) -> bytes:
    import flatbuffers

    schema = _schema()
    ops = schema.BuiltinOperator
    if len(original) < 8 or not schema.Model.ModelBufferHasIdentifier(original, 0):
        raise ModelError("not a TFLite model (no TFL3 identifier)")
    try:
        model = schema.ModelT.InitFromPackedBuf(original, 0)
    except Exception as exc:  # flatbuffers raises plain errors on a damaged file
        raise ModelError(f"not a readable TFLite model: {exc}") from None
    g = _Graph(schema, model)
    outputs = [int(i) for i in g.graph.outputs]
    last = {i: int(g.tensor(i).shape[-1]) for i in outputs}
    regressors = [i for i in outputs if last[i] == _PER_ANCHOR]
    scores = [i for i in outputs if last[i] == 1]
    if len(outputs) != 2 or len(regressors) != 1 or len(scores) != 1:
        raise ModelError("not BlazeFace: expected outputs (1, N, 16) and (1, N, 1)")

    top = g.producer.get(regressors[0])
    if top is not None and g.opcode(top) == ops.CONCATENATION:
        reshapes = [g.made_by(int(i), ops.RESHAPE) for i in top.inputs]
        _narrow_shape(g.tensor(regressors[0]), -1, _BOX)
    else:
        reshapes = [g.made_by(regressors[0], ops.RESHAPE)]
    for reshape in reshapes:
        if len(reshape.inputs) > 1 or reshape.builtinOptions is None:
            raise ModelError("BlazeFace graph: a head's reshape takes its shape from a tensor")
        _narrow_head(g, g.made_by(int(reshape.inputs[0]), ops.CONV_2D))
        new_shape = [int(d) for d in reshape.builtinOptions.newShape]
        reshape.builtinOptions.newShape = np.array(new_shape[:-1] + [_BOX], dtype=np.int32)
        _narrow_shape(g.tensor(int(reshape.outputs[0])), -1, _BOX)
    g.tensor(regressors[0]).name = b"boxes"
    g.tensor(scores[0]).name = b"logits"

    builder = flatbuffers.Builder(len(original))
    builder.Finish(model.Pack(builder), file_identifier=b"TFL3")
    rewritten = bytes(builder.Output())
    _check_same_outputs(original, rewritten)
    return rewritten


def _interpreter(model: bytes) -> Any:
    """A plain interpreter for the fetch-time check: without the default XNNPACK delegate,
    which would print an INFO line on every fetch and adds nothing to a one-off comparison."""
    from ai_edge_litert.interpreter import Interpreter, OpResolverType

    return Interpreter(
        model_content=model,
        num_threads=1,
        experimental_op_resolver_type=OpResolverType.BUILTIN_WITHOUT_DEFAULT_DELEGATES,
    )


def _run(model: bytes, x: np.ndarray) -> dict[str, np.ndarray]:
    interpreter = _interpreter(model)
    interpreter.allocate_tensors()
    interpreter.set_tensor(interpreter.get_input_details()[0]["index"], x)
    interpreter.invoke()
    return {
        d["name"]: interpreter.get_tensor(d["index"]).copy()
        for d in interpreter.get_output_details()
    }


def _check_same_outputs(original: bytes, rewritten: bytes) -> None:
    shape = _interpreter(original).get_input_details()[0]["shape"]
    x = np.random.default_rng(0).uniform(-1.0, 1.0, size=shape).astype(np.float32)
    old = _run(original, x)
    new = _run(rewritten, x)
    if sorted(new) != ["boxes", "logits"]:
        raise ModelError(f"rewritten BlazeFace has outputs {sorted(new)}")
    old_boxes = next(v for v in old.values() if v.shape[-1] == _PER_ANCHOR)
    old_logits = next(v for v in old.values() if v.shape[-1] == 1)
    if new["boxes"].shape != old_boxes.shape[:-1] + (_BOX,):
        raise ModelError(f"rewritten BlazeFace gives boxes of shape {new['boxes'].shape}")
    for name, a, b in (
        ("boxes", old_boxes[..., :_BOX], new["boxes"]),
        ("logits", old_logits, new["logits"]),
    ):
        err = float(np.max(np.abs(a - b)))
        if err > _TOLERANCE:
            raise ModelError(f"rewritten BlazeFace differs from the original on {name}: {err:g}")
