"""The Runs tab: every run with its figures; two selected runs overlaid with their differing settings highlighted;
Resume, Train more epochs, Open model, Delete state, Clean up finished runs; Open in TensorBoard (with a fake
TensorBoard) and the command to type when TensorBoard is missing."""
import sys
from pathlib import Path

import pytest
from PySide6.QtCore import QUrl
from PySide6.QtGui import QDesktopServices
from PySide6.QtWidgets import QInputDialog, QMessageBox

from resnet_gui.core.paths import runs_dir
from resnet_gui.ui.runs.table import COLUMNS

FAKE_TENSORBOARD = str(Path(__file__).parent.parent / "fakes" / "fake_tensorboard.py")


def open_runs(qtbot, tab, count=2):
    qtbot.waitUntil(lambda: tab.table.rowCount() == count and not tab.session.listing.busy(), timeout=30_000)
    return tab


def cell(tab, name, column):
    for row in range(tab.table.rowCount()):
        if tab.table.item(row, 0).text() == name:
            return tab.table.item(row, COLUMNS.index(column)).text()
    raise KeyError(name)


def test_no_runs_yet_says_where_they_come_from(qtbot, runs_tab):
    tab = open_runs(qtbot, runs_tab, count=0)
    qtbot.waitUntil(lambda: "No training runs yet" in tab.summary.text(), timeout=30_000)
    assert not tab.clean_button.isEnabled() and not tab.resume_button.isEnabled()


def test_every_run_is_listed_with_its_figures(qtbot, two_runs, runs_tab):
    tab = open_runs(qtbot, runs_tab)
    assert cell(tab, "quick-a", "Status") == "finished" and cell(tab, "quick-b", "Status") == "stopped, resumable"
    assert cell(tab, "quick-a", "Epochs") == "1 of 1" and cell(tab, "quick-b", "Epochs") == "1 of 2"
    assert cell(tab, "quick-a", "Dataset") == "shapes" and cell(tab, "quick-a", "Architecture") == "resnet18_cifar"
    assert cell(tab, "quick-a", "Settings") == "sgd lr 0.05 · batch 4 · cosine"
    assert cell(tab, "quick-a", "Best val. acc.").endswith("%") and cell(tab, "quick-a", "Duration") != "–"
    assert cell(tab, "quick-a", "Disk").endswith("MB")
    assert tab.summary.full_text().startswith("2 runs · ") and "resumable states" in tab.summary.full_text()
    tab.table.sortByColumn(COLUMNS.index("Disk"), tab.table.horizontalHeader().sortIndicatorOrder())
    assert tab.table.rowCount() == 2  # numbers sort as numbers, nothing lost


def test_two_runs_overlaid_with_the_differences_highlighted(qtbot, two_runs, runs_tab):
    tab = open_runs(qtbot, runs_tab)
    tab.table.select_names(["quick-a"])
    assert tab.curves.point_counts() == {"quick-a": 1} and tab.diff.table.columnCount() == 1
    assert not tab.diff.highlighted_keys()
    tab.table.select_names(two_runs)
    assert tab.curves.point_counts() == {"quick-a": 1, "quick-b": 1}
    assert "quick-a" in tab.curves.key_label.text() and "quick-b" in tab.curves.key_label.text()
    qtbot.waitUntil(lambda: bool(tab.diff.differing) and not tab.session.comparison.busy(), timeout=30_000)
    assert {"lr", "batch_size", "epochs", "name"} <= set(tab.diff.differing)
    assert "arch" not in tab.diff.differing
    assert tab.diff.highlighted_keys() == tab.diff.differing == tab.diff.keys[:len(tab.diff.differing)]
    assert "settings differ" in tab.diff.summary.text()
    tab.diff.only_differences.setChecked(True)
    arch_row = tab.diff.keys.index("arch")
    assert tab.diff.table.isRowHidden(arch_row) and not tab.diff.table.isRowHidden(0)
    tab.table.clearSelection()
    assert tab.curves.stack.currentIndex() == 0 and tab.diff.table.rowCount() == 0


