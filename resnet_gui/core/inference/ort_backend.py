"""The network run by ONNX Runtime on the CPU: the default engine, with no PyTorch anywhere.

The graph is built from the checkpoint's weights (onnx_graph.py: BatchNorm folded, normalisation inside, uint8
input), serialised once and handed to one `InferenceSession` per model. The int8 version, when the checkpoint
carries one that was verified against fp32 (int8.py), is a second graph stored in the checkpoint itself.

Sessions use every core for one batch (`intra_op_num_threads`), run sequentially, with all graph optimisations.
`InferenceSession.run` is thread-safe, so one backend serves every thread of the app.
"""
from __future__ import annotations

import os
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


def make_session(model_bytes: bytes, threads: int | None = None):
    """An InferenceSession on the CPU for a serialised ONNX model."""
    import onnxruntime as ort

    try:
        return ort.InferenceSession(model_bytes, sess_options=session_options(threads),
                                    providers=["CPUExecutionProvider"])
    except Exception as exc:  # noqa: BLE001 - onnxruntime raises its own exception types for any bad graph
        raise ModelError(f"ONNX Runtime could not load the model ({str(exc).splitlines()[0][:200]})") from None


class OrtBackend:
    """Runs one model's graph (fp32, or its verified int8 version) in ONNX Runtime on the CPU."""
    name = "onnxruntime"
    device = "cpu"

    def __init__(self, model_bytes: bytes, *, precision: str = "fp32", threads: int | None = None):
        self.precision = precision
        self.session = make_session(model_bytes, threads)
        self._outputs = {o.name for o in self.session.get_outputs()}
        missing = [n for n in ("logits",) if n not in self._outputs]
        if missing:
            raise ModelError(f"the ONNX model has no {missing[0]!r} output")
        self._input = self.session.get_inputs()[0].name

    @classmethod
    def for_checkpoint(cls, ckpt, *, precision: str = "fp32", threads: int | None = None,
                       source: os.PathLike | str | None = None) -> OrtBackend:
        """fp32: the graph built from the checkpoint's weights (cached per checkpoint file `source`, see
        graph_cache.py); int8: the verified int8 graph the checkpoint carries."""
        if precision == "int8":
            from .int8 import stored_int8_model

            return cls(stored_int8_model(ckpt), precision="int8", threads=threads)
        from . import graph_cache
        from .onnx_graph import BUILDER_VERSION

        def build() -> bytes:
            from .onnx_graph import build_graph

            state = {key: np.asarray(value, dtype=np.float32) if np.asarray(value).dtype.kind == "f"
                     else np.asarray(value) for key, value in ckpt.state_dict.items()}  # numpy, or CPU tensors
            return build_graph(ckpt.arch, state, len(ckpt.class_names), ckpt.preprocess).SerializeToString()

        data, key = graph_cache.graph_bytes(source, BUILDER_VERSION, build)
        try:
            return cls(data, precision="fp32", threads=threads)
        except ModelError:
            if key is None:
                raise
            graph_cache.forget(key)  # a damaged cache entry: build it again
            return cls(build(), precision="fp32", threads=threads)

    def run(self, images: np.ndarray, outputs: Sequence[str]) -> dict[str, np.ndarray]:
        """uint8 N x S x S x 3 -> the named outputs (float32)."""
        names = [n for n in outputs if n in self._outputs]
        if len(names) != len(outputs):
            raise ModelError(f"the ONNX model lacks {sorted(set(outputs) - set(names))}")
        x = np.ascontiguousarray(np.asarray(images, dtype=np.uint8).transpose(0, 3, 1, 2))
        values = self.session.run(names, {self._input: x})
        return {n: np.asarray(v, dtype=np.float32) for n, v in zip(names, values)}
