"""The near-duplicate search of the dataset health check, measured on real images (one process run, the
previous method alongside):

* precision: how many of scikit-learn's 1,797 distinct digits (exported as 32 x 32 PNGs upscaled bilinear,
  bicubic and nearest), scikit-image's 200 lfw_subset images and 20 of its photos are flagged;
* recall: planted near-copies (JPEG quality 70, resized by 5 %, cropped by 3 %, brightness +5 %) found in
  the same group as their original, through `check_folder` on the files;
* the curve the threshold was chosen from (--curve): found and flagged shares at each threshold;
* speed at 50,000 images (--files): hash-band candidates and the pixel confirmation, per pair and per image.

    .venv/bin/python benchmarks/bench_datacheck.py [--sample 300] [--curve] [--files 50000]
"""
from __future__ import annotations

import argparse
import io
import tempfile
import time
from collections import defaultdict
from pathlib import Path

import numpy as np
from PIL import Image, ImageEnhance

from resnet_gui.core.evaluation import near_duplicates as nd
from resnet_gui.core.evaluation.health import check_folder
from resnet_gui.core.images import load_image

PHOTOS = ("astronaut", "coffee", "chelsea", "rocket", "immunohistochemistry", "hubble_deep_field", "retina",
          "colorwheel", "logo", "camera", "coins", "moon", "page", "text", "clock", "brick", "grass", "gravel", "cell",
          "microaneurysms")
COPIES = ("jpeg70", "resize95", "crop3", "bright5")
CURVE = (6, 8, 10, 11, 12, 13, 14, 16, 20)


def real_sets() -> dict[str, list[tuple[str, Image.Image]]]:
    """{set: [(class, image)]}: digits in three upscalings, lfw_subset (faces / other), scikit-image photos."""
    import skimage.data as sd
    from sklearn.datasets import load_digits

    digits = load_digits()
    out = {}
    for name, method in (("digits bilinear", Image.Resampling.BILINEAR), ("digits bicubic", Image.Resampling.BICUBIC),
                         ("digits nearest", Image.Resampling.NEAREST)):
        out[name] = [(str(label), Image.fromarray((255 - img * (255 / 16)).clip(0, 255).astype(np.uint8), "L")
                      .resize((32, 32), method).convert("RGB")) for img, label in zip(digits.images, digits.target)]
    out["lfw_subset"] = [("face" if i < 100 else "other", Image.fromarray((a * 255).astype(np.uint8), "L"))
                         for i, a in enumerate(sd.lfw_subset())]
    out["photos"] = real_sets_photos(sd)
    return out


def real_sets_photos(sd) -> list[tuple[str, Image.Image]]:
    photos = []
    for name in PHOTOS:
        a = np.asarray(getattr(sd, name)())
        photos.append(("colour" if a.ndim == 3 else "grey", Image.fromarray(a[..., :3] if a.ndim == 3 else a)))
    return photos


def copies(image: Image.Image, rng: np.random.Generator) -> dict[str, tuple[str, bytes]]:
    """The planted near-copies of one image: {kind: (suffix, file bytes)}."""
    def png(img):
        buf = io.BytesIO()
        img.save(buf, format="PNG")
        return ".png", buf.getvalue()

    w, h = image.size
    jpeg = io.BytesIO()
    image.convert("RGB").save(jpeg, format="JPEG", quality=70)
    cw, ch = max(1, round(w * 0.03)), max(1, round(h * 0.03))
    left, top = int(rng.integers(0, cw + 1)), int(rng.integers(0, ch + 1))
    return {"jpeg70": (".jpg", jpeg.getvalue()),
            "resize95": png(image.resize((max(1, round(w * 0.95)), max(1, round(h * 0.95))), Image.Resampling.BICUBIC)),
            "crop3": png(image.crop((left, top, w - (cw - left), h - (ch - top)))),
            "bright5": png(ImageEnhance.Brightness(image).enhance(1.05))}


