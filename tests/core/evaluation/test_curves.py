"""Precision-recall (the app's own sure rule) and one-vs-rest ROC curves, and the threshold for a precision."""
import numpy as np
import pytest
from sklearn.metrics import roc_auc_score, roc_curve

from resnet_gui.core.evaluation.curves import class_curves


def _data(seed=0, n=600, c=4):
    rng = np.random.default_rng(seed)
    true = rng.integers(0, c, n)
    logits = rng.normal(0, 1, (n, c))
    logits[np.arange(n), true] += rng.uniform(0, 3, n)   # right more often when more confident
    probs = np.exp(logits) / np.exp(logits).sum(1, keepdims=True)
    return probs.astype(np.float32), true


def test_precision_and_recall_at_a_threshold_follow_the_sure_rule():
    probs, true = _data()
    curves = class_curves(probs, true, ["a", "b", "c", "d"])
    top, conf = probs.argmax(1), probs.max(1)
    for i, curve in enumerate(curves):
        for t in (0.0, 0.4, 0.6, 0.8, 0.95):
            answered = (top == i) & (conf >= t)
            right = answered & (true == i)
            precision, recall, n = curve.at(t)
            assert n == answered.sum()
            assert recall == pytest.approx(right.sum() / (true == i).sum())
            assert precision == (pytest.approx(right.sum() / n) if n else None)


def test_roc_matches_scikit_learn():
    probs, true = _data(1)
    for i, curve in enumerate(class_curves(probs, true, ["a", "b", "c", "d"])):
        assert curve.roc_auc == pytest.approx(roc_auc_score(true == i, probs[:, i]), abs=1e-9)
        fpr, tpr, _ = roc_curve(true == i, probs[:, i], drop_intermediate=False)
        assert len(curve.roc_fpr) <= 200   # thinned for plots and JSON
        assert curve.roc_fpr[0] == fpr[0] == 0 and curve.roc_tpr[-1] == pytest.approx(tpr[-1])


def test_threshold_for_a_precision_is_the_lowest_that_reaches_it():
    probs, true = _data(2, n=2000)
    curve = class_curves(probs, true, ["a", "b", "c", "d"])[0]
    for wanted in (0.7, 0.9, 0.97):
        t = curve.threshold_for_precision(wanted)
        assert t is not None
        precision, _, _ = curve.at(t)
        assert precision >= wanted
        lower = curve.answered[curve.answered < t]
        if len(lower):   # the next lower threshold would miss the goal
            assert curve.at(float(lower.max()))[0] < wanted or curve.at(float(lower.max()))[1] == curve.at(t)[1]
    assert curve.threshold_for_precision(1.01) is None


def test_points_for_json_and_a_class_without_images():
    probs, true = _data(3, n=300, c=3)
    true[true == 2] = 0   # no image of class c
    curves = class_curves(probs, true, ["a", "b", "c"])
    pts = curves[0].pr_points()
    assert len(pts["thresholds"]) == len(pts["precision"]) == len(pts["recall"]) <= 200
    assert pts["thresholds"] == sorted(pts["thresholds"], reverse=True) and pts["recall"][-1] <= 1
    assert curves[2].roc_auc is None and curves[2].average_precision is None and curves[2].at(0.5)[1] is None
    js = curves[0].to_json(0.6)
    assert js["at_threshold"]["threshold"] == 0.6 and set(js["roc"]) == {"thresholds", "fpr", "tpr"}


def test_the_roc_point_of_a_threshold_is_exact_from_half_up():
    probs, true = _data(4)
    for i, curve in enumerate(class_curves(probs, true, ["a", "b", "c", "d"])):
        for t in (0.5, 0.7, 0.9):
            fpr, tpr = curve.roc_at(t)
            says = probs[:, i] >= t
            assert tpr == pytest.approx((says & (true == i)).sum() / (true == i).sum())
            assert fpr == pytest.approx((says & (true != i)).sum() / (true != i).sum())
