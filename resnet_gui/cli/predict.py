"""`resnet-gui predict`: classify image files and folders; the answer, how sure, and whether the image looks
like anything the model was trained on; optionally why (the heat map). ONNX Runtime on the CPU unless told
otherwise (--engine, --precision: core/engines/choose.py)."""
from __future__ import annotations

import argparse
import json
import os
import sys
from pathlib import Path

from resnet_gui.text import plural

from .output import err, safe


def _line(pred, threshold: float) -> str:
    """One line a person reads: the answer, or "not sure", or "unlike the training images"."""
    if not pred.ok:
        return f"{safe(pred.path)}: ERROR {safe(pred.error.removeprefix(str(pred.path) + ': '))}"
    others = ", ".join(f"{safe(label)} {prob:.1%}" for label, prob in pred.top_k[1:])
    tail = f"  [{others}]" if others else ""
    familiar = "" if pred.familiarity is None else f", familiarity {pred.familiarity:.2f}"
    if pred.unfamiliar:
        why = f": it is {pred.unfamiliar_why}" if pred.unfamiliar_why else ""  # its input statistics flagged it
        return (f"{safe(pred.path)}: unlike anything this model was trained on{why} (top guess {safe(pred.label)} "
                f"{pred.confidence:.1%}{familiar})")
    if pred.unsure(threshold):
        return f"{safe(pred.path)}: not sure: {safe(pred.label)} ({pred.confidence:.1%}{familiar}){tail}"
    return f"{safe(pred.path)}: {safe(pred.label)} ({pred.confidence:.1%}{familiar}){tail}"


def _overlay(image, cam):
    """The image (at most 640 px) with the map blended in red-yellow where it is high."""
    import numpy as np
    from PIL import Image

    from resnet_gui.core.inference.cam import upsample

    small = image.copy()
    small.thumbnail((640, 640))
    heat = upsample(cam, (small.height, small.width))[..., None]
    base = np.asarray(small, dtype=np.float32)
    colour = np.concatenate([np.ones_like(heat), heat, np.zeros_like(heat)], axis=2) * 255.0
    alpha = 0.55 * heat
    return Image.fromarray((base * (1 - alpha) + colour * alpha).clip(0, 255).astype(np.uint8))


HEAT_MAP_STEM_BYTES = 150  # of the image's name kept in its heat map's: room for "_cam-N.png" and more


def heat_map_name(image_path: str, used: set[str]) -> str:
    """The file name of one image's heat map, new in `used` (and added to it): the image's name cut by bytes,
    never inside a character (a 245-byte name of 81 characters is valid), then "_cam.png" or "_cam-N.png"."""
    from resnet_gui.core.names import fit_bytes

    stem = fit_bytes(Path(image_path).stem, HEAT_MAP_STEM_BYTES) or "image"
    name, n = f"{stem}_cam.png", 2
    while name in used:
        name, n = f"{stem}_cam-{n}.png", n + 1
    used.add(name)
    return name


def _explain(predictor, pred, out_dir: Path | None, used: set[str]) -> list[list[float]] | None:
    from resnet_gui.core.atomic import atomic_write
    from resnet_gui.core.images import load_image

    image = load_image(pred.path, name=pred.path)
    cam, _ = predictor.explain(image, pred.class_index)  # by index: class names may repeat
    if out_dir is not None:
        overlay = _overlay(image, cam)
        atomic_write(out_dir / heat_map_name(pred.path, used), lambda fh: overlay.save(fh, format="PNG"))
    return [[round(float(v), 4) for v in row] for row in cam.tolist()]


def _check_outputs(args: argparse.Namespace, model: Path, files: list[str]) -> set[str]:
    """Refuse (OutputError) a CSV, sort folder or heat-map folder that would replace the model, an image being
    read, or a file among the app's models and runs, before any work; make the folder. The heat-map names already taken:
    those of the images being read in that folder (a heat map never replaces one)."""
    from resnet_gui.core.paths import check_output

    if args.csv:
        check_output(args.csv, model=model, reading=files)
    if args.sort_into is not None:
        check_output(args.sort_into, model=model)
    if args.explain_dir is None:
        return set()
    check_output(args.explain_dir, model=model)
    args.explain_dir.mkdir(parents=True, exist_ok=True)
    folder, parents = args.explain_dir.resolve(), {}
    for f in files:
        parent = os.path.dirname(f)
        if parent not in parents:
            parents[parent] = Path(parent).resolve() == folder
    return {os.path.basename(f) for f in files if parents[os.path.dirname(f)]}


def cmd_predict(args: argparse.Namespace) -> int:
    from resnet_gui.core.engines.choose import open_predictor
    from resnet_gui.core.errors import ResnetGuiError, user_message
    from resnet_gui.core.images import list_images
    from resnet_gui.core.inference.prediction import write_csv
    from resnet_gui.core.models.demo import ensure_demo_model
    from resnet_gui.core.models.registry import Registry

    if (args.move or args.dry_run) and args.sort_into is None:
        err("--move and --dry-run go with --sort-into OUT (the folder to sort the files into).")
        return 2
    registry = Registry()
    if args.model is None:
        ensure_demo_model(registry)
    threshold = args.unsure_below
    path = registry.resolve(args.model)
    predictor = open_predictor(path, engine=args.engine, device=args.device, precision=args.precision,
                               registry=registry)
    top_k = min(args.top_k, len(predictor.class_names))  # never more columns than the model has classes
    files = list_images(args.paths)
    if not files:
        err("No images found in " + ", ".join(args.paths) + " (JPEG, PNG, BMP, GIF, TIFF or WebP).")
        return 1
    used = _check_outputs(args, path, files)
    failed = unexplained = written = 0
    collected = []
    for batch in predictor.predict_paths(files, top_k=top_k, batch_size=args.batch_size):
        for pred in batch:
            if args.csv or args.sort_into is not None:
                collected.append(pred)
            failed += not pred.ok
            cam = None
            if pred.ok and (args.explain or args.explain_dir is not None):
                try:
                    cam = _explain(predictor, pred, args.explain_dir, used)
                    written += args.explain_dir is not None
                except (OSError, ResnetGuiError) as exc:  # this image's heat map only: the others go on
                    unexplained += 1
                    err(f"{pred.path}: no heat map: {user_message(exc)}")
            if args.json:
                row = pred.to_json(threshold)
                if args.explain and cam is not None:
                    row["cam"] = cam
                print(json.dumps(row, allow_nan=False), flush=True)
            else:
                print(_line(pred, threshold), flush=True)
    if args.csv:
        write_csv(collected, args.csv, top_k=top_k, threshold=threshold, model=path)
        if not args.json:
            print(f"Wrote {safe(args.csv)}.", file=sys.stderr)
    status = 0
    if args.sort_into is not None:
        from .sort import sort_predictions

        status = sort_predictions(collected, predictor.class_names, args, quiet=args.json)
    if args.explain_dir is not None and not args.json:
        print(f"Wrote {plural(written, 'heat map')} to {safe(args.explain_dir)}.", file=sys.stderr)
    if not predictor.calibrated and not args.json:
        print("(This model is not calibrated: its confidences may be too high or too low.)", file=sys.stderr)
    if failed:
        print(f"{failed} of {plural(len(files), 'file')} could not be classified.", file=sys.stderr)
    if unexplained:
        print(f"{unexplained} of {plural(len(files) - failed, 'heat map')} could not be made.", file=sys.stderr)
    return status or (1 if failed or unexplained else 0)
