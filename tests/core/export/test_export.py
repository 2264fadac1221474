"""Export to ONNX and TorchScript: the exported files give the same probabilities as the app's Predictor on real
decoded images (max abs difference <= 1e-4) for resnet18_cifar and resnet18 at batch sizes 1 and 3 (one
dynamic batch dimension); the model card; calibration; missing optional packages; refused outputs; atomicity.

ONNX tests skip when onnxruntime is not installed (`pip install resnet-gui[export]`).
"""
from __future__ import annotations

import json
import sys
from pathlib import Path

import numpy as np
import pytest
import torch
from helpers import class_image, make_checkpoint

from resnet_gui.cli import main
from resnet_gui.core.engines.choose import open_predictor
from resnet_gui.core.errors import ExportError
from resnet_gui.core.export import exporter as export
from resnet_gui.core.models.checkpoint import read_checkpoint
from resnet_gui.resources import path as resource_path

# torch.jit is deprecated in favour of torch.export, but TorchScript is what the issue asks for and what LibTorch loads
pytestmark = [pytest.mark.slow, pytest.mark.filterwarnings("ignore:`torch.jit.:FutureWarning")]

DEMO = "models/digits-resnet18_cifar.pth"
TOLERANCE = 1e-4


def real_images(folder: Path) -> list[Path]:
    """Three real photographs and digit scans, saved as JPEG/PNG files and decoded by the app like any other image
    (generated class images when scikit-image or scikit-learn are not installed)."""
    from PIL import Image

    folder.mkdir(parents=True, exist_ok=True)
    arrays: list[tuple[str, np.ndarray]] = []
    try:
        from skimage import data

        arrays += [("chelsea.jpg", data.chelsea()), ("coffee.jpg", data.coffee())]
    except ImportError:
        arrays += [(f"generated_{i}.png", class_image(i, 3, size=64, seed=i)) for i in range(2)]
    try:
        from sklearn.datasets import load_digits

        digit = load_digits().images[7]
        arrays.append(("digit.png", np.repeat((digit * (255 / 16)).astype(np.uint8)[:, :, None], 3, axis=2)))
    except ImportError:
        arrays.append(("generated_2.png", class_image(2, 3, size=40, seed=2)))
    out = []
    for name, arr in arrays:
        path = folder / name
        Image.fromarray(arr).save(path, quality=92) if name.endswith(".jpg") else Image.fromarray(arr).save(path)
        out.append(path)
    return out


def sharpened_checkpoint(path: Path, arch: str) -> Path:
    """A random-weight checkpoint whose head is scaled up, so the probabilities are far from uniform and a
    mistake in the normalisation or the softmax shows."""
    make_checkpoint(path, arch=arch, class_names=[f"class {i}" for i in range(5)], seed=3)
    obj = torch.load(path, weights_only=True)
    obj["state_dict"]["fc.weight"] = obj["state_dict"]["fc.weight"] * 40
    obj["dataset"] = {"name": "generated", "train_images": 10, "val_images": 5}
    torch.save(obj, path)
    return path


@pytest.fixture(scope="module", params=["resnet18_cifar", "resnet18"])
def exported(request, tmp_path_factory):
    """One checkpoint per architecture, exported to both formats once (ONNX only with onnx + onnxscript)."""
    arch = request.param
    folder = tmp_path_factory.mktemp(f"export-{arch}")
    source = resource_path(DEMO) if arch == "resnet18_cifar" else sharpened_checkpoint(folder / "rn18.pth", arch)
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("RESNET_GUI_HOME", str(folder / "home"))
        results = {"torchscript": export.export_model(source, "torchscript", folder / "model.pt")}
        if not export.missing_packages("onnx"):
            results["onnx"] = export.export_model(source, "onnx", folder / "model.onnx")
    return {"arch": arch, "source": Path(source), "results": results, "images": real_images(folder / "images")}


def reference(source: Path, images: list[Path]) -> tuple[torch.Tensor, torch.Tensor]:
    """The app's own prediction: decoded, resized, cropped uint8 batch and Predictor's probabilities for it."""
    predictor = open_predictor(source, device="cpu", precision="fp32")
    pixels = np.stack([predictor.load(p) for p in images])
    return nchw(pixels), torch.from_numpy(predictor.probabilities(pixels))


