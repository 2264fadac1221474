"""Prediction overhead: Predictor.predict_image(PIL image, PyTorch engine) against a bare model(tensor) call.

Both run on the same model in the same process, interleaved, on the CPU (warm). Prints median
latencies and the ratio; also the registry listing time for 20 ResNet-18 checkpoints, and what the
familiarity score ("unlike anything I was trained on") adds: Predictor.scores on the bundled demo
model with its familiarity data against the same checkpoint without it (batch 1 and batch 64).

    .venv/bin/python benchmarks/bench_predict.py [--repeats N]
"""
from __future__ import annotations

import argparse
import os
import platform
import statistics
import tempfile
import time
from pathlib import Path

import torch
from PIL import Image


def cpu_name() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def cpu_flags() -> str:
    """The CPU features that change inference speed 2-4x (AVX2, AVX-512, its bf16 and VNNI, AMX), as lscpu
    names them."""
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("flags"):
                have = set(line.split(":", 1)[1].split())
                wanted = ("avx2", "avx512f", "avx512_bf16", "avx512_vnni", "avx_vnni", "amx_bf16", "amx_int8")
                return " ".join(f for f in wanted if f in have) or "none of avx2/avx512/vnni/amx"
    except OSError:
        pass
    return "unknown"


def bench_arch(arch: str, size: int, repeats: int, folder: Path) -> None:
    from resnet_gui.core.engines.choose import open_predictor
    from resnet_gui.core.models.archs import default_preprocess
    from resnet_gui.core.models.build import build_model
    from resnet_gui.core.models.checkpoint import Checkpoint, write_checkpoint

    model = build_model(arch, 10)
    path = write_checkpoint(Checkpoint(arch=arch, class_names=[str(i) for i in range(10)],
                                      preprocess=default_preprocess(arch), state_dict=model.state_dict()),
                           folder / f"{arch}.pth")
    predictor = open_predictor(path, engine="torch", device="cpu", precision="fp32")
    pre = predictor.preprocess
    image = Image.new("RGB", (pre.input_size, pre.input_size), (120, 60, 200))
    tensor = torch.randn(1, 3, pre.input_size, pre.input_size)
    bare_model = model.eval()

    def bare():
        with torch.inference_mode():
            bare_model(tensor)

    def ours():
        predictor.predict_image(image, top_k=5)

    for _ in range(5):
        bare(), ours()
    t_bare, t_ours = [], []
    for _ in range(repeats):
        for fn, sink in ((bare, t_bare), (ours, t_ours)):
            t0 = time.perf_counter()
            fn()
            sink.append(time.perf_counter() - t0)
    mb, mo = statistics.median(t_bare) * 1e3, statistics.median(t_ours) * 1e3
    print(f"{arch:>15} @ {size}x{size}: bare model(tensor) {mb:7.2f} ms | Predictor.predict_image {mo:7.2f} ms"
          f" | ratio {mo / mb:.3f}x  (median of {repeats})")


def bench_listing(folder: Path, count: int = 20) -> None:
    from resnet_gui.core.models.archs import default_preprocess
    from resnet_gui.core.models.build import build_model
    from resnet_gui.core.models.checkpoint import Checkpoint, write_checkpoint
    from resnet_gui.core.models.registry import Registry

    reg_dir = folder / "registry"
    model = build_model("resnet18", 10)
    first = write_checkpoint(Checkpoint(arch="resnet18", class_names=[str(i) for i in range(10)],
                                       preprocess=default_preprocess("resnet18"), state_dict=model.state_dict()),
                            reg_dir / "m00.pth")
    data = first.read_bytes()
    for i in range(1, count):
        (reg_dir / f"m{i:02d}.pth").write_bytes(data)
    Registry._cache.clear()
    t0 = time.perf_counter()
    entries = Registry(reg_dir).list()
    cold = time.perf_counter() - t0
    t0 = time.perf_counter()
    Registry(reg_dir).list()
    cached = time.perf_counter() - t0
    size_mb = sum(e.size for e in entries) / 1e6
    print(f"registry listing: {len(entries)} ResNet-18 checkpoints ({size_mb:.0f} MB): "
          f"{cold * 1e3:.0f} ms first time, {cached * 1e3:.1f} ms when unchanged")


def bench_familiarity(repeats: int) -> None:
    from resnet_gui import resources
    from resnet_gui.core.engines.choose import open_predictor
    from resnet_gui.core.models.checkpoint import read_checkpoint

    path = resources.path("models/digits-resnet18_cifar.pth")
    with_data = open_predictor(read_checkpoint(path), device="cpu", precision="fp32", path=path)
    plain_ckpt = read_checkpoint(path)
    plain_ckpt.familiarity = None
    without = open_predictor(plain_ckpt, device="cpu", precision="fp32", path=path)
    if with_data.familiarity is None:
        print("familiarity: the bundled demo model has no familiarity data; nothing to measure")
        return
    for n in (1, 64):
        batch = torch.randint(0, 256, (n, 32, 32, 3), dtype=torch.uint8).numpy()
        for _ in range(5):
            with_data.scores(batch), without.scores(batch)
        t_with, t_without = [], []
        for _ in range(repeats):
            for p, sink in ((without, t_without), (with_data, t_with)):
                t0 = time.perf_counter()
                p.scores(batch)
                sink.append(time.perf_counter() - t0)
        mw, mo = statistics.median(t_with) * 1e3, statistics.median(t_without) * 1e3
        print(f"familiarity score, demo model, batch {n:>2}: {mo:7.2f} ms without, {mw:7.2f} ms with: "
              f"+{(mw - mo) / mo:.1%} of the forward pass (goal < 5 %; median of {repeats})")


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--repeats", type=int, default=50)
    args = parser.parse_args()
    print(f"machine: {cpu_name()}, {os.cpu_count()} cores, torch {torch.__version__}, "
          f"{torch.get_num_threads()} threads")
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        bench_arch("resnet18_cifar", 32, args.repeats, folder)
        bench_arch("resnet50", 224, max(10, args.repeats // 5), folder)
        bench_listing(folder)
    bench_familiarity(args.repeats)


if __name__ == "__main__":
    main()
