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
    .venv/bin/python scripts/train_demo_model.py --int8-only   # rebuild only the verified int8 version
    .venv/bin/python scripts/train_demo_model.py --familiarity-only   # refit familiarity data, then int8

scikit-learn is a development dependency only; the app never needs it at run time.
"""
from __future__ import annotations

import argparse
import json
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


def other_images(folder: Path) -> dict[str, list[Path]]:
    """Real images of other kinds, saved as PNGs: scikit-image's photos, faces (lfw_subset), noise and flat
    colours. Returns {kind: [paths]}."""
    import numpy as np
    from PIL import Image

    out: dict[str, list[Path]] = {"photos": [], "faces": [], "noise": [], "flat colours": []}
    folder.mkdir(parents=True, exist_ok=True)
    try:
        import skimage.data as sd
    except ImportError:
        sd = None
    if sd is not None:
        for name in ("astronaut", "camera", "coffee", "chelsea", "rocket", "coins", "hubble_deep_field",
                     "immunohistochemistry", "moon", "page", "text", "clock", "brick", "grass", "gravel", "retina",
                     "cell", "colorwheel", "logo", "cat", "motorcycle_left"):
            try:
                a = np.asarray(getattr(sd, name)())
            except Exception:  # noqa: BLE001 - a photo this scikit-image version lacks
                continue
            if a.ndim == 3 and a.shape[0] == 2:
                a = a[0]
            if a.dtype != np.uint8:
                a = (255 * (a - a.min()) / max(1e-9, float(a.max() - a.min()))).astype(np.uint8)
            path = folder / f"photo_{name}.png"
            Image.fromarray(a if a.ndim == 2 else a[..., :3]).save(path)
            out["photos"].append(path)
        faces = sd.lfw_subset()
        for i in range(0, len(faces), 5):
            path = folder / f"face_{i:03d}.png"
            Image.fromarray((faces[i] * 255).astype(np.uint8), "L").save(path)
            out["faces"].append(path)
    rng = np.random.default_rng(0)
    for i in range(20):
        path = folder / f"noise_{i:02d}.png"
        Image.fromarray(rng.integers(0, 256, (64, 64, 3), dtype=np.uint8)).save(path)
        out["noise"].append(path)
    for i, colour in enumerate(rng.integers(0, 256, (20, 3)).tolist()):
        path = folder / f"flat_{i:02d}.png"
        Image.new("RGB", (48, 48), tuple(colour)).save(path)
        out["flat colours"].append(path)
    return out


def held_out_truth(model_path: Path, test_paths: list[Path], other_folder: Path) -> dict:
    """On the held-out digits: ECE (15 bins) with and without the fitted temperature; familiarity: AUROC and the
    false-positive rate at 95 % true-positive rate against real images of other kinds, and the share flagged."""
    import torch
    from sklearn.metrics import roc_auc_score, roc_curve

    from resnet_gui.core.engines.choose import open_predictor
    from resnet_gui.core.inference.calibration import ECE_BINS, reliability
    from resnet_gui.core.models.checkpoint import read_checkpoint

    predictor = open_predictor(read_checkpoint(model_path), device="cpu", precision="fp32")
    t = predictor.temperature

    def run(paths):
        preds = [p for b in predictor.predict_paths(paths, top_k=10, batch_size=128) for p in b if p.ok]
        return preds

    digits = run(test_paths)
    truth = torch.tensor([int(Path(p.path).parent.name) for p in digits])
    probs = torch.tensor([[dict(p.top_k)[str(c)] for c in range(10)] for p in digits], dtype=torch.float64)
    raw = torch.softmax(torch.log(probs.clamp_min(1e-12)) * t, 1)  # undo the temperature: uncalibrated
    correct = probs.argmax(1) == truth
    ece_cal, _ = reliability(probs.max(1).values, correct, ECE_BINS)
    ece_raw, _ = reliability(raw.max(1).values, correct, ECE_BINS)
    others = other_images(other_folder)
    out = {"temperature": t, "ece_uncalibrated": ece_raw, "ece_calibrated": ece_cal, "digits": len(digits)}
    flags = {"held-out digits": sum(bool(p.unfamiliar) for p in digits) / len(digits)}
    id_scores = [p.familiarity for p in digits]
    ood_scores = []
    for kind, paths in others.items():
        preds = run(paths)
        if preds:
            flags[kind] = sum(bool(p.unfamiliar) for p in preds) / len(preds)
            ood_scores += [p.familiarity for p in preds]
            if kind == "photos":
                out["photos_confidence_median"] = sorted(p.confidence for p in preds)[len(preds) // 2]
    labels = [1] * len(id_scores) + [0] * len(ood_scores)
    scores = id_scores + ood_scores
    fpr, tpr, _ = roc_curve(labels, scores)
    out.update(auroc=float(roc_auc_score(labels, scores)), fpr_at_95_tpr=float(fpr[(tpr >= 0.95).argmax()]),
               flagged=flags, other_images={k: len(v) for k, v in others.items()})
    return out


RESIZE_FILTERS = ("nearest", "bilinear", "bicubic")
SHIFTS = ((0, 0), (1, 0), (-1, 0), (0, 1), (0, -1), (2, 0), (-2, 0), (0, 2), (0, -2),
          (2, 2), (-2, -2), (2, -2), (-2, 2))


def digit_variants(pixels8x8):
    """The same digit as people resize it: upscaled by each of RESIZE_FILTERS, and bilinear shifted by SHIFTS
    (on white); what the demo's familiarity data describes, so none of these reads as unfamiliar."""
    import numpy as np
    from PIL import Image

    grey = (255 - np.asarray(pixels8x8, dtype=np.float64) * (255 / 16)).clip(0, 255).astype(np.uint8)
    small = Image.fromarray(grey, "L")
    out = [small.resize((32, 32), getattr(Image.Resampling, f.upper())).convert("RGB") for f in RESIZE_FILTERS]
    base = out[RESIZE_FILTERS.index("bilinear")]
    for dx, dy in SHIFTS[1:]:
        moved = Image.new("RGB", (32, 32), (255, 255, 255))
        moved.paste(base, (dx, dy))
        out.append(moved)
    return out


