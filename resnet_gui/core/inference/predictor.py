"""Prediction with a checkpoint's own eval preprocessing: one image, or many in batches.

Many files: `Predictor.batches()` (batches.decode_batches: threads decode JPEGs at a reduced scale, resize and
crop, ahead of the model) -> `probabilities()` on a uint8 batch in channels_last -> `predict_batch()`.
`predict_paths()` is that loop; evaluation reuses the same steps.
"""
from __future__ import annotations

import math
import os
import threading
from collections.abc import Callable, Iterable, Iterator, Sequence
from contextlib import closing
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch
from PIL import Image
from torch import nn

from ..devices import resolve_device
from ..errors import ImageLoadError
from ..images import Source, load_image
from ..models.checkpoint import Checkpoint, feature_dim, load_checkpoint
from ..models.preprocess import resize_and_crop
from .batches import DecodedBatch, decode_batches
from .calibration import temperature_of
from .familiarity import Familiarity


@dataclass
class Prediction:
    path: str | None
    label: str | None = None
    confidence: float | None = None
    top_k: list[tuple[str, float]] = field(default_factory=list)
    error: str | None = None
    class_index: int | None = None
    thumbnail: Any = field(default=None, repr=False, compare=False)  # small PIL image, when asked for
    unsure: bool = False                 # calibrated confidence below the predictor's threshold
    unfamiliar: bool | None = None       # unlike anything the model was trained on; None: no familiarity data
    familiarity: float | None = None     # 0..1: share of the model's validation images at least this far away

    @property
    def ok(self) -> bool:
        return self.error is None

    def to_json(self) -> dict:
        """Plain JSON values; a non-finite number becomes null (bare NaN is not JSON)."""
        if self.error is not None:
            return {"path": self.path, "error": self.error}
        return {"path": self.path, "label": self.label, "confidence": _finite(self.confidence),
                "top_k": [[label, _finite(prob)] for label, prob in self.top_k], "unsure": self.unsure,
                "unfamiliar": self.unfamiliar, "familiarity": _finite(self.familiarity)}

    @property
    def state(self) -> str:
        """"error", "unfamiliar", "unsure" or "confident": the answer a person reads."""
        if self.error is not None:
            return "error"
        if self.unfamiliar:
            return "unfamiliar"
        return "unsure" if self.unsure else "confident"


def _finite(value: float | None) -> float | None:
    return value if value is not None and math.isfinite(value) else None


def csv_cell(value: object) -> str:
    """A CSV cell that a spreadsheet shows as text: NUL bytes dropped, and a leading =, +, -, @ (a formula
    in Excel, LibreOffice and Google Sheets) neutralised with a leading apostrophe."""
    text = str(value).replace("\x00", "")
    return "'" + text if text[:1] in ("=", "+", "-", "@", "\t", "\r") else text


PRECISIONS = ("fp32", "bf16", "auto")
DEFAULT_UNSURE_BELOW = 0.60


