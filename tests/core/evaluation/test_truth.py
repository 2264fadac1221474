"""Evaluation figures, calibration, familiarity and Grad-CAM as plain functions (no files, no Qt)."""
from __future__ import annotations

import math

import numpy as np
import pytest
import torch
from reference_gradcam import grad_cam, upsample

from resnet_gui.core.evaluation.metrics import confusion_matrix, figures, verdicts
from resnet_gui.core.inference import familiarity
from resnet_gui.core.inference.calibration import calibration_report, fit_temperature, reliability, temperature_of


def test_figures_agree_with_scikit_learn():
    metrics = pytest.importorskip("sklearn.metrics")
    rng = np.random.default_rng(0)
    true = rng.integers(0, 4, 300)
    logits = rng.normal(size=(300, 4)) + 2.5 * np.eye(4)[true] * (rng.random(300) < 0.7)[:, None]
    probs = torch.softmax(torch.tensor(logits), 1)
    f = figures(probs, torch.tensor(true), ["a", "b", "c", "d"])
    pred = probs.argmax(1).numpy()
    assert f.accuracy == pytest.approx(metrics.accuracy_score(true, pred))
    assert f.balanced_accuracy == pytest.approx(metrics.balanced_accuracy_score(true, pred))
    p, r, f1, s = metrics.precision_recall_fscore_support(true, pred, zero_division=0)
    for i, c in enumerate(f.per_class):
        assert (c.precision, c.recall, c.f1, c.support) == (pytest.approx(p[i]), pytest.approx(r[i]),
                                                            pytest.approx(f1[i]), s[i])
    assert f.confusion_matrix == metrics.confusion_matrix(true, pred).tolist()
    assert f.top_k_accuracy[3] == pytest.approx(metrics.top_k_accuracy_score(true, probs.numpy(), k=3))
    assert 5 not in f.top_k_accuracy  # only k < number of classes
    assert f.majority_baseline == pytest.approx(np.bincount(true).max() / 300)


def test_confusion_rows_are_true_classes():
    cm = confusion_matrix(torch.tensor([1, 1, 0]), torch.tensor([0, 1, 0]), 2)
    assert cm.tolist() == [[1, 1], [0, 1]]


def test_reliability_bins_and_ece():
    conf = torch.tensor([0.95] * 10 + [0.55] * 10)
    correct = torch.tensor([True] * 5 + [False] * 5 + [True] * 5 + [False] * 5)
    ece, bins = reliability(conf, correct, 15)
    assert ece == pytest.approx(0.5 * 0.45 + 0.5 * 0.05)
    assert len(bins) == 15 and sum(b["count"] for b in bins) == 20


def test_majority_class_model_gets_an_honest_verdict():
    true = torch.tensor([0] * 100 + [1] * 8)
    probs = torch.tensor([[0.9, 0.1]] * 108)
    f = figures(probs, true, ["face", "not face"])
    words = " ".join(verdicts(f))
    assert "mostly answers 'face'" in words and "share of the largest class" in words
    good = figures(torch.eye(2)[true] * 0.9 + 0.05, true, ["face", "not face"])
    assert verdicts(good) == []


def test_chance_level_low_recall_warmup_overfitting_and_small_data_verdicts():
    true = torch.tensor([0, 1] * 50)
    chance = figures(torch.full((100, 2), 0.5) + torch.tensor([0.01, 0.0]), true, ["a", "b"])
    assert any("close to chance" in v or "mostly answers" in v for v in verdicts(chance))
    three = torch.tensor([0] * 30 + [1] * 30 + [2] * 30)
    pred = torch.cat([torch.zeros(30), torch.ones(30), torch.tensor([2] * 5 + [0] * 25)]).long()
    f = figures(torch.eye(3)[pred], three, ["x", "y", "z"])
    assert any("Class 'z'" in v for v in verdicts(f))
    history = [{"val_loss": v} for v in (1.0, 0.8, 0.7, 0.75, 0.8, 0.9)]
    words = " ".join(verdicts(f, history=history, epochs=1, warmup_epochs=2, train_images=90))
    assert "overfitting" in words and "warm-up" in words and "fine-tuning a pretrained model" in words


