"""Importing state dicts saved by the usual training scripts."""
import pytest
import torch
import torchvision
from torch import nn
from tutorial_nets import TutorialResNet18, randomise_bn

from resnet_gui.core.errors import CheckpointError
from resnet_gui.core.models.build import load_model, model_from_checkpoint
from resnet_gui.core.models.import_foreign import CIFAR10_CLASSES, import_file, infer_arch
from resnet_gui.core.models.registry import Registry


def logits_match(original, path, size, **kw):
    ckpt = import_file(path, **kw)
    model = model_from_checkpoint(ckpt)
    x = torch.randn(4, 3, size, size, generator=torch.Generator().manual_seed(3))
    with torch.no_grad():
        assert torch.allclose(model(x), original(x), atol=1e-5, rtol=0)
    return ckpt


def test_cifar_tutorial_layout_imports_with_identical_logits(tmp_path):
    torch.manual_seed(0)
    original = randomise_bn(TutorialResNet18())
    f = tmp_path / "resnet18_cifar_tutorial.pth"
    torch.save(original.state_dict(), f)
    ckpt = logits_match(original, f, 32)
    assert ckpt.arch == "resnet18_cifar"
    assert ckpt.class_names == CIFAR10_CLASSES  # 10 classes at 32x32: CIFAR-10 names by default
    assert ckpt.preprocess.input_size == 32


@pytest.mark.parametrize("wrapper", ["state_dict", "model", "net"])
def test_wrapped_and_dataparallel_state_dicts(tmp_path, wrapper):
    torch.manual_seed(1)
    original = randomise_bn(torchvision.models.resnet18(num_classes=3))
    state = {f"module.{k}": v for k, v in original.state_dict().items()}
    f = tmp_path / "wrapped.pth"
    torch.save({wrapper: state, "epoch": 7, "acc": 91.5}, f)
    ckpt = logits_match(original, f, 64, class_names=["cat", "dog", "bird"])
    assert ckpt.arch == "resnet18" and ckpt.class_names == ["cat", "dog", "bird"]


def test_torchvision_layout_with_replaced_fc_and_class_names_from_a_file(tmp_path):
    torch.manual_seed(2)
    original = torchvision.models.resnet34()
    original.fc = nn.Linear(original.fc.in_features, 4)
    randomise_bn(original)
    f = tmp_path / "finetuned.pth"
    torch.save(original.state_dict(), f)
    names = tmp_path / "classes.txt"
    names.write_text("alpha\nbeta\n\ngamma\ndelta\n")
    ckpt = logits_match(original, f, 64, class_names=str(names))
    assert ckpt.arch == "resnet34" and ckpt.class_names == ["alpha", "beta", "gamma", "delta"]
    assert ckpt.preprocess.input_size == 224


@pytest.mark.parametrize("builder", ["resnet50", "resnext50_32x4d", "wide_resnet50_2", "resnet101",
                                     "resnext101_32x8d", "resnet152"])
def test_architecture_is_inferred_from_keys_and_shapes(builder):
    with torch.device("meta"):
        model = getattr(torchvision.models, builder)(num_classes=12)
    arch, n = infer_arch(model.state_dict())
    assert (arch, n) == (builder, 12)


def test_without_names_a_non_cifar_model_gets_numbered_classes(tmp_path):
    f = tmp_path / "r18.pth"
    torch.save(torchvision.models.resnet18(num_classes=3).state_dict(), f)
    assert import_file(f).class_names == ["class_0", "class_1", "class_2"]


def test_wrong_number_of_class_names(tmp_path):
    f = tmp_path / "r18.pth"
    torch.save(torchvision.models.resnet18(num_classes=3).state_dict(), f)
    with pytest.raises(CheckpointError, match="3 classes but 2 class names"):
        import_file(f, class_names="a,b")


def test_not_a_resnet(tmp_path):
    f = tmp_path / "vgg.pth"
    torch.save(nn.Sequential(nn.Linear(4, 4)).state_dict(), f)
    with pytest.raises(CheckpointError, match="not a ResNet"):
        import_file(f)


def test_converted_file_is_stored_in_our_format(tmp_path):
    torch.manual_seed(4)
    original = randomise_bn(TutorialResNet18(num_classes=10))
    f = tmp_path / "tut.pth"
    torch.save({"net": original.state_dict(), "acc": 93.1}, f)
    entry = Registry().import_file(f, name="tutorial")
    raw = torch.load(entry.path, weights_only=True)
    assert raw["format"] == "resnet-gui-checkpoint" and raw["arch"] == "resnet18_cifar"
    _, model = load_model(entry.path)
    x = torch.randn(2, 3, 32, 32)
    with torch.no_grad():
        assert torch.allclose(model(x), original(x), atol=1e-5, rtol=0)


def test_a_long_comma_separated_list_of_names_is_a_list_not_a_file_name():
    """1,000 names on the command line: too long for a file name (ENAMETOOLONG from stat), still a list."""
    from resnet_gui.core.models.import_foreign import parse_class_names

    names = [f"class{i}" for i in range(1000)]
    assert parse_class_names(",".join(names)) == names
