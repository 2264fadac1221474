"""Learning-rate range test (Smith 2015; fastai's lr_find): a short sweep that raises the learning rate
exponentially every step, from 1e-6 to 10, on the configured data and model, and watches the loss.

The sweep's length is fixed (100 steps unless told otherwise), not timed: the curve is the loss after k
updates at rising rates, and a shorter sweep makes too few updates for the descent to show at all (measured:
a 17-step sweep over the same range saw the loss fall by 1 %, the 100-step one by 18 %, and it suggested 1.4e-6).

The suggestion is the rate where the smoothed loss falls fastest (steepest descent against log(rate)),
looked for before the loss's minimum: at the minimum the rate is already too high, and the steepest descent
is the usual choice when a single number is wanted. The sweep stops once the loss has clearly diverged.
Nothing is saved: the model is thrown away afterwards and the registry and runs folder are not touched.
"""
from __future__ import annotations

import math
from collections.abc import Callable

import numpy as np
import torch

from ..devices import resolve_device
from ..errors import Cancelled, TrainingError
from ..progress import NEVER_STOP, Progress, StopFlag
from .config import TrainConfig
from .events import LrFound, Prepare, Status, TrainEvent
from .loop import set_frozen
from .prepare import prepare_data

START_LR, END_LR, STEPS = 1e-6, 10.0, 100
SMOOTHING = 0.98
DIVERGED = 4.0          # stop when the smoothed loss exceeds this many times its minimum (fastai's rule),
ABOVE_START = 1.5       # or this many times its value after the first tenth of the sweep, past its minimum
SETTLED = 10            # the step whose smoothed loss is the sweep's starting level


def diverged(step: int, smoothed: float, best: float, start: float) -> bool:
    """Whether the rest of the sweep can be skipped: the loss has passed its minimum and risen far above it, or
    above where it started; no later rate could be suggested (the suggestion lies before the minimum). The
    sweep always starts from a fresh classification head, so its starting loss is about ln(classes): half as
    much again, past the minimum, is divergence rather than noise."""
    if step <= SETTLED:
        return False
    return smoothed > DIVERGED * best or (smoothed > ABOVE_START * start and smoothed > best)


STEEPEST = "steepest descent of the smoothed loss"
MINIMUM = "the smoothed loss's minimum ÷ 10"
LOWEST = "the lowest rate tried (the loss fell from the start)"


def suggestion(lrs: list[float], losses: list[float]) -> tuple[float, str]:
    """The rate of steepest descent of the smoothed loss before its minimum, leaving out the first tenth of the
    sweep; the minimum / 10 where the loss falls too early for that, but never below the lowest rate tried (no
    evidence there; the form's field starts there too). With the method used, in words."""
    if not lrs:
        return START_LR, LOWEST

    def tenth_of_minimum(i: int) -> tuple[float, str]:
        return (float(lrs[i]) / 10, MINIMUM) if lrs[i] / 10 >= lrs[0] else (float(lrs[0]), LOWEST)

    if len(lrs) < 5:
        return tenth_of_minimum(int(np.argmin(losses)))
    x, y = np.log10(np.asarray(lrs)), np.asarray(losses)
    lowest = int(np.argmin(y))
    # the first points are the noisiest (the smoothing has seen little yet): they are not candidates
    skip = max(1, len(lrs) // 10)
    if lowest - skip < 3:
        return tenth_of_minimum(lowest)
    slope = np.gradient(y[:lowest + 1], x[:lowest + 1])
    return float(lrs[skip + int(np.argmin(slope[skip:]))]), STEEPEST


def find_lr(config: TrainConfig, on_event: Callable[[TrainEvent], None] | None = None,
            stop: StopFlag | None = None, *, steps: int = STEPS, start_lr: float = START_LR,
            end_lr: float = END_LR) -> LrFound:
    """Run the range test; report through on_event (Status, Prepare, then LrFound). Raises TrainingError or
    DatasetError with a sentence, Cancelled when stopped."""
    from .run import build_trainer  # the same model, optimizer, precision and data as training

    emit = on_event if on_event is not None else (lambda event: None)
    stop = stop or NEVER_STOP
    cfg = config.validate()
    progress = Progress(lambda what, done, total: emit(Prepare(what, done, total)), stop)
    old_threads = torch.get_num_threads()
    if cfg.threads:
        torch.set_num_threads(int(cfg.threads))
    prepared = None
    try:
        device = resolve_device(cfg.device)
        prepared = prepare_data(cfg, device, device.type in ("cuda", "cpu"), emit, progress)
        data = prepared.data
        per_epoch = max(1, data.steps_per_epoch(cfg.batch_size))
        t = build_trainer(cfg, len(prepared.class_names), device, emit, progress, per_epoch)
        set_frozen(t.model, False)
        for group in t.optimizer.param_groups:
            group["lr"] = start_lr
        factor = (end_lr / start_lr) ** (1 / max(1, steps - 1))
        emit(Status(f"Trying learning rates from {start_lr:g} to {end_lr:g}"))
        lrs, losses = [], []
        avg, best, step, epoch, start = 0.0, math.inf, 0, 0, math.inf
        t.model.train()
        while step < steps:
            for batch in data.train_batches(epoch, cfg.batch_size, cfg.seed):
                if stop.is_set():
                    raise Cancelled()
                if batch is None:
                    continue
                x, y = batch
                lr = start_lr * factor ** step
                for group in t.optimizer.param_groups:
                    group["lr"] = lr
                with t.autocast():
                    loss = t.criterion(t.model(x), y)
                t.optimizer.zero_grad(set_to_none=True)
                t.scaler.scale(loss).backward()
                t.scaler.step(t.optimizer)
                t.scaler.update()
                value = float(loss.detach())
                step += 1
                progress.update("Finding a learning rate", step, steps)
                if not math.isfinite(value):
                    break
                avg = SMOOTHING * avg + (1 - SMOOTHING) * value
                smoothed = avg / (1 - SMOOTHING ** step)
                lrs.append(lr)
                losses.append(smoothed)
                best = min(best, smoothed)
                if step == SETTLED:
                    start = smoothed
                if step >= steps or diverged(step, smoothed, best, start):
                    break
            else:
                epoch += 1
                continue
            break
        if len(lrs) < 5:
            raise TrainingError(f"the learning-rate test ran only {len(lrs)} steps (too few images for batch size "
                                f"{cfg.batch_size}, or the loss diverged at once); lower the batch size")
        lr, method = suggestion(lrs, losses)
        found = LrFound(lr=lr, lrs=tuple(lrs), losses=tuple(losses), method=method)
        emit(found)
        return found
    finally:
        if prepared is not None:
            prepared.data.close()
        torch.set_num_threads(old_threads)
