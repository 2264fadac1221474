"""The dataset health check (core and CLI): generated folders, and real images (scikit-learn's digits,
scikit-image's lfw_subset) for the near-duplicate search."""
from __future__ import annotations

import hashlib
import io
import json
import shutil

import numpy as np
import pytest
from helpers import make_distinct_folder, make_folder_dataset, write_image
from PIL import Image, ImageEnhance

from resnet_gui.cli import main
from resnet_gui.core.errors import ImageLoadError
from resnet_gui.core.evaluation import near_duplicates as nd
from resnet_gui.core.evaluation.health import check_folder, file_sha1
from resnet_gui.core.images import load_image


def test_duplicates_leakage_unreadable_small_and_imbalance_are_reported(tmp_path):
    data = make_folder_dataset(tmp_path / "d", classes=("cats", "dogs"), per_class=10, size=(64, 48), split=True)
    train_cat = sorted((data / "train" / "cats").iterdir())[0]
    shutil.copy(train_cat, data / "val" / "cats" / "copy_of_train.png")            # exact, across the split
    img = Image.open(sorted((data / "train" / "dogs").iterdir())[0]).convert("RGB")
    img.resize((60, 45)).save(data / "train" / "dogs" / "resized_twin.jpg", quality=92)  # near, same split
    (data / "train" / "dogs" / "broken.png").write_bytes(b"\x89PNG broken")
    Image.new("RGB", (20, 20), (9, 9, 9)).save(data / "train" / "cats" / "tiny.png")
    report = check_folder(data, input_size=224)
    assert report.counts["dogs"]["unreadable"] == 1 and report.unreadable[0]["path"].endswith("broken.png")
    assert any(any(p.endswith("copy_of_train.png") for p in g) for g in report.exact_duplicates)
    assert any(any(p.endswith("resized_twin.jpg") for p in g) for g in report.near_duplicates)
    leak = report.leakage[0]
    assert leak["kind"] == "exact" and leak["held_out"][0].endswith("copy_of_train.png")
    assert any(s["path"].endswith("tiny.png") for s in report.small_images)
    assert any("cross the train/validation split" in w for w in report.warnings)
    assert set(report.exclusions()) >= {report.unreadable[0]["path"]}


def test_imbalance_warning_counts_only_readable_images_and_names_a_remedy(tmp_path):
    data = make_folder_dataset(tmp_path / "d", classes=("big",), per_class=30, size=(16, 16))
    make_folder_dataset(data, classes=("small",), per_class=5, size=(16, 16))
    report = check_folder(data, input_size=16)
    [warning] = [w for w in report.warnings if "imbalance" in w]
    assert "balance them in training (weighted-loss remedy)" in warning and "6.0x" in warning
    assert report.counts["big"]["train"] + report.counts["big"]["val"] == 30


def test_imbalance_above_three_times_suggests_a_remedy_training_has(tmp_path, capsys):
    """The largest class with more than 3x the smallest's training images: the report names a remedy that
    TrainConfig.balance offers (check-data prints its flag, --json carries it); 3x exactly is not flagged."""
    from resnet_gui.core.train.config import BALANCES

    data = make_folder_dataset(tmp_path / "d", classes=("many",), per_class=16, size=(16, 16), split=True)
    make_folder_dataset(data, classes=("few",), per_class=5, size=(16, 16), split=True)  # 12 vs 3 training images
    report = check_folder(data, input_size=16)
    assert report.imbalance == {"largest": "many", "largest_images": 12, "smallest": "few", "smallest_images": 3,
                                "ratio": 4.0, "remedy": report.imbalance["remedy"]}
    assert report.imbalance["remedy"] in BALANCES and report.imbalance["remedy"] != "none"
    assert any("(4.0x)" in w and "balance them in training" in w for w in report.warnings)
    main(["check-data", str(data), "--input-size", "16"])
    assert f"--balance {report.imbalance['remedy']}" in capsys.readouterr().out
    main(["check-data", str(data), "--input-size", "16", "--json"])
    assert json.loads(capsys.readouterr().out)["imbalance"]["remedy"] == report.imbalance["remedy"]
    three = make_folder_dataset(tmp_path / "t", classes=("many",), per_class=12, size=(16, 16), split=True)
    make_folder_dataset(three, classes=("few",), per_class=5, size=(16, 16), split=True)  # 9 vs 3: 3x exactly
    report = check_folder(three, input_size=16)
    assert report.imbalance is None and not any("imbalance" in w for w in report.warnings)


def test_an_imbalance_of_three_to_one_or_less_gets_no_remedy(tmp_path):
    """More than 3x: a remedy (it used to take 5x); exactly 3x: none."""
    data = make_folder_dataset(tmp_path / "d", classes=("big",), per_class=30, size=(16, 16))
    make_folder_dataset(data, classes=("small",), per_class=10, size=(16, 16))
    assert not any("imbalance" in w for w in check_folder(data, input_size=16).warnings)   # 24 vs 8 in training
    for seed in (1, 2):
        write_image(data / "big" / f"more_{seed}.png", size=(16, 16), seed=seed)              # 26 vs 8
    assert any("imbalance" in w for w in check_folder(data, input_size=16).warnings)


