"""What a threshold costs per class: precision–recall and one-vs-rest ROC curves, and the threshold that reaches a
wanted precision. Plain numpy; no model, no files.

The precision–recall curve follows the app's own rule (`Prediction.state`): a class answers *sure* for an image
when it is the top class and its (calibrated) confidence reaches the threshold. So at threshold t, for class c:

* precision(t): of the images answered c with confidence >= t, the share that really are c;
* recall(t): of the images that really are c, the share answered c with confidence >= t.

The ROC curve is the usual one-vs-rest one (the probability of c against "is it c"), with its area. For
thresholds of 50 % and more the two agree: a class with at least half the probability is the top class.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

MAX_POINTS = 200     # points kept per curve for plots and JSON (the exact figures come from the arrays)


@dataclass
class ClassCurve:
    name: str
    support: int                      # images that really are this class
    answered: np.ndarray              # confidences of the images answered this class, highest first
    correct: np.ndarray               # bool, same order: was the answer right
    roc_fpr: np.ndarray               # one-vs-rest ROC, at most MAX_POINTS points
    roc_tpr: np.ndarray
    roc_thresholds: np.ndarray
    roc_auc: float | None             # None when the data has no image of the class, or only such images
    average_precision: float | None
    images: int = 0                   # all images evaluated

    def roc_at(self, threshold: float) -> tuple[float, float] | None:
        """(false-positive rate, true-positive rate) at `threshold`: exact from 50 % up (there the class answers
        exactly when its probability reaches the threshold), else the nearest point of the thinned curve."""
        negatives = self.images - self.support
        if not self.support or not negatives:
            return None
        if threshold >= 0.5:
            _, _, n = self.at(threshold)
            right = int(self.correct[:n].sum())
            return (n - right) / negatives, right / self.support
        i = int(np.searchsorted(-self.roc_thresholds, -threshold, side="right")) - 1
        i = min(max(i, 0), len(self.roc_fpr) - 1)
        return float(self.roc_fpr[i]), float(self.roc_tpr[i])

    def at(self, threshold: float) -> tuple[float | None, float | None, int]:
        """(precision, recall, images answered) at `threshold`; precision None when nothing is answered, recall
        None when the class has no image."""
        n = int(np.searchsorted(-self.answered, -float(threshold), side="right"))
        right = int(self.correct[:n].sum())
        precision = right / n if n else None
        recall = right / self.support if self.support else None
        return precision, recall, n

    def threshold_for_precision(self, wanted: float) -> float | None:
        """The lowest threshold whose precision is at least `wanted` (the most recall at that precision), or
        None when no threshold reaches it on this data."""
        if not len(self.answered):
            return None
        right = np.cumsum(self.correct)
        counts = np.arange(1, len(self.answered) + 1)
        # only where the next confidence differs: a threshold keeps all images of equal confidence
        last_of_tie = np.append(self.answered[1:] != self.answered[:-1], True)
        ok = np.flatnonzero(((right / counts) >= wanted - 1e-12) & last_of_tie)
        return float(self.answered[ok[-1]]) if len(ok) else None

    def pr_points(self, max_points: int = MAX_POINTS) -> dict:
        """{thresholds, precision, recall}: the curve from the highest confidence down, thinned to max_points."""
        if not len(self.answered):
            return {"thresholds": [], "precision": [], "recall": []}
        right = np.cumsum(self.correct)
        counts = np.arange(1, len(self.answered) + 1)
        keep = np.flatnonzero(np.append(self.answered[1:] != self.answered[:-1], True))
        keep = _thin(keep, max_points)
        recall = right[keep] / self.support if self.support else np.zeros(len(keep))
        return {"thresholds": _round(self.answered[keep]), "precision": _round(right[keep] / counts[keep]),
                "recall": _round(recall)}

    def to_json(self, threshold: float | None = None) -> dict:
        out = {"class": self.name, "support": self.support, "average_precision": self.average_precision,
               "roc_auc": self.roc_auc, "precision_recall": self.pr_points(),
               "roc": {"thresholds": _round(self.roc_thresholds), "fpr": _round(self.roc_fpr),
                       "tpr": _round(self.roc_tpr)}}
        if threshold is not None:
            precision, recall, n = self.at(threshold)
            out["at_threshold"] = {"threshold": threshold, "precision": precision, "recall": recall, "answered": n}
        return out


def _thin(index: np.ndarray, max_points: int) -> np.ndarray:
    if len(index) <= max_points:
        return index
    pick = np.unique(np.linspace(0, len(index) - 1, max_points).round().astype(np.int64))
    return index[pick]


def _round(values) -> list[float]:
    return [round(float(v), 6) for v in values]


def _roc(scores: np.ndarray, positive: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray, float | None]:
    order = np.argsort(-scores, kind="stable")
    s, y = scores[order], positive[order]
    distinct = np.append(np.flatnonzero(s[1:] != s[:-1]), len(s) - 1)
    tps = np.cumsum(y)[distinct].astype(np.float64)
    fps = (distinct + 1 - tps).astype(np.float64)
    p, n = float(y.sum()), float(len(y) - y.sum())
    if not p or not n:
        return np.zeros(0), np.zeros(0), np.zeros(0), None
    tpr = np.concatenate([[0.0], tps / p])
    fpr = np.concatenate([[0.0], fps / n])
    thresholds = np.concatenate([[1.0], s[distinct]])
    auc = float(np.trapezoid(tpr, fpr)) if hasattr(np, "trapezoid") else float(np.trapz(tpr, fpr))
    keep = _thin(np.arange(len(tpr)), MAX_POINTS)
    return fpr[keep], tpr[keep], thresholds[keep], auc


def _average_precision(answered_correct: np.ndarray, support: int) -> float | None:
    """Sum over the ranked answers of precision at each right one, divided by the class's images (recall steps);
    answers never given count as recall never reached."""
    if not support:
        return None
    if not len(answered_correct):
        return 0.0
    right = np.cumsum(answered_correct)
    precision = right / np.arange(1, len(answered_correct) + 1)
    return float((precision * answered_correct).sum() / support)


def class_curves(probs, true, class_names: list[str]) -> list[ClassCurve]:
    """One ClassCurve per class from N x C probabilities and N true class indices."""
    c = len(class_names)
    probs = np.asarray(probs, dtype=np.float32).reshape(-1, c)
    true = np.asarray(true, dtype=np.int64).reshape(-1)
    top = probs.argmax(1) if len(true) else np.empty(0, dtype=np.int64)
    conf = probs.max(1) if len(true) else np.empty(0, dtype=np.float32)
    out = []
    for i, name in enumerate(class_names):
        mine = np.flatnonzero(top == i)
        order = mine[np.argsort(-conf[mine], kind="stable")]
        correct = true[order] == i
        support = int((true == i).sum())
        fpr, tpr, thresholds, auc = _roc(probs[:, i], true == i)
        out.append(ClassCurve(name=name, support=support, answered=conf[order].astype(np.float64), correct=correct,
                              roc_fpr=fpr, roc_tpr=tpr, roc_thresholds=thresholds, roc_auc=auc,
                              average_precision=_average_precision(correct, support), images=int(len(true))))
    return out
