"""Predict's three answer states (sure, not sure, unfamiliar), the persisted threshold, the folder table's
status column and filter, and the Grad-CAM overlay."""
import pytest
from helpers import make_folder_dataset, write_image
from PySide6.QtCore import QPoint, Qt
from PySide6.QtGui import QImage

from resnet_gui.core.inference.prediction import Prediction
from resnet_gui.ui.predict.answer import THRESHOLD_SETTING, UNFAMILIAR, UNSURE, candidates, knows_summary
from resnet_gui.ui.predict.session import ImageResult
from resnet_gui.ui.predict.single_image_view import UNFAMILIAR_TITLE, SingleImageView


def FakePrediction(**kw) -> Prediction:  # noqa: N802 - reads like the record it makes
    """A core Prediction with the demo's answer for a cat photo unless told otherwise."""
    values = {"path": "cat.jpg", "label": "8", "confidence": 0.988, "class_index": 8,
              "top_k": [("8", 0.988), ("3", 0.01), ("0", 0.002)]}
    values.update(kw)
    return Prediction(**values)


def fake_result(**kw):
    image = QImage(64, 48, QImage.Format.Format_RGB888)
    image.fill(Qt.GlobalColor.darkGreen)
    return ImageResult(name="/photos/cat.jpg", model_name="demo", prediction=FakePrediction(**kw), preview=image,
                       size=(64, 48))


def test_words_for_the_states():
    assert knows_summary([str(i) for i in range(10)]) == "0–9 digits"
    assert knows_summary(["cat", "dog", "owl"]) == "cat, dog and owl"
    assert knows_summary([f"c{i}" for i in range(120)]) == "c0, c1, c2, … (120 classes)"
    assert FakePrediction(confidence=0.59).state(0.6) == UNSURE
    assert FakePrediction(unfamiliar=True).state(0.6) == UNFAMILIAR
    top = [("3", 0.42), ("8", 0.31), ("5", 0.1)]
    assert candidates(FakePrediction(top_k=top), 0.6) == "3 (42.0%), 8 (31.0%) or 5 (10.0%)"
    near_zero = [("2", 0.983), ("6", 0.007), ("7", 0.005)]  # no "or 6 (0.7%) or 7 (0.5%)"
    assert candidates(FakePrediction(top_k=near_zero), 0.99) == "2 (98.3%)"


def test_single_view_shows_each_state_and_rereads_on_a_new_threshold(qtbot):
    view = SingleImageView()
    qtbot.addWidget(view)
    view.show()
    view.show_result(fake_result(), threshold=0.6, knows="0–9 digits")
    assert view.state == "sure" and view.class_label.text() == "8" and "98.8% sure" in view.confidence_label.text()
    assert view.topk.isVisible() and not view.guess_label.isVisible()
    view.set_threshold(0.99)  # nothing runs again: the same answer, read with the new threshold
    assert view.state == "unsure" and view.class_label.text() == "Not sure"
    assert view.confidence_label.text() == "Maybe 8 (98.8%). No class reaches 99%, the threshold set above."
    assert view.topk_title.text() == "Top candidates" and view.topk.isVisible()
    view.set_threshold(0.998)
    assert "No class reaches 99.8%" in view.confidence_label.text()
    view.show_result(fake_result(unfamiliar=True, familiarity=0.01), threshold=0.6)
    assert view.state == "unfamiliar" and view.class_label.text() == UNFAMILIAR_TITLE
    assert view.confidence_label.text() == "The model knows 0–9 digits."
    assert view.guess_label.isVisible() and view.guess_label.text().startswith("Top guess: 8 (98.8%)")
    assert "familiarity 1%" in view.guess_label.text() and not view.topk.isVisible()
    assert view.class_label.textFormat() == Qt.TextFormat.PlainText


def test_not_sure_then_sure_with_the_threshold_persisted(qtbot, vague_model, make_window, settings, tmp_path):
    window = make_window()
    tab = window.predict_tab
    tab.select_model("vague")
    assert tab.threshold_spin.value() == 60
    tab.open_path(str(write_image(tmp_path / "a.png", seed=1)))
    qtbot.waitUntil(lambda: tab.single.state is not None and not tab.busy(), timeout=60_000)
    assert tab.single.state == "unsure" and tab.single.class_label.text() == "Not sure"
    assert tab.single.confidence_label.text().startswith("Maybe two (29.")
    model = tab.session.model
    assert model.name == "vague" and not model.calibrated and not model.has_familiarity
    assert model.class_names == ("zero", "one", "two", "three")
    assert tab.single.topk_title.text() == "Top candidates" and len(tab.single.topk.rows()) == 4
    tab.threshold_spin.setValue(20)  # the same answer, read again: now sure enough
    assert tab.single.state == "sure" and tab.single.class_label.text() == "two"
    assert settings.get(THRESHOLD_SETTING) == 0.2 and tab.single.threshold == tab.folder.threshold == 0.2
    window.close()
    qtbot.waitUntil(lambda: not window.isVisible(), timeout=60_000)
    again = make_window()
    assert again.predict_tab.threshold_spin.value() == 20 and again.predict_tab.folder.threshold == 0.2


