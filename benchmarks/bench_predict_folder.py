"""Folder prediction, whole process: `resnet-gui predict FOLDER --csv OUT` against the plain torchvision way.

The plain way (its own process, like a tutorial script): a Dataset of paths, PIL open + Resize(256) +
CenterCrop(224) + ToTensor + Normalize in a DataLoader with 2 workers, batch 64, model.eval() under
inference_mode, top-5 written to a CSV. Both sides load the same ResNet-18 weights and read the same JPEG files;
each run times both whole processes back to back (the order alternates), and the script prints medians and the
ratio. Two models (--models):

* imported: a tutorial checkpoint (`torch.save(model.state_dict())` of torchvision's resnet18, random weights,
  1000 classes: no download here) brought in with `resnet-gui models import`: no int8 version, so our side runs
  the fp32 graph in ONNX Runtime;
* trained: a ResNet-18 the app trains itself (`resnet-gui train`, 3 epochs from scratch at 224 on scikit-image's
  lfw_subset: 100 faces, 100 non-faces), which ends with its verified int8 version: our side runs that (the
  default --precision auto), the plain way runs the same weights in fp32.

The photos are scikit-image's sample photographs (`skimage.data`), cropped, resized, colour-jittered, given
a little sensor noise and saved as JPEG quality 90 (smooth random images when scikit-image is missing).

Also printed: the ceiling, a bare forward pass on tensors already decoded (images/s), the start-up of each
side (the same command on an empty folder / with no files) and how close the whole pipeline gets.

    .venv/bin/python benchmarks/bench_predict_folder.py [--runs 5] [--sets camera,small]
        [--models imported,trained] [--keep DIR]
"""
from __future__ import annotations

import argparse
import csv
import os
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

SETS = {  # name: (count, width, height)
    "camera": (200, 1600, 1200),
    "small": (400, 500, 375),
}
GOALS = {("camera", "imported"): 2.0, ("camera", "trained"): 3.0,
         ("small", "imported"): 1.2, ("small", "trained"): 1.2}
NUM_CLASSES = 1000


# ---- the plain torchvision way (runs in its own process: `--plain FOLDER WEIGHTS OUT`) ----------------
def plain_main(folder: str, weights: str, out: str) -> None:
    import torch
    import torchvision
    from PIL import Image
    from torch.utils.data import DataLoader, Dataset
    from torchvision import transforms as T

    class Paths(Dataset):
        def __init__(self, paths, transform):
            self.paths, self.transform = paths, transform

        def __len__(self):
            return len(self.paths)

        def __getitem__(self, i):
            with Image.open(self.paths[i]) as im:
                return self.transform(im.convert("RGB")), i

    paths = sorted(str(p) for p in Path(folder).iterdir() if p.suffix.lower() in (".jpg", ".jpeg", ".png"))
    transform = T.Compose([T.Resize(256), T.CenterCrop(224), T.ToTensor(),
                           T.Normalize(mean=[0.485, 0.456, 0.406], std=[0.229, 0.224, 0.225])])
    state = torch.load(weights, weights_only=True)
    model = torchvision.models.resnet18(num_classes=state["fc.weight"].shape[0])
    model.load_state_dict(state)
    model.eval()
    loader = DataLoader(Paths(paths, transform), batch_size=64, num_workers=2)
    rows = []
    with torch.inference_mode():
        for x, idx in loader:
            probs, classes = model(x).softmax(dim=1).topk(min(5, model.fc.out_features), dim=1)
            for i, p, c in zip(idx.tolist(), probs.tolist(), classes.tolist()):
                top = [value for label, prob in zip(c, p) for value in (f"c{label}", f"{prob:.6f}")]
                rows.append([paths[i], f"c{c[0]}", f"{p[0]:.6f}", *top])
    header = ["path", "label", "confidence"] + [f"top{i}_{k}" for i in range(1, 6) for k in ("label", "prob")]
    with open(out, "w", newline="") as f:
        writer = csv.writer(f)
        writer.writerow(header)
        writer.writerows(rows)


# ---- test files and the model -------------------------------------------------------------------------
def sample_photos():
    """scikit-image's bundled colour and grey photographs as RGB uint8 arrays (None without scikit-image)."""
    try:
        import numpy as np
        import skimage.data as data
    except ImportError:
        return None
    photos = []
    for name in ("astronaut", "coffee", "chelsea", "rocket", "hubble_deep_field", "immunohistochemistry",
                 "retina", "stereo_motorcycle", "camera", "brick", "grass", "gravel"):
        try:
            value = getattr(data, name)()
        except Exception:  # noqa: BLE001 - a photo that needs a download is simply skipped
            continue
        for arr in (value[:2] if isinstance(value, tuple) else (value,)):
            if arr.ndim == 2:
                arr = np.stack([arr] * 3, axis=-1)
            photos.append(np.ascontiguousarray(arr[..., :3]).astype(np.uint8))
    return photos or None


