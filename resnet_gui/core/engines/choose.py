"""Which engine runs a model: ONNX Runtime on the CPU, PyTorch on a GPU or when asked.

engine "auto" (the default): ONNX Runtime on the CPU (no PyTorch: it starts in a fraction of the time and
memory), PyTorch when the device asked for is a GPU ("cuda", "cuda:N", "mps"), or when the device is "auto",
an NVIDIA GPU is present and PyTorch is installed. "onnxruntime" or "torch" force one.

precision "auto": with ONNX Runtime the model's verified int8 version when it carries one (int8.py; else fp32),
with PyTorch bf16 autocast where the device computes bf16 natively (else fp32). "fp32" is always exact;
"int8" (ONNX Runtime) and "bf16" (PyTorch) ask for one explicitly.

Deciding needs no torch import: a GPU is looked for where its driver shows itself (Linux: /proc/driver/nvidia;
Windows: the driver's DLL), and PyTorch is only imported when it is the engine.
"""
from __future__ import annotations

import logging
import os
import re
import sys
from pathlib import Path

from resnet_gui import edition

from ..errors import DeviceError, ModelError
from ..inference.predictor import ModelFacts, Predictor

log = logging.getLogger(__name__)
ENGINES = ("auto", "onnxruntime", "torch")
DEVICE_CHOICES = "auto, cpu, cuda, cuda:N or mps"  # as core/devices.py, which needs torch
PRECISIONS = ("auto", "fp32", "int8", "bf16")
TORCH_MISSING = ("PyTorch is not installed here (the classify-only edition, or a light install); the ONNX Runtime "
                 "engine runs every model on the CPU: leave the engine on auto")


def torch_installed() -> bool:
    """Whether PyTorch can be imported here, found without importing it (edition.installed)."""
    return edition.installed("torch")


def nvidia_gpu_present() -> bool:
    """Whether an NVIDIA driver with a GPU shows itself, without loading CUDA or PyTorch."""
    if sys.platform.startswith("linux"):
        gpus = Path("/proc/driver/nvidia/gpus")
        try:
            return gpus.is_dir() and any(gpus.iterdir())
        except OSError:
            return False
    if sys.platform == "win32":
        return (Path(os.environ.get("SYSTEMROOT", r"C:\Windows")) / "System32" / "nvcuda.dll").exists()
    return False


def resolve_engine(engine: str = "auto", device: str | None = "auto") -> str:
    """"onnxruntime" or "torch" for the engine and device asked for; raises ModelError when they cannot meet."""
    engine = (engine or "auto").strip().lower()
    device = (device or "auto").strip().lower()
    if engine not in ENGINES:
        raise ModelError(f"unknown engine {engine[:40]!r}; one of {', '.join(ENGINES)}")
    if not re.fullmatch(r"auto|cpu|mps|cuda(:\d{1,4})?", device):  # "gpu" ran on the CPU without a word
        raise DeviceError(f"unknown device {device[:40]!r}; use {DEVICE_CHOICES}")
    wants_gpu = device.startswith("cuda") or device == "mps"
    if engine == "onnxruntime":
        if wants_gpu:
            raise ModelError(f"the ONNX Runtime engine runs on the CPU here; for {device}, use --engine torch")
        return engine
    if engine == "torch" or wants_gpu:
        if not torch_installed():
            raise ModelError(TORCH_MISSING if engine == "torch" else
                             f"{device} needs PyTorch, which is not installed here; use --device cpu")
        return "torch"
    if device == "auto" and nvidia_gpu_present() and torch_installed():
        return "torch"
    return "onnxruntime"


def open_predictor(source, *, engine: str = "auto", device: str | None = "auto", precision: str = "auto",
                   registry=None, path: os.PathLike | str | None = None) -> Predictor:
    """A Predictor for `source`: a registry name, a .pth file, None (the default model) or a loaded checkpoint
    (then `path`, the file it was read from, lets its ONNX graph come from the cache)."""
    from ..models.checkpoint import read_checkpoint

    precision = (precision or "auto").strip().lower()
    if precision not in PRECISIONS:
        raise ModelError(f"unknown precision {precision[:40]!r}; one of {', '.join(PRECISIONS)}")
    which = resolve_engine(engine, device)
    if source is None or isinstance(source, (str, os.PathLike)):
        if registry is None:
            from ..models.registry import Registry

            registry = Registry()
        path = registry.resolve(source)
        # ONNX Runtime reads the weights only to build a graph that is not cached (OrtBackend.for_checkpoint)
        ckpt = read_checkpoint(path, weights=which == "torch")
    else:
        ckpt, path = source, path or "<checkpoint>"
    facts = ModelFacts.of(ckpt)
    if which == "torch":
        if precision == "int8":
            raise ModelError("int8 runs in the ONNX Runtime engine; leave the engine on auto or choose onnxruntime")
        from .torch_backend import TorchBackend

        backend = TorchBackend.for_checkpoint(ckpt, device=device, precision="fp32" if precision == "fp32" else
                                              ("bf16" if precision == "bf16" else "auto"), source=str(path))
    else:
        from ..inference.int8 import int8_status
        from ..inference.ort_backend import OrtBackend

        if precision == "bf16":
            raise ModelError("bf16 runs in the PyTorch engine; choose --engine torch, or int8 or fp32")
        status = int8_status(ckpt)
        if precision == "int8" and not status.usable:
            raise ModelError(f"this model has no verified int8 version ({status.reason}); use --precision fp32")
        use = "int8" if precision in ("auto", "int8") and status.usable else "fp32"
        try:
            backend = OrtBackend.for_checkpoint(ckpt, precision=use, source=path)
        except ModelError as exc:
            if use != "int8":
                raise
            if precision == "int8":
                raise ModelError(f"{exc}; use --precision fp32") from None
            # auto: a damaged int8 version only loses the int8 version, never the model
            log.warning("%s: classifying in fp32: %s", path, exc)
            backend = OrtBackend.for_checkpoint(ckpt, precision="fp32", source=path)
    ckpt.state_dict = None  # the backend holds the weights now; don't keep a second copy
    return Predictor(facts, backend, source=path)
