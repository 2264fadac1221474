"""`resnet-gui evaluate --model NAME_OR_FILE --data PATH|cifar10|validation [--json] [--csv OUT] [--tta]`."""
from __future__ import annotations

import argparse
import json
import sys

from resnet_gui.core.inference.prediction import DEFAULT_THRESHOLD
from resnet_gui.text import plural

from . import fraction
from .options import add_engine_options
from .output import safe


def add_parser(sub) -> None:
    p = sub.add_parser("evaluate", help="measure a model on labelled images: per-class figures, confusion matrix",
                       description="Evaluate a model on labelled data: a folder with one sub-folder per class "
                       "(named like the model's classes; a subset is fine, other folders are reported), the "
                       "CIFAR-10 test set, or the validation split of the run that made the model.")
    p.add_argument("--model", help="registry name or .pth file (default: the registry's default model)")
    p.add_argument("--data", required=True, metavar="PATH|cifar10|validation",
                   help="a folder of class folders, 'cifar10' (the test set) or 'validation' (the model's own "
                   "validation split)")
    p.add_argument("--json", action="store_true", help="one JSON object with every figure")
    p.add_argument("--csv", metavar="OUT", help="also write one row per image (path, true, predicted, confidence)")
    p.add_argument("--tta", action="store_true", help="average each image with its mirror image")
    p.add_argument("--unsure-below", type=fraction, default=DEFAULT_THRESHOLD, metavar="P",
                   help="the 'not sure below' threshold to read the curves at (default 0.6; a class's own threshold "
                   "counts where higher); --json gives each class's precision-recall and ROC points")
    p.add_argument("--device", default="auto", help="auto (default), cpu, cuda, cuda:N or mps")
    add_engine_options(p)
    p.add_argument("--batch-size", type=int, default=64, help=argparse.SUPPRESS)


def _pct(value: float | None) -> str:
    return "—" if value is None else f"{value:.1%}"


def _table(ev, threshold: float) -> None:
    f = ev.figures
    print(f"{safe(ev.model)} on {safe(ev.data)}: {plural(f.n, 'image')}"
          + (" (with mirror-image averaging)" if ev.tta else "") + ("" if ev.calibrated else "; uncalibrated model"))
    print(f"  accuracy           {f.accuracy:7.2%}   (majority-class share {f.majority_baseline:.2%})")
    for caveat in ev.caveats:
        print(f"  note: {caveat}")
    print(f"  balanced accuracy  {f.balanced_accuracy:7.2%}   (chance {1 / max(1, len(f.class_names)):.2%})")
    for k, v in f.top_k_accuracy.items():
        print(f"  top-{k} accuracy     {v:7.2%}")
    print(f"  calibration error  {f.ece:7.2%}   (ECE, {len(f.reliability)} bins)")
    width = max(8, *(len(safe(c.name)) for c in f.per_class))
    print(f"\n  {'class':<{width}}  precision  recall     F1  support     AP  |  sure from  precision  recall")
    for c, curve in zip(f.per_class, ev.curves):
        bar = ev.threshold_of(c.name, threshold)
        precision, recall, _ = curve.at(bar)
        ap = "    —" if curve.average_precision is None else f"{curve.average_precision:5.1%}"
        own = "*" if c.name in ev.operating_points else " "
        print(f"  {safe(c.name):<{width}}  {c.precision:9.1%}  {c.recall:6.1%}  {c.f1:5.1%}  {c.support:7d}  {ap}"
              f"  |  {bar:8.1%}{own}  {_pct(precision):>9}  {_pct(recall):>6}")
    print(f"  (AP: average precision. 'sure from': the threshold an answer of the class must reach, {threshold:.0%} "
          "or, marked *, the class's own; precision and recall of the sure answers there)")
    if len(f.class_names) <= 12:
        print("\n  confusion matrix (rows: true class, columns: predicted)")
        cell = max(5, *(len(str(v)) for row in f.confusion_matrix for v in row))
        print("  " + " " * width + "".join(f"{safe(n)[:cell]:>{cell + 1}}" for n in f.class_names))
        for name, row in zip(f.class_names, f.confusion_matrix):
            print(f"  {safe(name):<{width}}" + "".join(f"{v:>{cell + 1}}" for v in row))
    if ev.misclassified:
        print(f"\n  most confident mistakes ({len(ev.misclassified)} in all):")
        for m in ev.misclassified[:10]:
            print(f"    {safe(m['path'])}: {safe(m['true'])} called {safe(m['predicted'])} ({m['confidence']:.1%})")
    for name, n in ev.unknown_classes.items():
        print(f"\n  left out: folder {safe(name)!r} ({plural(n, 'image')}) is not one of the model's classes")
    if ev.failed:
        print(f"\n  {plural(len(ev.failed), 'file')} could not be read, for example {safe(ev.failed[0]['path'])}: "
              f"{safe(ev.failed[0]['error'])}")


def run(args: argparse.Namespace) -> int:
    from resnet_gui.core.evaluation.evaluate import evaluate

    if args.csv:  # refused before the evaluation, not after minutes of it
        from resnet_gui.core.models.registry import Registry
        from resnet_gui.core.paths import check_output

        check_output(args.csv, model=Registry().resolve(args.model))
    ev = evaluate(args.model, args.data, device=args.device, batch_size=args.batch_size, tta=args.tta,
                  engine=args.engine, precision=args.precision)
    if args.csv:
        from resnet_gui.core.evaluation.evaluate import write_rows_csv

        write_rows_csv(ev, args.csv)
    if args.json:
        print(json.dumps(ev.to_json(args.unsure_below), allow_nan=False))
    else:
        _table(ev, args.unsure_below)
        if args.csv:
            print(f"Wrote {safe(args.csv)}.", file=sys.stderr)
    return 0
