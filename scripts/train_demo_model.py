#!/usr/bin/env python
"""Train the bundled demo model: resnet18_cifar on scikit-learn's handwritten digits.

scikit-learn ships 1,797 real 8x8 grey handwritten digits (10 classes) inside the package: no download.
They are exported as 32x32 PNGs (dark ink on white, bilinear upscaling), split stratified with a fixed
seed into train (70 %), validation (10 %, picks the best epoch) and a held-out test set (20 %, used
for nothing but the reported accuracy and the sample images). Training goes through the app's own
engine (`resnet_gui.core.train.train`, the "scratch" recipe without flips: digits are not mirror
symmetric). The result is saved in our checkpoint format with float16 weights, its real held-out
accuracy, the seed and this script's command in its metadata.

    .venv/bin/python scripts/train_demo_model.py   # writes resnet_gui/resources/models/…, …/resources/samples/
    .venv/bin/python scripts/train_demo_model.py --subset 300 --epochs 1 --out /tmp/demo.pth --samples /tmp/s

scikit-learn is a development dependency only; the app never needs it at run time.
"""
from __future__ import annotations

import argparse
import os
import shlex
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
DEFAULT_OUT = ROOT / "resnet_gui" / "resources" / "models" / "digits-resnet18_cifar.pth"
DEFAULT_SAMPLES = ROOT / "resnet_gui" / "resources" / "samples"
CLASS_NAMES = [str(i) for i in range(10)]


def digit_image(pixels8x8):
    """An 8x8 array of 0..16 ink values -> 32x32 RGB PIL image, dark ink on white."""
    import numpy as np
    from PIL import Image

    grey = (255 - np.asarray(pixels8x8, dtype=np.float64) * (255 / 16)).clip(0, 255).astype(np.uint8)
    return Image.fromarray(grey, "L").resize((32, 32), Image.Resampling.BILINEAR).convert("RGB")


def split_indices(labels, seed: int, subset: int | None):
    """Stratified 70/10/20 train/val/test split with a fixed seed (optionally of a stratified subset)."""
    import numpy as np
    from sklearn.model_selection import train_test_split

    idx = np.arange(len(labels))
    if subset and subset < len(idx):
        idx, _ = train_test_split(idx, train_size=subset, stratify=labels[idx], random_state=seed)
    rest, test = train_test_split(idx, test_size=0.2, stratify=labels[idx], random_state=seed)
    train, val = train_test_split(rest, test_size=0.125, stratify=labels[rest], random_state=seed)
    return sorted(train), sorted(val), sorted(test)


def export(folder: Path, images, labels, indices) -> list[Path]:
    paths = []
    for i in indices:
        target = folder / CLASS_NAMES[labels[i]] / f"digit_{i:04d}.png"
        target.parent.mkdir(parents=True, exist_ok=True)
        digit_image(images[i]).save(target)
        paths.append(target)
    return paths


