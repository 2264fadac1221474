"""Training under torchrun: 2 gloo processes on the CPU, on a tiny generated folder set.

Each launch is a real `python -m torch.distributed.run --standalone --nproc_per_node=2` running the real
`resnet-gui train` command. The processes run tests' WORKER below, which only records what the test needs
to look inside (each rank's final weights, how many steps it ran) and can send itself a signal mid-run;
everything else is the command as users run it. Also unit tests of the sharding and scaling rules.
"""
from __future__ import annotations

import contextlib
import json
import math
import os
import shutil
import subprocess
import sys
from pathlib import Path
from types import SimpleNamespace

import pytest
import torch
from helpers import make_folder_dataset

from resnet_gui.core.data.arrays import ArrayData
from resnet_gui.core.data.loader_data import EpochSampler
from resnet_gui.core.data.shard import interleave, train_shard
from resnet_gui.core.data.tensor_data import TensorData
from resnet_gui.core.models.build import build_model, load_model
from resnet_gui.core.models.checkpoint import read_checkpoint_metadata
from resnet_gui.core.models.preprocess import cifar_preprocess
from resnet_gui.core.progress import NO_PROGRESS
from resnet_gui.core.train import recipe
from resnet_gui.core.train.distributed import SINGLE, join, launcher_rank_and_size
from resnet_gui.core.train.loop import evaluate
from resnet_gui.core.train.prepare import prepare_data
from resnet_gui.core.train.schedule import build_optimizer, build_scheduler, lr_factor, restore_scheduler

ROOT = Path(__file__).resolve().parents[3]
BATCH = 6          # per process
TRAIN_IMAGES = 36  # 3 classes x 12 (make_folder_dataset split=True, 16 per class, every 4th to val/)
VAL_IMAGES = 12

WORKER = r'''
import json, os, signal, sys
import torch
from resnet_gui.core.train import run as run_mod

rank = int(os.environ.get("RANK", "0"))
calls = {"n": 0}
real_build = run_mod.build_trainer

def build(*args, **kwargs):
    t = real_build(*args, **kwargs)
    criterion = t.criterion
    stop_at = int(os.environ.get("STOP_AT_CALL", "0"))
    stop_rank = int(os.environ.get("STOP_RANK", "-1"))

    def counted(out, y):
        calls["n"] += 1
        if calls["n"] == stop_at and rank == stop_rank:
            os.kill(os.getpid(), signal.SIGINT)  # as a terminal's Ctrl+C would, but to this rank only
        return criterion(out, y)

    t.criterion = counted
    calls["trainer"] = t
    return t

run_mod.build_trainer = build
from resnet_gui.cli import main
code = main(sys.argv[1:])
dump = os.environ["DUMP_DIR"]
t = calls.get("trainer")
if t is not None:
    torch.save({k: v.detach().cpu() for k, v in t.model.state_dict().items()}, os.path.join(dump, f"rank{rank}.pt"))
with open(os.path.join(dump, f"rank{rank}.json"), "w") as fh:
    json.dump({"steps": calls["n"], "exit": code}, fh)
sys.exit(code)
'''


def _env(home: Path, dump: Path, **extra) -> dict:
    env = {k: v for k, v in os.environ.items() if k not in ("WORLD_SIZE", "RANK", "MASTER_ADDR", "MASTER_PORT")}
    env.update(RESNET_GUI_HOME=str(home), TORCH_HOME=str(home / "torch"), DUMP_DIR=str(dump), OMP_NUM_THREADS="1",
               PYTHONPATH=os.pathsep.join([str(ROOT), env.get("PYTHONPATH", "")]), PYTHONUNBUFFERED="1", **extra)
    return env


def _train_args(data: Path, epochs: int) -> list[str]:
    return ["train", "--dataset", "folder", "--data", str(data), "--arch", "resnet18_cifar", "--epochs", str(epochs),
            "--batch-size", str(BATCH), "--lr", "0.01", "--device", "cpu", "--precision", "fp32", "--threads", "1",
            "--json", "--name", "dist"]


def torchrun(tmp: Path, data: Path, home: Path, epochs: int, args: tuple = (),
             **extra) -> tuple[subprocess.CompletedProcess, list]:
    worker = tmp / "worker.py"
    worker.write_text(WORKER)
    dump = tmp / "dump"
    dump.mkdir(exist_ok=True)
    cmd = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node=2", str(worker),
           *_train_args(data, epochs), *args]
    proc = subprocess.run(cmd, cwd=tmp, env=_env(home, dump, **extra), capture_output=True, text=True, timeout=400)
    events = [json.loads(line) for line in proc.stdout.splitlines() if line.startswith("{")]
    return proc, events


