"""Figures that tell the truth about a classifier, from its probabilities and the true labels.

Plain functions of arrays (numpy; no model, no files, no torch): accuracy, balanced accuracy, per-class precision /
recall / F1 / support, the confusion matrix (rows = true class, columns = predicted), top-k accuracy,
expected calibration error with its reliability bins, the majority-class baseline, and the honest
verdicts a training run ends with.
"""
from __future__ import annotations

import math
from dataclasses import dataclass, field

import numpy as np

from ..inference.calibration import ECE_BINS, reliability


@dataclass
class ClassFigures:
    name: str
    precision: float
    recall: float
    f1: float
    support: int

    def to_json(self) -> dict:
        return {"class": self.name, "precision": self.precision, "recall": self.recall, "f1": self.f1,
                "support": self.support}


@dataclass
class Figures:
    """Everything `figures()` computes; `to_json()` is the stable, documented shape."""
    class_names: list[str]
    n: int
    accuracy: float
    balanced_accuracy: float
    per_class: list[ClassFigures]
    confusion_matrix: list[list[int]]
    top_k_accuracy: dict[int, float]
    ece: float
    reliability: list[dict]
    majority_baseline: float
    mean_confidence: float = 0.0
    extra: dict = field(default_factory=dict)

    def to_json(self) -> dict:
        return {"class_names": list(self.class_names), "n": self.n, "accuracy": self.accuracy,
                "balanced_accuracy": self.balanced_accuracy, "per_class": [c.to_json() for c in self.per_class],
                "confusion_matrix": self.confusion_matrix,
                "top_k_accuracy": {str(k): v for k, v in self.top_k_accuracy.items()}, "ece": self.ece,
                "reliability": self.reliability, "majority_baseline": self.majority_baseline,
                "mean_confidence": self.mean_confidence, **self.extra}


def confusion_matrix(pred, true, num_classes: int) -> np.ndarray:
    """num_classes x num_classes counts; rows are true classes, columns predicted ones."""
    index = np.asarray(true, dtype=np.int64).reshape(-1) * num_classes + np.asarray(pred, dtype=np.int64).reshape(-1)
    return np.bincount(index, minlength=num_classes * num_classes).reshape(num_classes, num_classes)


def figures(probs, true, class_names: list[str]) -> Figures:
    """All figures for N x C probabilities and N true labels (indices into class_names); arrays or tensors."""
    c = len(class_names)
    probs = np.asarray(probs, dtype=np.float32).reshape(-1, c)
    true = np.asarray(true, dtype=np.int64).reshape(-1)
    n = int(true.size)
    conf, pred = (probs.max(1), probs.argmax(1)) if n else (np.empty(0), np.empty(0, dtype=np.int64))
    cm = confusion_matrix(pred, true, c)
    tp = np.diag(cm).astype(np.float64)
    support = cm.sum(1).astype(np.float64)
    predicted = cm.sum(0).astype(np.float64)
    per_class = []
    recalls = []
    for i, name in enumerate(class_names):
        p = float(tp[i] / predicted[i]) if predicted[i] else 0.0
        r = float(tp[i] / support[i]) if support[i] else 0.0
        f1 = 2 * p * r / (p + r) if p + r else 0.0
        per_class.append(ClassFigures(name, p, r, f1, int(support[i])))
        if support[i]:
            recalls.append(r)
    top_k = {}
    for k in (3, 5):
        if k < c and n:
            top = np.argsort(-probs, axis=1, kind="stable")[:, :k]
            top_k[k] = float((top == true[:, None]).any(1).mean())
    ece, table = reliability(conf, pred == true, ECE_BINS) if n else (0.0, [])
    return Figures(class_names=list(class_names), n=n, accuracy=float(tp.sum() / max(n, 1)),
                   balanced_accuracy=sum(recalls) / len(recalls) if recalls else 0.0, per_class=per_class,
                   confusion_matrix=cm.tolist(), top_k_accuracy=top_k, ece=ece, reliability=table,
                   majority_baseline=float(support.max() / max(n, 1)) if n else 0.0,
                   mean_confidence=float(conf.mean()) if n else 0.0)


def most_confused(confusion, class_names: list[str], *, min_count: int = 1, limit: int = 200) -> list[dict]:
    """The off-diagonal cells with at least min_count images, most first (fastai's most_confused): {true,
    predicted, true_index, predicted_index, count, share} where share is the part of the true class's images."""
    cm = np.asarray(confusion, dtype=np.int64)
    if cm.size == 0:
        return []
    off = cm.copy()
    np.fill_diagonal(off, 0)
    rows, cols = np.nonzero(off >= max(1, min_count))
    counts = off[rows, cols]
    order = np.lexsort((cols, rows, -counts))[:limit]
    totals = cm.sum(1)
    return [{"true": class_names[int(rows[i])], "predicted": class_names[int(cols[i])], "true_index": int(rows[i]),
             "predicted_index": int(cols[i]), "count": int(counts[i]),
             "share": float(counts[i] / totals[rows[i]]) if totals[rows[i]] else 0.0} for i in order]


