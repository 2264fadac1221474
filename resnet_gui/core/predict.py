"""Prediction with a checkpoint's own eval preprocessing: one image, or many in batches."""
from __future__ import annotations

import math
import os
from collections.abc import Callable, Iterable, Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch
from PIL import Image

from .checkpoint import Checkpoint, load_checkpoint
from .devices import resolve_device
from .errors import ImageLoadError
from .images import Source, load_image
from .preprocess import resize_and_crop_uint8


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


class Predictor:
    """Wraps a model and its preprocessing. Thread-compatible: use one Predictor per thread."""

    def __init__(self, checkpoint: Checkpoint, *, device: str | torch.device | None = "auto",
                 source: os.PathLike | str = "<checkpoint>"):
        self.checkpoint = checkpoint
        self.source = str(source)
        self.device = resolve_device(device)
        self.class_names = list(checkpoint.class_names)
        self.preprocess = checkpoint.preprocess
        model = checkpoint.build_model(source)
        self.model = model.to(self.device).eval()
        if self.device.type == "cuda":
            self.model = self.model.to(memory_format=torch.channels_last)
        self._mean = torch.tensor(self.preprocess.mean, device=self.device).view(1, 3, 1, 1) * 255.0
        self._inv_std = 1.0 / (torch.tensor(self.preprocess.std, device=self.device).view(1, 3, 1, 1) * 255.0)
        checkpoint.state_dict = None  # the model holds the weights now; don't keep a second copy

    @classmethod
    def from_file(cls, path: os.PathLike | str, *, device: str | torch.device | None = "auto") -> Predictor:
        return cls(load_checkpoint(path), device=device, source=path)

    # ---- steps -------------------------------------------------------------------------
    def prepare(self, image: Image.Image) -> torch.Tensor:
        """RGB PIL image -> uint8 tensor 3 x S x S (resize + center crop), on the CPU."""
        return resize_and_crop_uint8(image, self.preprocess)

    def load(self, source: Source, name: str | None = None) -> torch.Tensor:
        return self.prepare(load_image(source, name=name, min_side=self.preprocess.resize))

    @torch.inference_mode()
    def probabilities(self, batch_uint8: torch.Tensor) -> torch.Tensor:
        """uint8 N x 3 x S x S -> class probabilities N x C (float32, CPU)."""
        x = batch_uint8.to(self.device, non_blocking=True).float().sub_(self._mean).mul_(self._inv_std)
        if self.device.type == "cuda":
            x = x.contiguous(memory_format=torch.channels_last)
        return self.model(x).float().softmax(dim=1).cpu()

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
        paths = [str(p) for p in paths]
        thumbs: dict[str, Any] = {}

        def load(path: str):
            try:
                image = load_image(path, name=path, min_side=self.preprocess.resize)
            except ImageLoadError as exc:
                return exc
            if thumbnail:
                small = image.copy()
                small.thumbnail((thumbnail, thumbnail))
                thumbs[path] = small
            return self.prepare(image)

        with ThreadPoolExecutor(max_workers=2, thread_name_prefix="image-decode") as pool:
            for start in range(0, len(paths), batch_size):
                if cancelled is not None and cancelled():
                    return
                chunk = paths[start:start + batch_size]
                loaded = list(pool.map(load, chunk))
                good = [t for t in loaded if isinstance(t, torch.Tensor)]
                ok = iter(self._results(self.probabilities(torch.stack(good)),
                                        [p for p, t in zip(chunk, loaded) if isinstance(t, torch.Tensor)],
                                        top_k) if good else [])
                batch = [next(ok) if isinstance(t, torch.Tensor) else Prediction(path=p, error=str(t))
                         for p, t in zip(chunk, loaded)]
                for pred in batch:
                    pred.thumbnail = thumbs.pop(pred.path, None)
                yield batch


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
