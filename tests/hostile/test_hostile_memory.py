"""Red team, part 1: small files that used to make the app allocate gigabytes.

Each case runs the real command in a subprocess whose data segment is capped at 1.5 GiB (the memory
budget): before the fixes these attempts failed there with an allocation error and a traceback; now
each ends with a sentence naming the file, well inside the budget. The cases that read checkpoints run twice:
in the full app and in the classify-only edition (a process where `import torch` fails), where only the app's
own reader (core/models/pth_read.py) can answer.
"""
from __future__ import annotations

import json

import pytest
import torch
from helpers import make_checkpoint, write_image
from hostile_helpers import EDITIONS, MEMORY_LIMIT_MB, no_traceback, pad_pickle, peak_mb, png_header_only, run_limited

pytestmark = pytest.mark.slow


@pytest.fixture
def home(tmp_path):
    h = tmp_path / "home"
    (h / "models").mkdir(parents=True)
    return h


@pytest.fixture
def good_model(home):
    make_checkpoint(home / "models" / "good.pth", class_names=["a", "b", "c"])
    return "good"


def test_one_pixel_high_million_wide_png_is_refused_cheaply(tmp_path, home, good_model):
    img = png_header_only(tmp_path / "wide.png", 1_000_000, 1)  # 1 KB on disk
    proc = run_limited(["predict", str(img), "--model", good_model], home)
    assert proc.returncode == 1 and no_traceback(proc), proc.stderr
    assert "wide.png" in proc.stdout and "aspect ratio" in proc.stdout
    assert peak_mb(proc) < MEMORY_LIMIT_MB


def test_eighty_million_pixel_strip_does_not_break_the_folder(tmp_path, home, good_model):
    folder = tmp_path / "photos"
    folder.mkdir()
    png_header_only(folder / "strip.png", 1, 80_000_000)  # 150 KB on disk, 245 GB once resized
    write_image(folder / "fine.png", size=(40, 30))
    proc = run_limited(["predict", str(folder), "--model", good_model, "--json"], home)
    lines = [json.loads(line) for line in proc.stdout.splitlines()]
    assert proc.returncode == 1 and no_traceback(proc), proc.stderr
    by_name = {row["path"].rsplit("/", 1)[-1]: row for row in lines}
    assert "label" in by_name["fine.png"] and "error" in by_name["strip.png"]


def test_huge_image_within_the_pixel_budget_is_downscaled_and_classified(tmp_path, home, good_model):
    from PIL import Image

    img = tmp_path / "big.png"
    Image.new("RGB", (12000, 12000), (10, 200, 30)).save(img, compress_level=1)
    proc = run_limited(["predict", str(img), "--model", good_model, "--json"], home)
    assert proc.returncode == 0 and no_traceback(proc), proc.stderr
    assert json.loads(proc.stdout)["label"] in ("a", "b", "c")
    assert peak_mb(proc) < MEMORY_LIMIT_MB


def test_image_over_the_budget_names_the_limit(tmp_path, home, good_model):
    img = png_header_only(tmp_path / "giant.png", 30_000, 30_000)  # 900 MP grey, 900 MiB decoded
    from resnet_gui.core.images import MAX_DECODE_BYTES

    proc = run_limited(["predict", str(img), "--model", good_model], home)
    assert proc.returncode == 1 and no_traceback(proc)
    assert "too large to open safely" in proc.stdout and f"{MAX_DECODE_BYTES // 2**20:,} MiB" in proc.stdout


@pytest.mark.parametrize("edition", EDITIONS)
def test_pickle_padded_with_a_gigabyte_of_deflated_zeros_is_listed_as_broken(tmp_path, home, good_model, edition):
    src = make_checkpoint(tmp_path / "src.pth")
    pad_pickle(src, home / "models" / "padded.pth", 1 << 30)
    proc = run_limited(["models", "list", "--json"], home, edition=edition)
    assert proc.returncode == 0 and no_traceback(proc), proc.stderr
    entries = {e["name"]: e for e in json.loads(proc.stdout)}
    assert "error" not in entries["good"] and "unpack" in entries["padded"]["error"]
    assert peak_mb(proc) < 1200
    proc = run_limited(["predict", str(write_image(tmp_path / "x.png")), "--json"], home,  # the default model
                       edition=edition)
    assert proc.returncode == 0 and json.loads(proc.stdout)["label"] in ("a", "b", "c")


