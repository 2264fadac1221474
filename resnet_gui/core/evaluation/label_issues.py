"""Likely mislabelled images: confident learning (Northcutt, Jiang and Chuang, "Confident Learning: Estimating
Uncertainty in Dataset Labels", JAIR 2021) on out-of-sample predicted probabilities, in numpy.

1. Out-of-sample probabilities P (N x C): each image's class probabilities from a model that did not learn
   from that image's label. Here: k-fold multinomial logistic regression on image features (label_sources.py:
   a given model's penultimate features, or small thumbnails), its L2 strength chosen by the cross-validated
   log-loss; or a given model's own answers on images it never trained on.
2. Per-class thresholds t_j: the mean P[i, j] over the images labelled j (how sure the model is, on
   average, of that class's own images).
3. The confident joint C[y, j]: each image labelled y whose P[i, j] >= t_j for some class j counts once,
   under the most probable such j. Its rows are scaled to the class sizes.
4. Prune by noise rate: for every pair y != j, the round(C[y, j]) images labelled y with the largest margin
   P[i, j] - P[i, y] are issues (at least MIN_KEPT images stay in each class).
5. Issues are ranked by self-confidence P[i, y], lowest first; score = 1 - P[i, y] (the model's doubt about
   the given class), suggested = the most probable other class.
"""
from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

FOLDS = 5
MIN_KEPT = 1                               # images that always stay in their class
L2_CHOICES = (0.01, 0.03, 0.1)     # logistic regression strengths tried (cross-validated log-loss)


@dataclass
class LabelIssue:
    path: str
    given: str
    suggested: str
    score: float               # 1 - the probability of the given class: how much the model doubts it

    def to_json(self) -> dict:
        return {"path": self.path, "given": self.given, "suggested": self.suggested, "score": round(self.score, 4)}


@dataclass
class LabelReport:
    method: str                        # how the out-of-sample probabilities were made, in words
    checked: int                       # images whose labels were checked
    issues: list[LabelIssue] = field(default_factory=list)   # best first
    warnings: list[str] = field(default_factory=list)
    estimated_errors: int = 0          # the confident joint's off-diagonal total

    def to_json(self) -> dict:
        return {"method": self.method, "checked": self.checked, "estimated_errors": self.estimated_errors,
                "label_issues": [i.to_json() for i in self.issues], "label_warnings": self.warnings}


def stratified_folds(labels: np.ndarray, folds: int, seed: int = 0) -> np.ndarray:
    """The fold (0..folds-1) of every image: each class dealt round-robin after a seeded shuffle."""
    rng = np.random.default_rng(seed)
    fold = np.empty(len(labels), np.int64)
    for c in np.unique(labels):
        members = np.flatnonzero(labels == c)
        rng.shuffle(members)
        fold[members] = (np.arange(len(members)) + int(rng.integers(folds))) % folds
    return fold


def _loss_and_gradient(theta: np.ndarray, x: np.ndarray, onehot: np.ndarray, l2: float):
    """Mean cross entropy + l2 * |W|^2 of the softmax regression whose weights and biases are `theta` (flat)."""
    d, c = x.shape[1], onehot.shape[1]
    w, b = theta[:d * c].reshape(d, c), theta[d * c:]
    z = x @ w + b
    z -= z.max(1, keepdims=True)
    log_p = z - np.log(np.exp(z).sum(1, keepdims=True))
    loss = -(onehot * log_p).sum() / len(x) + l2 * (w * w).sum()
    residual = (np.exp(log_p) - onehot) / len(x)
    return loss, np.concatenate([(x.T @ residual + 2 * l2 * w).ravel(), residual.sum(0)])


