"""Every run writes TensorBoard event files (read back with TensorBoard's own reader)."""
from __future__ import annotations

import pytest
from helpers import make_folder_dataset

from resnet_gui.cli import main
from resnet_gui.core.train import recipe, train
from resnet_gui.core.train import tensorboard as tb

pytest.importorskip("tensorboard")


def test_scalars_hparams_and_the_confusion_matrix_are_written(tmp_path, capsys):
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    data = make_folder_dataset(tmp_path / "d", per_class=8, size=(32, 32))
    result = train(recipe("scratch", data=str(data), arch="resnet18_cifar", epochs=2, batch_size=4, device="cpu",
                          augment="pad_crop", name="board"))
    assert result.status == "finished", result.message
    folder = tb.logdir("board")
    acc = EventAccumulator(str(folder), size_guidance={"scalars": 0, "images": 0, "tensors": 0})
    acc.Reload()
    tags = acc.Tags()
    for tag in ("batch/loss", "batch/lr", "batch/images_per_s", "loss/train", "loss/val", "accuracy/train",
                "accuracy/val", "epoch/lr", "epoch/images_per_s"):
        assert tag in tags["scalars"], tag
    assert [e.step for e in acc.Scalars("accuracy/val")] == [1, 2]
    assert len(acc.Scalars("batch/loss")) == 2 * 4  # every step's loss, 18 training images // 4
    assert any("confusion_matrix" in t for t in tags["images"])
    hparams = acc.PluginTagToContent("hparams")
    assert "_hparams_/session_start_info" in hparams and b"lr" in hparams["_hparams_/session_start_info"]
    assert tb.command("board").startswith("tensorboard --logdir")


def test_the_cli_prints_the_tensorboard_command(tmp_path, capsys):
    data = make_folder_dataset(tmp_path / "d", per_class=6, size=(32, 32))
    assert main(["train", "--dataset", "folder", "--data", str(data), "--arch", "resnet18_cifar", "--epochs", "1",
                 "--batch-size", "4", "--device", "cpu", "--name", "cli-board"]) == 0
    assert "tensorboard --logdir" in capsys.readouterr().out


def test_training_works_without_tensorboard(tmp_path, monkeypatch):
    monkeypatch.setattr(tb, "available", lambda: False)
    data = make_folder_dataset(tmp_path / "d", per_class=6, size=(32, 32))
    result = train(recipe("scratch", data=str(data), arch="resnet18_cifar", epochs=1, batch_size=4, device="cpu",
                          augment="pad_crop", name="no-board"))
    assert result.status == "finished" and not tb.logdir("no-board").exists()
