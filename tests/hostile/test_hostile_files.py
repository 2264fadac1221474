"""Red team, part 2: broken, hostile or unlucky files in the registry, and what the commands make of them.

Rule under test: one bad file is reported for that file alone; every other model keeps working, listing
never fails as a whole, and every failure is a sentence naming the file, never a traceback.
"""
from __future__ import annotations

import json
import os
import re
import stat
import threading
import zipfile

import pytest
import torch
from helpers import make_checkpoint, write_image
from hostile_helpers import torch_read_checkpoint, torch_read_state_dict

from resnet_gui.cli import main
from resnet_gui.core.atomic import remove_stale_temporaries
from resnet_gui.core.errors import CheckpointError, RegistryError
from resnet_gui.core.inference.prediction import Prediction, write_csv
from resnet_gui.core.models.checkpoint import read_checkpoint, read_checkpoint_metadata
from resnet_gui.core.models.registry import Registry
from resnet_gui.core.names import validate_name


def run(capsys, *args):
    code = main(list(args))
    out, err = capsys.readouterr()
    return code, out, err


@pytest.fixture
def models(isolated_home):
    folder = isolated_home / "models"
    folder.mkdir(parents=True, exist_ok=True)
    make_checkpoint(folder / "good.pth", class_names=["a", "b", "c"])
    return folder


def tamper(folder, name, change):
    """A copy of good.pth with its metadata changed by `change(obj)`."""
    obj = torch.load(folder / "good.pth", weights_only=True)
    change(obj)
    torch.save(obj, folder / f"{name}.pth")
    return folder / f"{name}.pth"


def _self_ref(obj):
    loop = []
    loop.append(loop)
    obj["notes"] = {"loop": loop}


BAD_METADATA = {
    "arch_is_a_list": lambda o: o.update(arch=["resnet18"]),
    "input_size_inf": lambda o: o["preprocess"].update(input_size=float("inf")),
    "input_size_huge": lambda o: o["preprocess"].update(input_size=3000),
    "mean_nan": lambda o: o["preprocess"].update(mean=[float("nan"), 0.5, 0.5]),
    "num_classes_bool": lambda o: o.update(num_classes=True),
    "format_version_float": lambda o: o.update(format_version=1.0),
    "format_version_future": lambda o: o.update(format_version=99),
    "class_names_empty_string": lambda o: o.update(class_names=["a", "", "c"]),
    "weights_wrong_arch": lambda o: o.update(arch="resnet34"),
    "weights_missing_key": lambda o: o["state_dict"].pop("layer1.0.conv1.weight"),
    "weights_nan": lambda o: o["state_dict"]["fc.bias"].fill_(float("nan")),
    "notes_self_reference": _self_ref,
}
ODD_BUT_USABLE = {
    "created_int": lambda o: o.update(created=12345),
    "created_list": lambda o: o.update(created=["2020"]),
    "val_accuracy_huge_int": lambda o: o["metrics"].update(val_accuracy=10**400),
    "val_accuracy_nan": lambda o: o["metrics"].update(val_accuracy=float("nan")),
    "notes_tensor": lambda o: o.update(notes={"t": torch.zeros(3, 3)}),
    "notes_bytes": lambda o: o.update(notes={"b": b"\x00\x01"}),
    "metrics_not_a_dict": lambda o: o.update(metrics=[1, 2, 3]),
}


@pytest.mark.parametrize("case", sorted(BAD_METADATA))
def test_a_bad_file_is_listed_as_broken_and_the_rest_keeps_working(models, capsys, tmp_path, case):
    tamper(models, case, BAD_METADATA[case])
    code, out, err = run(capsys, "models", "list", "--json")
    assert code == 0 and "Traceback" not in err
    entries = {e["name"]: e for e in json.loads(out)}
    assert "error" not in entries["good"] and entries[case]["error"]
    registry = Registry()
    assert registry.default_name() == "good"  # a broken file can never become the default
    with pytest.raises(RegistryError, match="cannot be the default"):
        registry.set_default(case)
    code, out, _ = run(capsys, "predict", str(write_image(tmp_path / "x.png")), "--json")
    assert code == 0 and json.loads(out)["label"] in ("a", "b", "c")


