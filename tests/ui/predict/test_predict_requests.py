"""Predict tab requests: a failed model load is reported (and retried), never parked; a superseded image never
shows; folder results say which model made them; Try a sample for models other than the demo."""
from helpers import make_checkpoint, make_folder_dataset, write_image
from PySide6.QtCore import Qt
from PySide6.QtWidgets import QApplication

from resnet_gui.core.models.checkpoint import read_checkpoint, write_checkpoint


def wait_ready(qtbot, tab):
    qtbot.waitUntil(lambda: tab.session.model is not None and not tab.busy(), timeout=60_000)


def test_after_a_failed_load_a_request_reports_the_failure_instead_of_waiting(qtbot, digits_model, registry_dir,
                                                                               predict_tab, tmp_path):
    tab = predict_tab
    wait_ready(qtbot, tab)
    make_checkpoint(registry_dir / "other.pth", class_names=["a", "b"])
    predict_tab.registry.refresh()
    qtbot.waitUntil(lambda: tab.model_combo.findData("other") >= 0, timeout=30_000)
    (registry_dir / "other.pth").write_bytes(b"PK\x03\x04 damaged after it was listed")
    with qtbot.waitSignal(tab.session.model_failed, timeout=60_000):
        tab.select_model("other")
    loads = []
    tab.session.model_started.connect(loads.append)
    tab.single.error_banner.clear_message()
    tab.open_path(str(write_image(tmp_path / "photo.png")))
    qtbot.waitUntil(lambda: tab.single.error_banner.isVisible(), timeout=60_000)
    assert loads == ["other"]  # the request tried the model again
    assert "could not be loaded" in tab.single.error_banner.text()
    assert tab.single.confidence_label.text() != "Loading the model…"
    assert not tab.session.has_pending()


def test_a_superseded_image_result_never_shows_under_the_new_name(qtbot, digits_model, predict_tab, tmp_path):
    tab = predict_tab
    wait_ready(qtbot, tab)
    first = write_image(tmp_path / "first.png", size=(1800, 1400))
    second = write_image(tmp_path / "second.png", size=(40, 30))
    shown = []
    tab.session.image_done.connect(lambda result: shown.append(result.name))
    tab.open_path(str(first))
    tab.open_path(str(second))
    qtbot.waitUntil(lambda: bool(shown) and not tab.busy(), timeout=60_000)
    assert shown == [str(second)]
    assert tab.single.file_label.text() == "second.png" and tab.single.preview.image().width() == 40


def test_a_failed_paste_keeps_the_result_on_screen(qtbot, digits_model, predict_tab, tmp_path):
    tab = predict_tab
    tab.open_path(str(write_image(tmp_path / "photo.png")))
    qtbot.waitUntil(lambda: tab.single.class_label.text() == "two", timeout=60_000)
    QApplication.clipboard().clear()
    tab.paste()
    assert "clipboard holds no image" in tab.single.error_banner.text()
    assert tab.single.class_label.isVisible() and tab.single.class_label.text() == "two"
    assert tab.single.topk.rows() and tab.single.preview.image() is not None


def test_folder_results_sorted_a_to_z_with_errors_in_tooltips_and_their_model_named(qtbot, digits_model, registry_dir,
                                                                                     predict_tab, tmp_path):
    folder = tmp_path / "batch"
    for name in ("b_img", "a_img", "c_img"):
        write_image(folder / f"{name}.png")
    (folder / "a_bad.jpg").write_bytes(b"\xff\xd8 broken jpeg")
    tab = predict_tab
    tab.open_path(str(folder))
    qtbot.waitUntil(lambda: tab.folder.table_model.rowCount() == 4 and not tab.busy(), timeout=60_000)
    view = tab.folder
    names = [view.proxy.index(r, 1).data() for r in range(4)]
    assert names == ["a_bad.jpg", "a_img.png", "b_img.png", "c_img.png"]
    assert view.proxy.index(0, 3).data() == ""                     # no error text in the Confidence column
    assert "not an image" in view.proxy.index(0, 1).data(Qt.ItemDataRole.ToolTipRole)
    assert view.table.textElideMode() == Qt.TextElideMode.ElideMiddle
    assert "digits" in view.folder_label.full_text()
    make_checkpoint(registry_dir / "second.pth", class_names=["x", "y"])
    predict_tab.registry.refresh()
    qtbot.waitUntil(lambda: tab.model_combo.findData("second") >= 0, timeout=30_000)
    tab.select_model("second")
    assert view.model_note.isVisible() and "made by “digits”" in view.model_note.text()
    view.model_note.buttons()[0].click()  # Run again with “second”
    qtbot.waitUntil(lambda: not tab.busy() and "second" in view.folder_label.full_text(), timeout=60_000)
    assert not view.model_note.isVisible()


