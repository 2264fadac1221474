""""This looks unlike anything I was trained on": a compact description of what the model saw.

Method (chosen by measuring, see README "Knowing when not to answer"): the penultimate-layer features
(the input of `fc`, after global average pooling) of the training images; per-class means and one shared
covariance; an image's distance is its smallest Mahalanobis distance to a class mean (Lee et al., 2018).
The softmax confidence alone cannot do this: on the demo model it ranks photos of cats and rockets
*above* real digits (AUROC 0.33), while this distance separates them completely.

Stored in the checkpoint under "familiarity": the class means (C x D), the precision matrix (D x D), and
quantiles of the validation images' distances. An image's familiarity is the share of validation images
at least as far away (1.0 = as typical as they come, 0.0 = farther than every one of them); it counts as
unfamiliar below the threshold, chosen so that about 95 % of validation images are familiar.

Where the record has input statistics (input_stats.py: colour, saturation, brightness, contrast, histogram,
detail of the training images), an image whose statistics lie outside what training showed is unfamiliar too,
whatever its features say, and its familiarity is 0; the feature threshold then leaves room for the validation
images these flag, so that about 95 % stay familiar in all, and flags at most 2.5 % of them itself. "measured"
(outliers.py) says how well the whole check caught generated and bundled outliers when it was fitted.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

from ..models.checkpoint import FAMILIARITY_QUANTILES as QUANTILES
from ..models.checkpoint import check_familiarity
from . import input_stats
from .input_stats import InputProfile

DEFAULT_TARGET = 0.95          # share of validation images that must count as familiar
# With input statistics the feature distance flags at most this share of the validation images: the statistics
# catch the gross outliers (colour shown to a grey model, noise, flat colours), and a small model's feature
# distance is noisy (on the 15-epoch lfw model of benchmarks/bench_familiarity.py, 5 % of validation flagged
# 15 % of the held-out images).
FEATURE_SHARE_WITH_INPUTS = 0.025
MAX_FEATURE_DIM = 4096


@dataclass
class Familiarity:
    class_means: np.ndarray     # C x D, float32
    precision: np.ndarray       # D x D, float32
    quantiles: np.ndarray       # QUANTILES distances of validation images, ascending
    threshold: float            # familiarity below this = unfamiliar
    fitted_on: str = ""
    inputs: InputProfile | None = None   # the training images' input statistics (older records: None)
    measured: dict | None = None         # how well it flagged outliers when fitted (outliers.measure)

    def __post_init__(self) -> None:
        self.class_means = np.ascontiguousarray(self.class_means, dtype=np.float32)
        self.precision = np.ascontiguousarray(self.precision, dtype=np.float32)
        self.quantiles = np.ascontiguousarray(self.quantiles, dtype=np.float32)
        # mu^T P mu per class, used by every distance
        self._mu_p_mu = ((self.class_means @ self.precision) * self.class_means).sum(1)

    def distances(self, features: Any) -> np.ndarray:
        """Smallest squared Mahalanobis distance to a class mean, per row of N x D features."""
        f = np.asarray(features, dtype=np.float32)
        # (f - mu)^T P (f - mu) = f^T P f - 2 f^T P mu + mu^T P mu, for all classes at once
        fp = f @ self.precision
        d = (fp * f).sum(1, keepdims=True) - 2 * fp @ self.class_means.T + self._mu_p_mu[None, :]
        return np.maximum(d.min(1), 0)

    def scores(self, features: Any) -> np.ndarray:
        """Familiarity in [0, 1]: the share of validation images at least this far from every class."""
        rank = np.searchsorted(self.quantiles, self.distances(features), side="left").astype(np.float64)
        # rounded, so that a score on a quantile step equals the threshold set on it (float32 made 0.025 0.02499998)
        return np.clip(np.round(1.0 - rank / (len(self.quantiles) - 1), 9), 0.0, 1.0).astype(np.float32)

    def judge(self, features: Any, pixels: Any = None) -> tuple[np.ndarray, np.ndarray, list[str | None]]:
        """(familiarity N, unfamiliar N booleans, why N: a few words when the input statistics flagged the
        image, else None) for the features and, when given, the uint8 pixels N x S x S x 3 they came from."""
        scores = self.scores(features)
        why: list[str | None] = [None] * len(scores)
        if self.inputs is not None and pixels is not None:
            stats = input_stats.image_stats(pixels)
            for i in np.flatnonzero(self.inputs.unusual(stats)):
                scores[i] = 0.0
                why[i] = self.inputs.why(stats[i])
        return scores, scores < self.threshold, why

    def to_checkpoint(self) -> dict[str, Any]:
        return {"method": "mahalanobis", "feature_layer": "fc input (after global average pooling)",
                "class_means": self.class_means.copy(), "precision": self.precision.copy(),
                "quantiles": self.quantiles.copy(), "threshold": float(self.threshold),
                "fitted_on": self.fitted_on, **(self.inputs.to_checkpoint() if self.inputs is not None else {}),
                **({"measured": dict(self.measured)} if self.measured else {})}

    @classmethod
    def from_checkpoint(cls, obj: Any, *, num_classes: int, feature_dim: int) -> Familiarity:
        """Validated: shapes that fit the model, finite values, sane sizes. Raises ValueError."""
        check_familiarity(obj, num_classes=num_classes, feature_dim=feature_dim)
        fitted = obj.get("fitted_on")
        measured = obj.get("measured")
        return cls(np.asarray(obj["class_means"], dtype=np.float32), np.asarray(obj["precision"], dtype=np.float32),
                   np.sort(np.asarray(obj["quantiles"], dtype=np.float32)), float(obj["threshold"]),
                   fitted if isinstance(fitted, str) else "", InputProfile.from_checkpoint(obj),
                   measured if isinstance(measured, dict) else None)


def fit(train_features: Any, train_labels: Any, val_features: Any, num_classes: int,
        *, target: float = DEFAULT_TARGET, source: str = "", train_stats: Any = None,
        val_stats: Any = None) -> Familiarity:
    """Class means and a shared (shrunk) covariance from the training features; with the training images' input
    statistics (input_stats.image_stats), their ranges too (the margin from the validation images' statistics);
    the threshold so that `target` of the validation images count as familiar."""
    f = np.asarray(train_features, dtype=np.float64)
    y = np.asarray(train_labels, dtype=np.int64).reshape(-1)
    d = f.shape[1]
    if d > MAX_FEATURE_DIM:
        raise ValueError(f"{d} features are more than this method stores ({MAX_FEATURE_DIM})")
    means = np.zeros((num_classes, d))
    for c in range(num_classes):
        rows = f[y == c]
        means[c] = rows.mean(0) if len(rows) else f.mean(0)
    centred = f - means[y]
    cov = centred.T @ centred / max(1, len(f) - num_classes)
    # shrink towards a scaled identity: stable with fewer images than features
    shrink = min(0.5, d / max(1, len(f)) * 0.1 + 1e-3)
    cov = (1 - shrink) * cov + shrink * np.eye(d) * max(float(np.diag(cov).mean()), 1e-12)
    precision = np.linalg.inv(cov)
    model = Familiarity(means, precision, np.zeros(QUANTILES), 0.0, source)
    val_d = np.sort(model.distances(val_features).astype(np.float64))
    model.quantiles = np.quantile(val_d, np.linspace(0, 1, QUANTILES)).astype(np.float32)
    if train_stats is not None and len(train_stats):
        has_val = val_stats is not None and len(val_stats) > 0
        model.inputs = input_stats.fit(train_stats, val_stats if has_val else None)
        by_inputs = float(model.inputs.unusual(val_stats).mean()) if has_val else 0.0
        model.threshold = float(max(0.0, min(FEATURE_SHARE_WITH_INPUTS, 1.0 - target - by_inputs)))
    else:
        model.threshold = float(1.0 - target)
    return model
