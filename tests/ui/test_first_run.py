import re

from resnet_gui.core.models.demo import DEMO_NAME


def test_first_run_selects_the_demo_and_try_a_sample_gives_the_right_digit(qtbot, window):
    tab = window.predict_tab
    assert tab.registry.default_name == DEMO_NAME  # installed on this first run, as the default
    assert tab.current_model_name() == DEMO_NAME
    assert tab.model_combo.currentText().endswith("(test accuracy 98.9%)")  # not the validation split's 99.4%
    table = window.models_tab.table
    qtbot.waitUntil(lambda: table.rowCount() == 1, timeout=60_000)
    assert table.item(0, 3).text() == "98.9% test" and "held-out" in table.item(0, 3).toolTip()
    assert tab.sample_button.isEnabled()
    for _ in range(3):
        tab.single.class_label.setText("—")
        tab.try_sample()
        qtbot.waitUntil(lambda: tab.single.class_label.text() != "—" and not tab.busy(), timeout=60_000)
        expected = re.match(r"digit_(\d)_", tab.single.file_label.text()).group(1)
        assert tab.single.class_label.text() == expected


def test_empty_states_explain_what_to_do(qtbot, window):
    assert "Models live in" in window.models_tab.intro.text() and "Import" in window.models_tab.intro.text()
    train = window.train_tab
    train.set_mode("cifar10")
    assert "CIFAR-10" in train.form.mode_help.text()
    train.set_mode("finetune")
    assert "ImageNet" in train.form.mode_help.text()
