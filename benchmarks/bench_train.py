"""Training throughput: our CIFAR path against a plain reference loop, side by side in one run.

Reference (written here, the way tutorials do it): the classic CIFAR ResNet-18 module, PNG class
folders read by torchvision's ImageFolder with PIL transforms (pad-4 random crop, flip, ToTensor,
normalise), DataLoader(num_workers=2), NCHW, fp32, SGD, batch 128.
Ours: resnet_gui.core.train.train() on the same images (uint8 tensor in device memory, batched
crop/flip, channels_last; bf16 autocast on CUDA), same batch size and optimiser family.
Ceiling: a bare forward + backward + SGD step on one random batch already in memory, the same model
(resnet18_cifar, channels_last), batch, loss and precision as the engine's run: what this machine can
do with no data handling, no schedule, no metrics at all. The script prints engine / ceiling.
Both are timed over the same steps after the same warm-up. Also prints seconds per epoch of a
from-scratch ResNet-18 run on a small folder of real-size JPEGs (the DataLoader path).
`--parts ddp`: whole `resnet-gui train` processes on the CPU, one process with 2 threads (batch 128) against
torchrun with 2 gloo processes of 1 thread (batch 64 each, the same 128 per step): images/s of the 2nd
epoch, wall time, and CPU seconds per wall second (how much of the cores the run used).

    .venv/bin/python benchmarks/bench_train.py [--images 1536] [--device cpu|cuda]
                                               [--parts reference,engine,ceiling,fp32,real,ddp]
"""
from __future__ import annotations

import argparse
import contextlib
import os
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from PIL import Image
from torch import nn

sys.path.insert(0, str(Path(__file__).resolve().parent))
from bench_predict import cpu_name  # noqa: E402

BATCH = 128
WARMUP_STEPS = 2


# ---- the tutorial model ------------------------------------------------------------------------
class ResidualBlock(nn.Module):
    def __init__(self, inchannel, outchannel, stride=1):
        super().__init__()
        self.left = nn.Sequential(
            nn.Conv2d(inchannel, outchannel, 3, stride, 1, bias=False), nn.BatchNorm2d(outchannel),
            nn.ReLU(inplace=True),
            nn.Conv2d(outchannel, outchannel, 3, 1, 1, bias=False), nn.BatchNorm2d(outchannel))
        self.shortcut = nn.Sequential()
        if stride != 1 or inchannel != outchannel:
            self.shortcut = nn.Sequential(nn.Conv2d(inchannel, outchannel, 1, stride, bias=False),
                                          nn.BatchNorm2d(outchannel))

    def forward(self, x):
        return F.relu(self.left(x) + self.shortcut(x))


class TutorialResNet18(nn.Module):
    def __init__(self, num_classes=10):
        super().__init__()
        self.conv1 = nn.Sequential(nn.Conv2d(3, 64, 3, 1, 1, bias=False), nn.BatchNorm2d(64), nn.ReLU())
        chans, layers, inc = [64, 128, 256, 512], [], 64
        for i, c in enumerate(chans):
            blocks = [ResidualBlock(inc, c, 1 if i == 0 else 2), ResidualBlock(c, c, 1)]
            inc = c
            layers.append(nn.Sequential(*blocks))
        self.layer1, self.layer2, self.layer3, self.layer4 = layers
        self.fc = nn.Linear(512, num_classes)

    def forward(self, x):
        out = self.layer4(self.layer3(self.layer2(self.layer1(self.conv1(x)))))
        return self.fc(F.avg_pool2d(out, 4).flatten(1))


def make_pngs(root: Path, n: int) -> None:
    rng = np.random.default_rng(0)
    for i in range(n):
        label = i % 10
        folder = root / f"class{label}"
        folder.mkdir(parents=True, exist_ok=True)
        arr = np.clip(rng.normal(25 * label, 60, size=(32, 32, 3)), 0, 255).astype(np.uint8)
        Image.fromarray(arr).save(folder / f"{i:05d}.png")