def make_files(folder: Path, count: int, width: int, height: int, seed: int = 0) -> str:
    """`count` JPEGs (quality 90) of width x height in `folder`; returns what they were made from."""
    import numpy as np
    from PIL import Image

    folder.mkdir(parents=True, exist_ok=True)
    if len(list(folder.glob("*.jpg"))) == count:
        return "existing files"
    photos = sample_photos()
    for i in range(count):
        rng = np.random.default_rng(seed + i)
        if photos is not None:
            src = photos[i % len(photos)]
            h, w = src.shape[:2]
            aspect = width / height
            ch, cw = (h, int(h * aspect)) if w / h > aspect else (int(w / aspect), w)
            frac = rng.uniform(0.7, 1.0)
            ch, cw = max(8, int(ch * frac)), max(8, int(cw * frac))
            y, x = rng.integers(0, h - ch + 1), rng.integers(0, w - cw + 1)
            img = Image.fromarray(src[y:y + ch, x:x + cw]).resize((width, height), Image.Resampling.BICUBIC)
            arr = np.asarray(img).astype(np.float32)
            if rng.random() < 0.5:
                arr = arr[:, ::-1]
            arr = arr * rng.uniform(0.8, 1.2) * rng.uniform(0.9, 1.1, size=3) + rng.normal(0, 2.5, arr.shape)
        else:  # smooth random images: a few low-frequency waves per channel
            yy, xx = np.mgrid[0:height, 0:width].astype(np.float32)
            arr = np.zeros((height, width, 3), np.float32)
            for c in range(3):
                for _ in range(4):
                    fx, fy, ph = rng.uniform(0.5, 6, 2).tolist() + [rng.uniform(0, 6.3)]
                    arr[..., c] += 30 * np.sin(xx / width * fx * 6.3 + yy / height * fy * 6.3 + ph)
            arr += 128 + rng.normal(0, 2.5, arr.shape)
        Image.fromarray(np.clip(arr, 0, 255).astype(np.uint8)).save(folder / f"img{i:04d}.jpg", quality=90)
    return "scikit-image photos" if photos is not None else "smooth random images (no scikit-image)"


def run_cli(args: list[str], env: dict) -> str:
    done = subprocess.run(cli_head() + args, env=env, capture_output=True, text=True)
    if done.returncode != 0:
        raise SystemExit(f"resnet-gui {' '.join(args)} failed ({done.returncode}):\n{done.stderr[-2000:]}")
    return done.stdout


def imported_model(home: Path, env: dict) -> Path:
    """A tutorial state dict (random weights: no download here) imported with `models import`."""
    import torch
    import torchvision

    home.mkdir(parents=True, exist_ok=True)
    plain = home / "imported_plain.pth"
    if not (home / "models" / "bench-imported.pth").is_file():
        torch.manual_seed(0)
        torch.save(torchvision.models.resnet18(num_classes=NUM_CLASSES).state_dict(), plain)
        run_cli(["models", "import", str(plain), "--name", "bench-imported", "--arch", "resnet18",
                 "--classes", ",".join(f"c{i}" for i in range(NUM_CLASSES))], env)
    return plain


def trained_model(home: Path, env: dict, epochs: int) -> Path:
    """A ResNet-18 the app trains on lfw_subset (faces / non-faces), with the int8 version training builds;
    the same weights as a plain state dict for the plain side."""
    import numpy as np
    import skimage.data
    import torch
    from PIL import Image

    from resnet_gui.core.inference.int8 import int8_status
    from resnet_gui.core.models.checkpoint import read_checkpoint

    path, plain = home / "models" / "bench-trained.pth", home / "trained_plain.pth"
    if not path.is_file():
        images, labels = skimage.data.lfw_subset(), np.r_[np.ones(100, int), np.zeros(100, int)]
        data = home / "lfw"
        for i, (image, label) in enumerate(zip(images, labels)):
            folder = data / ("face" if label else "not_face")
            folder.mkdir(parents=True, exist_ok=True)
            Image.fromarray((image * 255).round().astype(np.uint8)).save(folder / f"{i:03d}.png")
        t0 = time.perf_counter()
        run_cli(["train", "--dataset", "folder", "--data", str(data), "--arch", "resnet18", "--epochs", str(epochs),
                 "--batch-size", "32", "--lr", "0.01", "--name", "bench-trained", "--seed", "0"], env)
        print(f"trained bench-trained ({epochs} epochs, {time.perf_counter() - t0:.0f} s)")
    checkpoint = read_checkpoint(path)
    status = int8_status(checkpoint)
    accuracy = checkpoint.metrics.get("val_accuracy", float("nan"))
    print(f"trained model ({accuracy:.1%} validation accuracy): int8 version "
          + ("kept, " if status.usable else "NOT kept: ") + status.reason)
    if not plain.is_file():
        torch.save({k: torch.from_numpy(v.astype(np.float32) if v.dtype.kind == "f" else v)
                    for k, v in checkpoint.state_dict.items()}, plain)  # read as numpy arrays
    return plain


