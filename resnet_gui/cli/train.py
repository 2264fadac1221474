"""`resnet-gui train`: a training run in the terminal (text with a progress bar, or --json events).

Under torchrun every process runs this command; rank 0 prints the events, the other ranks print only a
failure of their own (on stderr, with their rank). Ctrl+C, SIGTERM or the --stop-file end every process
after the current batch (core/train/distributed.py makes them agree on the step)."""
from __future__ import annotations

import argparse
import json
import signal
import sys
import threading
from pathlib import Path

from resnet_gui import APP_ID
from resnet_gui.text import clock, plural

from .output import err


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
                               f"ETA {clock(ev.eta_s)}\033[K")
                self.err.flush()
                self.bar_shown = True
            return
        if isinstance(ev, E.LrStep):
            if self.tty:
                self.err.write(f"\rFinding a learning rate: step {ev.step} of at most {ev.steps}, ETA "
                               f"{clock(ev.eta_s)}\033[K")
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
            where = ev.device
            if ev.world_size > 1:
                cfg = ev.config
                scaled = "" if cfg.get("lr") is None else f", peak lr {cfg['lr']:g} scaled to " \
                    f"{cfg['lr'] * _lr_scale(cfg):g}"
                where = (f"{ev.world_size} processes ({ev.device} each), batch {cfg['batch_size']} per process = "
                         f"{cfg['batch_size'] * ev.world_size} per step{scaled}")
            print(f"training {ev.config['arch']} as {ev.run_name!r} on {where} ({ev.precision}): "
                  f"{plural(ev.epochs, 'epoch')} of {plural(ev.steps_per_epoch, 'step')}{resumed}", flush=True)
        elif isinstance(ev, E.Epoch):
            star = "  * best" if ev.best else ""
            print(f"epoch {ev.epoch:>3}/{ev.epochs}  train loss {ev.train_loss:.4f} acc {ev.train_accuracy:6.2%}"
                  f"  val loss {ev.val_loss:.4f} acc {ev.val_accuracy:6.2%}  lr {ev.lr:.3g}  "
                  f"{ev.images_per_s:.0f} img/s  {ev.epoch_time_s:.0f} s  ETA {clock(ev.eta_s)}{star}",
                  flush=True)


def _lr_scale(config: dict) -> float:
    from resnet_gui.core.train import TrainConfig

    return TrainConfig.from_dict(config).lr_scale()


class _StopRequest:
    """Set by Ctrl+C / SIGTERM, or by the appearance of --stop-file (checked before every batch)."""

    def __init__(self, path: str | None):
        self.event = threading.Event()
        self.path = Path(path).expanduser() if path else None

    def set(self) -> None:
        self.event.set()

    def is_set(self) -> bool:
        if not self.event.is_set() and self.path is not None and self.path.exists():
            self.event.set()
        return self.event.is_set()


def _install_stop_handlers(stop: _StopRequest, rank: int, world_size: int) -> dict:
    """SIGINT and SIGTERM ask to stop after the current batch. A second one aborts a single process; under
    torchrun it is ignored (a terminal's Ctrl+C reaches every process and torchrun forwards it as well; the
    launcher itself kills what has not ended after its own grace period)."""
    def on_signal(*_signal_args):
        if stop.event.is_set() and world_size == 1:
            raise KeyboardInterrupt
        if not stop.event.is_set() and rank == 0:
            print(f"\nstopping after this batch{' (Ctrl+C again to abort)' if world_size == 1 else ''}...",
                  file=sys.stderr, flush=True)
        stop.set()

    if threading.current_thread() is not threading.main_thread():
        return {}
    return {sig: signal.signal(sig, on_signal) for sig in (signal.SIGINT, signal.SIGTERM)}


def _find_lr(config, args: argparse.Namespace, stop) -> int:
    from resnet_gui.core.train.lr_find import find_lr

    printer = (lambda ev: print(json.dumps(ev.to_json()), flush=True)) if args.json else _TrainPrinter()
    found = find_lr(config, printer, stop, steps=args.find_lr_steps)
    if not args.json:
        printer._clear_bar()
        tried = f"tried {found.lrs[0]:.0e} to {found.lrs[-1]:.2g} in {len(found.lrs)} steps"
        if found.lr is None:
            print(f"No learning rate suggested: {found.method} ({tried}), so any rate would be a guess. The images may "
                  "hold nothing this model can learn at this size (check the folders and their labels), or the "
                  "curve is too noisy (a larger --batch-size or more --find-lr-steps). Without --lr, training uses "
                  f"the recipe's rate ({config.lr:g}).")
        else:
            print(f"{found.explained(config.lr)} ({found.method}; {tried}.) Train with --lr {found.lr:.3g}.")
    return 0


METAVARS = {int: "N", float: "X"}


