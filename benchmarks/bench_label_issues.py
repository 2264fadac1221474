"""Likely mislabelled images (`check-data --labels`), measured on real images with planted label noise:
precision and recall of the flipped images among the entries the check lists (all of them, best first),
and among the top k for k = the number flipped.

* digits: scikit-learn's 1,797 handwritten digits (32 px PNGs, as the demo model saw them), 5 % of the labels
  flipped to another class at random, for several seeds; no model (5-fold logistic regression on
  thumbnails).
* digits, a given model: the demo model's 360 held-out test digits (it never trained on them), 5 % flipped,
  judged by its answers through the inference engine.
* faces: scikit-image's lfw_subset (100 faces, 100 non-faces), 5 % flipped, no model.

* --fit: the cross-validated logistic regression alone (1,797 digits' pixels, 5 % flipped), our numpy L-BFGS
  against the torch.optim.LBFGS fit it replaced (the classify edition has no PyTorch): time, the images listed,
  and how far the probabilities differ.

    .venv/bin/python benchmarks/bench_label_issues.py [--seeds 0 1 2] [--fit]
"""
from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
from PIL import Image

from resnet_gui.core.evaluation.label_sources import check_labels

ROOT = Path(__file__).resolve().parents[1]
DEMO = ROOT / "resnet_gui" / "resources" / "models" / "digits-resnet18_cifar.pth"
SHARE = 0.05


def flip(labels: np.ndarray, share: float, seed: int, classes: int) -> tuple[np.ndarray, set[int]]:
    """`share` of the labels moved to another class at random (seeded); (noisy labels, flipped indices)."""
    rng = np.random.default_rng(seed)
    chosen = rng.choice(len(labels), int(round(share * len(labels))), replace=False)
    noisy = labels.copy()
    noisy[chosen] = (labels[chosen] + rng.integers(1, classes, len(chosen))) % classes
    return noisy, set(chosen.tolist())


def write(folder: Path, images: list[Image.Image], names: list[str]) -> dict[str, int]:
    where = {}
    for i, (image, name) in enumerate(zip(images, names)):
        path = folder / name / f"img_{i:04d}.png"
        path.parent.mkdir(parents=True, exist_ok=True)
        image.save(path)
        where[str(path)] = i
    return where


def measure(title: str, images: list[Image.Image], truth: np.ndarray, class_names: list[str], seed: int,
            model: str | None = None) -> tuple[float, float]:
    noisy, flipped = flip(truth, SHARE, seed, len(class_names))
    with tempfile.TemporaryDirectory() as tmp:
        where = write(Path(tmp), images, [class_names[c] for c in noisy])
        t0 = time.perf_counter()
        report = check_labels(tmp, model=model, seed=seed)
        took = time.perf_counter() - t0
        hits = [where[issue.path] in flipped for issue in report.issues]
    k = len(flipped)
    precision = sum(hits) / max(1, len(hits))
    recall = sum(hits) / k
    print(f"{title:34s} seed {seed}: {len(images):5,} images, {k:3d} flipped | listed {len(hits):3d}: precision "
          f"{precision:6.1%} recall {recall:6.1%} | top {k}: {sum(hits[:k]) / k:6.1%} | {took:5.1f} s "
          f"({report.method.split(' (')[0]})")
    return precision, recall


def torch_fit(x: np.ndarray, y: np.ndarray, classes: int, l2: float) -> tuple[np.ndarray, np.ndarray]:
    """The fit label_issues.py made before it needed no PyTorch: torch.optim.LBFGS, strong Wolfe, 100 steps."""
    import torch

    xs, ys = torch.as_tensor(x, dtype=torch.float32), torch.as_tensor(y, dtype=torch.long)
    w = torch.zeros(x.shape[1], classes, requires_grad=True)
    b = torch.zeros(classes, requires_grad=True)
    opt = torch.optim.LBFGS([w, b], max_iter=100, line_search_fn="strong_wolfe")

    def closure():
        opt.zero_grad()
        loss = torch.nn.functional.cross_entropy(xs @ w + b, ys) + l2 * (w * w).sum()
        loss.backward()
        return loss

    opt.step(closure)
    return w.detach().numpy(), b.detach().numpy()


def compare_fits(runs: int = 3) -> None:
    import torch
    from sklearn.datasets import load_digits

    from resnet_gui.core.evaluation import label_issues

    torch.set_num_threads(1)   # as the torch fit ran (small problems)
    digits = load_digits()
    x = digits.data.astype(np.float32)
    labels, flipped = flip(digits.target, SHARE, 0, 10)
    ours = label_issues._fit_softmax
    results = {}
    for name, fit in (("torch.optim.LBFGS", torch_fit), ("numpy L-BFGS", ours)):
        label_issues._fit_softmax = fit
        times = []
        for _ in range(runs):
            t0 = time.perf_counter()
            probs, _l2 = label_issues.cross_validated_probabilities(x, labels, 10)
            times.append(time.perf_counter() - t0)
        listed = set(label_issues.confident_learning(probs, labels)[0].tolist())
        results[name] = probs
        print(f"{name}: {np.median(times):.2f} s (median of {runs}), {len(listed)} listed, precision "
              f"{len(listed & flipped) / max(1, len(listed)):.1%}, recall {len(listed & flipped) / len(flipped):.1%}")
    label_issues._fit_softmax = ours
    a, b = results.values()
    print(f"largest probability difference {np.abs(a - b).max():.2e}; same top class on "
          f"{(a.argmax(1) == b.argmax(1)).mean():.1%} of the images")


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    parser.add_argument("--fit", action="store_true", help="only compare the numpy fit with the torch one")
    args = parser.parse_args()
    if args.fit:
        compare_fits()
        return
    import skimage.data as sd
    from sklearn.datasets import load_digits

    sys.path.insert(0, str(ROOT / "scripts"))
    from train_demo_model import digit_image, split_indices

    digits = load_digits()
    names = [str(i) for i in range(10)]
    images = [digit_image(px) for px in digits.images]
    print(f"Flipped labels ({SHARE:.0%}) found by check_labels; precision and recall among the listed entries")
    results = [measure("digits, no model", images, digits.target, names, seed) for seed in args.seeds]
    test = split_indices(digits.target, 0, None)[2]
    model = [measure("digits held out by the demo model", [images[i] for i in test], digits.target[test], names,
                        seed, model=str(DEMO)) for seed in args.seeds]
    face_images = [Image.fromarray((a * 255).astype(np.uint8), "L") for a in sd.lfw_subset()]
    truth = np.r_[np.zeros(100, np.int64), np.ones(100, np.int64)]
    faces = [measure("lfw_subset faces, no model", face_images, truth, ["face", "other"], seed) for seed in args.seeds]
    for what, runs in (("digits, no model", results), ("digits, the demo model", model), ("faces, no model", faces)):
        worst = np.min(runs, axis=0)
        print(f"Worst of {len(runs)} seeds, {what}: precision {worst[0]:.1%}, recall {worst[1]:.1%}")
    print("Goal (issue 25): >= 80 % recall at >= 80 % precision on digits with 5 % of the labels flipped")


if __name__ == "__main__":
    main()
