"""The training engine on tiny generated data (CPU)."""
import json
import math
import threading
from pathlib import Path

import pytest
import torch
import torchvision
from helpers import make_cifar, make_folder_dataset

from resnet_gui.core.errors import Remedy, with_remedy
from resnet_gui.core.models.build import imagenet_weights_path, load_model
from resnet_gui.core.models.checkpoint import read_checkpoint_metadata
from resnet_gui.core.models.registry import Registry
from resnet_gui.core.train import TrainConfig, recipe, resume_config, train
from resnet_gui.core.train import loop as loop_mod
from resnet_gui.core.train import run as run_mod
from resnet_gui.core.train import state as state_mod
from resnet_gui.core.train.runs import list_run_infos
from resnet_gui.core.train.schedule import lr_factor


@pytest.fixture
def cifar_ok(monkeypatch):
    """Accept our generated CIFAR batches: torchvision's MD5 check is patched in tests only."""
    monkeypatch.setattr(torchvision.datasets.cifar, "check_integrity", lambda *a, **k: True)


@pytest.fixture
def cifar_dir(tmp_path, cifar_ok):
    return make_cifar(tmp_path / "cifar")


def tiny_cifar(data, **kw):
    base = dict(data=None if data is None else str(data), epochs=2, batch_size=25, lr=0.05, device="cpu", name="tiny")
    base.update(kw)
    return recipe("cifar10", **base)


class Recorder(list):
    def __call__(self, ev):
        self.append(ev)

    def kinds(self, kind):
        return [e for e in self if e.kind == kind]


def test_cifar_recipe_end_to_end(cifar_dir):
    events = Recorder()
    result = train(tiny_cifar(cifar_dir), events)
    assert result.status == "finished", result.message
    assert [e.epoch for e in events.kinds("epoch")] == [1, 2]
    ep = events.kinds("epoch")[-1]
    for key in ("train_loss", "train_accuracy", "val_loss", "val_accuracy", "lr", "images_per_s", "eta_s"):
        assert isinstance(getattr(ep, key), float) and math.isfinite(getattr(ep, key)), key
    assert 0 <= ep.val_accuracy <= 1
    batches = events.kinds("batch")
    assert batches and all(b.losses for b in batches) and batches[-1].step == batches[-1].steps == 4
    assert events[-1].kind == "finished"
    # the best model is in the registry, in the core format, with metrics and preprocessing
    meta = read_checkpoint_metadata(result.best_path)
    assert meta["arch"] == "resnet18_cifar" and meta["class_names"][0] == "airplane"
    assert meta["metrics"]["val_accuracy"] == result.best_val_accuracy <= 1
    assert {"val_loss", "epoch", "images_per_s"} <= set(meta["metrics"])
    assert meta["preprocess"]["input_size"] == 32 and meta["train_config"]["optimizer"] == "sgd"
    assert meta["dataset"]["name"] == "CIFAR-10" and meta["dataset"]["train_images"] == 100
    assert "tiny" in Registry().names()
    # the resumable state loads with weights_only=True
    state = torch.load(result.last_path, weights_only=True)
    assert state["epoch"] == 2 and {"model", "optimizer", "scheduler", "scaler", "rng", "config"} <= set(state)
    assert isinstance(state["rng"]["torch"], torch.Tensor)


def test_resume_gives_identical_weights(cifar_dir):
    straight = train(tiny_cifar(cifar_dir, name="straight"))
    assert straight.status == "finished"

    stop = threading.Event()

    def stop_after_first_epoch(ev):
        if ev.kind == "epoch" and ev.epoch == 1:
            stop.set()

    first = train(tiny_cifar(cifar_dir, name="split"), stop_after_first_epoch, stop)
    assert first.status == "cancelled" and first.epochs_done == 1
    assert [r.name for r in list_run_infos()].count("split") == 1
    config, path = resume_config("split")
    resumed = train(config, resume=path)
    assert resumed.status == "finished" and resumed.epochs_done == 2
    a = torch.load(straight.last_path, weights_only=True)["model"]
    b = torch.load(resumed.last_path, weights_only=True)["model"]
    assert a.keys() == b.keys()
    for k in a:
        assert torch.equal(a[k], b[k]), k


