"""Likely mislabelled images (confident learning on out-of-sample probabilities): real digits and faces with
planted label flips, the bad inputs, the CLI, and what a run does with relabelled files."""
from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pytest
from helpers import app_without_torch, make_distinct_folder, run_without_torch
from PIL import Image

from resnet_gui.cli import main
from resnet_gui.core.data.folders import move_to_class, scan_folder
from resnet_gui.core.errors import DatasetError, TrainingError
from resnet_gui.core.evaluation.label_issues import confident_learning, stratified_folds
from resnet_gui.core.evaluation.label_sources import check_labels
from resnet_gui.core.train.config import TrainConfig

DEMO = Path(__file__).resolve().parents[3] / "resnet_gui" / "resources" / "models" / "digits-resnet18_cifar.pth"


def flipped_labels(labels: np.ndarray, share: float, seed: int, classes: int) -> tuple[np.ndarray, set[int]]:
    rng = np.random.default_rng(seed)
    chosen = rng.choice(len(labels), int(round(share * len(labels))), replace=False)
    noisy = labels.copy()
    noisy[chosen] = (labels[chosen] + rng.integers(1, classes, len(chosen))) % classes
    return noisy, set(chosen.tolist())


def write_classes(root: Path, images, labels, to_image) -> dict[str, int]:
    where = {}
    for i, (pixels, label) in enumerate(zip(images, labels)):
        path = root / str(label) / f"img_{i:04d}.png"
        path.parent.mkdir(parents=True, exist_ok=True)
        to_image(pixels).save(path)
        where[str(path)] = i
    return where


def digit(pixels) -> Image.Image:
    grey = (255 - pixels * (255 / 16)).clip(0, 255).astype(np.uint8)
    return Image.fromarray(grey, "L").resize((32, 32), Image.Resampling.BILINEAR).convert("RGB")


@pytest.fixture(scope="module")
def digits():
    return pytest.importorskip("sklearn.datasets").load_digits()


def test_flipped_digit_labels_are_found_with_80_percent_precision_and_recall(tmp_path, digits):
    """All 1,797 digits, 5 % of the labels flipped at random (seeded): no model given."""
    labels, flipped = flipped_labels(digits.target, 0.05, 0, 10)
    where = write_classes(tmp_path / "digits", digits.images, labels, digit)
    report = check_labels(tmp_path / "digits")
    hits = [where[issue.path] in flipped for issue in report.issues]
    assert report.checked == 1797 and "thumbnails" in report.method
    assert sum(hits) >= 0.8 * len(flipped) and sum(hits) >= 0.8 * len(hits)
    scores = [issue.score for issue in report.issues]
    assert scores == sorted(scores, reverse=True) and all(0 <= s <= 1 for s in scores)
    first = report.issues[0]
    assert first.given == Path(first.path).parent.name and first.suggested != first.given


def test_a_given_model_judges_held_out_digits_by_its_answers(tmp_path, digits):
    """The demo model on 120 digits it never trained on (its held-out test digits), 10 labels flipped."""
    import sys

    sys.path.insert(0, str(DEMO.parents[3] / "scripts"))
    from train_demo_model import split_indices

    test = np.array(split_indices(digits.target, 0, None)[2][:120])
    labels, flipped = flipped_labels(digits.target[test], 10 / 120, 1, 10)
    where = write_classes(tmp_path / "held", digits.images[test], labels, digit)
    report = check_labels(tmp_path / "held", model=str(DEMO))
    assert report.method.startswith("the answers of")
    hits = [where[issue.path] in flipped for issue in report.issues]
    assert sum(hits) >= 8 and sum(hits) >= 0.8 * len(hits)


def test_a_model_trained_on_the_folder_judges_only_its_held_out_images(tmp_path, digits):
    """The model's training images are in-sample (it learnt their labels, mistakes included): only the images of
    its run's validation split, recomputed from the run's settings, are judged by its answers."""
    import dataclasses

    from resnet_gui.core.models.checkpoint import read_checkpoint, write_checkpoint

    labels, _ = flipped_labels(digits.target[:200], 0.05, 4, 10)
    folder = tmp_path / "own"
    write_classes(folder, digits.images[:200], labels, digit)
    ckpt = read_checkpoint(DEMO)
    ckpt = dataclasses.replace(ckpt, dataset={**ckpt.dataset, "path": str(folder)},
                               train_config={**ckpt.train_config, "dataset": "folder", "val_split": 0.25, "seed": 3})
    model = write_checkpoint(ckpt, tmp_path / "own.pth")
    held = {str(p) for p, _ in scan_folder(folder, val_split=0.25, seed=3).val}
    report = check_labels(folder, model=str(model))
    assert report.checked == len(held) == 51 and report.method.endswith("on the images it did not train on")
    assert {issue.path for issue in report.issues} <= held
    assert any("the 149 images of its training split are not judged" in w for w in report.warnings)


def test_flipped_face_labels_are_found_in_lfw(tmp_path):
    faces = pytest.importorskip("skimage.data").lfw_subset()
    truth = np.r_[np.zeros(100, int), np.ones(100, int)]
    labels, flipped = flipped_labels(truth, 0.05, 0, 2)
    names = np.array(["face", "other"])
    where = write_classes(tmp_path / "lfw", faces, names[labels],
                          lambda a: Image.fromarray((a * 255).astype(np.uint8), "L"))
    report = check_labels(tmp_path / "lfw")
    hits = [where[issue.path] in flipped for issue in report.issues]
    assert sum(hits) >= 0.8 * len(flipped) and sum(hits) >= 0.5 * len(hits)