def test_several_weak_classes_make_one_sentence():
    """A 30 % model with six classes at 0 % recall ended with six 'Class ... is recognised far less often'
    lines, pushing the rest of the verdict out of sight."""
    true = torch.arange(8).repeat_interleave(20)
    pred = true.clone()
    for weak in (5, 6, 7):
        pred[true == weak] = 0   # never recognised
    words = verdicts(figures(torch.eye(8)[pred], true, [f"c{i}" for i in range(8)]))
    weak_lines = [v for v in words if "recognised far less often" in v]
    assert weak_lines == ["Classes 'c5', 'c6' and 'c7' are recognised far less often than the others (recall 0%, "
                          "0%, 0%); add more varied images of them."]


def test_temperature_scaling_reduces_calibration_error():
    torch.manual_seed(0)
    labels = torch.randint(0, 5, (2000,))
    clean = torch.randn(2000, 5) + 1.5 * torch.nn.functional.one_hot(labels, 5)
    overconfident = clean * 4.0
    report = calibration_report(overconfident, labels, source="test")
    assert report["temperature"] > 1.5  # an overconfident model is softened
    assert report["ece_after"] < 0.03 < report["ece_before"]
    assert fit_temperature(torch.empty(0, 3), torch.empty(0)) == 1.0


@pytest.mark.parametrize("value,expected", [(None, 1.0), ({"temperature": 2.0}, 2.0), ({"temperature": "x"}, 1.0),
                                            ({"temperature": float("nan")}, 1.0), ({"temperature": 1e9}, 1.0),
                                            ({"temperature": True}, 1.0)])
def test_a_stored_temperature_is_used_only_when_sane(value, expected):
    assert temperature_of(value) == expected


def test_familiarity_flags_what_is_far_from_every_class():
    torch.manual_seed(0)
    centres = torch.randn(3, 16) * 5
    y = torch.randint(0, 3, (600,))
    train = centres[y] + torch.randn(600, 16)
    val = centres[torch.randint(0, 3, (300,))] + torch.randn(300, 16)
    held = centres[torch.randint(0, 3, (300,))] + torch.randn(300, 16)
    far = torch.randn(200, 16) * 5 + 40
    fam = familiarity.fit(train, y, val, 3, source="test")
    assert fam.threshold == pytest.approx(0.05)
    flagged_held = (fam.scores(held) < fam.threshold).mean()
    assert flagged_held <= 0.1 and (fam.scores(far) < fam.threshold).all()
    again = familiarity.Familiarity.from_checkpoint(fam.to_checkpoint(), num_classes=3, feature_dim=16)
    assert (again.scores(held) == fam.scores(held)).all()
    as_tensors = {k: torch.from_numpy(v) if hasattr(v, "shape") else v for k, v in fam.to_checkpoint().items()}
    assert (familiarity.Familiarity.from_checkpoint(as_tensors, num_classes=3, feature_dim=16).scores(held)
            == fam.scores(held)).all()  # as torch.load gives them back


@pytest.mark.parametrize("broken", ["shape", "nan", "threshold", "method"])
def test_stored_familiarity_data_is_validated(broken):
    fam = familiarity.fit(torch.randn(50, 4), torch.randint(0, 2, (50,)), torch.randn(20, 4), 2)
    data = fam.to_checkpoint()
    if broken == "shape":
        data["precision"] = np.zeros((3, 3), np.float32)
    elif broken == "nan":
        data["class_means"][0, 0] = math.nan
    elif broken == "threshold":
        data["threshold"] = 3
    else:
        data["method"] = "magic"
    with pytest.raises(ValueError):
        familiarity.Familiarity.from_checkpoint(data, num_classes=2, feature_dim=4)


def test_features_come_from_the_same_forward_pass():
    from resnet_gui.core.engines.torch_backend import penultimate_features
    from resnet_gui.core.models.build import build_model

    model = build_model("resnet18_cifar", 3).eval()
    x = torch.randn(2, 3, 32, 32)
    with penultimate_features(model) as box, torch.inference_mode():
        logits = model(x)
        assert box["features"].shape == (2, 512)
        assert torch.allclose(model.fc(box["features"]), logits, atol=1e-5)