# ---- the near-duplicate search on real images ---------------------------------------------------------
def _png(image: Image.Image) -> bytes:
    buf = io.BytesIO()
    image.save(buf, format="PNG")
    return buf.getvalue()


def _looks(data: bytes) -> nd.Looks:
    return nd.looks_of(load_image(data, min_side=32))


def _copies(image: Image.Image, rng) -> list[bytes]:
    """JPEG quality 70, resized by 5 %, cropped by 3 %, brightness +5 % (as benchmarks/bench_datacheck.py)."""
    w, h = image.size
    jpeg = io.BytesIO()
    image.convert("RGB").save(jpeg, format="JPEG", quality=70)
    cw, ch = max(1, round(w * 0.03)), max(1, round(h * 0.03))
    left, top = int(rng.integers(0, cw + 1)), int(rng.integers(0, ch + 1))
    return [jpeg.getvalue(), _png(image.resize((round(w * 0.95), round(h * 0.95)), Image.Resampling.BICUBIC)),
            _png(image.crop((left, top, w - (cw - left), h - (ch - top)))),
            _png(ImageEnhance.Brightness(image).enhance(1.05))]


def _digit(pixels, method=Image.Resampling.BICUBIC) -> Image.Image:
    grey = (255 - pixels * (255 / 16)).clip(0, 255).astype(np.uint8)
    return Image.fromarray(grey, "L").resize((32, 32), method).convert("RGB")


@pytest.fixture(scope="module")
def digits():
    sklearn_datasets = pytest.importorskip("sklearn.datasets")
    return sklearn_datasets.load_digits()


@pytest.fixture(scope="module")
def lfw():
    return pytest.importorskip("skimage.data").lfw_subset()


def test_distinct_digits_are_not_near_duplicates_and_planted_copies_are_found(digits):
    """1,797 different scans, upscaled bicubic: the hash alone grouped 58 % of them; at most 1 % may be flagged.
    Copies of 100 of them: at least 95 % found."""
    images = [_digit(px) for px in digits.images]
    looks = [_looks(_png(im)) for im in images]
    pairs, _ = nd.near_pairs(looks)
    assert len(set(pairs.ravel().tolist())) <= 0.01 * len(images)
    rng = np.random.default_rng(1)
    planted = []
    for i in rng.choice(len(images), 100, replace=False).tolist():
        for data in _copies(images[i], rng):
            looks.append(_looks(data))
            planted.append((i, len(looks) - 1))
    found = {tuple(p) for p in nd.near_pairs(looks)[0].tolist()}
    assert sum(p in found for p in planted) >= 0.95 * len(planted)
    assert not any(i < len(images) and j < len(images) for i, j in found)


def test_flat_patches_and_a_dark_gradient_in_lfw_are_not_grouped_but_its_copies_are(lfw):
    """The hash alone grouped flat grey patches with a dark gradient (102/176, 112/152, 113/160/167/169)."""
    images = [Image.fromarray((a * 255).astype(np.uint8), "L") for a in lfw]
    looks = [_looks(_png(im)) for im in images]
    pairs = {tuple(p) for p in nd.near_pairs(looks)[0].tolist()}
    for old in ((102, 176), (112, 152), (113, 160), (113, 167), (113, 169), (160, 167), (167, 169)):
        assert old not in pairs
    assert len({i for p in pairs for i in p}) <= 2  # two all-black squares, pixel for pixel alike, at most
    rng = np.random.default_rng(2)
    planted = []
    for i in rng.choice(len(images), 60, replace=False).tolist():
        for data in _copies(images[i], rng):
            looks.append(_looks(data))
            planted.append((i, len(looks) - 1))
    found = {tuple(p) for p in nd.near_pairs(looks)[0].tolist()}
    assert sum(p in found for p in planted) >= 0.95 * len(planted)


def test_three_percent_crops_of_faces_and_nearest_upscaled_digits_meet_their_originals(lfw, digits):
    """A 3 % crop moves a few hash neighbours by several grey levels: counted as strong disagreements (> 4
    levels) they hid 14 % of lfw's crops and 13 % of nearest-upscaled digits' from the candidate search (now
    10 % and 9 %; the rest of the 95 % comes from the other kinds of copies, found near 100 %)."""
    rng = np.random.default_rng(3)
    met = total = 0
    for images in ([Image.fromarray((a * 255).astype(np.uint8), "L") for a in lfw],
                   [_digit(px, Image.Resampling.NEAREST) for px in digits.images[:400]]):
        looks = [_looks(_png(im)) for im in images]
        planted = []
        for i in range(len(images)):
            looks.append(_looks(_copies(images[i], rng)[2]))
            planted.append((i, len(looks) - 1))
        candidates = {tuple(p) for p in nd.candidate_pairs(looks).tolist()}
        met, total = met + sum(p in candidates for p in planted), total + len(planted)
    assert met >= 0.89 * total