def old_groups(looks: list[nd.Looks]) -> list[list[int]]:
    """The previous method: difference hashes within 3 bits (4 exact 16-bit bands), star-shaped groups."""
    hashes = nd._hash_arrays(looks)[0].tolist()
    buckets = defaultdict(list)
    for i, h in enumerate(hashes):
        for band in range(4):
            buckets[(band, h >> (16 * band) & 0xFFFF)].append(i)
    taken, groups = set(), []
    for i, h in enumerate(hashes):
        if i in taken:
            continue
        members = {j for band in range(4) for j in buckets[(band, h >> (16 * band) & 0xFFFF)]
                   if 1 < len(buckets[(band, h >> (16 * band) & 0xFFFF)]) <= 200}
        close = sorted(j for j in members if j != i and j not in taken and bin(h ^ hashes[j]).count("1") <= 3)
        if close:
            taken.update([i, *close])
            groups.append([i, *close])
    return groups


def write(folder: Path, items, rng: np.random.Generator | None = None, sample: int = 0) -> dict[str, str]:
    """The images as class folders of PNGs; with rng, near-copies of `sample` of them beside their originals.
    Returns {copy path: original path}."""
    planted = {}
    chosen = set(rng.choice(len(items), min(sample, len(items)), replace=False).tolist()) if rng is not None else set()
    for i, (label, image) in enumerate(items):
        original = folder / label / f"x{i:04d}.png"
        original.parent.mkdir(parents=True, exist_ok=True)
        image.save(original)
        if i in chosen:
            for kind, (suffix, data) in copies(image, rng).items():
                path = original.with_name(f"x{i:04d}_{kind}{suffix}")
                path.write_bytes(data)
                planted[str(path)] = str(original)
    return planted


def quality(sets, sample: int) -> None:
    print("Precision on distinct images (check_folder on the files; previous method alongside)")
    print(f"{'set':16s} {'images':>6s} | {'groups':>6s} {'files':>6s} {'across split':>12s} | previous: "
          f"{'groups':>6s} {'files':>6s} {'across split':>12s} | time")
    for name, items in sets.items():
        with tempfile.TemporaryDirectory() as tmp:
            write(Path(tmp), items)
            t0 = time.perf_counter()
            report = check_folder(tmp, input_size=32)
            took = time.perf_counter() - t0
            looks = [nd.looks_of(load_image(p, min_side=32)) for p in sorted(Path(tmp).rglob("*.png"))]
        old = old_groups(looks)
        print(f"{name:16s} {report.images:6d} | {len(report.near_duplicates):6d} "
              f"{sum(len(g) for g in report.near_duplicates):6d} {len(report.leakage):12d} | previous: {len(old):6d} "
              f"{sum(len(g) for g in old):6d} {'':>12s} | {took:.1f} s")
    print(f"\nRecall: near-copies of {sample} images per set ({', '.join(COPIES)}) in the same group as the original")
    for name, items in sets.items():
        rng = np.random.default_rng(0)
        with tempfile.TemporaryDirectory() as tmp:
            planted = write(Path(tmp), items, rng, sample)
            report = check_folder(tmp, input_size=32)
        group_of = {p: n for n, g in enumerate(report.near_duplicates + report.exact_duplicates) for p in g}
        found = defaultdict(list)
        for copy, original in planted.items():
            kind = copy.rsplit("_", 1)[1].split(".")[0]
            found[kind].append(copy in group_of and group_of.get(original) == group_of[copy])
        true = sum(len({Path(p).name.split("_")[0].split(".")[0] for p in g}) == 1 for g in report.near_duplicates)
        total = sum(sum(v) for v in found.values()) / sum(len(v) for v in found.values())
        print(f"{name:16s} found {total:.1%} (" + ", ".join(f"{k} {np.mean(v):.1%}" for k, v in found.items())
              + f"); groups {len(report.near_duplicates)}, of which made of one original and its copies: {true}")