def test_stop_ends_within_one_batch_and_keeps_checkpoints(cifar_dir):
    stop = threading.Event()
    seen = {}

    def on_event(ev):
        if ev.kind == "batch" and ev.epoch == 2 and not stop.is_set():
            seen["step"] = ev.step
            stop.set()
        elif ev.kind == "batch" and stop.is_set():
            seen.setdefault("after", []).append(ev.step)

    result = train(tiny_cifar(cifar_dir, epochs=3), on_event, stop)
    assert result.status == "cancelled"
    assert not seen.get("after"), "no batch may run after the stop request"
    assert result.epochs_done == 1 and result.remedy == Remedy("resume", result.run_name)
    _, model = load_model(result.best_path)
    assert torch.load(result.last_path, weights_only=True)["epoch"] == 1


def test_offline_without_cifar_is_a_clear_error(tmp_path):
    events = Recorder()
    result = train(tiny_cifar(tmp_path / "nowhere"), events)
    assert result.status == "failed"
    assert "CIFAR-10 was not found" in result.message and "cifar-10-python.tar.gz" in result.message
    assert events[-1].kind == "failed" and "Traceback" not in result.message
    result = train(tiny_cifar(None, download=True))
    assert result.status == "failed" and "could not download" in result.message.lower()
    assert "cifar-10-python.tar.gz" in result.message


def test_cifar_tarball_is_checked_then_extracted(tmp_path, monkeypatch):
    import tarfile

    make_cifar(tmp_path / "src")
    tarball = tmp_path / "cifar-10-python.tar.gz"
    with tarfile.open(tarball, "w:gz") as tar:
        tar.add(tmp_path / "src" / "cifar-10-batches-py", arcname="cifar-10-batches-py")
    result = train(tiny_cifar(tarball, epochs=1))
    assert result.status == "failed" and "MD5" in result.message
    monkeypatch.setattr(torchvision.datasets.utils, "check_integrity", lambda *a, **k: True)
    monkeypatch.setattr(torchvision.datasets.cifar, "check_integrity", lambda *a, **k: True)
    assert train(tiny_cifar(tarball, epochs=1)).status == "finished"


def seed_hub_cache(arch="resnet18"):
    torch.manual_seed(5)
    state = torchvision.models.resnet18().state_dict()
    path = imagenet_weights_path(arch)
    path.parent.mkdir(parents=True, exist_ok=True)
    torch.save(state, path)
    return state


@pytest.mark.parametrize("workers", [0, 2])
def test_finetune_pretrained_on_a_folder_with_a_bad_image(tmp_path, workers):
    pretrained = seed_hub_cache()
    data = make_folder_dataset(tmp_path / "pets", per_class=6, size=(120, 100), bad=1)
    events = Recorder()
    cfg = recipe("finetune", data=str(data), epochs=1, batch_size=4, image_size=96, device="cpu", workers=workers,
                 cache_mb=0 if workers else 2048, name="pets")
    result = train(cfg, events)
    assert result.status == "finished", result.message
    started = events.kinds("started")[0]
    assert started.data_path == "loader"
    warnings = " ".join(e.message for e in events.kinds("warning"))
    assert "skipped 1 image" in warnings.lower() and "broken_0.png" in warnings
    ckpt, model = load_model(result.best_path)
    assert ckpt.class_names == ["cats", "dogs", "owls"] and ckpt.preprocess.input_size == 96
    # frozen backbone during the first epoch: pretrained features unchanged, the head trained
    assert torch.equal(model.layer2[0].conv1.weight, pretrained["layer2.0.conv1.weight"])
    assert ckpt.dataset["layout"] == "single" and ckpt.dataset["skipped_images"] == 1


