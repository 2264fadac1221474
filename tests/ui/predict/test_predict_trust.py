"""Beside every answer: whether the confidence is calibrated and how well the model can flag unfamiliar images
(issue 22, items 2 and 4), with Add familiarity data… one click away where it would help."""
from helpers import write_image
from PySide6.QtCore import Qt
from PySide6.QtGui import QImage

from resnet_gui.core.inference.prediction import Prediction
from resnet_gui.ui.predict.answer import trust_words
from resnet_gui.ui.predict.session import ImageResult, LoadedModel
from resnet_gui.ui.predict.single_image_view import UNFAMILIAR_TITLE, SingleImageView


def model(**kw) -> LoadedModel:
    return LoadedModel(**{"name": "m", "path": "m.pth", "arch": "resnet18", "num_classes": 2, "device": "cpu", **kw})


def test_trust_words_for_each_kind_of_model():
    assert trust_words(model()) == ("Confidence not calibrated · cannot flag unfamiliar images", "warning", True)
    assert trust_words(model(calibrated=True, has_familiarity=True, can_flag="can flag unfamiliar images: well")) \
        == ("Confidence calibrated · can flag unfamiliar images: well", "info", False)
    weak = trust_words(model(calibrated=True, has_familiarity=True, can_flag="can flag unfamiliar images: weakly"))
    assert weak == ("Confidence calibrated · can flag unfamiliar images: weakly", "warning", False)
    old = trust_words(model(calibrated=True, has_familiarity=True, can_flag="can flag unfamiliar images: not measured"))
    assert old[1:] == ("warning", True)


def test_an_unfamiliar_answer_says_why_when_its_input_statistics_flagged_it(qtbot):
    view = SingleImageView()
    qtbot.addWidget(view)
    image = QImage(32, 32, QImage.Format.Format_RGB888)
    image.fill(Qt.GlobalColor.darkRed)
    pred = Prediction(path="cat.jpg", label="face", confidence=0.958, top_k=[("face", 0.958)], class_index=0,
                      unfamiliar=True, familiarity=0.0, unfamiliar_why="in colour; its training images were grey")
    view.show_result(ImageResult(name="cat.jpg", model_name="faces", prediction=pred, preview=image, size=(32, 32)),
                     knows="face and not_face", trust=("Confidence calibrated · can flag unfamiliar images: well",
                                                       "info", []))
    assert view.class_label.text() == UNFAMILIAR_TITLE
    assert view.confidence_label.text() == ("This image is in colour; its training images were grey "
                                            "(the model knows face and not_face).")
    assert view.trust_banner.text() == "Confidence calibrated · can flag unfamiliar images: well"
    assert view.trust_banner.kind() == "info" and not view.trust_banner.buttons()


def test_an_imported_model_carries_a_lasting_badge_with_add_familiarity_one_click_away(
        qtbot, digits_model, window, tmp_path, monkeypatch):
    asked = []
    monkeypatch.setattr("resnet_gui.ui.models.tab.QFileDialog.getExistingDirectory",
                        lambda *a, **k: asked.append(a[1]) or "")
    tab = window.predict_tab
    for name in ("a.png", "b.png"):  # the badge stays with every answer, not once in the status bar
        tab.open_path(str(write_image(tmp_path / name, size=(40, 40), seed=len(name))))
        qtbot.waitUntil(lambda: tab.single.state is not None and not tab.busy(), timeout=60_000)
        banner = tab.single.trust_banner
        assert banner.isVisible() and banner.kind() == "warning"
        assert banner.text() == "Confidence not calibrated · cannot flag unfamiliar images"
    (button,) = banner.buttons()
    assert button.text() == "Add familiarity data…"
    button.click()
    assert window.tabs.currentWidget() is window.models_tab and window.models_tab.selected() == digits_model
    assert asked and digits_model in asked[0]
