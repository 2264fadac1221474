"""Classifying needs no PyTorch (issue 21): in processes where `import torch` fails (an import hook, as in the
classify-only edition), `resnet-gui predict` (one image, a folder, --explain, --explain-dir), `evaluate`,
`models import` of a tutorial state dict, `models calibrate` (familiarity data, temperature, the int8 version),
the GUI's Predict tab (Try a sample, an image, its heat map, a folder) and its Evaluate tab all work, and no torch
module is loaded. Their answers are checked here, in this process (which has torch), against the PyTorch
engine."""
from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch
from helpers import no_torch_env, torch_modules_loaded

from resnet_gui import resources
from resnet_gui.core.models.demo import DEMO_RESOURCE

pytestmark = pytest.mark.slow
DEMO = "Demo - handwritten digits"
PER_CLASS = 12  # 120 real digits: enough for familiarity data and an int8 version verified on 72 of them

CLI_CHILD = """
import contextlib, io, json, sys
from resnet_gui.cli import main

try:
    import torch  # noqa: F401
    blocked = False
except ImportError:
    blocked = True
results = {"blocked": blocked}
for key, args in json.loads(sys.argv[1]):
    out, err = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        code = main(args)
    results[key] = {"code": code, "out": out.getvalue(), "err": err.getvalue()}
print(json.dumps(results))
"""

GUI_CHILD = """
import json, sys, time
from PySide6.QtCore import QEventLoop
from PySide6.QtWidgets import QApplication

from resnet_gui.core.settings import Settings
from resnet_gui.ui.main_window import MainWindow

app = QApplication([])


def wait(condition, what, timeout=240):
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise SystemExit(f"timed out waiting for {what}")
        app.processEvents(QEventLoop.ProcessEventsFlag.AllEvents, 50)


image, folder = sys.argv[1:3]
w = MainWindow(Settings())
w.show()
w.start_background_loading()
wait(lambda: w.is_ready() and w.registry.loaded, "the window")
result = {"device": w.device_label.text()}
tab = w.predict_tab
tab.select_model(sys.argv[3])
wait(lambda: tab.session.model is not None and tab.session.model.name == sys.argv[3], "the model")
tab.try_sample()  # one of the demo model's bundled samples
wait(lambda: tab.single.result is not None and not tab.busy(), "the sample's answer")
result["sample"] = [tab.single.result.name, tab.single.result.prediction.label]
result["trust"] = [tab.single.trust_banner.text(), tab.single.trust_banner.kind()]
photo = sys.argv[4]  # a colour photo: unfamiliar to the digit model, by its input statistics
tab.open_path(photo)
wait(lambda: tab.single.result is not None and tab.single.result.name == photo and not tab.busy(), "the photo")
result["photo"] = [tab.single.class_label.text(), tab.single.confidence_label.text()]
tab.open_path(image)
wait(lambda: tab.single.result is not None and tab.single.result.name == image and not tab.busy(), "the answer")
result["label"] = tab.single.result.prediction.label
result["shown"] = tab.single.class_label.text()
cams = []
tab.session.explain_done.connect(cams.append)
tab.single.explain_toggle.setChecked(True)
wait(lambda: cams, "the heat map")
result["explained"] = tab.single.explain_caption.text()
tab.open_path(folder)
wait(lambda: not tab.busy() and tab.folder.table_model.rowCount() > 0, "the folder")
result["folder_rows"] = tab.folder.table_model.rowCount()
ev = w.evaluate_tab
w.tabs.setCurrentWidget(ev)
ev.evaluate_folder(sys.argv[3], folder)
wait(lambda: ev.outcome is not None and not ev.busy(), "the evaluation")
figures = ev.outcome.evaluation.figures
result["evaluated"] = {"n": figures.n, "accuracy": figures.accuracy}
w.close()
wait(lambda: not w.isVisible(), "the window to close")
print(json.dumps(result))
"""