def nchw(pixels: np.ndarray) -> torch.Tensor:
    """uint8 N x S x S x 3 rows (as the app decodes them) -> the exported models' N x 3 x S x S input."""
    return torch.from_numpy(np.ascontiguousarray(pixels.transpose(0, 3, 1, 2)))


def run_exported(fmt: str, path: Path, batch: torch.Tensor) -> torch.Tensor:
    if fmt == "onnx":
        ort = pytest.importorskip("onnxruntime")
        session = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
        assert session.get_inputs()[0].type == "tensor(uint8)"
        assert isinstance(session.get_inputs()[0].shape[0], str), "the batch dimension is dynamic"
        return torch.from_numpy(session.run(None, {"images": batch.numpy()})[0])
    model = torch.jit.load(str(path), map_location="cpu")
    with torch.no_grad():
        return model(batch)


@pytest.mark.parametrize("fmt", ["onnx", "torchscript"])
@pytest.mark.parametrize("batch_size", [1, 3])
def test_exported_model_gives_the_same_probabilities_as_predict_on_real_images(exported, fmt, batch_size):
    if fmt == "onnx":
        pytest.importorskip("onnxruntime")
        if "onnx" not in exported["results"]:
            pytest.skip("onnx and onnxscript are not installed (pip install resnet-gui[export])")
    images = exported["images"][:batch_size]
    batch, expected = reference(exported["source"], images)
    got = run_exported(fmt, exported["results"][fmt].path, batch)
    assert got.shape == expected.shape == (batch_size, len(exported["results"][fmt].class_names))
    assert float((got - expected).abs().max()) <= TOLERANCE
    assert torch.allclose(got.sum(dim=1), torch.ones(batch_size), atol=1e-5)
    assert float(expected.max()) > 0.5, "probabilities far from uniform, so the comparison means something"
    result = exported["results"][fmt]
    assert result.max_abs_diff is not None and result.max_abs_diff <= TOLERANCE
    assert result.checked_with == ("onnxruntime" if fmt == "onnx" else "torch.jit.load")


def test_predict_paths_and_the_torchscript_export_agree_on_every_image(exported):
    predictor = open_predictor(exported["source"], device="cpu", precision="fp32")
    names = predictor.class_names
    predictions = [p for batch in predictor.predict_paths(exported["images"], top_k=len(names)) for p in batch]
    batch = nchw(np.stack([predictor.load(p) for p in exported["images"]]))
    got = run_exported("torchscript", exported["results"]["torchscript"].path, batch)
    for pred, row in zip(predictions, got):
        probs = dict(pred.top_k)
        assert max(abs(probs[name] - float(row[i])) for i, name in enumerate(names)) <= TOLERANCE


def test_the_exports_carry_their_class_names_and_preprocessing(exported):
    result = exported["results"]["torchscript"]
    extra = {"class_names.json": "", "preprocess.json": "", "model_card.md": ""}
    torch.jit.load(str(result.path), map_location="cpu", _extra_files=extra)
    assert json.loads(extra["class_names.json"]) == result.class_names
    assert json.loads(extra["preprocess.json"])["input_size"] == result.input_size
    assert "## Classes" in extra["model_card.md"].decode()
    if "onnx" in exported["results"]:
        import onnx

        proto = onnx.load(str(exported["results"]["onnx"].path), load_external_data=False)
        props = {p.key: p.value for p in proto.metadata_props}
        assert json.loads(props["class_names"]) == result.class_names
        assert json.loads(props["preprocess"])["mean"] == list(read_checkpoint(exported["source"]).preprocess.mean)


