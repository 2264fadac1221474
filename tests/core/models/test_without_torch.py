"""What the classify-only edition does with models, in a process where `import torch` fails: the demo install,
importing tutorial state dicts and our own files, listing, renaming, editing, the default, reading and writing
checkpoints. The results are checked here, with torch, against the torch path: the imported weights give the
original networks' logits, and every file written loads with torch.load(weights_only=True)."""
import json
import subprocess
import sys

import numpy as np
import torch
import torchvision
from helpers import WITHOUT_TORCH, make_checkpoint
from tutorial_nets import TutorialResNet18, randomise_bn

from resnet_gui import resources
from resnet_gui.core.models.build import load_model
from resnet_gui.core.models.demo import DEMO_RESOURCE

CHILD = WITHOUT_TORCH + """
import json
from pathlib import Path

from resnet_gui.core.models.checkpoint import read_checkpoint, read_checkpoint_metadata, write_checkpoint
from resnet_gui.core.models.demo import ensure_demo_model
from resnet_gui.core.models.registry import Registry

try:
    import torch  # noqa: F401
    blocked = False
except ImportError:
    blocked = True
tutorial, wrapped, ours, out = (Path(p) for p in sys.argv[1:5])
registry = Registry()
result = {"blocked": blocked, "demo": ensure_demo_model(registry)}
registry.import_file(tutorial, name="tutorial")
registry.import_file(wrapped, name="wrapped", class_names="cat,dog,bird")
registry.import_file(ours)
registry.rename("tutorial", "cifar")
registry.update("wrapped", class_names=["owl", "cat", "dog"], preprocess={"input_size": 160})
registry.set_default("cifar")
result["names"], result["default"] = registry.names(), registry.default_name()
result["entries"] = {e.name: e.to_json() for e in registry.list()}
ckpt = read_checkpoint(registry.get("wrapped").path)
result["dtypes"] = sorted({str(v.dtype) for v in ckpt.state_dict.values()})
write_checkpoint(ckpt, out / "half.pth", half=True)
result["half_meta"] = read_checkpoint_metadata(out / "half.pth")["notes"]
result["torch_modules"] = sorted(m for m, module in sys.modules.items()
                                 if m.split(".")[0] in ("torch", "torchvision") and module is not None)
print(json.dumps(result))
"""


def test_models_are_imported_listed_edited_and_written_without_torch(tmp_path, isolated_home):
    torch.manual_seed(0)
    cifar = randomise_bn(TutorialResNet18(num_classes=10))
    torch.save({"net": cifar.state_dict(), "acc": 93.1}, tmp_path / "tutorial.pth")
    r18 = randomise_bn(torchvision.models.resnet18(num_classes=3), seed=1)
    torch.save({"state_dict": {f"module.{k}": v for k, v in r18.state_dict().items()}, "epoch": 7},
               tmp_path / "wrapped.pth")
    make_checkpoint(tmp_path / "ours.pth", class_names=["a", "b"], metrics={"val_accuracy": 0.75})
    proc = subprocess.run([sys.executable, "-c", CHILD, *(str(tmp_path / n) for n in
                                                          ("tutorial.pth", "wrapped.pth", "ours.pth", ""))],
                          capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr[-3000:]
    result = json.loads(proc.stdout.strip().splitlines()[-1])
    assert result["blocked"] and result["torch_modules"] == []
    models = isolated_home / "models"
    assert result["names"] == ["cifar", "Demo - handwritten digits", "ours", "wrapped"]
    assert result["default"] == "cifar" and result["demo"] == "Demo - handwritten digits"
    assert not any("error" in e for e in result["entries"].values())
    assert (models / "Demo - handwritten digits.pth").read_bytes() == resources.path(DEMO_RESOURCE).read_bytes()
    assert result["entries"]["wrapped"]["class_names"] == ["owl", "cat", "dog"]
    assert result["entries"]["wrapped"]["preprocess"]["input_size"] == 160
    assert result["entries"]["ours"]["metrics"]["val_accuracy"] == 0.75
    assert result["dtypes"] == ["float32", "int64"] and result["half_meta"]["weights_dtype"] == "float16"

    # against the torch path: the networks torch builds from these files answer as the originals did
    x = torch.randn(2, 3, 32, 32, generator=torch.Generator().manual_seed(3))
    for name, original in (("cifar", cifar), ("wrapped", r18)):
        ckpt, model = load_model(models / f"{name}.pth")
        with torch.no_grad():
            assert torch.allclose(model(x), original(x), atol=1e-5, rtol=0), name
        raw = torch.load(models / f"{name}.pth", weights_only=True)
        assert raw["format"] == "resnet-gui-checkpoint" and raw["arch"] == ckpt.arch
    half = torch.load(tmp_path / "half.pth", weights_only=True)["state_dict"]
    for key, value in r18.state_dict().items():
        expected = value.half() if value.is_floating_point() else value
        assert torch.equal(half[key], expected), key
    assert np.array_equal(load_model(models / "ours.pth")[0].state_dict["fc.bias"],
                          torch.load(tmp_path / "ours.pth", weights_only=True)["state_dict"]["fc.bias"].numpy())


def test_the_torch_free_modules_import_no_torch_and_say_why_it_is_missing():
    code = WITHOUT_TORCH + (
        "import resnet_gui.core.models.checkpoint, resnet_gui.core.models.registry, "
        "resnet_gui.core.models.import_foreign, resnet_gui.core.models.demo\n"
        "try:\n    import resnet_gui.core.models.build\nexcept ImportError as exc:\n    print('build:', exc)\n"
        "print(sorted(m for m, module in sys.modules.items() if m.split('.')[0] == 'torch' and module))\n")
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert "build: import of torch halted" in proc.stdout and proc.stdout.strip().endswith("[]")
