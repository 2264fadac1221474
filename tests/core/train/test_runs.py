"""Runs: listing every run folder (finished, unfinished, without state, unreadable) with its figures and disk
use, removing states (the model stays), pruning finished runs, comparing runs, and the `runs` command.

Two real tiny runs are trained once per module (resnet18_cifar on 18 generated 32x32 images): "alpha" finishes
its single epoch; "beta" is stopped after the first of its two epochs. Each test gets hard-linked copies of
their files in its own RESNET_GUI_HOME, so a test that deletes files never affects another.
"""
from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest
from helpers import make_folder_dataset

from resnet_gui.cli import main
from resnet_gui.core import paths
from resnet_gui.core.errors import TrainingError
from resnet_gui.core.train import runs

pytestmark = pytest.mark.slow  # two real (tiny) training runs, about a minute on 2 cores


@pytest.fixture(scope="module")
def trained_home(tmp_path_factory) -> Path:
    """A home with two real runs and their registry models."""
    from resnet_gui.core.train import recipe, train
    from resnet_gui.core.train.events import Epoch

    home = tmp_path_factory.mktemp("runs-home")
    data = make_folder_dataset(tmp_path_factory.mktemp("data") / "shapes", per_class=6, size=(32, 32))
    base = dict(data=str(data), arch="resnet18_cifar", batch_size=4, device="cpu", augment="pad_crop")
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("RESNET_GUI_HOME", str(home))
        alpha = train(recipe("scratch", name="alpha", epochs=1, lr=0.05, **base))
        assert alpha.status == "finished", alpha.message
        stop = threading.Event()
        beta = train(recipe("scratch", name="beta", epochs=2, lr=0.02, **base),
                     on_event=lambda e: stop.set() if isinstance(e, Epoch) else None, stop=stop)
        assert beta.status == "cancelled" and beta.epochs_done == 1, beta.message
    return home


@pytest.fixture
def home(trained_home, isolated_home) -> Path:
    for sub in ("runs", "models"):
        shutil.copytree(trained_home / sub, isolated_home / sub, copy_function=os.link, dirs_exist_ok=True)
    return isolated_home


def by_name() -> dict[str, runs.RunInfo]:
    return {r.name: r for r in runs.list_run_infos()}


def files_under(folder: Path) -> dict[str, int]:
    return {str(p.relative_to(folder)): p.lstat().st_size for p in folder.rglob("*")}


# ---------------------------------------------------------------------------------------------
def test_every_run_is_listed_with_status_figures_hyperparameters_duration_and_disk_use(home):
    infos = by_name()
    assert set(infos) == {"alpha", "beta"}
    alpha, beta = infos["alpha"], infos["beta"]
    assert (alpha.status, alpha.epoch, alpha.epochs, alpha.resumable) == ("finished", 1, 1, False)
    assert (beta.status, beta.epoch, beta.epochs, beta.resumable) == ("unfinished", 1, 2, True)
    for info in (alpha, beta):
        folder = home / "runs" / info.name
        assert info.error is None and info.has_state
        assert info.arch == "resnet18_cifar" and info.dataset == "shapes"
        assert info.best_name == info.name and (home / "models" / f"{info.name}.pth").is_file()
        assert info.best_val_accuracy == max(row["val_accuracy"] for row in info.history)
        assert info.disk_bytes == sum(p.stat().st_size for p in folder.rglob("*") if p.is_file()) > 1_000_000
        assert info.state_bytes == (folder / "last.pth").stat().st_size
        assert info.duration_source == "history"
        assert info.duration_s == pytest.approx(sum(row["train_time_s"] for row in info.history))
        assert info.hyperparameters["batch_size"] == 4 and info.hyperparameters["recipe"] == "scratch"
    assert (alpha.hyperparameters["lr"], beta.hyperparameters["lr"]) == (0.05, 0.02)
    assert runs.STATE_FILE == __import__("resnet_gui.core.train.state", fromlist=["STATE_FILE"]).STATE_FILE


