"""Can a model tell that an image is unlike anything it was trained on? Measured on real images.

Two models:

* a model the app trains from scratch (the "scratch" recipe, ResNet-18 at its default size, 15 epochs, seed 0)
  on 180 of scikit-image's 200 `lfw_subset` images (grey 25x25 faces and non-faces), the other 20 held out;
* the bundled demo model (handwritten digits), on its 360 held-out test digits (the split of
  scripts/train_demo_model.py), resized to 32x32 with nearest, bilinear and bicubic filters and shifted by
  one or two pixels.

Against: ordinary colour photos (scikit-image's cat, motorcycle and immunohistochemistry photos, scikit-learn's
two sample photos, each whole and as four corner crops) and grey photos (coins, gravel, moon, page, clock),
none of which the detector is fitted or measured on. Prints the share of each flagged as unfamiliar, the
detector's own stored figures (what it measured when it was fitted) and its rating.

    .venv/bin/python benchmarks/bench_familiarity.py                 # trains the lfw model (minutes)
    .venv/bin/python benchmarks/bench_familiarity.py --model M.pth   # measure a model trained before
    .venv/bin/python benchmarks/bench_familiarity.py --demo-only
"""
from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
from PIL import Image

ROOT = Path(__file__).resolve().parent.parent
COLOUR_PHOTOS = ("chelsea", "immunohistochemistry")
GREY_PHOTOS = ("coins", "gravel", "moon", "page", "clock")


def _crops(img: Image.Image) -> list[Image.Image]:
    """The whole photo and its four corners (60 % of each side): five ordinary photos from one."""
    w, h = img.size
    cw, ch = int(w * 0.6), int(h * 0.6)
    return [img] + [img.crop((x, y, x + cw, y + ch)) for x in (0, w - cw) for y in (0, h - ch)]


def photos(folder: Path) -> dict[str, list[Path]]:
    import skimage.data as sd
    from sklearn.datasets import load_sample_images

    folder.mkdir(parents=True, exist_ok=True)
    out: dict[str, list[Path]] = {"colour photos": [], "grey photos": []}
    named = [(n, np.asarray(getattr(sd, n)())) for n in COLOUR_PHOTOS]
    left, right, _ = sd.stereo_motorcycle()
    named += [("motorcycle_left", left), ("motorcycle_right", right)]
    sample = load_sample_images()
    named += [(Path(f).stem, np.asarray(a)) for f, a in zip(sample.filenames, sample.images)]
    for kind, items in (("colour photos", named), ("grey photos", [(n, getattr(sd, n)()) for n in GREY_PHOTOS])):
        for name, arr in items:
            arr = np.asarray(arr)
            if arr.dtype != np.uint8:
                arr = (255 * (arr - arr.min()) / max(1e-9, float(arr.max() - arr.min()))).astype(np.uint8)
            for i, crop in enumerate(_crops(Image.fromarray(arr[..., :3] if arr.ndim == 3 else arr))):
                path = folder / f"{name}_{i}.png"
                crop.save(path)
                out[kind].append(path)
    return out


def lfw_split(folder: Path, seed: int = 0) -> tuple[Path, list[Path]]:
    """lfw_subset (100 faces, 100 non-faces) as folder/train/<class>/*.png (180) and 20 held-out PNGs."""
    import skimage.data as sd

    faces = sd.lfw_subset()
    labels = np.array([0] * 100 + [1] * 100)
    rng = np.random.default_rng(seed)
    held = set(rng.choice(100, 10, replace=False).tolist()) | set((100 + rng.choice(100, 10, replace=False)).tolist())
    held_paths = []
    for i, img in enumerate(faces):
        cls = ("face", "not_face")[labels[i]]
        target = folder / ("held" if i in held else "train") / cls / f"lfw_{i:03d}.png"
        target.parent.mkdir(parents=True, exist_ok=True)
        Image.fromarray((img * 255).round().astype(np.uint8), "L").save(target)
        if i in held:
            held_paths.append(target)
    return folder / "train", held_paths


