"""Familiarity that holds for small models: input statistics fitted on the training images, and the detector
measured against generated and bundled outliers when it is fitted (issue 22, item 2). No files, no Qt."""
from __future__ import annotations

import numpy as np
import pytest
import torch

from resnet_gui.core.inference import familiarity, input_stats, outliers
from resnet_gui.core.models.preprocess import Preprocess


def grey_faces(n: int, seed: int, size: int = 32) -> np.ndarray:
    """Grey blobs on grey backgrounds (uint8 N x S x S x 3): what a grey-face model saw."""
    rng = np.random.default_rng(seed)
    yy, xx = np.mgrid[0:size, 0:size] / size
    out = []
    for _ in range(n):
        cx, cy, r = rng.uniform(0.4, 0.6), rng.uniform(0.4, 0.6), rng.uniform(0.2, 0.35)
        face = np.where((xx - cx) ** 2 + (yy - cy) ** 2 < r * r, rng.uniform(150, 210), rng.uniform(40, 100))
        grey = np.clip(face + rng.normal(0, 6, face.shape), 0, 255).astype(np.uint8)
        out.append(np.repeat(grey[..., None], 3, -1))
    return np.stack(out)


def colour_photos(n: int, seed: int, size: int = 32) -> np.ndarray:
    rng = np.random.default_rng(seed)
    base = grey_faces(n, seed + 100, size).astype(np.float32)
    tint = rng.uniform(0.5, 1.0, (n, 1, 1, 3)) * np.array([1.0, 0.7, 0.4], np.float32)
    return np.clip(base * tint + rng.uniform(0, 40, (n, 1, 1, 3)), 0, 255).astype(np.uint8)


def test_colour_images_shown_to_a_grey_model_are_flagged_whatever_the_features_say():
    train, val, held = grey_faces(150, 0), grey_faces(40, 1), grey_faces(40, 2)
    profile = input_stats.fit(input_stats.image_stats(train), input_stats.image_stats(val))
    assert profile.unusual(input_stats.image_stats(held)).mean() <= 0.05
    photos = input_stats.image_stats(colour_photos(30, 3))
    assert profile.unusual(photos).all()
    assert profile.why(photos[0]) == "in colour; its training images were grey"
    # combined with the feature distance: features that look perfectly familiar do not save a colour photo
    feats = torch.randn(150, 8)
    fam = familiarity.fit(feats, torch.randint(0, 2, (150,)), torch.randn(40, 8), 2,
                          train_stats=input_stats.image_stats(train), val_stats=input_stats.image_stats(val))
    scores, flags, why = fam.judge(torch.randn(30, 8).numpy(), colour_photos(30, 3))
    assert flags.all() and (scores == 0).all() and set(why) == {"in colour; its training images were grey"}
    scores, flags, why = fam.judge(torch.randn(40, 8).numpy(), held)
    assert flags.mean() <= 0.15 and all(w is None for w, f in zip(why, flags) if not f)
    # the feature threshold leaves room for what the inputs flag: at least 95 % of validation images stay familiar
    by_inputs = fam.inputs.unusual(input_stats.image_stats(val)).mean()
    assert fam.threshold == pytest.approx(min(familiarity.FEATURE_SHARE_WITH_INPUTS, 0.05 - by_inputs))


def test_input_statistics_round_trip_and_old_records_still_work():
    train = grey_faces(60, 0)
    fam = familiarity.fit(torch.randn(60, 4), torch.randint(0, 2, (60,)), torch.randn(20, 4), 2,
                          train_stats=input_stats.image_stats(train), val_stats=input_stats.image_stats(train[:20]))
    fam.measured = {"caught": 1.0, "validation_flagged": 0.05, "rating": "well"}
    record = {k: torch.from_numpy(v) if isinstance(v, np.ndarray) else v for k, v in fam.to_checkpoint().items()}
    again = familiarity.Familiarity.from_checkpoint(record, num_classes=2, feature_dim=4)
    assert again.inputs is not None and again.inputs.margin == pytest.approx(fam.inputs.margin)
    assert again.measured["rating"] == "well"
    old = {k: v for k, v in record.items() if not k.startswith("input_") and k != "measured"}
    before = familiarity.Familiarity.from_checkpoint(old, num_classes=2, feature_dim=4)
    assert before.inputs is None and before.measured is None
    flags = before.judge(torch.randn(5, 4).numpy(), colour_photos(5, 1))[1]  # no input statistics: features only
    assert flags.shape == (5,)
    for broken in ({"input_margin": None}, {"input_low": torch.zeros(3)}, {"input_scale": torch.zeros(16)},
                   {"input_high": torch.full((16,), float("nan"))}):
        with pytest.raises(ValueError):
            familiarity.Familiarity.from_checkpoint({**record, **broken}, num_classes=2, feature_dim=4)


