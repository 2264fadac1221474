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

import contextlib
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import torch
from torch import nn

from ..models.checkpoint import FAMILIARITY_QUANTILES as QUANTILES
from ..models.checkpoint import check_familiarity

DEFAULT_TARGET = 0.95          # share of validation images that must count as familiar
MAX_FEATURE_DIM = 4096


@contextlib.contextmanager
def penultimate_features(model: nn.Module) -> Iterator[dict]:
    """While active, every forward pass of `model` leaves the input of its `fc` layer in box["features"]
    (N x D, float32): logits and features from one pass, no second forward."""
    box: dict[str, torch.Tensor] = {}

    def hook(module, inputs):
        box["features"] = inputs[0].detach().float()

    handle = model.fc.register_forward_pre_hook(hook)
    try:
        yield box
    finally:
        handle.remove()


@dataclass
class Familiarity:
    class_means: torch.Tensor   # C x D
    precision: torch.Tensor     # D x D
    quantiles: torch.Tensor     # QUANTILES distances of validation images, ascending
    threshold: float            # familiarity below this = unfamiliar
    fitted_on: str = ""

    def distances(self, features: torch.Tensor) -> torch.Tensor:
        """Smallest squared Mahalanobis distance to a class mean, per row of N x D features."""
        f = features.float().to(self.class_means.device)
        # (f - mu)^T P (f - mu) = f^T P f - 2 f^T P mu + mu^T P mu, for all classes at once
        fp = f @ self.precision
        d = (fp * f).sum(1, keepdim=True) - 2 * fp @ self.class_means.T + self._mu_p_mu()[None, :]
        return d.min(1).values.clamp_min(0)

    def _mu_p_mu(self) -> torch.Tensor:
        cached = getattr(self, "_cache", None)
        if cached is None:
            cached = ((self.class_means @ self.precision) * self.class_means).sum(1)
            object.__setattr__(self, "_cache", cached)
        return cached

    def scores(self, features: torch.Tensor) -> torch.Tensor:
        """Familiarity in [0, 1]: the share of validation images at least this far from every class."""
        d = self.distances(features).cpu()
        q = self.quantiles.cpu()
        rank = torch.searchsorted(q, d, right=False).float()
        return (1.0 - rank / (len(q) - 1)).clamp(0.0, 1.0)

    def to_checkpoint(self) -> dict[str, Any]:
        return {"method": "mahalanobis", "feature_layer": "fc input (after global average pooling)",
                "class_means": self.class_means.cpu().float().contiguous(),
                "precision": self.precision.cpu().float().contiguous(),
                "quantiles": self.quantiles.cpu().float().contiguous(), "threshold": float(self.threshold),
                "fitted_on": self.fitted_on}

    @classmethod
    def from_checkpoint(cls, obj: Any, *, num_classes: int, feature_dim: int) -> Familiarity:
        """Validated: shapes that fit the model, finite values, sane sizes. Raises ValueError."""
        check_familiarity(obj, num_classes=num_classes, feature_dim=feature_dim)
        means, precision, quantiles = obj["class_means"], obj["precision"], obj["quantiles"]
        threshold, fitted = obj["threshold"], obj.get("fitted_on")
        return cls(means.float().contiguous(), precision.float().contiguous(),
                   quantiles.float().sort().values.contiguous(), float(threshold),
                   fitted if isinstance(fitted, str) else "")


def fit(train_features: torch.Tensor, train_labels: torch.Tensor, val_features: torch.Tensor, num_classes: int,
        *, target: float = DEFAULT_TARGET, source: str = "") -> Familiarity:
    """Class means and a shared (shrunk) covariance from the training features; the threshold from the
    validation features so that `target` of them count as familiar."""
    f = train_features.double().cpu()
    y = train_labels.long().cpu()
    d = f.shape[1]
    if d > MAX_FEATURE_DIM:
        raise ValueError(f"{d} features are more than this method stores ({MAX_FEATURE_DIM})")
    means = torch.zeros(num_classes, d, dtype=torch.float64)
    for c in range(num_classes):
        rows = f[y == c]
        means[c] = rows.mean(0) if len(rows) else f.mean(0)
    centred = f - means[y]
    cov = centred.T @ centred / max(1, len(f) - num_classes)
    # shrink towards a scaled identity: stable with fewer images than features
    shrink = min(0.5, d / max(1, len(f)) * 0.1 + 1e-3)
    cov = (1 - shrink) * cov + shrink * torch.eye(d, dtype=torch.float64) * cov.diagonal().mean().clamp_min(1e-12)
    precision = torch.linalg.inv(cov)
    model = Familiarity(means.float(), precision.float(), torch.zeros(QUANTILES), 0.0, source)
    val_d = model.distances(val_features.float()).double().sort().values
    model.quantiles = torch.quantile(val_d, torch.linspace(0, 1, QUANTILES, dtype=torch.float64)).float()
    model.threshold = float(1.0 - target)
    return model

