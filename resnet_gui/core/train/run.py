"""`train()`: one training run, top to bottom.

join the other processes (torchrun only) -> prepare the data -> build model, optimizer, schedule ->
(restore a saved state) -> wrap for DDP / compile -> for each epoch: train_one_epoch, evaluate, save the
best model into the registry and the resumable state -> report.

It knows nothing about Qt. Progress goes to `on_event(TrainEvent)` (see events.py); a `stop` object with
`is_set()` (a threading.Event) is checked before every batch. train() never raises for user errors:
the result and the final `Ended` event say finished, cancelled or failed, with a message.

Under torchrun every process runs this same function on its shard of the data (distributed.py): rank 0
decides the run name and reads the resumed state, only rank 0 writes files and sends events, and the
other ranks report nothing but a failure of their own. With one process, `world` is SINGLE and every
world.* call below returns its argument unchanged.
"""
from __future__ import annotations

import datetime as _dt
import gc
import logging
import math
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import torch
from torch import nn

from ..devices import describe_device
from ..errors import Cancelled, Remedy, ResnetGuiError, TrainingError, user_message
from ..models.build import build_model
from ..models.checkpoint import Checkpoint, read_checkpoint
from ..models.registry import Registry
from ..progress import NEVER_STOP, Progress, StopFlag, Throttle
from .compiling import CompiledStep, compile_step
from .config import TrainConfig
from .distributed import SINGLE, OtherProcessFailed, World, join
from .events import Batch, CheckpointSaved, Epoch, Prepare, Started, Status, TrainEvent, TrainResult
from .finalize import finish_run
from .loop import PRECISION_NAMES, Trainer, autocast_dtype, evaluate, train_one_epoch
from .prepare import PreparedData, prepare_data, skipped_warning
from .schedule import build_optimizer, build_scheduler, restore_scheduler
from .state import TrainState, load_state, resolve_resume, restore_rng, run_state_path, save_state
from .tensorboard import TensorBoardLogger

log = logging.getLogger(__name__)
EventFn = Callable[[TrainEvent], None]
MAX_GENERATED_NAME = 60


@dataclass
class RunRecord:
    """What the run has achieved so far (every field exists from the start)."""
    run_name: str | None = None
    best_name: str | None = None
    best_acc: float | None = None
    history: list[dict] = field(default_factory=list)
    epochs_done_before: int = 0
    saved_best: bool = False
    warnings: list[str] = field(default_factory=list)   # the verdict on the finished model

    def result(self, status: str, message: str, registry: Registry | None,
               remedy: Remedy | None = None) -> TrainResult:
        """registry is None on ranks other than 0, which write nothing (and name no files)."""
        wrote = registry is not None
        best_path = str(registry.path_for(self.best_name)) if wrote and self.saved_best and self.best_name else None
        last = run_state_path(self.run_name) if wrote and self.run_name else None
        return TrainResult(status=status, message=message, remedy=remedy, run_name=self.run_name,
                           best_name=self.best_name if best_path else None, best_path=best_path,
                           best_val_accuracy=self.best_acc if best_path else None,
                           last_path=str(last) if last is not None and last.exists() else None,
                           epochs_done=len(self.history), history=list(self.history), warnings=list(self.warnings))


def new_run_name(cfg: TrainConfig, registry: Registry) -> str:
    """cfg.name, or arch-data-timestamp with the data part shortened so the name stays valid."""
    if cfg.name:
        return registry.unique_name(cfg.name)
    stamp = _dt.datetime.now().strftime("%Y%m%d-%H%M%S")
    data = "cifar10" if cfg.dataset == "cifar10" else Path(cfg.data).expanduser().resolve().name or "data"
    room = MAX_GENERATED_NAME - len(cfg.arch) - len(stamp) - 2
    return registry.unique_name(f"{cfg.arch}-{data[:max(8, room)]}-{stamp}")


