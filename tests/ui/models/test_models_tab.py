import json
import os
import subprocess
import sys

import torch
import torchvision
from PySide6.QtWidgets import QDialog, QMessageBox

from resnet_gui.core.models.registry import Registry
from resnet_gui.ui.models import tab as mt


def rows(tab):
    return {tab.table.item(r, 0).data(mt.Qt.ItemDataRole.UserRole + 1): [tab.table.item(r, c).text()
            for c in range(tab.table.columnCount())] for r in range(tab.table.rowCount())}


def test_broken_checkpoint_is_shown_as_broken(qtbot, digits_model, registry_dir, make_window):
    (registry_dir / "garbage.pth").write_bytes(b"PK\x03\x04 cut short")
    window = make_window()
    table = rows(window.models_tab)
    assert "Broken" in table["garbage"][4] and "truncated" in table["garbage"][4]
    assert table["digits"][1] == "resnet18_cifar" and table["digits"][2] == "4"
    assert table["digits"][3] == "50.0% validation"  # no held-out test figure in this model
    assert window.predict_tab.model_combo.findData("garbage") < 0  # not offered for prediction
    assert "Models live in" in window.models_tab.intro.text()


def test_import_a_foreign_state_dict_asks_for_class_names(qtbot, window, tmp_path, monkeypatch):
    f = tmp_path / "pets_resnet18.pth"
    torch.save({"model_state_dict": torchvision.models.resnet18(num_classes=3).state_dict()}, f)
    asked = {}

    def fake_exec(dialog):
        asked["prefill"] = dialog.names()
        dialog.edit.setPlainText("cat\ndog\nbird")
        return QDialog.DialogCode.Accepted

    monkeypatch.setattr(mt.ClassNamesDialog, "exec", fake_exec)
    tab = window.models_tab
    tab.import_file(str(f))
    qtbot.waitUntil(lambda: window.registry.entry("pets_resnet18") is not None, timeout=60_000)
    assert asked["prefill"] == ["class_0", "class_1", "class_2"]
    entry = window.registry.entry("pets_resnet18")
    assert entry.meta["class_names"] == ["cat", "dog", "bird"] and entry.meta["arch"] == "resnet18"
    qtbot.waitUntil(lambda: tab.banner.kind() == "success", timeout=10_000)
    assert window.predict_tab.model_combo.findData("pets_resnet18") >= 0


def test_import_of_a_hostile_file_is_refused_with_a_message(qtbot, models_tab, tmp_path):
    from helpers import hostile_checkpoint

    marker = tmp_path / "MARK"
    f = hostile_checkpoint(tmp_path / "evil.pth", marker)
    models_tab.import_file(str(f))
    qtbot.waitUntil(lambda: models_tab.banner.kind() == "error", timeout=30_000)
    assert "evil.pth" in models_tab.banner.text() and "refused" in models_tab.banner.text()
    assert not marker.exists()


def test_rename_default_details_delete(qtbot, digits_model, registry_dir, window, monkeypatch):
    from helpers import make_checkpoint

    make_checkpoint(registry_dir / "other.pth", class_names=["a", "b"])
    window.registry.refresh()
    tab = window.models_tab
    qtbot.waitUntil(lambda: window.registry.entry("other") is not None, timeout=30_000)
    tab.select("other")
    tab.default_button.click()
    qtbot.waitUntil(lambda: window.registry.default_name == "other", timeout=30_000)
    assert rows(tab)["other"][0].startswith("★")
    details = json.loads(tab.details_text("other"))
    assert details["class_names"] == ["a", "b"] and "preprocess" in details
    tab.select("other")
    monkeypatch.setattr(mt.RenameDialog, "exec", lambda d: d.edit.setText("renamed") or QDialog.DialogCode.Accepted)
    tab.rename()
    qtbot.waitUntil(lambda: window.registry.entry("renamed") is not None, timeout=30_000)
    assert window.registry.default_name == "renamed"
    qtbot.waitUntil(lambda: tab.selected() == "renamed", timeout=10_000)
    monkeypatch.setattr(QMessageBox, "question", lambda *a, **k: QMessageBox.StandardButton.Yes)
    tab.delete()
    qtbot.waitUntil(lambda: window.registry.entry("renamed") is None, timeout=30_000)
    assert Registry().names() == ["digits"]
    tab.select("digits")
    tab.use_button.click()
    assert window.tabs.currentWidget() is window.predict_tab
    assert window.predict_tab.current_model_name() == "digits"