def test_scratch_on_train_val_folders_uses_the_tensor_path(tmp_path):
    data = make_folder_dataset(tmp_path / "d", per_class=12, size=(32, 32), split=True)
    events = Recorder()
    cfg = recipe("scratch", data=str(data), arch="resnet18_cifar", epochs=1, batch_size=8, device="cpu")
    result = train(cfg, events)
    assert result.status == "finished", result.message
    assert events.kinds("started")[0].data_path == "tensor"
    desc = events.kinds("dataset")[0].description
    assert desc["layout"] == "split" and desc["val_images"] == 9 and desc["train_images"] == 27


@pytest.mark.parametrize("case,needle", [
    ("one_class", "at least 2"),
    ("empty_class", "has no images"),
    ("too_few", "fewer than one batch"),
    ("missing", "does not exist"),
])
def test_dataset_problems_are_reported_before_training(tmp_path, case, needle):
    if case == "one_class":
        data = make_folder_dataset(tmp_path / "d", classes=("only",))
    elif case == "empty_class":
        data = make_folder_dataset(tmp_path / "d")
        (data / "zebras").mkdir()
    elif case == "too_few":
        data = make_folder_dataset(tmp_path / "d", per_class=3, size=(32, 32))
    else:
        data = tmp_path / "missing"
    events = Recorder()
    result = train(recipe("scratch", data=str(data), arch="resnet18_cifar", batch_size=64, device="cpu"), events)
    assert result.status == "failed" and needle in result.message
    assert not events.kinds("batch")


def test_imbalance_warning_and_stratified_split(tmp_path):
    from resnet_gui.core.data.folders import scan_folder

    data = make_folder_dataset(tmp_path / "d", classes=("big",), per_class=30, size=(8, 8))
    make_folder_dataset(data, classes=("small",), per_class=5, size=(8, 8))
    split = scan_folder(data, val_split=0.2, seed=3)
    assert split.counts(split.val) == {"big": 6, "small": 1}
    assert any("imbalance" in w for w in split.warnings)
    again = scan_folder(data, val_split=0.2, seed=3)
    assert again.val == split.val


def test_non_finite_loss_stops_with_a_message(cifar_dir, monkeypatch):
    real_build = run_mod.build_trainer

    def build(*args, **kwargs):
        t = real_build(*args, **kwargs)
        criterion, calls = t.criterion, []

        def poisoned(out, y):
            calls.append(1)
            loss = criterion(out, y)
            return loss * float("nan") if len(calls) == 3 else loss

        t.criterion = poisoned
        return t

    monkeypatch.setattr(run_mod, "build_trainer", build)
    result = train(tiny_cifar(cifar_dir))
    assert result.status == "failed"
    assert "NaN at epoch 1, step 3" in result.message and result.remedy == Remedy("lr", 0.005)
    assert "--" not in result.message  # the screens word the remedy: the command line says "Try --lr 0.005."
    assert with_remedy(result.message, result.remedy).endswith("are kept. Try --lr 0.005.")


def test_out_of_memory_suggests_a_smaller_batch(cifar_dir, monkeypatch):
    real_build = run_mod.build_trainer

    def build(*args, **kwargs):
        t = real_build(*args, **kwargs)

        def oom(out, y):
            raise torch.OutOfMemoryError("CUDA out of memory. Tried to allocate 2.00 GiB")

        t.criterion = oom
        return t

    monkeypatch.setattr(run_mod, "build_trainer", build)
    result = train(tiny_cifar(cifar_dir))
    assert result.status == "failed" and "batch size 25" in result.message and result.remedy == Remedy("batch_size", 12)
    assert "Try --batch-size 12." in with_remedy(result.message, result.remedy)


