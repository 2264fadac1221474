"""The dataset health check (core and CLI) on generated folders."""
from __future__ import annotations

import json
import shutil

import numpy as np
from helpers import make_folder_dataset
from PIL import Image

from resnet_gui.cli import main
from resnet_gui.core.evaluation.health import ImageFacts, _near_groups, check_folder, difference_hash


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


def test_imbalance_warning_counts_only_readable_images(tmp_path):
    data = make_folder_dataset(tmp_path / "d", classes=("big",), per_class=30, size=(16, 16))
    make_folder_dataset(data, classes=("small",), per_class=5, size=(16, 16))
    report = check_folder(data, input_size=16)
    assert any("imbalance" in w for w in report.warnings)
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


def test_different_images_are_not_near_duplicates(tmp_path):
    rng = np.random.default_rng(0)
    hashes = []
    for _ in range(40):
        arr = (rng.random((32, 32, 3)) * 255).astype(np.uint8)
        hashes.append(difference_hash(Image.fromarray(arr)))
    items = [ImageFacts(tmp_path / f"{i}.png", 0, "train", dhash=h) for i, h in enumerate(hashes)]
    assert _near_groups(items, set()) == []


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

    data = make_folder_dataset(tmp_path / "d", per_class=8, size=(32, 32))
    shutil.copy(sorted((data / "cats").iterdir())[0], data / "cats" / "copy.png")
    report = check_folder(data, input_size=32)
    leave_out = report.exclusions()
    assert leave_out and all(p.endswith("copy.png") or "cats_000" in p for p in leave_out)
    split = scan_folder(data, exclude=leave_out)
    kept = {str(p) for p, _ in split.train + split.val}
    assert not kept & set(leave_out) and len(kept) == 24
    result = train(recipe("scratch", data=str(data), arch="resnet18_cifar", epochs=1, batch_size=4, device="cpu",
                          augment="pad_crop", exclude=leave_out))
    assert result.status == "finished", result.message
    assert (data / "cats" / "copy.png").exists()