def train_lfw(data: Path, out: Path, epochs: int) -> Path:
    from resnet_gui.core.train import events as E
    from resnet_gui.core.train import recipe, train

    cfg = recipe("scratch", data=str(data), epochs=epochs, seed=0, device="cpu", name="lfw-bench")

    def on_event(ev):
        if isinstance(ev, E.Epoch):
            print(f"  epoch {ev.epoch}/{ev.epochs}: val acc {ev.val_accuracy:.3f}", flush=True)

    t0 = time.time()
    result = train(cfg, on_event)
    if result.status != "finished":
        raise SystemExit(f"training failed: {result.message}")
    print(f"trained in {time.time() - t0:.0f} s", flush=True)
    out.write_bytes(Path(result.best_path).read_bytes())
    return out


def flagged(predictor, paths: list[Path]) -> tuple[float, int, list]:
    preds = [p for batch in predictor.predict_paths(paths, batch_size=64) for p in batch if p.ok]
    return sum(bool(p.unfamiliar) for p in preds) / max(1, len(preds)), len(preds), preds


def report(model: Path, sets: dict[str, list[Path]]) -> dict:
    from resnet_gui.core.engines.choose import open_predictor
    from resnet_gui.core.models.checkpoint import read_checkpoint

    ckpt = read_checkpoint(model)
    predictor = open_predictor(ckpt, device="cpu", precision="fp32", path=model)
    out = {"stored": {k: v for k, v in (ckpt.familiarity or {}).items() if k in ("measured",)}}
    for kind, paths in sets.items():
        share, n, _ = flagged(predictor, paths)
        out[kind] = {"flagged": round(share, 3), "images": n}
        print(f"  {kind:<32} {share:6.1%} flagged of {n}", flush=True)
    print("  stored when fitted: " + json.dumps(out["stored"]), flush=True)
    return out


def digits_variants(folder: Path) -> dict[str, list[Path]]:
    """The demo's 360 held-out digits, upscaled to 32x32 by three filters, and bilinear shifted by 1 and 2 px."""
    from sklearn.datasets import load_digits

    sys.path.insert(0, str(ROOT / "scripts"))
    from train_demo_model import split_indices

    digits = load_digits()
    _, _, test = split_indices(digits.target, 0, None)
    out: dict[str, list[Path]] = {}
    filters = {"nearest": Image.Resampling.NEAREST, "bilinear": Image.Resampling.BILINEAR,
               "bicubic": Image.Resampling.BICUBIC}
    for i in test:
        grey = (255 - digits.images[i] * (255 / 16)).clip(0, 255).astype(np.uint8)
        for name, f in filters.items():
            img = Image.fromarray(grey, "L").resize((32, 32), f).convert("RGB")
            variants = {f"digits {name}": img}
            if name == "bilinear":
                for dx, dy in ((1, 0), (0, 1), (2, 2), (-2, 1)):
                    shifted = Image.new("RGB", (32, 32), (255, 255, 255))
                    shifted.paste(img, (dx, dy))
                    variants[f"digits bilinear shifted ({dx},{dy})"] = shifted
            for kind, v in variants.items():
                path = folder / kind.replace(" ", "_") / f"{i:04d}.png"
                path.parent.mkdir(parents=True, exist_ok=True)
                v.save(path)
                out.setdefault(kind, []).append(path)
    return out


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", type=Path, help="an lfw model trained before (skips training)")
    parser.add_argument("--save-model", type=Path, help="keep the trained lfw model here")
    parser.add_argument("--epochs", type=int, default=15)
    parser.add_argument("--demo-only", action="store_true")
    parser.add_argument("--demo", type=Path, help="measure this demo checkpoint instead of the bundled one")
    args = parser.parse_args(argv)
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        os.environ.setdefault("RESNET_GUI_HOME", str(tmp / "home"))
        others = photos(tmp / "photos")
        results = {}
        if not args.demo_only:
            train_dir, held = lfw_split(tmp / "lfw")
            model = args.model or train_lfw(train_dir, args.save_model or tmp / "lfw.pth", args.epochs)
            print(f"lfw model {model}:", flush=True)
            results["lfw"] = report(model, {"20 held-out lfw images": held, **others})
        from resnet_gui.core.models.demo import demo_checkpoint_path

        print("demo model:", flush=True)
        results["demo"] = report(args.demo or demo_checkpoint_path(), {**digits_variants(tmp / "digits"), **others})
        print(json.dumps(results))
    return 0


if __name__ == "__main__":
    sys.exit(main())
