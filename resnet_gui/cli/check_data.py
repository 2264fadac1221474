"""`resnet-gui check-data PATH [--json]`: the dataset health check of a folder of class folders."""
from __future__ import annotations

import argparse
import json

from resnet_gui.text import plural

from .output import err, safe


def add_parser(sub) -> None:
    p = sub.add_parser("check-data", help="check a dataset folder: unreadable files, duplicates, leakage, sizes",
                       description="Check a folder of class folders before training on it: unreadable files, "
                       "class counts and imbalance, exact and near-duplicate images, duplicates that cross the "
                       "train/validation split, and images much smaller than the model's input.")
    p.add_argument("path", help="the dataset folder (root/<class>/… or root/train/… + root/val/…)")
    p.add_argument("--val-split", type=float, default=0.2, help="validation share, as training would use it")
    p.add_argument("--seed", type=int, default=0, help="split seed, as training would use it")
    p.add_argument("--input-size", type=int, default=224, help="the model's input size (small-image check)")
    p.add_argument("--labels", action="store_true",
                   help="also look for likely label mistakes: images whose class a model doubts, best first "
                   "(confident learning on out-of-sample predictions)")
    p.add_argument("--model", metavar="NAME",
                   help="with --labels: a registry name or .pth file whose answers (or features) judge the labels; "
                   "without it, 5-fold logistic regression on small thumbnails (fine for digits and scans, weak "
                   "for photographs)")
    p.add_argument("--json", action="store_true", help="the report as one JSON object")


def _show(title: str, rows: list[str], limit: int = 10) -> None:
    if not rows:
        return
    print(f"\n{title}:")
    for row in rows[:limit]:
        print(f"  {row}")
    if len(rows) > limit:
        print(f"  … and {len(rows) - limit} more (--json lists all)")


def run(args: argparse.Namespace) -> int:
    from resnet_gui.core.evaluation.health import check_folder

    if args.model and not args.labels:
        err("--model only judges labels: add --labels")
        return 2
    report = check_folder(args.path, val_split=args.val_split, seed=args.seed, input_size=args.input_size)
    labels = None
    if args.labels:
        from resnet_gui.core.evaluation.label_sources import check_labels

        labels = check_labels(args.path, model=args.model, seed=args.seed)
    failed = bool(report.problems or (labels is not None and labels.issues))
    if args.json:
        print(json.dumps({**report.to_json(), **(labels.to_json() if labels else {})}, allow_nan=False))
        return int(failed)
    layout = "train/ and val/ folders" if report.layout == "split" else "validation split from each class"
    print(f"{safe(report.root)}: {plural(report.images, 'image')} in "
          f"{plural(len(report.class_names), 'class', 'classes')} ({layout})")
    width = max(len(safe(n)) for n in report.class_names)
    for name, c in report.counts.items():
        bad = f", {c['unreadable']} unreadable" if c["unreadable"] else ""
        print(f"  {safe(name):<{width}}  {c['train']:>6} train  {c['val']:>5} validation{bad}")
    _show("Unreadable files", [f"{safe(u['path'])}: {safe(u['reason'])}" for u in report.unreadable])
    _show("Exact duplicates (same bytes)", [" = ".join(safe(p) for p in g) for g in report.exact_duplicates])
    _show("Near-duplicates", [" ≈ ".join(safe(p) for p in g) for g in report.near_duplicates])
    _show("Duplicates across the train/validation split",
          [f"{', '.join(safe(p) for p in leak['held_out'])} also in training as "
           f"{', '.join(safe(p) for p in leak['train'])}" for leak in report.leakage])
    _show(f"Images much smaller than {args.input_size} px",
          [f"{safe(s['path'])} ({s['size'][0]}x{s['size'][1]})" for s in report.small_images])
    for w in report.warnings:
        print(f"\nwarning: {safe(w)}")
    if report.imbalance:
        print(f"\nTo balance the classes in training: resnet-gui train ... --balance {report.imbalance['remedy']}")
    if labels is not None:
        _show(f"Likely label mistakes ({plural(len(labels.issues), 'image')} of {labels.checked:,}; judged by "
              f"{labels.method})", [f"{safe(i.path)}: labelled {safe(i.given)}, looks like {safe(i.suggested)} "
                                    f"(doubt {i.score:.3f})" for i in labels.issues], limit=20)
        if not labels.issues:
            print(f"\nNo likely label mistakes among {labels.checked:,} images (judged by {labels.method}).")
        for w in labels.warnings:
            print(f"\nwarning: {safe(w)}")
    if not failed and not report.warnings:
        print("\nNo problems found.")
    return int(failed)