def test_delete_state_frees_the_space_and_keeps_the_model(qtbot, two_runs, window, monkeypatch):
    window.tabs.setCurrentWidget(window.runs_tab)
    tab = open_runs(qtbot, window.runs_tab)
    state = runs_dir() / "quick-a" / "last.pth"
    size = state.stat().st_size
    asked = []
    monkeypatch.setattr(QMessageBox, "question",
                        lambda _parent, _title, text, *a: asked.append(text) or QMessageBox.StandardButton.Cancel)
    tab.table.select_names(["quick-a"])
    tab.delete_button.click()
    assert asked and "free" in asked[0] and "quick-a" in asked[0] and "stays in the registry" in asked[0]
    assert state.exists()  # Cancel keeps it
    monkeypatch.setattr(QMessageBox, "question", lambda *a: QMessageBox.StandardButton.Yes)
    tab.delete_button.click()
    qtbot.waitUntil(lambda: tab.banner.kind() == "success", timeout=30_000)
    assert "Freed" in tab.banner.text() and "Models tab" in tab.banner.text()
    assert not state.exists() and (runs_dir() / "quick-a" / "summary.json").exists()
    qtbot.waitUntil(lambda: cell(tab, "quick-a", "Status") == "finished, state removed", timeout=30_000)
    assert window.registry.entry("quick-a") is not None and size > 1_000_000
    tab.table.select_names(["quick-a"])
    assert not tab.delete_button.isEnabled() and not tab.more_button.isEnabled()  # nothing left to resume


def test_clean_up_asks_with_a_dry_run_then_frees_only_finished_runs(qtbot, two_runs, runs_tab, monkeypatch):
    tab = open_runs(qtbot, runs_tab)
    asked = []
    monkeypatch.setattr(QMessageBox, "question",
                        lambda _parent, _title, text, *a: asked.append(text) or QMessageBox.StandardButton.Cancel)
    tab.clean_button.click()
    qtbot.waitUntil(lambda: bool(asked), timeout=30_000)
    assert "1 finished run" in asked[0] and "quick-a" in asked[0] and "quick-b" not in asked[0]
    assert (runs_dir() / "quick-a" / "last.pth").exists()  # the dry run removed nothing
    monkeypatch.setattr(QMessageBox, "question", lambda *a: QMessageBox.StandardButton.Yes)
    tab.clean_button.click()
    qtbot.waitUntil(lambda: tab.banner.kind() == "success", timeout=30_000)
    assert not (runs_dir() / "quick-a" / "last.pth").exists() and (runs_dir() / "quick-b" / "last.pth").exists()
    qtbot.waitUntil(lambda: not tab.session.busy() and cell(tab, "quick-a", "Status") == "finished, state removed",
                    timeout=30_000)
    assert not tab.clean_button.isEnabled()
    tab.clean_up()  # nothing left: says so instead of asking
    qtbot.waitUntil(lambda: "No finished run" in tab.banner.text(), timeout=30_000)


def test_open_model_in_predict_models_and_evaluate(qtbot, two_runs, window):
    window.tabs.setCurrentWidget(window.runs_tab)
    tab = open_runs(qtbot, window.runs_tab)
    qtbot.waitUntil(lambda: window.registry.entry("quick-a") is not None, timeout=30_000)
    tab.table.select_names(["quick-a"])
    tab.open_button.click()
    assert window.tabs.currentWidget() is window.predict_tab
    qtbot.waitUntil(lambda: window.predict_tab.current_model_name() == "quick-a", timeout=30_000)
    window.tabs.setCurrentWidget(tab)
    _use, show, evaluate = tab.open_button.menu().actions()
    show.trigger()
    assert window.tabs.currentWidget() is window.models_tab and window.models_tab.selected() == "quick-a"
    window.tabs.setCurrentWidget(tab)
    evaluate.trigger()
    assert window.tabs.currentWidget() is window.evaluate_tab
    qtbot.waitUntil(lambda: not window.evaluate_tab.busy(), timeout=120_000)


