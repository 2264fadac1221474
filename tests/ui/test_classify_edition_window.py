"""The window of the classify-only edition (no PyTorch installed: edition.can_train() is False): one sentence saying
where training lives takes the place of the Train and Runs tabs, the menus follow, and it closes and saves as the
full window does. tests/test_classify_edition.py runs the same window with torch really unimportable."""
from PySide6.QtWidgets import QLabel

from resnet_gui import edition


def test_the_classify_window_says_where_training_lives_instead_of_train_and_runs(qtbot, monkeypatch, make_window,
                                                                                  settings):
    monkeypatch.setattr(edition, "can_train", lambda: False)
    window = make_window()
    assert [window.tabs.tabText(i) for i in range(window.tabs.count())] == ["Predict", "Train", "Evaluate", "Models"]
    assert window.train_tab is None and window.runs_tab is None
    page = window.tabs.widget(1)
    assert [label.text() for label in page.findChildren(QLabel)] == [edition.TRAINING_ELSEWHERE]
    assert "pip install resnet-gui" in edition.TRAINING_ELSEWHERE and "full edition" in edition.TRAINING_ELSEWHERE
    assert [a.text() for a in window.tab_actions] == ["&Predict", "&Train", "&Evaluate", "&Models"]
    assert [a.shortcut().toString() for a in window.tab_actions] == ["Ctrl+1", "Ctrl+2", "Ctrl+3", "Ctrl+4"]
    window.tab_actions[3].trigger()
    assert window.tabs.currentWidget() is window.models_tab
    assert window.is_ready() and window.device_label.text() == "Device: CPU (ONNX Runtime)"
    intro = window.models_tab.intro.text()
    assert "Train one in the full edition, or import" in intro and "Train tab" not in intro
    window.close()
    qtbot.waitUntil(lambda: not window.isVisible(), timeout=30_000)
    assert settings.get("window.tab", 0) == 3
