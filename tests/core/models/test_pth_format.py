"""PyTorch's .pth format without torch: pth_read.py reads what torch.save writes, and torch.load reads what
pth_write.py writes, bit for bit, for every dtype a checkpoint stores; the zip is laid out as torch's own."""
import io
import pickle
import zipfile
from collections import OrderedDict

import numpy as np
import pytest
import torch
import torchvision

from resnet_gui.core.errors import CheckpointError
from resnet_gui.core.models.archs import default_preprocess
from resnet_gui.core.models.build import new_model
from resnet_gui.core.models.checkpoint import Checkpoint, read_checkpoint, write_checkpoint
from resnet_gui.core.models.pth_read import PthFile
from resnet_gui.core.models.pth_write import write_pth

DTYPES = [torch.float32, torch.float16, torch.float64, torch.int64, torch.int32, torch.int16, torch.int8,
          torch.uint8, torch.bool]


def tensors(dtype):
    g = torch.Generator().manual_seed(0)
    base = (torch.randn(4, 5, 6, generator=g) * 50).to(dtype)
    return {"plain": base, "scalar": base[0, 0, 0].clone(), "empty": base[:0], "transposed": base.transpose(0, 2),
            "sliced": base[1:3, ::2, 4:], "column": base[:, 1], "vector": base.reshape(-1)}


def read_all(path):
    with PthFile(path) as pth:
        return {k: pth.array(v, k) for k, v in pth.obj.items()}


@pytest.mark.parametrize("dtype", DTYPES + [torch.bfloat16], ids=str)
def test_what_torch_saves_reads_back_identical_views_included(tmp_path, dtype):
    saved = tensors(dtype)
    torch.save(saved, tmp_path / "t.pth")  # one storage shared by views with offsets and strides
    got = read_all(tmp_path / "t.pth")
    for key, tensor in saved.items():
        want = tensor.float().numpy() if dtype == torch.bfloat16 else tensor.numpy()
        assert got[key].dtype == want.dtype and got[key].shape == want.shape, key
        assert np.array_equal(got[key], want), key


@pytest.mark.parametrize("dtype", DTYPES, ids=str)
def test_what_we_write_torch_loads_bit_identical(tmp_path, dtype):
    arrays = {k: v.numpy() for k, v in tensors(dtype).items()}
    with open(tmp_path / "w.pth", "wb") as fh:
        write_pth({"weights": arrays, "note": "x"}, fh)
    for mmap in (False, True):
        loaded = torch.load(tmp_path / "w.pth", weights_only=True, mmap=mmap)["weights"]
        for key, values in arrays.items():
            assert loaded[key].dtype == dtype and tuple(loaded[key].shape) == values.shape
            assert loaded[key].numpy().tobytes() == np.ascontiguousarray(values).tobytes(), key
    with PthFile(tmp_path / "w.pth") as pth:  # and our reader: a round trip
        assert pth.obj["note"] == "x"
        assert all(np.array_equal(pth.array(pth.obj["weights"][k], k), v) for k, v in arrays.items())


def test_written_files_are_laid_out_byte_for_byte_as_torch_save_lays_them_out():
    """Same records in the same order at the same offsets, 64-byte aligned, the same pickle: only the
    serialization id (a hash torch computes from its C++ hash tables) differs."""
    g = torch.Generator().manual_seed(1)
    state = OrderedDict(w=torch.randn(3, 4, generator=g), n=torch.tensor(5), e=torch.zeros(0, 3),
                        h=torch.ones(5, dtype=torch.float16), b=torch.tensor([True, False]), c=torch.ones(2, 2, 2, 2))
    obj = {"format": "x", "class_names": ["0", "cat"], "numbers": [1, 300, 70000, -5, 2**40, 1.5, None, True],
           "tuple": (1, 2, 3, 4), "big": list(range(2500)), "state_dict": state}
    theirs = io.BytesIO()
    torch.save(obj, theirs)
    ours = io.BytesIO()
    write_pth({**obj, "state_dict": OrderedDict((k, v.numpy()) for k, v in state.items())}, ours)
    a, b = zipfile.ZipFile(theirs), zipfile.ZipFile(ours)
    fields = ("filename", "header_offset", "file_size", "compress_size", "flag_bits", "compress_type")
    assert [[getattr(i, f) for f in fields] for i in a.infolist()] == [[getattr(i, f) for f in fields]
                                                                      for i in b.infolist()]
    for info in a.infolist():
        if not info.filename.endswith("serialization_id"):
            assert a.read(info.filename) == b.read(info.filename), info.filename
    assert len(theirs.getvalue()) == len(ours.getvalue())


def test_protocol_4_and_the_legacy_format_are_read(tmp_path):
    state = {"w": torch.arange(6.0).reshape(2, 3), "v": torch.arange(10)[2:5], "h": torch.ones(2, dtype=torch.half)}
    torch.save(state, tmp_path / "p4.pth", pickle_protocol=4)  # torch's own weights-only load refuses this one
    torch.save(state, tmp_path / "legacy.pth", _use_new_zipfile_serialization=False)  # before PyTorch 1.6
    for name in ("p4.pth", "legacy.pth"):
        got = read_all(tmp_path / name)
        assert all(np.array_equal(got[k], v.numpy()) for k, v in state.items()), name