def test_input_statistics_and_the_measurement_are_written_and_read_back_by_the_torch_free_checkpoint_code(tmp_path):
    """write_checkpoint took every familiarity value that is not a str or a number for an array, so the "measured"
    record failed to save; read_checkpoint gives the input statistics back as numpy arrays."""
    from helpers import make_checkpoint

    from resnet_gui.core.models.checkpoint import read_checkpoint, read_checkpoint_metadata, write_checkpoint

    path = make_checkpoint(tmp_path / "m.pth", class_names=["a", "b"])
    ckpt = read_checkpoint(path)
    train = grey_faces(60, 0)
    rng = np.random.default_rng(0)
    fam = familiarity.fit(rng.normal(size=(60, 512)), rng.integers(0, 2, 60), rng.normal(size=(20, 512)), 2,
                          train_stats=input_stats.image_stats(train), val_stats=input_stats.image_stats(train[:20]))
    fam.measured = outliers.measure(lambda px: np.ones(len(px), bool), train[:20], ckpt.preprocess)
    ckpt.familiarity = fam.to_checkpoint()
    write_checkpoint(ckpt, path)
    again = read_checkpoint(path)
    assert again.familiarity_error is None and isinstance(again.familiarity["input_low"], np.ndarray)
    back = familiarity.Familiarity.from_checkpoint(again.familiarity, num_classes=2, feature_dim=512)
    assert np.array_equal(back.inputs.low, fam.inputs.low) and back.measured == fam.measured
    summary = read_checkpoint_metadata(path)["familiarity"]
    assert summary["input_statistics"] and outliers.can_flag(summary) == "can flag unfamiliar images: weakly"
    assert torch.load(path, weights_only=True)["familiarity"]["measured"]["rating"] == "weakly"


def test_the_detector_is_measured_against_generated_and_bundled_outliers():
    pre = Preprocess(resize=32, input_size=32, mean=(0.5, 0.5, 0.5), std=(0.25, 0.25, 0.25))
    val = grey_faces(30, 0)
    made = outliers.outlier_images(val, pre)
    assert set(made) == set(outliers.KINDS)
    assert all(a.dtype == np.uint8 and a.shape[1:] == (32, 32, 3) for a in made.values())
    assert len(made["photos"]) == 5 * 10  # the ten bundled photos, each whole and as four corners
    profile = input_stats.fit(input_stats.image_stats(grey_faces(150, 1)), input_stats.image_stats(val))
    measured = outliers.measure(lambda px: profile.unusual(input_stats.image_stats(px)), val, pre)
    assert measured["validation_images"] == 30 and measured["outlier_images"]["noise"] == outliers.PER_KIND
    assert measured["outliers"]["noise"] == 1.0 and measured["outliers"]["colour shifts"] == 1.0
    assert measured["rating"] == outliers.rating(measured)
    nothing = outliers.measure(lambda px: np.zeros(len(px), bool), val, pre)
    assert nothing["caught"] == 0.0 and nothing["rating"] == "not at all"


@pytest.mark.parametrize("caught, false, word", [(0.95, 0.05, "well"), (0.95, 0.2, "weakly"), (0.6, 0.05, "weakly"),
                                                 (0.3, 0.05, "not at all"), (None, 0.05, "not at all")])
def test_the_rating_in_words(caught, false, word):
    assert outliers.rating({"caught": caught, "validation_flagged": false}) == word
    assert outliers.rating(None) == "not at all"
