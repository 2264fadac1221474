"""The network run by ONNX Runtime on the CPU: the default engine, with no PyTorch anywhere.

The graph is built from the checkpoint's weights (onnx_graph.py: BatchNorm folded, normalisation inside, uint8
input), serialised once and handed to one `InferenceSession` per model. The int8 version, when the checkpoint
carries one that was verified against fp32 (int8.py), is a second graph stored in the checkpoint itself.

Sessions use every core for one batch (`intra_op_num_threads`), run sequentially, with all graph optimisations.
`InferenceSession.run` is thread-safe, so one backend serves every thread of the app.
"""
from __future__ import annotations

import math
import os
import sys
from collections.abc import Sequence

import numpy as np

from ..errors import ModelError

OUTPUT_NAMES = ("logits", "features", "feature_maps")


def session_options(threads: int | None = None):
    """ONNX Runtime session options for one model: all cores on one batch, sequential, fully optimised."""
    import onnxruntime as ort

    opts = ort.SessionOptions()
    opts.intra_op_num_threads = max(1, int(threads or os.cpu_count() or 1))
    opts.inter_op_num_threads = 1
    opts.execution_mode = ort.ExecutionMode.ORT_SEQUENTIAL
    opts.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
    opts.log_severity_level = 3  # errors only: its warnings are not the user's business
    return opts


def make_session(model: bytes | os.PathLike, threads: int | None = None):
    """An InferenceSession on the CPU for a serialised ONNX model, or the file holding one (read by the runtime
    itself: no copy of the graph in Python's memory)."""
    import onnxruntime as ort

    try:
        session = ort.InferenceSession(model if isinstance(model, bytes) else os.fspath(model),
                                       sess_options=session_options(threads), providers=["CPUExecutionProvider"])
    except Exception as exc:  # noqa: BLE001 - onnxruntime raises its own exception types for any bad graph
        raise ModelError(f"ONNX Runtime could not load the model ({str(exc).splitlines()[0][:200]})") from None
    # The Python session keeps the bytes it was given for as long as it lives (onnxruntime's own TODO: "This is
    # bad as we're holding the memory indefinitely"), only to re-create itself when a run falls back to other
    # providers: there are none to fall back to on the CPU, so that is turned off and the bytes let go.
    session.disable_fallback()
    if getattr(session, "_model_bytes", None) is model:
        session._model_bytes = None
    release_freed_memory()
    return session


def release_freed_memory() -> None:
    """Give the C heap's free memory back to the system (glibc's malloc_trim; nothing elsewhere). Making a
    session frees what its graph transformations replaced (the weights before the NCHWc layout change: 94 MB
    for a ResNet-18 at 224), and glibc keeps such memory in the process: the session then holds 148 MB of
    resident memory instead of 56."""
    if not sys.platform.startswith("linux"):
        return
    import ctypes

    try:
        ctypes.CDLL(None).malloc_trim(0)
    except (OSError, AttributeError):  # not glibc (musl has no malloc_trim)
        pass


