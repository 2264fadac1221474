import math

import pytest
import torch
from drivers import outcome
from helpers import make_folder_dataset
from PySide6.QtWidgets import QMessageBox

from resnet_gui.core import paths
from resnet_gui.core.models.registry import Registry
from resnet_gui.text import learning_rate
from resnet_gui.ui.train.form import automatic_threads


def setup_scratch(tab, data, epochs=2, name="gui-run"):
    tab.set_mode("scratch")  # from scratch on my folder
    assert tab.mode() == "scratch"
    tab.data.folder_edit.setText(str(data))
    tab.form.arch_combo.setCurrentIndex(tab.form.arch_combo.findData("resnet18_cifar"))
    tab.form.epochs_spin.setValue(epochs)
    tab.form.batch_spin.setValue(8)
    tab.form.device_combo.setCurrentIndex(tab.form.device_combo.findData("cpu"))
    tab.form.name_edit.setText(name)


def test_train_curves_finish_and_the_model_appears_everywhere(qtbot, window, tmp_path):
    data = make_folder_dataset(tmp_path / "shapes", per_class=8, size=(32, 32))
    tab = window.train_tab
    window.tabs.setCurrentWidget(tab)
    setup_scratch(tab, data)
    cfg = tab.config()
    assert cfg.threads == automatic_threads()
    with qtbot.waitSignal(tab.training_busy_changed, timeout=10_000, check_params_cb=lambda running: running):
        tab.start_button.click()
    assert not tab.start_button.isEnabled() and tab.stop_button.isEnabled()
    with qtbot.waitSignal(tab.training_busy_changed, timeout=180_000, check_params_cb=lambda running: not running):
        pass
    counts = tab.plots.point_counts()
    assert counts["epochs"] == 2 and counts["batch"] == 2 * 2  # 18 training images // batch 8 = 2 steps
    assert tab.last_result.status == "finished"
    # 18 images from scratch for 2 epochs: the verdict warns (amber), naming the model and each warning
    verdicts = tab.last_result.warnings
    assert outcome(tab).kind() == ("warning" if verdicts else "success")
    assert "gui-run" in outcome(tab).text() and all(v[:20] in outcome(tab).text() for v in verdicts)
    assert "epoch 2/2" in tab.monitor.log.toPlainText()
    qtbot.waitUntil(lambda: window.registry.entry("gui-run") is not None, timeout=30_000)
    combo = window.predict_tab.model_combo
    assert combo.findData("gui-run") >= 0
    names = [window.models_tab.table.item(r, 0).text() for r in range(window.models_tab.table.rowCount())]
    assert any("gui-run" in n for n in names)
    assert tab.start_button.isEnabled() and not tab.stop_button.isEnabled()


def test_stop_mid_run_then_resume(qtbot, train_tab, tmp_path):
    data = make_folder_dataset(tmp_path / "shapes", per_class=16, size=(32, 32))
    tab = train_tab
    setup_scratch(tab, data, epochs=40, name="stopper")
    tab.start_button.click()
    qtbot.waitUntil(lambda: tab.plots.point_counts()["epochs"] >= 1, timeout=180_000)
    tab.stop_button.click()
    qtbot.waitUntil(lambda: not tab.is_training(), timeout=60_000)
    result = tab.last_result
    assert result.status == "cancelled" and result.epochs_done >= 1
    assert outcome(tab).kind() == "info" and "Resume" in outcome(tab).text()
    assert torch.load(result.last_path, weights_only=True)["epoch"] == result.epochs_done
    qtbot.waitUntil(lambda: tab.resume_button.isEnabled(), timeout=30_000)
    assert tab.session.runs[0].name == "stopper"
    tab.resume_button.click()
    qtbot.waitUntil(lambda: tab.is_training(), timeout=10_000)
    qtbot.waitUntil(lambda: "resuming after epoch" in tab.monitor.log.toPlainText(), timeout=60_000)
    tab.stop()
    qtbot.waitUntil(lambda: not tab.is_training(), timeout=60_000)


