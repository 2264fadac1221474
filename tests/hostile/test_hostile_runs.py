"""Red team, part 3: crafted training states, bad settings and unlucky datasets.

Rules under test: a state file can never make a run write outside runs/ and the registry; malformed
states give a sentence, not a traceback or a false result; settings with wrong types are ignored; a
failed save never claims a model was saved.
"""
from __future__ import annotations

import json
import os
import shutil
from pathlib import Path

import pytest
import torch
from helpers import make_folder_dataset

from resnet_gui.cli import main
from resnet_gui.core import paths
from resnet_gui.core.errors import with_remedy
from resnet_gui.core.settings import Settings
from resnet_gui.core.train import recipe, resume_config, train
from resnet_gui.core.train.runs import list_run_infos


@pytest.fixture
def data(tmp_path):
    return make_folder_dataset(tmp_path / "shapes", per_class=6, size=(32, 32))


def tiny(data, **kw):
    base = dict(data=str(data), arch="resnet18_cifar", epochs=1, batch_size=4, device="cpu", augment="pad_crop")
    base.update(kw)
    return recipe("scratch", **base)


@pytest.fixture(scope="module")
def trained_once(tmp_path_factory):
    """One finished 1-epoch run, trained once for the module in a home of its own (its state names its run,
    model and data; no path into that home). Each test gets a copy of that home."""
    home = tmp_path_factory.mktemp("trained-home")
    data = make_folder_dataset(tmp_path_factory.mktemp("trained-data") / "shapes", per_class=6, size=(32, 32))
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("RESNET_GUI_HOME", str(home))
        mp.setenv("TORCH_HOME", str(home / "torch"))
        result = train(tiny(data, name="honest", epochs=1))
    assert result.status == "finished", result.message
    return home, Path(result.last_path).relative_to(home)


@pytest.fixture
def saved_run(trained_once):
    source, last = trained_once
    home = Path(os.environ["RESNET_GUI_HOME"])
    shutil.copytree(source, home, dirs_exist_ok=True)
    return home / last


def forge(state_path: Path, **changes) -> Path:
    obj = torch.load(state_path, weights_only=True)
    obj.update(changes)
    torch.save(obj, state_path)
    return state_path


def everything_under(folder: Path) -> set[Path]:
    return {p for p in folder.rglob("*")}


@pytest.mark.parametrize("run_name", ["../../..", "../../outside", "/tmp/absolute", "a/b", "..", "CON", ""])
def test_a_crafted_run_name_cannot_make_resume_write_outside_runs(saved_run, tmp_path, run_name, capsys):
    forge(saved_run, run_name=run_name)
    home = Path(os.environ["RESNET_GUI_HOME"])
    before = everything_under(tmp_path)
    code = main(["train", "--resume", str(saved_run), "--epochs", "2", "--device", "cpu"])
    err = capsys.readouterr().err
    assert code != 0 and "not a usable training state" in err and "Traceback" not in err
    created = everything_under(tmp_path) - before
    assert all(home in p.parents for p in created), created


def test_a_crafted_best_name_is_refused_before_any_training(saved_run, capsys):
    forge(saved_run, best_name="../../evil")
    events = []
    config, path = resume_config(saved_run, epochs=2)
    result = train(config, events.append, resume=path)
    assert result.status == "failed" and "best model name" in result.message
    assert not [e for e in events if e.kind == "batch"]


@pytest.mark.parametrize("field,value,needle", [
    ("epoch", 10**9, "epoch"),
    ("epoch", "abc", "epoch"),
    ("epoch", -1, "epoch"),
    ("format_version", "1", "format version"),
    ("format_version", 7, "newer version"),
    ("config", ["not", "a", "dict"], "configuration"),
    ("config", {"epochs": "many"}, "configuration"),
    ("optimizer", "gone", "optimizer"),
    ("rng", {"torch": torch.zeros(3)}, "random number generator"),
    ("class_names", ["only-one"], "class names"),
    ("best_val_accuracy", float("nan"), "best validation accuracy"),
    ("history", "lots", "history"),
])
def test_malformed_states_give_a_sentence(saved_run, field, value, needle):
    forge(saved_run, **{field: value})
    config_or_error = None
    try:
        config, path = resume_config(saved_run, epochs=3)
        result = train(config, resume=path)
        assert result.status == "failed" and needle in result.message, result.message
        assert result.epochs_done == 0 or field == "history"
    except Exception as exc:  # noqa: BLE001 - resume_config refuses some of them already, with a sentence
        config_or_error = exc
    if config_or_error is not None:
        assert needle in str(config_or_error) and "Traceback" not in str(config_or_error)


