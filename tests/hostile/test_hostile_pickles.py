"""Red team, part 4: crafted pickles against the hand-written, torch-free reader (core/models/pth_read.py).

Every checkpoint the app reads goes through it. Rule under test: code never runs; each crafted file ends in one
CheckpointError naming it -- with the words the torch path (safe_torch_load: torch.load(weights_only=True)) uses
for the same file, where torch's answer is a sentence -- within bounded time and memory, and never crashes the
process (a dictionary key nested three million tuples deep makes torch's own unpickler crash Python).
"""
from __future__ import annotations

import json
import pickle
import struct
import zipfile

import pytest
from hostile_helpers import no_traceback, peak_mb, run_limited

from resnet_gui.core.errors import CheckpointError
from resnet_gui.core.models.pth_read import PthFile
from resnet_gui.core.models.safe_load import safe_torch_load

P2 = b"\x80\x02"


def text(s: str) -> bytes:
    data = s.encode()
    return b"X" + struct.pack("<I", len(data)) + data


def glob(module: str, name: str) -> bytes:
    return f"c{module}\n{name}\n".encode()


def stack_glob(module: str, name: str) -> bytes:  # protocol 4
    return b"\x8c" + bytes([len(module)]) + module.encode() + b"\x8c" + bytes([len(name)]) + name.encode() + b"\x93"


