"""The int8 version of a model: built with ONNX Runtime's static quantization, kept only when verified.

Recipe (`RECIPE`, measured in benchmarks/bench_int8.py): `quant_pre_process` (onnx shape inference and graph
optimisation; no symbolic shapes, so no sympy), then `quantize_static` in QDQ format, activations QUInt8, weights
QInt8 per output channel, min-max calibration on the model's own training images (eval preprocessing).

Verification, on images the calibration did not see (the validation split, plus training images left out of
calibration), against the fp32 graph with the model's temperature applied to both:
  * among the images fp32 answers *sure* (at the default threshold), int8 names the same class, also sure, on
    at least 99.5 % (`MIN_SURE_AGREEMENT`);
  * overall top-1 agreement at least 98 % (`MIN_AGREEMENT`);
  * with labels: accuracy at most 1 point lower, expected calibration error at most 0.01 worse;
  * with familiarity data: the "unlike anything it was trained on" flag agrees on at least 98 %.
With fewer than `MIN_VERIFY_IMAGES` such images nothing is kept: a figure on a handful of images proves nothing.

The outcome is stored in the checkpoint either way (metadata "int8": the figures, whether it was kept and why
not), and the int8 graph itself only when kept ("int8_model", bytes). Prediction uses it with precision "auto"
or "int8" (ort_backend.py). numpy and onnxruntime only.
"""
from __future__ import annotations

import math
import tempfile
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from ..errors import ModelError
from .calibration import ECE_BINS, reliability, softmax
from .prediction import DEFAULT_THRESHOLD

RECIPE = "qdq-u8s8-perchannel-minmax"
MIN_SURE_AGREEMENT = 0.995
MIN_AGREEMENT = 0.98
MAX_ACCURACY_DROP = 0.01
MAX_ECE_INCREASE = 0.01
MIN_VERIFY_IMAGES = 30
CALIBRATION_IMAGES = 64
CALIBRATION_BATCH = 8


@dataclass(frozen=True)
class Int8Status:
    usable: bool
    reason: str                       # why not, or what was verified, in words
    verification: dict | None = None  # the stored figures


def int8_status(ckpt) -> Int8Status:
    """Whether `ckpt` carries a verified int8 version it can use, and why not."""
    info = (ckpt.metadata() if hasattr(ckpt, "metadata") else {}).get("int8")
    blob = getattr(ckpt, "int8_model", None)
    if not isinstance(info, dict):
        return Int8Status(False, "no int8 version was built for it")
    if info.get("kept") is not True:  # exactly true: "no", 1 or a list from a file is not a verification
        return Int8Status(False, str(info.get("reason") or "its int8 version did not pass verification")[:300], info)
    if blob is None or not len(blob):
        return Int8Status(False, "its int8 version is missing from the file", info)
    return Int8Status(True, describe(info), info)


def stored_int8_model(ckpt) -> bytes:
    status = int8_status(ckpt)
    if not status.usable:
        raise ModelError(f"this model has no verified int8 version ({status.reason})")
    return bytes(np.asarray(ckpt.int8_model, dtype=np.uint8).tobytes())


def _share(value) -> str | None:
    ok = isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value)
    return f"{value:.1%}" if ok and 0 <= value <= 1 else None


def _count(value) -> int | None:
    return value if isinstance(value, int) and not isinstance(value, bool) and value >= 0 else None


def describe(info: dict) -> str:
    """One sentence: what the verification found (values from a file: anything odd is left out)."""
    if info.get("kept") is not True:
        return str(info.get("reason") or "not verified")[:300]
    parts = []
    if _share(info.get("agreement")) and _count(info.get("images")) is not None:
        parts.append(f"same answer as fp32 on {_share(info['agreement'])} of {info['images']:,} held-out images")
    if _share(info.get("sure_agreement")) and _count(info.get("sure_images")):
        parts.append(f"{_share(info['sure_agreement'])} of the {info['sure_images']:,} sure ones")
    if _share(info.get("accuracy_int8")) and _share(info.get("accuracy_fp32")):
        parts.append(f"accuracy {_share(info['accuracy_int8'])} (fp32 {_share(info['accuracy_fp32'])})")
    return "verified: " + (", ".join(parts) if parts else "against fp32")


# ---- building ------------------------------------------------------------------------------
class _Reader:
    """onnxruntime's CalibrationDataReader over uint8 images N x S x S x 3 (given in NCHW batches)."""

    def __init__(self, images: np.ndarray, input_name: str):
        self.images, self.input_name, self.start = images, input_name, 0

    def get_next(self) -> dict | None:
        if self.start >= len(self.images):
            return None
        chunk = self.images[self.start:self.start + CALIBRATION_BATCH]
        self.start += CALIBRATION_BATCH
        return {self.input_name: np.ascontiguousarray(chunk.transpose(0, 3, 1, 2))}

    def __iter__(self) -> Iterator[dict]:
        while (item := self.get_next()) is not None:
            yield item