def fit_demo_familiarity(model_path: Path, images, labels, train_idx, val_idx) -> dict:
    """The demo's familiarity data (core/inference/familiarity.py) on its own weights: class means and input
    statistics from every training digit in every variant of digit_variants(), the threshold from the validation
    digits' variants, then measured against outliers (outliers.py) as training measures every model."""
    import numpy as np

    from resnet_gui.core.engines.choose import open_predictor
    from resnet_gui.core.inference import familiarity, input_stats, outliers
    from resnet_gui.core.models.checkpoint import read_checkpoint, write_checkpoint
    from resnet_gui.core.models.preprocess import resize_and_crop

    predictor = open_predictor(read_checkpoint(model_path), device="cpu", precision="fp32", path=model_path)
    pre = predictor.preprocess

    def described(indices):
        pixels = np.stack([np.asarray(resize_and_crop(v, pre)) for i in indices for v in digit_variants(images[i])])
        feats = np.concatenate([predictor.outputs(pixels[s:s + 256], ("features",))["features"]
                                for s in range(0, len(pixels), 256)])
        per = len(pixels) // len(indices)
        return pixels, feats, input_stats.image_stats(pixels), np.repeat(np.asarray(labels)[list(indices)], per)

    _, train_f, train_s, train_y = described(train_idx)
    val_p, val_f, val_s, _ = described(val_idx)
    fam = familiarity.fit(train_f, train_y, val_f, len(CLASS_NAMES), train_stats=train_s, val_stats=val_s,
                          source=f"{len(train_idx)} training digits, each resized {len(RESIZE_FILTERS)} ways and "
                                 f"shifted {len(SHIFTS) - 1} ways; threshold from {len(val_idx)} validation digits "
                                 "the same ways")
    val_flags = fam.judge(val_f)[1] | fam.inputs.unusual(val_s)
    rng = np.random.default_rng(0)
    fam.measured = outliers.measure(
        lambda px: fam.judge(predictor.outputs(px, ("features",))["features"], px)[1],
        val_p[rng.choice(len(val_p), 64, replace=False)], pre, val_flagged=val_flags)
    ckpt = read_checkpoint(model_path)
    ckpt.familiarity = fam.to_checkpoint()
    write_checkpoint(ckpt, model_path, half=True)
    return fam.measured