@pytest.mark.parametrize("case", sorted(BAD_METADATA))
def test_a_bad_file_gets_the_same_message_from_our_reader_and_from_torch_load(models, case):
    """Every checkpoint is read by our own reader (pth_read.py); the torch path (torch.load, then the same checks)
    must refuse the same files in the same words, so the reader lost none of its guarantees."""
    path = tamper(models, case, BAD_METADATA[case])
    messages = {}
    for reader, read in (("ours", read_checkpoint), ("metadata only", read_checkpoint_metadata),
                         ("torch.load", torch_read_checkpoint)):
        with pytest.raises(CheckpointError) as info:
            read(path)
        messages[reader] = str(info.value)
    # the same sentence; the details in brackets may be more precise in ours ("a value that contains itself"
    # where torch.load's objects can only be found "nested more than 32 levels deep")
    assert len({re.sub(r" \([^()]*\)", "", m) for m in messages.values()}) == 1, messages
    assert messages["ours"].startswith(f"{path}: ") and "\n" not in messages["ours"]


@pytest.mark.parametrize("case", sorted(ODD_BUT_USABLE))
def test_odd_metadata_values_are_made_plain_and_the_model_works(models, capsys, tmp_path, case):
    tamper(models, case, ODD_BUT_USABLE[case])
    for args in (("models", "list"), ("models", "list", "--json"), ("models", "show", case, "--json")):
        code, out, err = run(capsys, *args)
        assert code == 0 and "Traceback" not in err, err
        if "--json" in args:
            json.loads(out, parse_constant=lambda c: pytest.fail(f"bare {c} in JSON"))
    code, out, _ = run(capsys, "predict", str(write_image(tmp_path / "x.png")), "--model", case, "--json")
    assert code == 0 and json.loads(out)["label"] in ("a", "b", "c")
    acc = Registry().get(case).val_accuracy
    assert acc is None or 0 <= acc <= 1


def test_a_symlink_loop_and_a_folder_named_like_a_model_are_reported_alone(models, capsys):
    os.symlink("loop.pth", models / "loop.pth")
    (models / "folder.pth").mkdir()
    code, out, _ = run(capsys, "models", "list", "--json")
    entries = {e["name"]: e for e in json.loads(out)}
    assert code == 0 and "error" not in entries["good"]
    assert "cannot be read" in entries["loop"]["error"] and "not a regular file" in entries["folder"]["error"]


@pytest.mark.parametrize("content", ["[" * 200_000 + "]" * 200_000, '{"default": ["x"]}', "not json", '"text"',
                                     '{"default": "missing-model"}'])
def test_a_damaged_registry_index_is_ignored(models, capsys, content):
    (models / "registry.json").write_text(content)
    code, out, err = run(capsys, "models", "list")
    assert code == 0 and "good" in out and "Traceback" not in err
    assert Registry().default_name() == "good"


def test_a_file_dropped_in_under_an_odd_name_is_usable_from_the_cli(models, capsys, tmp_path):
    (models / "good.pth").rename(models / "my model (v2).pth")
    code, out, _ = run(capsys, "predict", str(write_image(tmp_path / "x.png")), "--model", "my model (v2)", "--json")
    assert code == 0 and json.loads(out)["label"] in ("a", "b", "c")
    assert run(capsys, "models", "show", "my model (v2)")[0] == 0
    assert run(capsys, "models", "rename", "my model (v2)", "tidy")[0] == 0
    assert Registry().names() == ["tidy"]


@pytest.mark.parametrize("name", ["../escape", "/abs/path", "a/b", ".hidden", "CON", "nul", "aux.txt", "COM1",
                                  "lpt9.pth", "x" * 101, "trailing.", "", "tab\there"])
def test_names_that_could_leave_the_folder_or_break_windows_are_refused(models, name):
    with pytest.raises(RegistryError):
        validate_name(name)
    ckpt = read_checkpoint(models / "good.pth")
    with pytest.raises(RegistryError):
        Registry().add(ckpt, name)
    assert sorted(p.name for p in models.iterdir()) == ["good.pth"]


