"""The classify-only edition in this venv: PyTorch made unimportable in a subprocess (helpers.run_without_torch), as
it is in the frozen resnet-gui-classify. The same package decides its edition by what is installed."""
from helpers import app_without_torch, run_without_torch

from resnet_gui import edition


def test_the_edition_is_decided_by_what_is_installed():
    assert edition.current() == edition.FULL and edition.can_train()
    proc = run_without_torch("from resnet_gui import edition\nprint(edition.current(), edition.can_train())\n")
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.split() == ["classify", "False"]
    assert edition.executable_name(edition.FULL) == "resnet-gui"
    assert edition.executable_name(edition.CLASSIFY) == "resnet-gui-classify"


def test_train_and_runs_say_where_training_lives_and_exit_2():
    for argv in (("train", "--dataset", "cifar10", "--epochs", "1"), ("runs", "list")):
        proc = run_without_torch(app_without_torch(*argv))
        assert proc.returncode == 2, proc.stdout + proc.stderr
        assert proc.stderr.strip() == f"resnet-gui: error: {edition.TRAINING_ELSEWHERE}"
        assert "Traceback" not in proc.stderr and proc.stdout == ""


def test_the_same_files_give_the_same_answers_with_and_without_torch(tmp_path, capsys):
    """Same registry, same files: the demo model (trained by the app) and its weights saved as a tutorial script saves
    them (torch.save of a plain state dict, kuangliu/pytorch-cifar names) answer alike in PyTorch (the full edition's
    --engine torch) and, with torch unimportable, in ONNX Runtime: top-1 identical, probabilities within 1e-3."""
    import json

    import numpy as np
    import torch
    from PIL import Image
    from skimage import data

    from resnet_gui import resources
    from resnet_gui.cli import main
    from resnet_gui.core.models.demo import demo_checkpoint_path
    from resnet_gui.core.models.registry import Registry

    registry = Registry()
    registry.import_file(demo_checkpoint_path(), name="trained")
    state = torch.load(registry.path_for("trained"), weights_only=True)["state_dict"]
    tutorial = {("linear." + k[3:] if k.startswith("fc.") else k.replace(".downsample.", ".shortcut.")): v.float()
                for k, v in state.items()}
    torch.save(tutorial, tmp_path / "tutorial.pth")
    registry.import_file(tmp_path / "tutorial.pth", name="tutorial", class_names=[str(i) for i in range(10)])
    images = tmp_path / "images"
    images.mkdir()
    for sample in sorted(resources.path("samples").glob("*.png")):
        (images / sample.name).write_bytes(sample.read_bytes())
    for name in ("astronaut", "coffee", "chelsea"):
        Image.fromarray(getattr(data, name)()).save(images / f"{name}.jpg")
    for model in ("trained", "tutorial"):
        argv = ("predict", str(images), "--model", model, "--json", "--top-k", "10", "--precision", "fp32")
        assert main([*argv, "--engine", "torch"]) == 0
        with_torch = [json.loads(line) for line in capsys.readouterr().out.splitlines()]
        proc = run_without_torch(app_without_torch(*argv))
        assert proc.returncode == 0, proc.stderr
        without = [json.loads(line) for line in proc.stdout.splitlines()]
        assert [r["path"] for r in without] == [r["path"] for r in with_torch] and len(without) == 25
        for a, b in zip(with_torch, without):
            assert a["label"] == b["label"], (model, a["path"])
            pa, pb = dict(a["top_k"]), dict(b["top_k"])
            assert np.abs(np.array([pa[k] for k in pa]) - np.array([pb[k] for k in pa])).max() <= 1e-3


def test_the_classify_self_test_passes_with_torch_unimportable():
    """The window (offscreen), the demo model, a tutorial-layout import, a folder to CSV: what the frozen
    resnet-gui-classify checks, here from source with PyTorch unimportable, and no torch module loaded."""
    proc = run_without_torch(app_without_torch("--self-test"), timeout=300)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    for check in ("qt", "model", "predict", "import", "folder", "no-torch"):
        assert f"PASS {check} " in proc.stdout, proc.stdout
    assert "classify edition (from source" in proc.stdout
    assert "main window built with tabs Predict, Train, Evaluate, Models" in proc.stdout


def test_onnx_export_needs_no_torch_and_torchscript_says_what_is_missing(tmp_path):
    """Models → Export… in the classify edition: ONNX is built from the weights and checked in ONNX Runtime against
    the engine's logits; the same file as with PyTorch installed. TorchScript names what it needs and exits 2."""
    import numpy as np
    import onnxruntime

    from resnet_gui.cli import main
    from resnet_gui.core.models.demo import demo_checkpoint_path

    demo = str(demo_checkpoint_path())
    with_torch, without = tmp_path / "with.onnx", tmp_path / "without.onnx"
    assert main(["models", "export", demo, "--format", "onnx", "-o", str(with_torch)]) == 0
    proc = run_without_torch(app_without_torch("models", "export", demo, "--format", "onnx", "-o", str(without)))
    assert proc.returncode == 0, proc.stderr
    assert "Checked with onnxruntime: the same outputs as the prediction engine's logits" in proc.stdout
    assert "the prediction engine's logits" in (tmp_path / "without.onnx.md").read_text()
    images = np.random.default_rng(1).integers(0, 256, (4, 3, 32, 32), dtype=np.uint8)
    outputs = [onnxruntime.InferenceSession(str(f)).run(None, {"images": images})[0] for f in (with_torch, without)]
    assert np.array_equal(outputs[0], outputs[1])
    proc = run_without_torch(app_without_torch("models", "export", demo, "--format", "torchscript", "-o",
                                               str(tmp_path / "m.pt")))
    assert proc.returncode == 2 and "needs PyTorch" in proc.stderr and "export to ONNX" in proc.stderr, proc.stderr
    assert not (tmp_path / "m.pt").exists()
