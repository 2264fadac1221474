"""Prediction with a checkpoint's own eval preprocessing: one image, or many in batches. No torch.

A `Predictor` is the model's knowledge (class names, preprocessing, temperature, familiarity data, the `fc`
weights for heat maps) plus a *backend* that runs the network: ONNX Runtime on the CPU
(`ort_backend.OrtBackend`, the default) or PyTorch (`core/engines/torch_backend.py`, for GPUs and
`--engine torch`). Both take the same uint8 batches and give the same outputs: logits, the pooled
penultimate features (familiarity) and the last stage's feature maps (heat maps).

Many files: `batches()` (threads decode JPEGs at a reduced scale, resize and crop, ahead of the model) ->
`scores()` -> `predict_batch()`; `predict_paths()` is that loop, and evaluation reuses the same steps.

Thread safety: a Predictor is read-only once built, and every method may be called from several threads at
once (ONNX Runtime's `run` is thread-safe; the torch backend keeps no state between calls). Whether an answer is
"not sure" is decided by the reader's threshold (`Prediction.state`), never stored here.
"""
from __future__ import annotations

import os
from collections.abc import Callable, Iterable, Iterator, Sequence
from contextlib import closing
from dataclasses import dataclass
from typing import Any, Protocol

import numpy as np
from PIL import Image

from ..errors import ImageLoadError
from ..images import Source, load_image
from ..models.operating_points import thresholds as operating_thresholds
from ..models.preprocess import resize_and_crop
from .batches import DecodedBatch, decode_batches
from .calibration import softmax, temperature_of
from .cam import class_activation_map
from .familiarity import Familiarity
from .prediction import Prediction

OUTPUTS = ("logits", "features", "feature_maps")
NOT_FINITE = ("the model gave no usable answer for this image (its outputs were not finite numbers: its weights "
              "may be damaged); retrain it, or use another model")


class Backend(Protocol):
    """What runs the network: uint8 images N x S x S x 3 (RGB, as decoded) in, the named OUTPUTS out (float32)."""
    name: str          # "onnxruntime" or "torch"
    device: str        # "cpu", "cuda:0", ...
    precision: str     # "fp32", "int8" or "bf16"

    def run(self, images: np.ndarray, outputs: Sequence[str]) -> dict[str, np.ndarray]: ...


@dataclass(frozen=True)
class ModelFacts:
    """What a checkpoint says about its model, without the weights (except the head, for heat maps)."""
    arch: str
    class_names: tuple[str, ...]
    preprocess: Any                      # core.models.preprocess.Preprocess
    calibration: dict | None
    familiarity: dict | None             # validated record (numpy arrays or tensors)
    fc_weight: np.ndarray                # C x D
    metadata: dict                       # everything else the file says (metrics, dataset, notes, ...)

    @classmethod
    def of(cls, ckpt) -> ModelFacts:
        """From a loaded checkpoint record (numpy or torch state dict, or only its head: read_checkpoint's
        weights=False)."""
        fc = (ckpt.state_dict if ckpt.state_dict is not None else ckpt.head or {}).get("fc.weight")
        if fc is None:
            raise ValueError("the checkpoint has no weights")
        return cls(arch=ckpt.arch, class_names=tuple(ckpt.class_names), preprocess=ckpt.preprocess,
                   calibration=ckpt.calibration, familiarity=ckpt.familiarity,
                   fc_weight=np.array(np.asarray(fc, dtype=np.float32)), metadata=ckpt.metadata())


