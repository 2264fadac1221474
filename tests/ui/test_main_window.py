"""The window as a whole: menus, the status bar, closing while work ends, theme changes, dialogs that go away,
sizes in one unit, diagnostics."""
import threading
from collections import Counter

from helpers import make_checkpoint
from PySide6.QtCore import QEvent
from PySide6.QtGui import QColor, QImage, QPalette
from PySide6.QtWidgets import QApplication, QDialog

from resnet_gui.text import decimal_size
from resnet_gui.ui import main_window as mw
from resnet_gui.ui.common.workers import Task


def test_view_menu_and_ctrl_numbers_go_to_each_tab(qtbot, window):
    for index, action in reversed(list(enumerate(window.tab_actions))):
        action.trigger()
        assert window.tabs.currentIndex() == index
    assert [a.shortcut().toString() for a in window.tab_actions] == ["Ctrl+1", "Ctrl+2", "Ctrl+3", "Ctrl+4", "Ctrl+5"]


def test_help_inside_the_app_explains_the_answers_and_the_terms(qtbot, window):
    help_menu = next(a.menu() for a in window.menuBar().actions() if a.text() == "&Help")
    texts = [a.text() for a in help_menu.actions()]
    assert "How to read the &answers" in texts and "&Glossary" in texts
    next(a for a in help_menu.actions() if a.text() == "&Glossary").trigger()
    dialog = window._help
    qtbot.waitUntil(dialog.isVisible)
    page = dialog.browser.toPlainText()
    for term in ("Sure", "Not sure", "Unfamiliar", "Error", "Calibration", "Familiarity", "Validation loss rose",
                 "Epoch", "Learning rate", "Overfitting"):
        assert term in page, term
    assert dialog.browser.verticalScrollBar().value() > 0  # at the glossary, not the top
    dialog.close()


def test_long_status_messages_are_elided_beside_the_model_and_device(qtbot, window):
    window.resize(900, 600)
    message = "A very long message about a folder " + "with many sub-folders/" * 30 + " that was classified."
    window.show_status(message)
    qtbot.waitUntil(lambda: window.status_line.text().endswith("…"), timeout=5_000)
    assert window.status_line.toolTip() == message
    line, model = window.status_line.geometry(), window.model_label.geometry()
    assert line.right() < model.left() and model.width() > 0


def test_a_status_message_does_not_outlive_what_it_was_about(qtbot, window, registry_dir):
    """"Training failed." goes when the Train recipe changes (another tab's message stays); a message naming a
    model follows its rename."""
    train = window.train_tab
    other = "finetune" if train.mode() != "finetune" else "scratch"
    train.status_message.emit("Training failed.")
    assert window.status_line.full_text() == "Training failed."
    train.set_mode(other)
    qtbot.waitUntil(lambda: window.status_line.full_text() == "")
    window.evaluate_tab.status_message.emit("“lowlr” on its validation split: 91.0% accuracy")
    train.set_mode("cifar10" if other != "cifar10" else "scratch")   # not the Train tab's message: it stays
    assert window.status_line.full_text().startswith("“lowlr”")
    make_checkpoint(registry_dir / "lowlr.pth", class_names=["a", "b"])
    window.registry.refresh()
    qtbot.waitUntil(lambda: window.registry.entry("lowlr") is not None, timeout=30_000)
    with qtbot.waitSignal(window.registry.renamed, timeout=30_000):
        window.registry.run("rename", "lowlr", "slowlr")
    assert window.status_line.full_text() == "“slowlr” on its validation split: 91.0% accuracy"


def test_the_demo_install_message_appears_once(qtbot, window):
    window.status_line.setText("")
    for _ in range(2):
        with qtbot.waitSignal(window.registry.changed, timeout=30_000):
            window.registry.refresh()
    assert "demo" not in window.status_line.full_text()


def test_closing_while_the_last_task_ends_still_closes(qtbot, window, monkeypatch):
    qtbot.waitUntil(lambda: not mw.running_tasks(), timeout=30_000)
    gate = threading.Event()
    task = Task(lambda report, stop: gate.wait(30), name="ending")
    task.start()
    real = mw.running_tasks
    calls = []

    def ends_right_after_the_check():
        """The second look finds the task running; it ends before anything can be connected to it."""
        found = real()
        calls.append(len(found))
        if len(calls) == 2 and found:
            gate.set()
            task.wait()
        return found

    monkeypatch.setattr(mw, "running_tasks", ends_right_after_the_check)
    window.close()
    qtbot.waitUntil(lambda: not window.isVisible(), timeout=30_000)
    assert calls[:2] == [1, 1]


