"""Export a model to ONNX or TorchScript, with a Markdown model card next to the file.

What an exported model expects and returns (both formats, see docs/export.md):

* input ``images``: **uint8**, shape ``[N, 3, S, S]``: N any batch size (dynamic), S the model's
  ``input_size``; RGB, channels first, values 0-255, already resized (shorter side to ``resize``, with the
  checkpoint's interpolation, antialiased) and center-cropped to S x S -- the uint8 tensor that
  `Predictor.prepare` makes from a decoded image.
* inside the model: ``x / 255``, ``(x - mean) / std`` with the checkpoint's mean and std, the network, then
  ``softmax(logits / T)`` (T: the temperature of the checkpoint's "calibration" field, as prediction uses it;
  1 when the model is not calibrated).
* output ``probabilities``: float32 ``[N, C]``, in the order of the card's class list; or ``logits``
  (the network's raw output, no temperature) with ``outputs="logits"``.

Why the normalisation is inside: mean and std differ per model (CIFAR-10 or ImageNet statistics), and a
deployment that forgets or swaps them still runs and silently gives wrong answers. With them inside, the
input is just the decoded, cropped pixels. Resizing and cropping stay outside: they depend on each image's
size, and every runtime has its own image library.

The ONNX file is the graph prediction runs (core/inference/onnx_graph.py: built from the weights, BatchNorm
folded) with the softmax and temperature after it; it needs the onnx package (``pip install
resnet-gui[export]``, which also brings onnxruntime) and no PyTorch, so the classify-only edition exports it too.
TorchScript (torch.jit.script, torch_module.py) needs PyTorch. The file is written atomically, then loaded back
(onnxruntime when installed, torch.jit.load) and checked on a test batch (max abs difference <= 1e-4) against the
PyTorch model, or, where PyTorch is not installed, against the logits of the graph prediction runs with the
softmax and temperature computed apart (calibration.softmax).
"""
from __future__ import annotations

import importlib
import importlib.util
import json
import logging
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from resnet_gui import __version__

from ..atomic import atomic_write, atomic_write_bytes
from ..errors import ExportError
from ..models.checkpoint import Checkpoint, as_array, read_checkpoint
from ..models.registry import Registry
from ..paths import output_problem
from .model_card import calibration_of, model_card

log = logging.getLogger(__name__)

FORMATS = ("onnx", "torchscript")
OUTPUTS = ("probabilities", "logits")
SUFFIXES = {"onnx": ".onnx", "torchscript": ".pt"}
INPUT_NAME = "images"
TOLERANCE = 1e-4
INSTALL_HINT = "pip install resnet-gui[export]"
ENGINE_REFERENCE = "the prediction engine's logits"  # the check's reference where PyTorch is not installed
ONNX_PACKAGES = ("onnx",)  # the graph builder; onnxruntime checks the file when installed


@dataclass
class ExportResult:
    path: Path
    card_path: Path
    fmt: str
    input_name: str
    output_name: str
    input_size: int
    class_names: list[str]
    temperature: float
    max_abs_diff: float | None        # exported vs PyTorch on a test batch; None when it could not be run
    checked_with: str | None          # "onnxruntime", "torch.jit.load", or None (onnxruntime missing)
    reference: str = "PyTorch"        # what it was checked against: PyTorch, or (without it) the prediction engine

    def to_json(self) -> dict[str, Any]:
        return {"path": str(self.path), "card_path": str(self.card_path), "format": self.fmt,
                "input": {"name": self.input_name, "dtype": "uint8",
                          "shape": ["N", 3, self.input_size, self.input_size]},
                "output": {"name": self.output_name, "shape": ["N", len(self.class_names)]},
                "temperature": self.temperature, "max_abs_diff": self.max_abs_diff, "checked_with": self.checked_with}


# ---------------------------------------------------------------------------------------------
# dependencies, inputs
# ---------------------------------------------------------------------------------------------
def missing_packages(fmt: str) -> list[str]:
    """The optional packages `fmt` needs that are not installed (empty: it can be exported)."""
    fmt = _format(fmt)
    if fmt == "torchscript":
        return [] if _torch_installed() else ["torch"]
    missing = []
    for name in ONNX_PACKAGES:
        try:
            importlib.import_module(name)
        except ImportError:
            missing.append(name)
    return missing


def _torch_installed() -> bool:
    return importlib.util.find_spec("torch") is not None


