import numpy as np
import pytest
import torch
import torchvision
from helpers import make_checkpoint, write_image
from PIL import Image

from resnet_gui.core.inference.prediction import write_csv
from resnet_gui.core.models.checkpoint import read_checkpoint
from resnet_gui.core.models.preprocess import Preprocess


@pytest.fixture
def favour3(tmp_path):
    return make_checkpoint(tmp_path / "f3.pth", favour=3, class_names=[f"k{i}" for i in range(5)])


def test_predicts_top_k_with_probabilities(favour3, tmp_path, open_model):
    p = open_model(favour3)
    pred = p.predict_file(write_image(tmp_path / "x.png"), top_k=3)
    assert pred.ok and pred.label == "k3" and pred.confidence > 0.99
    assert len(pred.top_k) == 3 and pred.top_k[0] == ("k3", pred.confidence)
    probs = [prob for _, prob in pred.top_k]
    assert probs == sorted(probs, reverse=True)
    assert p.predict_file(tmp_path / "x.png", top_k=50).top_k.__len__() == 5


def test_batches_match_single_images(cifar_checkpoint_file, tmp_path, open_model):
    p = open_model(cifar_checkpoint_file)
    files = [write_image(tmp_path / f"{i}.png", size=(32 + i, 30), seed=i) for i in range(5)]
    singles = [p.predict_file(f) for f in files]
    batched = [pred for batch in p.predict_paths(files, batch_size=2) for pred in batch]
    assert [s.label for s in singles] == [b.label for b in batched]
    for s, b in zip(singles, batched):
        assert abs(s.confidence - b.confidence) < 1e-4


def test_bad_files_do_not_stop_the_others(cifar_checkpoint_file, tmp_path, open_model):
    good = write_image(tmp_path / "good.png")
    bad = tmp_path / "bad.png"
    bad.write_bytes(b"broken")
    p = open_model(cifar_checkpoint_file)
    results = [r for batch in p.predict_paths([bad, good, bad], batch_size=2) for r in batch]
    assert [r.ok for r in results] == [False, True, False]
    assert "bad.png" in results[0].error and results[1].path == str(good)


def test_eval_preprocessing_matches_torchvisions_preset(tmp_path, open_model):
    """For an ImageNet-style model the input is exactly what ResNet18_Weights.transforms() produces."""
    ckpt_path = make_checkpoint(tmp_path / "r.pth", arch="resnet18", class_names=["a", "b"])
    p = open_model(ckpt_path)
    img = Image.open(write_image(tmp_path / "photo.png", size=(300, 200))).convert("RGB")
    pre = p.preprocess
    pixels = torch.from_numpy(np.array(p.prepare(img))).permute(2, 0, 1).unsqueeze(0).float()
    ours = (pixels / 255 - torch.tensor(pre.mean).view(1, 3, 1, 1)) / torch.tensor(pre.std).view(1, 3, 1, 1)
    theirs = torchvision.models.ResNet18_Weights.DEFAULT.transforms()(img).unsqueeze(0)
    assert ours.shape == theirs.shape == (1, 3, 224, 224)
    assert torch.allclose(ours, theirs, atol=1e-5)


def test_checkpoint_preprocessing_is_used(tmp_path, open_model):
    ckpt_path = make_checkpoint(tmp_path / "r.pth", class_names=["a", "b"])
    ckpt = read_checkpoint(ckpt_path)
    ckpt.preprocess = Preprocess(input_size=40, resize=48, mean=(0.5, 0.5, 0.5), std=(0.25, 0.25, 0.25))
    p = open_model(ckpt)
    assert p.prepare(Image.new("RGB", (96, 64))).shape == (40, 40, 3)
    assert p.predict_image(Image.new("RGB", (96, 64))).ok


def test_csv_export(favour3, tmp_path, open_model):
    p = open_model(favour3)
    (tmp_path / "bad.png").write_bytes(b"x")
    files = [write_image(tmp_path / "a.png"), tmp_path / "bad.png"]
    preds = [r for b in p.predict_paths(files) for r in b]
    out = write_csv(preds, tmp_path / "out.csv", top_k=2)
    lines = out.read_text().splitlines()
    assert lines[0] == ("path,label,confidence,error,top1_label,top1_prob,top2_label,top2_prob,"
                        "status,unsure,unfamiliar,familiarity,class_threshold")
    assert lines[1].split(",")[1] == "k3" and "bad.png" in lines[2] and "not an image" in lines[2]
    assert lines[1].split(",")[-5:] == ["sure", "0", "", "", ""] and lines[2].split(",")[-5] == "error"
    strict = write_csv(preds, tmp_path / "strict.csv", top_k=2, threshold=1.01).read_text().splitlines()
    assert strict[1].split(",")[-5:-3] == ["not sure", "1"]  # the reader's threshold decides


