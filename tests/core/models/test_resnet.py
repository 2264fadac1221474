"""core/resnet.py builds torchvision's networks without importing torchvision: checked against torchvision."""
import os
import subprocess
import sys

import numpy as np
import pytest
import torch
import torchvision

from resnet_gui.core.errors import CheckpointError
from resnet_gui.core.models.archs import ARCHS, check_fits, feature_dim_of, state_dict_shapes
from resnet_gui.core.models.resnet import SPECS, resnet


@pytest.mark.parametrize("builder", ["resnet18", "resnet34", "resnet50", "resnext50_32x4d"])
def test_same_initial_weights_and_outputs_as_torchvision(builder):
    """Same modules in the same order: a seed gives the same weights, and the forward pass the same output."""
    torch.manual_seed(3)
    ours = resnet(builder, 10).eval()
    torch.manual_seed(3)
    theirs = getattr(torchvision.models, builder)(num_classes=10).eval()
    a, b = ours.state_dict(), theirs.state_dict()
    assert list(a) == list(b)
    for key in a:
        assert torch.equal(a[key], b[key]), key
    assert [n for n, _ in ours.named_modules()] == [n for n, _ in theirs.named_modules()]
    x = torch.randn(2, 3, 64, 64)
    with torch.inference_mode():
        assert torch.equal(ours(x), theirs(x))


@pytest.mark.parametrize("builder", sorted(SPECS))
def test_torchvision_state_dicts_load_strictly(builder):
    """A state dict saved from torchvision's model (a tutorial's .pth) loads into ours, and the reverse."""
    with torch.device("meta"):
        ours, theirs = resnet(builder, 5), getattr(torchvision.models, builder)(num_classes=5)
    ours.load_state_dict(theirs.state_dict(), strict=True, assign=True)
    theirs.load_state_dict(resnet(builder, 5).state_dict(), strict=True, assign=True)
    for name, module in ours.named_modules():
        assert type(module).__name__ == type(theirs.get_submodule(name)).__name__, name


def test_classifying_never_imports_torchvision_or_torchs_compiler(tmp_path):
    """Building a model, reading checkpoints (the demo's resnet18_cifar too), listing the registry and
    predicting, from Python and from the CLI with its default model, stay clear of `import torchvision` and of
    torch._dynamo / sympy (2.4-3 s of start-up on a 2-core machine; see core/resnet.py)."""
    code = f"""
import sys
from PIL import Image
from resnet_gui.core.models.checkpoint import Checkpoint, read_checkpoint, read_checkpoint_metadata, write_checkpoint
from resnet_gui.core.models.demo import demo_checkpoint_path
from resnet_gui.core.models.build import build_model
from resnet_gui.core.engines.choose import open_predictor
from resnet_gui.core.models.preprocess import Preprocess
from resnet_gui.core.models.registry import Registry
pre = Preprocess(input_size=32, resize=36, mean=(0.5, 0.5, 0.5), std=(0.25, 0.25, 0.25))
image = {str(tmp_path / "x.jpg")!r}
Image.new("RGB", (50, 40), "red").save(image)
for arch in ("resnet18", "resnet18_cifar"):
    path = {str(tmp_path)!r} + f"/{{arch}}.pth"
    write_checkpoint(Checkpoint(arch=arch, class_names=["a", "b"], preprocess=pre,
                               state_dict=build_model(arch, 2).state_dict()), path)
    read_checkpoint_metadata(path)
    predictor = open_predictor(read_checkpoint(path), engine="torch", device="cpu")
    assert predictor.predict_file(image).label in ("a", "b")
    assert len([p for batch in predictor.predict_paths([image] * 3) for p in batch]) == 3
assert read_checkpoint_metadata(demo_checkpoint_path())["arch"] == "resnet18_cifar"
from resnet_gui.cli import main
try:
    main(["predict", image])  # a fresh home: the demo model (resnet18_cifar) is the default
except SystemExit as exc:
    assert not exc.code, exc.code
assert Registry().list()
loaded = sorted(m for m in sys.modules if m.startswith(("torchvision", "torch._dynamo", "sympy")))
assert not loaded, loaded
"""
    env = {**os.environ, "RESNET_GUI_HOME": str(tmp_path / "home")}
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=300, env=env)
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert "x.jpg" in proc.stdout  # the CLI's line for the photo


@pytest.mark.parametrize("arch", sorted(ARCHS))
def test_the_topology_as_data_gives_torchs_state_dict_names_shapes_and_order(arch):
    """archs.state_dict_shapes (no torch: what the ONNX graph builder and the torch-free reader check weights
    against) lists exactly the keys of the torch model's state dict, in its order, with its shapes."""
    from resnet_gui.core.models.build import build_model

    for classes in (1, 7):
        with torch.device("meta"):
            model = build_model(arch, classes)
        assert state_dict_shapes(arch, classes) == {k: tuple(v.shape) for k, v in model.state_dict().items()}
        assert list(state_dict_shapes(arch, classes)) == list(model.state_dict())
    assert feature_dim_of(arch) == model.fc.in_features


def test_weights_that_do_not_fit_are_named():
    shapes = state_dict_shapes("resnet18", 3)
    state = {k: np.zeros(s, np.float32) for k, s in shapes.items()}
    check_fits(state, shapes, "m.pth", "resnet18")
    del state["layer3.1.bn2.running_var"]
    state["fc.weight"] = np.zeros((4, 512), np.float32)
    state["head.extra"] = np.zeros(1, np.float32)
    with pytest.raises(CheckpointError, match=r"m\.pth: the weights do not fit architecture resnet18 \(missing "
                       r"layer3\.1\.bn2\.running_var; unexpected head\.extra; wrong shape fc\.weight: \(4, 512\) "
                       r"instead of \(3, 512\)\)"):
        check_fits(state, shapes, "m.pth", "resnet18")
