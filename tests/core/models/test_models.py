import pytest
import torch
import torchvision

from resnet_gui.core.errors import ModelError, user_message
from resnet_gui.core.models.archs import ARCHS, default_preprocess
from resnet_gui.core.models.build import build_model, imagenet_weights_path, weights_cache_dir


@pytest.mark.parametrize("arch", list(ARCHS))
def test_every_arch_has_torchvisions_parameters_with_the_requested_head(arch):
    with torch.device("meta"):
        model = build_model(arch, 7)
    assert model.fc.out_features == 7
    builder = ARCHS[arch].builder
    with torch.device("meta"):
        reference = getattr(torchvision.models, builder)(num_classes=7)
    ours = {k: tuple(v.shape) for k, v in model.state_dict().items()}
    theirs = {k: tuple(v.shape) for k, v in reference.state_dict().items()}
    if arch == "resnet18_cifar":
        assert ours.pop("conv1.weight") == (64, 3, 3, 3)
        theirs.pop("conv1.weight")
        assert isinstance(model.maxpool, torch.nn.Identity)
    assert list(ours.items()) == list(theirs.items())  # same names, shapes and order


def test_resnet18_cifar_keeps_32x32_resolution_until_layer2():
    model = build_model("resnet18_cifar", 10).eval()
    x = torch.randn(2, 3, 32, 32)
    stem = model.maxpool(model.relu(model.bn1(model.conv1(x))))
    assert stem.shape == (2, 64, 32, 32)
    assert model(x).shape == (2, 10)


def test_unknown_arch_lists_the_supported_ones():
    with pytest.raises(ModelError, match="resnet50"):
        build_model("vgg16", 10)


def seed_imagenet_cache(arch="resnet18"):
    """What a completed download leaves in the torch hub cache, with generated weights."""
    torch.manual_seed(1)
    state = getattr(torchvision.models, ARCHS[arch].builder)(num_classes=1000).state_dict()
    path = imagenet_weights_path(arch)
    path.parent.mkdir(parents=True, exist_ok=True)
    torch.save(state, path)
    return path, state


def test_pretrained_weights_come_from_the_torch_hub_cache(isolated_home):
    path, state = seed_imagenet_cache()
    assert str(path).startswith(str(isolated_home / "torch"))
    assert path.parent == weights_cache_dir()  # where the Train tab's Download ImageNet weights puts them
    model = build_model("resnet18", 5, weights="imagenet")
    assert torch.equal(model.layer3[1].conv2.weight, state["layer3.1.conv2.weight"])
    assert model.fc.out_features == 5


def test_missing_weights_offline_name_the_cache_file_and_the_alternative():
    with pytest.raises(ModelError) as err:
        build_model("resnet34", 3, weights="imagenet")
    msg = user_message(err.value)  # the command line's words: the alternative is the --weights-file option
    assert imagenet_weights_path("resnet34").name in msg and str(imagenet_weights_path("resnet34").parent) in msg
    assert "weights file with --weights-file" in msg and err.value.remedy.kind == "weights_file"


def test_local_weights_file_for_offline_labs(tmp_path):
    torch.manual_seed(2)
    state = torchvision.models.resnet18().state_dict()
    f = tmp_path / "my-resnet18.pth"
    torch.save({"state_dict": state}, f)
    model = build_model("resnet18", 4, weights=f)
    assert torch.equal(model.conv1.weight, state["conv1.weight"])
    assert model.fc.out_features == 4


def test_cifar_stem_has_no_imagenet_weights():
    with pytest.raises(ModelError, match="no ImageNet weights"):
        build_model("resnet18_cifar", 10, weights="imagenet")


def test_default_preprocess_follows_the_weights_preset():
    assert default_preprocess("resnet18_cifar").input_size == 32
    pre = default_preprocess("resnet50")
    t = torchvision.models.ResNet50_Weights.DEFAULT.transforms()
    assert (pre.input_size, pre.resize) == (t.crop_size[0], t.resize_size[0])
    assert list(pre.mean) == t.mean and list(pre.std) == t.std


@pytest.mark.parametrize("arch", list(ARCHS))
def test_the_input_size_known_without_torchvision_is_the_presets(arch):
    """The Train tab's health check sizes images by ArchInfo.input_size (no torchvision import in its worker)."""
    assert ARCHS[arch].input_size == default_preprocess(arch).input_size