def test_a_finished_run_resumed_without_more_epochs_says_so(saved_run):
    config, path = resume_config(saved_run)
    result = train(config, resume=path)
    assert result.status == "failed" and "already completed 1 of 1 epochs" in result.message
    assert result.remedy.kind == "more_epochs" and "--epochs 6" in with_remedy(result.message, result.remedy)


def test_one_unreadable_state_never_hides_the_others(saved_run, data, capsys):
    bad = paths.runs_dir() / "broken"
    bad.mkdir()
    (bad / "last.pth").write_bytes(b"garbage")
    runs = list_run_infos()
    assert {r.name for r in runs} == {"honest", "broken"}
    assert next(r for r in runs if r.name == "broken").error is not None
    code = main(["train", "--resume", "typo", "--device", "cpu"])
    err = capsys.readouterr().err
    assert code == 2 and "No resumable run named 'typo'" in err and "honest" in err


def test_a_full_disk_never_claims_the_best_model_was_saved(data, monkeypatch):
    from resnet_gui.core import atomic

    real = atomic.atomic_writer

    def full(path, **kw):
        if str(path).endswith(".pth"):
            raise OSError(28, "No space left on device", str(path))
        return real(path, **kw)

    monkeypatch.setattr(atomic, "atomic_writer", full)
    result = train(tiny(data, name="nospace"))
    assert result.status == "failed" and "disk is full" in result.message
    assert result.best_path is None and "saved as" not in result.message
    assert not list((paths.models_dir()).glob("*.pth"))


@pytest.mark.parametrize("flag,value,needle", [
    ("--warmup-epochs", "nan", "warm-up"),
    ("--image-size", "100000", "image size"),
    ("--weight-decay", "nan", "weight decay"),
    ("--lr", "inf", "learning rate"),
    ("--val-split", "1.5", "validation split"),
    ("--label-smoothing", "-1", "label smoothing"),
])
def test_bad_training_settings_name_the_setting(data, capsys, flag, value, needle):
    code = main(["train", "--dataset", "folder", "--data", str(data), "--device", "cpu", flag, value])
    out, err = capsys.readouterr()
    assert code != 0 and needle in (out + err).lower() and "unexpected error" not in (out + err).lower()


def test_a_huge_seed_is_a_usage_message(data, capsys):
    with pytest.raises(SystemExit) as info:
        main(["train", "--dataset", "folder", "--data", str(data), "--seed", "1e20"])
    assert info.value.code == 2


def test_a_class_whose_images_are_all_unreadable_stops_before_training(tmp_path):
    data = make_folder_dataset(tmp_path / "d", classes=("red", "green"), per_class=6, size=(32, 32))
    for f in (data / "green").iterdir():
        f.write_bytes(b"not an image")
    events = []
    result = train(tiny(data), events.append)
    assert result.status == "failed" and "'green' has no usable training images" in result.message
    assert not [e for e in events if e.kind == "batch"]


def test_a_relative_data_folder_is_stored_absolute_and_can_be_moved_on_resume(tmp_path, monkeypatch, capsys):
    make_folder_dataset(tmp_path / "rel" / "shapes", per_class=6, size=(32, 32))
    monkeypatch.chdir(tmp_path / "rel")
    code = main(["train", "--dataset", "folder", "--data", "shapes", "--arch", "resnet18_cifar", "--epochs", "1",
                 "--batch-size", "4", "--device", "cpu", "--name", "relative", "--json"])
    assert code == 0
    state = torch.load(paths.runs_dir() / "relative" / "last.pth", weights_only=True)
    assert state["config"]["data"] == str(tmp_path / "rel" / "shapes")
    (tmp_path / "rel" / "shapes").rename(tmp_path / "moved")
    monkeypatch.chdir(tmp_path)
    code = main(["train", "--resume", "relative", "--epochs", "2", "--data", "moved", "--device", "cpu", "--json"])
    events = [json.loads(line) for line in capsys.readouterr().out.splitlines() if line.startswith("{")]
    assert code == 0 and events[-1]["event"] == "finished"


def test_generated_run_names_stay_short_for_long_folder_names(tmp_path):
    data = make_folder_dataset(tmp_path / ("a-very-long-dataset-folder-name-" * 5), per_class=6, size=(32, 32))
    result = train(tiny(data))
    assert result.status == "finished" and len(result.run_name) <= 100


@pytest.mark.parametrize("key,value,expected", [
    ("window.tab", "abc", 0),
    ("train.forms", [1, 2], {}),
    ("window.geometry", 12, None),
    ("predict.unsure_below", True, 0.6),
])
def test_settings_of_the_wrong_type_are_ignored(isolated_home, key, value, expected):
    paths.settings_file().write_text(json.dumps({key: value}))
    assert Settings().get(key, expected) == expected
