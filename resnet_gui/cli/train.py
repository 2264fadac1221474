"""`resnet-gui train`: a training run in the terminal (text with a progress bar, or --json events)."""
from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from resnet_gui import APP_ID

from .output import err


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

    def __call__(self, ev) -> None:
        from resnet_gui.core.train import events as E

        if isinstance(ev, E.Batch):
            if self.tty:
                done = int(30 * ev.step / max(ev.steps, 1))
                self.err.write(f"\repoch {ev.epoch}/{ev.epochs} [{'#' * done}{'.' * (30 - done)}] "
                               f"{ev.step}/{ev.steps} loss {ev.loss:.4f} {ev.images_per_s:.0f} img/s "
                               f"ETA {_fmt_time(ev.eta_s)}\033[K")
                self.err.flush()
                self.bar_shown = True
            return
        if isinstance(ev, E.Prepare):
            if self.tty:
                pct = f"{ev.done / ev.total:.0%}" if ev.total else f"{ev.done / 1e6:.1f} MB"
                self.err.write(f"\r{ev.message}: {pct}\033[K")
                self.err.flush()
                self.bar_shown = True
            return
        self._clear_bar()
        if isinstance(ev, E.Status):
            print(f"{ev.message}...", file=self.err)
        elif isinstance(ev, E.Warning):
            print(f"warning: {ev.message}", file=self.err)
        elif isinstance(ev, E.DatasetSummary):
            d = ev.description
            counts = ", ".join(f"{k} {v}" for k, v in list(d.get("class_counts", {}).items())[:12])
            print(f"dataset {d.get('name')}: {d.get('train_images')} training, {d.get('val_images')} validation "
                  f"images ({d.get('val_source')}); classes: {counts}", flush=True)
        elif isinstance(ev, E.Started):
            resumed = f", resuming after epoch {ev.start_epoch}" if ev.start_epoch else ""
            print(f"training {ev.config['arch']} as {ev.run_name!r} on {ev.device} ({ev.precision}): "
                  f"{_plural(ev.epochs, 'epoch')} of {_plural(ev.steps_per_epoch, 'step')}{resumed}", flush=True)
        elif isinstance(ev, E.Epoch):
            star = "  * best" if ev.best else ""
            print(f"epoch {ev.epoch:>3}/{ev.epochs}  train loss {ev.train_loss:.4f} acc {ev.train_accuracy:6.2%}"
                  f"  val loss {ev.val_loss:.4f} acc {ev.val_accuracy:6.2%}  lr {ev.lr:.3g}  "
                  f"{ev.images_per_s:.0f} img/s  {ev.epoch_time_s:.0f} s  ETA {_fmt_time(ev.eta_s)}{star}",
                  flush=True)


def _plural(n: int, word: str) -> str:
    return f"{n} {word}{'' if n == 1 else 's'}"


def cmd_train(args: argparse.Namespace) -> int:
    import signal
    import threading

    from resnet_gui.core.train import recipe, resume_config, train

    data = str(Path(args.data).expanduser().resolve()) if args.data else None  # resumable from any folder
    overrides = dict(data=data, arch=args.arch, augment=args.augment, weights_file=args.weights_file,
                     epochs=args.epochs,
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
        allowed = {k: overrides[k] for k in ("epochs", "device", "workers", "threads", "precision", "data")}
        config, resume = resume_config(args.resume, **allowed)
    else:
        if args.dataset is None:
            err("choose a dataset: --dataset cifar10, or --dataset folder --data PATH (or --resume NAME)")
            return 2
        name = "cifar10" if args.dataset == "cifar10" else "finetune" if overrides.get("pretrained") else "scratch"
        config = recipe(name, **overrides)
    stop = threading.Event()

    def on_sigint(signum, frame):
        if stop.is_set():
            raise KeyboardInterrupt
        print("\nstopping after this batch (Ctrl+C again to abort)...", file=sys.stderr)
        stop.set()

    in_main = threading.current_thread() is threading.main_thread()
    previous = signal.signal(signal.SIGINT, on_sigint) if in_main else None
    printer = (lambda ev: print(json.dumps(ev.to_json()), flush=True)) if args.json else _TrainPrinter()
    try:
        result = train(config, printer, stop, resume=resume)
    finally:
        if previous is not None:
            signal.signal(signal.SIGINT, previous)
    if not args.json:
        if isinstance(printer, _TrainPrinter):
            printer._clear_bar()
        if result.status == "failed":
            err(result.message)
        else:
            print(result.message)
        if result.best_path:
            print(f"best model: {result.best_name!r} -> {result.best_path} "
                  f"(validation accuracy {result.best_val_accuracy:.2%})")
        if result.status != "finished" and result.last_path and "--resume" not in result.message:
            print(f"resume with: {APP_ID} train --resume {result.run_name!r}")
    return {"finished": 0, "cancelled": 130}.get(result.status, 1)