def build_trainer(cfg: TrainConfig, num_classes: int, device: torch.device, emit: EventFn,
                  progress: Progress, steps_per_epoch: int) -> Trainer:
    torch.manual_seed(cfg.seed)
    weights = (cfg.weights_file or "imagenet") if cfg.pretrained else None
    if weights is not None:
        emit(Prepare(f"Loading ImageNet weights for {cfg.arch}", 0, 0))
    try:
        model = build_model(cfg.arch, num_classes, weights=weights, progress=progress)
    except ResnetGuiError as exc:
        raise TrainingError(str(exc), remedy=exc.remedy) from None
    model = model.to(device)
    if device.type in ("cuda", "cpu"):
        model = model.to(memory_format=torch.channels_last)
    amp_dtype = autocast_dtype(device, cfg.precision)
    optimizer = build_optimizer(model, cfg)
    return Trainer(model=model, criterion=nn.CrossEntropyLoss(label_smoothing=cfg.label_smoothing),
                   optimizer=optimizer, scheduler=build_scheduler(optimizer, cfg, steps_per_epoch),
                   scaler=torch.amp.GradScaler("cuda", enabled=amp_dtype == torch.float16), device=device,
                   amp_dtype=amp_dtype, freeze_backbone_epochs=cfg.freeze_backbone_epochs)


def restore(t: Trainer, state: TrainState, steps_per_epoch: int) -> None:
    """Continue where the state ends: at the same point of the schedule even when the number of processes
    (and so the steps per epoch and the scaled learning rate) changed."""
    peak = [group["initial_lr"] for group in t.optimizer.param_groups]  # this run's, scaled for its processes
    try:
        t.model.load_state_dict(state.model)
        t.optimizer.load_state_dict(state.optimizer)
        restore_scheduler(t.scheduler, state.scheduler, step=state.epoch * steps_per_epoch, base_lrs=peak)
        if state.scaler:
            t.scaler.load_state_dict(state.scaler)
        restore_rng(state.rng)
    except (RuntimeError, KeyError, ValueError, TypeError, IndexError) as exc:
        raise TrainingError(f"{state.path}: the saved training state does not fit this run "
                            f"({str(exc).splitlines()[0][:200]}); start a new run instead") from None


class BatchReporter:
    """Turns read-back losses into throttled Batch events with an ETA; stops on a non-finite loss."""

    def __init__(self, cfg: TrainConfig, t: Trainer, steps: int, emit: EventFn, world: World = SINGLE):
        self.cfg, self.t, self.steps, self.emit, self.world = cfg, t, steps, emit, world
        self.throttle = Throttle()
        self.pending: list[tuple[int, float]] = []
        self.eval_time = 0.0

    def __call__(self, epoch: int, losses: list[tuple[int, float]], seen: int, elapsed: float) -> None:
        losses = self.world.mean_losses(losses)  # every rank sees the same losses and stops at the same step
        seen *= self.world.size
        for step, value in losses:
            if not math.isfinite(value):
                raise TrainingError(
                    f"the loss became {'NaN' if math.isnan(value) else 'infinite'} at epoch {epoch + 1}, step "
                    f"{step + 1}; training stopped. The learning rate is probably too high (it was {self.t.lr:.4g} "
                    "at that step). The best and last checkpoints from earlier epochs are kept",
                    remedy=Remedy("lr", float(f"{self.cfg.lr / 10:g}")))
        self.pending.extend((epoch * self.steps + step + 1, value) for step, value in losses)
        step = losses[-1][0] + 1
        if not self.throttle.ready(force=step >= self.steps):
            return
        per_step = elapsed / max(step, 1)
        remaining = (self.steps - step) + (self.cfg.epochs - epoch - 1) * self.steps
        eta = remaining * per_step + self.eval_time * (self.cfg.epochs - epoch)
        batch = Batch(epoch=epoch + 1, epochs=self.cfg.epochs, step=step, steps=self.steps, loss=losses[-1][1],
                      losses=tuple(self.pending), lr=self.t.lr, images_per_s=seen / max(elapsed, 1e-9), eta_s=eta)
        self.pending = []
        self.emit(batch)


