"""The PyTorch side of export (exporter.py imports it only when PyTorch is installed): the module an export
computes, TorchScript writing and loading, and the PyTorch reference an exported file is checked against."""
from __future__ import annotations

import contextlib
import warnings
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import torch
from torch import nn

from ..models.build import model_from_checkpoint
from ..models.checkpoint import Checkpoint


class ExportModule(nn.Module):
    """uint8 images [N, 3, S, S] -> probabilities (or logits) [N, C], normalisation inside."""

    def __init__(self, model: nn.Module, mean: tuple[float, float, float], std: tuple[float, float, float],
                 *, temperature: float = 1.0, logits: bool = False):
        super().__init__()
        self.model = model.eval()
        # the same arithmetic as Predictor.probabilities: (x - 255 mean) * 1 / (255 std)
        self.register_buffer("mean255", torch.tensor(mean, dtype=torch.float32).view(1, 3, 1, 1) * 255.0)
        self.register_buffer("inv_std255",
                             1.0 / (torch.tensor(std, dtype=torch.float32).view(1, 3, 1, 1) * 255.0))
        self.inv_temperature = 1.0 / float(temperature)
        self.logits = bool(logits)

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        x = (images.float() - self.mean255) * self.inv_std255
        out = self.model(x)
        if self.logits:
            return out
        return (out * self.inv_temperature).softmax(dim=1)


def export_module(ckpt: Checkpoint, source, *, temperature: float, logits: bool) -> ExportModule:
    model = model_from_checkpoint(ckpt, source).float().cpu()
    return ExportModule(model, ckpt.preprocess.mean, ckpt.preprocess.std, temperature=temperature,
                        logits=logits).eval()


@contextlib.contextmanager
def quiet() -> Iterator[None]:
    """torch.jit's deprecation notices and the exporters' tracing warnings are not the user's business here."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", FutureWarning)
        warnings.simplefilter("ignore", DeprecationWarning)
        warnings.simplefilter("ignore", UserWarning)
        yield


def torchscript_writer(module: ExportModule, extra: dict[str, str]):
    with quiet():
        scripted = torch.jit.script(module)

    def write(fh) -> None:
        with quiet():
            torch.jit.save(scripted, fh, _extra_files=extra)

    return write


def run_module(module: ExportModule, images: np.ndarray) -> np.ndarray:
    with torch.no_grad():
        return module(torch.from_numpy(images)).float().numpy()


def run_torchscript(path: Path, images: np.ndarray) -> np.ndarray:
    with quiet():
        loaded = torch.jit.load(str(path), map_location="cpu")
    with torch.no_grad():
        return loaded(torch.from_numpy(images)).float().numpy()
