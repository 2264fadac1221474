"""Help inside the app, offline: how to read the answers (sure, not sure, unfamiliar, error, calibration,
familiarity, the verdicts after training) and a short glossary, from resources/help/answers.html."""
from __future__ import annotations

from PySide6.QtWidgets import QDialog, QDialogButtonBox, QTextBrowser, QVBoxLayout

from resnet_gui import resources

HELP_PAGE = "help/answers.html"


class HelpDialog(QDialog):
    """The help page in a browser that follows the theme; `anchor` ("glossary") scrolls to that part."""

    def __init__(self, anchor: str | None = None, parent=None):
        super().__init__(parent)
        self.setWindowTitle("How to read the answers")
        layout = QVBoxLayout(self)
        self.browser = QTextBrowser()
        self.browser.setOpenExternalLinks(False)  # offline: nothing leaves the app
        try:
            self.browser.setHtml(resources.path(HELP_PAGE).read_text(encoding="utf-8"))
        except OSError as exc:
            self.browser.setPlainText(f"The help page could not be read ({exc}); reinstalling the app restores it.")
        layout.addWidget(self.browser)
        buttons = QDialogButtonBox(QDialogButtonBox.StandardButton.Close)
        buttons.rejected.connect(self.reject)
        layout.addWidget(buttons)
        self.resize(720, 640)
        self.anchor = anchor

    def showEvent(self, event) -> None:
        super().showEvent(event)
        if self.anchor:  # once laid out: before, there is nowhere to scroll
            self.browser.scrollToAnchor(self.anchor)