@pytest.fixture(scope="module")
def setup(tmp_path_factory):
    """A home with the demo model, a labelled folder of real digits, a tutorial state dict, and the hook."""
    import shutil

    from PIL import Image
    from sklearn.datasets import load_digits

    from resnet_gui.core.models.archs import default_preprocess
    from resnet_gui.core.models.preprocess import resize_and_crop

    root = tmp_path_factory.mktemp("no-torch")
    (root / "home" / "models").mkdir(parents=True)
    shutil.copyfile(resources.path(DEMO_RESOURCE), root / "home" / "models" / f"{DEMO}.pth")
    digits = load_digits()
    sys.path.insert(0, str(resources.path("models").parents[2] / "scripts"))
    try:
        from train_demo_model import digit_image
    finally:
        sys.path.pop(0)
    counts: dict[int, int] = {}
    for i, label in enumerate(digits.target):
        if counts.get(int(label), 0) < PER_CLASS:
            counts[int(label)] = counts.get(int(label), 0) + 1
            (root / "digits" / str(label)).mkdir(parents=True, exist_ok=True)
            digit_image(digits.images[i]).save(root / "digits" / str(label) / f"{i}.png")
    from tutorial_nets import TutorialResNet18, randomise_bn

    torch.manual_seed(0)
    tutorial = randomise_bn(TutorialResNet18(num_classes=10)).eval()
    torch.save({"net": tutorial.state_dict(), "acc": 91.0}, root / "tutorial.pth")
    env = no_torch_env(root / "hook")
    env["RESNET_GUI_HOME"] = str(root / "home")
    image = sorted((root / "digits" / "3").iterdir())[0]
    pre = default_preprocess("resnet18_cifar")
    x = torch.from_numpy(np.array(resize_and_crop(Image.open(image).convert("RGB"), pre)))
    x = (x.permute(2, 0, 1)[None].float() / 255 - torch.tensor(pre.mean).view(1, 3, 1, 1)) \
        / torch.tensor(pre.std).view(1, 3, 1, 1)
    with torch.no_grad():
        tutorial_probs = tutorial(x).softmax(dim=1)[0].numpy()
    return {"root": root, "env": env, "image": image, "folder": root / "digits", "tutorial_probs": tutorial_probs}


def run_child(code: str, args: list[str], env: dict, timeout: int = 600) -> dict:
    proc = subprocess.run([sys.executable, "-c", code, *args], capture_output=True, text=True, env=env,
                          timeout=timeout)
    assert proc.returncode == 0, proc.stderr[-4000:]
    return json.loads(proc.stdout.strip().splitlines()[-1])