def test_batch_events_are_throttled(monkeypatch):
    from resnet_gui.core import progress

    clock = [0.0]
    monkeypatch.setattr(progress.time, "monotonic", lambda: clock[0])
    got = []
    t = type("T", (), {"lr": 0.1})()
    reporter = run_mod.BatchReporter(recipe("cifar10", epochs=1), t, 2000, got.append)
    for i in range(1000):  # 1000 batches in one simulated second
        clock[0] += 0.001
        reporter(0, [(i, 1.0)], (i + 1) * 8, clock[0])
    assert 15 <= len(got) <= 21
    assert sum(len(e.losses) for e in got) + len(reporter.pending) == 1000


def test_schedules():
    def one(s):
        return lr_factor(s, kind="onecycle", total=100, warmup=25)

    assert one(0) == pytest.approx(1 / 25) and one(25) == pytest.approx(1.0) and one(100) < 1e-4

    def cos(s):
        return lr_factor(s, kind="cosine", total=100, warmup=0)

    assert cos(0) == pytest.approx(1.0) and cos(50) == pytest.approx(0.5) and cos(100) == pytest.approx(0.0)

    def step(s):
        return lr_factor(s, kind="step", total=100, warmup=0)

    assert (step(10), step(60), step(90)) == (1.0, 0.1, pytest.approx(0.01))


def test_invalid_settings_list_the_choices(cifar_dir):
    result = train(tiny_cifar(cifar_dir, optimizer="adam"))
    assert result.status == "failed" and "sgd, adamw" in result.message


def test_cli_train_json_and_text(tmp_path, capsys):
    from resnet_gui.cli import main

    data = make_folder_dataset(tmp_path / "d", per_class=8, size=(32, 32))
    code = main(["train", "--dataset", "folder", "--data", str(data), "--arch", "resnet18_cifar", "--epochs", "1",
                 "--batch-size", "8", "--device", "cpu", "--json", "--name", "cli-json"])
    out = capsys.readouterr().out
    events = [json.loads(line) for line in out.splitlines()]
    assert code == 0 and events[-1]["event"] == "finished" and events[-1]["best_name"] == "cli-json"
    assert {"started", "dataset", "batch", "epoch", "checkpoint"} <= {e["event"] for e in events}
    code = main(["train", "--dataset", "folder", "--data", str(data), "--arch", "resnet18_cifar", "--epochs", "1",
                 "--batch-size", "8", "--device", "cpu", "--name", "cli-text", "--no-hflip"])
    out = capsys.readouterr().out
    assert code == 0 and "epoch   1/1" in out and "best model: 'cli-text'" in out and "validation accuracy" in out


def test_precision_choice(monkeypatch):
    cpu = torch.device("cpu")
    assert loop_mod.autocast_dtype(cpu, "fp32") is None
    assert loop_mod.autocast_dtype(cpu, "bf16") is torch.bfloat16
    monkeypatch.setattr(loop_mod, "cpu_has_native_bf16", lambda: False)
    assert loop_mod.autocast_dtype(cpu, "auto") is None
    monkeypatch.setattr(loop_mod, "cpu_has_native_bf16", lambda: True)
    assert loop_mod.autocast_dtype(cpu, "auto") is torch.bfloat16
    assert train(TrainConfig(precision="fp16")).message.startswith("Unknown precision")


def test_full_disk_while_saving_is_a_message_and_keeps_earlier_files(cifar_dir, monkeypatch):
    from resnet_gui.core import atomic

    first = train(tiny_cifar(cifar_dir, epochs=1, name="disk"))
    assert first.status == "finished"
    before = Path(first.last_path).read_bytes()
    real = atomic.atomic_write

    def full(path, write):
        if str(path).endswith("last.pth"):
            raise OSError(28, "No space left on device", str(path))
        return real(path, write)

    monkeypatch.setattr(state_mod, "atomic_write", full)
    config, path = resume_config("disk", epochs=2)
    result = train(config, resume=path)
    assert result.status == "failed" and "disk is full" in result.message
    assert Path(first.last_path).read_bytes() == before  # the previous state is untouched
    load_model(first.best_path)