REMEDIES = {"weighted-loss": "weighted-loss", "weighted-sampler": "weighted-sampler"}  # --balance values
BALANCE_RATIO = 3.0    # imbalanced: the largest class has more than this x the smallest's images (remedy suggested)


def imbalanced(largest: int, smallest: int) -> bool:
    """Whether classes of these sizes are imbalanced enough to suggest a remedy (the health check and the verdicts
    share this rule)."""
    return largest > BALANCE_RATIO * smallest


def verdicts(f: Figures, *, history: list[dict] | None = None, epochs: int | None = None,
             warmup_epochs: float = 0.0, train_images: int | None = None, pretrained: bool = False,
             accuracy_words: str = "validation accuracy", balance: str = "none") -> list[str]:
    """Sentences for what is wrong with a trained model (empty when all is well), in words a user can act on.
    accuracy_words names the figure ("validation accuracy" after training, "accuracy" on other data: then the advice
    is about the data and the model, not about training settings); balance is the remedy for class imbalance the
    model was trained with (TrainConfig.balance). The largest class is named, and a remedy for class imbalance
    suggested, only when the classes evaluated are imbalanced (imbalanced())."""
    out: list[str] = []
    c = len(f.class_names)
    remedy = f"the {REMEDIES[balance]} remedy for class imbalance" if balance in REMEDIES else None
    if f.n and c > 1:
        top = max(range(c), key=lambda i: f.per_class[i].support)
        sizes = [p.support for p in f.per_class if p.support]   # the classes the images evaluated hold
        skewed = imbalanced(max(sizes), min(sizes))
        largest = f"'{f.class_names[top]}' ({f.majority_baseline:.1%})"
        # what always answering one class scores on classes that are not imbalanced: chance when they are equal
        equal = max(sizes) == min(sizes)
        chance = (f"chance level ({f.majority_baseline:.1%} for {len(sizes)} equally sized classes)" if equal
                  else f"what always answering one class would score (up to {f.majority_baseline:.1%} on these "
                  f"{len(sizes)} classes, none more than {BALANCE_RATIO:g} times the size of another)")
        predicted_share = [sum(row[i] for row in f.confusion_matrix) / f.n for i in range(c)]
        dominant = max(range(c), key=lambda i: predicted_share[i])
        near_majority = f.accuracy <= f.majority_baseline + 0.02
        below_majority = round(f.accuracy, 3) < round(f.majority_baseline, 3)  # as shown, to 0.1 %
        near_chance = f.balanced_accuracy <= 1 / c + 0.05
        balanced = f"balanced accuracy {f.balanced_accuracy:.1%} (chance {1 / c:.1%} for {c} classes)"
        if accuracy_words != "validation accuracy":   # a model evaluated on other data: no training settings
            advice = ("Check that these images show the classes the model was trained on, or fine-tune it on "
                      "images like these")
        elif not skewed:
            advice = "Train longer, lower the learning rate, or fine-tune a pretrained model"
        elif remedy:
            advice = "Add images of the other classes, train longer, or fine-tune a pretrained model"
        else:
            advice = ("Add images of the other classes, train longer, fine-tune a pretrained model, or use a remedy "
                      "for class imbalance (the Balance classes setting, or --balance on the command line)")
        if remedy and skewed and below_majority and not near_chance:
            # the remedy's trade: some of the largest class's accuracy for the others'
            out.append(f"Its {f.accuracy:.1%} {accuracy_words} is below the {f.majority_baseline:.1%} of always "
                       f"answering the largest class, '{f.class_names[top]}': {remedy} trades some of that class's "
                       f"accuracy for the others', so judge it by its {balanced}.")
        elif near_majority or near_chance:
            what = (f"the model mostly answers '{f.class_names[dominant]}' ({predicted_share[dominant]:.0%} of its "
                    "answers)") if predicted_share[dominant] >= 0.6 else "the model has not learned to tell the " \
                "classes apart"
            what = what[:1].upper() + what[1:] + (f", even with {remedy}" if remedy else "")
            if below_majority and skewed:
                out.append(f"{what}; its {f.accuracy:.1%} {accuracy_words} is below the share of the largest class, "
                           f"{largest}: it does worse than always answering '{f.class_names[top]}' would; {balanced}. "
                           f"{advice}.")
            elif below_majority:
                out.append(f"{what}; its {f.accuracy:.1%} {accuracy_words} is below {chance}; {balanced}. {advice}.")
            elif near_majority and skewed:
                out.append(f"{what}; its {f.accuracy:.1%} {accuracy_words} is about the share of the largest class, "
                           f"{largest}. {advice}.")
            elif near_majority:
                out.append(f"{what}; its {f.accuracy:.1%} {accuracy_words} is {'at' if equal else 'about'} {chance}. "
                           f"{advice}.")
            else:
                out.append(f"{what}: {balanced} is close to chance. "
                           + (f"{advice}." if accuracy_words != "validation accuracy" else
                              "Train longer, add images, or fine-tune a pretrained model."))
        recalls = [(p.recall, p.name) for p in f.per_class if p.support]
        weak = [(recall, name) for recall, name in recalls
                if (others := [r for r, n in recalls if n != name])
                and recall < 0.5 * (sum(others) / len(others)) and not (near_majority or near_chance)]
        if len(weak) == 1:
            out.append(f"Class '{weak[0][1]}' is recognised far less often than the others (recall "
                       f"{weak[0][0]:.0%}); add more varied images of it.")
        elif weak:  # one sentence, not one each: six classes at 0 % once made six lines of the verdict
            names = " and ".join([", ".join(f"'{n}'" for _, n in weak[:-1]), f"'{weak[-1][1]}'"])
            shown = ", ".join(f"{r:.0%}" for r, _ in weak)
            out.append(f"Classes {names} are recognised far less often than the others (recall {shown}); add more "
                       "varied images of them.")
    if epochs is not None and warmup_epochs and epochs <= warmup_epochs:
        out.append(f"The run ({epochs} epoch{'s' if epochs != 1 else ''}) ended within the learning-rate warm-up "
                   f"({warmup_epochs:g} epochs), so it never trained at full speed; train for more epochs.")
    if history and len(history) >= 3:
        third = max(2, math.ceil(len(history) / 3))
        losses = [h.get("val_loss") for h in history[-third:]]
        if all(isinstance(v, (int, float)) for v in losses) and all(b > a for a, b in zip(losses, losses[1:])):
            out.append(f"Validation loss rose for the last {third} epochs while training went on: the model is "
                       "starting to memorise the training images (overfitting). Fewer epochs, more images or "
                       "stronger augmentation will help; the best epoch's model is the one saved.")
    if train_images is not None and not pretrained and train_images < 500 and c > 1:
        out.append(f"Only {train_images} training images for a model trained from scratch; fine-tuning a "
                   "pretrained model usually does much better with so few.")
    return out


