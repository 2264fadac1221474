"""`resnet-gui models list|show|import|edit|remove|default|rename|export|calibrate`."""
from __future__ import annotations

import argparse
import json
import sys

from resnet_gui.text import binary_size, plural

from .output import safe


def _table(rows: list[list[str]], right: set[int]) -> list[str]:
    """Columns padded to their widest cell (long names push the others right instead of overlapping)."""
    widths = [max(len(r[i]) for r in rows) for i in range(len(rows[0]))]
    return ["  ".join(cell.rjust(w) if i in right else cell.ljust(w) for i, (cell, w) in enumerate(zip(row, widths)))
            .rstrip() for row in rows]


def _list(registry, as_json: bool) -> int:
    entries = registry.list()
    if as_json:
        print(json.dumps([e.to_json() for e in entries], allow_nan=False))
        return 0
    if not entries:
        print(f"No models in {safe(registry.root)}. Train one ('resnet-gui train') or import one "
              "('resnet-gui models import FILE').")
        return 0
    default = registry.default_name()
    rows = [["", "NAME", "ARCHITECTURE", "CLASSES", "ACCURACY", "SIZE"]]
    for e in entries:
        mark = "*" if e.name == default else ""
        if e.broken:
            rows.append([mark, safe(e.name), "BROKEN", "-", "-", binary_size(e.size)])
            continue
        meta = e.meta or {}
        figure = e.accuracy()  # test accuracy where the model has one
        acc = f"{figure[0]:.1%} {'test' if figure[1] == 'test accuracy' else 'val.'}" if figure is not None else "-"
        rows.append([mark, safe(e.name), meta["arch"], str(meta["num_classes"]), acc, binary_size(e.size)])
    for line in _table(rows, right={3, 4, 5}):
        print(line)
    for e in entries:
        if e.broken:
            print(f"  {safe(e.name)}: {safe(e.error)}")
    print(f"\n{plural(len(entries), 'model')} in {safe(registry.root)}; * = default; accuracy on held-out test "
          "images where the model has them (test), else on the validation split that chose its best epoch (val.)")
    return 0


def _show(registry, name: str, as_json: bool) -> int:
    details = registry.details(name)
    if as_json:
        print(json.dumps(details, allow_nan=False))
    else:
        for key, value in details.items():
            print(f"{key}: {safe(json.dumps(value, ensure_ascii=False) if isinstance(value, (dict, list)) else value)}")
    return 0 if "error" not in details else 1


def _ask_class_names(args: argparse.Namespace) -> str | list[str] | None:
    """--classes, or (for a file that does not name its classes) a question on a terminal; without a terminal
    the import is refused rather than silently naming the classes class_0, class_1, …"""
    if args.classes is not None:
        return args.classes
    from resnet_gui.core.errors import RegistryError
    from resnet_gui.core.models.import_foreign import import_file, parse_class_names

    ckpt = import_file(args.file, arch=args.arch)
    if "source_format" not in ckpt.notes:
        return None  # one of ours: it carries its class names
    n = ckpt.num_classes
    if not sys.stdin.isatty():
        raise RegistryError(f"{args.file} does not say what its {n} classes are called; pass them with "
                            "--classes a,b,c (in the order the model was trained with) or --classes names.txt")
    guess = ", ".join(ckpt.class_names[:10]) + (" …" if n > 10 else "")
    print(f"{args.file} is a {ckpt.arch} with {n} classes but does not name them (a guess: {safe(guess)}).")
    while True:
        answer = input(f"Class names, comma-separated, or a text file with one per line ({n} needed; "
                       "Enter keeps the guess): ").strip()
        if not answer:
            return list(ckpt.class_names)
        try:
            names = parse_class_names(answer)
        except Exception as exc:  # noqa: BLE001 - asked again with the reason
            print(f"  {safe(exc)}")
            continue
        if len(names) == n:
            return names
        print(f"  {len(names)} names given; the model has {n} classes.")


def _overrides(args: argparse.Namespace) -> dict:
    return {k: v for k, v in {"input_size": args.input_size, "resize": args.resize, "mean": args.mean,
                              "std": args.std}.items() if v is not None}