def _rank(tmp: Path, rank: int) -> dict:
    return json.loads((tmp / "dump" / f"rank{rank}.json").read_text())


@pytest.fixture(scope="module")
def two_processes(tmp_path_factory):
    """One 2-process run of 2 epochs, shared by the tests that look at its results."""
    tmp = tmp_path_factory.mktemp("ddp")
    data = make_folder_dataset(tmp / "data", per_class=16, size=(32, 32), split=True)
    home = tmp / "home"
    proc, events = torchrun(tmp, data, home, epochs=2)
    return SimpleNamespace(tmp=tmp, data=data, home=home, proc=proc, events=events)


def _kinds(events, kind):
    return [e for e in events if e["event"] == kind]


def test_two_processes_train_one_model(two_processes):
    run = two_processes
    assert run.proc.returncode == 0, run.proc.stderr[-3000:]
    # only rank 0 reports: one started event, one finished event
    (started,) = _kinds(run.events, "started")
    assert started["world_size"] == 2 and started["config"]["world_size"] == 2
    assert started["train_images"] == TRAIN_IMAGES and started["steps_per_epoch"] == (TRAIN_IMAGES // 2) // BATCH
    assert [e["event"] for e in run.events].count("finished") == 1 and run.events[-1]["event"] == "finished"
    assert [e["epoch"] for e in _kinds(run.events, "epoch")] == [1, 2]
    # both ranks ran the same steps and ended with identical weights (and BatchNorm statistics)
    assert _rank(run.tmp, 0)["steps"] == _rank(run.tmp, 1)["steps"] == 2 * started["steps_per_epoch"]
    w0 = torch.load(run.tmp / "dump" / "rank0.pt", weights_only=True)
    w1 = torch.load(run.tmp / "dump" / "rank1.pt", weights_only=True)
    assert w0.keys() == w1.keys()
    for k in w0:
        assert torch.equal(w0[k], w1[k]), k
    # exactly one checkpoint and one run state, written by rank 0, holding rank 0's weights
    files = sorted(p.relative_to(run.home).as_posix() for p in run.home.rglob("*.pth"))
    assert files == ["models/dist.pth", "runs/dist/last.pth"]
    state = torch.load(run.home / "runs/dist/last.pth", weights_only=True)
    for k in w0:
        assert torch.equal(state["model"][k], w0[k]), k
    assert state["config"]["world_size"] == 2 and state["epoch"] == 2
    # the recipe's lr is per process batch; SGD scales it linearly: 0.01 x 2
    assert state["config"]["lr"] == 0.01
    assert state["optimizer"]["param_groups"][0]["initial_lr"] == pytest.approx(0.02)
    assert read_checkpoint_metadata(run.home / "models/dist.pth")["train_config"]["world_size"] == 2


def test_stored_val_accuracy_equals_a_single_process_evaluation(two_processes):
    run = two_processes
    assert run.proc.returncode == 0, run.proc.stderr[-3000:]
    ckpt, model = load_model(run.home / "models/dist.pth")
    cfg = recipe("scratch", data=str(run.data), arch="resnet18_cifar", batch_size=BATCH, device="cpu")
    prepared = prepare_data(cfg, torch.device("cpu"), True, lambda ev: None, NO_PROGRESS)
    assert prepared.data.n_val == VAL_IMAGES
    t = SimpleNamespace(model=model.to(memory_format=torch.channels_last), device=torch.device("cpu"),
                        autocast=contextlib.nullcontext)
    never = SimpleNamespace(is_set=lambda: False)
    single = evaluate(t, prepared.data.val_batches(5), stop=never)  # another batching than the run's
    assert ckpt.metrics["val_accuracy"] == single["val_accuracy"]  # exact: counts of correct answers
    assert ckpt.metrics["val_loss"] == pytest.approx(single["val_loss"], rel=1e-4)
    best = max(_kinds(run.events, "epoch"), key=lambda e: e["val_accuracy"])
    assert best["val_accuracy"] == single["val_accuracy"]


def test_resume_two_processes_with_one(two_processes, tmp_path):
    run = two_processes
    assert run.proc.returncode == 0, run.proc.stderr[-3000:]
    home = tmp_path / "home"
    shutil.copytree(run.home, home)
    cmd = [sys.executable, "-m", "resnet_gui", "train", "--resume", "dist", "--epochs", "3", "--json", "--threads", "1"]
    proc = subprocess.run(cmd, cwd=tmp_path, env=_env(home, tmp_path), capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr[-3000:]
    events = [json.loads(line) for line in proc.stdout.splitlines()]
    (started,) = _kinds(events, "started")
    steps_before = _kinds(run.events, "started")[0]["steps_per_epoch"]
    assert started["world_size"] == 1 and started["start_epoch"] == 2
    assert started["steps_per_epoch"] == TRAIN_IMAGES // BATCH == 2 * steps_before
    assert events[-1]["event"] == "finished" and events[-1]["epochs_done"] == 3
    state = torch.load(home / "runs/dist/last.pth", weights_only=True)
    assert state["epoch"] == 3 and state["config"]["world_size"] == 1
    # the schedule went on at the same point of the run: 2 epochs done = step 2 x 6 at the new size, then 6 more
    assert state["scheduler"]["last_epoch"] == 3 * started["steps_per_epoch"]
    assert state["optimizer"]["param_groups"][0]["initial_lr"] == 0.01  # one process: the lr as given


def test_a_signal_to_one_rank_stops_every_rank_after_that_batch(tmp_path):
    data = make_folder_dataset(tmp_path / "data", per_class=16, size=(32, 32), split=True)
    home = tmp_path / "home"
    steps = (TRAIN_IMAGES // 2) // BATCH
    stop_at = steps + 2  # the 2nd step of epoch 2
    # the first epoch trains the head alone (as the fine-tuning recipe does): DDP with parameters left out
    proc, events = torchrun(tmp_path, data, home, epochs=3, args=("--freeze-backbone-epochs", "1"),
                            STOP_AT_CALL=str(stop_at), STOP_RANK="1")
    assert events and events[-1]["event"] == "cancelled", proc.stdout[-2000:] + proc.stderr[-3000:]
    assert events[-1]["epochs_done"] == 1 and events[-1]["remedy"] == {"kind": "resume", "value": "dist"}
    # rank 1 got the signal during step `stop_at`; both ranks finished that step and ran no other
    assert _rank(tmp_path, 0)["steps"] == _rank(tmp_path, 1)["steps"] == stop_at
    assert not [e for e in _kinds(events, "batch") if e["epoch"] == 2 and e["step"] > 2]
    state = torch.load(home / "runs/dist/last.pth", weights_only=True)
    assert state["epoch"] == 1 and state["config"]["freeze_backbone_epochs"] == 1
    torch.manual_seed(0)  # the engine's initial weights (seed 0)
    initial = build_model("resnet18_cifar", 3).state_dict()
    _, after_frozen_epoch = load_model(home / "models/dist.pth")  # best = epoch 1, the frozen one
    assert torch.equal(after_frozen_epoch.layer2[0].conv1.weight, initial["layer2.0.conv1.weight"])
    assert not torch.equal(after_frozen_epoch.fc.weight, initial["fc.weight"])
    assert (home / "models/dist.pth").is_file()
    assert proc.returncode == 0 and "Traceback" not in proc.stderr, proc.stderr[-3000:]  # stopped as asked


# ---- unit tests: no processes ------------------------------------------------------------------
def test_training_shards_are_equal_disjoint_and_change_each_epoch():
    n, world = 23, 3
    for epoch in (0, 1):
        shards = []
        for rank in range(world):
            sampler = EpochSampler(n, seed=4, shuffle=True, rank=rank, world_size=world)
            sampler.set_epoch(epoch)
            shards.append([i for i, _ in sampler])
            assert len(shards[-1]) == len(sampler) == n // world
        flat = sum(shards, [])
        assert len(set(flat)) == len(flat) == (n // world) * world
    single = EpochSampler(n, seed=4, shuffle=True)
    assert len(single) == n and sorted(i for i, _ in single) == list(range(n))


def test_validation_shards_hold_every_sample_once_without_padding():
    n, world = 10, 4
    parts = []
    for rank in range(world):
        sampler = EpochSampler(n, seed=0, shuffle=False, rank=rank, world_size=world)
        parts.append(torch.tensor([i for i, _ in sampler]))
        assert len(sampler) == len(parts[-1])
    assert [len(p) for p in parts] == [3, 3, 2, 2]
    padded = [torch.cat([p, torch.full((3 - len(p),), -1)]) for p in parts]  # as all_gather pads them
    assert interleave(padded, n).tolist() == list(range(n))
    assert train_shard(torch.arange(7), 1, 1).tolist() == list(range(7))


def test_tensor_data_shards():
    images = torch.arange(20, dtype=torch.uint8).view(20, 1, 1, 1).expand(20, 3, 8, 8).contiguous()
    labels = torch.arange(20)
    train, val = ArrayData(images, labels), ArrayData(images[:7], labels[:7])
    seen_train, seen_val = [], []
    for rank in range(2):
        data = TensorData(train, val, cifar_preprocess(), torch.device("cpu"), channels_last=False, augment="none",
                          hflip=False, rank=rank, world_size=2)
        assert data.n_train == 20 and data.n_val == 7 and data.steps_per_epoch(4) == 2
        seen_train += [int(v) for _, y in data.train_batches(0, 4, seed=1) for v in y]
        seen_val.append(torch.cat([y for _, y in data.val_batches(3)]))
    assert len(seen_train) == len(set(seen_train)) == 16
    assert interleave([torch.cat([seen_val[0]]), torch.cat([seen_val[1], torch.zeros(1, dtype=torch.long)])],
                      7).tolist() == list(range(7))


def test_learning_rate_scaling_rule():
    assert recipe("cifar10").lr_scale() == 1.0
    assert recipe("cifar10", world_size=4).lr_scale() == 4.0             # SGD: linear
    assert recipe("finetune", world_size=4).lr_scale() == 2.0            # AdamW: square root
    assert recipe("cifar10", world_size=4, scale_lr=False).lr_scale() == 1.0
    model = torch.nn.Linear(2, 2)
    assert build_optimizer(model, recipe("scratch", data="x", world_size=8)).param_groups[0]["lr"] == 0.05 * 8
    assert build_optimizer(model, recipe("scratch", data="x")).param_groups[0]["lr"] == 0.05
    with pytest.raises(Exception, match="scaled for 512 processes"):
        recipe("cifar10", world_size=512).validate()


def test_resume_with_other_steps_per_epoch_continues_the_schedule():
    model = torch.nn.Linear(2, 2)
    two = recipe("cifar10", epochs=4, world_size=2)
    opt = build_optimizer(model, two)
    sched = build_scheduler(opt, two, steps_per_epoch=5)
    for _ in range(10):  # 2 epochs of 5 steps
        opt.step()
        sched.step()
    one = recipe("cifar10", epochs=4)
    opt1 = build_optimizer(model, one)
    sched1 = build_scheduler(opt1, one, steps_per_epoch=10)
    peak = [g["initial_lr"] for g in opt1.param_groups]
    opt1.load_state_dict(opt.state_dict())
    restore_scheduler(sched1, sched.state_dict(), step=2 * 10, base_lrs=peak)
    expected = 0.4 * lr_factor(20, kind="onecycle", total=40, warmup=10)
    assert opt1.param_groups[0]["lr"] == pytest.approx(expected) and sched1.last_epoch == 20
    assert sched1.base_lrs == [0.4]


def test_without_torchrun_the_world_is_a_single_process(monkeypatch):
    for var in ("WORLD_SIZE", "RANK", "MASTER_ADDR", "MASTER_PORT"):
        monkeypatch.delenv(var, raising=False)
    assert launcher_rank_and_size() == (0, 1)
    world, device = join(recipe("cifar10", device="cpu"))
    assert world is SINGLE and device == torch.device("cpu") and not world.enabled
    batches = [1, 2]
    stop = world.collective_stop(SimpleNamespace(is_set=lambda: False))
    assert world.agree(batches, stop) is batches
    stats = {"train_loss": 1.0}
    assert world.reduce_train(stats) is stats and world.mean_losses([(0, 1.5)]) == [(0, 1.5)]
    monkeypatch.setenv("WORLD_SIZE", "1")
    monkeypatch.setenv("RANK", "0")
    monkeypatch.setenv("MASTER_ADDR", "127.0.0.1")
    monkeypatch.setenv("MASTER_PORT", "29500")
    assert join(recipe("cifar10", device="cpu"))[0] is SINGLE  # torchrun --nproc_per_node=1: no process group
    assert math.isclose(recipe("finetune", world_size=2).lr_scale(), math.sqrt(2))
