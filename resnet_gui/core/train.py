"""The training engine: CIFAR-10 from scratch, fine-tuning and from-scratch training on folders.

It knows nothing about Qt. Progress goes to an `on_event(dict)` callback; a `stop` object with
`is_set()` (a threading.Event) is checked before every batch. Events (the "event" key):

  status      {"message"}                                   a phase begins ("Loading CIFAR-10", ...)
  prepare     {"message", "done", "total"}                  data preparation / download progress
  started     {"run_name", "device", "epochs", "start_epoch", "steps_per_epoch", "train_images", ...}
  dataset     {"description"}                               dataset summary (class counts, split)
  warning     {"message", ["paths"]}                        class imbalance, skipped images, ...
  batch       {"epoch", "epochs", "step", "steps", "loss", "losses": [[global_step, loss], ...], "lr",
               "images_per_s", "eta_s"}                     at most ~20 per second
  epoch       {"epoch", "epochs", "train_loss", "train_accuracy", "val_loss", "val_accuracy", "lr",
               "images_per_s", "epoch_time_s", "eta_s", "best"}
  checkpoint  {"kind": "best" | "last", "path", ["name", "val_accuracy"]}
  finished / cancelled / failed  {"message", "best_name", "best_path", "best_val_accuracy", ...}

Accuracies are fractions in [0, 1]. The best model by validation accuracy goes into the registry in
the core checkpoint format; a resumable "last" state is saved atomically after every epoch.
"""
from __future__ import annotations

import contextlib
import datetime as _dt
import gc
import logging
import math
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable

import torch
from torch import nn

from .atomic import atomic_write
from .checkpoint import Checkpoint, check_dense_tensors, safe_torch_load
from .config import TrainConfig
from .datasets import (Cancelled, LoaderData, TensorData, folder_to_arrays, load_cifar10, locate_cifar10,
                       scan_folder)
from .devices import describe_device, resolve_device
from .errors import DatasetError, ResnetGuiError, TrainingError
from .models import build_model, default_preprocess
from .paths import runs_dir
from .preprocess import Preprocess, cifar_preprocess, with_overrides
from .registry import Registry

log = logging.getLogger(__name__)

STATE_FORMAT = "resnet-gui-train-state"
STATE_VERSION = 1
MAX_EVENTS_PER_S = 20.0
TENSOR_PATH_MAX_SIZE = 64  # inputs up to this size use the in-memory tensor path
EventFn = Callable[[dict], None]


@dataclass
class TrainResult:
    status: str  # "finished", "cancelled" or "failed"
    message: str
    run_name: str | None = None
    best_name: str | None = None
    best_path: str | None = None
    best_val_accuracy: float | None = None
    last_path: str | None = None
    epochs_done: int = 0
    history: list[dict] = field(default_factory=list)


def cpu_has_native_bf16() -> bool:
    cpu = getattr(torch, "cpu", None)
    checks = [getattr(cpu, "_is_avx512_bf16_supported", None), getattr(cpu, "_is_amx_tile_supported", None)]
    return any(fn() for fn in checks if fn is not None)


def autocast_dtype(device: torch.device, precision: str = "auto") -> torch.dtype | None:
    """The autocast dtype for training on `device`, or None for plain fp32."""
    if precision == "fp32":
        return None
    if device.type == "cuda":
        return torch.bfloat16 if torch.cuda.is_bf16_supported() else torch.float16
    if device.type == "cpu" and (precision == "bf16" or cpu_has_native_bf16()):
        return torch.bfloat16
    if device.type == "mps" and precision == "bf16":
        return torch.bfloat16
    return None


class _NoStop:
    @staticmethod
    def is_set() -> bool:
        return False