class OrtBackend:
    """Runs one model's graph (fp32, or its verified int8 version) in ONNX Runtime on the CPU."""
    name = "onnxruntime"
    device = "cpu"

    def __init__(self, model: bytes | os.PathLike, *, precision: str = "fp32", threads: int | None = None):
        self.precision = precision
        self.session = make_session(model, threads)
        self._outputs = {o.name for o in self.session.get_outputs()}
        missing = [n for n in ("logits",) if n not in self._outputs]
        if missing:
            raise ModelError(f"the ONNX model has no {missing[0]!r} output")
        self._input = self.session.get_inputs()[0].name

    def check_interface(self, input_size: int, num_classes: int, feature_dim: int) -> None:
        """Raise ModelError unless the graph is one of this model: one uint8 input [N, 3, S, S] and outputs
        logits [N, num_classes], features [N, feature_dim] (a graph from a file, or from another model, must
        not give answers under this model's class names)."""
        def fits(shape, expected) -> bool:
            return len(shape) == len(expected) and all(e is None or d == e for d, e in zip(shape, expected))

        inputs = self.session.get_inputs()
        wrong = []
        if len(inputs) != 1 or inputs[0].type != "tensor(uint8)" \
                or not fits(inputs[0].shape, (None, 3, input_size, input_size)):
            wrong.append(f"input {[(i.type, i.shape) for i in inputs]}"[:120])
        outputs = {o.name: o.shape for o in self.session.get_outputs()}
        for name, expected in (("logits", (None, num_classes)), ("features", (None, feature_dim))):
            if name in outputs and not fits(outputs[name], expected):
                wrong.append(f"{name} {outputs[name]}"[:80])
        if wrong:
            raise ModelError(f"the ONNX graph is not one of this model ({'; '.join(wrong)}; expected images "
                             f"[N, 3, {input_size}, {input_size}] and {num_classes} classes)")

    @classmethod
    def for_checkpoint(cls, ckpt, *, precision: str = "fp32", threads: int | None = None,
                       source: os.PathLike | str | None = None) -> OrtBackend:
        """fp32: the graph built from the checkpoint's weights (cached by what it is built from, see
        graph_cache.py; `source` names the file in errors); int8: the verified int8 graph the checkpoint
        carries."""
        from ..models.archs import feature_dim_of, state_dict_shapes

        expected = (ckpt.preprocess.input_size, len(ckpt.class_names), feature_dim_of(ckpt.arch))
        if precision == "int8":
            from .int8 import stored_int8_model

            try:
                backend = cls(stored_int8_model(ckpt), precision="int8", threads=threads)
                backend.check_interface(*expected)
            except ModelError as exc:
                raise ModelError(f"its stored int8 version cannot be used ({exc})") from None
            return backend
        from . import graph_cache
        from .onnx_graph import build_graph, graph_key

        num_classes = len(ckpt.class_names)
        fingerprint = ckpt.fingerprint  # hashed once per load: the int8 check used it too
        key = graph_key(ckpt.arch, fingerprint, num_classes, ckpt.preprocess)
        # a graph holds each weight once, as float32, plus names and nodes
        max_bytes = 4 * sum(math.prod(shape) for shape in state_dict_shapes(ckpt.arch, num_classes).values()) \
            + (16 << 20)

        def build() -> bytes:
            """The graph, built from the weights in memory, or read again (a checkpoint read without them)."""
            from ..models.checkpoint import read_weights

            weights = ckpt.state_dict
            if weights is None:
                if source is None:
                    raise ValueError("the checkpoint has neither weights nor a file to read them from")
                weights = read_weights(source, fingerprint)
            state = {k: np.asarray(v) for k, v in weights.items()}  # numpy, or CPU tensors
            del weights
            state = {k: v.astype(np.float32) if v.dtype.kind == "f" else v for k, v in state.items()}
            return build_graph(ckpt.arch, state, num_classes, ckpt.preprocess,
                               source=str(source or "<checkpoint>")).SerializeToString()

        entry = graph_cache.load(key, max_bytes)
        backend = cls._of_entry(entry, expected, threads)
        if backend is not None:
            return backend
        if entry is not None:
            graph_cache.forget(key)  # an entry this runtime cannot load: build it again, and keep that one
        data = build()  # the weights and the builder's intermediates are gone once it returns
        # read back from its file (no copy of it left in Python); when it was not stored, or is gone already
        # (another process trimming the folder), from the bytes
        return cls._of_entry(graph_cache.store(key, data), expected, threads) or cls(data, threads=threads)

    @classmethod
    def _of_entry(cls, entry: os.PathLike | None, expected: tuple, threads: int | None) -> OrtBackend | None:
        """The fp32 backend of a graph cache entry that loads and fits the model, else None."""
        if entry is None:
            return None
        try:
            backend = cls(entry, precision="fp32", threads=threads)
            backend.check_interface(*expected)
            return backend
        except ModelError:
            return None

    def run(self, images: np.ndarray, outputs: Sequence[str]) -> dict[str, np.ndarray]:
        """uint8 N x S x S x 3 -> the named outputs (float32)."""
        names = [n for n in outputs if n in self._outputs]
        if len(names) != len(outputs):
            raise ModelError(f"the ONNX model lacks {sorted(set(outputs) - set(names))}")
        x = np.ascontiguousarray(np.asarray(images, dtype=np.uint8).transpose(0, 3, 1, 2))
        values = self.session.run(names, {self._input: x})
        return {n: np.asarray(v, dtype=np.float32) for n, v in zip(names, values)}
