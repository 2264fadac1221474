"""Command line: `resnet-gui [gui|predict|models|train] ...`. Heavy imports happen per command."""
from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from resnet_gui import APP_ID, __version__


def _err(message: str) -> None:
    print(f"{APP_ID}: error: {message}", file=sys.stderr)


# ---------------------------------------------------------------------------------------------
# predict
# ---------------------------------------------------------------------------------------------
def cmd_predict(args: argparse.Namespace) -> int:
    from resnet_gui.core.images import list_images
    from resnet_gui.core.predict import Predictor, write_csv
    from resnet_gui.core.registry import Registry
    from resnet_gui.core.seed import ensure_demo_model

    registry = Registry()
    if args.model is None:
        ensure_demo_model(registry)
    path = registry.resolve(args.model)
    predictor = Predictor.from_file(path, device=args.device)
    files = list_images(args.paths)
    if not files:
        _err("no images found in " + ", ".join(args.paths))
        return 1
    failed = 0
    collected = []
    for batch in predictor.predict_paths(files, top_k=args.top_k, batch_size=args.batch_size):
        for pred in batch:
            collected.append(pred) if args.csv else None
            failed += not pred.ok
            if args.json:
                print(json.dumps(pred.to_json()), flush=True)
            elif pred.ok:
                others = ", ".join(f"{label} {prob:.1%}" for label, prob in pred.top_k[1:])
                print(f"{pred.path}: {pred.label} ({pred.confidence:.1%})" + (f"  [{others}]" if others else ""),
                      flush=True)
            else:
                print(f"{pred.path}: ERROR {pred.error.removeprefix(str(pred.path) + ': ')}", flush=True)
    if args.csv:
        write_csv(collected, args.csv, top_k=args.top_k)
        if not args.json:
            print(f"wrote {args.csv}", file=sys.stderr)
    if failed:
        print(f"{failed} of {len(files)} file(s) could not be classified", file=sys.stderr)
    return 1 if failed else 0


# ---------------------------------------------------------------------------------------------
# models
# ---------------------------------------------------------------------------------------------
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


# ---------------------------------------------------------------------------------------------
# train
# ---------------------------------------------------------------------------------------------
def _fmt_time(seconds: float | None) -> str:
    if seconds is None or seconds != seconds or seconds == float("inf"):
        return "--:--"
    seconds = int(seconds)
    h, rem = divmod(seconds, 3600)
    return f"{h}:{rem // 60:02d}:{rem % 60:02d}" if h else f"{rem // 60:02d}:{rem % 60:02d}"


class _TrainPrinter:
    """Human output: one line per epoch, and a progress bar on stderr when it is a terminal."""

    def __init__(self, stream=None):
        self.err = stream or sys.stderr
        self.tty = self.err.isatty()
        self.bar_shown = False

    def _clear_bar(self):
        if self.bar_shown:
            self.err.write("\r\033[K")
            self.bar_shown = False

    def __call__(self, ev: dict) -> None:
        kind = ev["event"]
        if kind == "batch":
            if self.tty:
                done = int(30 * ev["step"] / max(ev["steps"], 1))
                self.err.write(f"\repoch {ev['epoch']}/{ev['epochs']} [{'#' * done}{'.' * (30 - done)}] "
                               f"{ev['step']}/{ev['steps']} loss {ev['loss']:.4f} {ev['images_per_s']:.0f} img/s "
                               f"ETA {_fmt_time(ev['eta_s'])}\033[K")
                self.err.flush()
                self.bar_shown = True
            return
        if kind == "prepare":
            if self.tty:
                total = ev["total"]
                pct = f"{ev['done'] / total:.0%}" if total else f"{ev['done'] / 1e6:.1f} MB"
                self.err.write(f"\r{ev['message']}: {pct}\033[K")
                self.err.flush()
                self.bar_shown = True
            return
        self._clear_bar()
        if kind == "status":
            print(f"{ev['message']}...", file=self.err)
        elif kind == "warning":
            print(f"warning: {ev['message']}", file=self.err)
        elif kind == "dataset":
            d = ev["description"]
            counts = ", ".join(f"{k} {v}" for k, v in list(d.get("class_counts", {}).items())[:12])
            print(f"dataset {d.get('name')}: {d.get('train_images')} training, {d.get('val_images')} validation "
                  f"images ({d.get('val_source')}); classes: {counts}", flush=True)
        elif kind == "started":
            resumed = f", resuming after epoch {ev['start_epoch']}" if ev["start_epoch"] else ""
            print(f"training {ev['config']['arch']} as {ev['run_name']!r} on {ev['device']} ({ev['precision']}): "
                  f"{ev['epochs']} epochs "
                  f"of {ev['steps_per_epoch']} steps{resumed}", flush=True)
        elif kind == "epoch":
            star = "  * best" if ev["best"] else ""
            print(f"epoch {ev['epoch']:>3}/{ev['epochs']}  train loss {ev['train_loss']:.4f} acc {ev['train_accuracy']:6.2%}"
                  f"  val loss {ev['val_loss']:.4f} acc {ev['val_accuracy']:6.2%}  lr {ev['lr']:.3g}  "
                  f"{ev['images_per_s']:.0f} img/s  {ev['epoch_time_s']:.0f} s  ETA {_fmt_time(ev['eta_s'])}{star}",
                  flush=True)