class Predictor:
    """Wraps a model and its preprocessing. Thread-compatible: use one Predictor per thread.

    precision: "fp32" (the default), "bf16" (autocast), or "auto" (bf16 where the device has native bf16:
    a CPU with AVX512-BF16 or AMX, a CUDA GPU that supports it; else fp32). bf16 is not the default because
    its top-1 answers can differ from fp32's on near ties (see benchmarks/bench_predict_folder.py --bf16).

    Confidences are calibrated when the checkpoint has a temperature (logits are divided by it); an answer
    below `unsure_below` is "not sure"; with familiarity data, every prediction also says how familiar the
    image looks (from the same forward pass) and whether it is unlike anything the model was trained on.
    """

    def __init__(self, checkpoint: Checkpoint, *, device: str | torch.device | None = "auto",
                 source: os.PathLike | str = "<checkpoint>", precision: str = "fp32",
                 unsure_below: float = DEFAULT_UNSURE_BELOW):
        self.checkpoint = checkpoint
        self.source = str(source)
        self.device = resolve_device(device)
        self.class_names = list(checkpoint.class_names)
        self.preprocess = checkpoint.preprocess
        self.amp_dtype = inference_dtype(self.device, precision)
        model = fold_batch_norms(checkpoint.build_model(source).eval())
        # channels_last: the layout oneDNN (CPU) and cuDNN (GPU) convolutions run fastest in; the input batch
        # is made in it directly (decode_batches' rows are H x W x 3)
        self.model = model.to(self.device).to(memory_format=torch.channels_last)
        self._mean = torch.tensor(self.preprocess.mean, device=self.device).view(1, 3, 1, 1) * 255.0
        self._inv_std = 1.0 / (torch.tensor(self.preprocess.std, device=self.device).view(1, 3, 1, 1) * 255.0)
        checkpoint.state_dict = None  # the model holds the weights now; don't keep a second copy
        self.temperature = temperature_of(checkpoint.calibration)
        self.calibrated = self.temperature != 1.0 or bool(checkpoint.calibration)
        self.unsure_below = float(unsure_below)
        self.familiarity: Familiarity | None = None
        self._local = threading.local()  # the features of the forward pass running in this thread
        if checkpoint.familiarity is not None:
            self.familiarity = Familiarity.from_checkpoint(checkpoint.familiarity, num_classes=len(self.class_names),
                                                           feature_dim=feature_dim(checkpoint.arch))
            self.model.fc.register_forward_pre_hook(self._keep_features)

    @classmethod
    def from_file(cls, path: os.PathLike | str, *, device: str | torch.device | None = "auto",
                  precision: str = "fp32", unsure_below: float = DEFAULT_UNSURE_BELOW) -> Predictor:
        return cls(load_checkpoint(path), device=device, source=path, precision=precision, unsure_below=unsure_below)

    # ---- steps -------------------------------------------------------------------------
    def prepare(self, image: Image.Image) -> torch.Tensor:
        """RGB PIL image -> uint8 tensor 3 x S x S (resize + center crop), on the CPU."""
        return torch.from_numpy(np.array(resize_and_crop(image, self.preprocess))).permute(2, 0, 1)

    def load(self, source: Source, name: str | None = None) -> torch.Tensor:
        return self.prepare(load_image(source, name=name, min_side=self.preprocess.resize))

    def normalise(self, batch_uint8: torch.Tensor) -> torch.Tensor:
        """uint8 N x 3 x S x S -> the model's float input on its device (channels_last)."""
        x = batch_uint8.to(self.device, non_blocking=True).float()  # keeps a channels_last layout
        return x.sub_(self._mean).mul_(self._inv_std).contiguous(memory_format=torch.channels_last)

    def _keep_features(self, module, inputs) -> None:
        # detached: a Grad-CAM pass (explain) runs with autograd, and a thread-local holding its graph was freed
        # at thread exit, after the graph's owners (a crash in the GUI's explain worker)
        self._local.features = inputs[0].detach()

    @torch.inference_mode()
    def scores(self, batch_uint8: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor | None]:
        """(calibrated class probabilities N x C, familiarity N or None), float32 on the CPU, from one pass.
        Safe to call from several threads at once (each thread keeps its own pass's features)."""
        x = self.normalise(batch_uint8)
        self._local.features = None
        if self.amp_dtype is None:
            logits = self.model(x)
        else:
            with torch.autocast(self.device.type, dtype=self.amp_dtype):
                logits = self.model(x)
        probs = (logits.float() / self.temperature).softmax(dim=1).cpu()
        features, self._local.features = getattr(self._local, "features", None), None
        familiar = self.familiarity.scores(features) if self.familiarity is not None and features is not None \
            else None
        return probs, familiar

    def probabilities(self, batch_uint8: torch.Tensor) -> torch.Tensor:
        """uint8 N x 3 x S x S -> calibrated class probabilities N x C (float32, CPU)."""
        return self.scores(batch_uint8)[0]

    def _results(self, probs: torch.Tensor, paths: Sequence[str | None], k: int,
                 familiar: torch.Tensor | None = None) -> list[Prediction]:
        k = max(1, min(int(k), probs.shape[1]))
        values, indices = probs.topk(k, dim=1)
        out = []
        for row, (path, vals, idxs) in enumerate(zip(paths, values.tolist(), indices.tolist())):
            top = [(self.class_names[i], float(v)) for i, v in zip(idxs, vals)]
            pred = Prediction(path=path, label=top[0][0], confidence=top[0][1], top_k=top, class_index=idxs[0],
                              unsure=top[0][1] < self.unsure_below)
            if familiar is not None:
                pred.familiarity = float(familiar[row])
                pred.unfamiliar = pred.familiarity < self.familiarity.threshold
            out.append(pred)
        return out

    def explain(self, image: Image.Image | torch.Tensor, class_index: int | None = None) -> tuple[torch.Tensor, int]:
        """Grad-CAM at layer4 for one image (a PIL image, or a uint8 3 x S x S tensor from prepare()): the map in
        [0, 1] at layer4's resolution and the class it explains (None: the top class)."""
        from .gradcam import grad_cam

        x = self.prepare(image) if isinstance(image, Image.Image) else image
        return grad_cam(self.model, self.normalise(x.unsqueeze(0)).clone(), class_index)

    # ---- public API ----------------------------------------------------------------------
    def predict_image(self, image: Image.Image, *, top_k: int = 5, path: str | None = None) -> Prediction:
        probs, familiar = self.scores(self.prepare(image).unsqueeze(0))
        return self._results(probs, [path], top_k, familiar)[0]

    def predict_file(self, source: Source, *, top_k: int = 5, name: str | None = None) -> Prediction:
        label = name or (str(source) if isinstance(source, (str, os.PathLike)) else None)
        try:
            tensor = self.load(source, name=label)
        except ImageLoadError as exc:
            return Prediction(path=label, error=str(exc))
        probs, familiar = self.scores(tensor.unsqueeze(0))
        return self._results(probs, [label], top_k, familiar)[0]

    def batches(
        self,
        paths: Iterable[os.PathLike | str],
        *,
        batch_size: int = 32,
        cancelled: Callable[[], bool] | None = None,
        thumbnail: int | None = None,
    ) -> Iterator[DecodedBatch]:
        """The files decoded for this model, batch by batch (batches.decode_batches: worker threads decode
        ahead while the caller runs the model). Use `batch.tensor()` with probabilities()."""
        return decode_batches(paths, self.preprocess, batch_size=batch_size, cancelled=cancelled,
                              thumbnail=thumbnail)

    def predict_batch(self, batch: DecodedBatch, *, top_k: int = 5) -> list[Prediction]:
        """Predictions for every file of `batch`, in its order; a file that could not be decoded gets `error`."""
        probs, familiar = self.scores(batch.tensor()) if batch.decoded else (None, None)
        ok = iter(self._results(probs, [batch.paths[i] for i in batch.decoded], top_k, familiar)
                  if probs is not None else [])
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


