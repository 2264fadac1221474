"""Red team, part 6: the ONNX Runtime engine. The graph cache in the app's cache folder (anything may be found
there: garbage, a FIFO, a link to /dev/zero, a sparse file of gigabytes, another model's graph, a file where the
folder should be; a checkpoint rewritten in place with its old size and time; two processes filling it at once)
and the int8 version a checkpoint carries (a damaged graph, another model's graph, a record that says "kept" in
a way that is not true)."""
from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch
from helpers import make_checkpoint, write_image
from hostile_helpers import no_traceback, run_limited


def open_ort(source, precision="fp32"):
    from resnet_gui.core.engines.choose import open_predictor

    return open_predictor(str(source), engine="onnxruntime", device="cpu", precision=precision)


def label_of(predictor, image: Path) -> str:
    return next(predictor.predict_paths([str(image)]))[0].label


def graphs(home: Path) -> list[Path]:
    return sorted((home / "cache" / "graphs").glob("*.onnx"))


@pytest.fixture
def cached(isolated_home):
    """(model favouring class c3, an image, the one cache entry its graph was stored under)."""
    model = make_checkpoint(isolated_home / "m.pth", favour=3)
    image = write_image(isolated_home / "x.png")
    assert label_of(open_ort(model), image) == "c3"
    (entry,) = graphs(isolated_home)
    return model, image, entry


def entry_is_sound(model: Path, entry: Path) -> bool:
    """The entry now holds this model's graph: opening the model reads it without building anything."""
    from unittest import mock

    with mock.patch("resnet_gui.core.inference.onnx_graph.build_graph", side_effect=AssertionError("built")):
        open_ort(model)
    return entry.is_file() and not entry.is_symlink()


# ---- the graph cache ---------------------------------------------------------------------------------------
@pytest.mark.parametrize("kind", ["fifo", "link_to_dev_zero", "sparse_3_gib"])
def test_a_cache_entry_that_is_not_a_graph_sized_regular_file_is_not_read(cached, isolated_home, kind):
    model, image, entry = cached
    entry.unlink()
    if kind == "fifo":
        os.mkfifo(entry)  # was opened for reading with no writer: predict hung
    elif kind == "link_to_dev_zero":
        entry.symlink_to("/dev/zero")  # was read to the end: "ran out of memory"
    else:
        with open(entry, "wb") as fh:
            fh.truncate(3 << 30)  # was read whole: 3 GiB
    proc = run_limited(["predict", str(image), "--model", str(model), "--engine", "onnxruntime",
                        "--precision", "fp32"], isolated_home, timeout=120)
    assert proc.returncode == 0 and proc.stdout.split()[1] == "c3", proc.stderr[-2000:]
    assert no_traceback(proc)
    assert entry_is_sound(model, entry)  # replaced by the graph built again