def test_engine_errors_become_messages_and_controls_come_back(qtbot, train_tab, tmp_path):
    data = make_folder_dataset(tmp_path / "one", classes=("only",))
    tab = train_tab
    setup_scratch(tab, data)
    tab.start_button.click()
    qtbot.waitUntil(lambda: tab.last_result is not None, timeout=60_000)
    qtbot.waitUntil(lambda: not tab.is_training(), timeout=10_000)
    assert outcome(tab).kind() == "error" and "at least 2" in outcome(tab).text()
    assert tab.start_button.isEnabled()


def test_start_waits_for_usable_data_and_stale_messages_go(qtbot, train_tab, tmp_path):
    tab = train_tab
    tab.set_mode("scratch")
    tab.data.folder_edit.setText("")
    assert not tab.start_button.isEnabled() and "Choose a folder" in tab.start_button.toolTip()
    tab.start()  # a script or a shortcut: refused with the reason and its fix
    assert outcome(tab).kind() == "error" and "Choose a folder" in outcome(tab).text()
    assert [b.text() for b in outcome(tab).buttons()] == ["Choose…"] and not tab.is_training()
    empty = tmp_path / "empty"
    empty.mkdir()
    tab.data.folder_edit.setText(str(empty))
    assert not outcome(tab).isVisible()  # the message about no folder went with it
    tab.data.scan_folder()
    qtbot.waitUntil(lambda: not tab.start_button.isEnabled(), timeout=30_000)  # known bad: no class folders
    assert "no class folders" in tab.start_button.toolTip() and not tab.find_lr_button.isEnabled()
    good = make_folder_dataset(tmp_path / "good", classes=("a", "b"), per_class=4)
    tab.data.folder_edit.setText(str(good))
    tab.data.scan_folder()
    qtbot.waitUntil(lambda: tab.data.folder_summary.text().startswith("✓"), timeout=30_000)
    assert tab.start_button.isEnabled() and tab.start_button.toolTip() == ""


def test_another_recipe_clears_the_last_runs_outcome_and_log(qtbot, train_tab):
    from resnet_gui.core.train import TrainResult

    tab = train_tab
    tab.set_mode("scratch")
    tab.monitor.begin("Training resnet18…")
    tab.monitor.on_result(TrainResult(status="failed", message="The data vanished."))
    assert tab.monitor.progress.format() == "Failed" and outcome(tab).isVisible()
    tab.set_mode("finetune")
    assert tab.monitor.progress.format() == "Not started" and not outcome(tab).isVisible()
    assert tab.monitor.log.toPlainText() == ""


def test_close_during_a_run_asks_stops_and_waits(qtbot, window, tmp_path, monkeypatch):
    data = make_folder_dataset(tmp_path / "shapes", per_class=16, size=(32, 32))
    tab = window.train_tab
    setup_scratch(tab, data, epochs=40, name="closer")
    tab.start_button.click()
    qtbot.waitUntil(lambda: tab.plots.point_counts()["batch"] >= 1, timeout=180_000)
    asked = []
    monkeypatch.setattr(QMessageBox, "question", lambda *a, **k: asked.append(a) or QMessageBox.StandardButton.No)
    window.close()
    assert asked and window.isVisible() and tab.is_training()  # "No" keeps training
    monkeypatch.setattr(QMessageBox, "question", lambda *a, **k: QMessageBox.StandardButton.Yes)
    window.close()
    qtbot.waitUntil(lambda: not window.isVisible(), timeout=120_000)
    from resnet_gui.ui.common.workers import running_tasks

    assert not running_tasks()
    assert tab.last_result is not None and tab.last_result.status == "cancelled"
    for entry in Registry().list():  # nothing half-written
        assert not entry.broken


def test_mode_switch_loads_each_recipes_defaults(qtbot, train_tab):
    tab = train_tab
    tab.set_mode("cifar10")
    assert tab.form.arch_combo.currentData() == "resnet18_cifar" and tab.form.batch_spin.value() == 512
    assert tab.form.optimizer_combo.currentText() == "sgd" and tab.form.schedule_combo.currentText() == "onecycle"
    tab.set_mode("finetune")
    assert tab.form.optimizer_combo.currentText() == "adamw" and tab.form.freeze_spin.value() == 1
    assert not tab.form.arch_combo.model().item(tab.form.arch_combo.findData("resnet18_cifar")).isEnabled()
    assert "ImageNet" in tab.form.mode_help.text()