def test_resume_and_train_more_epochs_from_the_runs_tab(qtbot, two_runs, window, monkeypatch):
    window.tabs.setCurrentWidget(window.runs_tab)
    tab = open_runs(qtbot, window.runs_tab)
    train = window.train_tab
    tab.table.select_names(["quick-a"])
    assert not tab.resume_button.isEnabled() and tab.more_button.isEnabled()  # finished: only more epochs
    tab.table.select_names(["quick-b"])
    assert tab.resume_button.isEnabled()
    tab.resume_button.click()
    assert window.tabs.currentWidget() is train
    qtbot.waitUntil(lambda: train.last_result is not None and not train.is_training(), timeout=180_000)
    assert train.last_result.status == "finished" and train.last_result.epochs_done == 2
    assert "resuming after epoch 1" in train.monitor.log.toPlainText()
    window.tabs.setCurrentWidget(tab)
    qtbot.waitUntil(lambda: cell(tab, "quick-b", "Epochs") == "2 of 2", timeout=30_000)
    asked = []
    monkeypatch.setattr(QInputDialog, "getInt", lambda _parent, _title, text, *a: asked.append(text) or (1, True))
    tab.table.select_names(["quick-a"])
    tab.more_button.click()
    assert asked and "has trained 1 epoch" in asked[0]
    qtbot.waitUntil(train.is_training, timeout=10_000)
    assert not tab.more_button.isEnabled() and not tab.delete_button.isEnabled()  # not while training
    train.stop()
    qtbot.waitUntil(lambda: not train.is_training(), timeout=120_000)


def test_open_in_tensorboard_starts_it_opens_the_browser_and_stops_with_the_app(qtbot, two_runs, window, monkeypatch):
    import os

    window.tabs.setCurrentWidget(window.runs_tab)
    tab = open_runs(qtbot, window.runs_tab)
    opened = []
    monkeypatch.setattr(QDesktopServices, "openUrl", lambda url: opened.append(QUrl(url).toString()) or True)
    tab.tensorboard.program = lambda: [sys.executable, FAKE_TENSORBOARD]
    tab.table.select_names(two_runs)
    tab.tensorboard_button.click()
    qtbot.waitUntil(lambda: bool(opened), timeout=60_000)
    assert opened[0].startswith("http://127.0.0.1:") and tab.banner.kind() == "success"
    arguments = tab.tensorboard.process.arguments()
    assert "--logdir_spec" in arguments and "quick-a:" in arguments[arguments.index("--logdir_spec") + 1]
    pid = tab.tensorboard.process.processId()
    tab.tensorboard_button.click()  # the same runs again: the browser again, no second TensorBoard
    qtbot.waitUntil(lambda: len(opened) == 2, timeout=30_000)
    assert tab.tensorboard.process.processId() == pid
    window.close()
    qtbot.waitUntil(lambda: not window.isVisible(), timeout=60_000)
    assert tab.tensorboard.process is None
    try:
        os.waitpid(pid, os.WNOHANG)
    except ChildProcessError:
        pass
    qtbot.waitUntil(lambda: not Path(f"/proc/{pid}").exists() or "Z" in Path(f"/proc/{pid}/stat").read_text()
                    .split()[2], timeout=10_000)


def test_runs_whose_folder_holds_a_comma_get_one_folder_of_links_not_a_split_spec(qtbot, tmp_path, monkeypatch):
    """TensorBoard splits --logdir_spec at every comma (and has no quoting): /home/Smith, John/... became two
    wrong folders and no runs were shown."""
    from resnet_gui.ui.runs.tensorboard import Plan, TensorBoardLauncher, logdir_arguments

    folders = {}
    for name in ("run-a", "run-b"):
        folders[name] = str(tmp_path / "Smith, John" / name / "tensorboard")
        Path(folders[name]).mkdir(parents=True)
    plain = {"run-a": "/x/a", "run-b": "/x/b"}
    assert logdir_arguments(plain, links=lambda: None) == ["--logdir_spec", "run-a:/x/a,run-b:/x/b"]
    assert logdir_arguments({"run-a": folders["run-a"]}, links=lambda: None) == ["--logdir", folders["run-a"]]

    launcher = TensorBoardLauncher(program=lambda: [sys.executable, FAKE_TENSORBOARD])
    opened = []
    monkeypatch.setattr(QDesktopServices, "openUrl", lambda url: opened.append(url) or True)
    launcher._planned(Plan(True, folders, (), "tensorboard ..."))
    qtbot.waitUntil(lambda: bool(opened), timeout=60_000)
    arguments = launcher.process.arguments()
    assert "--logdir_spec" not in arguments
    links = Path(arguments[arguments.index("--logdir") + 1])
    assert sorted(p.name for p in links.iterdir()) == ["run-a", "run-b"]
    assert all(str((links / name).resolve()) == folder for name, folder in folders.items())
    tensorboard = pytest.importorskip("tensorboard.backend.event_processing.data_ingester")
    spec = ",".join(f"{name}:{folder}" for name, folder in folders.items())
    assert sorted(tensorboard._parse_event_files_spec(spec)) != sorted(folders.values())  # the old way: split
    launcher.stop()
    assert not links.exists() and all(Path(f).is_dir() for f in folders.values())  # links gone, runs kept