def quantize(fp32_model: bytes, calibration: np.ndarray, *, method: str = "minmax",
             exclude: tuple[str, ...] = ()) -> bytes:
    """The static int8 (QDQ) version of a serialised fp32 ONNX model, calibrated on uint8 images N x S x S x 3.
    `exclude`: node names left in fp32. Works in a temporary folder that is removed afterwards."""
    import onnx
    from onnxruntime.quantization import (
        CalibrationMethod,
        QuantFormat,
        QuantType,
        quantize_static,
    )
    from onnxruntime.quantization.shape_inference import quant_pre_process

    methods = {"minmax": CalibrationMethod.MinMax, "entropy": CalibrationMethod.Entropy,
               "percentile": CalibrationMethod.Percentile}
    if len(calibration) == 0:
        raise ModelError("no images to calibrate the int8 version on")
    model = onnx.load_model_from_string(fp32_model)
    with tempfile.TemporaryDirectory(prefix="resnet-gui-int8-") as tmp:
        pre, out = Path(tmp) / "pre.onnx", Path(tmp) / "int8.onnx"
        quant_pre_process(model, str(pre), skip_symbolic_shape=True)
        quantize_static(str(pre), str(out), _Reader(calibration, model.graph.input[0].name),
                        quant_format=QuantFormat.QDQ, per_channel=True, activation_type=QuantType.QUInt8,
                        weight_type=QuantType.QInt8, calibrate_method=methods[method],
                        nodes_to_exclude=list(exclude), extra_options={"CalibMaxIntermediateOutputs": 16})
        return out.read_bytes()


# ---- verifying -----------------------------------------------------------------------------
Run = Callable[[np.ndarray], dict]   # uint8 images -> {"logits": N x C, "features": N x D (when asked for)}


def _outputs(run: Run, images: np.ndarray, batch: int = 32) -> dict[str, np.ndarray]:
    parts = [run(images[i:i + batch]) for i in range(0, len(images), batch)]
    return {k: np.concatenate([p[k] for p in parts]) for k in parts[0]} if parts else {}


def verify(fp32: Run, int8: Run, images: np.ndarray, labels: np.ndarray | None = None, *,
           temperature: float = 1.0, threshold: float = DEFAULT_THRESHOLD, familiarity=None) -> dict[str, Any]:
    """Compare the int8 model with fp32 on held-out uint8 images. Returns the figures and whether they pass
    ("kept"), with the reason when not. With `familiarity` (the model's Familiarity), the "unlike anything it was
    trained on" flag must agree too: int8 moves the features a little, and the statistics were fitted in fp32."""
    n = len(images)
    out: dict[str, Any] = {"recipe": RECIPE, "images": n, "threshold": threshold}
    if n < MIN_VERIFY_IMAGES:
        return {**out, "kept": False,
                "reason": f"only {n} held-out images to verify it on (at least {MIN_VERIFY_IMAGES} are needed)"}
    ra, rb = _outputs(fp32, images), _outputs(int8, images)
    a, b = softmax(ra["logits"], temperature), softmax(rb["logits"], temperature)
    top_a, top_b = a.argmax(1), b.argmax(1)
    same = top_a == top_b
    sure_a, sure_b = a.max(1) >= threshold, b.max(1) >= threshold
    out["agreement"] = float(same.mean())
    out["sure_images"] = int(sure_a.sum())
    out["sure_agreement"] = float((same & sure_b)[sure_a].mean()) if sure_a.any() else 1.0
    out["max_probability_change"] = float(np.abs(a - b).max())
    failures = []
    if out["sure_agreement"] < MIN_SURE_AGREEMENT:
        failures.append(f"it agreed with fp32 on {out['sure_agreement']:.1%} of the sure answers "
                        f"(at least {MIN_SURE_AGREEMENT:.1%} needed)")
    if out["agreement"] < MIN_AGREEMENT:
        failures.append(f"it agreed with fp32 on {out['agreement']:.1%} of the images "
                        f"(at least {MIN_AGREEMENT:.0%} needed)")
    if familiarity is not None and "features" in ra and "features" in rb:
        flag_a = familiarity.scores(ra["features"]) < familiarity.threshold
        flag_b = familiarity.scores(rb["features"]) < familiarity.threshold
        out["unfamiliar_agreement"] = float((flag_a == flag_b).mean())
        if out["unfamiliar_agreement"] < MIN_AGREEMENT:
            failures.append(f"it agreed with fp32 on which images look unfamiliar for only "
                            f"{out['unfamiliar_agreement']:.1%} of them (at least {MIN_AGREEMENT:.0%} needed)")
    if labels is not None and len(labels) == n:
        y = np.asarray(labels, dtype=np.int64)
        out["accuracy_fp32"], out["accuracy_int8"] = float((top_a == y).mean()), float((top_b == y).mean())
        out["ece_fp32"] = reliability(a.max(1), top_a == y, ECE_BINS)[0]
        out["ece_int8"] = reliability(b.max(1), top_b == y, ECE_BINS)[0]
        if out["accuracy_int8"] < out["accuracy_fp32"] - MAX_ACCURACY_DROP - 1e-12:
            failures.append(f"its accuracy fell from {out['accuracy_fp32']:.1%} to {out['accuracy_int8']:.1%}")
        if out["ece_int8"] > out["ece_fp32"] + MAX_ECE_INCREASE + 1e-12:
            failures.append(f"its calibration error rose from {out['ece_fp32']:.3f} to {out['ece_int8']:.3f}")
    out["kept"] = not failures
    out["reason"] = "; ".join(failures) if failures else ""
    return {k: (None if isinstance(v, float) and not math.isfinite(v) else v) for k, v in out.items()}
