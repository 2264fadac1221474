"""Models tab: dialogs go away after use, each operation replaces the previous message, duplicates are named,
class names can be corrected after an import, and the table starts A to Z."""
import torch
import torchvision
from helpers import make_checkpoint
from PySide6.QtCore import QEvent
from PySide6.QtWidgets import QApplication, QDialog

from resnet_gui.core.models.registry import Registry
from resnet_gui.ui.models import tab as mt


def foreign_file(path):
    torch.save({"model_state_dict": torchvision.models.resnet18(num_classes=3).state_dict()}, path)
    return path


def accept_names(names):
    def fake_exec(dialog):
        dialog.edit.setPlainText("\n".join(names))
        return QDialog.DialogCode.Accepted

    return fake_exec


def type_name(text):
    def fake_exec(dialog):
        dialog.edit.setText(text)
        return QDialog.DialogCode.Accepted

    return fake_exec


def test_rename_checks_the_name_as_it_is_typed_and_keeps_it(qtbot, models_tab, registry_dir, monkeypatch):
    make_checkpoint(registry_dir / "first.pth", class_names=["a", "b"])
    make_checkpoint(registry_dir / "second.pth", class_names=["a", "b"])
    tab = models_tab
    tab.registry.refresh()
    qtbot.waitUntil(lambda: tab.registry.entry("second") is not None, timeout=30_000)
    dialog = mt.RenameDialog("first", [e.name for e in tab.registry.entries])
    qtbot.addWidget(dialog)
    ok = dialog.buttons.button(dialog.buttons.StandardButton.Ok)
    for text, problem in (("pets/cats", "“pets/cats” has '/': use letters"), ("Second", "already exists"),
                          ("", "Type a name"), ("aux", "Windows reserves")):
        dialog.edit.setText(text)
        assert not ok.isEnabled() and problem in dialog.problem.text(), text
    dialog.edit.setText("pets")
    assert ok.isEnabled() and dialog.problem.text() == ""

    def cancel_after_typing(dialog):
        dialog.edit.setText("half-typed")
        return QDialog.DialogCode.Rejected

    tab.select("first")
    monkeypatch.setattr(mt.RenameDialog, "exec", cancel_after_typing)
    tab.rename()
    monkeypatch.setattr(mt.RenameDialog, "exec", lambda dialog: QDialog.DialogCode.Rejected)
    tab.rename()  # reopened: what was typed is still there
    assert tab.rename_dialog.edit.text() == "half-typed"


def test_import_rename_duplicate_and_the_dialog_is_gone(qtbot, models_tab, tmp_path, monkeypatch):
    f = foreign_file(tmp_path / "tut.pth")
    monkeypatch.setattr(mt.ClassNamesDialog, "exec", accept_names(["cat", "dog", "bird"]))
    tab = models_tab
    tab.import_file(str(f))
    qtbot.waitUntil(lambda: tab.banner.kind() == "success", timeout=60_000)
    assert "Imported as “tut”" in tab.banner.text()
    QApplication.sendPostedEvents(None, QEvent.Type.DeferredDelete)
    assert not tab.findChildren(mt.ClassNamesDialog)
    qtbot.waitUntil(lambda: tab.selected() == "tut", timeout=30_000)
    monkeypatch.setattr(mt.RenameDialog, "exec", type_name("pets"))
    tab.rename()
    qtbot.waitUntil(lambda: models_tab.registry.entry("pets") is not None, timeout=30_000)
    qtbot.waitUntil(lambda: "Renamed “tut” to “pets”" in tab.banner.text(), timeout=10_000)
    assert "Imported as" not in tab.banner.text()
    tab.import_file(str(f))  # the same file again
    qtbot.waitUntil(lambda: tab.banner.kind() == "error", timeout=60_000)
    assert "already in the registry as 'pets'" in tab.banner.text() and "--" not in tab.banner.text()
    assert [b.text() for b in tab.banner.buttons()] == ["Import it again anyway"]
    tab.banner.buttons()[0].click()
    qtbot.waitUntil(lambda: len(Registry().names()) == 2, timeout=60_000)


def test_class_names_and_preprocessing_can_be_corrected_after_an_import(qtbot, models_tab, tmp_path, monkeypatch):
    f = foreign_file(tmp_path / "pets.pth")
    monkeypatch.setattr(mt.ClassNamesDialog, "exec", accept_names(["cat", "dog", "bird"]))
    tab = models_tab
    tab.import_file(str(f))
    qtbot.waitUntil(lambda: models_tab.registry.entry("pets") is not None, timeout=60_000)
    qtbot.waitUntil(lambda: tab.selected() == "pets", timeout=30_000)
    dialog = tab.show_details()
    assert "3 classes: cat, dog, bird" in dialog.value_labels["Classes"].text()
    assert "224×224 px" in dialog.value_labels["Input"].text()
    monkeypatch.setattr(mt.ClassNamesDialog, "exec", accept_names(["kitten", "puppy", "chick"]))
    dialog.edit_class_names()
    qtbot.waitUntil(lambda: models_tab.registry.entry("pets").meta["class_names"] == ["kitten", "puppy", "chick"],
                    timeout=60_000)
    assert "Saved the class names of “pets”" in tab.banner.text()
    dialog.edit_requested.emit("pets", {"preprocess": {"input_size": 160, "resize": 182}})
    qtbot.waitUntil(lambda: models_tab.registry.entry("pets").meta["preprocess"]["input_size"] == 160, timeout=60_000)
    dialog.reject()
    QApplication.sendPostedEvents(None, QEvent.Type.DeferredDelete)
    assert not tab.findChildren(QDialog)


def test_models_table_starts_a_to_z(qtbot, registry_dir, make_window):
    for name in ("zeta", "alpha", "mid"):
        make_checkpoint(registry_dir / f"{name}.pth", class_names=["a", "b"])
    window = make_window()
    table = window.models_tab.table
    names = [table.item(r, 0).data(mt.NAME_ROLE) for r in range(table.rowCount())]
    assert names == ["alpha", "mid", "zeta"]


def test_a_rename_problem_quotes_the_whole_name_and_fits_above_the_buttons(qtbot):
    dialog = mt.RenameDialog("lowlr", ["lowlr", "digits"])
    qtbot.addWidget(dialog)
    dialog.show()
    qtbot.waitExposed(dialog)
    ok = dialog.buttons.button(dialog.buttons.StandardButton.Ok)
    dialog.edit.setText("digits: zero/one?")
    assert not ok.isEnabled()
    assert dialog.problem.text().startswith("“digits: zero/one?” has ':', '/' and '?': use letters, digits, spaces")
    # the whole hint lies above the buttons, inside the dialog, at its default size
    qtbot.waitUntil(lambda: dialog.problem.geometry().bottom() < dialog.buttons.geometry().top())
    assert dialog.buttons.geometry().bottom() <= dialog.height()
    needed = dialog.problem.heightForWidth(dialog.problem.width())
    assert dialog.problem.height() >= needed, "the hint's last line is cut"
    dialog.edit.setText("digits zero one")
    assert ok.isEnabled() and not dialog.problem.isVisible()
