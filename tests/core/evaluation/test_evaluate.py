"""Evaluation of a model on labelled data (core and CLI), agreeing exactly with predict."""
from __future__ import annotations

import json

import pytest
from helpers import make_checkpoint, make_folder_dataset, write_image

from resnet_gui.cli import main
from resnet_gui.core.errors import DatasetError
from resnet_gui.core.evaluation.evaluate import evaluate


@pytest.fixture
def model(isolated_home):
    folder = isolated_home / "models"
    folder.mkdir(parents=True, exist_ok=True)
    make_checkpoint(folder / "always-dogs.pth", favour=1, class_names=["cats", "dogs", "owls"])
    return "always-dogs"


def test_figures_of_a_model_that_answers_one_class(model, tmp_path):
    data = make_folder_dataset(tmp_path / "d", per_class=4, size=(40, 32))
    ev = evaluate(model, str(data), device="cpu")
    f = ev.figures
    assert f.n == 12 and f.accuracy == pytest.approx(1 / 3) and f.balanced_accuracy == pytest.approx(1 / 3)
    assert f.confusion_matrix == [[0, 4, 0], [0, 4, 0], [0, 4, 0]]
    assert [c.recall for c in f.per_class] == [0.0, 1.0, 0.0]
    assert len(ev.misclassified) == 8 and all(m["predicted"] == "dogs" for m in ev.misclassified)
    confidences = [m["confidence"] for m in ev.misclassified]
    assert confidences == sorted(confidences, reverse=True)


def test_unknown_class_folders_are_reported_not_guessed(model, tmp_path):
    data = make_folder_dataset(tmp_path / "d", classes=("cats", "zebras"), per_class=3, size=(40, 32))
    ev = evaluate(model, str(data), device="cpu")
    assert ev.figures.n == 3 and ev.unknown_classes == {"zebras": 3}
    with pytest.raises(DatasetError, match="no sub-folder named after"):
        evaluate(model, str(make_folder_dataset(tmp_path / "e", classes=("x", "y"), per_class=2)), device="cpu")


def test_cli_json_agrees_exactly_with_predict(model, tmp_path, capsys):
    data = make_folder_dataset(tmp_path / "d", per_class=3, size=(40, 32))
    write_image(data / "cats" / "unreadable.png").write_bytes(b"broken")
    assert main(["evaluate", "--model", model, "--data", str(data), "--json", "--csv", str(tmp_path / "e.csv")]) == 0
    report = json.loads(capsys.readouterr().out)
    for key in ("accuracy", "balanced_accuracy", "per_class", "confusion_matrix", "class_names", "n", "ece",
                "misclassified"):
        assert key in report
    assert report["per_class"][0].keys() >= {"class", "precision", "recall", "f1", "support"}
    assert report["failed"][0]["path"].endswith("unreadable.png")
    main(["predict", str(data), "--model", model, "--json", "--top-k", "3"])
    predicted = {row["path"]: row for row in map(json.loads, capsys.readouterr().out.splitlines()) if "label" in row}
    for m in report["misclassified"]:
        assert predicted[m["path"]]["label"] == m["predicted"]
        assert predicted[m["path"]]["confidence"] == m["confidence"]
    assert (tmp_path / "e.csv").read_text().count("\n") == 1 + 9


def test_cli_text_table(model, tmp_path, capsys):
    data = make_folder_dataset(tmp_path / "d", per_class=2, size=(40, 32))
    assert main(["evaluate", "--model", model, "--data", str(data)]) == 0
    out = capsys.readouterr().out
    assert "balanced accuracy" in out and "confusion matrix" in out and "most confident mistakes" in out


def test_mirror_averaging_changes_what_it_should(isolated_home, tmp_path):
    import numpy as np

    from resnet_gui.core.engines.choose import open_predictor

    make_checkpoint(isolated_home / "models" / "plain.pth", class_names=["cats", "dogs", "owls"], seed=3)
    data = make_folder_dataset(tmp_path / "d", per_class=2, size=(40, 32))
    plain = evaluate("plain", str(data), device="cpu")
    mirrored = evaluate("plain", str(data), device="cpu", tta=True)
    assert mirrored.tta and mirrored.figures.n == plain.figures.n == 6
    predictor = open_predictor(isolated_home / "models" / "plain.pth", device="cpu")
    first = sorted(data.rglob("*.png"))[0]
    x = predictor.load(str(first))[None]
    expected = ((predictor.probabilities(x) + predictor.probabilities(x[:, :, ::-1])) / 2)[0]
    row = next(r for r in mirrored.rows if r["path"] == str(first))
    assert row["confidence"] == pytest.approx(float(expected.max()), abs=1e-6)
    assert not np.allclose(predictor.probabilities(x)[0], expected)