def _guarded(t: Trainer, cfg: TrainConfig, fn, *args, **kwargs):
    """Run a loop; turn out-of-memory into a clear error after freeing memory."""
    oom = False
    try:
        return fn(*args, **kwargs)
    except torch.OutOfMemoryError:
        oom = True
    if oom:  # outside the except block, so the traceback no longer pins the batch's tensors
        t.optimizer.zero_grad(set_to_none=True)
        gc.collect()
        if t.device.type == "cuda":
            torch.cuda.empty_cache()
        b = cfg.batch_size
        raise TrainingError(f"the {'GPU' if t.device.type == 'cuda' else 'device'} ran out of memory with batch "
                            f"size {b} (a smaller model needs less). The best and last checkpoints from earlier "
                            "epochs are kept", remedy=Remedy("batch_size", max(1, b // 2)))


def _save_best(t: Trainer, cfg: TrainConfig, record: RunRecord, prepared: PreparedData, registry: Registry,
               metrics: dict) -> Path:
    state = {k: v.detach().to("cpu").clone() for k, v in t.model.state_dict().items()}
    ckpt = Checkpoint(arch=cfg.arch, class_names=list(prepared.class_names), preprocess=prepared.preprocess,
                      state_dict=state, metrics=metrics, train_config=cfg.to_dict(), dataset=prepared.description,
                      notes={"run_name": record.run_name})
    path = registry.add(ckpt, record.best_name, overwrite=True).path
    record.saved_best = True
    return path


def _train_epoch(t: Trainer, cfg: TrainConfig, data, epoch: int, world: World, stop: StopFlag,
                 reporter: BatchReporter, compiled: CompiledStep | None) -> dict | None:
    def one_epoch():
        batches = world.agree(data.train_batches(epoch, cfg.batch_size, cfg.seed), stop)
        return _guarded(t, cfg, train_one_epoch, t, batches, epoch, stop=stop, on_losses=reporter)

    stats = compiled.run(one_epoch) if compiled is not None else one_epoch()
    return world.reduce_train(stats) if stats is not None else None


def _run(cfg: TrainConfig, record: RunRecord, emit: EventFn, stop: StopFlag, progress: Progress,
         registry: Registry | None, resume: str | Path | None, holder: dict, world: World,
         device: torch.device) -> TrainResult:
    shared = world.from_main(lambda: cfg)  # rank 0's settings for every rank
    cfg = shared.replace(world_size=world.size).validate()  # recorded in the checkpoints; scales the lr
    state = world.from_main(lambda: load_state(resolve_resume(resume)) if resume is not None else None)
    if state is not None:
        if state.epoch >= cfg.epochs:
            raise TrainingError(f"run {state.run_name!r} already completed {state.epoch} of {cfg.epochs} epochs",
                                remedy=Remedy("more_epochs", state.epoch + 5))
        record.run_name, record.history = state.run_name, list(state.history)
        record.best_acc, record.epochs_done_before = state.best_val_accuracy, state.epoch
        record.best_name = state.best_name or state.run_name
        record.saved_best = (registry is not None and state.best_val_accuracy is not None
                             and registry.path_for(record.best_name).exists())
    else:
        record.run_name = record.best_name = world.from_main(lambda: new_run_name(cfg, registry))
    in_order = world.local_first if cfg.dataset == "cifar10" else world.everywhere  # CIFAR-10 may be downloaded
    prepared = in_order(lambda: holder.setdefault("prepared", prepare_data(
        cfg, device, device.type in ("cuda", "cpu"), emit, progress, rank=world.rank, world_size=world.size)))
    data, class_names = prepared.data, prepared.class_names
    if state is not None and state.class_names != class_names:
        raise TrainingError(f"the dataset's classes changed since this run was saved ({', '.join(state.class_names)}"
                            f" before, {', '.join(class_names)} now)")
    steps = data.steps_per_epoch(cfg.batch_size)
    t = build_trainer(cfg, len(class_names), device, emit, progress, steps)
    if state is not None:
        restore(t, state, steps)
        del state
    world.wrap(t, cfg.sync_bn)
    compiled = compile_step(t, cfg, emit)
    start = record.epochs_done_before
    emit(Started(run_name=record.run_name, device=describe_device(device), precision=PRECISION_NAMES[t.amp_dtype],
                 epochs=cfg.epochs, start_epoch=start, steps_per_epoch=steps, train_images=data.n_train,
                 val_images=data.n_val, class_names=tuple(class_names), config=cfg.to_dict(), data_path=data.kind,
                 history=tuple(record.history), world_size=world.size))
    reporter = BatchReporter(cfg, t, steps, emit, world)
    best_state: dict | None = None
    reported_skips = len(data.skipped)
    eval_batch = max(cfg.batch_size, 256) if data.kind == "tensor" else cfg.batch_size
    stop = world.collective_stop(stop)  # with several processes: set on every rank at the same step
    for epoch in range(start, cfg.epochs):
        stats = _train_epoch(t, cfg, data, epoch, world, stop, reporter, compiled)
        if stats is None:
            return _cancelled(record, epoch, registry)
        if len(data.skipped) > reported_skips:  # found by DataLoader workers this epoch
            emit(skipped_warning(data.skipped[reported_skips:]))
            reported_skips = len(data.skipped)
            prepared.description["skipped_images"] = reported_skips
        world.sync_buffers(t.model)  # every rank evaluates the model rank 0 saves
        val = _guarded(t, cfg, evaluate, t, world.agree(data.val_batches(eval_batch), stop), stop=stop)
        if val is None:
            return _cancelled(record, epoch, registry)
        val = world.reduce_eval(val, data.n_val)
        reporter.eval_time = val["eval_time_s"]
        if not math.isfinite(val["val_loss"]):
            raise TrainingError(f"the validation loss became non-finite at epoch {epoch + 1}; "
                                f"try a lower learning rate than {cfg.lr:g}")
        row = {"epoch": epoch + 1, **{k: stats[k] for k in ("train_loss", "train_accuracy", "images_per_s",
                                                            "train_time_s")},
               "val_loss": val["val_loss"], "val_accuracy": val["val_accuracy"], "lr": t.lr}
        record.history.append(row)
        is_best = record.best_acc is None or val["val_accuracy"] > record.best_acc
        if is_best:
            record.best_acc = val["val_accuracy"]
            best_state = {k: v.detach().to("cpu", copy=True) for k, v in t.model.state_dict().items()}
        if is_best and registry is not None:
            metrics = {"val_accuracy": val["val_accuracy"], "val_loss": val["val_loss"],
                       "train_accuracy": stats["train_accuracy"], "train_loss": stats["train_loss"],
                       "epoch": epoch + 1, "epochs": cfg.epochs, "images_per_s": stats["images_per_s"]}
            path = _save_best(t, cfg, record, prepared, registry, metrics)
            emit(CheckpointSaved(which="best", path=str(path), epoch=epoch + 1, name=record.best_name,
                                 val_accuracy=val["val_accuracy"]))
        if registry is not None:  # rank 0 (or the only process)
            last = save_state(run_name=record.run_name, config=cfg, epoch=epoch + 1, model=t.model,
                              optimizer=t.optimizer, scheduler=t.scheduler, scaler=t.scaler,
                              best_val_accuracy=record.best_acc, best_name=record.best_name, history=record.history,
                              class_names=class_names, preprocess=prepared.preprocess.to_dict(),
                              dataset=prepared.description)
            emit(CheckpointSaved(which="last", path=str(last), epoch=epoch + 1))
        left = cfg.epochs - epoch - 1
        emit(Epoch(epoch=epoch + 1, epochs=cfg.epochs, train_loss=stats["train_loss"],
                   train_accuracy=stats["train_accuracy"], val_loss=val["val_loss"],
                   val_accuracy=val["val_accuracy"], lr=row["lr"], images_per_s=stats["images_per_s"],
                   epoch_time_s=stats["train_time_s"] + val["eval_time_s"],
                   eta_s=(stats["train_time_s"] + val["eval_time_s"]) * left, best=is_best))
    best_path = str(registry.path_for(record.best_name)) if registry is not None and record.saved_best else None
    if best_state is None and record.saved_best:  # the best epoch was in an earlier session of a resumed run
        best_state = world.from_main(lambda: read_checkpoint(best_path).state_dict)
    emit(Status("Evaluating the best model on the validation images"))
    warnings = finish_run(t, cfg, data, best_state=best_state, class_names=class_names, history=record.history,
                          best_path=best_path, world=world, stop=stop, batch_size=eval_batch)
    record.warnings = warnings
    return record.result("finished", f"Finished {cfg.epochs} epoch{'s' if cfg.epochs != 1 else ''}; best validation "
                                      f"accuracy {record.best_acc:.2%}, saved as {record.best_name!r}", registry)


def _cancelled(record: RunRecord, epoch: int, registry: Registry | None) -> TrainResult:
    done = len(record.history)
    if done and record.saved_best:
        message = (f"Stopped during epoch {epoch + 1}; {done} epoch{'s' if done != 1 else ''} completed. Best "
                   f"validation accuracy {record.best_acc:.2%} (saved as {record.best_name!r}).")
        return record.result("cancelled", message, registry, Remedy("resume", record.run_name))
    message = f"Stopped during epoch {epoch + 1}, before any epoch completed; nothing was saved."
    return record.result("cancelled", message, registry)


def train(config: TrainConfig, on_event: EventFn | None = None, stop: StopFlag | None = None, *,
          registry: Registry | None = None, resume: str | Path | None = None) -> TrainResult:
    """Train with `config`; report through on_event; stop when stop.is_set(). Never raises for user errors:
    the result (and the final Ended event) say finished, cancelled or failed, with a message."""
    report: EventFn = on_event if on_event is not None else (lambda event: None)
    emit = report
    stop = stop or NEVER_STOP
    progress = Progress(lambda what, done, total: emit(Prepare(what, done, total)), stop)
    record, holder, world = RunRecord(), {}, SINGLE
    old_threads = torch.get_num_threads()
    failed_here = False
    try:
        config.validate()
        if config.threads:
            torch.set_num_threads(max(1, int(config.threads)))
        world, device = join(config)
        if not world.is_main:
            emit = lambda event: None  # quiet ranks; a failure of their own is reported below
        registry = (registry or Registry()) if world.is_main else None
        if world.is_main:  # TensorBoard event files under the run's folder, when tensorboard is installed
            emit = _tee(report, TensorBoardLogger())
        result = _run(config, record, emit, stop, progress, registry, resume or None, holder, world, device)
    except Cancelled:
        result = record.result("cancelled", "Stopped before training started; nothing was saved.", registry)
    except Exception as exc:  # noqa: BLE001 - every failure ends as a message; user_message logs the unexpected
        exc = world.explain(exc)
        failed_here = not isinstance(exc, OtherProcessFailed)
        result = record.result("failed", user_message(exc, remedy=False), registry, getattr(exc, "remedy", None))
        if record.saved_best and result.best_path:
            result.message += (f" The best model so far is saved as {record.best_name!r} "
                               f"({record.best_acc:.1%}).")
    finally:
        prepared = holder.get("prepared")
        if prepared is not None:
            prepared.data.close()
        torch.set_num_threads(old_threads)
        world.close()
    if world.is_main:
        emit(result.event())
    elif failed_here:
        report(result.event())
    return result


def _tee(*listeners: EventFn) -> EventFn:
    def emit(event: TrainEvent) -> None:
        for listener in listeners:
            listener(event)

    return emit
