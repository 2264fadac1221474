"""Reading a checkpoint: the torch-free reader (resnet_gui/core/models/pth_read.py) against torch.load.

    python benchmarks/bench_checkpoint_read.py [--repeat 7]

For a ResNet-18 and a ResNet-50 checkpoint in our format (random weights, float32, written by write_checkpoint),
each reader runs in a fresh process, several times on a warm page cache; the median time and the memory are
printed with the ratio. Memory: the process's peak resident size (VmHWM) and how much the reads added to what
the process held before its first read (for torch, after `import torch`).

- read_checkpoint: the whole validated read (metadata, dense checks, shapes against the architecture, finite
  values, float32 numpy arrays); what prediction, training and export call.
- torch.load(weights_only=True): the raw load alone, without any of those checks.
- read_checkpoint_metadata against torch.load(mmap=True): what listing the registry reads per file.
"""
from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]

_CHILD = """
import json, statistics, sys, time
sys.path.insert(0, {root!r})
def status(field):
    return next(int(line.split()[1]) for line in open("/proc/self/status") if line.startswith(field)) // 1024
kind, path, repeat = sys.argv[1], sys.argv[2], int(sys.argv[3])
if kind.startswith("torch"):
    import torch
    mmap = kind == "torch-mmap"
    run = lambda: torch.load(path, map_location="cpu", weights_only=True, mmap=mmap)
else:
    from resnet_gui.core.models import checkpoint
    run = (lambda: checkpoint.read_checkpoint(path)) if kind == "ours" else \\
        (lambda: checkpoint.read_checkpoint_metadata(path))
before = status("VmRSS")
times = []
for _ in range(repeat):
    start = time.perf_counter()
    result = run()
    times.append(time.perf_counter() - start)
    del result
peak = status("VmHWM")
print(json.dumps({{"median_s": statistics.median(times), "peak_mb": peak, "added_mb": peak - before,
                  "torch_imported": "torch" in sys.modules}}))
"""


def make(arch: str, folder: Path) -> Path:
    import numpy as np

    from resnet_gui.core.models.archs import default_preprocess, state_dict_shapes
    from resnet_gui.core.models.checkpoint import Checkpoint, write_checkpoint

    rng = np.random.default_rng(0)
    state = {k: (np.zeros(s, dtype=np.int64) if k.endswith("num_batches_tracked")
                 else rng.standard_normal(s, dtype=np.float32) * 0.01) for k, s in state_dict_shapes(arch, 10).items()}
    ckpt = Checkpoint(arch=arch, class_names=[f"c{i}" for i in range(10)], preprocess=default_preprocess(arch),
                      state_dict=state)
    return write_checkpoint(ckpt, folder / f"{arch}.pth")


def measure(kind: str, path: Path, repeat: int) -> dict:
    out = subprocess.run([sys.executable, "-c", _CHILD.format(root=str(ROOT)), kind, str(path), str(repeat)],
                         capture_output=True, text=True, check=True)
    return json.loads(out.stdout.strip().splitlines()[-1])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeat", type=int, default=7)
    args = parser.parse_args()
    sys.path.insert(0, str(ROOT))
    with tempfile.TemporaryDirectory() as tmp:
        for arch in ("resnet18", "resnet50"):
            path = make(arch, Path(tmp))
            size = path.stat().st_size / 2**20
            print(f"{arch}: {size:.1f} MiB")
            for ours, theirs, what in (("ours", "torch", "weights"), ("ours-meta", "torch-mmap", "metadata")):
                a, b = measure(ours, path, args.repeat), measure(theirs, path, args.repeat)
                assert not a["torch_imported"], "the torch-free reader imported torch"
                print(f"  {what:8s} {ours:10s} {a['median_s'] * 1000:7.1f} ms  peak {a['peak_mb']:5d} MB "
                      f"(reads added {a['added_mb']:4d} MB)")
                print(f"  {'':8s} {theirs:10s} {b['median_s'] * 1000:7.1f} ms  peak {b['peak_mb']:5d} MB "
                      f"(reads added {b['added_mb']:4d} MB)")
                print(f"  {'':8s} time ours / torch: {a['median_s'] / b['median_s']:.2f}")


if __name__ == "__main__":
    main()