def test_an_unreadable_state_is_listed_with_its_reason_and_hides_no_other_run(home):
    broken = home / "runs" / "broken"
    broken.mkdir()
    (broken / "last.pth").write_bytes(b"PK\x03\x04 not really a zip archive")
    (home / "runs" / "garbage-summary").mkdir()
    (home / "runs" / "garbage-summary" / "summary.json").write_text('{"format": "something else"}')
    infos = by_name()
    assert set(infos) == {"alpha", "beta", "broken", "garbage-summary"}
    for name in ("broken", "garbage-summary"):
        assert infos[name].status == "unreadable" and infos[name].error, infos[name]
        assert name in infos[name].error or "summary" in infos[name].error
    assert infos["broken"].disk_bytes == (broken / "last.pth").stat().st_size
    assert infos["alpha"].error is None and infos["beta"].error is None
    assert [r.name for r in runs.prune(finished=True, dry_run=True)] == ["alpha"]
    freed = runs.remove_run_state("broken")  # an unreadable state can still be removed, without a summary
    assert freed.bytes_freed > 0 and freed.best_name is None and not (broken / "summary.json").exists()
    assert by_name()["broken"].status == "no state"


def test_a_run_folder_without_state_takes_its_duration_from_file_times(home):
    early = home / "runs" / "early"
    early.mkdir()
    started = int(time.time()) - 300
    events = early / f"events.out.tfevents.{started}.host.123.0"
    events.write_bytes(b"x" * 100)
    info = by_name()["early"]
    assert info.status == "no state" and info.error is None and not info.resumable
    assert info.disk_bytes == 100 and info.epoch is None
    assert info.duration_source == "files"
    assert info.duration_s == pytest.approx(events.stat().st_mtime - started, abs=1)


def test_removing_a_state_frees_its_space_keeps_the_model_and_a_summary_for_listing_and_comparing(home):
    from resnet_gui.core.engines.choose import open_predictor
    from resnet_gui.core.models.registry import Registry

    before = by_name()["alpha"]
    removed = runs.remove_run_state("alpha")
    assert removed.bytes_freed == before.state_bytes and removed.best_name == "alpha"
    assert not (home / "runs" / "alpha" / "last.pth").exists()
    assert open_predictor(Registry().get("alpha").path, device="cpu").class_names == ["cats", "dogs", "owls"]
    after = by_name()["alpha"]
    assert after.status == "finished" and not after.has_state and after.error is None
    assert after.disk_bytes < 100_000 and after.state_removed
    assert (after.history, after.best_val_accuracy, after.config) == (before.history, before.best_val_accuracy,
                                                                     before.config)
    assert after.duration_s == before.duration_s
    assert runs.compare(["alpha", "beta"]).histories["alpha"] == before.history
    with pytest.raises(TrainingError, match="no training state to remove"):
        runs.remove_run_state("alpha")


def test_prune_removes_only_the_states_of_finished_runs_and_says_what_it_freed(home):
    expected = by_name()["alpha"].state_bytes
    preview = runs.prune(finished=True, dry_run=True)
    assert [(r.name, r.bytes_freed) for r in preview] == [("alpha", expected)]
    assert (home / "runs" / "alpha" / "last.pth").is_file()
    done = runs.prune(finished=True)
    assert [(r.name, r.bytes_freed) for r in done] == [("alpha", expected)]
    assert not (home / "runs" / "alpha" / "last.pth").exists()
    assert (home / "runs" / "beta" / "last.pth").is_file() and by_name()["beta"].resumable
    assert runs.prune(finished=True) == []


@pytest.mark.parametrize("name", ["..", "../models", "../../outside", "/tmp", "a/b", "CON", "", ".hidden"])
def test_a_bad_name_is_refused_before_any_path_is_built_and_nothing_is_deleted(home, name):
    before = files_under(home)
    for action in (runs.remove_run_state, runs.remove_run, runs.run_info):
        with pytest.raises(TrainingError, match="invalid run name"):
            action(name)
    assert files_under(home) == before


def test_a_symlinked_run_folder_is_listed_but_never_followed_or_deleted(home, tmp_path):
    outside = tmp_path / "outside"
    outside.mkdir()
    shutil.copy2(home / "runs" / "alpha" / "last.pth", outside / "last.pth")
    (home / "runs" / "linked").symlink_to(outside, target_is_directory=True)
    info = by_name()["linked"]
    assert info.status == "unreadable" and "symbolic link" in info.error and info.disk_bytes == 0
    for action in (runs.remove_run_state, runs.remove_run):
        with pytest.raises(TrainingError, match="symbolic link"):
            action("linked")
    assert runs.prune(finished=True, dry_run=True)[0].name == "alpha"
    runs.prune(finished=True)
    assert (outside / "last.pth").is_file() and (home / "runs" / "linked").is_symlink()


def test_a_state_that_is_a_link_is_unlinked_and_its_target_kept(home, tmp_path):
    target = tmp_path / "elsewhere.pth"
    state = home / "runs" / "alpha" / "last.pth"
    shutil.copy2(state, target)
    state.unlink()
    state.symlink_to(target)
    runs.remove_run_state("alpha")
    assert target.is_file() and not state.exists() and not state.is_symlink()


