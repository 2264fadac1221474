import os
import zipfile

import pytest
import torch
from helpers import hostile_checkpoint, make_checkpoint, plain_pickle

from resnet_gui.core.errors import CheckpointError
from resnet_gui.core.models import safe_load as pth
from resnet_gui.core.models.archs import default_preprocess
from resnet_gui.core.models.build import build_model, load_model
from resnet_gui.core.models.checkpoint import Checkpoint, read_checkpoint, read_checkpoint_metadata, write_checkpoint
from resnet_gui.core.models.safe_load import safe_torch_load


def test_round_trip_keeps_every_documented_field(tmp_path):
    path = make_checkpoint(tmp_path / "m.pth", class_names=["cat", "dog", "owl"], metrics={"val_accuracy": 0.75})
    raw = torch.load(path, weights_only=True)
    for key in ("format", "format_version", "arch", "num_classes", "class_names", "preprocess", "state_dict",
                "metrics", "train_config", "dataset", "created", "app_version", "torch_version"):
        assert key in raw, key
    assert raw["format"] == "resnet-gui-checkpoint" and raw["format_version"] == 1
    assert set(raw["preprocess"]) >= {"input_size", "resize", "mean", "std"}
    ckpt, model = load_model(path)
    assert ckpt.class_names == ["cat", "dog", "owl"] and ckpt.metrics["val_accuracy"] == 0.75
    assert model(torch.zeros(1, 3, 32, 32)).shape == (1, 3)


def test_metadata_is_read_without_weights(tmp_path):
    path = make_checkpoint(tmp_path / "m.pth")
    meta = read_checkpoint_metadata(path)
    assert "state_dict" not in meta and meta["arch"] == "resnet18_cifar"


def test_half_precision_storage_loads_as_float32(tmp_path):
    model = build_model("resnet18_cifar", 10)
    ckpt = Checkpoint(arch="resnet18_cifar", class_names=[str(i) for i in range(10)],
                      preprocess=default_preprocess("resnet18_cifar"), state_dict=model.state_dict())
    path = write_checkpoint(ckpt, tmp_path / "h.pth", half=True)
    assert torch.load(path, weights_only=True)["state_dict"]["conv1.weight"].dtype == torch.float16
    _, loaded = load_model(path)
    assert loaded.conv1.weight.dtype == torch.float32
    assert torch.allclose(loaded.conv1.weight, model.conv1.weight, atol=1e-3)
    assert os.path.getsize(path) < 0.6 * 4 * sum(p.numel() for p in model.parameters())


def test_failed_save_leaves_the_previous_file_and_no_temporary(tmp_path, monkeypatch):
    import resnet_gui.core.models.checkpoint as checkpoint

    path = make_checkpoint(tmp_path / "m.pth", class_names=["a", "b"])
    before = path.read_bytes()

    def half_then_fail(obj, fh):
        fh.write(b"PK\x03\x04 partial data")
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(checkpoint, "write_pth", half_then_fail)
    ckpt = read_checkpoint(path)
    with pytest.raises(OSError, match="No space"):
        write_checkpoint(ckpt, path)
    monkeypatch.undo()
    assert path.read_bytes() == before
    assert read_checkpoint(path).class_names == ["a", "b"]
    assert sorted(p.name for p in tmp_path.iterdir()) == ["m.pth"]


@pytest.fixture
def good_file(tmp_path):
    return make_checkpoint(tmp_path / "good.pth")


def test_zero_byte_file(tmp_path):
    f = tmp_path / "empty.pth"
    f.write_bytes(b"")
    with pytest.raises(CheckpointError, match=r"empty\.pth.*empty \(0 bytes\)"):
        read_checkpoint(f)


def test_truncated_file(tmp_path, good_file):
    f = tmp_path / "cut.pth"
    f.write_bytes(good_file.read_bytes()[: good_file.stat().st_size // 2])
    with pytest.raises(CheckpointError, match=r"cut\.pth.*truncated"):
        read_checkpoint(f)


def test_non_zip_garbage(tmp_path):
    f = tmp_path / "text.pth"
    f.write_text("this is not a model\n" * 20)
    with pytest.raises(CheckpointError, match=r"text\.pth.*not a PyTorch checkpoint"):
        read_checkpoint(f)


def test_zip_that_is_not_torch(tmp_path):
    f = tmp_path / "other.pth"
    with zipfile.ZipFile(f, "w") as z:
        z.writestr("hello.txt", "hi")
    with pytest.raises(CheckpointError, match=r"other\.pth"):
        read_checkpoint(f)


@pytest.mark.parametrize("force_env", [False, True])
def test_pickle_with_code_is_rejected_and_never_runs(tmp_path, monkeypatch, force_env):
    if force_env:
        monkeypatch.setenv("TORCH_FORCE_NO_WEIGHTS_ONLY_LOAD", "1")
    marker = tmp_path / "PWNED"
    for f in (hostile_checkpoint(tmp_path / "evil.pth", marker), plain_pickle(tmp_path / "evil2.pth", marker)):
        with pytest.raises(CheckpointError, match=str(f.name)) as err:
            read_checkpoint(f)
        assert "refused" in str(err.value) or "not a PyTorch checkpoint" in str(err.value)
        with pytest.raises(CheckpointError):
            read_checkpoint_metadata(f)
    assert not marker.exists()


def test_wrong_shape_weights(tmp_path, good_file):
    raw = torch.load(good_file, weights_only=True)
    raw["state_dict"]["fc.weight"] = torch.zeros(10, 256)
    f = tmp_path / "shape.pth"
    torch.save(raw, f)
    with pytest.raises(CheckpointError, match=r"shape\.pth.*do not fit architecture resnet18_cifar.*fc.weight"):
        load_model(f)


def test_missing_and_extra_keys_fail_strict_loading(tmp_path, good_file):
    raw = torch.load(good_file, weights_only=True)
    raw["state_dict"].pop("layer1.0.conv1.weight")
    raw["state_dict"]["extra.weight"] = torch.zeros(1)
    f = tmp_path / "keys.pth"
    torch.save(raw, f)
    with pytest.raises(CheckpointError, match="do not fit"):
        load_model(f)


def test_only_dense_tensors_are_accepted(tmp_path, good_file):
    raw = torch.load(good_file, weights_only=True)
    raw["state_dict"]["fc.bias"] = torch.zeros(10).to_sparse()
    f = tmp_path / "sparse.pth"
    torch.save(raw, f)
    with pytest.raises(CheckpointError, match="not a dense tensor"):
        read_checkpoint(f)


def test_newer_format_version_asks_for_an_update(tmp_path, good_file):
    raw = torch.load(good_file, weights_only=True)
    raw["format_version"] = 99
    f = tmp_path / "future.pth"
    torch.save(raw, f)
    with pytest.raises(CheckpointError, match="update ResNet GUI"):
        read_checkpoint_metadata(f)


def test_checkpoints_are_read_without_torch_load_and_torch_load_always_passes_weights_only(monkeypatch, good_file):
    seen = []
    real = torch.load

    def spy(*a, **k):
        seen.append(k.get("weights_only"))
        return real(*a, **k)

    monkeypatch.setattr(pth.torch, "load", spy)
    read_checkpoint(good_file)
    read_checkpoint_metadata(good_file)
    load_model(good_file)
    assert seen == []  # pth_read.py: no torch.load at all
    safe_torch_load(good_file)  # what train-state files use
    assert seen == [True]