def test_thumbnails_come_from_the_same_decode(cifar_checkpoint_file, tmp_path, monkeypatch, open_model):
    from resnet_gui.core.inference import batches as images_mod

    files = [write_image(tmp_path / f"{i}.png", size=(200, 100), seed=i) for i in range(3)]
    decoded = []
    real = images_mod.load_image
    monkeypatch.setattr(images_mod, "load_image", lambda *a, **k: decoded.append(a[0]) or real(*a, **k))
    p = open_model(cifar_checkpoint_file)
    preds = [r for b in p.predict_paths(files, thumbnail=48) for r in b]
    assert len(decoded) == 3
    assert all(r.thumbnail is not None and max(r.thumbnail.size) == 48 for r in preds)
    assert "thumbnail" not in preds[0].to_json()


def test_temperature_familiarity_and_the_four_states(tmp_path, open_model):
    """A stored temperature changes the confidences (not the answers); familiarity data marks images unlike the
    training images; the reader's threshold decides "not sure"."""
    from resnet_gui.core.inference import familiarity
    from resnet_gui.core.inference.prediction import ERROR, SURE, UNFAMILIAR, UNSURE, Prediction
    from resnet_gui.core.models.checkpoint import write_checkpoint

    path = make_checkpoint(tmp_path / "m.pth", class_names=["a", "b", "c"], seed=1)
    img = write_image(tmp_path / "x.png", size=(32, 32))
    plain_predictor = open_model(path)
    plain = plain_predictor.predict_file(img)
    assert plain.unfamiliar is None and plain.familiarity is None and plain.state(0.0) == SURE
    assert plain.state(1.01) == UNSURE and plain.to_json(1.01)["unsure"] is True
    ckpt = read_checkpoint(path)
    ckpt.calibration = {"method": "temperature scaling", "temperature": 4.0}
    features = plain_predictor.outputs(plain_predictor.load(str(img)), ("features",))["features"]
    rng = np.random.default_rng(0)
    seen = np.repeat(features, 30, axis=0) + rng.normal(size=(30, 512)).astype(np.float32) * 0.01
    fam = familiarity.fit(seen, np.arange(30) % 3, seen[:10], 3)
    ckpt.familiarity = fam.to_checkpoint()
    write_checkpoint(ckpt, path)
    calibrated = open_model(path)
    pred = calibrated.predict_file(img)
    assert pred.label == plain.label and pred.confidence < plain.confidence  # softer, same answer
    assert pred.unsure(0.99) and pred.state(0.99) in (UNSURE, UNFAMILIAR) and 0 <= pred.familiarity <= 1
    noise = write_image(tmp_path / "noise.png", size=(32, 32), seed=9)
    far = calibrated.predict_file(noise)
    assert far.unfamiliar and far.state() == UNFAMILIAR
    assert far.to_json()["unfamiliar"] is True and "familiarity" in far.to_json()
    cam, index = calibrated.explain(calibrated.load(str(img)))
    assert cam.shape == (4, 4) and index == pred.class_index and cam.min() >= 0 and cam.max() <= 1
    assert Prediction(path="x", error="unreadable").state() == ERROR


def test_the_predictor_is_read_only_and_safe_in_several_threads(cifar_checkpoint_file, tmp_path, open_model):
    """One Predictor serves every worker at once: the same answers as one thread alone."""
    from concurrent.futures import ThreadPoolExecutor

    p = open_model(cifar_checkpoint_file)
    files = [write_image(tmp_path / f"{i}.png", size=(40, 36), seed=i) for i in range(6)]
    alone = [p.predict_file(f) for f in files]
    with ThreadPoolExecutor(max_workers=3) as pool:
        together = list(pool.map(p.predict_file, files * 3))
    for a, b in zip(alone * 3, together):
        assert a.label == b.label and abs(a.confidence - b.confidence) < 1e-5
    assert not hasattr(p, "unsure_below")