def test_try_a_sample_uses_the_models_validation_images_or_says_there_are_none(qtbot, registry_dir, predict_tab,
                                                                               tmp_path):
    data = make_folder_dataset(tmp_path / "shapes", classes=("cats", "dogs"), per_class=10)
    trained = registry_dir / "trained.pth"
    make_checkpoint(trained, class_names=["cats", "dogs"])
    ckpt = read_checkpoint(trained)
    ckpt.dataset = {"name": "shapes", "path": str(data)}
    ckpt.train_config = {"dataset": "folder", "val_split": 0.2, "seed": 0}
    write_checkpoint(ckpt, trained)
    make_checkpoint(registry_dir / "imported.pth", class_names=["a", "b"])
    predict_tab.registry.refresh()
    tab = predict_tab
    qtbot.waitUntil(lambda: tab.model_combo.findData("imported") >= 0, timeout=30_000)
    tab.select_model("trained")
    tab.try_sample()  # waits for the model, then picks one of its validation images
    qtbot.waitUntil(lambda: tab.single.class_label.isVisible() and not tab.busy(), timeout=60_000)
    shown = tab.single.shown_name
    assert shown.startswith(str(data)) and shown in tab.session.model.samples
    assert len(tab.session.model.samples) == 4  # 20 % of 10 per class
    tab.select_model("imported")
    wait_ready(qtbot, tab)
    tab.try_sample()
    assert "no samples for this model" in tab.single.error_banner.text()


def test_an_unreadable_image_shows_the_error_and_no_class(qtbot, digits_model, predict_tab):
    tab = predict_tab
    tab.set_source(b"not an image", "pasted image")
    qtbot.waitUntil(lambda: tab.single.error_banner.isVisible(), timeout=60_000)
    assert not tab.single.class_label.isVisible()  # an empty image is an error, not a big dash as the class


def test_small_controls_show_why_threshold_and_samples(qtbot, predict_tab, settings):
    """Show why waits for an answer; the threshold keeps a decimal; Try a sample comes round to every sample
    (the hard digit and the not-a-digit images too) before one repeats."""
    from pathlib import Path

    from resnet_gui.ui.predict.answer import THRESHOLD_SETTING
    from resnet_gui.ui.predict.session import bundled_samples

    tab = predict_tab
    assert not tab.single.explain_toggle.isEnabled()  # no image yet
    tab.set_source(b"not an image", "notes.jpg")
    qtbot.waitUntil(lambda: tab.single.error_banner.isVisible(), timeout=60_000)
    assert not tab.single.explain_toggle.isEnabled()
    tab.threshold_spin.setValue(99.8)
    assert tab.threshold() == 0.998 and settings.get(THRESHOLD_SETTING) == 0.998
    assert tab.threshold_spin.toolTip() and tab.run_button.toolTip()
    wait_ready(qtbot, tab)
    shown = []
    for _ in range(len(bundled_samples())):
        tab.try_sample()
        shown.append(Path(tab.current_source[1] if tab.current_source[1] != "image" else tab.current_source[0]).name)
    qtbot.waitUntil(lambda: not tab.busy(), timeout=60_000)
    assert sorted(shown) == sorted(p.name for p in bundled_samples())
    assert any(n.startswith("hard_") for n in shown[:5]) and any(n.startswith("not_a_digit") for n in shown[:8])