def test_candidate_search_meets_only_close_hashes():
    """Random noise images have unrelated hashes: no candidate pairs at all; a JPEG copy is one."""
    rng = np.random.default_rng(0)
    images = [Image.fromarray(rng.integers(0, 256, (32, 32, 3), dtype=np.uint8)) for _ in range(200)]
    looks = [_looks(_png(im)) for im in images]
    assert len(nd.candidate_pairs(looks)) == 0
    buf = io.BytesIO()
    images[7].save(buf, format="JPEG", quality=90)
    looks.append(_looks(buf.getvalue()))
    assert nd.candidate_pairs(looks).tolist() == [[7, 200]]
    assert nd.near_pairs(looks)[0].tolist() == [[7, 200]]


# ---- hashing in chunks, within a size limit (issue 23.6) -------------------------------------------------
def test_file_hash_is_chunked_and_capped(tmp_path):
    data = bytes(range(256)) * 9000  # 2.2 MiB: several chunks
    path = tmp_path / "a.png"
    path.write_bytes(data)
    assert file_sha1(path) == hashlib.sha1(data).hexdigest()
    with pytest.raises(ImageLoadError, match="too large to check"):
        file_sha1(path, limit=2**20)


@pytest.mark.slow
def test_a_huge_sparse_file_is_reported_and_the_rest_are_checked(tmp_path):
    """A 1.8 GB sparse "jpg" among good images: `sha1(fh.read())` exhausted memory and the run ended with batch-size
    advice and no report. Under the red team's 1.5 GiB memory limit, it is now one unreadable file."""
    from hostile_helpers import MEMORY_LIMIT_MB, no_traceback, peak_mb, run_limited

    data = make_folder_dataset(tmp_path / "d", classes=("a", "b"), per_class=4, size=(32, 32))
    with open(data / "a" / "huge.jpg", "wb") as fh:
        fh.truncate(1_800_000_000)
    proc = run_limited(["check-data", str(data), "--json", "--input-size", "32"], tmp_path / "home")
    assert no_traceback(proc), proc.stderr
    report = json.loads(proc.stdout)
    [bad] = report["unreadable"]
    assert bad["path"].endswith("huge.jpg") and "too large to check" in bad["reason"]
    assert report["counts"]["a"]["train"] + report["counts"]["a"]["val"] == 4
    assert peak_mb(proc) < MEMORY_LIMIT_MB


def test_cli_text_and_json(tmp_path, capsys):
    data = make_folder_dataset(tmp_path / "d", per_class=6, size=(40, 32))
    shutil.copy(sorted((data / "cats").iterdir())[0], data / "dogs" / "stray_cat.png")
    code = main(["check-data", str(data), "--input-size", "32"])
    out = capsys.readouterr().out
    assert code == 1 and "Exact duplicates" in out and "stray_cat.png" in out and "cats" in out
    code = main(["check-data", str(data), "--json", "--input-size", "32"])
    report = json.loads(capsys.readouterr().out)
    assert code == 1 and report["exact_duplicates"] and set(report["counts"]) == {"cats", "dogs", "owls"}


def test_excluded_files_are_left_out_of_the_run_without_touching_the_folder(tmp_path):
    from resnet_gui.core.data.folders import scan_folder
    from resnet_gui.core.train import recipe, train

    data = make_distinct_folder(tmp_path / "d", per_class=8, size=(32, 32))
    shutil.copy(sorted((data / "cats").iterdir())[0], data / "cats" / "copy.png")
    report = check_folder(data, input_size=32)
    leave_out = report.exclusions()
    assert leave_out and all(p.endswith("copy.png") or "cats_000" in p for p in leave_out)
    split = scan_folder(data, exclude=leave_out)
    kept = {str(p) for p, _ in split.train + split.val}
    assert not kept & set(leave_out) and len(kept) == 24
    relabel = {str(data / "dogs" / "dogs_001.png"): "owls"}   # a label mistake, trained as the class it shows
    result = train(recipe("scratch", data=str(data), arch="resnet18_cifar", epochs=1, batch_size=4, device="cpu",
                          augment="pad_crop", exclude=leave_out, relabel=relabel))
    assert result.status == "finished", result.message
    assert (data / "cats" / "copy.png").exists() and (data / "dogs" / "dogs_001.png").exists()
    from resnet_gui.core.models.checkpoint import read_checkpoint

    ckpt = read_checkpoint(result.best_path)
    assert ckpt.train_config["relabel"] == relabel and ckpt.dataset["relabelled_files"] == 1
