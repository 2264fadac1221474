"""One image, whole process: `resnet-gui predict one.jpg` against `python -c "import torch"` alone.

Classifying one image is what an end user does most. The engine (ONNX Runtime, core/inference) should make the
whole command cost less than importing PyTorch. Each run times both processes from start to exit, back to back
(the order alternates), and reads each one's peak resident memory from wait4(); the script prints medians, the
ratio, and whether torch was imported by the command (`-X importtime`).

Models: the bundled demo (its verified int8 version, --precision auto) and, with --arch resnet18, a ResNet-18 at
224 (random weights, fp32: no int8 version) saved in a temporary registry. The first command for a new checkpoint
builds its ONNX graph (cached in the app's cache folder): that run is timed separately.

    .venv/bin/python benchmarks/bench_predict_one.py [--runs 7]
"""
from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from bench_predict import cpu_flags, cpu_name  # noqa: E402

GOAL_RATIO = 0.5      # at most half of `import torch`
GOAL_RSS_MB = 250


def cli_head() -> list[str]:
    script = Path(sys.executable).with_name("resnet-gui")
    return [str(script)] if script.is_file() else [sys.executable, "-m", "resnet_gui"]


# Started from this (large: it may have imported torch) process, a command's peak RSS would include this
# process's own: Linux counts the memory a child shares with its parent until exec (vfork, fork) in the child's
# ru_maxrss (it read 583 MB for a 167 MB command). So a small Python starts each command and times it, like
# /usr/bin/time does.
_MEASURE = """
import resource, subprocess, sys, time
t0 = time.perf_counter()
code = subprocess.run(sys.argv[1:], stdout=subprocess.DEVNULL).returncode
seconds = time.perf_counter() - t0
print("MEASURED", seconds, resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss, file=sys.stderr)
sys.exit(code)
"""


def run(cmd: list[str], env: dict) -> tuple[float, float, str]:
    """Wall seconds, peak RSS in MB and stderr of one whole process."""
    proc = subprocess.run([sys.executable, "-I", "-S", "-c", _MEASURE, *cmd], env=env, stdout=subprocess.DEVNULL,
                          stderr=subprocess.PIPE, text=True)
    err, _, measured = proc.stderr.rstrip("\n").rpartition("\n")
    if proc.returncode != 0 or not measured.startswith("MEASURED "):
        raise SystemExit(f"{' '.join(cmd)} failed ({proc.returncode}):\n{proc.stderr[-2000:]}")
    _, seconds, peak_kb = measured.split()
    return float(seconds), int(peak_kb) / 1024, err


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--runs", type=int, default=7)
    parser.add_argument("--no-resnet18", action="store_true", help="only the demo model")
    args = parser.parse_args()

    import numpy as np
    from PIL import Image

    print(f"machine: {cpu_name()} ({cpu_flags()}), {os.cpu_count()} cores, load average {os.getloadavg()[0]:.1f}")
    with tempfile.TemporaryDirectory() as tmp:
        base = Path(tmp)
        env = {**os.environ, "RESNET_GUI_HOME": str(base / "home")}
        image = base / "one.jpg"
        rng = np.random.default_rng(0)
        try:
            import skimage.data
            Image.fromarray(skimage.data.chelsea()).save(image, quality=90)
        except ImportError:
            Image.fromarray(rng.integers(0, 256, (300, 451, 3), dtype=np.uint8)).save(image, quality=90)
        from resnet_gui.core.models.demo import DEMO_NAME, ensure_demo_model
        from resnet_gui.core.models.registry import Registry

        # installed as the app's first start does (it installs none into a registry that has a model), and named:
        # the registry's default is its newest model, r18 once it is saved below
        ensure_demo_model(Registry(base / "home" / "models"))
        models = [("demo (int8)", ["--model", DEMO_NAME])]
        if not args.no_resnet18:
            import torch

            from resnet_gui.core.models.archs import default_preprocess
            from resnet_gui.core.models.build import build_model
            from resnet_gui.core.models.checkpoint import Checkpoint, write_checkpoint
            torch.manual_seed(0)
            write_checkpoint(Checkpoint(arch="resnet18", class_names=[f"c{i}" for i in range(1000)],
                                        preprocess=default_preprocess("resnet18"),
                                        state_dict=build_model("resnet18", 1000).state_dict()),
                             base / "home" / "models" / "r18.pth")
            models.append(("ResNet-18 at 224 (fp32)", ["--model", "r18"]))
        torch_cmd = [sys.executable, "-c", "import torch"]
        run(torch_cmd, env)  # the disk cache, for both sides
        for label, extra in models:
            cmd = cli_head() + ["predict", str(image), *extra]
            first, first_rss, _ = run(cmd, env)
            _, _, imports = run([sys.executable, "-X", "importtime", "-m", "resnet_gui", "predict", str(image),
                                 *extra], env)
            torch_loaded = any(line.split("|")[-1].strip() == "torch" for line in imports.splitlines())
            ours, rss, theirs = [], [], []
            for i in range(args.runs):
                for cmd_, sink in ((cmd, ours), (torch_cmd, theirs))[:: 1 if i % 2 == 0 else -1]:
                    seconds, peak, _ = run(cmd_, env)
                    sink.append(seconds)
                    if sink is ours:
                        rss.append(peak)
            mo, mt = statistics.median(ours), statistics.median(theirs)
            print(f"\n{label}: first run (builds and caches the graph) {first:.2f} s, {first_rss:.0f} MB")
            print(f"  resnet-gui predict one.jpg: {mo:.2f} s (median of {args.runs}), peak RSS {max(rss):.0f} MB "
                  f"(goal <= {GOAL_RSS_MB} MB); torch imported: {'yes' if torch_loaded else 'no'}")
            print(f"  python -c 'import torch': {mt:.2f} s; ratio ours / import torch = {mo / mt:.2f} "
                  f"(goal <= {GOAL_RATIO})")


if __name__ == "__main__":
    main()
