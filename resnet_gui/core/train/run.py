"""`train()`: one training run, top to bottom.

    train(config)
      check the settings, join the other processes (torchrun only)
      start_or_resume     a new run's name, or the saved state of the run to continue
      with opened_data    the dataset, checked before any step, closed however the run ends
        build_trainer     model, optimizer, schedule (restored from the state), DDP, compile
        train_epochs      for each epoch: train_one_epoch, evaluate, then the Checkpointer saves the best
                          model into the registry and the resumable state
        finish_run        the best model's evaluation, calibration and verdicts
      report

It knows nothing about Qt. Progress goes to `on_event(TrainEvent)` (see events.py); a `stop` object with
`is_set()` (a threading.Event) is checked before every batch. train() never raises for user errors:
the result and the final `Ended` event say finished, cancelled or failed, with a message.

Under torchrun every process runs this same function on its shard of the data (distributed.py): rank 0
decides the run name and reads the resumed state, only rank 0 writes files and sends events, and the
other ranks report nothing but a failure of their own. With one process, `world` is SINGLE and every
world.* call below returns its argument unchanged.
"""
from __future__ import annotations

import contextlib
import datetime as _dt
import gc
import logging
import math
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import torch
from torch import nn

from ..data.balance import loss_weights
from ..devices import describe_device
from ..errors import Cancelled, Remedy, ResnetGuiError, TrainingError, user_message
from ..models.build import build_model
from ..models.registry import Registry
from ..progress import NEVER_STOP, Progress, StopFlag, Throttle
from .checkpointer import Checkpointer, RunRecord
from .compiling import CompiledStep, compile_step
from .config import TrainConfig
from .distributed import SINGLE, OtherProcessFailed, World, join, launcher_rank_and_size
from .events import Batch, Epoch, Prepare, Started, Status, TrainEvent, TrainResult
from .finalize import finish_run
from .loop import PRECISION_NAMES, Trainer, autocast_dtype, evaluate, not_finite_from_the_start, train_one_epoch
from .prepare import PreparedData, prepare_data, skipped_warning
from .schedule import build_optimizer, build_scheduler, restore_scheduler
from .state import TrainState, load_state, resolve_resume, restore_rng
from .tensorboard import TensorBoardLogger

log = logging.getLogger(__name__)
EventFn = Callable[[TrainEvent], None]
MAX_GENERATED_NAME = 60


@dataclass
class Env:
    """Where a run reports and what it runs on; the same for all of it."""
    emit: EventFn
    stop: StopFlag                  # the batches' stop: with several processes, agreed by all of them
    progress: Progress              # data preparation's progress (and its own stop)
    world: World
    device: torch.device
    registry: Registry | None       # None on ranks other than 0, which write nothing


def new_run_name(cfg: TrainConfig, registry: Registry) -> str:
    """cfg.name, or arch-data-timestamp with the data part shortened so the name stays valid."""
    if cfg.name:
        return registry.unique_name(cfg.name)
    stamp = _dt.datetime.now().strftime("%Y%m%d-%H%M%S")
    data = "cifar10" if cfg.dataset == "cifar10" else Path(cfg.data).expanduser().resolve().name or "data"
    room = MAX_GENERATED_NAME - len(cfg.arch) - len(stamp) - 2
    return registry.unique_name(f"{cfg.arch}-{data[:max(8, room)]}-{stamp}")


# ---------------------------------------------------------------------------------------------
# the run's parts, in the order train() uses them
# ---------------------------------------------------------------------------------------------
def start_or_resume(cfg: TrainConfig, env: Env, record: RunRecord, resume: str | Path | None) -> TrainState | None:
    """A new run: its name. A resumed run: its saved state (rank 0 reads it), with the record filled from it."""
    world = env.world
    state = world.from_main(lambda: load_state(resolve_resume(resume)) if resume is not None else None)
    if state is None:
        record.run_name = record.best_name = world.from_main(lambda: new_run_name(cfg, env.registry))
        return None
    if state.epoch >= cfg.epochs:
        raise TrainingError(f"run {state.run_name!r} already completed {state.epoch} of {cfg.epochs} epochs",
                            remedy=Remedy("more_epochs", state.epoch + 5))
    record.run_name, record.history = state.run_name, list(state.history)
    record.best_acc, record.epochs_done_before = state.best_val_accuracy, state.epoch
    record.best_name = state.best_name or state.run_name
    record.saved_best = (env.registry is not None and state.best_val_accuracy is not None
                         and env.registry.path_for(record.best_name).exists())
    return state


