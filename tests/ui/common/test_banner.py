"""A banner's buttons call their action with nothing: clicked(checked) once filled an action's first default
argument, and "Evaluate it…" (lambda n=name: evaluate_requested.emit(n)) asked for a model called ''."""
from resnet_gui.ui.common.widgets import Banner


def test_a_button_calls_its_action_with_its_own_defaults(qtbot):
    banner = Banner()
    qtbot.addWidget(banner)
    got = []
    banner.show_message("Finished.", "warning", [("Evaluate it…", lambda n="faces": got.append(n)),
                                                 ("Open", lambda: got.append("open"))])
    for button in banner.buttons():
        button.click()
    assert got == ["faces", "open"]
    assert banner.kind() == "warning" and banner.text() == "Finished."


def test_a_long_message_scrolls_inside_the_banner_instead_of_being_cut_off(qtbot):
    """At 1024 x 700 an end-of-run verdict of nine lines was cut off after six, its last lines unreadable: the
    banner is as tall as a short text, and a long one scrolls within MAX_LINES lines."""
    from PySide6.QtWidgets import QVBoxLayout, QWidget

    host = QWidget()
    layout = QVBoxLayout(host)
    banner = Banner()
    layout.addWidget(banner)
    layout.addStretch(1)
    qtbot.addWidget(host)
    host.resize(500, 300)
    host.show()
    qtbot.waitExposed(host)
    line = banner.label.fontMetrics().lineSpacing()

    banner.show_message("Done.", "success")
    qtbot.waitUntil(lambda: banner.scroll.height() < 3 * line)
    assert banner.scroll.verticalScrollBar().maximum() == 0

    verdict = "Finished, but read this:\n" + "\n".join(f"• Warning number {i} about this run." for i in range(20))
    banner.show_message(verdict, "warning", [("Evaluate it…", lambda: None)])
    qtbot.waitUntil(lambda: banner.scroll.height() >= 6 * line)
    assert banner.scroll.height() <= Banner.MAX_LINES * line + 4
    bar = banner.scroll.verticalScrollBar()
    qtbot.waitUntil(lambda: bar.maximum() > 0)  # the rest is reachable by scrolling
    bar.setValue(bar.maximum())
    assert banner.text() == verdict

    banner.set_text("Short again.")
    qtbot.waitUntil(lambda: banner.scroll.height() < 3 * line)
