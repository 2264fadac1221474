"""Prediction with a checkpoint's own eval preprocessing: one image, or many in batches.

Many files: `Predictor.batches()` (images.decode_batches: threads decode JPEGs at a reduced scale, resize and
crop, ahead of the model) -> `probabilities()` on a uint8 batch in channels_last -> `predict_batch()`.
`predict_paths()` is that loop; evaluation reuses the same steps.
"""
from __future__ import annotations

import math
import os
from collections.abc import Callable, Iterable, Iterator, Sequence
from contextlib import closing
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch
from PIL import Image

from .checkpoint import Checkpoint, load_checkpoint
from .devices import resolve_device
from .errors import ImageLoadError
from .images import DecodedBatch, Source, decode_batches, load_image
from .preprocess import resize_and_crop


@dataclass
class Prediction:
    path: str | None
    label: str | None = None
    confidence: float | None = None
    top_k: list[tuple[str, float]] = field(default_factory=list)
    error: str | None = None
    class_index: int | None = None
    thumbnail: Any = field(default=None, repr=False, compare=False)  # small PIL image, when asked for

    @property
    def ok(self) -> bool:
        return self.error is None

    def to_json(self) -> dict:
        """Plain JSON values; a non-finite number becomes null (bare NaN is not JSON)."""
        if self.error is not None:
            return {"path": self.path, "error": self.error}
        return {"path": self.path, "label": self.label, "confidence": _finite(self.confidence),
                "top_k": [[label, _finite(prob)] for label, prob in self.top_k]}


def _finite(value: float | None) -> float | None:
    return value if value is not None and math.isfinite(value) else None


def csv_cell(value: object) -> str:
    """A CSV cell that a spreadsheet shows as text: NUL bytes dropped, and a leading =, +, -, @ (a formula
    in Excel, LibreOffice and Google Sheets) neutralised with a leading apostrophe."""
    text = str(value).replace("\x00", "")
    return "'" + text if text[:1] in ("=", "+", "-", "@", "\t", "\r") else text


PRECISIONS = ("fp32", "bf16", "auto")


class Predictor:
    """Wraps a model and its preprocessing. Thread-compatible: use one Predictor per thread.

    precision: "fp32" (the default), "bf16" (autocast), or "auto" (bf16 where the device has native bf16:
    a CPU with AVX512-BF16 or AMX, a CUDA GPU that supports it; else fp32). bf16 is not the default because
    its top-1 answers can differ from fp32's on near ties (see benchmarks/bench_predict_folder.py --bf16).
    """

    def __init__(self, checkpoint: Checkpoint, *, device: str | torch.device | None = "auto",
                 source: os.PathLike | str = "<checkpoint>", precision: str = "fp32"):
        self.checkpoint = checkpoint
        self.source = str(source)
        self.device = resolve_device(device)
        self.class_names = list(checkpoint.class_names)
        self.preprocess = checkpoint.preprocess
        self.amp_dtype = inference_dtype(self.device, precision)
        model = checkpoint.build_model(source)
        # channels_last: the layout oneDNN (CPU) and cuDNN (GPU) convolutions run fastest in; the input batch
        # is made in it directly (decode_batches' rows are H x W x 3)
        self.model = model.to(self.device).eval().to(memory_format=torch.channels_last)
        self._mean = torch.tensor(self.preprocess.mean, device=self.device).view(1, 3, 1, 1) * 255.0
        self._inv_std = 1.0 / (torch.tensor(self.preprocess.std, device=self.device).view(1, 3, 1, 1) * 255.0)
        checkpoint.state_dict = None  # the model holds the weights now; don't keep a second copy

    @classmethod
    def from_file(cls, path: os.PathLike | str, *, device: str | torch.device | None = "auto",
                  precision: str = "fp32") -> Predictor:
        return cls(load_checkpoint(path), device=device, source=path, precision=precision)

    # ---- steps -------------------------------------------------------------------------
    def prepare(self, image: Image.Image) -> torch.Tensor:
        """RGB PIL image -> uint8 tensor 3 x S x S (resize + center crop), on the CPU."""
        return torch.from_numpy(np.array(resize_and_crop(image, self.preprocess))).permute(2, 0, 1)

    def load(self, source: Source, name: str | None = None) -> torch.Tensor:
        return self.prepare(load_image(source, name=name, min_side=self.preprocess.resize))

    @torch.inference_mode()
    def probabilities(self, batch_uint8: torch.Tensor) -> torch.Tensor:
        """uint8 N x 3 x S x S -> class probabilities N x C (float32, CPU)."""
        x = batch_uint8.to(self.device, non_blocking=True).float()  # keeps a channels_last layout
        x = x.sub_(self._mean).mul_(self._inv_std).contiguous(memory_format=torch.channels_last)
        if self.amp_dtype is None:
            logits = self.model(x)
        else:
            with torch.autocast(self.device.type, dtype=self.amp_dtype):
                logits = self.model(x)
        return logits.float().softmax(dim=1).cpu()

    def _results(self, probs: torch.Tensor, paths: Sequence[str | None], k: int) -> list[Prediction]:
        k = max(1, min(int(k), probs.shape[1]))
        values, indices = probs.topk(k, dim=1)
        out = []
        for path, vals, idxs in zip(paths, values.tolist(), indices.tolist()):
            top = [(self.class_names[i], float(v)) for i, v in zip(idxs, vals)]
            out.append(Prediction(path=path, label=top[0][0], confidence=top[0][1], top_k=top, class_index=idxs[0]))
        return out

    # ---- public API ----------------------------------------------------------------------
    def predict_image(self, image: Image.Image, *, top_k: int = 5, path: str | None = None) -> Prediction:
        return self._results(self.probabilities(self.prepare(image).unsqueeze(0)), [path], top_k)[0]

    def predict_file(self, source: Source, *, top_k: int = 5, name: str | None = None) -> Prediction:
        label = name or (str(source) if isinstance(source, (str, os.PathLike)) else None)
        try:
            tensor = self.load(source, name=label)
        except ImageLoadError as exc:
            return Prediction(path=label, error=str(exc))
        return self._results(self.probabilities(tensor.unsqueeze(0)), [label], top_k)[0]

    def batches(
        self,
        paths: Iterable[os.PathLike | str],
        *,
        batch_size: int = 32,
        cancelled: Callable[[], bool] | None = None,
        thumbnail: int | None = None,
    ) -> Iterator[DecodedBatch]:
        """The files decoded for this model, batch by batch (images.decode_batches: worker threads decode
        ahead while the caller runs the model). Use `batch.tensor()` with probabilities()."""
        return decode_batches(paths, self.preprocess, batch_size=batch_size, cancelled=cancelled,
                              thumbnail=thumbnail)

    def predict_batch(self, batch: DecodedBatch, *, top_k: int = 5) -> list[Prediction]:
        """Predictions for every file of `batch`, in its order; a file that could not be decoded gets `error`."""
        probs = self.probabilities(batch.tensor()) if batch.decoded else None
        ok = iter(self._results(probs, [batch.paths[i] for i in batch.decoded], top_k) if probs is not None else [])
        out = [Prediction(path=path, error=batch.errors[i]) if i in batch.errors else next(ok)
               for i, path in enumerate(batch.paths)]
        for i, thumb in batch.thumbnails.items():
            out[i].thumbnail = thumb
        return out

    def predict_paths(
        self,
        paths: Iterable[os.PathLike | str],
        *,
        top_k: int = 5,
        batch_size: int = 32,
        cancelled: Callable[[], bool] | None = None,
        thumbnail: int | None = None,
    ) -> Iterator[list[Prediction]]:
        """Yield predictions batch by batch, in input order. Bad files give a Prediction with `error`.

        thumbnail: also attach a PIL thumbnail of at most this size to each prediction, made from the
        same decoded image (each file is decoded once).
        """
        with closing(self.batches(paths, batch_size=batch_size, cancelled=cancelled, thumbnail=thumbnail)) as it:
            for batch in it:
                if cancelled is not None and cancelled():
                    return
                yield self.predict_batch(batch, top_k=top_k)