def non_digit_samples(folder: Path) -> list[Path]:
    """Two images that are not digits, to show what an unsure or wrong answer looks like."""
    import numpy as np
    from PIL import Image, ImageDraw

    folder.mkdir(parents=True, exist_ok=True)
    board = np.indices((32, 32)).sum(axis=0) // 4 % 2 * 255
    a = folder / "not_a_digit_checkerboard.png"
    Image.fromarray(board.astype(np.uint8), "L").convert("RGB").save(a)
    img = Image.new("RGB", (32, 32), (250, 236, 210))
    d = ImageDraw.Draw(img)
    d.ellipse((6, 6, 26, 26), fill=(230, 120, 40))
    d.rectangle((14, 1, 17, 7), fill=(60, 140, 60))
    b = folder / "not_a_digit_orange.png"
    img.save(b)
    return [a, b]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--epochs", type=int, default=15)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--subset", type=int, help="use a stratified subset of this many digits (tests)")
    parser.add_argument("--out", type=Path, default=DEFAULT_OUT)
    parser.add_argument("--samples", type=Path, default=DEFAULT_SAMPLES, help="where the sample images go")
    parser.add_argument("--samples-per-class", type=int, default=2)
    parser.add_argument("--device", default="auto")
    args = parser.parse_args(argv)
    command = "python scripts/train_demo_model.py " + " ".join(shlex.quote(a) for a in (argv if argv is not None
                                                                                          else sys.argv[1:]))

    import numpy as np
    import sklearn
    from sklearn.datasets import load_digits

    digits = load_digits()
    images, labels = digits.images, digits.target.astype(int)
    train_idx, val_idx, test_idx = split_indices(labels, args.seed, args.subset)
    print(f"digits: {len(train_idx)} train, {len(val_idx)} validation, {len(test_idx)} held-out test", flush=True)

    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        os.environ["RESNET_GUI_HOME"] = str(tmp / "home")  # train in a private registry
        data = tmp / "digits"
        export(data / "train", images, labels, train_idx)
        export(data / "val", images, labels, val_idx)
        test_paths = export(tmp / "test", images, labels, test_idx)

        from resnet_gui.core.checkpoint import load_checkpoint, save_checkpoint
        from resnet_gui.core.predict import Predictor
        from resnet_gui.core.train import events as E
        from resnet_gui.core.train import recipe, train

        cfg = recipe("scratch", data=str(data), arch="resnet18_cifar", epochs=args.epochs, batch_size=64, lr=0.05,
                     warmup_epochs=1 if args.epochs > 2 else 0, augment="pad_crop", hflip=False, seed=args.seed,
                     device=args.device, name="digits-demo")

        def on_event(ev):
            if isinstance(ev, E.Epoch):
                print(f"epoch {ev.epoch}/{ev.epochs}: train acc {ev.train_accuracy:.3f}, "
                      f"val acc {ev.val_accuracy:.3f}, {ev.images_per_s:.0f} img/s", flush=True)
            elif isinstance(ev, E.Warning):
                print(f"warning: {ev.message}", flush=True)

        t0 = time.time()
        result = train(cfg, on_event)
        if result.status != "finished":
            print(f"training failed: {result.message}", file=sys.stderr)
            return 1
        ckpt = load_checkpoint(result.best_path)
        predictor = Predictor(load_checkpoint(result.best_path), device="cpu")
        correct = 0
        for batch in predictor.predict_paths(test_paths, batch_size=128):
            correct += sum(p.label == Path(p.path).parent.name for p in batch)
        test_acc = correct / len(test_paths)
        print(f"held-out test accuracy: {test_acc:.4f} ({correct}/{len(test_paths)}); "
              f"training took {time.time() - t0:.0f} s", flush=True)

        ckpt.metrics = {**ckpt.metrics, "test_accuracy": test_acc, "test_images": len(test_paths)}
        ckpt.dataset = {
            "name": "scikit-learn handwritten digits", "source": f"sklearn.datasets.load_digits (scikit-learn "
            f"{sklearn.__version__}), 1,797 real 8x8 digits upscaled to 32x32", "train_images": len(train_idx),
            "val_images": len(val_idx), "test_images": len(test_idx),
            "split": "stratified 70/10/20 train/validation/test", "seed": args.seed}
        ckpt.notes = {"seed": args.seed, "command": command, "script": "scripts/train_demo_model.py",
                      "held_out_test_accuracy": test_acc, "epochs": args.epochs,
                      "description": "Demo model bundled with ResNet GUI: classifies handwritten digits 0-9."}
        ckpt.train_config = {**ckpt.train_config, "data": "<temporary export of sklearn digits>"}
        args.out.parent.mkdir(parents=True, exist_ok=True)
        save_checkpoint(ckpt, args.out, half=True)
        print(f"wrote {args.out} ({args.out.stat().st_size / 2**20:.1f} MB)")

        if args.samples_per_class > 0:
            args.samples.mkdir(parents=True, exist_ok=True)
            for old in args.samples.glob("digit_*.png"):
                old.unlink()
            rng = np.random.default_rng(args.seed)
            by_class: dict[str, list[Path]] = {}
            for p in test_paths:
                by_class.setdefault(p.parent.name, []).append(p)
            for old in args.samples.glob("hard_digit_*.png"):
                old.unlink()
            chosen = [Path(p) for label, paths in sorted(by_class.items())
                      for p in rng.choice(paths, size=min(args.samples_per_class, len(paths)), replace=False)]
            wrong = 0
            for pred in next(predictor.predict_paths(chosen, batch_size=len(chosen))):
                src = Path(pred.path)
                label = src.parent.name
                # a random held-out digit the model gets wrong is kept, named as such: an honest hard case
                prefix = "digit" if pred.label == label else "hard_digit"
                wrong += prefix != "digit"
                (args.samples / f"{prefix}_{label}_{src.stem.split('_')[1]}.png").write_bytes(src.read_bytes())
            non_digit_samples(args.samples)
            print(f"wrote {len(chosen)} random held-out samples to {args.samples} ({wrong} misclassified, "
                  "named hard_digit_*) and 2 non-digit images")
    return 0


if __name__ == "__main__":
    sys.exit(main())
