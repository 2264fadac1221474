"""An evaluation on images that chose the model says so (issue 22, item 5): how many it trained on, the
validation split named for what it is, and the accuracy's 95 % interval below 1,000 images."""
from __future__ import annotations

from helpers import make_folder_dataset

from resnet_gui.core.evaluation.evaluate import evaluate
from resnet_gui.core.train import recipe, train


def test_evaluating_on_the_training_folder_says_the_figure_is_optimistic(isolated_home, tmp_path):
    data = make_folder_dataset(tmp_path / "shapes", classes=("a", "b"), per_class=20, size=(32, 32))
    cfg = recipe("scratch", data=str(data), arch="resnet18_cifar", epochs=1, batch_size=8, device="cpu",
                 augment="pad_crop", name="overlap")
    result = train(cfg)
    assert result.status == "finished", result.message
    whole = evaluate(result.best_path, str(data), device="cpu")
    assert whole.caveats[0] == ("The model was trained on 32 of these 40 images: the figure is optimistic, not a "
                                "result. Evaluate on images it never saw.")
    assert whole.caveats[1].startswith("8 of these are the validation split of its training run, which chose the "
                                       "best epoch and fitted the calibration")
    assert whole.caveats[2].startswith("Accuracy ") and "(95 % interval)" in whole.caveats[2]
    assert whole.to_json()["caveats"] == whole.caveats
    val = evaluate(result.best_path, "validation", device="cpu")
    assert val.caveats[0].startswith("These are the validation split of its training run")
    fresh = make_folder_dataset(tmp_path / "fresh", classes=("a", "b"), per_class=5, size=(32, 32))  # other files
    other = evaluate(result.best_path, str(fresh), device="cpu")
    assert len(other.caveats) == 1 and other.caveats[0].startswith("Accuracy ")