def inference_dtype(device: torch.device, precision: str = "fp32") -> torch.dtype | None:
    """The autocast dtype prediction runs in on `device` ("fp32", "bf16" or "auto"), or None for fp32."""
    if precision not in PRECISIONS:
        raise ValueError(f"unknown precision {str(precision)[:40]!r}; one of {', '.join(PRECISIONS)}")
    if precision == "fp32":
        return None
    if precision == "bf16":
        return torch.bfloat16
    if device.type == "cuda":
        return torch.bfloat16 if torch.cuda.is_bf16_supported() else None
    if device.type == "cpu":
        from .devices import cpu_has_native_bf16

        return torch.bfloat16 if cpu_has_native_bf16() else None
    return None


def top1_agreement(fp32: torch.Tensor, other: torch.Tensor) -> tuple[int, int]:
    """(how many rows have the same top-1 class, how many rows) of two N x C score tensors."""
    if fp32.shape != other.shape:
        raise ValueError(f"the scores differ in shape: {tuple(fp32.shape)} and {tuple(other.shape)}")
    return int((fp32.argmax(dim=1) == other.argmax(dim=1)).sum()), int(fp32.shape[0])


def write_csv(predictions: Iterable[Prediction], out: os.PathLike | str, top_k: int = 5) -> Path:
    """path, label, confidence, error and the top-k as label/probability column pairs; atomic."""
    import csv
    import io

    from .atomic import atomic_write_bytes

    buf = io.StringIO()
    writer = csv.writer(buf)
    header = ["path", "label", "confidence", "error"]
    for i in range(1, top_k + 1):
        header += [f"top{i}_label", f"top{i}_prob"]
    writer.writerow(header)
    for p in predictions:
        row = [csv_cell(p.path or ""), csv_cell(p.label or ""),
               "" if _finite(p.confidence) is None else f"{p.confidence:.6f}", csv_cell(p.error or "")]
        for i in range(top_k):
            if i < len(p.top_k):
                row += [csv_cell(p.top_k[i][0]), f"{p.top_k[i][1]:.6f}"]
            else:
                row += ["", ""]
        writer.writerow(row)
    return atomic_write_bytes(out, buf.getvalue().encode("utf-8"))
