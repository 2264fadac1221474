"""Remedies for class imbalance on a real imbalanced set: scikit-image's lfw_subset, its 100 faces against 20 of
its non-faces, written as class folders; ResNet-18 from scratch at 32 px (--arch, --image-size), the same seeds,
split and epochs for --balance none, weighted-loss and weighted-sampler; the balanced accuracy (and plain accuracy,
and the non-faces' recall) of each run's best model on its validation split, as the end of the run measures it.
That split holds only 6 non-faces, so each model is also evaluated (core.evaluation.evaluate, the app's own path)
on the 80 non-faces no run trained on: the share of them it finds, and the balanced accuracy of the run's 30
validation faces with those 80.

    .venv/bin/python benchmarks/bench_balance.py [--epochs 12] [--seeds 0 1 2] [--arch resnet18] [--image-size 32]
                                                 [--device cpu] [--threads N]

Accuracy, not speed: the figures in the README's "Training recipes" section come from this script.
"""
from __future__ import annotations

import argparse
import os
import statistics
import tempfile
from pathlib import Path

MODES = ("none", "weighted-loss", "weighted-sampler")


def write_faces(root: Path, unseen: Path, faces: int = 100, others: int = 20) -> Path:
    """The imbalanced training folder at root; the non-faces it leaves out under unseen/not face."""
    import numpy as np
    from PIL import Image
    from skimage.data import lfw_subset

    images = lfw_subset()  # 200 grey 25 x 25 images: 100 faces, then 100 non-faces
    for folder, chosen in ((root / "face", images[:faces]), (root / "not face", images[100:100 + others]),
                           (unseen / "not face", images[100 + others:])):
        folder.mkdir(parents=True, exist_ok=True)
        for i, img in enumerate(chosen):
            Image.fromarray((img * 255).round().astype(np.uint8)).convert("RGB").save(folder / f"{i:03d}.png")
    return root


def spread(values: list[tuple[float, ...]], i: int) -> str:
    """ (lowest-highest) of column i over the seeds."""
    return f" ({min(v[i] for v in values):.1%}-{max(v[i] for v in values):.1%})" if len(values) > 1 else ""


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--epochs", type=int, default=12)
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    parser.add_argument("--arch", default="resnet18")
    parser.add_argument("--image-size", type=int, default=32)
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--threads", type=int, default=None,
                        help="CPU threads (on a loaded machine 1 thread ran 10x faster than 2)")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        os.environ["RESNET_GUI_HOME"] = str(Path(tmp) / "home")  # runs and models go away with it
        from resnet_gui.core.evaluation.evaluate import evaluate
        from resnet_gui.core.models.checkpoint import read_checkpoint_metadata
        from resnet_gui.core.train import recipe, train

        unseen = Path(tmp) / "unseen"
        data = write_faces(Path(tmp) / "faces", unseen)
        rows: dict[str, list[tuple[float, ...]]] = {mode: [] for mode in MODES}
        for seed in args.seeds:
            for mode in MODES:
                # the from-scratch recipe at batch 16, its rate scaled linearly from batch 64 (0.05)
                cfg = recipe("scratch", data=str(data), arch=args.arch, image_size=args.image_size, epochs=args.epochs,
                             batch_size=16, lr=0.0125, val_split=0.3, seed=seed, device=args.device, balance=mode,
                             threads=args.threads, name=f"faces-{mode}-{seed}")
                result = train(cfg)
                if result.status != "finished":
                    raise SystemExit(f"{mode}, seed {seed}: {result.message}")
                metrics = read_checkpoint_metadata(result.best_path)["metrics"]
                recall = {c["class"]: c["recall"] for c in metrics["per_class"]}
                found = evaluate(result.best_path, str(unseen), device=args.device).figures.accuracy
                rows[mode].append((metrics["balanced_accuracy"], metrics["val_accuracy"], recall["not face"], found,
                                   (recall["face"] + found) / 2))
                print(f"seed {seed} {mode:>16}: balanced accuracy {metrics['balanced_accuracy']:.1%}, accuracy "
                      f"{metrics['val_accuracy']:.1%}, non-faces found {recall['not face']:.0%} of 6, "
                      f"{found:.1%} of the 80 unseen (balanced with the validation faces "
                      f"{(recall['face'] + found) / 2:.1%})", flush=True)
        print(f"\n100 faces vs 20 non-faces (lfw_subset), 30 % validation (30 vs 6), {args.arch} at "
              f"{args.image_size} px from scratch, {args.epochs} epochs, seeds {' '.join(map(str, args.seeds))}:")
        print("| --balance | balanced accuracy (validation) | accuracy (validation) | non-faces found (6) "
              "| unseen non-faces found (80) | balanced accuracy (30 faces, 80 unseen non-faces) |")
        print("|---|---|---|---|---|---|")
        for mode, values in rows.items():
            ba, acc, rec, found, held = (statistics.mean(v[i] for v in values) for i in range(5))
            print(f"| {mode} | {ba:.1%}{spread(values, 0)} | {acc:.1%} | {rec:.0%} | {found:.1%}{spread(values, 3)} | "
                  f"{held:.1%}{spread(values, 4)} |")


if __name__ == "__main__":
    main()