def test_compare_gives_configurations_side_by_side_with_the_differing_keys_and_the_histories(home):
    comparison = runs.compare(["alpha", "beta"])
    assert [r.name for r in comparison.runs] == ["alpha", "beta"]
    assert {"lr", "epochs", "name"} <= set(comparison.differing)
    assert not {"arch", "batch_size", "dataset", "optimizer"} & set(comparison.differing)
    assert set(comparison.differing) <= set(comparison.keys) and comparison.keys[0] == "dataset"
    assert comparison.configs["alpha"]["lr"] == 0.05 and comparison.configs["beta"]["lr"] == 0.02
    for name in ("alpha", "beta"):
        history = comparison.histories[name]
        assert [row["epoch"] for row in history] == [1]
        assert {"train_loss", "val_loss", "train_accuracy", "val_accuracy", "lr"} <= set(history[0])
    json.dumps(comparison.to_json(), allow_nan=False)
    with pytest.raises(TrainingError, match="at least two"):
        runs.compare(["alpha", "alpha"])
    with pytest.raises(TrainingError, match="no run named 'gamma'"):
        runs.compare(["alpha", "gamma"])


# ---------------------------------------------------------------------------------------------
def test_cli_runs_list_show_compare_prune_and_remove(home, capsys):
    assert main(["runs", "list", "--json"]) == 0
    listed = {r["name"]: r for r in json.loads(capsys.readouterr().out)}
    assert listed["alpha"]["disk_bytes"] == by_name()["alpha"].disk_bytes and "history" not in listed["alpha"]
    assert listed["beta"]["status"] == "unfinished" and listed["beta"]["resumable"] is True

    assert main(["runs", "list"]) == 0
    out = capsys.readouterr().out
    assert "alpha" in out and "finished" in out and "unfinished" in out and "1/2" in out
    assert "runs prune --finished" in out

    assert main(["runs", "show", "beta", "--json"]) == 0
    shown = json.loads(capsys.readouterr().out)
    assert shown["history"][0]["epoch"] == 1 and shown["config"]["lr"] == 0.02
    assert main(["runs", "show", "beta"]) == 0
    out = capsys.readouterr().out
    assert "status: unfinished" in out and "train --resume" in out and "VAL. ACC." in out

    assert main(["runs", "compare", "alpha", "beta"]) == 0
    out = capsys.readouterr().out
    assert "* lr" in out and "0.05" in out and "0.02" in out and "validation accuracy per epoch" in out
    assert "* arch" not in out
    assert main(["runs", "compare", "alpha", "beta", "--json"]) == 0
    assert "lr" in json.loads(capsys.readouterr().out)["differing"]

    size_alpha = by_name()["alpha"].state_bytes
    assert main(["runs", "prune", "--finished", "--dry-run"]) == 0
    assert "Would free" in capsys.readouterr().out and (home / "runs" / "alpha" / "last.pth").exists()
    assert main(["runs", "prune", "--finished"]) == 0
    out = capsys.readouterr().out
    assert "Freed" in out and "1 finished run" in out and f"{size_alpha / 2**20:.1f} MiB" in out

    assert main(["runs", "remove", "beta"]) == 0
    out = capsys.readouterr().out
    assert "Removed the training state of 'beta'" in out and "stays in the registry" in out
    assert main(["runs", "remove", "beta", "--all"]) == 0
    capsys.readouterr()
    assert not (home / "runs" / "beta").exists() and (home / "models" / "beta.pth").is_file()

    assert main(["runs", "remove", "../models"]) == 2
    err = capsys.readouterr().err
    assert "Invalid run name" in err and "Traceback" not in err
    assert main(["runs", "show", "nothing-here"]) == 2
    assert "No run named 'nothing-here'" in capsys.readouterr().err


def test_cli_runs_list_with_no_runs_says_how_runs_are_made(isolated_home, capsys):
    assert main(["runs", "list"]) == 0
    assert "No runs in" in capsys.readouterr().out
    assert main(["runs", "list", "--json"]) == 0
    assert json.loads(capsys.readouterr().out) == []
    assert paths.runs_dir().is_dir()


def test_runs_help_does_not_import_torch():
    code = ("import sys; from resnet_gui.cli import build_parser\n"
            "try:\n    build_parser().parse_args(['runs', '--help'])\nexcept SystemExit:\n    pass\n"
            "print('torch' in sys.modules)")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip().endswith("False") and "prune" in out