def reference(folder: Path, device: torch.device, steps: int) -> float:
    import torchvision.transforms as T
    from torchvision.datasets import ImageFolder

    tf = T.Compose([T.RandomCrop(32, padding=4), T.RandomHorizontalFlip(), T.ToTensor(),
                    T.Normalize((0.4914, 0.4822, 0.4465), (0.2470, 0.2435, 0.2616))])
    loader = torch.utils.data.DataLoader(ImageFolder(str(folder), tf), batch_size=BATCH, shuffle=True,
                                         num_workers=2, drop_last=True)
    torch.manual_seed(0)
    model = TutorialResNet18().to(device).train()
    opt = torch.optim.SGD(model.parameters(), lr=0.1, momentum=0.9, weight_decay=5e-4)
    crit = nn.CrossEntropyLoss()
    t_start, done = None, 0
    for step, (x, y) in enumerate(loader):
        if step == WARMUP_STEPS:
            if device.type == "cuda":
                torch.cuda.synchronize()
            t_start = time.perf_counter()
        x, y = x.to(device), y.to(device)
        opt.zero_grad()
        loss = crit(model(x), y)
        loss.backward()
        opt.step()
        loss.item()
        if step >= WARMUP_STEPS:
            done += y.numel()
        if step + 1 >= WARMUP_STEPS + steps:
            break
    if device.type == "cuda":
        torch.cuda.synchronize()
    return done / (time.perf_counter() - t_start)


def ours(folder: Path, device: torch.device, steps: int, precision: str = "auto") -> tuple[float, str]:
    from resnet_gui.core.train import recipe, train

    marks: dict[int, float] = {}
    used = {}

    def on_event(ev):
        if ev.kind == "batch":
            marks[ev.step] = time.perf_counter()
        elif ev.kind == "started":
            used["precision"] = ev.precision

    cfg = recipe("scratch", data=str(folder), arch="resnet18_cifar", epochs=1, batch_size=BATCH, lr=0.1,
                 device=str(device), name=f"bench-{precision}", val_split=0.05, schedule="cosine", warmup_epochs=0,
                 precision=precision, augment="pad_crop")
    result = train(cfg, on_event)
    assert result.status == "finished", result.message
    # a mark is where the engine read losses back: every step on the CPU, every 10 steps on a GPU
    first = min(k for k in marks if k >= WARMUP_STEPS)
    last = max(k for k in marks if k <= max(first + 1, WARMUP_STEPS + steps))
    return (last - first) * BATCH / (marks[last] - marks[first]), used["precision"]


def ceiling(device: torch.device, steps: int, precision: str = "auto") -> float:
    """Images/s of the bare step on a random batch in memory (same model, batch, loss, precision)."""
    from resnet_gui.core.models.build import build_model
    from resnet_gui.core.train.loop import autocast_dtype

    torch.manual_seed(0)
    model = build_model("resnet18_cifar", 10).to(device).to(memory_format=torch.channels_last).train()
    opt = torch.optim.SGD(model.parameters(), lr=0.1, momentum=0.9, nesterov=True, weight_decay=5e-4)
    crit = nn.CrossEntropyLoss(label_smoothing=0.1)
    x = torch.randn(BATCH, 3, 32, 32, device=device).contiguous(memory_format=torch.channels_last)
    y = torch.randint(0, 10, (BATCH,), device=device)
    dtype = autocast_dtype(device, precision)
    t_start = 0.0
    for step in range(WARMUP_STEPS + steps):
        if step == WARMUP_STEPS:
            if device.type == "cuda":
                torch.cuda.synchronize()
            t_start = time.perf_counter()
        with torch.autocast(device.type, dtype=dtype) if dtype else contextlib.nullcontext():
            loss = crit(model(x), y)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
    loss.item()
    if device.type == "cuda":
        torch.cuda.synchronize()
    return steps * BATCH / (time.perf_counter() - t_start)


