"""Calibrated confidence: temperature scaling (Guo et al., 2017), fitted on a validation split. numpy only.

A trained network's softmax is usually over- or under-confident. One number T, fitted so that
softmax(logits / T) minimises the negative log-likelihood of held-out labels, fixes most of that without
changing any prediction (the ranking of classes is unchanged). The checkpoint stores T under
"calibration"; prediction and evaluation divide logits by it. Files without it behave as before (T = 1)
and are reported as uncalibrated.
"""
from __future__ import annotations

import math
from typing import Any

import numpy as np

MIN_T, MAX_T = 0.05, 20.0
ECE_BINS = 15


def softmax(logits: Any, temperature: float = 1.0) -> np.ndarray:
    """Row-wise softmax of N x C scores divided by `temperature` (float64 inside, float32 out)."""
    z = np.asarray(logits, dtype=np.float64) / float(temperature)
    z = z - z.max(axis=1, keepdims=True)
    e = np.exp(z)
    return (e / e.sum(axis=1, keepdims=True)).astype(np.float32)


def reliability(confidence: Any, correct: Any, bins: int = ECE_BINS) -> tuple[float, list[dict]]:
    """Expected calibration error over `bins` equal-width confidence bins, and the bins themselves
    (lower, upper, count, mean confidence, accuracy) for a reliability diagram."""
    confidence = np.asarray(confidence, dtype=np.float64).reshape(-1)
    correct = np.asarray(correct, dtype=np.float64).reshape(-1)
    n = max(1, confidence.size)
    edges = np.linspace(0, 1, bins + 1)
    ece, table = 0.0, []
    for i in range(bins):
        lo, hi = float(edges[i]), float(edges[i + 1])
        mask = (confidence > lo) & (confidence <= hi) if i else (confidence >= lo) & (confidence <= hi)
        count = int(mask.sum())
        if count:
            conf, acc = float(confidence[mask].mean()), float(correct[mask].mean())
            ece += count / n * abs(conf - acc)
        else:
            conf = acc = None
        table.append({"lower": lo, "upper": hi, "count": count, "confidence": conf, "accuracy": acc})
    return ece, table


def _nll(logits: np.ndarray, labels: np.ndarray, t: float) -> float:
    z = logits / t
    z = z - z.max(axis=1, keepdims=True)
    log_norm = np.log(np.exp(z).sum(axis=1))
    return float(np.mean(log_norm - z[np.arange(len(labels)), labels]))


def fit_temperature(logits: Any, labels: Any, *, steps: int = 200) -> float:
    """The T > 0 minimising NLL(softmax(logits / T), labels); 1.0 when there is nothing to fit."""
    logits = np.asarray(logits, dtype=np.float64)
    labels = np.asarray(labels, dtype=np.int64).reshape(-1)
    if logits.size == 0 or logits.ndim != 2 or logits.shape[1] < 2 or not np.isfinite(logits).all():
        return 1.0
    best_t, best_nll = 1.0, float("inf")
    # a coarse log-spaced search, then golden-section refinement on log T
    lo, hi = math.log(MIN_T), math.log(MAX_T)
    for log_t in np.linspace(lo, hi, 60):
        nll = _nll(logits, labels, math.exp(log_t))
        if nll < best_nll:
            best_t, best_nll = math.exp(log_t), nll
    a, b = math.log(best_t) - (hi - lo) / 59, math.log(best_t) + (hi - lo) / 59
    g = (math.sqrt(5) - 1) / 2
    for _ in range(steps // 4):
        c, d = b - g * (b - a), a + g * (b - a)
        if _nll(logits, labels, math.exp(c)) < _nll(logits, labels, math.exp(d)):
            b = d
        else:
            a = c
    t = math.exp((a + b) / 2)
    return float(min(MAX_T, max(MIN_T, t)))


def calibration_report(logits: Any, labels: Any, *, source: str) -> dict[str, Any]:
    """Fit T and measure ECE (15 bins) before and after; the dict stored as the checkpoint's "calibration"."""
    logits = np.asarray(logits, dtype=np.float64)
    labels = np.asarray(labels, dtype=np.int64).reshape(-1)
    t = fit_temperature(logits, labels)
    before, after = softmax(logits), softmax(logits, t)
    correct = before.argmax(1) == labels
    ece_before, _ = reliability(before.max(1), correct, ECE_BINS)
    ece_after, _ = reliability(after.max(1), correct, ECE_BINS)
    return {"method": "temperature scaling", "temperature": t, "ece_before": ece_before, "ece_after": ece_after,
            "bins": ECE_BINS, "fitted_on": source, "images": int(labels.size)}


def temperature_of(calibration: Any) -> float:
    """The temperature a checkpoint's "calibration" field holds, or 1.0 (uncalibrated, or a bad value)."""
    if not isinstance(calibration, dict):
        return 1.0
    t = calibration.get("temperature")
    if isinstance(t, bool) or not isinstance(t, (int, float)) or not math.isfinite(t) or not MIN_T <= t <= MAX_T:
        return 1.0
    return float(t)
