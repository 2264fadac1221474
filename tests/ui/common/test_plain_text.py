"""Class names and file names are data: Qt shows them as plain text everywhere (no HTML, no images loaded).

A model whose class names are HTML is used in Predict (one image, a folder whose file name is HTML too), in
the Models tab and its details; every label and tooltip that shows such a name must not render it."""
import pytest
from helpers import make_checkpoint, write_image
from PySide6.QtGui import Qt
from PySide6.QtWidgets import QApplication, QLabel

from resnet_gui.ui.models.dialogs import ModelDetailsDialog

HOSTILE = ["<b>bold</b>", "<img src='/etc/hostname'>", "<a href='x'>link</a>", "three"]


def rich_labels(root) -> list[str]:
    """Texts of visible labels under `root` that show markup from the class names and would render it."""
    bad = []
    for label in root.findChildren(QLabel):
        text = label.text()
        markup = any(tag in text for tag in ("<b>bold", "<img src='/etc", "<a href='x'"))
        if markup and label.textFormat() != Qt.TextFormat.PlainText:
            bad.append(text)
    return bad


@pytest.fixture
def html_model(registry_dir):
    make_checkpoint(registry_dir / "html.pth", favour=0, class_names=HOSTILE)
    return "html"


def test_html_class_and_file_names_are_shown_as_plain_text(qtbot, html_model, window, tmp_path):
    tab = window.predict_tab
    qtbot.waitUntil(lambda: tab.model_combo.findData("html") >= 0, timeout=30_000)
    tab.select_model("html")
    tab.open_path(str(write_image(tmp_path / "photo.png")))
    qtbot.waitUntil(lambda: tab.single.class_label.text() == HOSTILE[0], timeout=60_000)
    assert tab.single.class_label.textFormat() == Qt.TextFormat.PlainText
    assert rich_labels(window) == []

    folder = tmp_path / "batch"
    write_image(folder / "<b>name<b>.png")
    write_image(folder / "plain.png")
    tab.open_path(str(folder))
    qtbot.waitUntil(lambda: tab.folder.table_model.rowCount() == 2 and not tab.busy(), timeout=60_000)
    view = tab.folder
    shown = {view.proxy.index(r, 1).data() for r in range(2)}
    assert "<b>name<b>.png" in shown                       # the name itself, not rendered markup
    for r in range(2):
        for c in range(view.proxy.columnCount()):
            tip = view.proxy.index(r, c).data(Qt.ItemDataRole.ToolTipRole)
            assert not tip or not Qt.mightBeRichText(tip) or "<b>" not in tip   # escaped when it looks like HTML
    assert rich_labels(window) == []

    window.tabs.setCurrentWidget(window.models_tab)
    qtbot.waitUntil(lambda: window.models_tab.table.rowCount() > 0, timeout=30_000)
    table = window.models_tab.table
    for r in range(table.rowCount()):
        for c in range(table.columnCount()):
            item = table.item(r, c)
            tip = item.toolTip() if item is not None else ""
            assert not tip or not Qt.mightBeRichText(tip) or "<b>" not in tip
    dialog = ModelDetailsDialog(window.registry.entry("html"), "{}", window.models_tab)
    dialog.show()
    assert rich_labels(dialog) == []
    dialog.close()
    assert rich_labels(window) == []
    QApplication.processEvents()