def test_the_model_card_lists_classes_preprocessing_training_data_figures_calibration_and_limits(tmp_path):
    result = export.export_model(resource_path(DEMO), "torchscript", tmp_path / "digits.pt")
    assert result.card_path == tmp_path / "digits.pt.md"
    card = result.card_path.read_text(encoding="utf-8")
    for text in ("# Model card: digits-resnet18\\_cifar", "**uint8** `[N, 3, 32, 32]`", "| 9 | 9 |",
                 "shorter side is 32 pixels", "Center-crop 32 x 32", "mean [0.4914, 0.4822, 0.4465]",
                 "scikit-learn handwritten digits", "1,257 training, 180 validation, 360 test",
                 "Test accuracy (held-out images never used in training): **98.9%** on 360 images",
                 "Best epoch: 9 of 15", "T = 0.4341 (applied inside", "Fitted on: validation split (180 images)\n",
                 "Expected calibration error before scaling: 0.117", "## Limits", "only these 10 classes",
                 "Checked after writing: torch.jit.load", "normalisation is **inside**", "horizontal flips no"):
        assert text in card, text


def test_a_calibrated_model_divides_its_logits_by_the_temperature_and_its_card_says_so(tmp_path):
    source = make_checkpoint(tmp_path / "cal.pth", metrics={"val_accuracy": 0.9, "ece": 0.12},
                             class_names=["a|b", "<c>", "d_e"], seed=1)
    ckpt = read_checkpoint(source)
    ckpt.calibration = {"method": "temperature scaling", "temperature": 2.5, "ece_before": 0.12, "ece_after": 0.031,
                        "fitted_on": "validation split", "images": 300}
    result = export.export_model(ckpt, "torchscript", tmp_path / "cal.pt", name="cal")
    assert result.temperature == 2.5
    card = result.card_path.read_text(encoding="utf-8")
    for text in ("T = 2.5 (applied inside", "Fitted on: validation split (300 images)",
                 "Expected calibration error after scaling: 0.031", "Expected calibration error (evaluation): 0.120"):
        assert text in card, text
    assert "Not calibrated" not in card
    assert "| 0 | a\\|b |" in card and "&lt;c&gt;" in card and "<c>" not in card
    predictor = open_predictor(source, engine="torch", device="cpu", precision="fp32")
    pixels = np.random.default_rng(0).integers(0, 256, (2, 32, 32, 3), dtype=np.uint8)
    batch = nchw(pixels)
    logits = torch.from_numpy(predictor.outputs(pixels, ("logits",))["logits"])
    got = run_exported("torchscript", result.path, batch)
    assert float((got - (logits / 2.5).softmax(dim=1)).abs().max()) <= TOLERANCE

    raw = export.export_model(ckpt, "torchscript", tmp_path / "cal-logits.pt", outputs="logits", name="cal")
    assert float((run_exported("torchscript", raw.path, batch) - logits).abs().max()) <= TOLERANCE
    assert "not applied" in raw.card_path.read_text(encoding="utf-8")

    ckpt.calibration = {"temperature": 1e9}  # out of range: ignored, as prediction ignores it
    assert export.temperature_of(ckpt) == 1.0


def test_missing_onnx_packages_name_what_to_install(tmp_path, monkeypatch, capsys, cifar_checkpoint_file):
    monkeypatch.setitem(sys.modules, "onnx", None)  # import onnx now raises ImportError
    assert export.missing_packages("onnx") == ["onnx"]
    assert export.missing_packages("torchscript") == []
    with pytest.raises(ExportError, match=r"needs the onnx package, which is not installed; .*pip install "
                                          r"resnet-gui\[export\]"):
        export.export_model(cifar_checkpoint_file, "onnx", tmp_path / "m.onnx")
    assert main(["models", "export", str(cifar_checkpoint_file), "--format", "onnx", "--output",
                 str(tmp_path / "m.onnx")]) == 2
    err = capsys.readouterr().err
    assert "onnx" in err and "pip install resnet-gui[export]" in err and "TorchScript" in err
    assert not list(tmp_path.iterdir())