def test_folder_status_column_and_filter(qtbot, vague_model, predict_tab, tmp_path):
    folder = tmp_path / "batch"
    for i in range(3):
        write_image(folder / f"img{i}.png", seed=i)
    (folder / "zz_bad.jpg").write_bytes(b"\xff\xd8 broken jpeg")
    tab = predict_tab
    tab.select_model("vague")
    tab.open_path(str(folder))
    view = tab.folder
    qtbot.waitUntil(lambda: view.table_model.rowCount() == 4 and not tab.busy(), timeout=60_000)
    statuses = sorted(view.table_model.item(r, 4).text() for r in range(4))
    assert statuses == ["Error", "Not sure", "Not sure", "Not sure"]
    view.filter_combo.setCurrentIndex(view.filter_combo.findData("unsure"))
    assert view.proxy.rowCount() == 3 and {view.row_status(r) for r in range(3)} == {"unsure"}
    view.filter_combo.setCurrentIndex(view.filter_combo.findData("error"))
    assert view.proxy.rowCount() == 1 and view.proxy.index(0, 1).data() == "zz_bad.jpg"
    view.filter_combo.setCurrentIndex(view.filter_combo.findData("sure"))
    assert view.proxy.rowCount() == 0
    tab.threshold_spin.setValue(20)  # statuses are read again, and the filter follows
    assert view.status_counts() == {"sure": 3, "unsure": 0, "unfamiliar": 0, "error": 1}
    assert view.proxy.rowCount() == 3
    view.filter_combo.setCurrentIndex(0)
    assert view.proxy.rowCount() == 4
    view.table.sortByColumn(4, Qt.SortOrder.AscendingOrder)  # errors first, then unfamiliar, not sure, sure
    assert view.row_status(0) == "error"


def test_unfamiliar_images_are_flagged_when_the_model_has_familiarity_data(qtbot, digits_model, predict_tab, tmp_path):
    from resnet_gui.core.inference.prediction import Prediction

    if "unfamiliar" not in Prediction.__dataclass_fields__:
        pytest.skip("core.predict.Prediction has no `unfamiliar` field yet (the lead is adding it)")
    from resnet_gui.core.evaluation.fit_imported import add_familiarity
    from resnet_gui.core.models.registry import Registry

    data = make_folder_dataset(tmp_path / "digits", classes=("zero", "one", "two", "three"), per_class=12)
    add_familiarity(Registry().get("digits").path, data)
    predict_tab.registry.refresh()
    qtbot.waitUntil(lambda: predict_tab.registry.entry("digits") is not None
                    and predict_tab.registry.entry("digits").meta.get("familiarity") is not None, timeout=60_000)
    tab = predict_tab
    tab.open_path(str(write_image(tmp_path / "noise.png", size=(200, 200), seed=99)))  # a new file: a new model
    qtbot.waitUntil(lambda: tab.single.state is not None and not tab.busy(), timeout=60_000)
    pred = tab.single.result.prediction
    assert pred.unfamiliar in (True, False)
    if pred.unfamiliar:
        assert tab.single.class_label.text() == UNFAMILIAR_TITLE
        assert tab.single.confidence_label.text().endswith("(the model knows zero, one, two and three).")
        if pred.unfamiliar_why:  # its input statistics flagged it: the answer says how it differs
            assert tab.single.confidence_label.text().startswith(f"This image is {pred.unfamiliar_why} (")