@contextlib.contextmanager
def opened_data(cfg: TrainConfig, env: Env) -> Iterator[PreparedData]:
    """The run's data (this process's shard), closed when the block ends, however it ends; also when this
    process prepared its data and another one failed to."""
    world, made = env.world, []

    def prepare() -> PreparedData:
        made.append(prepare_data(cfg, env.device, env.device.type in ("cuda", "cpu"), env.emit, env.progress,
                                 rank=world.rank, world_size=world.size))
        return made[-1]

    in_order = world.local_first if cfg.dataset == "cifar10" else world.everywhere  # CIFAR-10 may be downloaded
    try:
        yield in_order(prepare)
    finally:
        for prepared in made:
            prepared.data.close()


@contextlib.contextmanager
def torch_threads(threads: int | None) -> Iterator[None]:
    """PyTorch's CPU threads set to `threads` (None: left as they are) for the block, then restored."""
    before = torch.get_num_threads()
    if threads:
        torch.set_num_threads(threads)
    try:
        yield
    finally:
        torch.set_num_threads(before)


def build_trainer(cfg: TrainConfig, num_classes: int, device: torch.device, emit: EventFn,
                  progress: Progress, steps_per_epoch: int, *, train_counts: list[int] | None = None) -> Trainer:
    """Model, optimizer, schedule and loss of a run. train_counts (images per class) weighs the loss when
    cfg.balance is weighted-loss."""
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
    weight = None
    if cfg.balance == "weighted-loss":
        if not train_counts:
            raise TrainingError("the weighted loss needs the training set's class counts")
        weight = loss_weights(train_counts).to(device)
    return Trainer(model=model, criterion=nn.CrossEntropyLoss(weight=weight, label_smoothing=cfg.label_smoothing),
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
            if not math.isfinite(value) and epoch == 0 and step == 0:
                raise TrainingError(not_finite_from_the_start(value, "training", self.cfg.precision) + ".")
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


def _train_epoch(t: Trainer, cfg: TrainConfig, env: Env, data, epoch: int, reporter: BatchReporter,
                 compiled: CompiledStep | None) -> dict | None:
    """One epoch of training (compiled when asked), its figures added up over the processes; None when stopped."""
    def one_epoch():
        batches = env.world.agree(data.train_batches(epoch, cfg.batch_size, cfg.seed), env.stop)
        return _guarded(t, cfg, train_one_epoch, t, batches, epoch, stop=env.stop, on_losses=reporter)

    stats = compiled.run(one_epoch) if compiled is not None else one_epoch()
    return env.world.reduce_train(stats) if stats is not None else None


def train_epochs(t: Trainer, cfg: TrainConfig, env: Env, prepared: PreparedData, saver: Checkpointer,
                 compiled: CompiledStep | None) -> int | None:
    """The epochs from where the record ends to cfg.epochs: train, evaluate, record, save, report. Returns the
    epoch (0-based) in which the run was stopped, None when every epoch ran."""
    data, world, stop, record = prepared.data, env.world, env.stop, saver.record
    steps = data.steps_per_epoch(cfg.batch_size)
    reporter = BatchReporter(cfg, t, steps, env.emit, world)
    reported_skips = len(data.skipped)
    for epoch in range(record.epochs_done_before, cfg.epochs):
        stats = _train_epoch(t, cfg, env, data, epoch, reporter, compiled)
        if stats is None:
            return epoch
        if len(data.skipped) > reported_skips:  # found by DataLoader workers this epoch
            env.emit(skipped_warning(data.skipped[reported_skips:]))
            reported_skips = len(data.skipped)
            prepared.description["skipped_images"] = reported_skips
        world.sync_buffers(t.model)  # every rank evaluates the model rank 0 saves
        val = _guarded(t, cfg, evaluate, t, world.agree(data.val_batches(eval_batch_size(cfg, data)), stop), stop=stop)
        if val is None:
            return epoch
        val = world.reduce_eval(val, data.n_val)
        reporter.eval_time = val["eval_time_s"]
        if not math.isfinite(val["val_loss"]):
            raise TrainingError(f"the validation loss became non-finite at epoch {epoch + 1}; "
                                f"try a lower learning rate than {cfg.lr:g}")
        row = {"epoch": epoch + 1, **{k: stats[k] for k in ("train_loss", "train_accuracy", "images_per_s",
                                                            "train_time_s")},
               "val_loss": val["val_loss"], "val_accuracy": val["val_accuracy"], "lr": t.lr}
        record.history.append(row)
        is_best = saver.epoch_done(t, row)
        seconds = stats["train_time_s"] + val["eval_time_s"]
        env.emit(Epoch(epoch=epoch + 1, epochs=cfg.epochs, train_loss=row["train_loss"],
                       train_accuracy=row["train_accuracy"], val_loss=row["val_loss"],
                       val_accuracy=row["val_accuracy"], lr=row["lr"], images_per_s=row["images_per_s"],
                       epoch_time_s=seconds, eta_s=seconds * (cfg.epochs - epoch - 1), best=is_best))
    return None


def eval_batch_size(cfg: TrainConfig, data) -> int:
    """Validation needs no gradients: data on the device is evaluated in batches of at least 256."""
    return max(cfg.batch_size, 256) if data.kind == "tensor" else cfg.batch_size


# ---------------------------------------------------------------------------------------------
# the run
# ---------------------------------------------------------------------------------------------
def _run(cfg: TrainConfig, env: Env, record: RunRecord, resume: str | Path | None) -> TrainResult:
    cfg = env.world.from_main(lambda: cfg)  # rank 0's settings (checked there) for every rank
    state = start_or_resume(cfg, env, record, resume)
    with opened_data(cfg, env) as prepared:
        class_names, data = prepared.class_names, prepared.data
        if state is not None and state.class_names != class_names:
            raise TrainingError(f"the dataset's classes changed since this run was saved "
                                f"({', '.join(state.class_names)} before, {', '.join(class_names)} now)")
        steps = data.steps_per_epoch(cfg.batch_size)
        t = build_trainer(cfg, len(class_names), env.device, env.emit, env.progress, steps,
                          train_counts=list(prepared.description["class_counts"].values()))
        if state is not None:
            restore(t, state, steps)
            del state
        env.world.wrap(t, cfg.sync_bn)
        compiled = compile_step(t, cfg, env.emit)
        env.emit(Started(run_name=record.run_name, device=describe_device(env.device),
                         precision=PRECISION_NAMES[t.amp_dtype], epochs=cfg.epochs,
                         start_epoch=record.epochs_done_before, steps_per_epoch=steps, train_images=data.n_train,
                         val_images=data.n_val, class_names=tuple(class_names), config=cfg.to_dict(),
                         data_path=data.kind, history=tuple(record.history), world_size=env.world.size))
        saver = Checkpointer(cfg, record, prepared, registry=env.registry, emit=env.emit, world=env.world)
        stopped_in = train_epochs(t, cfg, env, prepared, saver, compiled)
        if stopped_in is not None:
            return _cancelled(record, stopped_in, env.registry)
        env.emit(Status("Evaluating the best model on the validation images"))
        found = finish_run(t, cfg, data, best_state=saver.best_weights(), class_names=class_names,
                           history=record.history, best_path=saver.best_path(), world=env.world, stop=env.stop,
                           batch_size=eval_batch_size(cfg, data))
    record.warnings = list(found.warnings)
    balanced = found.metrics.get("balanced_accuracy")
    remedy = (f" (balanced accuracy {balanced:.2%}, with the {cfg.balance} remedy for class imbalance)"
              if cfg.balance != "none" and balanced is not None else "")
    result = record.result("finished", f"Finished {cfg.epochs} epoch{'s' if cfg.epochs != 1 else ''}; best "
                                       f"validation accuracy {record.best_acc:.2%}{remedy}, saved as "
                                       f"{record.best_name!r}", env.registry)
    result.balanced_accuracy, result.balance = balanced, cfg.balance
    return result


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
    record, world = RunRecord(), SINGLE
    failed_here = False
    try:
        # the one check of the settings; world_size is recorded in the checkpoints and scales the lr
        config = config.replace(world_size=launcher_rank_and_size()[1]).validate()
        with torch_threads(config.threads):
            world, device = join(config)
            if not world.is_main:
                emit = lambda event: None  # quiet ranks; a failure of their own is reported below
            registry = (registry or Registry()) if world.is_main else None
            if world.is_main:  # TensorBoard event files under the run's folder, when tensorboard is installed
                emit = _tee(report, TensorBoardLogger())
            env = Env(emit=emit, stop=world.collective_stop(stop), progress=progress, world=world, device=device,
                      registry=registry)
            result = _run(config, env, record, resume or None)
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