def test_settings_persist_between_sessions(qtbot, digits_model, registry_dir, make_window, tmp_path):
    from helpers import make_checkpoint

    from resnet_gui.core.settings import Settings
    from resnet_gui.ui.main_window import MainWindow

    make_checkpoint(registry_dir / "second.pth", class_names=["x", "y"])
    w = make_window()
    w.predict_tab.select_model("second")
    w.tabs.setCurrentIndex(1)
    w.train_tab.set_mode("scratch")
    w.train_tab.data.folder_edit.setText(str(tmp_path))
    w.train_tab.form.epochs_spin.setValue(7)
    w.resize(w.minimumSizeHint().width() + 10, 520)
    size = w.size()
    w.close()
    qtbot.waitUntil(lambda: not w.isVisible(), timeout=60_000)
    settings = Settings()
    assert settings.get("predict.model") == "second" and settings.get("window.tab") == 1
    w2 = MainWindow(settings)
    try:
        assert w2.tabs.currentIndex() == 1
        assert w2.train_tab.mode() == "scratch" and w2.train_tab.form.epochs_spin.value() == 7
        assert w2.train_tab.data.folder_edit.text() == str(tmp_path)
        assert w2.size().height() == size.height()  # (the width is clamped to the 800 px offscreen screen)
    finally:
        w2.deleteLater()


def test_window_appears_before_torch_is_imported(tmp_path):
    env = dict(os.environ, QT_QPA_PLATFORM="offscreen", RESNET_GUI_STARTUP_PROBE="exit")
    proc = subprocess.run([sys.executable, "-m", "resnet_gui"], capture_output=True, text=True, env=env, timeout=120)
    assert proc.returncode == 0, proc.stderr
    line = next(ln for ln in proc.stdout.splitlines() if ln.startswith("RESNET_GUI_WINDOW_SHOWN"))
    assert "torch_loaded=False" in line


def test_a_rename_reaches_every_tab_and_incomplete_runs_are_marked(qtbot, digits_model, registry_dir, window,
                                                                     monkeypatch):
    from helpers import make_checkpoint

    from resnet_gui.core.train import TrainResult

    make_checkpoint(registry_dir / "stopped.pth", class_names=["a", "b"], notes={"run_name": "stopped"},
                    metrics={"val_accuracy": 0.6, "epoch": 9, "epochs": 40})
    make_checkpoint(registry_dir / "done.pth", class_names=["a", "b"], notes={"run_name": "done-run"},
                    metrics={"val_accuracy": 0.7, "epoch": 9, "epochs": 40, "warnings": []})
    window.registry.refresh()
    qtbot.waitUntil(lambda: window.registry.entry("done") is not None, timeout=30_000)
    tab = window.models_tab
    assert rows(tab)["stopped"][0].removeprefix("★ ") == "stopped (incomplete: best at epoch 9 of 40)"
    assert rows(tab)["done"][0].removeprefix("★ ") == "done"  # finished: its best epoch was 9, and that is fine
    predict, evaluate, train = window.predict_tab, window.evaluate_tab, window.train_tab
    labels = [predict.model_combo.itemText(i) for i in range(predict.model_combo.count())]
    assert any(t.startswith("stopped") and t.endswith("(validation accuracy 60.0%; incomplete: best at epoch 9 of 40)")
               for t in labels), labels
    assert window.registry.run_models() == {"stopped": "stopped", "done-run": "done"}
    predict.select_model("done")
    evaluate.select_model("done")
    train.monitor.on_result(TrainResult(status="finished", message="", best_name="done", best_val_accuracy=0.7),
                            [])
    tab.select("done")
    monkeypatch.setattr(mt.RenameDialog, "exec", lambda d: d.edit.setText("pets") or QDialog.DialogCode.Accepted)
    tab.rename()
    qtbot.waitUntil(lambda: window.registry.entry("pets") is not None, timeout=30_000)
    assert predict.current_model_name() == "pets" and evaluate.current_model_name() == "pets"
    assert "“pets”" in train.monitor.banner.text() and "“done”" not in train.monitor.banner.text()
    assert window.runs_tab._model_names["done-run"] == "pets"