def test_grad_cam_overlay_for_the_answer_and_for_a_picked_class(qtbot, digits_model, predict_tab, tmp_path):
    tab = predict_tab
    single = tab.single
    assert not single.explain_toggle.isEnabled()
    tab.open_path(str(write_image(tmp_path / "wide.png", size=(120, 60), seed=3)))
    qtbot.waitUntil(lambda: single.state == "sure" and not tab.busy(), timeout=60_000)
    original = single.preview.image()
    assert single.explain_toggle.isEnabled() and single.explain_combo.currentText() == "two"
    with qtbot.waitSignal(tab.session.explain_done, timeout=60_000) as signal:
        qtbot.mouseClick(single.explain_toggle, Qt.MouseButton.LeftButton)
    cam = signal.args[0]
    assert cam.label == "two" and single.overlay_label == "two"
    shown = single.preview.image()
    assert shown.width() == 4 * original.width() and shown.height() == 4 * original.height()  # enlarged: 480 px
    # the model saw the centre 60 x 60: the edges are only dimmed, never coloured
    edge, source = QImage(shown).pixelColor(8, 120), QImage(original).pixelColor(2, 30)
    assert abs(edge.red() - round(source.red() * 0.45)) <= 2 and abs(edge.blue() - round(source.blue() * 0.45)) <= 2
    assert "evidence for “two”" in single.explain_caption.text() and cam.cropped
    assert "dimmed edges were cropped" in single.explain_caption.text()
    assert 0.25 <= cam.peak[0] <= 0.75  # the map lies over the part the model saw
    # a class picked from the top classes (a click on its bar)
    with qtbot.waitSignal(tab.session.explain_done, timeout=60_000):
        row = [label for label, _ in single.topk.rows()].index("zero")
        qtbot.mouseClick(single.topk, Qt.MouseButton.LeftButton,
                         pos=QPoint(10, int((row + 0.5) * single.topk._row_height())))
    qtbot.waitUntil(lambda: single.overlay_label == "zero", timeout=10_000)
    assert single.explain_combo.currentText() == "zero"
    qtbot.mouseClick(single.explain_toggle, Qt.MouseButton.LeftButton)  # off: the image as it is
    assert single.overlay_label is None and single.preview.image() == original
    assert not single.explain_caption.isVisible()


def test_workers_sharing_a_model_take_turns(qtbot, digits_model, predict_tab, tmp_path):
    """An image asked for while the model is busy waits for its turn (one forward pass at a time per model)."""
    from resnet_gui.ui.predict.model_cache import get_predictor, using

    tab = predict_tab
    qtbot.waitUntil(lambda: tab.session.model is not None, timeout=60_000)
    predictor = get_predictor(tab.session.model_path, tab.session.device)  # the cached one the workers use
    with using(predictor):
        tab.open_path(str(write_image(tmp_path / "a.png", seed=1)))
        with pytest.raises(qtbot.TimeoutError):
            qtbot.waitUntil(lambda: tab.single.state is not None, timeout=1500)
    qtbot.waitUntil(lambda: tab.single.state == "sure" and not tab.busy(), timeout=60_000)


def test_a_folder_and_single_images_at_once_keep_their_familiarity(qtbot, digits_model, predict_tab, tmp_path):
    from resnet_gui.core.evaluation.fit_imported import add_familiarity
    from resnet_gui.core.models.registry import Registry

    data = make_folder_dataset(tmp_path / "digits", classes=("zero", "one", "two", "three"), per_class=12)
    add_familiarity(Registry().get("digits").path, data)
    tab = predict_tab
    folder = tmp_path / "many"
    for i in range(64):
        write_image(folder / f"img{i:02d}.png", seed=i)
    tab.open_path(str(folder))
    for i in range(3):  # single images while the folder runs on the same model
        tab.set_source(str(write_image(tmp_path / f"single{i}.png", seed=100 + i)), None)
        qtbot.waitUntil(lambda: tab.single.result is not None and not tab.session._image_slot.busy(),
                        timeout=60_000)
        assert tab.single.result.prediction.familiarity is not None
    # the folder asked for while the model was loading was not dropped by the images asked for after it
    qtbot.waitUntil(lambda: tab.folder.table_model.rowCount() == 64 and not tab.busy(), timeout=120_000)
    preds = tab.folder.results
    assert all(p.ok and p.familiarity is not None and p.unfamiliar in (True, False) for p in preds)


def test_the_cached_predictor_is_read_again_when_its_file_is_replaced_with_the_same_mtime(tmp_path):
    """The cache was keyed by the modification time alone: a checkpoint replaced (here with other class names)
    and given back its old time kept answering with the old model."""
    import os
    import shutil

    from resnet_gui.core.models.checkpoint import read_checkpoint, write_checkpoint
    from resnet_gui.core.models.demo import demo_checkpoint_path
    from resnet_gui.ui.predict.model_cache import get_predictor

    path = tmp_path / "m.pth"
    shutil.copyfile(demo_checkpoint_path(), path)
    first = get_predictor(str(path), "cpu")
    assert get_predictor(str(path), "cpu") is first
    before = os.stat(path)
    ckpt = read_checkpoint(path)
    ckpt.class_names = [f"digit {n}" for n in ckpt.class_names]
    write_checkpoint(ckpt, path)
    os.utime(path, ns=(before.st_atime_ns, before.st_mtime_ns))
    again = get_predictor(str(path), "cpu")
    assert again is not first and again.class_names[0] == "digit 0"


