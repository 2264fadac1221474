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
