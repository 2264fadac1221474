"""The training settings are written once: TrainConfig's fields carry their label, type, range and flag; the
command line's flags are generated from them, a settings file (--config) carries every field, and a run
checks its settings once."""
import json
import os

import pytest
from helpers import make_folder_dataset

from resnet_gui.cli import build_parser, main
from resnet_gui.cli.train import config_from_args
from resnet_gui.core.errors import TrainingError
from resnet_gui.core.train import TrainConfig, recipe, train
from resnet_gui.core.train.config import settings

# Every flag `resnet-gui train` had before the flags were generated, with a value and the field it sets.
FLAGS_BEFORE = [
    (["--dataset", "folder"], "dataset", "folder"), (["--data", "/d"], "data", "/d"),
    (["--download"], "download", True), (["--arch", "resnet34"], "arch", "resnet34"),
    (["--pretrained"], "pretrained", True), (["--weights-file", "/w.pth"], "weights_file", "/w.pth"),
    (["--epochs", "7"], "epochs", 7), (["--batch-size", "24"], "batch_size", 24), (["--lr", "0.03"], "lr", 0.03),
    (["--optimizer", "adamw"], "optimizer", "adamw"), (["--schedule", "step"], "schedule", "step"),
    (["--label-smoothing", "0.2"], "label_smoothing", 0.2), (["--weight-decay", "0.01"], "weight_decay", 0.01),
    (["--warmup-epochs", "1.5"], "warmup_epochs", 1.5),
    (["--freeze-backbone-epochs", "2"], "freeze_backbone_epochs", 2),
    (["--image-size", "64"], "image_size", 64), (["--augment", "none"], "augment", "none"),
    (["--no-hflip"], "hflip", False), (["--val-split", "0.3"], "val_split", 0.3), (["--seed", "5"], "seed", 5),
    (["--device", "cpu"], "device", "cpu"), (["--precision", "fp32"], "precision", "fp32"),
    (["--workers", "3"], "workers", 3), (["--threads", "2"], "threads", 2), (["--compile"], "compile", True),
    (["--name", "pets"], "name", "pets"), (["--sync-bn"], "sync_bn", True), (["--no-scale-lr"], "scale_lr", False),
]


@pytest.mark.parametrize("argv,field,value", FLAGS_BEFORE)
def test_every_flag_of_before_sets_its_setting(argv, field, value):
    base = [] if field == "dataset" else ["--dataset", "cifar10"]
    config, resume = config_from_args(build_parser().parse_args(["train", *base, *argv]))
    assert resume is None and getattr(config, field) == (os.path.abspath(value) if field == "data" else value)


def test_the_flags_are_generated_from_the_settings_and_help_is_grouped(capsys):
    flagged = {spec.flag: name for name, spec in settings() if spec.flag}
    assert {argv[0] for argv, *_ in FLAGS_BEFORE} <= set(flagged)
    assert flagged["--weights-file"] == "weights_file"
    with pytest.raises(SystemExit):
        main(["train", "--help"])
    text = capsys.readouterr().out
    for title in ("what to train on:", "the model:", "optimisation:", "augmentation:", "running:",
                  "several processes:", "the run:"):
        assert title in text
    assert "between 1 and 65536" in " ".join(text.split())  # the batch size's range, from its Setting
    # --weights-file implies --pretrained, as before
    config, _ = config_from_args(build_parser().parse_args(["train", "--dataset", "folder", "--data", "/d",
                                                             "--weights-file", "/w.pth"]))
    assert config.pretrained and config.recipe == "finetune"


@pytest.mark.parametrize("changes,needle", [
    ({"batch_size": 0}, "batch size must be between 1 and 65536, got 0"),
    ({"lr": float("nan")}, "learning rate must be a finite number"),
    ({"epochs": 2.5}, "epochs must be a whole number"),
    ({"hflip": "no"}, "horizontal flips must be true or false"),
    ({"data": 5, "dataset": "folder"}, "data folder must be text"),
    ({"weights_file": ["a"]}, "weights file must be text"),
    ({"exclude": "a.png"}, "exclude must be a list of file paths"),
    ({"momentum": 1.0}, "momentum must be at least 0 and below 1"),
    ({"precision": "fp16"}, "unknown precision 'fp16'; use one of: auto, fp32, bf16"),
    ({"cache_mb": -1}, "cache size (MB) must be between 0 and"),
])
def test_every_setting_is_checked_by_its_declared_type_and_range(changes, needle):
    with pytest.raises(TrainingError) as info:
        TrainConfig(**changes).validate()
    assert needle in str(info.value)


def test_a_run_checks_its_settings_once(tmp_path, monkeypatch):
    data = make_folder_dataset(tmp_path / "d", per_class=4, size=(32, 32))
    calls = []
    real = TrainConfig.validate
    monkeypatch.setattr(TrainConfig, "validate", lambda self: calls.append(1) or real(self))
    result = train(recipe("scratch", data=str(data), arch="resnet18_cifar", epochs=1, batch_size=4, device="cpu"))
    assert result.status == "finished", result.message
    assert len(calls) == 1


def test_a_settings_file_carries_every_setting_and_leaves_files_out(tmp_path, capsys):
    data = make_folder_dataset(tmp_path / "d", per_class=8, size=(32, 32))
    left_out = sorted(str(p) for p in (data / "cats").iterdir())[:3]
    cfg = recipe("scratch", data=str(data), arch="resnet18_cifar", epochs=1, batch_size=4, device="cpu",
                 name="from-file", exclude=left_out, val_split=0.25)
    path = cfg.save(tmp_path / "settings.json")
    assert TrainConfig.from_file(path) == cfg
    code = main(["train", "--config", str(path), "--json", "--epochs", "1"])
    events = [json.loads(line) for line in capsys.readouterr().out.splitlines() if line.startswith("{")]
    assert code == 0 and events[-1]["event"] == "finished" and events[-1]["best_name"] == "from-file"
    described = next(e for e in events if e["event"] == "dataset")["description"]
    assert described["train_images"] + described["val_images"] == 24 - 3


@pytest.mark.parametrize("content,needle", [
    (b"{not json", "not JSON"),
    (b"[1, 2]", "not a JSON object"),
    (b'{"lrr": 0.1}', "unknown setting lrr"),
])
def test_a_bad_settings_file_is_one_sentence(tmp_path, capsys, content, needle):
    path = tmp_path / "settings.json"
    path.write_bytes(content)
    code = main(["train", "--config", str(path)])
    err = capsys.readouterr().err
    assert code == 2 and needle in err and "settings.json" in err and "Traceback" not in err


def test_a_settings_file_that_is_not_a_regular_file_is_refused_without_waiting(tmp_path, capsys):
    fifo = tmp_path / "fifo.json"
    os.mkfifo(fifo)
    code = main(["train", "--config", str(fifo)])
    assert code == 2 and "not a regular file" in capsys.readouterr().err
    code = main(["train", "--config", str(tmp_path / "missing.json")])
    assert code == 2 and "no such settings file" in capsys.readouterr().err