@pytest.mark.parametrize("edition", EDITIONS)
@pytest.mark.parametrize("where", ["ours", "foreign"])
def test_zero_stride_tensor_claiming_thirty_thousand_squared_is_refused(tmp_path, home, where, edition):
    state = make_checkpoint(tmp_path / "m.pth", arch="resnet18_cifar", class_names=["a", "b"])
    obj = torch.load(state, weights_only=True)
    bomb = torch.zeros(1, dtype=torch.float16).expand(30000, 30000)  # 2 bytes of storage
    if where == "ours":
        obj["state_dict"]["conv1.weight"] = bomb
        path = home / "models" / "bomb.pth"
        torch.save(obj, path)
        proc = run_limited(["models", "show", "bomb"], home, edition=edition)
    else:
        sd = dict(obj["state_dict"])
        sd["fc.weight"] = bomb
        path = tmp_path / "bomb.pth"
        torch.save(sd, path)
        proc = run_limited(["models", "import", str(path), "--classes", "a,b"], home, edition=edition)
    assert proc.returncode != 0 and no_traceback(proc), proc.stderr
    assert "overlapping strides" in proc.stdout + proc.stderr
    assert peak_mb(proc) < MEMORY_LIMIT_MB


@pytest.mark.parametrize("edition", EDITIONS)
@pytest.mark.parametrize("classes,needle", [(2_000_000, "overlapping strides"), (30_000, "30,000 classes")])
def test_state_dict_with_a_huge_head_is_refused(tmp_path, home, classes, needle, edition):
    import torchvision

    sd = torchvision.models.resnet18(num_classes=2).state_dict()
    if classes > 100_000:  # a few bytes claiming 4 GB
        sd["fc.weight"], sd["fc.bias"] = torch.zeros(1).expand(classes, 512), torch.zeros(1).expand(classes)
    else:  # real data (60 MB): refused by the class limit before a model with that head is built
        sd["fc.weight"], sd["fc.bias"] = torch.zeros(classes, 512), torch.zeros(classes)
    path = tmp_path / "wide_head.pth"
    torch.save(sd, path)
    proc = run_limited(["models", "import", str(path), "--classes", "x.txt"], home, edition=edition)
    assert proc.returncode == 2 and no_traceback(proc)
    assert needle in proc.stderr and peak_mb(proc) < 1000


@pytest.mark.parametrize("edition", EDITIONS)
def test_billion_laughs_in_notes_is_refused_quickly(tmp_path, home, good_model, edition):
    path = make_checkpoint(tmp_path / "m.pth")
    obj = torch.load(path, weights_only=True)
    laugh = ["lol" * 100]
    for _ in range(40):
        laugh = [laugh, laugh]  # 2**40 leaves, a few KB pickled thanks to shared references
    obj["notes"] = {"laughs": laugh}
    torch.save(obj, home / "models" / "laughs.pth")
    for args in (["models", "show", "laughs"], ["models", "list", "--json"]):
        proc = run_limited(args, home, timeout=120, edition=edition)
        assert no_traceback(proc), proc.stderr
        assert "too large or too deeply nested" in proc.stdout + proc.stderr
        assert peak_mb(proc) < 1200


@pytest.mark.parametrize("edition", EDITIONS)
@pytest.mark.parametrize("value", ["3000", "100000"])
def test_input_size_out_of_range_is_refused_before_allocating(tmp_path, home, value, edition):
    import torchvision

    path = tmp_path / "r18.pth"
    torch.save(torchvision.models.resnet18(num_classes=2).state_dict(), path)
    proc = run_limited(["models", "import", str(path), "--classes", "a,b", "--input-size", value], home,
                       edition=edition)
    assert proc.returncode == 2 and no_traceback(proc)
    assert f"input size {value} is outside 16-1024" in proc.stderr