def test_confident_learning_on_known_probabilities():
    """Two classes, the model sure of every image: the image labelled 0 that looks like 1 is the only issue."""
    probs = np.array([[0.9, 0.1]] * 5 + [[0.1, 0.9]] * 5 + [[0.05, 0.95]])
    labels = np.array([0] * 5 + [1] * 5 + [0])
    order, estimated = confident_learning(probs, labels)
    assert order.tolist() == [10] and estimated == 1
    folds = stratified_folds(np.array([0] * 10 + [1] * 5), 5)
    assert sorted(np.bincount(folds).tolist()) == [3, 3, 3, 3, 3]


def test_a_folder_too_small_for_folds_says_so_and_a_lonely_class_is_reported(tmp_path):
    data = make_distinct_folder(tmp_path / "small", classes=("a", "b"), per_class=3, size=(24, 24))
    with pytest.raises(DatasetError, match="too few to check labels 5 ways.*--model NAME"):
        check_labels(data)
    data = make_distinct_folder(tmp_path / "lonely", classes=("a", "b"), per_class=8, size=(24, 24))
    make_distinct_folder(data, classes=("c",), per_class=1, size=(24, 24))
    report = check_labels(data)
    assert report.checked == 16 and any("Class c has a single image" in w for w in report.warnings)


def test_cli_labels_json_lists_issues_best_first(tmp_path, capsys, digits):
    labels, _ = flipped_labels(digits.target[:400], 0.05, 3, 10)
    write_classes(tmp_path / "d", digits.images[:400], labels, digit)
    code = main(["check-data", str(tmp_path / "d"), "--labels", "--json", "--input-size", "32"])
    out = json.loads(capsys.readouterr().out)
    assert code == 1 and out["label_issues"] and out["method"].startswith("5-fold")
    assert set(out["label_issues"][0]) == {"path", "given", "suggested", "score"}
    assert [i["score"] for i in out["label_issues"]] == sorted((i["score"] for i in out["label_issues"]), reverse=True)
    assert main(["check-data", str(tmp_path / "d"), "--model", "x"]) == 2
    assert "add --labels" in capsys.readouterr().err


def test_label_mistakes_need_no_torch_and_match_the_fit_torch_used_to_make(tmp_path, digits):
    """The classify edition has no PyTorch: the logistic regression is fitted in numpy (L-BFGS). With torch
    unimportable, both routes (thumbnails; another model's features) list the flipped digits; and the numpy fit
    reaches the optimum torch.optim.LBFGS found (probabilities within 1e-2 on 400 digits)."""
    import torch

    from resnet_gui.core.evaluation.label_issues import _fit_softmax, _softmax

    labels, flipped = flipped_labels(digits.target[:400], 0.05, 3, 10)
    where = write_classes(tmp_path / "d", digits.images[:400], labels, digit)
    for extra in ([], ["--model", str(DEMO)]):
        proc = run_without_torch(app_without_torch("check-data", str(tmp_path / "d"), "--labels", "--json",
                                                   "--input-size", "32", *extra))
        assert proc.returncode == 1 and "Traceback" not in proc.stderr, proc.stderr
        found = {where[i["path"]] for i in json.loads(proc.stdout)["label_issues"]}
        assert len(found & flipped) >= 0.6 * len(flipped), (extra, len(found & flipped))
    x = digits.data[:400].astype(np.float32)
    x = (x - x.mean(0)) / (x.std(0) + 1e-6)
    w, b = _fit_softmax(x, labels, 10, 0.01)
    tw = torch.zeros(64, 10, requires_grad=True)
    tb = torch.zeros(10, requires_grad=True)
    opt = torch.optim.LBFGS([tw, tb], max_iter=500, line_search_fn="strong_wolfe")

    def closure():
        opt.zero_grad()
        loss = torch.nn.functional.cross_entropy(torch.as_tensor(x) @ tw + tb, torch.as_tensor(labels)) \
            + 0.01 * (tw * tw).sum()
        loss.backward()
        return loss

    opt.step(closure)
    theirs = _softmax(x @ tw.detach().numpy() + tb.detach().numpy())
    assert np.abs(_softmax(x @ w + b) - theirs).max() < 1e-2


# ---- acting on the findings -------------------------------------------------------------------------------
def test_relabelled_files_train_under_their_new_class_and_old_configs_still_load(tmp_path):
    data = make_distinct_folder(tmp_path / "d", classes=("a", "b"), per_class=6, size=(24, 24))
    moved = str(data / "a" / "a_000.png")
    split = scan_folder(data, relabel={moved: "b"})
    assert {str(p): label for p, label in split.train + split.val}[moved] == 1
    assert sum(split.counts(split.train + split.val).values()) == 12
    with pytest.raises(DatasetError, match="does not have: zebra"):
        scan_folder(data, relabel={moved: "zebra"})
    old = TrainConfig(dataset="folder", data=str(data)).to_dict()
    del old["relabel"]
    assert TrainConfig.from_dict(old).relabel is None
    with pytest.raises(TrainingError, match="relabel must map"):
        TrainConfig(dataset="folder", data=str(data), relabel={moved: 3}).validate()


def test_moving_a_file_to_its_class_folder_can_be_undone(tmp_path):
    data = make_distinct_folder(tmp_path / "d", classes=("a", "b"), per_class=2, size=(24, 24))
    src = data / "a" / "a_000.png"
    new = move_to_class(src, "a", "b")
    assert new == data / "b" / "a_000.png" and new.exists() and not src.exists()
    assert move_to_class(new, "b", "a") == src and src.exists()
    shutil.copy(src, data / "b" / "a_000.png")
    with pytest.raises(DatasetError, match="already exists"):
        move_to_class(src, "a", "b")
    with pytest.raises(DatasetError, match="no class folder"):
        move_to_class(src, "a", "c")
    assert src.exists()