class Predictor:
    """The answers of one model on images. See the module docstring for the contract."""

    def __init__(self, facts: ModelFacts, backend: Backend, *, source: os.PathLike | str = "<checkpoint>"):
        self.facts = facts
        self.backend = backend
        self.source = str(source)
        self.class_names = list(facts.class_names)
        self.preprocess = facts.preprocess
        self.temperature = temperature_of(facts.calibration)
        self.calibrated = self.temperature != 1.0 or bool(facts.calibration)
        # each class's own "not sure below" (the model's operating points), None where it has none
        self.class_thresholds = operating_thresholds(facts.metadata, self.class_names)
        self.familiarity: Familiarity | None = None
        if facts.familiarity is not None:
            self.familiarity = Familiarity.from_checkpoint(facts.familiarity, num_classes=len(self.class_names),
                                                           feature_dim=facts.fc_weight.shape[1])

    @property
    def device(self) -> str:
        return self.backend.device

    # ---- steps -------------------------------------------------------------------------
    def prepare(self, image: Image.Image) -> np.ndarray:
        """RGB PIL image -> uint8 S x S x 3 array (resize + center crop as the model was trained)."""
        return np.asarray(resize_and_crop(image, self.preprocess), dtype=np.uint8)

    def load(self, source: Source, name: str | None = None) -> np.ndarray:
        return self.prepare(load_image(source, name=name, min_side=self.preprocess.resize))

    def outputs(self, images: np.ndarray, names: Sequence[str] = ("logits", "features")) -> dict[str, np.ndarray]:
        """The backend's raw outputs for a uint8 batch N x S x S x 3 (or one image S x S x 3)."""
        images = np.asarray(images, dtype=np.uint8)
        if images.ndim == 3:
            images = images[None]
        return self.backend.run(images, tuple(names))

    def judge(self, images: np.ndarray) -> tuple[np.ndarray, np.ndarray | None, list[str | None] | None]:
        """(calibrated class probabilities N x C, familiarity N or None, why each image is unfamiliar by its
        input statistics or None), from one pass (familiarity.Familiarity.judge)."""
        want = ("logits", "features") if self.familiarity is not None else ("logits",)
        out = self.outputs(images, want)
        with np.errstate(invalid="ignore", over="ignore"):  # non-finite outputs become errors (_results)
            probs = softmax(out["logits"], self.temperature)
            if self.familiarity is None:
                return probs, None, None
            familiar, _, why = self.familiarity.judge(out["features"], images)
        return probs, familiar, why

    def scores(self, images: np.ndarray) -> tuple[np.ndarray, np.ndarray | None]:
        """(calibrated class probabilities N x C, familiarity N or None), float32, from one pass."""
        return self.judge(images)[:2]

    def probabilities(self, images: np.ndarray) -> np.ndarray:
        """uint8 N x S x S x 3 -> calibrated class probabilities N x C (float32)."""
        return self.scores(images)[0]

    def _results(self, probs: np.ndarray, paths: Sequence[str | None], k: int,
                 familiar: np.ndarray | None = None, why: Sequence[str | None] | None = None) -> list[Prediction]:
        k = max(1, min(int(k), probs.shape[1]))
        order = np.argsort(-probs, axis=1, kind="stable")[:, :k]
        finite = np.isfinite(probs).all(axis=1)
        out = []
        for row, path in enumerate(paths):
            if not finite[row]:  # finite weights can still overflow (3e38 in fc): no answer, never "nan%"
                out.append(Prediction(path=path, error=NOT_FINITE))
                continue
            top = [(self.class_names[i], float(probs[row, i])) for i in order[row]]
            pred = Prediction(path=path, label=top[0][0], confidence=top[0][1], top_k=top,
                              top_indices=[int(i) for i in order[row]],
                              class_index=int(order[row, 0]), class_threshold=self.class_thresholds[order[row, 0]])
            if familiar is not None:
                pred.familiarity = float(familiar[row])
                pred.unfamiliar = pred.familiarity < self.familiarity.threshold
                pred.unfamiliar_why = why[row] if why is not None else None
            out.append(pred)
        return out

    def _judged(self, pixels: np.ndarray, paths: Sequence[str | None], k: int):
        probs, familiar, why = self.judge(pixels)
        return probs, paths, k, familiar, why

    def explain(self, image: Image.Image | np.ndarray, class_index: int | None = None) -> tuple[np.ndarray, int]:
        """The class activation map (cam.py) for one image (a PIL image, or a uint8 S x S x 3 array from
        prepare()): the map in [0, 1] at the last stage's resolution and the class it explains (None: the top)."""
        x = self.prepare(image) if isinstance(image, Image.Image) else image
        out = self.outputs(x, ("logits", "feature_maps"))
        index = int(out["logits"][0].argmax()) if class_index is None else int(class_index)
        return class_activation_map(out["feature_maps"][0], self.facts.fc_weight, index), index

    # ---- public API ----------------------------------------------------------------------
    def predict_image(self, image: Image.Image, *, top_k: int = 5, path: str | None = None) -> Prediction:
        return self._results(*self._judged(self.prepare(image), [path], top_k))[0]

    def predict_file(self, source: Source, *, top_k: int = 5, name: str | None = None) -> Prediction:
        label = name or (str(source) if isinstance(source, (str, os.PathLike)) else None)
        try:
            pixels = self.load(source, name=label)
        except ImageLoadError as exc:
            return Prediction(path=label, error=str(exc))
        return self._results(*self._judged(pixels, [label], top_k))[0]

    def batches(self, paths: Iterable[os.PathLike | str], *, batch_size: int = 32,
                cancelled: Callable[[], bool] | None = None, thumbnail: int | None = None) -> Iterator[DecodedBatch]:
        """The files decoded for this model, batch by batch (batches.decode_batches: worker threads decode
        ahead while the caller runs the model). Use `batch.pixels` with scores()."""
        return decode_batches(paths, self.preprocess, batch_size=batch_size, cancelled=cancelled,
                              thumbnail=thumbnail)

    def predict_batch(self, batch: DecodedBatch, *, top_k: int = 5) -> list[Prediction]:
        """Predictions for every file of `batch`, in its order; a file that could not be decoded gets `error`."""
        ok = iter(self._results(*self._judged(batch.pixels, [batch.paths[i] for i in batch.decoded], top_k))
                  if batch.decoded else [])
        out = [Prediction(path=path, error=batch.errors[i]) if i in batch.errors else next(ok)
               for i, path in enumerate(batch.paths)]
        for i, thumb in batch.thumbnails.items():
            out[i].thumbnail = thumb
        return out

    def predict_paths(self, paths: Iterable[os.PathLike | str], *, top_k: int = 5, batch_size: int = 32,
                      cancelled: Callable[[], bool] | None = None,
                      thumbnail: int | None = None) -> Iterator[list[Prediction]]:
        """Yield predictions batch by batch, in input order. Bad files give a Prediction with `error`.
        thumbnail: also attach a PIL thumbnail of at most this size to each prediction, made from the
        same decoded image (each file is decoded once)."""
        with closing(self.batches(paths, batch_size=batch_size, cancelled=cancelled, thumbnail=thumbnail)) as it:
            for batch in it:
                if cancelled is not None and cancelled():
                    return
                yield self.predict_batch(batch, top_k=top_k)


def top1_agreement(reference: np.ndarray, other: np.ndarray) -> tuple[int, int]:
    """(how many rows have the same top-1 class, how many rows) of two N x C score arrays."""
    reference, other = np.asarray(reference), np.asarray(other)
    if reference.shape != other.shape:
        raise ValueError(f"the scores differ in shape: {reference.shape} and {other.shape}")
    return int((reference.argmax(1) == other.argmax(1)).sum()), int(reference.shape[0])
