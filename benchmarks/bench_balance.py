"""Remedies for class imbalance on a real imbalanced set: scikit-image's lfw_subset, its 100 faces against 20 of
its non-faces, written as class folders; ResNet-18 from scratch at 32 px (--arch, --image-size), the same seeds,
split and epochs for --balance none, weighted-loss and weighted-sampler; the balanced accuracy (and plain accuracy,
and the non-faces' recall) of each run's best model on its validation split, as the end of the run measures it.

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


def write_faces(root: Path, faces: int = 100, others: int = 20) -> Path:
    import numpy as np
    from PIL import Image
    from skimage.data import lfw_subset

    images = lfw_subset()  # 200 grey 25 x 25 images: 100 faces, then 100 non-faces
    for name, chosen in (("face", images[:faces]), ("not face", images[100:100 + others])):
        (root / name).mkdir(parents=True, exist_ok=True)
        for i, img in enumerate(chosen):
            Image.fromarray((img * 255).round().astype(np.uint8)).convert("RGB").save(root / name / f"{i:03d}.png")
    return root


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
        from resnet_gui.core.models.checkpoint import read_metadata
        from resnet_gui.core.train import recipe, train

        data = write_faces(Path(tmp) / "faces")
        rows: dict[str, list[tuple[float, float, float]]] = {mode: [] for mode in MODES}
        for seed in args.seeds:
            for mode in MODES:
                # the from-scratch recipe at batch 16, its rate scaled linearly from batch 64 (0.05)
                cfg = recipe("scratch", data=str(data), arch=args.arch, image_size=args.image_size, epochs=args.epochs,
                             batch_size=16, lr=0.0125, val_split=0.3, seed=seed, device=args.device, balance=mode,
                             threads=args.threads, name=f"faces-{mode}-{seed}")
                result = train(cfg)
                if result.status != "finished":
                    raise SystemExit(f"{mode}, seed {seed}: {result.message}")
                metrics = read_metadata(result.best_path)["metrics"]
                recall = next(c["recall"] for c in metrics["per_class"] if c["class"] == "not face")
                rows[mode].append((metrics["balanced_accuracy"], metrics["val_accuracy"], recall))
                print(f"seed {seed} {mode:>16}: balanced accuracy {metrics['balanced_accuracy']:.1%}, accuracy "
                      f"{metrics['val_accuracy']:.1%}, non-faces found {recall:.0%}", flush=True)
        print(f"\n100 faces vs 20 non-faces (lfw_subset), 30 % validation (30 vs 6), {args.arch} at "
              f"{args.image_size} px from scratch, {args.epochs} epochs, seeds {' '.join(map(str, args.seeds))}:")
        print("| --balance | balanced accuracy | accuracy | non-faces found |")
        print("|---|---|---|---|")
        for mode, values in rows.items():
            ba, acc, rec = (statistics.mean(v[i] for v in values) for i in range(3))
            spread = f" ({min(v[0] for v in values):.1%}-{max(v[0] for v in values):.1%})" if len(values) > 1 else ""
            print(f"| {mode} | {ba:.1%}{spread} | {acc:.1%} | {rec:.0%} |")


if __name__ == "__main__":
    main()