def _fit_softmax(x: np.ndarray, y: np.ndarray, classes: int, l2: float, *, max_iter: int = 100,
                 history: int = 10) -> tuple[np.ndarray, np.ndarray]:
    """Multinomial logistic regression (L2 on the weights) on standardised features, fitted by L-BFGS (Nocedal &
    Wright, algorithm 7.4, with a backtracking Armijo line search) in numpy: the problem is convex, so any
    converging method finds the same answer, and the classify edition has no PyTorch."""
    x = np.asarray(x, np.float64)
    onehot = np.eye(classes)[np.asarray(y)]
    theta = np.zeros(x.shape[1] * classes + classes)
    loss, grad = _loss_and_gradient(theta, x, onehot, l2)
    steps: list[tuple[np.ndarray, np.ndarray, float]] = []
    for it in range(max_iter):
        if np.abs(grad).max() <= 1e-7:
            break
        q, alphas = grad.copy(), []
        for s_k, y_k, rho in reversed(steps):      # the two-loop recursion: q becomes H^-1 grad
            alpha = rho * (s_k @ q)
            q -= alpha * y_k
            alphas.append(alpha)
        if steps:
            s_k, y_k, _ = steps[-1]
            q *= (s_k @ y_k) / (y_k @ y_k)
        for (s_k, y_k, rho), alpha in zip(steps, reversed(alphas)):
            q += s_k * (alpha - rho * (y_k @ q))
        direction = -q
        slope = grad @ direction
        if slope >= 0:                             # not a descent direction: start again from the gradient
            steps.clear()
            direction, slope = -grad, -(grad @ grad)
        t = 1.0 if steps or it else min(1.0, 1.0 / np.abs(grad).sum())
        while True:
            new_loss, new_grad = _loss_and_gradient(theta + t * direction, x, onehot, l2)
            if new_loss <= loss + 1e-4 * t * slope or t < 1e-10:
                break
            t *= 0.5
        s_k, y_k = t * direction, new_grad - grad
        theta, grad, change, loss = theta + s_k, new_grad, loss - new_loss, new_loss
        if s_k @ y_k > 1e-10:
            steps = (steps + [(s_k, y_k, 1.0 / (s_k @ y_k))])[-history:]
        if abs(change) <= 1e-9:
            break
    d = x.shape[1]
    return theta[:d * classes].reshape(d, classes).astype(np.float32), theta[d * classes:].astype(np.float32)


def _softmax(z: np.ndarray) -> np.ndarray:
    z = z - z.max(1, keepdims=True)
    e = np.exp(z)
    return e / e.sum(1, keepdims=True)


def cross_validated_probabilities(features: np.ndarray, labels: np.ndarray, classes: int, *, folds: int = FOLDS,
                                  seed: int = 0, cancelled=lambda: False) -> tuple[np.ndarray, float]:
    """(out-of-sample probabilities N x classes, the L2 strength chosen): k-fold logistic regression, each
    fold predicted by a model fitted on the others; the strength with the lowest held-out log-loss wins."""
    from ..errors import Cancelled

    fold = stratified_folds(labels, folds, seed)
    best, best_loss, best_l2 = None, np.inf, L2_CHOICES[0]
    for l2 in L2_CHOICES:
        probs = np.zeros((len(labels), classes), np.float64)
        for f in range(folds):
            if cancelled():
                raise Cancelled()
            train, held = fold != f, fold == f
            mean, std = features[train].mean(0), features[train].std(0) + 1e-6
            w, b = _fit_softmax((features[train] - mean) / std, labels[train], classes, l2)
            probs[held] = _softmax(((features[held] - mean) / std) @ w + b)
        loss = -np.log(np.clip(probs[np.arange(len(labels)), labels], 1e-12, 1)).mean()
        if loss < best_loss:
            best, best_loss, best_l2 = probs, loss, l2
    return best, best_l2


def confident_learning(probs: np.ndarray, labels: np.ndarray) -> tuple[np.ndarray, int]:
    """(indices of likely label errors ranked by self-confidence, lowest first; the estimated number of errors)."""
    n, classes = probs.shape
    own = probs[np.arange(n), labels]
    counts = np.bincount(labels, minlength=classes)
    thresholds = np.array([probs[labels == j, j].mean() if counts[j] else np.inf for j in range(classes)])
    above = probs >= thresholds[None]
    confident = above.any(1)
    guess = np.where(above, probs, -1.0).argmax(1)
    joint = np.zeros((classes, classes))
    np.add.at(joint, (labels[confident], guess[confident]), 1)
    joint *= (counts / np.maximum(joint.sum(1), 1))[:, None]     # rows scaled to the class sizes
    issue = np.zeros(n, bool)
    for y in range(classes):
        members = np.flatnonzero(labels == y)
        budget = max(0, len(members) - MIN_KEPT)
        for j in range(classes):
            take = min(int(round(joint[y, j])), budget) if j != y else 0
            if take > 0:
                margin = probs[members, j] - own[members]
                issue[members[np.argsort(-margin, kind="stable")[:take]]] = True
    off_diagonal = int(round(joint.sum() - np.trace(joint)))
    found = np.flatnonzero(issue)
    return found[np.argsort(own[found], kind="stable")], off_diagonal


def rank_issues(probs: np.ndarray, labels: np.ndarray, paths: list[str], class_names: list[str]
                ) -> tuple[list[LabelIssue], int]:
    """The likely label errors among `paths`, best first, and the estimated number of errors."""
    order, estimated = confident_learning(probs, labels)
    out = []
    for i in order.tolist():
        others = probs[i].copy()
        others[labels[i]] = -1.0
        out.append(LabelIssue(paths[i], class_names[labels[i]], class_names[int(others.argmax())],
                              float(1.0 - probs[i, labels[i]])))
    return out, estimated
