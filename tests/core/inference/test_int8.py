"""The int8 version of a model: verified before it is kept, used only while it matches the weights, never silent."""
import numpy as np
import pytest
from helpers import make_checkpoint, make_folder_dataset, write_image

from resnet_gui import resources
from resnet_gui.core.engines.choose import open_predictor
from resnet_gui.core.errors import ModelError
from resnet_gui.core.inference import int8
from resnet_gui.core.inference.int8 import int8_status, verify
from resnet_gui.core.models.checkpoint import read_checkpoint, read_checkpoint_metadata, write_checkpoint

DEMO = "models/digits-resnet18_cifar.pth"


def fake(logits: np.ndarray):
    """A 'model' that answers with fixed logits, row by row."""
    state = {"next": 0}

    def run(images):
        start = state["next"]
        state["next"] += len(images)
        return {"logits": logits[start:start + len(images)]}

    return run


def confident_logits(n: int, classes: int = 4, seed: int = 0) -> np.ndarray:
    rng = np.random.default_rng(seed)
    logits = rng.normal(size=(n, classes)).astype(np.float32)
    logits[np.arange(n), rng.integers(0, classes, n)] += 8.0
    return logits


def test_verification_passes_when_int8_gives_the_same_answers():
    logits = confident_logits(100)
    images = np.zeros((100, 8, 8, 3), np.uint8)
    labels = logits.argmax(1)
    record = verify(fake(logits), fake(logits + 0.01), images, labels)
    assert record["kept"] and record["agreement"] == 1.0 and record["sure_agreement"] == 1.0
    assert record["accuracy_fp32"] == record["accuracy_int8"] == 1.0 and record["reason"] == ""


def test_one_changed_sure_answer_in_a_hundred_is_refused_with_the_reason():
    logits = confident_logits(100)
    other = logits.copy()
    other[0] = other[0][::-1] * 3  # a different, confident answer on one image fp32 is sure about
    record = verify(fake(logits), fake(other), np.zeros((100, 8, 8, 3), np.uint8))
    assert not record["kept"] and record["sure_agreement"] < int8.MIN_SURE_AGREEMENT
    assert "sure answers" in record["reason"] and "99.5" in record["reason"]


def test_a_drop_in_accuracy_or_calibration_is_refused():
    logits = confident_logits(200)
    labels = logits.argmax(1)
    worse = logits.copy()
    flip = np.arange(0, 200, 40)  # 5 of 200 answers change: agreement 97.5 %, accuracy -2.5 points
    worse[flip] = np.roll(worse[flip], 1, axis=1)
    record = verify(fake(logits), fake(worse), np.zeros((200, 8, 8, 3), np.uint8), labels)
    assert not record["kept"]
    assert "accuracy fell" in record["reason"] and "of the images" in record["reason"]


def test_too_few_held_out_images_prove_nothing():
    logits = confident_logits(10)
    record = verify(fake(logits), fake(logits), np.zeros((10, 8, 8, 3), np.uint8))
    assert not record["kept"] and "only 10 held-out images" in record["reason"]


def test_the_demo_ships_with_its_verified_int8_version_and_uses_it():
    status = int8_status(read_checkpoint(resources.path(DEMO)))
    assert status.usable and status.verification["sure_agreement"] >= int8.MIN_SURE_AGREEMENT
    assert status.verification["images"] >= 500 and status.verification["agreement"] >= int8.MIN_AGREEMENT
    auto = open_predictor(resources.path(DEMO), device="cpu")
    exact = open_predictor(resources.path(DEMO), device="cpu", precision="fp32")
    assert auto.backend.precision == "int8" and exact.backend.precision == "fp32"
    for sample in sorted(resources.path("samples").glob("*.png")):
        a, b = auto.predict_file(sample), exact.predict_file(sample)
        assert a.label == b.label and a.state() == b.state(), sample.name
        assert abs(a.confidence - b.confidence) < 0.08


def test_an_int8_version_is_dropped_when_the_weights_or_preprocessing_change(isolated_home):
    from resnet_gui.core.models.registry import Registry

    models = isolated_home / "models"
    models.mkdir(parents=True, exist_ok=True)
    (models / "digits.pth").write_bytes(resources.path(DEMO).read_bytes())
    registry = Registry()
    assert int8_status(read_checkpoint(models / "digits.pth")).usable
    registry.update("digits", class_names=[f"d{i}" for i in range(10)])   # names only: the graph still fits
    assert int8_status(read_checkpoint(models / "digits.pth")).usable
    registry.update("digits", preprocess={"resize": 40})                   # what the graph computes changed
    status = int8_status(read_checkpoint(models / "digits.pth"))
    assert not status.usable and "changed after it was built" in status.reason
    assert read_checkpoint_metadata(models / "digits.pth")["int8"]["kept"] is False
    assert open_predictor("digits", device="cpu").backend.precision == "fp32"
    with pytest.raises(ModelError, match="no verified int8 version .*changed after it was built"):
        open_predictor("digits", device="cpu", precision="int8")


def test_asking_for_int8_without_one_names_why(tmp_path):
    path = make_checkpoint(tmp_path / "m.pth", class_names=["a", "b"])
    with pytest.raises(ModelError, match="no verified int8 version \\(no int8 version was built for it\\)"):
        open_predictor(path, device="cpu", precision="int8")
    with pytest.raises(ModelError, match="int8 runs in the ONNX Runtime engine"):
        open_predictor(path, engine="torch", device="cpu", precision="int8")


def test_a_damaged_int8_graph_costs_only_the_int8_version(tmp_path):
    import torch

    path = tmp_path / "demo.pth"
    path.write_bytes(resources.path(DEMO).read_bytes())
    obj = torch.load(path, weights_only=True)
    obj["int8_model"] = torch.zeros(3, 3)   # not bytes
    torch.save(obj, path)
    ckpt = read_checkpoint(path)
    status = int8_status(ckpt)
    assert not status.usable and "damaged" in status.reason
    pred = open_predictor(path, device="cpu").predict_file(sorted(resources.path("samples").glob("digit_3*"))[0])
    assert pred.label == "3"


def test_a_model_without_weights_or_labels_gets_a_reason_not_a_crash(tmp_path):
    from resnet_gui.core.evaluation.int8_version import add_int8

    path = make_checkpoint(tmp_path / "m.pth", class_names=["a", "b"])  # no dataset recorded in it
    record = add_int8(path)
    assert record["kept"] is False and "does not say which images it was trained on" in record["reason"]
    assert read_checkpoint_metadata(path)["int8"]["reason"] == record["reason"]


@pytest.mark.slow
def test_adding_familiarity_data_builds_and_verifies_the_int8_version(isolated_home, tmp_path):
    """The imported-model path: a folder of the model's classes gives familiarity data and an int8 version,
    verified on the part of the folder its calibration did not see."""
    from resnet_gui.core.evaluation.fit_imported import add_familiarity

    path = tmp_path / "m.pth"
    write_checkpoint(read_checkpoint(make_checkpoint(path, class_names=["cats", "dogs", "owls"], favour=1)), path)
    data = make_folder_dataset(tmp_path / "d", per_class=30, size=(40, 32))
    summary = add_familiarity(path, data)
    assert summary["int8"]["images"] >= int8.MIN_VERIFY_IMAGES
    record = read_checkpoint_metadata(path)["int8"]
    assert record["kept"] == summary["int8"]["kept"] and record["calibration_images"] == 36  # half of 72
    if record["kept"]:
        got = open_predictor(path, device="cpu").predict_file(write_image(tmp_path / "x.png"))
        assert got.label == "dogs"