def test_generated_names_are_shortened(models, tmp_path):
    src = make_checkpoint(tmp_path / ("v" * 150 + ".pth"))
    entry = Registry().import_file(src)
    assert len(entry.name) <= 100 and entry.name.startswith("vvv")


def test_concurrent_imports_under_one_name_have_one_winner(models, tmp_path):
    sources = [make_checkpoint(tmp_path / f"s{i}.pth", seed=i) for i in range(4)]
    outcomes: list[str] = []
    barrier = threading.Barrier(len(sources))

    def one(src):
        barrier.wait()
        try:
            Registry().import_file(src, name="same")
            outcomes.append("ok")
        except RegistryError as exc:
            outcomes.append(str(exc))

    threads = [threading.Thread(target=one, args=(s,)) for s in sources]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert outcomes.count("ok") == 1 and all("already exists" in o for o in outcomes if o != "ok")
    assert not [p for p in models.iterdir() if p.name.startswith(".")]


def test_stale_temporaries_of_a_killed_save_are_removed_at_start(models):
    stale, fresh = models / ".good.pth.abc123.tmp", models / ".good.pth.def456.tmp"
    for p in (stale, fresh):
        p.write_bytes(b"partial")
    old = os.path.getmtime(stale) - 3600
    os.utime(stale, (old, old))
    assert remove_stale_temporaries(models) == 1
    assert not stale.exists() and fresh.exists()  # a recent one may belong to a save in progress


def test_created_files_respect_the_umask(models, tmp_path, capsys):
    previous = os.umask(0o022)
    try:
        import resnet_gui.core.atomic as atomic

        atomic._umask = None
        out = tmp_path / "results.csv"
        write_csv([Prediction(path="x.png", label="a", confidence=0.5, top_k=[("a", 0.5)])], out, top_k=1)
        Registry().set_default("good")
        entry = Registry().import_file(make_checkpoint(tmp_path / "m.pth", seed=3))
        for path in (out, models / "registry.json", entry.path):
            assert stat.S_IMODE(path.stat().st_mode) == 0o644, path
    finally:
        os.umask(previous)
        atomic._umask = None


@pytest.mark.parametrize("label", ["=HYPERLINK(\"http://evil\")", "+1+1", "-2", "@SUM(A1)", "nul\x00byte"])
def test_csv_cells_cannot_become_formulas(tmp_path, label):
    import csv

    out = tmp_path / "r.csv"
    write_csv([Prediction(path=f"{label}.png", label=label, confidence=0.9, top_k=[(label, 0.9)])], out, top_k=1)
    rows = list(csv.reader(out.read_text(encoding="utf-8").splitlines()))
    for cell in (rows[1][0], rows[1][1], rows[1][4]):
        assert cell[:1] not in ("=", "+", "-", "@") and "\x00" not in cell


def test_terminal_output_escapes_control_characters(models, capsys, tmp_path):
    tamper(models, "ansi", lambda o: o.update(class_names=["\x1b[2Jclear", "b\u202eevil", "c"]))
    code, out, _ = run(capsys, "predict", str(write_image(tmp_path / "x.png")), "--model", "ansi", "--top-k", "3")
    assert code == 0 and "\x1b" not in out and "\u202e" not in out and "\\x1b[2Jclear" in out


def test_top_k_is_capped_and_a_zero_batch_is_a_usage_message(models, capsys, tmp_path):
    img = write_image(tmp_path / "x.png")
    out_csv = tmp_path / "r.csv"
    code, _, _ = run(capsys, "predict", str(img), "--top-k", "20000000", "--csv", str(out_csv))
    assert code == 0 and out_csv.stat().st_size < 1000
    with pytest.raises(SystemExit) as exit_info:
        main(["predict", str(img), "--batch-size", "0"])
    assert exit_info.value.code == 2 and "out of range" in capsys.readouterr().err


def test_a_fifo_is_refused_instead_of_hanging(models, capsys, tmp_path):
    fifo = tmp_path / "pipe.png"
    os.mkfifo(fifo)
    code, out, _ = run(capsys, "predict", str(fifo))
    assert code == 1 and "not a regular file" in out