class Schedule:
    """Learning-rate multiplier per optimiser step (used through LambdaLR, so it resumes exactly).

    onecycle: linear from 1/25 to 1 over the warm-up, then cosine down to ~0.
    cosine:   linear from ~0 to 1 over the warm-up (if any), then cosine down to 0.
    step:     warm-up (if any), then x0.1 at 50 % and again at 75 % of the run.
    """

    def __init__(self, kind: str, total_steps: int, warmup_steps: int):
        self.kind, self.total, self.warmup = kind, max(1, int(total_steps)), max(0, int(warmup_steps))

    def __call__(self, step: int) -> float:
        if step < self.warmup:
            start = 1 / 25 if self.kind == "onecycle" else 1 / max(1, self.warmup)
            return start + (1 - start) * step / self.warmup
        if self.kind == "step":
            frac = step / self.total
            return 1.0 if frac < 0.5 else 0.1 if frac < 0.75 else 0.01
        progress = min(1.0, (step - self.warmup) / max(1, self.total - self.warmup))
        floor = 1e-4 / 25 if self.kind == "onecycle" else 0.0
        return floor + (1 - floor) * 0.5 * (1 + math.cos(math.pi * progress))


class _Events:
    """Calls on_event; batch events are throttled to MAX_EVENTS_PER_S and carry every loss read back."""

    def __init__(self, on_event: EventFn | None):
        self.on_event = on_event
        self.last_batch = 0.0
        self.pending_losses: list[list[float]] = []

    def emit(self, event: str, /, **data: Any) -> None:
        if self.on_event is not None:
            self.on_event({"event": event, **data})

    def batch(self, losses: list[list[float]], force: bool = False, **data: Any) -> None:
        self.pending_losses.extend(losses)
        now = time.monotonic()
        if force or now - self.last_batch >= 1.0 / MAX_EVENTS_PER_S:
            self.last_batch = now
            losses, self.pending_losses = self.pending_losses, []
            self.emit("batch", losses=losses, **data)


# ---------------------------------------------------------------------------------------------
# runs and resumable state
# ---------------------------------------------------------------------------------------------
def run_state_path(run_name: str) -> Path:
    return runs_dir() / run_name / "last.pth"


def resolve_resume(name_or_file: str | Path) -> Path:
    """A run name (its runs/<name>/last.pth) or the path of a state file."""
    candidate = Path(name_or_file).expanduser()
    if candidate.is_file():
        return candidate
    path = run_state_path(str(name_or_file))
    if path.is_file():
        return path
    known = ", ".join(r["run_name"] for r in list_runs()) or "none"
    raise TrainingError(f"no resumable run named {name_or_file!r} (runs in {runs_dir()}: {known})")


def load_state(path: Path) -> dict:
    state = safe_torch_load(path)
    if not isinstance(state, dict) or state.get("format") != STATE_FORMAT:
        raise TrainingError(f"{path}: not a resumable training state of this app")
    if state.get("format_version", 0) > STATE_VERSION:
        raise TrainingError(f"{path}: saved by a newer version of the app")
    check_dense_tensors(state["model"], path)
    return state


def resume_config(name_or_file: str | Path, **overrides) -> tuple[TrainConfig, Path]:
    """The saved config of a run (with e.g. epochs/device/workers overridden) and its state file."""
    path = resolve_resume(name_or_file)
    state = safe_torch_load(path, mmap=True)
    if not isinstance(state, dict) or state.get("format") != STATE_FORMAT:
        raise TrainingError(f"{path}: not a resumable training state of this app")
    return TrainConfig.from_dict(state["config"]).replace(**overrides), path


def list_runs() -> list[dict]:
    """Saved runs, newest first: run_name, epoch (completed), epochs, best_val_accuracy, path, config."""
    runs = []
    for path in runs_dir().glob("*/last.pth"):
        try:
            state = safe_torch_load(path, mmap=True)
            runs.append({"run_name": state["run_name"], "epoch": int(state["epoch"]),
                         "epochs": int(state["config"]["epochs"]), "best_val_accuracy": state.get("best_val_accuracy"),
                         "path": str(path), "config": state["config"], "modified": path.stat().st_mtime})
        except (ResnetGuiError, KeyError, TypeError, OSError):
            continue
    return sorted(runs, key=lambda r: r["modified"], reverse=True)


def _rng_state() -> dict:
    return {"torch": torch.get_rng_state(),
            "cuda": torch.cuda.get_rng_state_all() if torch.cuda.is_available() else []}


def _restore_rng(rng: dict) -> None:
    torch.set_rng_state(rng["torch"])
    if rng.get("cuda") and torch.cuda.is_available():
        with contextlib.suppress(RuntimeError):
            torch.cuda.set_rng_state_all(rng["cuda"])


