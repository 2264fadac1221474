"""Every run ends with the truth about its best model: evaluation, calibration, familiarity, verdicts."""
from __future__ import annotations

import json

from helpers import make_folder_dataset

from resnet_gui.cli import main
from resnet_gui.core.models.checkpoint import read_checkpoint, read_checkpoint_metadata
from resnet_gui.core.train import recipe, train


def test_an_imbalanced_run_is_told_it_only_learned_the_larger_class(tmp_path, capsys):
    data = make_folder_dataset(tmp_path / "faces", classes=("face",), per_class=40, size=(32, 32))
    make_folder_dataset(data, classes=("not face",), per_class=5, size=(32, 32))
    events = []
    cfg = recipe("scratch", data=str(data), arch="resnet18_cifar", epochs=1, batch_size=8, device="cpu",
                 lr=1e-5, augment="pad_crop", name="lopsided")
    result = train(cfg, events.append)
    assert result.status == "finished", result.message
    words = " ".join(result.warnings)
    assert "mostly answers 'face'" in words and "share of the largest class" in words
    assert events[-1].kind == "finished" and events[-1].warnings == tuple(result.warnings)
    meta = read_checkpoint_metadata(result.best_path)
    metrics = meta["metrics"]
    assert {"balanced_accuracy", "per_class", "confusion_matrix", "majority_baseline", "ece"} <= set(metrics)
    assert metrics["majority_baseline"] > 0.85 and metrics["warnings"] == list(result.warnings)
    assert [c["class"] for c in metrics["per_class"]] == ["face", "not face"]
    assert meta["calibration"]["method"] == "temperature scaling" and meta["familiarity"]["method"] == "mahalanobis"
    ckpt = read_checkpoint(result.best_path)
    assert ckpt.familiarity is not None and ckpt.familiarity_error is None
    # the familiarity check has the training images' input statistics and was measured against outliers
    summary = meta["familiarity"]
    assert summary["input_statistics"] is True
    measured = summary["measured"]
    assert set(measured["outliers"]) == {"noise", "flat colours", "colour shifts", "photos"}
    assert measured["validation_images"] == metrics["per_class"][0]["support"] + metrics["per_class"][1]["support"]
    assert measured["rating"] in ("well", "weakly", "not at all") and 0 <= measured["caught"] <= 1


def test_the_cli_prints_the_verdict_and_json_carries_it(tmp_path, capsys):
    data = make_folder_dataset(tmp_path / "faces", classes=("face",), per_class=40, size=(32, 32))
    make_folder_dataset(data, classes=("not face",), per_class=5, size=(32, 32))
    args = ["train", "--dataset", "folder", "--data", str(data), "--arch", "resnet18_cifar", "--epochs", "1",
            "--batch-size", "8", "--device", "cpu", "--lr", "0.00001"]
    assert main([*args, "--json", "--name", "json-verdict"]) == 0
    last = json.loads(capsys.readouterr().out.splitlines()[-1])
    assert last["event"] == "finished" and any("mostly answers" in w for w in last["warnings"])
    assert main([*args, "--name", "text-verdict"]) == 0
    out, err = capsys.readouterr()
    assert "mostly answers" in out + err