INTERVAL_BELOW = 1000   # images: an accuracy measured on fewer gets its 95 % interval


def wilson_interval(correct: int, n: int, z: float = 1.96) -> tuple[float, float]:
    """The Wilson score interval (95 % for z = 1.96) of a proportion `correct` / `n`; (0, 1) for n = 0."""
    if n <= 0:
        return 0.0, 1.0
    p = correct / n
    centre = (p + z * z / (2 * n)) / (1 + z * z / n)
    half = z * math.sqrt(p * (1 - p) / n + z * z / (4 * n * n)) / (1 + z * z / n)
    return max(0.0, centre - half), min(1.0, centre + half)


def accuracy_with_interval(correct: int, n: int) -> str:
    """"97.5 % (87–100 %) on 40 images": the interval only below INTERVAL_BELOW images."""
    text = f"{correct / n:.1%}" if n else "no images"
    if 0 < n < INTERVAL_BELOW:
        lo, hi = wilson_interval(correct, n)
        text += f" ({lo:.0%}–{hi:.0%})"
    return text + (f" on {n:,} image{'s' if n != 1 else ''}" if n else "")


def run_verdicts(f: Figures, history: list[dict] | None = None) -> list[str]:
    """What the end of a run adds to verdicts(): the validation accuracy's interval when the split is small, and a
    validation loss that swung by more than a factor of 100 between epochs (its figures are then unreliable)."""
    out: list[str] = []
    if 0 < f.n < INTERVAL_BELOW:
        correct = round(f.accuracy * f.n)
        out.append(f"Validation accuracy {accuracy_with_interval(correct, f.n)} (95 % interval): this split also "
                   "chose the best epoch and fitted the calibration, so the figure is optimistic; test on images "
                   "the run never saw (Evaluate tab) before trusting it.")
    losses = [h.get("val_loss") for h in history or []]
    losses = [v for v in losses if isinstance(v, (int, float)) and math.isfinite(v) and v > 0]
    if len(losses) >= 3 and max(losses) > 100 * min(losses):
        out.append(f"Validation loss swung between {min(losses):.3g} and {max(losses):,.3g} during the run: the "
                   "validation figures of single epochs are unreliable (a learning rate too high for this data, or "
                   "too few validation images); lower the learning rate or add images.")
    return out