# ---------------------------------------------------------------------------------------------
# the run
# ---------------------------------------------------------------------------------------------
class _Run:
    def __init__(self, config: TrainConfig, events: _Events, stop, registry: Registry, resume: Path | None):
        self.cfg = config
        self.events = events
        self.stop = stop
        self.registry = registry
        self.resume_path = resume
        self.device = resolve_device(config.device)
        self.channels_last = self.device.type in ("cuda", "cpu")
        self.amp_dtype = autocast_dtype(self.device, config.precision)
        self.history: list[dict] = []
        self.best_acc: float | None = None
        self.best_name: str | None = None
        self.start_epoch = 0
        self.data = None

    # ---- data -------------------------------------------------------------------------------
    def _prepare_progress(self, what: str, done: int, total: int) -> None:
        now = time.monotonic()
        if done >= total or now - getattr(self, "_last_prep", 0.0) >= 1.0 / MAX_EVENTS_PER_S:
            self._last_prep = now
            self.events.emit("prepare", message=what, done=int(done), total=int(total))

    def _preprocess(self) -> Preprocess:
        cfg = self.cfg
        if cfg.dataset == "cifar10":
            return cifar_preprocess()
        pre = default_preprocess(cfg.arch)
        return with_overrides(pre, input_size=cfg.image_size) if cfg.image_size else pre

    def prepare_data(self) -> tuple[list[str], dict]:
        cfg, cancelled = self.cfg, self.stop.is_set
        pre = self.pre = self._preprocess()
        if cfg.dataset == "cifar10":
            self.events.emit("status", message="Loading CIFAR-10")
            base = locate_cifar10(cfg.data, download_if_missing=cfg.download, progress=self._prepare_progress,
                                  cancelled=cancelled)
            train, val, class_names = load_cifar10(base)
            counts = torch.bincount(train.labels, minlength=len(class_names)).tolist()
            description = {"name": "CIFAR-10", "path": str(base), "train_images": len(train.labels),
                           "val_images": len(val.labels), "val_source": "CIFAR-10 test set",
                           "class_counts": dict(zip(class_names, counts))}
            skipped: list[str] = []
        else:
            self.events.emit("status", message=f"Scanning {cfg.data}")
            split = scan_folder(cfg.data, val_split=cfg.val_split, seed=cfg.seed)
            for message in split.warnings:
                self.events.emit("warning", message=message)
            class_names = split.class_names
            description = {"name": Path(cfg.data).name, "path": str(Path(cfg.data).resolve()), "layout": split.layout,
                           "val_source": "val/ folder" if split.layout == "split"
                           else f"{cfg.val_split:.0%} stratified split (seed {cfg.seed})",
                           "class_counts": split.counts(split.train), "val_class_counts": split.counts(split.val)}
            est_bytes = (len(split.train) + len(split.val)) * 3 * pre.input_size ** 2
            if pre.input_size <= TENSOR_PATH_MAX_SIZE and est_bytes <= cfg.cache_mb * 2**20:
                train, bad_t = folder_to_arrays(split.train, pre, self._prepare_progress, cancelled,
                                                "Loading training images")
                val, bad_v = folder_to_arrays(split.val, pre, self._prepare_progress, cancelled,
                                              "Loading validation images")
                skipped = bad_t + bad_v
            else:
                self.events.emit("status", message="Preparing image loader")
                self.data = LoaderData(split, pre, self.device, seed=cfg.seed, batch_size=cfg.batch_size,
                                       workers=cfg.workers, cache_mb=cfg.cache_mb, channels_last=self.channels_last,
                                       hflip=cfg.hflip, progress=self._prepare_progress, cancelled=cancelled)
                skipped = list(self.data.skipped)
            self._report_skipped(skipped)
        if self.data is None:
            self.data = TensorData(train, val, pre, self.device, channels_last=self.channels_last,
                                   hflip=cfg.hflip)
        self.reported_skips = len(skipped)
        description.update(train_images=self.data.n_train, val_images=self.data.n_val, skipped_images=len(skipped),
                           data_path=self.data.kind)
        if self.data.n_train < cfg.batch_size:
            suggestion = max(1, 2 ** int(math.log2(max(2, self.data.n_train // 2))))
            raise DatasetError(f"the training set has {self.data.n_train} usable images, fewer than one batch of "
                               f"{cfg.batch_size}; lower the batch size (for example to {suggestion}) or add images")
        if self.data.n_val == 0:
            raise DatasetError("no usable validation images; add images or raise the validation split")
        self.events.emit("dataset", description=description)
        return class_names, description

    def _report_skipped(self, skipped: list[str]) -> None:
        if skipped:
            shown = "; ".join(skipped[:5]) + (f"; and {len(skipped) - 5} more" if len(skipped) > 5 else "")
            self.events.emit("warning", message=f"skipped {len(skipped)} image(s) that could not be loaded: {shown}",
                             paths=list(skipped))

    # ---- model ------------------------------------------------------------------------------
    def build(self, num_classes: int) -> None:
        cfg = self.cfg
        torch.manual_seed(cfg.seed)
        weights = None
        if cfg.pretrained:
            weights = cfg.weights_file or "imagenet"
            self.events.emit("status", message=f"Loading ImageNet weights for {cfg.arch}")
        try:
            model = build_model(cfg.arch, num_classes, weights=weights,
                                progress=lambda d, t: self._prepare_progress("Downloading ImageNet weights", d, t),
                                cancelled=self.stop.is_set)
        except ResnetGuiError as exc:
            raise TrainingError(str(exc)) from None
        self.model = model.to(self.device)
        if self.channels_last:
            self.model = self.model.to(memory_format=torch.channels_last)
        params = [p for p in self.model.parameters()]
        if cfg.optimizer == "sgd":
            self.optimizer = torch.optim.SGD(params, lr=cfg.lr, momentum=cfg.momentum, nesterov=cfg.nesterov,
                                             weight_decay=cfg.weight_decay)
        elif cfg.optimizer == "adamw":
            self.optimizer = torch.optim.AdamW(params, lr=cfg.lr, weight_decay=cfg.weight_decay)
        else:
            raise TrainingError(f"unknown optimizer {cfg.optimizer!r}")
        steps = self.data.steps_per_epoch(cfg.batch_size)
        self.steps_per_epoch = steps
        self.scheduler = torch.optim.lr_scheduler.LambdaLR(
            self.optimizer, Schedule(cfg.schedule, steps * cfg.epochs, round(cfg.warmup() * steps)))
        self.scaler = torch.amp.GradScaler("cuda", enabled=self.amp_dtype == torch.float16)
        self.criterion = nn.CrossEntropyLoss(label_smoothing=cfg.label_smoothing)

    def restore(self, state: dict) -> None:
        self.model.load_state_dict(state["model"])
        self.optimizer.load_state_dict(state["optimizer"])
        self.scheduler.load_state_dict(state["scheduler"])
        if state.get("scaler"):
            self.scaler.load_state_dict(state["scaler"])
        _restore_rng(state["rng"])
        self.start_epoch = int(state["epoch"])
        self.history = list(state.get("history", []))
        self.best_acc = state.get("best_val_accuracy")
        self.best_name = state.get("best_name")

    def _autocast(self):
        if self.amp_dtype is None:
            return contextlib.nullcontext()
        return torch.autocast(self.device.type, dtype=self.amp_dtype)

    def _set_frozen(self, frozen: bool) -> None:
        for name, p in self.model.named_parameters():
            p.requires_grad_(not frozen or name.startswith("fc."))
        if frozen:  # keep the pretrained BatchNorm statistics while only the head learns
            for name, m in self.model.named_modules():
                if isinstance(m, nn.modules.batchnorm._BatchNorm):
                    m.eval()

    # ---- loops ------------------------------------------------------------------------------
    def train_one_epoch(self, epoch: int) -> dict | None:
        """One pass over the training set; None when stopped."""
        cfg, model = self.cfg, self.model
        model.train()
        frozen = epoch < cfg.freeze_backbone_epochs
        self._set_frozen(frozen)
        readback_every = 1 if self.device.type == "cpu" else 10
        loss_sum = torch.zeros((), device=self.device)
        correct = torch.zeros((), device=self.device, dtype=torch.long)
        seen, pending = 0, []
        t0 = time.perf_counter()
        steps = self.steps_per_epoch
        for step, (x, y) in enumerate(self.data.train_batches(epoch, cfg.batch_size, cfg.seed)):
            if self.stop.is_set():
                return None
            with self._autocast():
                out = model(x)
                loss = self.criterion(out, y)
            self.optimizer.zero_grad(set_to_none=True)
            self.scaler.scale(loss).backward()
            self.scaler.step(self.optimizer)
            self.scaler.update()
            self.scheduler.step()
            loss = loss.detach().float()
            loss_sum += loss * y.numel()
            correct += (out.detach().argmax(1) == y).sum()
            seen += y.numel()
            pending.append(loss)
            last = step + 1 == steps
            if len(pending) >= readback_every or last:
                values = torch.stack(pending).tolist()
                first_step = step + 1 - len(values)
                self._check_finite(values, epoch, first_step)
                pending = []
                elapsed = time.perf_counter() - t0
                ips = seen / max(elapsed, 1e-9)
                global0 = epoch * steps + first_step
                self.events.batch([[global0 + i + 1, v] for i, v in enumerate(values)], force=last,
                                  epoch=epoch + 1, epochs=cfg.epochs, step=step + 1, steps=steps, loss=values[-1],
                                  lr=self.optimizer.param_groups[0]["lr"], images_per_s=ips,
                                  eta_s=self._eta(epoch, step + 1, elapsed))
        if self.device.type == "cuda":
            torch.cuda.synchronize(self.device)
        elapsed = time.perf_counter() - t0
        self.last_train_time = elapsed
        return {"train_loss": (loss_sum / max(seen, 1)).item(), "train_accuracy": correct.item() / max(seen, 1),
                "images_per_s": seen / max(elapsed, 1e-9), "train_time_s": elapsed}

    def _check_finite(self, values: list[float], epoch: int, first_step: int) -> None:
        for i, v in enumerate(values):
            if not math.isfinite(v):
                lr = self.optimizer.param_groups[0]["lr"]
                raise TrainingError(
                    f"the loss became {'NaN' if math.isnan(v) else 'infinite'} at epoch {epoch + 1}, step "
                    f"{first_step + i + 1}; training stopped. The learning rate is probably too high: try "
                    f"--lr {self.cfg.lr / 10:g} (it was {lr:.4g} at that step). The best and last checkpoints "
                    "from earlier epochs are kept.")

    def _eta(self, epoch: int, steps_done: int, elapsed: float) -> float:
        per_step = elapsed / max(steps_done, 1)
        remaining_steps = (self.steps_per_epoch - steps_done) + (self.cfg.epochs - epoch - 1) * self.steps_per_epoch
        eval_time = getattr(self, "last_eval_time", 0.0) * (self.cfg.epochs - epoch)
        return remaining_steps * per_step + eval_time

    @torch.inference_mode()
    def evaluate(self) -> tuple[float, float] | None:
        model = self.model.eval()
        t0 = time.perf_counter()
        loss_sum = torch.zeros((), device=self.device)
        correct = torch.zeros((), device=self.device, dtype=torch.long)
        seen = 0
        eval_batch = max(self.cfg.batch_size, 256) if self.data.kind == "tensor" else self.cfg.batch_size
        for x, y in self.data.val_batches(eval_batch):
            if self.stop.is_set():
                return None
            with self._autocast():
                out = model(x)
            loss_sum += nn.functional.cross_entropy(out.float(), y, reduction="sum")
            correct += (out.argmax(1) == y).sum()
            seen += y.numel()
        self.last_eval_time = time.perf_counter() - t0
        return (loss_sum / max(seen, 1)).item(), correct.item() / max(seen, 1)

    # ---- saving -----------------------------------------------------------------------------
    def save_best(self, class_names, description, metrics) -> Path:
        state = {k: v.detach().to("cpu").clone() for k, v in self.model.state_dict().items()}
        ckpt = Checkpoint(arch=self.cfg.arch, class_names=list(class_names), preprocess=self.pre, state_dict=state,
                          metrics=metrics, train_config=self.cfg.to_dict(), dataset=description,
                          notes={"run_name": self.run_name})
        entry = self.registry.add(ckpt, self.best_name, overwrite=True)
        return entry.path

    def save_last(self, epoch_done: int, class_names, description) -> Path:
        state = {
            "format": STATE_FORMAT, "format_version": STATE_VERSION, "run_name": self.run_name,
            "config": self.cfg.to_dict(), "epoch": epoch_done,
            "model": {k: v.detach().to("cpu").contiguous() for k, v in self.model.state_dict().items()},
            "optimizer": self.optimizer.state_dict(), "scheduler": self.scheduler.state_dict(),
            "scaler": self.scaler.state_dict(), "rng": _rng_state(), "best_val_accuracy": self.best_acc,
            "best_name": self.best_name, "history": self.history, "class_names": list(class_names),
            "preprocess": self.pre.to_dict(), "dataset": description,
            "saved": _dt.datetime.now().astimezone().isoformat(timespec="seconds"),
        }
        path = run_state_path(self.run_name)
        atomic_write(path, lambda fh: torch.save(state, fh))
        return path

    # ---- main -------------------------------------------------------------------------------
    def run(self) -> TrainResult:
        cfg = self.cfg
        state = load_state(self.resume_path) if self.resume_path else None
        if state is not None:
            self.run_name = state["run_name"]
        else:
            stamp = _dt.datetime.now().strftime("%Y%m%d-%H%M%S")
            base = cfg.name or f"{cfg.arch}-{'cifar10' if cfg.dataset == 'cifar10' else Path(cfg.data).name}-{stamp}"
            self.run_name = self.registry.unique_name(base)
        class_names, description = self.prepare_data()
        if state is not None and list(state["class_names"]) != list(class_names):
            raise TrainingError(f"the dataset's classes changed since this run was saved "
                                f"({', '.join(state['class_names'])} before, {', '.join(class_names)} now)")
        self.build(len(class_names))
        if state is not None:
            self.restore(state)
            del state
        self.best_name = self.best_name or self.run_name
        precision = {None: "fp32", torch.bfloat16: "bf16 autocast", torch.float16: "fp16 autocast"}[self.amp_dtype]
        self.events.emit("started", run_name=self.run_name, device=describe_device(self.device), precision=precision,
                         epochs=cfg.epochs, start_epoch=self.start_epoch, steps_per_epoch=self.steps_per_epoch,
                         train_images=self.data.n_train, val_images=self.data.n_val, class_names=list(class_names),
                         config=cfg.to_dict(), data_path=self.data.kind, history=list(self.history))
        last_path = None
        for epoch in range(self.start_epoch, cfg.epochs):
            stats = self._guarded(self.train_one_epoch, epoch)
            if stats is None:
                return self._cancelled(epoch)
            if len(self.data.skipped) > self.reported_skips:  # found by DataLoader workers this epoch
                self._report_skipped(self.data.skipped[self.reported_skips:])
                self.reported_skips = len(self.data.skipped)
                description["skipped_images"] = self.reported_skips
            evaluated = self._guarded(self.evaluate)
            if evaluated is None:
                return self._cancelled(epoch)
            val_loss, val_acc = evaluated
            if not math.isfinite(val_loss):
                raise TrainingError(f"the validation loss became non-finite at epoch {epoch + 1}; "
                                    f"try a lower learning rate than {cfg.lr:g}")
            record = {"epoch": epoch + 1, **stats, "val_loss": val_loss, "val_accuracy": val_acc,
                      "lr": self.optimizer.param_groups[0]["lr"]}
            self.history.append(record)
            is_best = self.best_acc is None or val_acc > self.best_acc
            if is_best:
                self.best_acc = val_acc
                metrics = {"val_accuracy": val_acc, "val_loss": val_loss, "train_accuracy": stats["train_accuracy"],
                           "train_loss": stats["train_loss"], "epoch": epoch + 1, "epochs": cfg.epochs,
                           "images_per_s": stats["images_per_s"]}
                best_path = self.save_best(class_names, description, metrics)
                self.events.emit("checkpoint", kind="best", path=str(best_path), name=self.best_name,
                                 val_accuracy=val_acc, epoch=epoch + 1)
            last_path = self.save_last(epoch + 1, class_names, description)
            self.events.emit("checkpoint", kind="last", path=str(last_path), epoch=epoch + 1)
            eta = self.last_train_time * (cfg.epochs - epoch - 1) + self.last_eval_time * (cfg.epochs - epoch - 1)
            self.events.emit("epoch", epochs=cfg.epochs, epoch_time_s=self.last_train_time + self.last_eval_time,
                             eta_s=eta, best=is_best, **{k: v for k, v in record.items() if k != "train_time_s"})
        return self._result("finished", f"finished {cfg.epochs} epochs; best validation accuracy "
                                        f"{self.best_acc:.2%}, saved as {self.best_name!r}")

    def _guarded(self, fn, *args):
        """Run a loop; turn CUDA out-of-memory into a clear error after freeing memory."""
        oom = False
        try:
            return fn(*args)
        except torch.OutOfMemoryError:
            oom = True
        if oom:  # outside the except block, so the traceback no longer pins the batch's tensors
            self.optimizer.zero_grad(set_to_none=True)
            gc.collect()
            if self.device.type == "cuda":
                torch.cuda.empty_cache()
            b = self.cfg.batch_size
            raise TrainingError(f"the {'GPU' if self.device.type == 'cuda' else 'device'} ran out of memory with batch "
                                f"size {b}; try --batch-size {max(1, b // 2)} (or a smaller model). The best and "
                                "last checkpoints from earlier epochs are kept.")

    def _result(self, status: str, message: str) -> TrainResult:
        best_path = str(self.registry.path_for(self.best_name)) if self.best_acc is not None else None
        last = run_state_path(self.run_name)
        return TrainResult(status=status, message=message, run_name=self.run_name,
                           best_name=self.best_name if best_path else None, best_path=best_path,
                           best_val_accuracy=self.best_acc, last_path=str(last) if last.exists() else None,
                           epochs_done=len(self.history), history=list(self.history))

    def _cancelled(self, epoch: int) -> TrainResult:
        done = len(self.history)
        if done:
            message = (f"stopped during epoch {epoch + 1}; {done} epoch(s) completed. Best validation accuracy "
                       f"{self.best_acc:.2%} (saved as {self.best_name!r}); resume with --resume {self.run_name!r}")
        else:
            message = f"stopped during epoch {epoch + 1}, before any epoch completed; nothing was saved"
        return self._result("cancelled", message)


def train(config: TrainConfig, on_event: EventFn | None = None, stop=None, *, registry: Registry | None = None,
          resume: str | Path | None = None) -> TrainResult:
    """Train with `config`; report through on_event; stop when stop.is_set(). Never raises for user errors:
    the result (and the final event) say finished, cancelled or failed, with a message."""
    events = _Events(on_event)
    stop = stop or _NoStop()
    run = None
    old_threads = torch.get_num_threads()
    try:
        config.validate()
        if config.threads:
            torch.set_num_threads(max(1, int(config.threads)))
        run = _Run(config, events, stop, registry or Registry(), resolve_resume(resume) if resume else None)
        result = run.run()
    except Cancelled:
        result = TrainResult("cancelled", "stopped before training started; nothing was saved",
                             run_name=getattr(run, "run_name", None))
    except ResnetGuiError as exc:
        result = _failed(run, str(exc))
    except MemoryError:
        result = _failed(run, "the computer ran out of memory; lower the batch size or the cache size")
    except OSError as exc:  # full disk, permissions, ...
        result = _failed(run, f"a file operation failed: {exc.strerror or exc} "
                              f"{getattr(exc, 'filename', '') or ''}".strip())
    except Exception as exc:  # noqa: BLE001 - the user gets a message; the log gets the traceback
        log.exception("training failed unexpectedly")
        result = _failed(run, f"unexpected error: {type(exc).__name__}: {exc}")
    finally:
        if run is not None and run.data is not None:
            run.data.close()
        torch.set_num_threads(old_threads)
    events.emit(result.status, message=result.message, run_name=result.run_name, best_name=result.best_name,
                best_path=result.best_path, best_val_accuracy=result.best_val_accuracy, last_path=result.last_path,
                epochs_done=result.epochs_done)
    return result


def _failed(run: _Run | None, message: str) -> TrainResult:
    if run is not None and hasattr(run, "run_name"):
        result = run._result("failed", message)
        result.message = message
        return result
    return TrainResult("failed", message)