def test_the_onnx_export_is_the_graph_prediction_runs_and_needs_no_onnxscript(tmp_path, monkeypatch):
    """The file comes from core/inference/onnx_graph.py (BatchNorm folded, nodes named after the modules), not
    from torch.onnx.export: onnxscript (PyTorch's exporter) is not needed. A calibrated model's temperature is
    inside, and --logits gives the network's raw scores."""
    ort = pytest.importorskip("onnxruntime")
    import onnx

    from resnet_gui.core.models.checkpoint import read_checkpoint

    monkeypatch.setitem(sys.modules, "onnxscript", None)
    assert export.missing_packages("onnx") == []
    ckpt = read_checkpoint(resource_path(DEMO))
    ckpt.calibration = {"temperature": 2.5}
    probabilities = export.export_model(ckpt, "onnx", tmp_path / "p.onnx", name="digits")
    logits = export.export_model(ckpt, "onnx", tmp_path / "l.onnx", name="digits", outputs="logits")
    assert probabilities.max_abs_diff <= TOLERANCE and logits.max_abs_diff <= TOLERANCE
    proto = onnx.load(str(probabilities.path))
    assert {"conv1", "layer4.1.conv2", "fc"} <= {n.name for n in proto.graph.node}
    assert not any(n.op_type == "BatchNormalization" for n in proto.graph.node)
    assert [o.name for o in proto.graph.output] == ["probabilities"]
    images = [Path(p) for p in sorted(resource_path("samples").glob("digit_*.png"))[:4]]
    batch, _ = reference(resource_path(DEMO), images)
    raw = ort.InferenceSession(str(logits.path), providers=["CPUExecutionProvider"]).run(
        None, {"images": batch.numpy()})[0]
    got = run_exported("onnx", probabilities.path, batch)
    assert float((got - torch.from_numpy(raw / 2.5).softmax(dim=1)).abs().max()) <= 1e-5
    assert float(got.max()) > 0.3 and float(torch.from_numpy(raw).softmax(dim=1).max()) > float(got.max()) + 0.2


def test_outputs_that_would_replace_app_files_or_are_folders_are_refused(tmp_path, cifar_checkpoint_file):
    from resnet_gui.core.paths import models_dir, runs_dir

    for output, reason in ((models_dir() / "x.pt", "models folder"), (runs_dir() / "r" / "x.pt", "runs folder"),
                           (tmp_path, "is a folder"), (cifar_checkpoint_file, "own checkpoint")):
        with pytest.raises(ExportError, match=reason):
            export.export_model(cifar_checkpoint_file, "torchscript", output)
    with pytest.raises(ExportError, match="unknown export format 'tflite'"):
        export.export_model(cifar_checkpoint_file, "tflite", tmp_path / "x")
    assert (export.default_file_name("pets v2", "onnx"), export.default_file_name("a/b", "torchscript")) == \
        ("pets v2.onnx", "a_b.pt")
    assert not list(models_dir().iterdir()) and not list(runs_dir().iterdir())


def test_a_failed_write_leaves_neither_a_partial_file_nor_a_card(tmp_path, monkeypatch, cifar_checkpoint_file):
    out = tmp_path / "out"
    out.mkdir()
    (out / "model.pt").write_bytes(b"previous export")

    def full_disk(*args, **kwargs):
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(torch.jit, "save", full_disk)
    with pytest.raises(OSError):
        export.export_model(cifar_checkpoint_file, "torchscript", out / "model.pt")
    assert sorted(p.name for p in out.iterdir()) == ["model.pt"]
    assert (out / "model.pt").read_bytes() == b"previous export"


def test_cli_models_export_names_the_file_the_card_and_the_input(tmp_path, capsys):
    from resnet_gui.core.models.registry import Registry

    make_checkpoint(Registry().path_for("pets"), class_names=["cat", "dog"])
    out = tmp_path / "pets.pt"
    assert main(["models", "export", "pets", "--format", "torchscript", "--output", str(out)]) == 0
    text = capsys.readouterr().out
    assert f"to {out}" in text and f"model card: {out}.md" in text
    assert "uint8 [N, 3, 32, 32]" in text and "Checked with torch.jit.load" in text
    assert out.is_file() and (tmp_path / "pets.pt.md").is_file()
    assert main(["models", "export", "nobody", "--format", "torchscript", "--output", str(out)]) == 2
    assert "No model named 'nobody'" in capsys.readouterr().err