def _require(fmt: str) -> None:
    missing = missing_packages(fmt)
    if missing and fmt == "torchscript":
        raise ExportError("exporting to TorchScript needs PyTorch, which is not installed here (the classify-only "
                          "edition leaves it out); export to ONNX, which needs no PyTorch, or use the full edition")
    if missing:
        raise ExportError(f"exporting to ONNX needs the {' and '.join(missing)} package"
                          f"{'s' if len(missing) > 1 else ''}, which {'are' if len(missing) > 1 else 'is'} not "
                          f"installed; install the export extra with '{INSTALL_HINT}' (or 'pip install onnx "
                          "onnxruntime'), or export to TorchScript, which needs nothing more")


def _format(fmt: str) -> str:
    value = str(fmt).strip().lower()
    if value not in FORMATS:
        raise ExportError(f"unknown export format {str(fmt)[:40]!r}; use one of: {', '.join(FORMATS)}")
    return value


def _output(output: os.PathLike | str, source: Path) -> Path:
    """The output file, refused where it would replace the source, a registry file or a run's state."""
    path = Path(output).expanduser()
    if str(output).strip() == "" or path.name in ("", ".", ".."):
        raise ExportError(f"{str(output)!r} is not a file name; give the file to write, for example model.onnx")
    if path.is_dir():
        raise ExportError(f"{path} is a folder; give the file to write inside it, for example {path / 'model.onnx'}")
    problem = output_problem(path, model=source)
    if problem:
        raise ExportError(problem)
    return path


def default_file_name(name: str, fmt: str) -> str:
    """A file name for the export of model `name` (the GUI's Save dialog starts with it): pets.onnx, pets.pt."""
    from ..names import name_from

    return name_from(name) + SUFFIXES[_format(fmt)]


def card_path_for(output: os.PathLike | str) -> Path:
    """Where the model card of an export goes: the file's name with '.md' added (model.onnx -> model.onnx.md)."""
    path = Path(output).expanduser()
    return path.with_name(path.name + ".md")


def temperature_of(ckpt: Checkpoint) -> float:
    """The temperature prediction divides logits by (calibration.py's rule: 1.0 when absent or out of range)."""
    from ..inference.calibration import temperature_of as temperature

    return temperature(calibration_of(ckpt))


# ---------------------------------------------------------------------------------------------
# export
# ---------------------------------------------------------------------------------------------
def _example(size: int, n: int = 3) -> np.ndarray:
    return np.random.default_rng(0).integers(0, 256, (n, 3, size, size), dtype=np.uint8)


def _float_weights(ckpt: Checkpoint) -> dict[str, np.ndarray]:
    """The checkpoint's weights as numpy, floating point ones as float32 (a model saved in float16 included)."""
    state = {}
    for key, value in (ckpt.state_dict or {}).items():
        array = as_array(value)
        state[key] = array.astype(np.float32) if array.dtype.kind == "f" else array
    return state


def _onnx_bytes(ckpt: Checkpoint, state: dict[str, np.ndarray], output_name: str, temperature: float,
                metadata: dict[str, str]) -> bytes:
    """The graph prediction runs, from the checkpoint's weights (float32; build_graph checks them against the
    architecture), with `output_name` as its one output."""
    import onnx

    from ..inference.onnx_graph import build_graph

    proto = build_graph(ckpt.arch, state, ckpt.num_classes, ckpt.preprocess, outputs=(output_name,),
                        temperature=temperature)
    onnx.helper.set_model_props(proto, metadata)
    proto.doc_string = metadata["description"]
    return proto.SerializeToString()


def _engine_reference(ckpt: Checkpoint, state: dict[str, np.ndarray], images: np.ndarray, output_name: str,
                      temperature: float) -> np.ndarray:
    """Without PyTorch: the logits of the graph prediction runs, then the softmax and temperature computed apart."""
    from ..inference.calibration import softmax
    from ..inference.onnx_graph import build_graph
    from ..inference.ort_backend import make_session

    proto = build_graph(ckpt.arch, state, ckpt.num_classes, ckpt.preprocess, outputs=("logits",))
    logits = make_session(proto.SerializeToString(), threads=1).run(None, {INPUT_NAME: images})[0]
    return logits if output_name == "logits" else softmax(logits, temperature)


