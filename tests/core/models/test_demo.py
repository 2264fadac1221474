"""The bundled demo model, its samples, first-run seeding, and the script that makes them."""
import json
import re
import subprocess
import sys
from pathlib import Path

import pytest
import torch

from resnet_gui import resources
from resnet_gui.cli import main
from resnet_gui.core.models.build import load_model
from resnet_gui.core.models.checkpoint import read_checkpoint_metadata
from resnet_gui.core.models.demo import DEMO_NAME, DEMO_RESOURCE, ensure_demo_model
from resnet_gui.core.models.registry import Registry

ROOT = Path(__file__).resolve().parents[3]


def digit_samples():
    return sorted(resources.path("samples").glob("digit_*.png"))


def test_bundled_demo_checkpoint_is_honest():
    path = resources.path(DEMO_RESOURCE)
    meta = read_checkpoint_metadata(path)
    assert meta["arch"] == "resnet18_cifar" and meta["class_names"] == [str(i) for i in range(10)]
    notes = meta["notes"]
    assert "train_demo_model.py" in notes["command"] and isinstance(notes["seed"], int)
    assert meta["metrics"]["test_accuracy"] == notes["held_out_test_accuracy"] >= 0.9
    assert meta["dataset"]["test_images"] == 360
    raw = torch.load(path, weights_only=True, mmap=True)
    assert raw["state_dict"]["conv1.weight"].dtype == torch.float16  # stored small
    _, model = load_model(path)
    assert model.conv1.weight.dtype == torch.float32  # used as float32


@pytest.mark.parametrize("engine", ["onnxruntime", "torch"])
def test_samples_are_held_out_digits_and_the_demo_gets_them_right(engine):
    from resnet_gui.core.engines.choose import open_predictor

    samples = digit_samples()
    assert len(samples) >= 10
    assert len(list(resources.path("samples").glob("not_a_digit_*.png"))) >= 2
    predictor = open_predictor(resources.path(DEMO_RESOURCE), engine=engine, device="cpu")
    for path in samples:
        expected = re.match(r"digit_(\d)_", path.name).group(1)
        assert predictor.predict_file(path).label == expected, path.name


def test_first_run_installs_the_demo_as_default():
    registry = Registry()
    assert ensure_demo_model(registry) == DEMO_NAME
    assert registry.default_name() == DEMO_NAME and registry.names() == [DEMO_NAME]
    assert ensure_demo_model(registry) is None  # only when the registry is empty


def test_the_demo_is_shown_with_its_held_out_test_accuracy_not_the_validation_figure(capsys, cifar_checkpoint_file):
    """The validation split chose the demo's epoch, temperature and familiarity threshold (99.4 %); 356 of 360
    held-out digits (98.9 %) is the figure measured on images that chose nothing."""
    from resnet_gui.cli import main

    registry = Registry()
    ensure_demo_model(registry)
    (registry.root / "mine.pth").write_bytes(cifar_checkpoint_file.read_bytes())
    entries = {e.name: e for e in registry.list()}
    demo = entries[DEMO_NAME]
    assert demo.val_accuracy > 0.99 and demo.accuracy() == (356 / 360, "test accuracy")
    assert entries["mine"].accuracy() == (0.5, "validation accuracy")  # no held-out figure: validation, so named
    assert main(["models", "list"]) == 0
    out = capsys.readouterr().out
    assert "98.9% test" in out and "50.0% val." in out and "99.4%" not in out


def test_demo_is_not_reinstalled_once_the_user_has_models(cifar_checkpoint_file):
    registry = Registry()
    (registry.root / "mine.pth").write_bytes(cifar_checkpoint_file.read_bytes())
    assert ensure_demo_model(registry) is None and registry.names() == ["mine"]


def test_cli_predict_a_sample_with_no_other_setup(capsys):
    sample = digit_samples()[0]
    assert main(["predict", str(sample), "--json"]) == 0
    out = json.loads(capsys.readouterr().out)
    assert out["label"] == re.match(r"digit_(\d)_", sample.name).group(1)


@pytest.mark.slow
def test_demo_script_still_works_on_a_subset(tmp_path):
    out, samples = tmp_path / "demo.pth", tmp_path / "samples"
    proc = subprocess.run([sys.executable, str(ROOT / "scripts" / "train_demo_model.py"), "--subset", "200",
                           "--epochs", "1", "--out", str(out), "--samples", str(samples), "--samples-per-class", "1",
                           "--device", "cpu"], capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    meta = read_checkpoint_metadata(out)
    assert meta["notes"]["command"].endswith("--device cpu") and meta["notes"]["seed"] == 0
    assert 0 <= meta["metrics"]["test_accuracy"] <= 1 and meta["dataset"]["test_images"] == 40
    assert len(list(samples.glob("*digit_[0-9]_*.png"))) == 10 and len(list(samples.glob("not_a_digit_*"))) == 2