# ---------------------------------------------------------------------------------------------
GOOD_ROW = {"epoch": 1, "train_loss": 1.0, "train_accuracy": 0.5, "val_loss": 1.1, "val_accuracy": 0.5, "lr": 0.1,
            "images_per_s": 40.0, "train_time_s": 3.0}
POISONS = {  # summary.json text edits, as an attacker or a damaged disk would make them
    "huge-times": lambda s: s.replace('"train_time_s": 3.0', '"epoch_time_s": 1.5e308'),
    "nan-loss": lambda s: s.replace('"val_loss": 1.1', '"val_loss": NaN'),
    "infinite-accuracy": lambda s: s.replace('"val_accuracy": 0.5', '"val_accuracy": Infinity'),
    "huge-int": lambda s: s.replace('"epoch": 1,', '"epoch": 1' + "0" * 400 + ","),
    "huge-best": lambda s: s.replace('"best_val_accuracy": 0.5', '"best_val_accuracy": 1' + "0" * 400),
    "wrong-type": lambda s: s.replace('"train_loss": 1.0', '"train_loss": "low"'),
    "row-not-a-dict": lambda s: s.replace('"history": [{', '"history": [[1], {'),
    "infinite-lr": lambda s: s.replace('"lr": 0.05', '"lr": 1e999'),
    "epoch-text": lambda s: s.replace('"epoch": 2,', '"epoch": "2",'),
}


def write_summary(name: str, poison=None) -> None:
    from resnet_gui.core.train import recipe

    config = recipe("scratch", data="/data/shapes", arch="resnet18_cifar", lr=0.05, epochs=2).to_dict()
    rows = [GOOD_ROW, {**GOOD_ROW, "epoch": 2}]
    text = json.dumps({"format": runs.SUMMARY_FORMAT, "format_version": 1, "run_name": name, "config": config,
                       "epoch": 2, "best_val_accuracy": 0.5, "best_name": name, "history": rows,
                       "dataset": {"name": "shapes", "class_counts": {"a": 3}}, "state_removed": "2025-01-01"})
    folder = paths.runs_dir() / name
    folder.mkdir(parents=True)
    (folder / runs.SUMMARY_FILE).write_text(poison(text) if poison else text)


def strict_json(text: str):
    def refuse(constant):
        raise AssertionError(f"bare {constant} in JSON output")
    return json.loads(text, parse_constant=refuse)


@pytest.mark.parametrize("poison", sorted(POISONS))
def test_a_poisoned_summary_is_listed_as_unreadable_and_hides_no_other_run(isolated_home, capsys, poison):
    write_summary("good")
    write_summary("other")
    write_summary("bad", POISONS[poison])
    infos = by_name()
    assert infos["good"].error is None and infos["good"].status == "finished"
    assert infos["bad"].status == runs.UNREADABLE and "summary.json" in infos["bad"].error

    assert main(["runs", "list"]) == 0
    out = capsys.readouterr().out
    assert "UNREADABLE" in out and "good" in out and "other" in out and "bad: " in out
    assert main(["runs", "list", "--json"]) == 0
    listed = {r["name"]: r for r in strict_json(capsys.readouterr().out)}
    assert listed["good"]["status"] == "finished" and listed["bad"]["status"] == "unreadable"
    assert listed["bad"]["error"]

    assert main(["runs", "show", "bad"]) == 1
    out, err = capsys.readouterr()
    assert "error: " in out and "Traceback" not in out + err
    assert main(["runs", "show", "bad", "--json"]) == 1
    assert strict_json(capsys.readouterr().out)["status"] == "unreadable"
    assert main(["runs", "show", "good", "--json"]) == 0
    assert len(strict_json(capsys.readouterr().out)["history"]) == 2

    assert main(["runs", "compare", "good", "other"]) == 0
    assert main(["runs", "compare", "good", "other", "--json"]) == 0
    strict_json(capsys.readouterr().out.splitlines()[-1])
    assert main(["runs", "compare", "good", "bad"]) == 2
    err = capsys.readouterr().err
    assert "'bad' cannot be compared" in err and "Traceback" not in err


def test_values_that_cannot_be_shown_become_unknown_not_errors(isolated_home, capsys):
    write_summary("odd", lambda s: s.replace('{"a": 3}', '{"a": 1e999, "b": 1' + "0" * 400 + '}'))
    info = by_name()["odd"]
    assert info.error is None and info.dataset_details["class_counts"] == {"a": None, "b": None}
    assert main(["runs", "list", "--json"]) == 0
    assert strict_json(capsys.readouterr().out)[0]["dataset_details"]["class_counts"] == {"a": None, "b": None}