def _check(path: Path, fmt: str, images: np.ndarray, expected: np.ndarray) -> tuple[float | None, str | None]:
    """Load the written file back and compare its outputs on `images` with `expected`."""
    if fmt == "onnx":
        try:
            import onnxruntime
        except ImportError:
            import onnx

            onnx.checker.check_model(str(path))
            return None, None
        session = onnxruntime.InferenceSession(str(path), providers=["CPUExecutionProvider"])
        got = session.run(None, {INPUT_NAME: images})[0]
        checked_with = "onnxruntime"
    else:
        from .torch_module import run_torchscript

        got = run_torchscript(path, images)
        checked_with = "torch.jit.load"
    diff = float(np.abs(got.astype(np.float64) - expected.astype(np.float64)).max())
    if not diff <= TOLERANCE:
        raise ExportError(f"{path}: the exported model's outputs differ from the reference's by {diff:.2g} (more "
                          f"than {TOLERANCE:g}); the file was written but should not be used. Please report this")
    return diff, checked_with


def export_model(checkpoint: os.PathLike | str | Checkpoint, fmt: str, output: os.PathLike | str, *,
                 outputs: str = "probabilities", name: str | None = None,
                 registry: Registry | None = None) -> ExportResult:
    """Export a registry model (by name) or a checkpoint file to `output` ("onnx" or "torchscript"), write its
    model card next to it (output + ".md"), and check the written file against PyTorch."""
    fmt = _format(fmt)
    if outputs not in OUTPUTS:
        raise ExportError(f"unknown output {str(outputs)[:40]!r}; use one of: {', '.join(OUTPUTS)}")
    _require(fmt)
    if isinstance(checkpoint, Checkpoint):
        ckpt, source = checkpoint, Path(name or "<checkpoint>")
        path = _output(output, source)
    else:
        source = (registry or Registry()).resolve(checkpoint)
        path = _output(output, source)  # before the (possibly slow) load
        ckpt = read_checkpoint(source)
    label = name or (source.stem if source.suffix else str(source))
    temperature = temperature_of(ckpt)
    module = None
    if fmt == "torchscript" or _torch_installed():  # with PyTorch, the file is checked against PyTorch's model
        from .torch_module import export_module

        module = export_module(ckpt, source, temperature=temperature, logits=outputs == "logits")
    state = _float_weights(ckpt)
    size = ckpt.preprocess.input_size
    output_name = outputs
    result = ExportResult(path=path, card_path=card_path_for(path), fmt=fmt, input_name=INPUT_NAME,
                          output_name=output_name, input_size=size, class_names=list(ckpt.class_names),
                          temperature=temperature, max_abs_diff=None, checked_with=None)
    card = model_card(ckpt, result, label, checked=False)
    metadata = {"description": f"{label}: {ckpt.arch} image classifier exported by ResNet GUI {__version__}",
                "class_names": json.dumps(list(ckpt.class_names), ensure_ascii=False),
                "preprocess": json.dumps(ckpt.preprocess.to_dict()),
                "input": f"{INPUT_NAME}: uint8 [N, 3, {size}, {size}] RGB 0-255, resized and center-cropped",
                "output": f"{output_name}: float32 [N, {ckpt.num_classes}]", "temperature": repr(temperature),
                "producer": f"resnet-gui {__version__}"}
    log.info("exporting %s (%s) to %s as %s", label, ckpt.arch, path, fmt)
    if fmt == "onnx":
        atomic_write_bytes(path, _onnx_bytes(ckpt, state, output_name, temperature, metadata))
    else:
        from .torch_module import torchscript_writer

        extra = {"class_names.json": metadata["class_names"], "preprocess.json": metadata["preprocess"],
                 "model_card.md": card}
        atomic_write(path, torchscript_writer(module, extra))
    images = _example(size)
    if module is not None:
        from .torch_module import run_module

        expected = run_module(module, images)
    else:
        expected = _engine_reference(ckpt, state, images, output_name, temperature)
        result.reference = ENGINE_REFERENCE
    result.max_abs_diff, result.checked_with = _check(path, fmt, images, expected)
    atomic_write_bytes(result.card_path, model_card(ckpt, result, label).encode("utf-8"))
    return result


def describe_input(result: ExportResult) -> str:
    """One sentence for the CLI and the GUI: what the exported file takes and gives."""
    return (f"Input '{result.input_name}': uint8 [N, 3, {result.input_size}, {result.input_size}] RGB 0-255, "
            f"resized and center-cropped (normalisation is inside); output '{result.output_name}': "
            f"[N, {len(result.class_names)}].")