def test_dialogs_are_deleted_after_use(qtbot, digits_model, models_tab, monkeypatch):
    tab = models_tab
    tab.select("digits")
    dialog = tab.show_details()
    assert "Classes" in dialog.value_labels and "4 classes" in dialog.value_labels["Classes"].text()
    assert "Validation accuracy" in dialog.value_labels
    dialog.reject()
    QApplication.sendPostedEvents(None, QEvent.Type.DeferredDelete)
    assert not tab.findChildren(QDialog)


def test_sizes_are_decimal_megabytes_everywhere(qtbot, digits_model, registry_dir, window):
    size = (registry_dir / "digits.pth").stat().st_size
    table = window.models_tab.table
    row = next(r for r in range(table.rowCount()) if "digits" in table.item(r, 0).text())
    assert table.item(row, 6).text() == f"{size / 1e6:.0f} MB"  # 1 MB = 1,000,000 bytes, as the label says
    assert window.train_tab.data.download_button.text() == "Download CIFAR-10 (170 MB)"
    assert decimal_size(999) == "999 bytes" and decimal_size(1) == "1 byte" and decimal_size(2_500_000_000) == "2.5 GB"


def luminance(color: QColor) -> float:
    def channel(v):
        return v / 12.92 if v <= 0.03928 else ((v + 0.055) / 1.055) ** 2.4

    return 0.2126 * channel(color.redF()) + 0.7152 * channel(color.greenF()) + 0.0722 * channel(color.blueF())


def drawn(widget, margin: int = 4) -> tuple[float, float]:
    """Luminance of a widget's background (its commonest colour inside the border) and of the colour drawn on
    it that differs most (its text)."""
    image = widget.grab().toImage().convertToFormat(QImage.Format.Format_RGB32)
    pixels = [QColor(image.pixel(x, y)) for y in range(margin, image.height() - margin)
              for x in range(margin, image.width() - margin)]
    background = luminance(QColor(Counter(c.rgb() for c in pixels).most_common(1)[0][0]))
    return background, max((luminance(c) for c in pixels), key=lambda v: abs(v - background))


def text_contrast(widget) -> float:
    """WCAG contrast ratio between a widget's text and its background as drawn."""
    background, text = drawn(widget)
    return (max(text, background) + 0.05) / (min(text, background) + 0.05)


def test_switching_to_dark_while_running_keeps_text_readable(qtbot, window):
    window.set_theme("light")
    window.set_theme("dark")
    dark = QColor("#2b2d31")
    qtbot.waitUntil(lambda: window.train_tab.form.mode_help.palette().color(QPalette.ColorRole.Window) == dark,
                    timeout=5_000)  # the palette change has reached the widgets
    toggle = window.predict_tab.folder_view_button
    assert not toggle.isChecked()
    assert text_contrast(toggle) > 4.5 and drawn(toggle)[0] < 0.1  # readable, and dark like the rest
    title = window.predict_tab.single.topk_title
    title.show()
    assert text_contrast(title) > 4.5
    help_label = window.train_tab.form.mode_help
    window.tabs.setCurrentWidget(window.train_tab)
    assert text_contrast(help_label) > 4.5
    window.set_theme("light")


def test_copy_diagnostics_has_versions_device_and_folders(qtbot, window, isolated_home):
    text = window.copy_diagnostics()
    assert QApplication.clipboard().text() == text
    for needed in ("ResNet GUI", "(full edition)", "Python", "torch", "Qt", "Device: CPU",
                   f"Models: {isolated_home / 'models'}",
                   f"Logs: {isolated_home / 'logs'}"):
        assert needed in text
    assert "threads)" in window.device_label.full_text() and "(1 threads)" not in window.device_label.full_text()


def test_a_1024_by_700_window_stays_that_size_on_every_tab(qtbot, window):
    """No toolbar sets the window's minimum width: the Runs and Models buttons wrap (the window grew from 1024
    to 1155 px on a tab switch before)."""
    window.resize(1024, 700)
    for index in range(window.tabs.count()):
        window.tabs.setCurrentIndex(index)
        QApplication.sendPostedEvents()  # the layouts settle
        QApplication.processEvents()
        assert window.minimumSizeHint().width() <= 1024, window.tabs.tabText(index)
        assert (window.width(), window.height()) == (1024, 700), window.tabs.tabText(index)