def test_cifar_missing_offers_download(qtbot, train_tab):
    tab = train_tab
    tab.set_mode("cifar10")
    qtbot.waitUntil(lambda: "not in" in tab.data.cifar_status.text(), timeout=30_000)
    assert tab.data.download_button.isVisibleTo(tab)
    tab.data.download_button.click()  # offline: a clear message, no traceback
    qtbot.waitUntil(lambda: tab.data.banner.kind() == "error", timeout=60_000)
    assert "could not download" in tab.data.banner.text().lower() and "Traceback" not in tab.data.banner.text()


def test_find_learning_rate_plots_the_sweep_and_a_click_fills_the_field(qtbot, train_tab, tmp_path):
    from PySide6.QtCore import Qt

    data = make_folder_dataset(tmp_path / "shapes", per_class=8, size=(32, 32))
    tab = train_tab
    setup_scratch(tab, data)
    tab.session.lr_find_steps = 40  # enough for the descent to show (a shorter sweep may offer no rate)
    panel = tab.lr_panel
    models_before = sorted(p.name for p in paths.models_dir().glob("*"))
    current = tab.form.lr_spin.value()
    growing = []  # the points drawn while the test ran, one count per report
    tab.session.lr_finder.progress.connect(
        lambda ev: ev.kind == "lr_step" and growing.append(len(panel.curve.getData()[0])))
    with qtbot.waitSignal(tab.session.lr_finder.done, timeout=120_000) as found:
        tab.find_lr_button.click()
        assert not panel.isHidden() and not panel.cancel_button.isHidden() and "40 steps" in panel.note.text()
    result = found.args[0]
    assert growing and growing == sorted(growing) and growing[0] < len(result.lrs)
    assert panel.current_line.isVisible() and panel.current_line.value() == pytest.approx(math.log10(current))
    qtbot.waitUntil(lambda: not tab.session.is_finding_lr(), timeout=10_000)
    assert panel.curve.getData()[0] is not None and len(panel.curve.getData()[0]) == len(result.lrs) >= 5
    assert panel.suggested == result.lr  # drawn on the log axis: x is log10(rate)
    assert list(panel.mark.getData()[0]) == pytest.approx([math.log10(result.lr)])
    assert panel.cancel_button.isHidden() and panel.use_button.isVisible() and tab.find_lr_button.isEnabled()
    assert result.explained(current) in panel.note.text() and result.method in panel.note.text()
    assert f"The current rate, {learning_rate(current)}," in panel.note.text()
    # a click on the curve's lowest point (always in view; a diverged end may lie above the plotted range)
    # takes that rate (the nearest tried); "Use" takes the suggestion
    target = result.lrs[result.losses.index(min(result.losses))]
    qtbot.mouseClick(panel.plot.viewport(), Qt.MouseButton.LeftButton, pos=panel.scene_point(target))
    assert panel.chosen == target and abs(tab.form.lr_spin.value() - target) <= max(1e-6, 0.01 * target)
    panel.use_button.click()
    assert panel.chosen == result.lr  # the suggestion itself, not the nearest rate tried (minimum / 10 is not one)
    assert abs(tab.form.lr_spin.value() - result.lr) <= max(1e-6, 0.01 * result.lr)
    assert sorted(p.name for p in paths.models_dir().glob("*")) == models_before  # nothing saved


def test_find_learning_rate_can_be_cancelled(qtbot, window, tmp_path):
    data = make_folder_dataset(tmp_path / "shapes", per_class=8, size=(32, 32))
    tab = window.train_tab
    setup_scratch(tab, data)
    tab.session.lr_find_steps = 10_000
    tab.find_lr_button.click()
    qtbot.waitUntil(lambda: "of at most 10000" in tab.lr_panel.progress.format(), timeout=120_000)
    lr_before = tab.form.lr_spin.value()
    with qtbot.waitSignal(tab.session.lr_finder.busy_changed, timeout=60_000, check_params_cb=lambda busy: not busy):
        tab.lr_panel.cancel_button.click()
    assert "Cancelled" in tab.lr_panel.note.text() and tab.lr_panel.cancel_button.isHidden()
    assert tab.form.lr_spin.value() == lr_before and tab.start_button.isEnabled()
    assert "cancelled" in window.status_line.full_text()  # not "Finding a learning rate…" any more