# ---- timing ---------------------------------------------------------------------------------------------
def cli_head() -> list[str]:
    script = Path(sys.executable).with_name("resnet-gui")
    return [str(script)] if script.is_file() else [sys.executable, "-m", "resnet_gui"]


def ours_command(folder: Path, out: Path, model: str) -> list[str]:
    return cli_head() + ["predict", str(folder), "--model", model, "--csv", str(out)]


def plain_command(folder: Path, weights: Path, out: Path) -> list[str]:
    return [sys.executable, os.path.abspath(__file__), "--plain", str(folder), str(weights), str(out)]


CPU_SECONDS: dict[int, float] = {}  # id of a timing list -> CPU seconds (user + system) of its runs


def timed(cmd: list[str], env: dict, ok_codes=(0,), cpu: list | None = None) -> float:
    """Wall seconds of one whole process; its CPU seconds (it and its children) go to `cpu`."""
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    t0 = time.perf_counter()
    done = subprocess.run(cmd, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    elapsed = time.perf_counter() - t0
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    if done.returncode not in ok_codes:
        raise SystemExit(f"{' '.join(cmd)} failed ({done.returncode}):\n{done.stderr[-2000:]}")
    if cpu is not None:
        cpu.append(after.ru_utime - before.ru_utime + after.ru_stime - before.ru_stime)
    return elapsed


def top1(path: Path, class_names: list[str] | None = None) -> dict[str, str]:
    """File name -> top-1 label; with class_names, ours written as the plain side writes it (c<index>)."""
    index = {name: f"c{i}" for i, name in enumerate(class_names or [])}
    with open(path, newline="") as f:
        return {os.path.basename(row["path"]): index.get(row["label"], row["label"]) for row in csv.DictReader(f)}


def ceiling(count: int, runs: int) -> dict[str, float]:
    """Images/s of a bare forward pass on a uint8 batch already decoded, as our side runs it (channels_last
    where the Predictor uses it) and plain NCHW fp32, batch 64, in this process."""
    import torch

    from resnet_gui.core.models.build import build_model

    model = build_model("resnet18", NUM_CLASSES).eval()
    x = torch.randn(64, 3, 224, 224)
    out = {}
    for name, fmt in (("NCHW", torch.contiguous_format), ("channels_last", torch.channels_last)):
        m, xx = model.to(memory_format=fmt), x.contiguous(memory_format=fmt)
        times = []
        with torch.inference_mode():
            m(xx)
            for _ in range(max(3, runs)):
                t0 = time.perf_counter()
                m(xx)
                times.append(time.perf_counter() - t0)
        out[name] = 64 / statistics.median(times)
    return out


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--runs", type=int, default=5, help="timed runs of each side (medians are reported)")
    parser.add_argument("--sets", default="camera,small", help="comma-separated: " + ", ".join(SETS))
    parser.add_argument("--keep", type=Path, help="make (or reuse) the files and the model in this folder")
    parser.add_argument("--models", default="imported,trained", help="comma-separated: imported, trained")
    parser.add_argument("--epochs", type=int, default=3, help="epochs of the trained model")
    parser.add_argument("--no-ceiling", action="store_true")
    parser.add_argument("--tree", type=Path, help="also time `resnet-gui predict` run from this source tree "
                        "(e.g. an unpacked `git archive` of an older commit), on PYTHONPATH")
    parser.add_argument("--plain", nargs=3, metavar=("FOLDER", "WEIGHTS", "OUT"), help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.plain:
        plain_main(*args.plain)
        return

    import torch

    sys.path.insert(0, str(Path(__file__).resolve().parent))
    from bench_predict import cpu_flags, cpu_name

    print(f"machine: {cpu_name()} ({cpu_flags()}), {os.cpu_count()} cores, torch {torch.__version__}, "
          f"{torch.get_num_threads()} threads, load average {os.getloadavg()[0]:.1f}")
    with tempfile.TemporaryDirectory() as tmp:
        base = args.keep or Path(tmp)
        home = base / "home"
        env = {**os.environ, "RESNET_GUI_HOME": str(home)}
        tree_env = {**env, "PYTHONPATH": str(args.tree)} if args.tree else env
        models = {}
        for kind in args.models.split(","):
            weights = (imported_model(home, env) if kind == "imported" else trained_model(home, env, args.epochs))
            models[kind] = (f"bench-{kind}", weights)
        empty = base / "empty"
        empty.mkdir(parents=True, exist_ok=True)
        name0, weights0 = next(iter(models.values()))
        start_ours = [timed(ours_command(empty, base / "e.csv", name0), env, ok_codes=(1,)) for _ in range(args.runs)]
        start_plain = [timed(plain_command(empty, weights0, base / "e.csv"), env) for _ in range(args.runs)]
        print(f"start-up (no files): ours {statistics.median(start_ours):.2f} s, plain "
              f"{statistics.median(start_plain):.2f} s (median of {args.runs})")
        ceil = None if args.no_ceiling else ceiling(64, args.runs)
        if ceil:
            print("ceiling, bare torch forward pass on decoded tensors, batch 64: "
                  + ", ".join(f"{k} {v:.0f} images/s" for k, v in ceil.items()))
        for name in args.sets.split(","):
            count, width, height = SETS[name]
            folder = base / f"{name}_{width}x{height}"
            t0 = time.perf_counter()
            what = make_files(folder, count, width, height)
            print(f"\n{name}: {count} JPEGs of {width}x{height} ({what}, {time.perf_counter() - t0:.0f} s to make)")
            for kind, (model, weights) in models.items():
                compare(name, kind, model, weights, folder, count, base, env, tree_env, args, start_ours, ceil)


def compare(name, kind, model, weights, folder, count, base, env, tree_env, args, start_ours, ceil) -> None:
    """Both sides on one folder with one model, `args.runs` times, alternating the order."""
    print(f" {kind} model ({model}):")
    t_ours, t_plain, t_tree = [], [], []
    c_ours, c_plain, c_tree = [], [], []
    for run in range(args.runs):
        sides = [(t_ours, c_ours, ours_command(folder, base / "ours.csv", model), env),
                 (t_plain, c_plain, plain_command(folder, weights, base / "plain.csv"), env)]
        if args.tree:
            sides.append((t_tree, c_tree, ours_command(folder, base / "tree.csv", model), tree_env))
        for sink, cpu, cmd, side_env in (sides if run % 2 == 0 else sides[::-1]):
            sink.append(timed(cmd, side_env, cpu=cpu))
        extra = f", {args.tree} {t_tree[-1]:.2f} s" if args.tree else ""
        print(f"  run {run + 1}: ours {t_ours[-1]:.2f} s, plain {t_plain[-1]:.2f} s{extra}, "
              f"ratio {t_plain[-1] / t_ours[-1]:.2f}x (load {os.getloadavg()[0]:.1f})", flush=True)
    mo, mp = statistics.median(t_ours), statistics.median(t_plain)
    print(f"  CPU seconds (user + system, median): ours {statistics.median(c_ours):.1f}, plain "
          f"{statistics.median(c_plain):.1f}" + (f", {args.tree} {statistics.median(c_tree):.1f}"
                                                 if args.tree else ""))
    if args.tree:
        mt = statistics.median(t_tree)
        print(f"  {args.tree} (the same command from that source tree): {mt:.2f} s; ours is "
              f"{mt / mo:.2f}x faster, the plain way {mt / mp:.2f}x")
    from resnet_gui.core.models.checkpoint import read_checkpoint_metadata

    names = read_checkpoint_metadata(Path(env["RESNET_GUI_HOME"]) / "models" / f"{model}.pth")["class_names"]
    ours_top, plain_top = top1(base / "ours.csv", names), top1(base / "plain.csv")
    same = sum(ours_top.get(k) == v for k, v in plain_top.items())
    print(f"  median of {args.runs}: ours {mo:.2f} s, plain {mp:.2f} s: {mp / mo:.2f}x "
          f"(median of per-run ratios {statistics.median(p / o for p, o in zip(t_plain, t_ours)):.2f}x; "
          f"goal >= {GOALS[name, kind]}x)")
    rate = count / mo
    steady = count / max(1e-9, mo - statistics.median(start_ours))
    line = f"  ours: {rate:.0f} images/s whole process, {steady:.0f} images/s after start-up"
    if ceil:
        line += f" ({steady / max(ceil.values()):.0%} of torch's bare forward pass)"
    print(line)
    print(f"  same top-1 as the plain way on {same} of {len(plain_top)} files (the resize differs slightly)")


if __name__ == "__main__":
    main()