def test_grad_cam_peaks_where_the_evidence_is():
    """The class is the colour of a small patch placed anywhere on noise: the patch is the only evidence, so
    the map of the predicted class must peak where the patch is."""
    from resnet_gui.core.models.build import build_model

    torch.manual_seed(0)

    def images(labels: torch.Tensor, where: torch.Tensor) -> torch.Tensor:
        x = torch.rand(len(labels), 3, 32, 32) * 0.4
        for i, (label, (r, c)) in enumerate(zip(labels.tolist(), where.tolist())):
            x[i, :, r:r + 8, c:c + 8] = 0.0
            x[i, label, r:r + 8, c:c + 8] = 1.0  # a red patch for class 0, a green one for class 1
        return x

    model = build_model("resnet18_cifar", 2)
    opt = torch.optim.SGD(model.parameters(), lr=0.05, momentum=0.9)
    for _ in range(40):
        y = torch.randint(0, 2, (32,))
        loss = torch.nn.functional.cross_entropy(model(images(y, torch.randint(0, 25, (32, 2)))), y)
        opt.zero_grad()
        loss.backward()
        opt.step()
    model.eval()
    hits = 0
    for label, (r, c) in [(0, (0, 0)), (1, (24, 24)), (0, (24, 0)), (1, (0, 24))]:
        cam, index = grad_cam(model, images(torch.tensor([label]), torch.tensor([[r, c]])))
        assert cam.shape == (4, 4) and float(cam.max()) == pytest.approx(1.0)
        peak = divmod(int(cam.argmax()), 4)
        hits += index == label and abs(peak[0] - (r + 4) // 8) <= 1 and abs(peak[1] - (c + 4) // 8) <= 1
    assert hits >= 3, "the map must peak at the patch"
    assert upsample(cam, (32, 32)).shape == (32, 32)
    assert all(p.grad is None for p in model.parameters())


def test_calibration_and_familiarity_round_trip_in_the_checkpoint(tmp_path):
    from helpers import make_checkpoint

    from resnet_gui.core.models.checkpoint import read_checkpoint, read_checkpoint_metadata, write_checkpoint

    path = make_checkpoint(tmp_path / "m.pth", class_names=["a", "b", "c"])
    ckpt = read_checkpoint(path)
    old = read_checkpoint_metadata(path)
    assert "calibration" not in old and "familiarity" not in old and ckpt.familiarity is None  # old files work
    fam = familiarity.fit(torch.randn(60, 512), torch.randint(0, 3, (60,)), torch.randn(20, 512), 3, source="t")
    ckpt.calibration = {"method": "temperature scaling", "temperature": 1.7, "ece_before": 0.1, "ece_after": 0.02}
    ckpt.familiarity = fam.to_checkpoint()
    write_checkpoint(ckpt, path)
    meta = read_checkpoint_metadata(path)
    assert meta["calibration"]["temperature"] == 1.7 and meta["familiarity"]["method"] == "mahalanobis"
    again = read_checkpoint(path)
    assert again.familiarity_error is None and np.array_equal(np.asarray(again.familiarity["precision"]), fam.precision)
    broken = torch.load(path, weights_only=True)
    broken["familiarity"]["class_means"] = torch.zeros(2, 2)
    torch.save(broken, path)
    damaged = read_checkpoint(path)  # the model still loads; only the familiarity data is refused
    assert damaged.familiarity is None and "class_means" in damaged.familiarity_error


def test_an_imported_model_gets_familiarity_data_from_a_folder(isolated_home, tmp_path):
    from helpers import make_checkpoint, make_folder_dataset

    from resnet_gui.core.evaluation.fit_imported import add_familiarity
    from resnet_gui.core.models.checkpoint import read_checkpoint
    from resnet_gui.core.models.registry import Registry

    (isolated_home / "models").mkdir(parents=True, exist_ok=True)
    make_checkpoint(isolated_home / "models" / "imported.pth", class_names=["cats", "dogs", "owls"])
    data = make_folder_dataset(tmp_path / "d", per_class=8, size=(40, 32))
    summary = add_familiarity(Registry().get("imported").path, data, calibrate=True)
    assert summary["images"] == 24 and summary["calibrated"]
    assert summary["measured"]["outlier_images"]["photos"] == 50  # measured against outliers as it was fitted
    ckpt = read_checkpoint(isolated_home / "models" / "imported.pth")
    assert ckpt.familiarity is not None and "images of d" in ckpt.calibration["fitted_on"]
    assert Registry().get("imported").meta["familiarity"]["method"] == "mahalanobis"


def test_below_the_majority_share_the_verdict_says_it_does_worse_than_always_answering_the_largest_class():
    """13.6 % accuracy where 'face' is 90.9 % of the images: not 'about the share of the largest class'."""
    true = torch.tensor([0] * 100 + [1] * 10)
    pred = torch.tensor([1] * 95 + [0] * 5 + [1] * 10)  # mostly the small class: 15 of 110 right
    f = figures(torch.eye(2)[pred] * 0.9 + 0.05, true, ["face", "not face"])
    assert f.accuracy == pytest.approx(15 / 110) and f.majority_baseline == pytest.approx(100 / 110)
    words = " ".join(verdicts(f))
    assert "13.6% validation accuracy is below the share of the largest class, 'face' (90.9%)" in words
    assert "does worse than always answering 'face' would" in words and "about the share" not in words
    at_share = figures(torch.tensor([[0.9, 0.1]] * 110), true, ["face", "not face"])
    assert "about the share of the largest class" in " ".join(verdicts(at_share))


def test_a_remedied_model_is_judged_by_its_balanced_accuracy_and_names_the_remedy():
    true = torch.tensor([0] * 100 + [1] * 20)
    pred = torch.tensor([0] * 80 + [1] * 20 + [1] * 18 + [0] * 2)  # 80 % of faces, 90 % of non-faces
    f = figures(torch.eye(2)[pred] * 0.9 + 0.05, true, ["face", "not face"])
    words = " ".join(verdicts(f, balance="weighted-loss"))
    assert "the weighted-loss remedy for class imbalance trades" in words and "balanced accuracy 85.0%" in words
    stuck = figures(torch.tensor([[0.9, 0.1]] * 120), true, ["face", "not face"])
    words = " ".join(verdicts(stuck, balance="weighted-sampler"))
    assert "mostly answers 'face'" in words and "even with the weighted-sampler remedy" in words
    assert "--balance" in " ".join(verdicts(stuck))  # without a remedy: it suggests one


def test_a_balanced_folder_is_at_chance_level_not_told_to_use_an_imbalance_remedy():
    """4 equal classes (8 validation images each), the model answers '3' for everything: no 'largest class', no
    --balance, but chance level and advice about training."""
    true = torch.arange(4).repeat_interleave(8)
    f = figures(torch.tensor([[0.1, 0.1, 0.1, 0.7]] * 32), true, ["0", "1", "2", "3"])
    words = " ".join(verdicts(f))
    assert "mostly answers '3' (100% of its answers)" in words
    assert "25.0% validation accuracy is at chance level (25.0% for 4 equally sized classes)" in words
    assert "largest class" not in words and "imbalance" not in words and "--balance" not in words
    assert "Train longer, lower the learning rate, or fine-tune a pretrained model." in words
    # the health check's rule decides: 3x the smallest is still balanced, more than 3x is not
    three = " ".join(verdicts(figures(torch.tensor([[0.9, 0.1]] * 32), torch.tensor([0] * 24 + [1] * 8), ["a", "b"])))
    assert "largest class" not in three and "--balance" not in three
    assert ("75.0% validation accuracy is about what always answering one class would score (up to 75.0% on these 2 "
            "classes, none more than 3 times the size of another)") in three
    more = figures(torch.tensor([[0.9, 0.1]] * 33), torch.tensor([0] * 25 + [1] * 8), ["a", "b"])
    assert "share of the largest class, 'a'" in " ".join(verdicts(more)) and "--balance" in " ".join(verdicts(more))


def test_a_model_evaluated_on_a_balanced_folder_of_some_of_its_classes_gets_no_training_advice():
    """The 10-class demo model on a folder of 4 of its classes (equal), right 10 % of the time."""
    true = torch.arange(4).repeat_interleave(10)
    pred = torch.tensor([p for k in range(4) for p in [k] + [9] * 9])   # one right per class, the rest '9'
    f = figures(torch.eye(10)[pred] * 0.9 + 0.01, true, [str(i) for i in range(10)])
    assert f.balanced_accuracy == pytest.approx(0.1)
    words = " ".join(verdicts(f, accuracy_words="accuracy"))
    assert "10.0% accuracy is below chance level (25.0% for 4 equally sized classes)" in words
    assert "balanced accuracy 10.0% (chance 10.0% for 10 classes)" in words
    assert "imbalance" not in words and "largest class" not in words and "Train longer" not in words
    assert "Check that these images show the classes the model was trained on" in words
    # on imbalanced other data it still says it does worse than the largest class, without a training setting
    skewed = figures(torch.eye(2)[torch.tensor([1] * 110)] * 0.9 + 0.05, torch.tensor([0] * 100 + [1] * 10),
                     ["face", "not face"])
    words = " ".join(verdicts(skewed, accuracy_words="accuracy"))
    assert "does worse than always answering 'face' would" in words and "--balance" not in words