def record_held_out_truth(model_path: Path, test_paths: list[Path], other_folder: Path) -> dict:
    """held_out_truth() of the model at model_path, printed and stored in its notes ("held_out")."""
    from resnet_gui.core.models.checkpoint import read_checkpoint, write_checkpoint

    truth = held_out_truth(model_path, test_paths, other_folder)
    print("held-out calibration and familiarity: " + json.dumps(truth), flush=True)
    ckpt = read_checkpoint(model_path)
    ckpt.notes = {**ckpt.notes, "held_out": truth}
    write_checkpoint(ckpt, model_path, half=True)
    return truth


def add_int8_version(model_path: Path, images, labels, train_idx, held_idx, seed: int) -> dict:
    """The demo's verified int8 version (core/evaluation/int8_version.py): calibrated on 64 of its training digits,
    verified against fp32 on the validation and held-out test digits; stored in the checkpoint when it passes."""
    import numpy as np

    from resnet_gui.core.evaluation.int8_version import build_int8
    from resnet_gui.core.models.checkpoint import read_checkpoint, write_checkpoint
    from resnet_gui.core.models.preprocess import resize_and_crop

    ckpt = read_checkpoint(model_path)

    def pixels(indices):
        return np.stack([np.asarray(resize_and_crop(digit_image(images[i]), ckpt.preprocess)) for i in indices])

    chosen = np.random.default_rng(seed).permutation(np.asarray(train_idx))[:64]
    record, blob = build_int8(ckpt, pixels(chosen), pixels(held_idx), np.asarray(labels)[list(held_idx)])
    ckpt.int8, ckpt.int8_model = record, blob
    write_checkpoint(ckpt, model_path, half=True)
    return record


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--epochs", type=int, default=15)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--subset", type=int, help="use a stratified subset of this many digits (tests)")
    parser.add_argument("--out", type=Path, default=DEFAULT_OUT)
    parser.add_argument("--samples", type=Path, default=DEFAULT_SAMPLES, help="where the sample images go")
    parser.add_argument("--samples-per-class", type=int, default=2)
    parser.add_argument("--device", default="auto")
    parser.add_argument("--int8-only", action="store_true",
                        help="only (re)build the verified int8 version of the model at --out (seconds, no training)")
    parser.add_argument("--familiarity-only", action="store_true",
                        help="only refit the familiarity data of the model at --out on its own weights, then its int8 "
                             "version (a minute, no training)")
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
    if args.familiarity_only:
        measured = fit_demo_familiarity(args.out, images, labels, train_idx, val_idx)
        print("familiarity measured when fitted: " + json.dumps(measured), flush=True)
        with tempfile.TemporaryDirectory() as tmp:
            record_held_out_truth(args.out, export(Path(tmp) / "test", images, labels, test_idx), Path(tmp) / "o")
    if args.int8_only or args.familiarity_only:
        record = add_int8_version(args.out, images, labels, train_idx, list(val_idx) + list(test_idx), args.seed)
        print("int8 version: " + json.dumps({k: v for k, v in record.items() if k != "fingerprint"}), flush=True)
        return 0 if record.get("kept") else 1

    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        os.environ["RESNET_GUI_HOME"] = str(tmp / "home")  # train in a private registry
        data = tmp / "digits"
        export(data / "train", images, labels, train_idx)
        export(data / "val", images, labels, val_idx)
        test_paths = export(tmp / "test", images, labels, test_idx)

        from resnet_gui.core.engines.choose import open_predictor
        from resnet_gui.core.models.checkpoint import read_checkpoint, write_checkpoint
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
        ckpt = read_checkpoint(result.best_path)
        predictor = open_predictor(read_checkpoint(result.best_path), device="cpu", precision="fp32")
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
        write_checkpoint(ckpt, args.out, half=True)
        measured = fit_demo_familiarity(args.out, images, labels, train_idx, val_idx)
        print("familiarity measured when fitted: " + json.dumps(measured), flush=True)
        record_held_out_truth(args.out, test_paths, tmp / "other")
        record = add_int8_version(args.out, images, labels, train_idx, list(val_idx) + list(test_idx), args.seed)
        print("int8 version: " + json.dumps({k: v for k, v in record.items() if k != "fingerprint"}), flush=True)
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