def curve(sets, sample: int) -> None:
    """Found (planted pairs) and flagged (distinct images) shares at each threshold of the confirmation."""
    rows = {}
    for name, items in sets.items():
        rng = np.random.default_rng(0)
        looks = [nd.looks_of(load_image(_png(img), min_side=32)) for _, img in items]
        n = len(looks)
        planted = []
        for i in sorted(rng.choice(n, min(sample, n), replace=False).tolist()):
            for suffix_data in copies(items[i][1], rng).values():
                looks.append(nd.looks_of(load_image(suffix_data[1], min_side=32)))
                planted.append((i, len(looks) - 1))
        pairs = nd.candidate_pairs(looks)
        dist = nd.pixel_distances(looks, pairs, np.full(len(pairs), max(CURVE), np.float32))
        index = {p: k for k, p in enumerate(map(tuple, pairs.tolist()))}
        rows[name] = (looks, pairs, dist, n, [index.get(p) for p in planted])
    print("\nThe confirmation threshold (grey levels; faint pairs keep their lower limit): found / flagged")
    for t in CURVE:
        cells = []
        for name, (looks, pairs, dist, n, planted) in rows.items():
            ok = dist <= nd.thresholds(looks, pairs, t)
            found = np.mean([k is not None and ok[k] for k in planted])
            flagged = len(set(pairs[ok & (pairs < n).all(1)].ravel().tolist())) / n
            cells.append(f"{name} {found:.3f}/{flagged:.3f}")
        print(f"  {t:5.1f}: " + " | ".join(cells))


def _png(img: Image.Image) -> bytes:
    buf = io.BytesIO()
    img.save(buf, format="PNG")
    return buf.getvalue()


def pink_noise(rng: np.random.Generator, side: int = 48) -> Image.Image:
    """A distinct natural-looking image: colour noise with a 1/f amplitude spectrum (the spectrum of photos),
    random contrast and brightness."""
    fy, fx = np.meshgrid(np.fft.fftfreq(side), np.fft.fftfreq(side), indexing="ij")
    amplitude = 1 / np.maximum(np.hypot(fx, fy), 1 / side) ** rng.uniform(0.8, 1.6)
    channels = []
    for _ in range(3):
        field = np.fft.ifft2(amplitude * np.exp(2j * np.pi * rng.random((side, side)))).real
        channels.append((field - field.mean()) / (field.std() + 1e-9))
    image = np.stack(channels, -1) * rng.uniform(10, 70) + rng.uniform(60, 190)
    return Image.fromarray(image.clip(0, 255).astype(np.uint8))


def speed(files: int) -> None:
    """`files` distinct images (1/f colour noise; 1 % followed by a JPEG copy): candidates through the hash
    bands, then the pixel confirmation; the previous method on the same images alongside."""
    rng = np.random.default_rng(0)
    looks = []
    t0 = time.perf_counter()
    while len(looks) < files:
        image = pink_noise(rng)
        looks.append(nd.looks_of(image))
        if len(looks) % 100 == 0:
            buf = io.BytesIO()
            image.save(buf, format="JPEG", quality=70)
            looks.append(nd.looks_of(Image.open(buf)))
    looks = looks[:files]
    made = time.perf_counter() - t0
    t0 = time.perf_counter()
    pairs = nd.candidate_pairs(looks)
    banded = time.perf_counter() - t0
    t0 = time.perf_counter()
    limits = nd.thresholds(looks, pairs)
    dist = nd.pixel_distances(looks, pairs, limits)
    confirmed = time.perf_counter() - t0
    t0 = time.perf_counter()
    old = old_groups(looks)
    previous = time.perf_counter() - t0
    print(f"\n{files:,} images ({made:.0f} s to make them): hash bands {banded:.2f} s, {len(pairs):,} candidate pairs; "
          f"confirmation {confirmed:.2f} s ({confirmed / max(1, len(pairs)) * 1e6:.1f} us per pair, "
          f"{confirmed / files * 1e6:.1f} us per image), {int((dist <= limits).sum()):,} near-duplicate pairs "
          f"({files // 101:,} planted). Previous method (3-bit hash bands, no confirmation): {previous:.2f} s, "
          f"{len(old):,} groups; new / previous time {(banded + confirmed) / previous:.2f}x")


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--sample", type=int, default=300, help="images per set given planted copies")
    parser.add_argument("--curve", action="store_true", help="print the threshold curve")
    parser.add_argument("--files", type=int, default=50_000, help="images in the speed run (0: skip it)")
    args = parser.parse_args()
    sets = real_sets()
    quality(sets, args.sample)
    if args.curve:
        curve(sets, args.sample)
    if args.files:
        speed(args.files)


if __name__ == "__main__":
    main()