def test_prewarm_opens_the_first_model_once_while_the_window_is_built(isolated_home, monkeypatch):
    """ui/app.py starts opening the Predict tab's first model before the window is built: the tab's own load then
    finds it in the cache (one open, not two), and a model name that is no longer listed falls back to the
    registry's default."""
    import threading

    from resnet_gui.core.engines import choose
    from resnet_gui.core.models.demo import ensure_demo_model
    from resnet_gui.core.models.registry import Registry
    from resnet_gui.ui.predict import model_cache

    ensure_demo_model(Registry())
    real, opened = choose.open_predictor, []
    release = threading.Event()

    def counting(path, **kw):
        opened.append(path)
        release.wait(30)
        return real(path, **kw)

    monkeypatch.setattr(choose, "open_predictor", counting)
    monkeypatch.setattr(model_cache, "_cached", None)
    thread = model_cache.prewarm("a model since deleted", "cpu")
    path = str(Registry().resolve(None))
    waiter = threading.Thread(target=lambda: opened.append(model_cache.get_predictor(path, "cpu")))
    waiter.start()
    release.set()
    thread.join(60)
    waiter.join(60)
    assert opened[0] == path and len(opened) == 2   # one open, then the waiter's predictor
    assert model_cache.get_predictor(path, "cpu") is opened[1]


def test_the_registry_is_listed_once_for_the_first_model_and_the_window(qtbot, digits_model, monkeypatch):
    """The thread that opens the first model while the window is built listed the registry, then the window's
    first listing listed it again: one listing (the demo installed by it) now serves both; later ones list anew."""
    from resnet_gui.ui import registry_model
    from resnet_gui.ui.predict import model_cache

    real, calls = registry_model.list_registry, []
    monkeypatch.setattr(registry_model, "list_registry", lambda install_demo: calls.append(install_demo)
                        or real(install_demo))
    monkeypatch.setattr(model_cache, "_cached", None)
    first = registry_model.FirstListing()
    model_cache.prewarm("digits", "cpu", listing=first).join(60)
    assert calls == [True] and model_cache._cached is not None and model_cache._cached[0][0].endswith("digits.pth")
    registry = registry_model.RegistryModel(first=first)
    with qtbot.waitSignal(registry.changed, timeout=30_000):
        registry.refresh()
    assert calls == [True] and "digits" in [e.name for e in registry.entries] and registry.default_name
    with qtbot.waitSignal(registry.changed, timeout=30_000):
        registry.refresh()
    assert calls == [True, False]   # what changed since is seen: the first listing is taken once
    from resnet_gui.ui.common.workers import running_tasks

    qtbot.waitUntil(lambda: not running_tasks(), timeout=30_000)  # the listing's thread ends after its result


def test_a_class_name_given_twice_is_explained_by_its_own_index(qtbot):
    """_explain looked a class up by name (class_names.index): with two classes named alike it explained the
    first whichever was picked. The bars and the class list carry each class's index."""
    single = SingleImageView()
    qtbot.addWidget(single)
    single.show_result(fake_result(label="cat", class_index=2, top_k=[("cat", 0.6), ("dog", 0.3), ("cat", 0.1)],
                                   top_indices=[2, 0, 1]), 0.5)
    asked = []
    single.explain_requested.connect(asked.append)
    single.explain_class(2)                      # the third bar: the other "cat"
    single.explain_class(0)
    assert asked == [1, 2] and single.explain_combo.currentText() == "cat"


def test_a_not_sure_answer_never_shows_the_thresholds_figure(qtbot):
    view = SingleImageView()
    qtbot.addWidget(view)
    view.show_result(fake_result(confidence=0.9986, top_k=[("8", 0.9986), ("3", 0.0014)]), threshold=0.999)
    assert view.confidence_label.text() == "Maybe 8 (99.8%). No class reaches 99.9%, the threshold set above."
    view.set_threshold(0.998)
    assert view.confidence_label.text().startswith("99.9% sure")


def test_why_an_image_is_unfamiliar_reads_as_one_sentence(qtbot):
    view = SingleImageView()
    qtbot.addWidget(view)
    view.show_result(fake_result(unfamiliar=True, familiarity=0.0, unfamiliar_why="darker than its training images"),
                     threshold=0.6, knows="0–9 digits")
    assert view.confidence_label.text() == "This image is darker than its training images (the model knows 0–9 digits)."


def test_the_status_bar_never_shows_the_thresholds_figure_beside_not_sure(qtbot, make_window):
    tab = make_window().predict_tab
    tab.threshold_spin.setValue(99.9)
    result = fake_result(confidence=0.9986, top_k=[("8", 0.9986), ("3", 0.0014)])
    with qtbot.waitSignal(tab.status_message) as said:
        tab.session.image_done.emit(result)
    assert said.args == ["cat.jpg: 8 (99.8%) — not sure."]
