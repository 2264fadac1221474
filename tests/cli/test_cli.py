import json
import os
import subprocess
import sys

import pytest
import torch
import torchvision
from helpers import make_checkpoint, write_image

from resnet_gui.cli import main
from resnet_gui.core.models.registry import Registry


@pytest.fixture
def registry_with_model(tmp_path):
    reg = Registry()
    make_checkpoint(reg.root / "favour2.pth", favour=2, class_names=["zero", "one", "two"])
    return reg


def run(capsys, *argv):
    code = main(list(argv))
    out, err = capsys.readouterr()
    return code, out, err


def test_predict_folder_json_with_one_bad_file(registry_with_model, tmp_path, capsys):
    write_image(tmp_path / "imgs" / "a.png")
    write_image(tmp_path / "imgs" / "deep" / "b.jpg", fmt="JPEG")
    (tmp_path / "imgs" / "c.png").write_bytes(b"not an image")
    code, out, err = run(capsys, "predict", str(tmp_path / "imgs"), "--json", "--top-k", "2",
                         "--csv", str(tmp_path / "r.csv"))
    rows = [json.loads(line) for line in out.splitlines()]
    assert code == 1
    assert len(rows) == 3
    good = [r for r in rows if "error" not in r]
    assert {r["label"] for r in good} == {"two"} and all(len(r["top_k"]) == 2 for r in good)
    assert set(good[0]) == {"path", "label", "confidence", "top_k", "state", "unsure", "familiarity", "unfamiliar",
                            "unfamiliar_why"}
    assert all(r["unfamiliar_why"] is None for r in good)  # no familiarity data: never unfamiliar
    assert good[0]["state"] in ("sure", "unsure")
    bad = [r for r in rows if "error" in r]
    assert len(bad) == 1 and bad[0]["path"].endswith("c.png") and "c.png" in bad[0]["error"]
    assert len((tmp_path / "r.csv").read_text().splitlines()) == 4


def test_predict_says_why_an_image_is_unfamiliar_in_text_and_json(tmp_path, capsys):
    """The GUI said why ("It is in colour; its training images were grey."); the command line said only that the
    image was unfamiliar. A colour photo to the demo model (grey digits, with input statistics)."""
    import skimage.data
    from PIL import Image

    photo = tmp_path / "cat.jpg"
    Image.fromarray(skimage.data.chelsea()).save(photo)
    digit = tmp_path / "digit.png"
    import shutil

    from resnet_gui import resources
    shutil.copy(resources.path("samples/digit_3_1332.png"), digit)
    code, out, _ = run(capsys, "predict", str(photo), str(digit), "--json")
    rows = {os.path.basename(r["path"]): r for r in map(json.loads, out.splitlines())}
    assert code == 0 and rows["cat.jpg"]["state"] == "unfamiliar"
    assert rows["cat.jpg"]["unfamiliar_why"] == "in colour; its training images were grey"
    assert rows["digit.png"]["state"] != "unfamiliar" and rows["digit.png"]["unfamiliar_why"] is None
    code, out, _ = run(capsys, "predict", str(photo))
    assert code == 0 and ("cat.jpg: unlike anything this model was trained on: it is in colour; its training images "
                          "were grey (top guess ") in out


def test_predict_text_output_and_exit_zero(registry_with_model, tmp_path, capsys):
    code, out, _ = run(capsys, "predict", str(write_image(tmp_path / "a.png")))
    assert code == 0 and "a.png: two (" in out


def test_models_list_and_show_json(registry_with_model, capsys):
    (registry_with_model.root / "broken.pth").write_bytes(b"")
    code, out, _ = run(capsys, "models", "list", "--json")
    data = {d["name"]: d for d in json.loads(out)}
    assert code == 0 and "error" in data["broken"]
    for key in ("name", "arch", "num_classes", "class_names", "preprocess", "metrics"):
        assert key in data["favour2"]
    code, out, _ = run(capsys, "models", "show", "favour2", "--json")
    d = json.loads(out)
    assert d["name"] == "favour2" and d["class_names"] == ["zero", "one", "two"]
    assert set(d["preprocess"]) >= {"input_size", "resize", "mean", "std"}
    assert isinstance(d["metrics"]["val_accuracy"], float) and 0 <= d["metrics"]["val_accuracy"] <= 1
    assert "state_dict" not in d


