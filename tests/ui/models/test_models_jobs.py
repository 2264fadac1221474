"""Models tab: Export… (format, file, busy line, the result sentence with the card; what to install when the
ONNX packages are missing), Add familiarity data…, and what the details say about calibration and
familiarity."""
import pytest
from helpers import make_folder_dataset
from PySide6.QtCore import Qt

from resnet_gui.ui.models.dialogs import ModelDetailsDialog, calibration_words, familiarity_words
from resnet_gui.ui.models.export_dialog import ExportDialog

CLASSES = ("zero", "one", "two", "three")


def select(qtbot, tab, name):
    qtbot.waitUntil(lambda: tab.table.rowCount() > 0, timeout=30_000)
    tab.select(name)
    return tab


def test_export_to_torchscript_shows_a_busy_line_then_the_file_and_its_card(qtbot, digits_model, models_tab, tmp_path):
    tab = select(qtbot, models_tab, "digits")
    assert tab.export_button.isEnabled()
    out = tmp_path / "exports" / "digits.pt"
    tab.export("digits", "torchscript", str(out))
    assert tab.jobs.busy() and not tab.export_button.isEnabled()
    assert "cannot be cancelled" in tab.jobs.label.text() and not tab.jobs.cancel_button.isVisibleTo(tab.jobs)
    qtbot.waitUntil(lambda: not tab.jobs.busy() and tab.banner.kind() == "success", timeout=120_000)
    text = tab.banner.text()
    assert out.is_file() and (tmp_path / "exports" / "digits.pt.md").is_file()
    assert f"to {out}, checked with torch.jit.load" in text and f"Model card: {out}.md" in text
    assert "uint8 [N, 3, 32, 32]" in text and "normalisation is inside" in text
    assert [b.text() for b in tab.banner.buttons()] == ["Open folder"]
    assert not tab.jobs.isVisible() and tab.export_button.isEnabled()


def test_an_export_that_fails_says_why(qtbot, digits_model, models_tab, registry_dir):
    tab = select(qtbot, models_tab, "digits")
    tab.export("digits", "torchscript", str(registry_dir / "copy.pt"))
    qtbot.waitUntil(lambda: tab.banner.kind() == "error", timeout=60_000)
    assert "inside the app's models folder" in tab.banner.text()


def test_export_dialog_names_what_to_install_when_onnx_is_missing(qtbot, tmp_path, monkeypatch):
    import resnet_gui.core.export.exporter as export

    monkeypatch.setattr(export, "missing_packages", lambda fmt: ["onnx", "onnxruntime"] if fmt == "onnx" else [])
    dialog = ExportDialog("my pets", str(tmp_path))
    qtbot.addWidget(dialog)
    assert dialog.output() == str(tmp_path / "my pets.onnx") and not dialog.export_button.isEnabled()
    qtbot.waitUntil(lambda: dialog.missing is not None, timeout=30_000)
    assert "needs onnx and onnxruntime" in dialog.note.text() and "pip install resnet-gui[export]" in dialog.note.text()
    assert not dialog.export_button.isEnabled()
    dialog.format_combo.setCurrentIndex(dialog.format_combo.findData("torchscript"))
    assert dialog.output() == str(tmp_path / "my pets.pt") and dialog.export_button.isEnabled()
    assert "nothing beyond PyTorch" in dialog.note.text()
    dialog.path_edit.setText("")
    assert not dialog.export_button.isEnabled()


def test_export_dialog_asks_before_replacing_a_file_typed_in(qtbot, tmp_path, monkeypatch):
    """A typed path of an existing file was replaced (with its model card) without a question; the file dialog
    asks by itself, so a chosen one is not asked about twice."""
    from PySide6.QtWidgets import QFileDialog, QMessageBox

    (tmp_path / "old.pt").write_bytes(b"keep me")
    (tmp_path / "old.pt.md").write_text("card")
    asked = []

    def answer(reply):
        def question(parent, title, text, *args):
            asked.append(text)
            return reply
        return question

    def opened():
        d = ExportDialog("digits", str(tmp_path))
        qtbot.addWidget(d)
        qtbot.waitUntil(lambda: d.missing is not None, timeout=60_000)  # its package check has ended
        return d

    dialog = opened()
    dialog.format_combo.setCurrentIndex(dialog.format_combo.findData("torchscript"))
    dialog.path_edit.setText(str(tmp_path / "old.pt"))
    monkeypatch.setattr(QMessageBox, "question", answer(QMessageBox.StandardButton.No))
    dialog.accept()
    assert dialog.result() != dialog.DialogCode.Accepted and len(asked) == 1
    assert "old.pt already exists" in asked[0] and "model card old.pt.md" in asked[0]
    monkeypatch.setattr(QMessageBox, "question", answer(QMessageBox.StandardButton.Yes))
    dialog.accept()
    assert dialog.result() == dialog.DialogCode.Accepted and len(asked) == 2
    assert (tmp_path / "old.pt").read_bytes() == b"keep me"  # the dialog itself writes nothing

    dialog = opened()
    dialog.path_edit.setText(str(tmp_path))
    dialog.accept()
    assert dialog.result() != dialog.DialogCode.Accepted and "is a folder" in dialog.note.text()
    monkeypatch.setattr(QFileDialog, "getSaveFileName", lambda *a, **k: (str(tmp_path / "old.pt"), ""))
    dialog.choose_file()
    dialog.accept()
    assert dialog.result() == dialog.DialogCode.Accepted and len(asked) == 2  # the file dialog asked instead
    dialog = opened()
    dialog.path_edit.setText(str(tmp_path / "new.pt"))
    dialog.accept()
    assert dialog.result() == dialog.DialogCode.Accepted and len(asked) == 2  # a new file: nothing to ask
    from resnet_gui.core.paths import runs_dir

    dialog = opened()
    dialog.path_edit.setText(str(runs_dir() / "some-run" / "x.pt"))
    dialog.accept()
    assert dialog.result() != dialog.DialogCode.Accepted and "inside the app's runs folder" in dialog.note.text()