def interleaved(folder: Path, device: torch.device, rounds: int, steps: int) -> tuple[float, float]:
    """Images/s of the engine's epoch loop (core.train.loop.train_one_epoch on the engine's TensorData batches)
    and of the bare step, alternating `steps` steps of each for `rounds` rounds in one process, so that a
    change in the machine's load hits both alike. Medians over the rounds (a first round warms up)."""
    import itertools
    import statistics

    from resnet_gui.core.models.build import build_model
    from resnet_gui.core.progress import NO_PROGRESS
    from resnet_gui.core.train import recipe
    from resnet_gui.core.train.loop import train_one_epoch
    from resnet_gui.core.train.prepare import prepare_data
    from resnet_gui.core.train.run import build_trainer

    cfg = recipe("scratch", data=str(folder), arch="resnet18_cifar", epochs=1, batch_size=BATCH, lr=0.1,
                 device=str(device), val_split=0.05, schedule="cosine", warmup_epochs=0, augment="pad_crop")
    data = prepare_data(cfg, device, True, lambda ev: None, NO_PROGRESS).data
    t = build_trainer(cfg, 10, device, lambda ev: None, NO_PROGRESS, data.steps_per_epoch(BATCH))
    torch.manual_seed(0)
    model = build_model("resnet18_cifar", 10).to(device).to(memory_format=torch.channels_last).train()
    opt = torch.optim.SGD(model.parameters(), lr=0.1, momentum=0.9, nesterov=True, weight_decay=5e-4)
    crit = nn.CrossEntropyLoss(label_smoothing=0.1)
    x = torch.randn(BATCH, 3, 32, 32, device=device).contiguous(memory_format=torch.channels_last)
    y = torch.randint(0, 10, (BATCH,), device=device)

    def sync():
        if device.type == "cuda":
            torch.cuda.synchronize(device)

    def engine(epoch: int) -> float:
        batches = itertools.islice(data.train_batches(epoch, BATCH, cfg.seed), steps)
        sync()
        t0 = time.perf_counter()
        train_one_epoch(t, batches, epoch, stop=type("Never", (), {"is_set": staticmethod(lambda: False)}),
                        on_losses=lambda *a: None)
        sync()
        return steps * BATCH / (time.perf_counter() - t0)

    def bare() -> float:
        sync()
        t0 = time.perf_counter()
        for _ in range(steps):
            with t.autocast():
                loss = crit(model(x), y)
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
        loss.item()
        sync()
        return steps * BATCH / (time.perf_counter() - t0)

    rates: dict[str, list[float]] = {"engine": [], "bare": []}
    for r in range(rounds + 1):
        pair = (("engine", lambda r=r: engine(r)), ("bare", bare))
        for name, fn in (pair if r % 2 else pair[::-1]):  # alternate which goes first
            rate = fn()
            if r:
                rates[name].append(rate)
    return statistics.median(rates["engine"]), statistics.median(rates["bare"])


def data_path_ms(folder: Path, device: torch.device, batches: int = 10) -> float:
    """Milliseconds per batch of the engine's data path alone (index, pad-crop + flip, normalise), no model."""
    from resnet_gui.core.progress import NO_PROGRESS
    from resnet_gui.core.train import recipe
    from resnet_gui.core.train.prepare import prepare_data

    cfg = recipe("scratch", data=str(folder), arch="resnet18_cifar", batch_size=BATCH, val_split=0.05,
                 augment="pad_crop", device=str(device))
    data = prepare_data(cfg, device, True, lambda ev: None, NO_PROGRESS).data
    t0, n = time.perf_counter(), 0
    for epoch in range(batches):
        for x, _ in data.train_batches(epoch, BATCH, seed=0):
            x.sum().item()  # wait for the batch to exist
            n += 1
            if n >= batches:
                return 1000 * (time.perf_counter() - t0) / n
    return 1000 * (time.perf_counter() - t0) / max(n, 1)


def whole_run(cmd: list[str], home: Path) -> dict:
    """Run one training command to the end: its 2nd epoch's images/s, wall seconds, CPU seconds used."""
    import json
    import resource
    import subprocess

    env = {**os.environ, "RESNET_GUI_HOME": str(home), "OMP_NUM_THREADS": "1"}
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    t0 = time.perf_counter()
    proc = subprocess.run(cmd, env=env, capture_output=True, text=True)
    wall = time.perf_counter() - t0
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    events = [json.loads(line) for line in proc.stdout.splitlines() if line.startswith("{")]
    epochs = [e for e in events if e["event"] == "epoch"]
    if proc.returncode != 0 or not epochs:
        raise SystemExit(f"{' '.join(cmd)} failed:\n{proc.stderr[-2000:]}")
    cpu = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
    return {"images_per_s": epochs[-1]["images_per_s"], "epoch_s": epochs[-1]["epoch_time_s"], "wall": wall,
            "cores": cpu / wall}