def _edit(registry, args: argparse.Namespace) -> int:
    from resnet_gui.core.errors import RegistryError
    from resnet_gui.core.models.import_foreign import parse_class_names
    from resnet_gui.core.models.operating_points import describe, parse_assignment

    names = parse_class_names(args.classes) if args.classes is not None else None
    if names is not None or _overrides(args) or not args.threshold:
        entry = registry.update(args.name, class_names=names, preprocess=_overrides(args))
    if args.threshold:
        classes = list((registry.get(args.name).meta or {}).get("class_names") or [])
        changes = {}
        for text in args.threshold:
            try:
                name, value = parse_assignment(text, classes)
            except ValueError as exc:
                raise RegistryError(f"--threshold {text}: {exc}") from None
            changes[name] = None if value is None else {"threshold": value, "set": _now()}
        entry = registry.set_operating_points(args.name, changes)
        points = (entry.meta or {}).get("operating_points") or {}
        for name in changes:
            print(safe(describe(name, points[name])) if name in points else
                  f"{safe(name)}: the reader's threshold alone (own threshold removed)")
    print(f"Updated {safe(repr(entry.name))}.")
    return 0


def _now() -> str:
    import datetime as dt

    return dt.datetime.now(dt.timezone.utc).astimezone().isoformat(timespec="seconds")


def cmd_models(args: argparse.Namespace) -> int:
    from resnet_gui.core.models.registry import Registry

    registry = Registry()
    action = args.models_cmd
    if action == "list":
        return _list(registry, args.json)
    if action == "show":
        return _show(registry, args.name, args.json)
    if action == "import":
        if not args.allow_duplicate:
            registry.refuse_duplicate(args.file)
        names = _ask_class_names(args)
        entry = registry.import_file(args.file, name=args.name, class_names=names, arch=args.arch,
                                     preprocess=_overrides(args), allow_duplicate=args.allow_duplicate)
        meta = entry.meta or {}
        shown = ", ".join(meta.get("class_names", [])[:10]) + ("…" if meta.get("num_classes", 0) > 10 else "")
        print(f"Imported {safe(args.file)} as {safe(repr(entry.name))} ({meta.get('arch')}, "
              f"{plural(meta.get('num_classes', 0), 'class', 'classes')}: {safe(shown)}).")
        return 0
    if action == "edit":
        return _edit(registry, args)
    if action == "remove":
        registry.remove(args.name)
        print(f"Removed {safe(repr(args.name))}.")
        return 0
    if action == "default":
        registry.set_default(args.name)
        print(f"The default model is now {safe(repr(args.name))}.")
        return 0
    if action == "rename":
        registry.rename(args.name, args.new_name)
        print(f"Renamed {safe(repr(args.name))} to {safe(repr(args.new_name))}.")
        return 0
    if action == "export":
        return _export(registry, args)
    if action == "calibrate":
        return _calibrate(registry, args)
    raise AssertionError(action)


def _calibrate(registry, args: argparse.Namespace) -> int:
    from resnet_gui.core.errors import ResnetGuiError
    from resnet_gui.core.evaluation.int8_version import add_int8
    from resnet_gui.core.inference.int8 import describe

    path = registry.get(args.name).path
    if args.data is not None:
        from resnet_gui.core.evaluation.fit_imported import add_familiarity

        summary = add_familiarity(path, args.data, calibrate=True, int8_version=False)
        print(f"Familiarity data for {safe(repr(args.name))} from {plural(summary['images'], 'image')}"
              + ("; a temperature was fitted" if summary["calibrated"] else "") + ".")
        for folder, count in summary["unknown_classes"].items():
            print(f"  left out: {safe(folder)} ({plural(count, 'image')}, not one of the model's classes)")
    if args.no_int8:
        return 0
    try:
        record = add_int8(path, folder=args.data)
    except ResnetGuiError as exc:
        print(f"No int8 version: {safe(exc)}", file=sys.stderr)
        return 1
    if record.get("kept"):
        print(f"int8 version kept: {safe(describe(record))}.")
        return 0
    print(f"No int8 version: {safe(record.get('reason') or 'it did not pass verification')}; predictions stay in "
          "fp32.", file=sys.stderr)
    return 1


def _export(registry, args: argparse.Namespace) -> int:
    from resnet_gui.core.export.exporter import describe_input, export_model

    result = export_model(args.name, args.format, args.output, outputs="logits" if args.logits else "probabilities",
                          registry=registry)
    kind = "ONNX" if result.fmt == "onnx" else "TorchScript"
    print(f"Exported {safe(repr(args.name))} to {safe(result.path)} ({kind}); model card: {safe(result.card_path)}.")
    print(safe(describe_input(result)))
    if result.max_abs_diff is not None:
        print(f"Checked with {result.checked_with}: the same outputs as {result.reference} (max abs difference "
              f"{result.max_abs_diff:.1e}).")
    else:
        print("Not checked against PyTorch: install onnxruntime ('pip install resnet-gui[export]') to check exports.")
    return 0
