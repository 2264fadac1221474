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
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

from ..models.checkpoint import FAMILIARITY_QUANTILES as QUANTILES
from ..models.checkpoint import check_familiarity

DEFAULT_TARGET = 0.95          # share of validation images that must count as familiar
MAX_FEATURE_DIM = 4096


@dataclass
class Familiarity:
    class_means: np.ndarray     # C x D, float32
    precision: np.ndarray       # D x D, float32
    quantiles: np.ndarray       # QUANTILES distances of validation images, ascending
    threshold: float            # familiarity below this = unfamiliar
    fitted_on: str = ""

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
        rank = np.searchsorted(self.quantiles, self.distances(features), side="left").astype(np.float32)
        return np.clip(1.0 - rank / (len(self.quantiles) - 1), 0.0, 1.0)

    def to_checkpoint(self) -> dict[str, Any]:
        return {"method": "mahalanobis", "feature_layer": "fc input (after global average pooling)",
                "class_means": self.class_means.copy(), "precision": self.precision.copy(),
                "quantiles": self.quantiles.copy(), "threshold": float(self.threshold),
                "fitted_on": self.fitted_on}

    @classmethod
    def from_checkpoint(cls, obj: Any, *, num_classes: int, feature_dim: int) -> Familiarity:
        """Validated: shapes that fit the model, finite values, sane sizes. Raises ValueError."""
        check_familiarity(obj, num_classes=num_classes, feature_dim=feature_dim)
        fitted = obj.get("fitted_on")
        return cls(np.asarray(obj["class_means"], dtype=np.float32), np.asarray(obj["precision"], dtype=np.float32),
                   np.sort(np.asarray(obj["quantiles"], dtype=np.float32)), float(obj["threshold"]),
                   fitted if isinstance(fitted, str) else "")


def fit(train_features: Any, train_labels: Any, val_features: Any, num_classes: int,
        *, target: float = DEFAULT_TARGET, source: str = "") -> Familiarity:
    """Class means and a shared (shrunk) covariance from the training features; the threshold from the
    validation features so that `target` of them count as familiar."""
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
    model.threshold = float(1.0 - target)
    return model