def test_export_dialog_offers_onnx_when_installed(qtbot, tmp_path):
    pytest.importorskip("onnx")
    dialog = ExportDialog("digits", str(tmp_path))
    qtbot.addWidget(dialog)
    qtbot.waitUntil(lambda: dialog.missing is not None, timeout=60_000)
    assert dialog.fmt() == "onnx" and dialog.export_button.isEnabled() and "onnxruntime" in dialog.note.text()


def test_add_familiarity_data_from_a_folder(qtbot, digits_model, models_tab, tmp_path):
    data = make_folder_dataset(tmp_path / "digits", classes=CLASSES, per_class=10)
    tab = select(qtbot, models_tab, "digits")
    entry = tab.registry.entry("digits")
    assert entry.meta.get("familiarity") is None and tab.familiarity_button.isEnabled()
    dialog = ModelDetailsDialog(entry, "{}", tab)
    assert dialog.value_labels["Unfamiliar images"].text().startswith(
        "cannot flag unfamiliar images: it has no familiarity data")
    assert dialog.value_labels["Confidence"].text().startswith("uncalibrated")
    dialog.close()
    tab.add_familiarity("digits", str(data), calibrate=True)  # held-out digits: calibration is sound
    assert tab.jobs.busy() and tab.jobs.cancel_button.isVisibleTo(tab.jobs)
    qtbot.waitUntil(lambda: not tab.jobs.busy() and tab.banner.kind() in ("success", "error"), timeout=180_000)
    assert tab.banner.kind() == "success", tab.banner.text()
    assert "“digits” now knows what its classes look like (40 images" in tab.banner.text()
    qtbot.waitUntil(lambda: (tab.registry.entry("digits").meta or {}).get("familiarity") is not None,
                    timeout=30_000)
    tab.select("digits")
    assert not tab.familiarity_button.isEnabled()
    details = ModelDetailsDialog(tab.registry.entry("digits"), "{}", tab)
    words = details.value_labels["Unfamiliar images"].text()  # measured against outliers as it was fitted
    assert words.startswith("can flag unfamiliar images: ") and "test images unlike its training images" in words
    assert details.value_labels["Confidence"].text().startswith("calibrated (temperature")
    details.close()


@pytest.mark.parametrize("answer", ["Yes", "No"])
def test_the_familiarity_dialog_asks_before_calibrating_an_uncalibrated_model(qtbot, digits_model, models_tab, tmp_path,
                                                                           monkeypatch, answer):
    from PySide6.QtWidgets import QFileDialog, QMessageBox

    tab = select(qtbot, models_tab, "digits")
    asked, started = [], []
    monkeypatch.setattr(QFileDialog, "getExistingDirectory", lambda *a, **k: str(tmp_path))
    monkeypatch.setattr(QMessageBox, "question", lambda parent, title, text, *a: asked.append(text)
                        or getattr(QMessageBox.StandardButton, answer))
    monkeypatch.setattr(tab.jobs, "add_familiarity", lambda name, folder, calibrate: started.append(
        (name, folder, calibrate)))
    tab.familiarity_dialog()
    assert len(asked) == 1 and "left out of its training" in asked[0]
    assert started == [("digits", str(tmp_path), answer == "Yes")]


def test_adding_familiarity_data_can_be_cancelled(qtbot, digits_model, models_tab, tmp_path):
    data = make_folder_dataset(tmp_path / "digits", classes=CLASSES, per_class=80, size=(64, 64))
    tab = select(qtbot, models_tab, "digits")
    before = tab.registry.entry("digits").path.stat().st_mtime_ns
    tab.add_familiarity("digits", str(data))
    qtbot.mouseClick(tab.jobs.cancel_button, Qt.MouseButton.LeftButton)
    assert not tab.jobs.busy() and tab.banner.text() == "Cancelled; the model is unchanged."
    from resnet_gui.ui.common.workers import wait_for_all

    wait_for_all(120_000)
    assert tab.registry.entry("digits").path.stat().st_mtime_ns == before


def test_details_words_for_calibration_and_familiarity():
    assert calibration_words(None).startswith("uncalibrated")
    assert calibration_words({"temperature": 1.5, "ece_before": 0.146, "ece_after": 0.021, "fitted_on": "val"}) == \
        "calibrated (temperature 1.50); calibration error 0.146 before, 0.021 after; fitted on val"
    assert calibration_words({"temperature": "x"}).startswith("uncalibrated")
    assert familiarity_words(None).startswith("cannot flag unfamiliar images: it has no familiarity data")
    assert familiarity_words({"method": "mahalanobis", "threshold": 0.05}).startswith(
        "can flag unfamiliar images: not measured (fitted before the app measured how well it works")
    measured = {"validation_flagged": 0.0556, "validation_images": 36, "caught": 0.6,
                "outliers": {"noise": 1.0, "photos": 0.2}, "outlier_images": {"noise": 24, "photos": 50}}
    assert familiarity_words({"method": "mahalanobis", "threshold": 0.025, "measured": measured,
                              "input_statistics": True}) == (
        "can flag unfamiliar images: weakly (caught 60% of 74 test images unlike its training images (noise 100%, "
        "photos 20%); flagged 5.6% of its 36 validation images; it also compares colour, brightness, contrast "
        "and detail with its training images; threshold 0.025)")