def test_the_cli_classifies_explains_evaluates_imports_and_calibrates_without_torch(setup):
    root, image, folder = setup["root"], str(setup["image"]), str(setup["folder"])
    explain_dir = root / "heat maps"
    commands = [
        ("one", ["predict", image, "--json", "--model", DEMO]),
        ("explain", ["predict", image, "--json", "--explain", "--model", DEMO]),
        ("folder", ["predict", folder, "--json", "--explain-dir", str(explain_dir), "--model", DEMO]),
        ("evaluate", ["evaluate", "--data", folder, "--json", "--model", DEMO]),
        ("import", ["models", "import", str(root / "tutorial.pth"), "--name", "tutorial", "--classes",
                    ",".join(str(i) for i in range(10))]),
        ("tutorial", ["predict", image, "--json", "--model", "tutorial", "--top-k", "10"]),
        ("calibrate", ["models", "calibrate", DEMO, "--data", folder]),
        ("int8", ["predict", image, "--json", "--precision", "int8", "--model", DEMO]),
        ("torch", ["predict", image, "--engine", "torch"]),
    ]
    got = run_child(CLI_CHILD, [json.dumps(commands)], setup["env"])
    assert got["blocked"]
    assert torch_modules_loaded(root / "hook") == [[]]
    for key, _ in commands[:-1]:
        assert got[key]["code"] == 0, (key, got[key]["err"][-2000:])
        assert "Traceback" not in got[key]["err"]
    # the torch engine was really unavailable: asked for, it says so in a sentence
    assert got["torch"]["code"] != 0 and "PyTorch is not installed" in got["torch"]["err"]

    # the same answers as the PyTorch engine in this process
    from resnet_gui.core.engines.choose import open_predictor
    from resnet_gui.core.evaluation.evaluate import evaluate
    from resnet_gui.core.models.registry import Registry

    home_models = root / "home" / "models"
    one = json.loads(got["one"]["out"])
    reference = open_predictor(resources.path(DEMO_RESOURCE), engine="torch", device="cpu", precision="fp32")
    expected = reference.predict_file(image)
    assert one["label"] == expected.label == "3"
    assert one["confidence"] == pytest.approx(expected.confidence, abs=1e-3)
    cam = np.asarray(json.loads(got["explain"]["out"])["cam"], dtype=np.float32)
    assert cam.ndim == 2 and cam.min() >= 0 and cam.max() == pytest.approx(1.0)
    rows = [json.loads(line) for line in got["folder"]["out"].splitlines()]
    assert len(rows) == 10 * PER_CLASS and all("label" in r for r in rows)
    assert len(list(explain_dir.glob("*.png"))) == 10 * PER_CLASS
    figures = json.loads(got["evaluate"]["out"])
    torch_eval = evaluate(str(resources.path(DEMO_RESOURCE)), folder, device="cpu", engine="torch",
                          precision="fp32", registry=Registry(home_models))
    assert figures["n"] == torch_eval.figures.n == 10 * PER_CLASS
    assert abs(figures["accuracy"] - torch_eval.figures.accuracy) <= 1 / (10 * PER_CLASS) + 1e-9
    # the tutorial network, imported without torch, answers as the original network does
    tutorial = json.loads(got["tutorial"]["out"])
    probs = dict(tutorial["top_k"])
    assert np.allclose([probs[str(i)] for i in range(10)], setup["tutorial_probs"], atol=1e-4)
    # calibrated without torch: familiarity data, and an int8 version that was verified and is used
    assert "Familiarity data" in got["calibrate"]["out"] and "int8 version kept" in got["calibrate"]["out"]
    from resnet_gui.core.models.checkpoint import read_checkpoint

    ckpt = read_checkpoint(home_models / f"{DEMO}.pth")
    assert ckpt.familiarity is not None and ckpt.int8["kept"] and ckpt.int8_model is not None
    # its input statistics, and how well it flags unfamiliar images, measured without torch (outliers.py)
    assert ckpt.familiarity["input_low"] is not None
    assert ckpt.familiarity["measured"]["rating"] in ("well", "weakly", "not at all")
    assert json.loads(got["int8"]["out"])["label"] == "3"


def test_the_predict_and_evaluate_tabs_work_without_torch(setup):
    photo = resources.path("outliers") / "coffee.jpg"
    got = run_child(GUI_CHILD, [str(setup["image"]), str(setup["folder"]), DEMO, str(photo)], setup["env"])
    assert torch_modules_loaded(setup["root"] / "hook")[-1] == []
    assert "ONNX Runtime" in got["device"]
    sample, label = got["sample"]
    assert Path(sample).parent.name == "samples" and label in [str(i) for i in range(10)]
    # beside every answer, the familiarity rating measured when the demo's familiarity data was fitted
    assert got["trust"] == ["Confidence calibrated · can flag unfamiliar images: well", "info"]
    from resnet_gui.ui.predict.single_image_view import UNFAMILIAR_TITLE

    title, why = got["photo"]
    assert title == UNFAMILIAR_TITLE and why.startswith("This image is ")  # flagged by its input statistics, saying how
    assert got["label"] == "3" and got["shown"] in ("3", "Not sure") and "evidence for" in got["explained"]
    assert got["folder_rows"] == 10 * PER_CLASS
    assert got["evaluated"]["n"] == 10 * PER_CLASS and got["evaluated"]["accuracy"] >= 0.95
