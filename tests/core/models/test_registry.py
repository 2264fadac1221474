import json

import pytest
import torch
from helpers import make_checkpoint

from resnet_gui.core.errors import RegistryError
from resnet_gui.core.models.registry import Registry
from resnet_gui.core.paths import models_dir


@pytest.fixture
def registry(cifar_checkpoint_file):
    reg = Registry()
    for name in ("alpha", "beta"):
        (reg.root / f"{name}.pth").write_bytes(cifar_checkpoint_file.read_bytes())
    return reg


def test_registry_lives_under_resnet_gui_home(isolated_home):
    assert Registry().root == isolated_home / "models" == models_dir()


def test_list_reads_metadata(registry):
    entries = registry.list()
    assert [e.name for e in entries] == ["alpha", "beta"]
    assert entries[0].meta["arch"] == "resnet18_cifar" and entries[0].val_accuracy == 0.5
    assert "state_dict" not in entries[0].meta


def test_broken_file_is_listed_with_its_reason_and_others_keep_working(registry):
    (registry.root / "broken.pth").write_bytes(b"PK\x03\x04 not really")
    (registry.root / "empty.pth").write_bytes(b"")
    entries = {e.name: e for e in registry.list()}
    assert entries["broken"].broken and "truncated" in entries["broken"].error
    assert entries["empty"].broken and "empty" in entries["empty"].error
    assert not entries["alpha"].broken
    assert registry.default_name() in ("alpha", "beta")
    with pytest.raises(RegistryError):
        registry.set_default("broken")


def test_rename_remove_default(registry):
    registry.set_default("beta")
    assert registry.default_name() == "beta"
    registry.rename("beta", "gamma")
    assert registry.names() == ["alpha", "gamma"]
    assert registry.default_name() == "gamma"
    assert json.loads((registry.root / "registry.json").read_text())["default"] == "gamma"
    with pytest.raises(RegistryError, match="already exists"):
        registry.rename("alpha", "gamma")
    registry.remove("gamma")
    assert registry.names() == ["alpha"]
    with pytest.raises(RegistryError, match="no model named"):
        registry.get("gamma")


@pytest.mark.parametrize("bad", ["../evil", "a/b", "", ".hidden", "x" * 200])
def test_names_cannot_escape_the_folder(registry, bad):
    with pytest.raises(RegistryError):
        registry.rename("alpha", bad)


def test_import_keeps_unique_names_and_details(registry, cifar_checkpoint_file):
    e1 = registry.import_file(cifar_checkpoint_file)
    with pytest.raises(RegistryError, match="tiny.pth is already in the registry as 'tiny'"):
        registry.import_file(cifar_checkpoint_file)  # the same file twice is said, not silently duplicated
    e2 = registry.import_file(cifar_checkpoint_file, allow_duplicate=True)
    assert (e1.name, e2.name) == ("tiny", "tiny-2")
    details = registry.details("tiny")
    assert details["arch"] == "resnet18_cifar" and details["num_classes"] == 10
    assert details["preprocess"]["input_size"] == 32
    with pytest.raises(RegistryError, match="already exists"):
        registry.import_file(cifar_checkpoint_file, name="alpha", allow_duplicate=True)


def test_resolve_names_files_and_default(registry, cifar_checkpoint_file):
    assert registry.resolve("alpha") == registry.root / "alpha.pth"
    assert registry.resolve(str(cifar_checkpoint_file)) == cifar_checkpoint_file
    registry.set_default("alpha")
    assert registry.resolve(None).name == "alpha.pth"
    with pytest.raises(RegistryError, match="missing.pth: file not found"):
        registry.resolve("/nope/missing.pth")


def test_empty_registry_resolve_explains_what_to_do():
    with pytest.raises(RegistryError, match="no usable model"):
        Registry().resolve(None)


def test_listing_reads_the_metadata_and_the_classifier_head_only(registry, monkeypatch):
    from resnet_gui.core.models.pth_read import PthFile

    read, loads = [], []
    real = PthFile.array

    def spy(self, ref, key="tensor"):
        read.append(key)
        return real(self, ref, key)

    monkeypatch.setattr(PthFile, "array", spy)
    monkeypatch.setattr(torch, "load", lambda *a, **k: loads.append(a))
    Registry._cache.clear()
    assert [e.name for e in registry.list() if not e.broken] == ["alpha", "beta"]
    assert sorted(set(read)) == ["fc.bias", "fc.weight"] and not loads


def test_editing_class_names_keeps_a_half_precision_file_small(registry, tmp_path):
    from resnet_gui.core.models.checkpoint import read_checkpoint, write_checkpoint

    ckpt = read_checkpoint(make_checkpoint(tmp_path / "m.pth", class_names=["a", "b"]))
    write_checkpoint(ckpt, registry.root / "half.pth", half=True)
    before = (registry.root / "half.pth").stat().st_size
    entry = registry.update("half", class_names=["cat", "dog"])
    assert entry.meta["class_names"] == ["cat", "dog"]
    assert abs(entry.path.stat().st_size - before) < 0.1 * before