def cmd_train(args: argparse.Namespace) -> int:
    import signal
    import threading

    from resnet_gui.core.config import recipe
    from resnet_gui.core.train import resume_config, train

    overrides = dict(data=args.data, arch=args.arch, weights_file=args.weights_file, epochs=args.epochs,
                     batch_size=args.batch_size, lr=args.lr, optimizer=args.optimizer, schedule=args.schedule,
                     label_smoothing=args.label_smoothing, val_split=args.val_split, seed=args.seed,
                     device=args.device, name=args.name, workers=args.workers, weight_decay=args.weight_decay,
                     warmup_epochs=args.warmup_epochs, freeze_backbone_epochs=args.freeze_backbone_epochs,
                     image_size=args.image_size, threads=args.threads, precision=args.precision)
    if args.pretrained or args.weights_file:
        overrides["pretrained"] = True
    if args.download:
        overrides["download"] = True
    if args.no_hflip:
        overrides["hflip"] = False
    resume = None
    if args.resume:
        allowed = {k: overrides[k] for k in ("epochs", "device", "workers", "threads", "precision")}
        config, resume = resume_config(args.resume, **allowed)
    else:
        if args.dataset is None:
            _err("choose a dataset: --dataset cifar10, or --dataset folder --data PATH (or --resume NAME)")
            return 2
        name = "cifar10" if args.dataset == "cifar10" else "finetune" if overrides.get("pretrained") else "scratch"
        config = recipe(name, **overrides)
    stop = threading.Event()

    def on_sigint(signum, frame):
        if stop.is_set():
            raise KeyboardInterrupt
        print("\nstopping after this batch (Ctrl+C again to abort)...", file=sys.stderr)
        stop.set()

    previous = signal.signal(signal.SIGINT, on_sigint) if threading.current_thread() is threading.main_thread() else None
    printer = (lambda ev: print(json.dumps(ev), flush=True)) if args.json else _TrainPrinter()
    try:
        result = train(config, printer, stop, resume=resume)
    finally:
        if previous is not None:
            signal.signal(signal.SIGINT, previous)
    if not args.json:
        if isinstance(printer, _TrainPrinter):
            printer._clear_bar()
        if result.status == "failed":
            _err(result.message)
        else:
            print(result.message)
        if result.best_path:
            print(f"best model: {result.best_name!r} -> {result.best_path} "
                  f"(validation accuracy {result.best_val_accuracy:.2%})")
        if result.status != "finished" and result.last_path:
            print(f"resume with: {APP_ID} train --resume {result.run_name!r}")
    return {"finished": 0, "cancelled": 130}.get(result.status, 1)


# ---------------------------------------------------------------------------------------------
# gui
# ---------------------------------------------------------------------------------------------
def cmd_gui(args: argparse.Namespace) -> int:
    from resnet_gui.ui.app import run_app

    return run_app()