def ddp_scaling(folder: Path, tmp: Path, precision: str = "auto") -> None:
    common = ["train", "--dataset", "folder", "--data", str(folder), "--arch", "resnet18_cifar", "--epochs", "2",
              "--device", "cpu", "--json", "--val-split", "0.05", "--precision", precision, "--augment", "pad_crop"]
    one = whole_run([sys.executable, "-m", "resnet_gui", *common, "--batch-size", str(BATCH), "--threads", "2",
                     "--name", "one"], tmp / "home1")
    two = whole_run([sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node=2", "-m",
                     "resnet_gui", *common, "--batch-size", str(BATCH // 2), "--threads", "1", "--name", "two"],
                    tmp / "home2")
    for label, r in (("1 process x 2 threads, batch 128", one), ("2 gloo processes x 1 thread, batch 64 each", two)):
        print(f"{label}: {r['images_per_s']:7.1f} images/s (2nd epoch {r['epoch_s']:.1f} s incl. validation); "
              f"whole run {r['wall']:.0f} s, {r['cores']:.2f} cores busy on average")
    print(f"2 processes / 1 process: {two['images_per_s'] / one['images_per_s']:.2f}x images/s")


def real_size_epoch(root: Path, device: torch.device) -> None:
    from resnet_gui.core.train import recipe, train

    rng = np.random.default_rng(1)
    for i in range(120):
        folder = root / f"class{i % 3}"
        folder.mkdir(parents=True, exist_ok=True)
        arr = np.clip(rng.normal(60 * (i % 3) + 40, 50, size=(375, 500, 3)), 0, 255).astype(np.uint8)
        Image.fromarray(arr).save(folder / f"{i:04d}.jpg", quality=90)
    epochs = []

    def on_event(ev):
        if ev.kind == "epoch":
            epochs.append(ev)

    cfg = recipe("scratch", data=str(root), arch="resnet18", epochs=2, batch_size=16, device=str(device),
                 name="bench-real")
    result = train(cfg, on_event)
    assert result.status == "finished", result.message
    e = epochs[-1]
    print(f"real-size folder (120 JPEGs 500x375, 3 classes, 96 train / 24 val, ResNet-18 at 224 from scratch, "
          f"batch 16, decoded once into memory): {e.epoch_time_s:.1f} s per epoch (2nd epoch, incl. validation), "
          f"{e.images_per_s:.1f} training images/s")


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--images", type=int, default=1536)
    parser.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    parser.add_argument("--parts", default="reference,engine,ceiling,fp32,real",
                        help="comma-separated subset of reference, engine, ceiling, fp32, real")
    args = parser.parse_args()
    parts = set(args.parts.split(","))
    device = torch.device(args.device)
    steps = args.images // BATCH - WARMUP_STEPS - 1
    print(f"machine: {cpu_name()}, {os.cpu_count()} cores, torch {torch.__version__}, device {device}"
          + (f" ({torch.cuda.get_device_name(device)})" if device.type == "cuda" else ""))
    with tempfile.TemporaryDirectory() as tmp:
        os.environ["RESNET_GUI_HOME"] = str(Path(tmp) / "home")
        folder = Path(tmp) / "pngs"
        make_pngs(folder, args.images)
        ref = None
        if "reference" in parts:
            ref = reference(folder, device, steps)
            print(f"reference loop (ImageFolder + PIL + DataLoader(2 workers), NCHW fp32): {ref:7.1f} images/s")
        fast, precision = ours(folder, device, steps) if parts & {"engine", "ceiling", "fp32"} else (None, "auto")
        if fast is not None:
            print(f"resnet-gui engine (uint8 tensor on device, batched aug, channels_last, {precision}): "
                  f"{fast:7.1f} images/s")
        if ref is not None and fast is not None:
            print(f"ratio: {fast / ref:.2f}x  ({steps} timed steps of batch {BATCH} each, after {WARMUP_STEPS} "
                  "warm-up)")
        if "ceiling" in parts:
            top = ceiling(device, steps)
            print(f"ceiling (bare forward+backward+step on a random batch in memory, {precision}): {top:7.1f} "
                  f"images/s; engine / ceiling = {fast / top:.2f}")
            rounds, per_round = (4, 2) if device.type == "cpu" else (7, 20)
            loop_rate, bare_rate = interleaved(folder, device, rounds, per_round)
            print(f"  interleaved in one process ({rounds} rounds of {per_round} steps each, medians): engine loop "
                  f"{loop_rate:.1f} vs bare step {bare_rate:.1f} images/s: "
                  f"engine / ceiling = {loop_rate / bare_rate:.2f}")
            data_ms, step_ms = data_path_ms(folder, device), 1000 * BATCH / top
            print(f"  of which the engine's data path alone: {data_ms:.1f} ms per batch = {data_ms / step_ms:.1%} of a "
                  f"ceiling step ({step_ms:.0f} ms)")
        if precision != "fp32" and "fp32" in parts:
            fp32, _ = ours(folder, device, steps, precision="fp32")
            line = f"resnet-gui engine forced to fp32 (--precision fp32): {fp32:7.1f} images/s"
            if ref is not None:
                line += f", ratio {fp32 / ref:.2f}x"
            if "ceiling" in parts:
                top32 = ceiling(device, steps, precision="fp32")
                line += f"; fp32 ceiling {top32:7.1f} images/s, engine / ceiling = {fp32 / top32:.2f}"
            print(line)
        if "real" in parts:
            real_size_epoch(Path(tmp) / "jpgs", device)
        if "ddp" in parts and device.type == "cpu":
            ddp_scaling(folder, Path(tmp), "auto")


if __name__ == "__main__":
    main()
