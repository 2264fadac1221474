"""core/resnet.py builds torchvision's networks without importing torchvision: checked against torchvision."""
import subprocess
import sys

import pytest
import torch
import torchvision

from resnet_gui.core.resnet import SPECS, resnet


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
    """Building a model, reading a checkpoint and predicting stay clear of `import torchvision` and
    torch._dynamo (2.4-3 s of start-up on a 2-core machine; see core/resnet.py)."""
    code = f"""
import sys
import torch
from PIL import Image
from resnet_gui.core.checkpoint import Checkpoint, load_checkpoint, read_metadata, save_checkpoint
from resnet_gui.core.models import build_model
from resnet_gui.core.predict import Predictor
from resnet_gui.core.preprocess import Preprocess
path = {str(tmp_path / "m.pth")!r}
pre = Preprocess(input_size=32, resize=36, mean=(0.5, 0.5, 0.5), std=(0.25, 0.25, 0.25))
save_checkpoint(Checkpoint(arch="resnet18", class_names=["a", "b"], preprocess=pre,
                           state_dict=build_model("resnet18", 2).state_dict()), path)
read_metadata(path)
Image.new("RGB", (50, 40), "red").save({str(tmp_path / "x.jpg")!r})
predictor = Predictor(load_checkpoint(path))
print(predictor.predict_file({str(tmp_path / "x.jpg")!r}).label)
rows = [p for batch in predictor.predict_paths([{str(tmp_path / "x.jpg")!r}] * 3) for p in batch]
assert len(rows) == 3
loaded = sorted(m for m in sys.modules if m.startswith(("torchvision", "torch._dynamo", "sympy")))
assert not loaded, loaded
"""
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert proc.stdout.strip() in ("a", "b")