# ---------------------------------------------------------------------------------------------
def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog=APP_ID, description="Classify images with ResNet models, train new ones, manage the model registry. "
        "With no command, the desktop app starts.")
    parser.add_argument("--version", action="version", version=f"%(prog)s {__version__}")
    parser.add_argument("--self-test", action="store_true",
                        help="check that this installation can show its window, predict and train, then exit")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")

    sub.add_parser("gui", help="start the desktop app (the default)")

    p = sub.add_parser("predict", help="classify images or folders of images")
    p.add_argument("paths", nargs="+", metavar="PATH", help="image files or folders (searched recursively)")
    p.add_argument("--model", help="registry name or .pth file (default: the registry's default model)")
    p.add_argument("--top-k", type=int, default=5, help="how many classes to report per image (default 5)")
    p.add_argument("--csv", type=Path, metavar="OUT", help="also write the results to this CSV file")
    p.add_argument("--json", action="store_true", help="one JSON object per image on stdout")
    p.add_argument("--device", default="auto", help="auto (default), cpu, cuda, cuda:N or mps")
    p.add_argument("--batch-size", type=int, default=32, help=argparse.SUPPRESS)

    m = sub.add_parser("models", help="list, inspect, import, rename, remove models in the registry")
    msub = m.add_subparsers(dest="models_cmd", metavar="ACTION", required=True)
    ml = msub.add_parser("list", help="list the registry's models")
    ml.add_argument("--json", action="store_true")
    ms = msub.add_parser("show", help="all metadata of one model")
    ms.add_argument("name")
    ms.add_argument("--json", action="store_true")
    mi = msub.add_parser("import", help="import a .pth (ours, or a state dict saved by a training script)")
    mi.add_argument("file", type=Path)
    mi.add_argument("--name", help="registry name (default: the file's name)")
    mi.add_argument("--classes", metavar="LIST_OR_FILE",
                    help="class names: comma-separated, or a text file with one name per line")
    mi.add_argument("--arch", help="expected architecture (inferred from the weights when omitted)")
    mi.add_argument("--input-size", type=int, help="input size the model was trained at (default: by arch)")
    mi.add_argument("--resize", type=int, help="shorter side before the center crop (default: by arch)")
    mi.add_argument("--mean", type=float, nargs=3, help="normalisation mean (default: by arch)")
    mi.add_argument("--std", type=float, nargs=3, help="normalisation std (default: by arch)")
    mr = msub.add_parser("remove", help="delete a model from the registry")
    mr.add_argument("name")
    md = msub.add_parser("default", help="make a model the default")
    md.add_argument("name")
    mn = msub.add_parser("rename", help="rename a model")
    mn.add_argument("name")
    mn.add_argument("new_name")
    t = sub.add_parser("train", help="train a model (CIFAR-10 from scratch, or on a folder of class folders)",
                       description="Train ResNet-18 on CIFAR-10 from scratch (--dataset cifar10), fine-tune an "
                       "ImageNet-pretrained model on a folder of class folders (--dataset folder --pretrained), "
                       "or train from scratch on a folder. Unset options take the recipe's defaults.")
    t.add_argument("--dataset", choices=["cifar10", "folder"])
    t.add_argument("--data", metavar="PATH", help="folder dataset root; for CIFAR-10, where the files are")
    t.add_argument("--download", action="store_true", help="CIFAR-10: download it when no local copy is found")
    t.add_argument("--arch", help="architecture (resnet18_cifar, resnet18, resnet34, resnet50, ...)")
    t.add_argument("--pretrained", action="store_true", help="start from ImageNet weights (fine-tuning)")
    t.add_argument("--weights-file", metavar="F", help="local ImageNet weights file (offline; implies --pretrained)")
    t.add_argument("--epochs", type=int)
    t.add_argument("--batch-size", type=int)
    t.add_argument("--lr", type=float, help="peak learning rate")
    t.add_argument("--optimizer", choices=["sgd", "adamw"])
    t.add_argument("--schedule", choices=["onecycle", "cosine", "step"])
    t.add_argument("--label-smoothing", type=float)
    t.add_argument("--weight-decay", type=float)
    t.add_argument("--warmup-epochs", type=float)
    t.add_argument("--freeze-backbone-epochs", type=int, help="train only the new head for the first N epochs")
    t.add_argument("--image-size", type=int, help="input size (folder datasets; default: the model's preset)")
    t.add_argument("--no-hflip", action="store_true", help="no horizontal flips (digits, text)")
    t.add_argument("--val-split", type=float, help="validation fraction for a folder without val/ (default 0.2)")
    t.add_argument("--seed", type=int)
    t.add_argument("--device", help="auto (default), cpu, cuda, cuda:N or mps")
    t.add_argument("--precision", choices=["auto", "fp32", "bf16"],
                   help="auto (default): bf16 autocast on GPUs and on CPUs with native bf16, else fp32")
    t.add_argument("--workers", type=int, help="DataLoader workers for folder datasets (default: automatic)")
    t.add_argument("--threads", type=int, help="CPU threads for PyTorch (default: all)")
    t.add_argument("--name", help="registry name of the trained model")
    t.add_argument("--resume", metavar="NAME_OR_FILE", help="continue a stopped run (its name, or a last.pth)")
    t.add_argument("--json", action="store_true", help="one JSON object per event on stdout")
    return parser


COMMANDS = {"gui": cmd_gui, "predict": cmd_predict, "models": cmd_models, "train": cmd_train}


def main(argv: list[str]) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    if args.self_test:
        from resnet_gui.selftest import run_self_test

        return run_self_test()
    command = args.command or "gui"
    from resnet_gui.core.errors import ResnetGuiError

    try:
        return COMMANDS[command](args)
    except ResnetGuiError as exc:
        _err(str(exc))
        return 2
    except KeyboardInterrupt:
        _err("interrupted")
        return 130
    except OSError as exc:  # full disk, permissions: a message, not a traceback
        _err(f"{getattr(exc, 'filename', '') or ''} {exc.strerror or exc}".strip())
        return 2
