"""`resnet-gui models list|show|import|remove|default|rename`."""
from __future__ import annotations

import argparse
import json


def _fmt_size(n: int) -> str:
    for unit in ("B", "KB", "MB", "GB"):
        if n < 1024 or unit == "GB":
            return f"{n:.0f} {unit}" if unit == "B" else f"{n:.1f} {unit}"
        n /= 1024
    return f"{n} B"


def cmd_models(args: argparse.Namespace) -> int:
    from resnet_gui.core.registry import Registry

    registry = Registry()
    action = args.models_cmd
    if action == "list":
        entries = registry.list()
        if args.json:
            print(json.dumps([e.to_json() for e in entries], indent=None))
            return 0
        if not entries:
            print(f"No models in {registry.root}. Train one ('resnet-gui train') or import one "
                  "('resnet-gui models import FILE').")
            return 0
        default = registry.default_name()
        for e in entries:
            mark = "*" if e.name == default else " "
            if e.broken:
                print(f"{mark} {e.name:<32} BROKEN: {e.error}")
                continue
            meta = e.meta or {}
            acc = f"{e.val_accuracy:.1%}" if e.val_accuracy is not None else "-"
            print(f"{mark} {e.name:<32} {meta['arch']:<18} {meta['num_classes']:>4} classes  "
                  f"val acc {acc:>6}  {_fmt_size(e.size):>9}")
        print(f"\n{len(entries)} model(s) in {registry.root}; * = default")
        return 0
    if action == "show":
        details = registry.details(args.name)
        if args.json:
            print(json.dumps(details))
        else:
            for key, value in details.items():
                print(f"{key}: {json.dumps(value) if isinstance(value, (dict, list)) else value}")
        return 0 if "error" not in details else 1
    if action == "import":
        overrides = {"input_size": args.input_size, "resize": args.resize, "mean": args.mean, "std": args.std}
        entry = registry.import_file(args.file, name=args.name, class_names=args.classes, arch=args.arch,
                                     preprocess=overrides)
        meta = entry.meta or {}
        print(f"imported {args.file} as {entry.name!r} ({meta.get('arch')}, {meta.get('num_classes')} classes: "
              f"{', '.join(meta.get('class_names', [])[:10])}{'…' if meta.get('num_classes', 0) > 10 else ''})")
        return 0
    if action == "remove":
        registry.remove(args.name)
        print(f"removed {args.name!r}")
        return 0
    if action == "default":
        registry.set_default(args.name)
        print(f"default model is now {args.name!r}")
        return 0
    if action == "rename":
        registry.rename(args.name, args.new_name)
        print(f"renamed {args.name!r} to {args.new_name!r}")
        return 0
    raise AssertionError(action)