def test_deeply_nested_folders_end_in_a_message(models, capsys, tmp_path):
    deep = tmp_path / "deep"
    path = deep
    deep.mkdir()
    for _ in range(1200):  # os.makedirs would itself recurse too deeply
        path = path / "d"
        path.mkdir()
    write_image(path / "x.png")
    try:
        code, _, err = run(capsys, "predict", str(deep))
        assert code == 2 and "nest more than 64 levels" in err and "Traceback" not in err
    finally:  # remove bottom-up: pytest's own clean-up (shutil.rmtree) recurses and would fail later
        (path / "x.png").unlink()
        while path != deep:
            path.rmdir()
            path = path.parent


def test_json_output_never_holds_a_bare_nan():
    pred = Prediction(path="x", label="a", confidence=float("nan"), top_k=[("a", float("nan"))])
    text = json.dumps(pred.to_json(), allow_nan=False)
    assert json.loads(text)["confidence"] is None


@pytest.mark.parametrize("reader", ["ours", "torch.load"])
@pytest.mark.parametrize("case,needle", [
    ("empty_zip", "empty zip archive"),
    ("zip_without_pickle", "no data.pkl"),
    ("quantized", "quantized"),
    ("meta", "meta"),
    ("nested", "nested"),
])
def test_misleading_messages_now_say_what_is_wrong(tmp_path, case, needle, reader):
    path = tmp_path / f"{case}.pth"
    if case == "empty_zip":
        zipfile.ZipFile(path, "w").close()
    elif case == "zip_without_pickle":
        with zipfile.ZipFile(path, "w") as z:
            z.writestr("archive/readme.txt", "hello")
    else:
        sd = torch.load(make_checkpoint(tmp_path / "m.pth"), weights_only=True)["state_dict"]
        if case == "quantized":
            sd["fc.bias"] = torch.quantize_per_tensor(torch.zeros(10), 0.1, 0, torch.qint8)
        elif case == "meta":
            sd["fc.bias"] = torch.empty(10, device="meta")
        else:
            sd["fc.bias"] = torch.nested.nested_tensor([torch.zeros(2), torch.zeros(3)])
        try:
            torch.save(sd, path)
        except (RuntimeError, NotImplementedError):
            pytest.skip(f"this torch cannot save a {case} tensor")
    from resnet_gui.core.models.safe_load import load_state_dict_file

    with pytest.raises(CheckpointError) as info:
        (load_state_dict_file if reader == "ours" else torch_read_state_dict)(path)
    assert needle in str(info.value) and "Python objects or code" not in str(info.value)
    assert "torch.strided" not in str(info.value)


def test_format_version_one_point_zero_is_not_called_newer(models):
    path = tamper(models, "v10", lambda o: o.update(format_version=1.0))
    with pytest.raises(CheckpointError) as info:
        read_checkpoint_metadata(path)
    assert "newer" not in str(info.value) and "whole number" in str(info.value)


@pytest.mark.skipif(not os.path.isdir("/proc/self"), reason="needs Linux's /proc (a folder no file can be made in)")
def test_a_failed_write_names_the_file_asked_for_not_its_hidden_temporary(tmp_path):
    """Exporting to /proc/x.pt said "A file operation failed (/proc/.x.pt.u_obiv_m.tmp): …"."""
    from resnet_gui.core.atomic import atomic_write, atomic_write_bytes
    from resnet_gui.core.errors import user_message

    with pytest.raises(OSError) as err:
        atomic_write_bytes("/proc/x.pt", b"data")
    assert err.value.filename == "/proc/x.pt" and "(/proc/x.pt)" in user_message(err.value)
    (tmp_path / "folder.pt").mkdir()  # replacing a folder with the file: the folder is named
    with pytest.raises(OSError) as err:
        atomic_write_bytes(tmp_path / "folder.pt", b"data")
    assert err.value.filename == str(tmp_path / "folder.pt")
    assert [p.name for p in tmp_path.iterdir()] == ["folder.pt"]  # no temporary file left behind
    atomic_write_bytes(tmp_path / "ok.pt", b"data")
    with pytest.raises(FileExistsError):  # exclusive creation keeps its error type
        atomic_write(tmp_path / "ok.pt", lambda fh: fh.write(b"x"), overwrite=False)