@pytest.mark.parametrize("kind", ["garbage", "truncated", "another_models_graph"])
def test_a_damaged_or_foreign_cache_entry_is_built_again_and_replaced(cached, isolated_home, kind):
    model, image, entry = cached
    if kind == "garbage":
        entry.write_bytes(os.urandom(4096))  # was built again, but never stored again
    elif kind == "truncated":
        entry.write_bytes(entry.read_bytes()[: entry.stat().st_size // 2])
    else:  # another model's graph under this model's name: its answers came out under these class names
        other = make_checkpoint(isolated_home / "other.pth", class_names=["a", "b", "c", "d"], favour=1)
        open_ort(other)
        (foreign,) = [e for e in graphs(isolated_home) if e != entry]
        os.replace(foreign, entry)
    assert label_of(open_ort(model), image) == "c3"
    assert entry_is_sound(model, entry)


def test_a_checkpoint_rewritten_in_place_with_its_old_size_and_time_gets_its_own_graph(cached, isolated_home):
    """The key was the file's path, size, time and inode: new weights written into the same file (cp over it,
    a restored backup) with the old modification time got the old model's graph, so the old answers."""
    model, image, _ = cached
    newer = make_checkpoint(isolated_home / "newer.pth", favour=5, seed=1)
    before = model.stat()
    assert newer.stat().st_size == before.st_size  # same architecture and classes: the same size
    with open(model, "r+b") as fh:  # in place: same inode
        fh.write(newer.read_bytes())
    os.utime(model, ns=(before.st_atime_ns, before.st_mtime_ns))
    assert (model.stat().st_ino, model.stat().st_mtime_ns) == (before.st_ino, before.st_mtime_ns)
    assert label_of(open_ort(model), image) == "c5"


def test_a_cache_folder_that_cannot_be_made_only_costs_speed(isolated_home):
    model = make_checkpoint(isolated_home / "m.pth", favour=3)
    image = write_image(isolated_home / "x.png")
    (isolated_home / "cache").mkdir()
    (isolated_home / "cache" / "graphs").write_text("a file where the folder goes")  # was FileExistsError
    assert label_of(open_ort(model), image) == "c3"


def test_two_processes_filling_the_cache_at_once_both_answer_and_leave_one_sound_entry(isolated_home):
    model = make_checkpoint(isolated_home / "m.pth", favour=3)
    image = write_image(isolated_home / "x.png")
    env = dict(os.environ, RESNET_GUI_HOME=str(isolated_home))
    command = [sys.executable, "-m", "resnet_gui", "predict", str(image), "--model", str(model),
               "--engine", "onnxruntime", "--precision", "fp32"]
    procs = [subprocess.Popen(command, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
             for _ in range(2)]
    outs = [p.communicate(timeout=180) for p in procs]
    assert [p.returncode for p in procs] == [0, 0], [err[-1000:] for _, err in outs]
    assert all(out.split()[1] == "c3" for out, _ in outs)
    (entry,) = graphs(isolated_home)
    assert entry_is_sound(model, entry)
    assert not [f for f in entry.parent.iterdir() if f.name.endswith(".tmp")]


# ---- the int8 version a checkpoint carries ------------------------------------------------------------------
@pytest.fixture(scope="module")
def demo_object():
    from resnet_gui.core.models.demo import demo_checkpoint_path

    obj = torch.load(demo_checkpoint_path(), weights_only=True, map_location="cpu")
    assert obj["int8"]["kept"] is True and obj["int8_model"].numel() > 0
    return obj


def other_int8_graph(obj, tmp_path) -> torch.Tensor:
    """A verified-looking int8 graph of another model: 4 classes instead of the demo's 10."""
    import numpy as np

    from resnet_gui.core.inference.int8 import quantize
    from resnet_gui.core.inference.onnx_graph import build_graph
    from resnet_gui.core.models.checkpoint import read_checkpoint
    from resnet_gui.core.models.preprocess import Preprocess

    ckpt = read_checkpoint(make_checkpoint(tmp_path / "four.pth", class_names=["a", "b", "c", "d"], favour=1))
    state = {k: np.asarray(v, dtype=np.float32) for k, v in ckpt.state_dict.items()}
    graph = build_graph(ckpt.arch, state, 4, Preprocess.from_dict(obj["preprocess"])).SerializeToString()
    calibration = np.random.default_rng(0).integers(0, 256, (16, 32, 32, 3), dtype=np.uint8)
    return torch.frombuffer(bytearray(quantize(graph, calibration)), dtype=torch.uint8)


INT8_LIES = {
    "garbage": lambda obj, tmp: obj.update(int8_model=torch.frombuffer(bytearray(os.urandom(5000)), dtype=torch.uint8)),
    "truncated": lambda obj, tmp: obj.update(int8_model=obj["int8_model"][: obj["int8_model"].numel() // 2].clone()),
    "another_models_graph": lambda obj, tmp: obj.update(int8_model=other_int8_graph(obj, tmp)),
    "kept_is_a_string": lambda obj, tmp: obj["int8"].update(kept="no"),
    # torch.save by another program: new weights beside the old int8 graph, which would answer for the old ones
    "weights_rewritten_elsewhere": lambda obj, tmp: obj.update(
        state_dict={**obj["state_dict"], "fc.bias": obj["state_dict"]["fc.bias"] + 0.5}),
}


@pytest.mark.parametrize("lie", sorted(INT8_LIES))
def test_an_int8_version_that_cannot_be_this_models_only_loses_the_int8_version(demo_object, isolated_home,
                                                                                 tmp_path, lie):
    """precision auto: the model classifies in fp32 (a damaged graph stopped the model from loading at all;
    another model's graph answered under the demo's class names; "kept": "no" counted as kept); precision int8:
    one sentence saying what is wrong and to use fp32."""
    from resnet_gui import resources
    from resnet_gui.core.errors import ModelError

    obj = {**demo_object, "int8": dict(demo_object["int8"])}
    INT8_LIES[lie](obj, tmp_path)
    path = tmp_path / "lying.pth"
    torch.save(obj, path)
    sample = resources.path("samples/digit_3_1332.png")
    predictor = open_ort(path, precision="auto")
    assert predictor.backend.precision == "fp32"
    assert label_of(predictor, sample) == label_of(open_ort(path, precision="fp32"), sample)
    with pytest.raises(ModelError, match="use --precision fp32"):
        open_ort(path, precision="int8")


def test_the_int8_details_say_not_kept_unless_the_record_says_exactly_true():
    from resnet_gui.core.inference.int8 import describe
    from resnet_gui.ui.models.dialogs import int8_words

    record = {"kept": "no", "reason": "it was never verified", "agreement": 0.99, "images": 500}
    assert describe(record) == "it was never verified"
    assert int8_words(record).startswith("not kept, so it classifies in fp32")


# ---- engine, precision and device as typed -----------------------------------------------------------------
@pytest.mark.parametrize("device", ["gpu", "cuda:x", "cpu:0", "cudax", "tpu"])
def test_a_device_name_the_app_does_not_know_is_refused_not_ignored(isolated_home, capsys, device):
    """'--device gpu' classified on the CPU without a word (the engine only looked for cuda* and mps)."""
    from resnet_gui import resources
    from resnet_gui.cli import main

    sample = resources.path("samples/digit_3_1332.png")
    for engine in ("auto", "onnxruntime"):
        assert main(["predict", str(sample), "--engine", engine, "--device", device]) == 2
        err = capsys.readouterr().err
        assert f"Unknown device {device!r}" in err and "cuda:N" in err and "Traceback" not in err


# ---- weights that pass every check and still overflow ------------------------------------------------------
@pytest.mark.parametrize("engine", ["onnxruntime", "torch"])
def test_outputs_that_are_not_finite_numbers_are_an_error_for_that_image_not_nan_percent(isolated_home, capsys,
                                                                                        engine):
    """fc weights of 3e38 are finite, so the checkpoint loads; the logits overflow. Was: 'not sure: c0 (nan%)',
    exit 0, numpy's RuntimeWarnings on the terminal, and a heat map of NaN."""
    import json
    import warnings

    from resnet_gui.cli import main

    path = make_checkpoint(isolated_home / "m.pth")
    obj = torch.load(path, weights_only=True)
    obj["state_dict"]["fc.weight"].fill_(3e38)
    obj["state_dict"]["fc.bias"].fill_(3e38)
    torch.save(obj, path)
    image = write_image(isolated_home / "x.png")
    with warnings.catch_warnings():
        warnings.simplefilter("error", RuntimeWarning)
        assert main(["predict", str(image), "--model", str(path), "--engine", engine, "--json"]) == 1
    row = json.loads(capsys.readouterr().out)
    assert "outputs were not finite numbers" in row["error"] and "label" not in row
    assert main(["predict", str(image), "--model", str(path), "--engine", engine,
                 "--explain-dir", str(isolated_home / "maps")]) == 1
    out, err = capsys.readouterr()
    assert "nan" not in out.lower() and "could not be classified" in err
    assert not list((isolated_home / "maps").iterdir())