def test_a_real_model_state_dict_with_parameters_and_metadata(tmp_path):
    model = torchvision.models.resnet18(num_classes=3)
    torch.save({"model": model.state_dict(), "fc": model.fc.weight, "epoch": 3}, tmp_path / "m.pth")
    with PthFile(tmp_path / "m.pth") as pth:  # the OrderedDict's _metadata (a BUILD) and a Parameter
        state = {k: pth.array(v, k) for k, v in pth.obj["model"].items()}
        assert pth.obj["epoch"] == 3 and isinstance(pth.obj["model"], OrderedDict)
        assert np.array_equal(pth.array(pth.obj["fc"]), model.fc.weight.detach().numpy())
    assert all(np.array_equal(state[k], v.numpy()) for k, v in model.state_dict().items())


def test_a_big_endian_file_reads_as_torch_reads_it(tmp_path):
    """torch.load byte-swaps storages of a file marked 'big'; so does pth_read."""
    state = {"f": torch.randn(3, 4), "h": torch.randn(5).half(), "i": torch.arange(7), "b": torch.tensor([True])}
    src = tmp_path / "little.pth"
    torch.save(state, src)
    dst = tmp_path / "big.pth"
    with zipfile.ZipFile(src) as zin, zipfile.ZipFile(dst, "w") as zout:
        keys = {f"little/data/{i}": v for i, v in enumerate(state.values())}
        for info in zin.infolist():
            data = zin.read(info)
            if info.filename.endswith("byteorder"):
                data = b"big"
            elif info.filename in keys:
                data = keys[info.filename].numpy().byteswap().tobytes()
            zout.writestr(info.filename, data)
    theirs = torch.load(dst, weights_only=True)
    ours = read_all(dst)
    for key, tensor in state.items():
        assert np.array_equal(ours[key], tensor.numpy()) and np.array_equal(theirs[key].numpy(), tensor.numpy())


def test_an_unknown_byte_order_is_refused_clearly(tmp_path):
    path = tmp_path / "odd.pth"
    torch.save({"w": torch.zeros(2)}, path)
    with zipfile.ZipFile(path) as zin, zipfile.ZipFile(tmp_path / "x.pth", "w") as zout:
        for info in zin.infolist():
            zout.writestr(info.filename, b"middle" if info.filename.endswith("byteorder") else zin.read(info))
    with pytest.raises(CheckpointError, match=r"x\.pth: could not be read \(ValueError: Unknown endianness type"):
        PthFile(tmp_path / "x.pth")


@pytest.mark.parametrize("half", [False, True])
def test_checkpoint_round_trip_in_both_directions(tmp_path, half):
    """Torch-built weights written by write_checkpoint: torch.load sees them (float16 when half), read_checkpoint
    gives float32 arrays equal to them (exactly, or to float16 precision)."""
    model = new_model("resnet18_cifar", 3)
    fam = {"method": "mahalanobis", "class_means": torch.randn(3, 512), "precision": torch.eye(512),
           "quantiles": torch.linspace(0, 5, 201), "threshold": 0.05, "fitted_on": "x"}
    ckpt = Checkpoint(arch="resnet18_cifar", class_names=["a", "b", "c"],
                      preprocess=default_preprocess("resnet18_cifar"), state_dict=model.state_dict(), familiarity=fam)
    path = write_checkpoint(ckpt, tmp_path / "m.pth", half=half)
    raw = torch.load(path, weights_only=True)
    back = read_checkpoint(path)
    for key, tensor in model.state_dict().items():
        stored = tensor.half() if half and tensor.is_floating_point() else tensor
        assert torch.equal(raw["state_dict"][key], stored), key
        assert back.state_dict[key].dtype == (np.float32 if tensor.is_floating_point() else np.int64)
        assert np.array_equal(back.state_dict[key], stored.float().numpy() if tensor.is_floating_point()
                              else stored.numpy()), key
    assert back.familiarity_error is None and np.array_equal(back.familiarity["precision"], np.eye(512))
    assert raw["notes"].get("weights_dtype") == ("float16" if half else None)
    again = torch.load(write_checkpoint(back, tmp_path / "again.pth", half=half), weights_only=True)
    assert all(torch.equal(again["state_dict"][k], v) for k, v in raw["state_dict"].items())  # numpy in: the same
    assert {k: v for k, v in again.items() if k not in ("state_dict", "familiarity")} == \
        {k: v for k, v in raw.items() if k not in ("state_dict", "familiarity")}


def test_writer_refuses_what_a_weights_only_load_could_not_read():
    for bad in ({"x": object()}, {1: "int key"}, {"t": np.zeros(2, dtype=np.complex64)}, {"s": {1, 2}}):
        with pytest.raises(TypeError):
            write_pth(bad, io.BytesIO())
    assert pickle.loads(b"\x80\x02K\x05.") == 5  # (the stdlib agrees with the opcodes used)