def test_models_import_remove_default(tmp_path, capsys):
    f = tmp_path / "foreign.pth"
    torch.save({"model": torchvision.models.resnet18(num_classes=2).state_dict()}, f)
    classes = tmp_path / "c.txt"
    classes.write_text("cat\ndog\n")
    code, out, _ = run(capsys, "models", "import", str(f), "--name", "pets", "--classes", str(classes))
    assert code == 0 and "pets" in out and "cat, dog" in out
    assert run(capsys, "models", "default", "pets")[0] == 0
    assert Registry().default_name() == "pets"
    code, _, err = run(capsys, "models", "import", str(f), "--name", "pets")
    assert code == 2 and "already in the registry as 'pets'. Use that model, or import it again with " \
        "--allow-duplicate." in err
    assert run(capsys, "models", "rename", "pets", "animals")[0] == 0
    assert run(capsys, "models", "remove", "animals")[0] == 0
    assert Registry().names() == []


def test_import_with_inline_classes_and_preprocess_overrides(tmp_path, capsys):
    f = tmp_path / "r.pth"
    torch.save(torchvision.models.resnet18(num_classes=3).state_dict(), f)
    code, _, err = run(capsys, "models", "import", str(f), "--classes", "a,b,c", "--input-size", "128",
                       "--mean", "0.5", "0.5", "0.5", "--std", "0.2", "0.2", "0.2")
    assert code == 0, err
    pre = Registry().details("r")["preprocess"]
    assert pre["input_size"] == 128 and pre["resize"] >= 128 and pre["mean"] == [0.5, 0.5, 0.5]


def test_hostile_import_is_a_message_not_a_traceback(tmp_path, capsys):
    from helpers import hostile_checkpoint

    marker = tmp_path / "MARK"
    f = hostile_checkpoint(tmp_path / "evil.pth", marker)
    code, out, err = run(capsys, "models", "import", str(f))
    assert code == 2 and "evil.pth" in err and "refused" in err and "Traceback" not in err
    assert not marker.exists()


def test_console_entry_point_and_module_run(registry_with_model, tmp_path):
    env = dict(os.environ)
    exe = os.path.join(os.path.dirname(sys.executable), "resnet-gui")
    img = write_image(tmp_path / "a.png")
    for cmd in ([exe, "predict", str(img), "--json"],
                [sys.executable, "-m", "resnet_gui", "predict", str(img), "--json"]):
        proc = subprocess.run(cmd, capture_output=True, text=True, env=env, timeout=300)
        assert proc.returncode == 0, proc.stderr
        assert json.loads(proc.stdout)["label"] == "two"


def test_predict_explains_with_grad_cam_and_marks_unsure_answers(tmp_path, capsys):
    from helpers import make_checkpoint

    make_checkpoint(tmp_path / "m.pth", class_names=["a", "b", "c"], seed=2)
    folder = tmp_path / "imgs"
    for i in range(2):
        write_image(folder / f"x{i}.png", size=(48, 40), seed=i)
    code, out, _ = run(capsys, "predict", str(folder), "--model", str(tmp_path / "m.pth"), "--json", "--explain",
                       "--explain-dir", str(tmp_path / "cams"), "--unsure-below", "1.0")
    rows = [json.loads(line) for line in out.splitlines()]
    assert code == 0 and len(rows) == 2 and all(r["unsure"] is True and r["unfamiliar"] is None for r in rows)
    cam = rows[0]["cam"]
    assert len(cam) == 4 and len(cam[0]) == 4 and all(0 <= v <= 1 for line in cam for v in line)
    assert sorted(p.name for p in (tmp_path / "cams").iterdir()) == ["x0_cam.png", "x1_cam.png"]
    code, out, err = run(capsys, "predict", str(folder / "x0.png"), "--model", str(tmp_path / "m.pth"),
                         "--unsure-below", "1.0")
    assert code == 0 and "not sure" in out and "not calibrated" in err