def fold_batch_norms(model: nn.Module) -> nn.Module:
    """Fold each BatchNorm2d that directly follows a Conv2d in a torchvision ResNet (convN -> bnN in the stem and
    the blocks, Sequential(conv, bn) in the shortcuts) into that convolution's weight and bias, in place; the
    BatchNorm becomes an Identity. For inference only (eval mode): the same outputs within float rounding,
    one pass over the activations fewer per convolution."""
    from torch.nn.utils.fusion import fuse_conv_bn_eval

    if model.training:
        raise ValueError("fold_batch_norms() is for a model in eval mode")
    for module in list(model.modules()):
        for n in ("1", "2", "3"):
            conv, bn = getattr(module, "conv" + n, None), getattr(module, "bn" + n, None)
            if isinstance(conv, nn.Conv2d) and isinstance(bn, nn.BatchNorm2d) and bn.track_running_stats:
                setattr(module, "conv" + n, fuse_conv_bn_eval(conv, bn))
                setattr(module, "bn" + n, nn.Identity())
        if isinstance(module, nn.Sequential) and len(module) == 2 and isinstance(module[0], nn.Conv2d) \
                and isinstance(module[1], nn.BatchNorm2d) and module[1].track_running_stats:
            module[0], module[1] = fuse_conv_bn_eval(module[0], module[1]), nn.Identity()
    return model


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
        from ..devices import cpu_has_native_bf16

        return torch.bfloat16 if cpu_has_native_bf16() else None
    return None


def top1_agreement(fp32: torch.Tensor, other: torch.Tensor) -> tuple[int, int]:
    """(how many rows have the same top-1 class, how many rows) of two N x C score tensors."""
    if fp32.shape != other.shape:
        raise ValueError(f"the scores differ in shape: {tuple(fp32.shape)} and {tuple(other.shape)}")
    return int((fp32.argmax(dim=1) == other.argmax(dim=1)).sum()), int(fp32.shape[0])


def write_csv(predictions: Iterable[Prediction], out: os.PathLike | str, top_k: int = 5) -> Path:
    """path, label, confidence, error, the top-k as label/probability column pairs, then status (confident, unsure,
    unfamiliar or error), unsure, unfamiliar (empty when the model has no familiarity data) and familiarity;
    written atomically."""
    import csv
    import io

    from ..atomic import atomic_write_bytes

    buf = io.StringIO()
    writer = csv.writer(buf)
    header = ["path", "label", "confidence", "error"]
    for i in range(1, top_k + 1):
        header += [f"top{i}_label", f"top{i}_prob"]
    header += ["status", "unsure", "unfamiliar", "familiarity"]
    writer.writerow(header)
    for p in predictions:
        row = [csv_cell(p.path or ""), csv_cell(p.label or ""),
               "" if _finite(p.confidence) is None else f"{p.confidence:.6f}", csv_cell(p.error or "")]
        for i in range(top_k):
            if i < len(p.top_k):
                row += [csv_cell(p.top_k[i][0]), f"{p.top_k[i][1]:.6f}"]
            else:
                row += ["", ""]
        ok = p.error is None
        row += [p.state, int(p.unsure) if ok else "", "" if p.unfamiliar is None else int(p.unfamiliar),
                "" if _finite(p.familiarity) is None else f"{p.familiarity:.4f}"]
        writer.writerow(row)
    return atomic_write_bytes(out, buf.getvalue().encode("utf-8"))