def integer(n: int) -> bytes:
    if -2**31 <= n < 2**31:
        return b"J" + struct.pack("<i", n)
    data = n.to_bytes((n.bit_length() + 8) // 8, "little", signed=True)
    return b"\x8a" + bytes([len(data)]) + data


def ints(values) -> bytes:
    return b"(" + b"".join(integer(v) for v in values) + b"t"


def storage(key: str = "0", numel: int = 6, kind: str = "FloatStorage", head: str = "storage") -> bytes:
    return b"(" + text(head) + glob("torch", kind) + text(key) + text("cpu") + integer(numel) + b"tQ"


def tensor(key="0", numel=6, offset=0, size=(2, 3), stride=(3, 1)) -> bytes:
    return (glob("torch._utils", "_rebuild_tensor_v2") + b"(" + storage(key, numel) + integer(offset) + ints(size)
            + ints(stride) + b"\x89" + glob("collections", "OrderedDict") + b")Rt" + b"R")


def state_dict(*entries: bytes) -> bytes:
    return P2 + b"}(" + b"".join(text(f"w{i}") + e for i, e in enumerate(entries)) + b"u."


def archive(path, pkl: bytes, storages=None, first=None, twice=False):
    with zipfile.ZipFile(path, "w") as z:
        if first:
            z.writestr(first, b"x")
        z.writestr("archive/data.pkl", pkl)
        if twice:
            z.writestr("archive/data.pkl", pkl)
        z.writestr("archive/byteorder", "little")
        for key, data in (storages if storages is not None else {"0": bytes(24)}).items():
            z.writestr(f"archive/data/{key}", data)
        z.writestr("archive/version", "3\n")
    return path


def message(read, path) -> str:
    with pytest.raises(CheckpointError) as info:
        pth = read(path)
        if isinstance(pth, PthFile):
            pth.close()
    text_ = str(info.value)
    assert text_.startswith(f"{path}: ") and "\n" not in text_
    return text_.removeprefix(f"{path}: ")


def marker_call(marker) -> bytes:
    return text(f"touch {marker}") + b"\x85R"


# name -> (pickle, a phrase of the message); the torch path says the same words for each
SAME_AS_TORCH = {
    "posix.system": (lambda m: P2 + glob("posix", "system") + marker_call(m) + b".", "refused to load"),
    "os.system": (lambda m: P2 + glob("os", "system") + marker_call(m) + b".", "refused to load"),
    "builtins.eval": (lambda m: P2 + glob("builtins", "eval") + marker_call(m) + b".", "GLOBAL eval"),
    "__builtin__.exec (Python 2 name)": (lambda m: P2 + glob("__builtin__", "exec") + marker_call(m) + b".",
                                         "GLOBAL exec"),
    "builtins.getattr": (lambda m: P2 + glob("builtins", "getattr") + b".", "GLOBAL getattr"),
    "numpy.ones": (lambda m: P2 + glob("numpy", "ones") + b"K\x02\x85R.", "GLOBAL numpy.ones"),
    "numpy _reconstruct": (lambda m: P2 + glob("numpy.core.multiarray", "_reconstruct") + b".",
                           "GLOBAL numpy.core.multiarray._reconstruct"),
    "torch.load": (lambda m: P2 + glob("torch", "load") + text(str(m)) + b"\x85R.", "GLOBAL torch.load"),
    "a dotted attribute of an allowed class": (lambda m: P2 + glob("collections", "OrderedDict.fromkeys") + b".",
                                               "GLOBAL collections.OrderedDict.fromkeys"),
    "REDUCE of a string": (lambda m: P2 + text("a") + b"N\x85R.", "Trying to call reduce for unrecognized function"),
    "NEWOBJ of a dict": (lambda m: P2 + b"})\x81.", "Can only create new object"),
    "BUILD on a list": (lambda m: P2 + b"]}b.", "Can only build"),
    "APPEND to a dict": (lambda m: P2 + b"}K\x01a.", "Can only append to lists"),
    "SETITEM on a list": (lambda m: P2 + b"]K\x01K\x02s.", "Can only SETITEM"),
    "PERSID, not BINPERSID": (lambda m: P2 + b"P0\n.", "Unsupported operand 80"),
    "INST": (lambda m: P2 + b"(ios\nsystem\n.", "Unsupported operand 105"),
    "a persistent id that is not a storage": (lambda m: P2 + b"(" + text("module") + b"K\x01tQ.", "refused to load"),
    "OrderedDict with two arguments": (lambda m: P2 + glob("collections", "OrderedDict") + b"K\x01K\x02\x86R.",
                                       "could not be read (TypeError: expected at most 1 arguments, got 2)"),
    "the memo read before it is written": (lambda m: P2 + b"h\x05.", "not a PyTorch checkpoint"),
    "STOP on an empty stack": (lambda m: P2 + b".", "not a PyTorch checkpoint"),
    "a pickle cut in the middle of a string": (lambda m: P2 + b"X\x10\x00\x00\x00ab", "truncated or damaged"),
    "invalid UTF-8": (lambda m: P2 + b"X\x02\x00\x00\x00\xff\xfe.", "could not be read (UnicodeDecodeError"),
    "storage key with ..": (lambda m: state_dict(tensor(key="../../etc/passwd")), "truncated or damaged"),
    "storage key with a slash": (lambda m: state_dict(tensor(key="/etc/passwd")), "truncated or damaged"),
    "a storage the archive does not hold": (lambda m: state_dict(tensor(key="7")), "truncated or damaged"),
    "a huge declared numel": (lambda m: state_dict(tensor(numel=2**56, size=(2**28,), stride=(1,))),
                              "the data stored for a tensor is not the size its description claims"),
    "an offset past the storage": (lambda m: state_dict(tensor(offset=5)), "a tensor claims more data than the file"),
    "a negative offset": (lambda m: state_dict(tensor(offset=-1)), "invalid storage offset -1"),
    "a negative stride": (lambda m: state_dict(tensor(size=(2,), stride=(-1,))), "Storage size calculation overflowed"),
}
# torch refuses these too, in words of its internals ("numel: integer multiplication overflow")
BOTH_REFUSE = {
    "REDUCE of a dtype": (P2 + glob("torch", "float32") + b")R.", "Trying to call reduce"),
    "sizes whose product overflows": (state_dict(tensor(size=(2**40, 2**40), stride=(2**40, 1))),
                                      "a tensor claims more data than the file holds"),
    "a tensor of a storage it did not get": (state_dict(glob("torch._utils", "_rebuild_tensor_v2") + b"(" + text("x")
                                                        + b"K\x00)))\x89N" + b"tR"), "storage must come from the file"),
}


@pytest.mark.parametrize("case", sorted(SAME_AS_TORCH))
def test_crafted_pickles_are_refused_in_the_torch_paths_words_and_never_run(tmp_path, case):
    marker = tmp_path / "PWNED"
    make, phrase = SAME_AS_TORCH[case]
    path = archive(tmp_path / "evil.pth", make(marker))
    ours = message(PthFile, path)
    assert phrase in ours
    assert ours == message(safe_torch_load, path)
    assert not marker.exists()


@pytest.mark.parametrize("case", sorted(BOTH_REFUSE))
def test_crafted_pickles_torch_refuses_in_its_own_words(tmp_path, case):
    pkl, phrase = BOTH_REFUSE[case]
    path = archive(tmp_path / "evil.pth", pkl)
    assert phrase in message(PthFile, path)
    with pytest.raises(CheckpointError):
        safe_torch_load(path)


def test_dictionary_keys_are_plain_values(tmp_path):
    """torch lets any hashable be a key (a tensor, a tuple three million deep: hashing that one crashes Python);
    here keys and set members are plain values or short flat tuples, as every real checkpoint's are."""
    path = archive(tmp_path / "key.pth", P2 + b"}" + tensor() + b"Ns.")
    assert "a dictionary key or set member must be a plain value, not TensorRef" in message(PthFile, path)
    nested = P2 + glob("collections", "OrderedDict") + b"(](N\x85\x85\x85K\x01\x86etR."  # OrderedDict([[key, 1]])
    assert "must be a plain value, not tuple" in message(PthFile, archive(tmp_path / "nested.pth", nested))
    plain = {(1, None): {2, "b"}, "a": frozenset()}
    for protocol in (2, 4):
        fine = archive(tmp_path / f"fine{protocol}.pth", pickle.dumps({**plain, "a": None}, protocol=protocol))
        with PthFile(fine) as pth:
            assert pth.obj == {**plain, "a": None}


PROTOCOL_4 = {
    "STACK_GLOBAL builtins.eval": (b"\x80\x04" + stack_glob("builtins", "eval") + text("1") + b"\x85R.",
                                   "GLOBAL eval"),
    "STACK_GLOBAL posix.system": (b"\x80\x04" + stack_glob("posix", "system") + text("ls") + b"\x85R.",
                                  "refused to load"),
    "STACK_GLOBAL of a number": (b"\x80\x04K\x01K\x02\x93.", "refused to load"),
    "a frame longer than the data": (b"\x80\x04\x95\xff\x00\x00\x00\x00\x00\x00\x00N.", "truncated or damaged"),
}


@pytest.mark.parametrize("case", sorted(PROTOCOL_4))
def test_protocol_4_opcodes_go_through_the_same_table(tmp_path, case):
    """torch's own unpickler refuses protocol 4 outright ("Unsupported operand 149"); this reader reads it,
    with the same allow-list."""
    pkl, phrase = PROTOCOL_4[case]
    assert phrase in message(PthFile, archive(tmp_path / "p4.pth", pkl))


def deep_tuple_key(depth: int) -> bytes:
    return P2 + b"}" + b"N" + b"\x85" * depth + b"Ns."  # {((((None,),),)...): None}


BOMBS = {
    "a dictionary key nested 3,000,000 tuples deep": (deep_tuple_key(3_000_000),
                                                      "a dictionary key or set member must be a plain value"),
    "lists nested 100,000 deep": (P2 + b"]" * 100_000 + b"a" * 99_999 + b".", "nested more than 64 levels deep"),
    "a list that contains itself": (P2 + b"]q\x00h\x00a.", "a value that contains itself"),
    "10,000 open marks": (P2 + b"(" * 10_000 + b".", "nested more than 200 levels deep"),
    "8 million opcodes": (P2 + b"N" * 8_000_000 + b".", "more than 4,000,000 values"),
    "a set of a big list, made a thousand times": (
        P2 + b"]q\x00(" + b"K\x01" * 100_000 + b"e" + b"".join(glob("builtins", "set") + b"h\x00\x85R" for _ in
                                                                 range(1000)) + b".", "more than 4,000,000 values"),
    "a 4 GB memo index": (P2 + b"Nr\xff\xff\xff\xff.", "not a resnet-gui-checkpoint file"),
}


@pytest.mark.slow
def test_pickle_bombs_end_in_a_message_within_the_memory_budget(tmp_path):
    """In a subprocess under the memory limit, as the registry lists them: each one broken with its reason, the
    good model unharmed, no crash (a segfault would end the process: rc -11), well inside the budget."""
    from helpers import make_checkpoint

    home = tmp_path / "home"
    (home / "models").mkdir(parents=True)
    make_checkpoint(home / "models" / "good.pth", class_names=["a", "b"])
    names = {case: f"bomb{i}" for i, case in enumerate(BOMBS)}
    for case, (pkl, _) in BOMBS.items():
        archive(home / "models" / f"{names[case]}.pth", pkl)
    proc = run_limited(["models", "list", "--json"], home, timeout=300)
    assert proc.returncode == 0 and no_traceback(proc), proc.stderr[-2000:]
    entries = {e["name"]: e for e in json.loads(proc.stdout)}
    assert "error" not in entries["good"]
    for case, (_, phrase) in BOMBS.items():
        assert phrase in entries[names[case]]["error"], (case, entries[names[case]]["error"])
    assert peak_mb(proc) < 700


@pytest.mark.parametrize("case", ["duplicate", "first_elsewhere", "first_is_version"])
def test_odd_archive_layouts(tmp_path, case):
    pkl = state_dict(tensor())
    if case == "duplicate":  # which copy would be read is up to the zip reader: refused, by both paths
        with pytest.warns(UserWarning, match="Duplicate name"):
            path = archive(tmp_path / "twice.pth", pkl, twice=True)
        assert "holds two parts named 'archive/data.pkl'" in message(PthFile, path) == message(safe_torch_load, path)
    elif case == "first_elsewhere":  # torch names the archive's folder after its first member, as here
        path = archive(tmp_path / "other.pth", pkl, first="other/readme.txt")
        assert "no data.pkl" in message(PthFile, path)
        with pytest.raises(CheckpointError):
            safe_torch_load(path)
    else:  # data.pkl need not come first
        path = archive(tmp_path / "late.pth", pkl, first="archive/.format_version")
        with PthFile(path) as pth:
            assert list(pth.array(pth.obj["w0"]).ravel()) == [0.0] * 6
        assert safe_torch_load(path)["w0"].shape == (2, 3)


def test_tensors_outside_the_state_dict_are_checked_too(tmp_path):
    """As torch's `set_`: a tensor anywhere in the pickle (in notes, say) must fit its storage."""
    pkl = P2 + b"}(" + text("notes") + b"}(" + text("t") + tensor(offset=5) + b"uu."
    path = archive(tmp_path / "notes.pth", pkl)
    assert message(PthFile, path) == message(safe_torch_load, path)
