"""The Evaluate tab's Thresholds view: precision-recall and ROC curves per class with the threshold marked, a class's
own threshold typed or found for "precision >= X", saved in the model and used by predict."""
import numpy as np
import pytest
from helpers import make_folder_dataset

from resnet_gui.core.evaluation.curves import class_curves
from resnet_gui.ui.evaluate.curves_panel import CurvesPanel


def _curves():
    rng = np.random.default_rng(0)
    true = rng.integers(0, 3, 500)
    logits = rng.normal(0, 1, (500, 3))
    logits[np.arange(500), true] += rng.uniform(0, 3, 500)
    probs = np.exp(logits) / np.exp(logits).sum(1, keepdims=True)
    return class_curves(probs, true, ["cat", "dog", "owl"])


def test_the_threshold_is_marked_on_both_curves_and_found_for_a_precision(qtbot):
    panel = CurvesPanel()
    qtbot.addWidget(panel)
    curves = _curves()
    panel.set_curves(curves, {"dog": {"threshold": 0.8}}, 0.6, "pets folder")
    assert panel.stack.currentIndex() == 1 and panel.class_combo.count() == 3
    assert panel.class_combo.itemText(1) == "dog ★"   # it has a threshold of its own
    precision, recall, _ = curves[0].at(0.6)
    assert panel.marks()["pr"] == (pytest.approx(recall), pytest.approx(precision))
    assert panel.marks()["roc"] == pytest.approx(curves[0].roc_at(0.6))
    assert f"precision {precision:.1%}" in panel.caption.text() and "not sure below" in panel.caption.text()
    panel.class_combo.setCurrentIndex(1)
    assert panel.threshold() == pytest.approx(0.8) and panel.remove_button.isEnabled()
    assert "sure from 80.0% (its own threshold, saved in the model)" in panel.caption.text()
    panel.precision_spin.setValue(97.0)
    found = panel.find_for_precision()
    assert found is not None and curves[1].at(found)[0] >= 0.97
    # found here and not saved: the caption once called it "its own threshold" and then said there was none
    assert "(the threshold chosen here)" in panel.caption.text()
    assert "Not saved: the model keeps its own, sure from 80.0%." in panel.caption.text()
    record = panel.record()
    assert record["precision_at_least"] == 0.97 and record["threshold"] == round(found, 4)
    assert record["precision"] >= 0.97 and "pets folder" in record["measured_on"]
    with qtbot.waitSignal(panel.save_requested) as saved:
        panel.save_button.click()
    assert saved.args[0] == "dog" and saved.args[1]["threshold"] == record["threshold"]
    panel.threshold_spin.setValue(30.0)   # below the reader's 60 %: the reader's threshold is what counts
    assert panel.effective_threshold() == 0.6 and "precision_at_least" not in panel.record()
    panel.class_combo.setCurrentIndex(0)    # no threshold of its own
    panel.threshold_spin.setValue(90.0)
    assert "(the threshold chosen here)" in panel.caption.text() and "Not saved yet" in panel.caption.text()
    assert "its own threshold" not in panel.caption.text()
    panel.precision_spin.setValue(100.0)
    panel.class_combo.setCurrentIndex(2)
    if panel.find_for_precision() is None:
        assert "No threshold gives" in panel.caption.text()


def test_saving_from_the_tab_stores_it_in_the_model_and_predict_uses_it(qtbot, vague_model, window, tmp_path):
    data = make_folder_dataset(tmp_path / "labelled", classes=("zero", "one", "two", "three"), per_class=4)
    tab = window.evaluate_tab
    window.tabs.setCurrentWidget(tab)
    tab.evaluate_folder(vague_model, str(data))
    qtbot.waitUntil(lambda: tab.outcome is not None and not tab.busy(), timeout=120_000)
    ev = tab.outcome.evaluation
    assert [c.name for c in ev.curves] == ["zero", "one", "two", "three"] and tab.curves.curves
    answered = max(ev.curves, key=lambda c: len(c.answered))
    tab.curves.class_combo.setCurrentIndex([c.name for c in ev.curves].index(answered.name))
    tab.curves.threshold_spin.setValue(99.0)
    with qtbot.waitSignal(window.registry.changed, timeout=60_000):
        tab.curves.save_button.click()
    qtbot.waitUntil(lambda: "sure from 99.0%" in tab.banner.text(), timeout=30_000)
    points = window.registry.entry(vague_model).meta["operating_points"]
    assert points[answered.name]["threshold"] == 0.99 and tab.curves.class_combo.currentText().endswith("★")
    from resnet_gui.core.engines.choose import open_predictor

    pred = open_predictor(vague_model, engine="onnxruntime", device="cpu").predict_file(answered_path(ev, answered))
    assert pred.class_threshold == 0.99 and pred.state(0.1) == "unsure"


def answered_path(ev, curve):
    return next(r["path"] for r in ev.rows if r["predicted"] == curve.name)


def test_a_threshold_no_answer_reaches_says_why_precision_is_missing_and_what_to_do(qtbot):
    panel = CurvesPanel()
    qtbot.addWidget(panel)
    probs = np.array([[0.7, 0.2, 0.1], [0.6, 0.3, 0.1], [0.2, 0.55, 0.25], [0.8, 0.1, 0.1]])
    curves = class_curves(probs, np.array([0, 1, 1, 2]), ["cat", "dog", "owl"])   # owl is never answered
    panel.set_curves(curves, {}, 0.5, "pets folder")
    panel.class_combo.setCurrentIndex(1)
    panel.threshold_spin.setValue(90.0)   # dog's surest answer is 55 %
    caption = panel.caption.text()
    assert "no answer “dog” reaches 90.0% (the surest is 55.0%)" in caption
    assert "lower the threshold to 55.0% or less" in caption and "precision —" not in caption
    assert panel.marks()["pr"] is None
    panel.threshold_spin.setValue(50.0)
    assert "1 answer sure, precision 100.0%" in panel.caption.text()
    panel.class_combo.setCurrentIndex(2)
    caption = panel.caption.text()
    assert "never answers “owl” on this data, so there is no precision-recall curve" in caption
    assert "precision —" not in caption
