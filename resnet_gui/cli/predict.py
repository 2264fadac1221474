"""`resnet-gui predict`: classify image files and folders."""
from __future__ import annotations

import argparse
import json
import sys

from .output import err, plural, safe


def cmd_predict(args: argparse.Namespace) -> int:
    from resnet_gui.core.demo import ensure_demo_model
    from resnet_gui.core.images import list_images
    from resnet_gui.core.predict import Predictor, write_csv
    from resnet_gui.core.registry import Registry

    registry = Registry()
    if args.model is None:
        ensure_demo_model(registry)
    path = registry.resolve(args.model)
    predictor = Predictor.from_file(path, device=args.device)
    top_k = min(args.top_k, len(predictor.class_names))  # never more columns than the model has classes
    files = list_images(args.paths)
    if not files:
        err("No images found in " + ", ".join(args.paths) + " (JPEG, PNG, BMP, GIF, TIFF or WebP).")
        return 1
    failed = 0
    collected = []
    for batch in predictor.predict_paths(files, top_k=top_k, batch_size=args.batch_size):
        for pred in batch:
            if args.csv:
                collected.append(pred)
            failed += not pred.ok
            if args.json:
                print(json.dumps(pred.to_json(), allow_nan=False), flush=True)
            elif pred.ok:
                others = ", ".join(f"{safe(label)} {prob:.1%}" for label, prob in pred.top_k[1:])
                print(f"{safe(pred.path)}: {safe(pred.label)} ({pred.confidence:.1%})"
                      + (f"  [{others}]" if others else ""), flush=True)
            else:
                print(f"{safe(pred.path)}: ERROR {safe(pred.error.removeprefix(str(pred.path) + ': '))}", flush=True)
    if args.csv:
        write_csv(collected, args.csv, top_k=top_k)
        if not args.json:
            print(f"Wrote {safe(args.csv)}.", file=sys.stderr)
    if failed:
        print(f"{failed} of {plural(len(files), 'file')} could not be classified.", file=sys.stderr)
    return 1 if failed else 0