def add_parser(subparsers) -> None:
    from resnet_gui.core.train.config import GROUPS

    from . import positive_int

    t = subparsers.add_parser(
        "train", help="train a model (CIFAR-10 from scratch, or on a folder of class folders)",
        description="Train ResNet-18 on CIFAR-10 from scratch (--dataset cifar10), fine-tune an ImageNet-pretrained "
        "model on a folder of class folders (--dataset folder --pretrained), or train from scratch on a folder. "
        "Unset options take the recipe's defaults.")
    groups = {title: t.add_argument_group(title, description) for title, description in GROUPS.items()}
    for name, spec in _flagged():
        group = groups[spec.group]
        if spec.kind is bool:
            group.add_argument(spec.flag, dest=name, action="store_const", const=spec.switch, default=None,
                               help=_escaped(spec.help or spec.label))
        else:
            limits = f"; {spec.range_text()}" if spec.low is not None and spec.high is not None \
                and spec.high < 2**31 else ""
            group.add_argument(spec.flag, dest=name, type=spec.kind, choices=spec.choices or None, default=None,
                               metavar=spec.metavar or METAVARS.get(spec.kind),
                               help=_escaped(spec.help or spec.label) + limits)

    r = t.add_argument_group("the run")
    r.add_argument("--config", metavar="FILE",
                   help="read the settings from this JSON file (the app writes one for torchrun); options given "
                   "as well override it")
    r.add_argument("--resume", metavar="NAME_OR_FILE", help="continue a stopped run (its name, or a last.pth)")
    r.add_argument("--stop-file", metavar="PATH",
                   help="stop after the current batch once this file exists (like Ctrl+C; for launchers)")
    r.add_argument("--json", action="store_true", help="one JSON object per event on stdout")
    r.add_argument("--find-lr", action="store_true",
                   help="only run a learning-rate range test on this data and model (100 steps, stopped early "
                   "when the loss diverges; nothing is saved) and suggest a learning rate")
    r.add_argument("--find-lr-steps", type=positive_int, default=100, metavar="N",
                   help="with --find-lr: N steps instead of 100 (fewer take less time, but show less of the descent)")


def _escaped(text: str) -> str:
    return text.replace("%", "%%")  # argparse formats help with %


def _flagged():
    """The TrainConfig settings that have a command-line flag."""
    from resnet_gui.core.train.config import settings

    return [(name, spec) for name, spec in settings() if spec.flag]


def config_from_args(args: argparse.Namespace, rank: int = 0):
    """(TrainConfig, resume) from the command line: a resumed run's saved settings with the flags a resume may
    change, a --config file's settings with every flag given, or the recipe the flags choose. Not validated:
    train() and find_lr() do that, once."""
    from resnet_gui.core.errors import TrainingError
    from resnet_gui.core.train import TrainConfig, recipe, resume_config

    overrides = {name: getattr(args, name) for name, _ in _flagged() if getattr(args, name, None) is not None}
    if overrides.get("data"):
        overrides["data"] = str(Path(overrides["data"]).expanduser().resolve())  # resumable from any folder
    if overrides.get("weights_file"):
        overrides["pretrained"] = True
    if args.resume and args.config:
        raise TrainingError("--config and --resume cannot be used together: a resumed run keeps its own settings")
    if args.resume:
        allowed = {name: overrides[name] for name, spec in _flagged() if spec.on_resume and name in overrides}
        try:
            return resume_config(args.resume, **allowed)
        except TrainingError:
            if rank == 0:
                raise
            # another machine's process: rank 0 reads the state and sends it (and its settings) to every rank
            return TrainConfig().replace(**allowed), args.resume
    if args.config:
        return TrainConfig.from_file(args.config).replace(**overrides), None
    if overrides.get("dataset") is None:
        return None, None
    name = "cifar10" if overrides["dataset"] == "cifar10" else "finetune" if overrides.get("pretrained") else "scratch"
    return recipe(name, **overrides), None


def run(args: argparse.Namespace) -> int:
    from resnet_gui.core.errors import with_remedy
    from resnet_gui.core.train import train
    from resnet_gui.core.train.distributed import launcher_rank_and_size

    rank, world_size = launcher_rank_and_size()
    config, resume = config_from_args(args, rank)
    if config is None:
        err("choose a dataset: --dataset cifar10, or --dataset folder --data PATH (or --resume NAME, or --config "
            "FILE)")
        return 2
    stop = _StopRequest(args.stop_file)
    if args.find_lr:
        return _find_lr(config, args, stop)
    previous = _install_stop_handlers(stop, rank, world_size)
    if rank != 0:  # other ranks of a torchrun job: only their own failure, on stderr
        printer = lambda ev: err(f"rank {rank}: {with_remedy(ev.message, ev.remedy)}") if ev.kind == "failed" else None
    elif args.json:
        printer = lambda ev: print(json.dumps(ev.to_json()), flush=True)
    else:
        printer = _TrainPrinter()
    try:
        result = train(config, printer, stop, resume=resume)
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)
    if not args.json and rank == 0:
        if isinstance(printer, _TrainPrinter):
            printer._clear_bar()
        message = with_remedy(result.message, result.remedy)
        if result.status == "failed":
            err(message)
        else:
            print(message)
        if result.best_path:
            print(f"best model: {result.best_name!r} -> {result.best_path} "
                  f"(validation accuracy {result.best_val_accuracy:.2%})")
        said_resume = result.remedy is not None and result.remedy.kind == "resume"
        if result.status != "finished" and result.last_path and not said_resume:
            print(f"resume with: {APP_ID} train --resume {result.run_name!r}")
        if result.run_name and result.last_path:
            from resnet_gui.core.train import tensorboard

            if tensorboard.logdir(result.run_name).is_dir():
                print(f"curves: {tensorboard.command(result.run_name)}")
        if result.warnings:
            print("\nBut look at this before using the model:")
            for line in result.warnings:
                print(f"  - {line}")
    # Under torchrun a stopped run exits 0 on every rank: a non-zero exit makes torchrun kill the other ranks
    # at once and print a failure report, while the run ended as asked (its last event says "cancelled").
    return {"finished": 0, "cancelled": 130 if world_size == 1 else 0}.get(result.status, 1)