def test_tensorboard_missing_shows_what_to_install_and_the_command(qtbot, two_runs, runs_tab, monkeypatch):
    from resnet_gui.core.train import tensorboard

    tab = open_runs(qtbot, runs_tab)
    monkeypatch.setattr(tensorboard, "available", lambda: False)
    tab.table.select_names(["quick-a"])
    tab.tensorboard_button.click()
    qtbot.waitUntil(lambda: "not installed" in tab.banner.text(), timeout=30_000)
    text = tab.banner.text()
    assert 'pip install "resnet-gui[tensorboard]"' in text and "tensorboard --logdir" in text and "quick-a" in text
    assert tab.tensorboard.process is None and tab.tensorboard_button.isEnabled()


def test_a_poisoned_summary_is_one_unreadable_row_and_both_tabs_read_the_same_runs(qtbot, two_runs, window):
    """A summary.json whose history sums to infinity: that run is listed as unreadable with its reason, the others
    keep their figures; the Train tab's resume menu reads the same RunInfo objects (and leaves that one out)."""
    import json

    from resnet_gui.core.train.runs import RunInfo

    folder = runs_dir() / "poisoned"
    folder.mkdir()
    row = {"epoch": 1, "val_accuracy": 0.5, "epoch_time_s": 1.5e308}
    (folder / "summary.json").write_text(json.dumps({
        "format": "resnet-gui-run-summary", "format_version": 1, "run_name": "poisoned", "epoch": 2,
        "config": {"dataset": "folder", "data": "/x", "arch": "resnet18_cifar"},
        "history": [row, {**row, "epoch": 2}]}))
    window.tabs.setCurrentWidget(window.runs_tab)
    tab = open_runs(qtbot, window.runs_tab, count=3)
    assert cell(tab, "poisoned", "Status") == "unreadable" and cell(tab, "quick-a", "Status") == "finished"
    assert cell(tab, "quick-a", "Best val. acc.").endswith("%") and cell(tab, "poisoned", "Duration") == "–"
    assert "epoch_time_s" in tab.table.info("poisoned").error
    train_tab = window.train_tab
    qtbot.waitUntil(lambda: {r.name for r in train_tab.session.runs} == set(two_runs), timeout=60_000)
    assert all(isinstance(r, RunInfo) for r in train_tab.session.runs)
    assert all(isinstance(r, RunInfo) for r in tab.table.infos.values())


def test_the_comparison_uses_the_train_forms_words_and_elides_run_names_in_the_middle(qtbot, settings):
    from PySide6.QtCore import Qt

    from resnet_gui.ui.runs.config_diff import ConfigDiff
    from resnet_gui.ui.train.form import TrainForm

    diff = ConfigDiff()
    qtbot.addWidget(diff)
    names = [f"resnet18_cifar-train-20261203-19{minute}00" for minute in (15, 33)]
    configs = {name: {"lr": 0.1 * (i + 1), "val_split": 0.2, "batch_size": 64, "weights_file": None, "old_key": 1}
               for i, name in enumerate(names)}
    diff.set_configs(configs, list(configs[names[0]]), ["lr"])
    header = diff.table.horizontalHeader()
    assert header.textElideMode() == Qt.TextElideMode.ElideMiddle  # the distinguishing ends stay in view
    assert [diff.table.horizontalHeaderItem(c).toolTip() for c in range(2)] == names
    rows = {diff.table.verticalHeaderItem(r).text(): diff.table.verticalHeaderItem(r).toolTip()
            for r in range(diff.table.rowCount())}
    assert set(rows) == {"Learning rate", "Validation split", "Batch size", "Weights file", "old_key"}
    assert rows["Learning rate"].startswith("lr ") and rows["Validation split"].startswith("val_split ")
    assert "(Learning rate)" in diff.summary.text()
    form = TrainForm(settings)  # the same words as the Train form's rows
    qtbot.addWidget(form)
    for spin, row in ((form.lr_spin, "Learning rate"), (form.val_spin, "Validation split"),
                      (form.batch_spin, "Batch size"), (form.balance_combo, "Balance classes")):
        assert form.hp_form.labelForField(spin).text() == f"{row}:"