def test_compile_falls_back_to_eager_with_a_warning(cifar_dir, monkeypatch):
    from resnet_gui.core.train import compiling

    events = Recorder()  # on the CPU --compile is refused with a warning: the eager run, the reference below
    on_cpu = train(tiny_cifar(cifar_dir, epochs=1, name="cpu-compile", compile=True), events)
    assert on_cpu.status == "finished"
    assert any("--compile is for CUDA GPUs" in e.message for e in events.kinds("warning"))

    class Uncompilable(torch.nn.Module):  # what a compiler failure looks like at the first step
        def __init__(self, inner):
            super().__init__()
            self.inner = inner

        def forward(self, x):
            raise RuntimeError("backend 'inductor' failed: no working C++ compiler found")

    monkeypatch.setattr(compiling, "COMPILE_DEVICES", ("cpu",))
    monkeypatch.setattr(torch, "compile", lambda module: Uncompilable(module))
    events = Recorder()
    fallback = train(tiny_cifar(cifar_dir, epochs=1, name="fallback", compile=True), events)
    assert fallback.status == "finished", fallback.message
    (warning,) = [e for e in events.kinds("warning") if "torch.compile" in e.message]
    assert "no working C++ compiler" in warning.message and "without compilation" in warning.message
    assert torch.load(fallback.last_path, weights_only=True)["config"]["compile"] is True
    a = torch.load(on_cpu.last_path, weights_only=True)["model"]
    b = torch.load(fallback.last_path, weights_only=True)["model"]  # the same training as eager, bit for bit
    assert all(torch.equal(a[k], b[k]) for k in a)


def test_cli_stop_file_stops_before_the_next_batch(tmp_path, capsys):
    from resnet_gui.cli import main

    data = make_folder_dataset(tmp_path / "d", per_class=8, size=(32, 32))
    stop_file = tmp_path / "stop"
    stop_file.touch()
    code = main(["train", "--dataset", "folder", "--data", str(data), "--arch", "resnet18_cifar", "--epochs", "1",
                 "--batch-size", "8", "--device", "cpu", "--json", "--stop-file", str(stop_file)])
    events = [json.loads(line) for line in capsys.readouterr().out.splitlines()]
    assert code == 130 and events[-1]["event"] == "cancelled" and "nothing was saved" in events[-1]["message"]
    assert not [e for e in events if e["event"] == "batch"]


@pytest.mark.parametrize("ending", ["finished", "failed", "cancelled"])
def test_the_data_is_closed_however_the_run_ends(tmp_path, monkeypatch, ending):
    """run.opened_data: the prepared data (a DataLoader's workers, a cache) is closed when the run finishes,
    fails after preparing it, or is stopped."""
    data = make_folder_dataset(tmp_path / "d", per_class=6, size=(32, 32))
    closed, real_prepare = [], run_mod.prepare_data

    def prepare(*args, **kwargs):
        prepared = real_prepare(*args, **kwargs)
        close = prepared.data.close
        prepared.data.close = lambda: closed.append(1) or close()
        return prepared

    monkeypatch.setattr(run_mod, "prepare_data", prepare)
    if ending == "failed":
        monkeypatch.setattr(run_mod, "build_trainer", lambda *a, **k: (_ for _ in ()).throw(RuntimeError("boom")))
    stop = threading.Event()
    events = Recorder()
    on_event = (lambda ev: events(ev) or (ev.kind == "batch" and stop.set())) if ending == "cancelled" else events
    cfg = recipe("scratch", data=str(data), arch="resnet18_cifar", epochs=1, batch_size=4, device="cpu")
    result = train(cfg, on_event, stop)
    assert result.status == ending, result.message
    assert closed == [1]
