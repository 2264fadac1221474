"""Learning-rate range test (Smith 2015; fastai's lr_find): a short sweep that raises the learning rate
exponentially every step, from 1e-6 to 10, on the configured data and model, and watches the loss.

The sweep's length is fixed (100 steps unless told otherwise), not timed: the curve is the loss after k
updates at rising rates, and a shorter sweep makes too few updates for the descent to show at all (measured:
a 17-step sweep over the same range saw the loss fall by 1 %, the 100-step one by 18 %, and it suggested 1.4e-6).

The suggestion is the rate where the smoothed loss falls fastest (steepest descent against log(rate)),
looked for before the loss's minimum: at the minimum the rate is already too high, and the steepest descent
is the usual choice when a single number is wanted. The sweep stops once the loss has clearly diverged.
When the smoothed loss never clearly falls (random images, or too few steps or images for the descent to
show), no rate is suggested: any would be a guess. A loss that is not finite from the first step is the
data's or the computation's fault, and the error says so.

The sweep is training: the same data, model, optimizer and precision (run.build_trainer, run.opened_data) and
the same step (loop.train_one_epoch), with the Sweep as its schedule (the rate rises every step), its loss
reader and its stop. Nothing is saved: the model is thrown away afterwards and the registry and runs folder
are not touched.
"""
from __future__ import annotations

import math
import time
from collections.abc import Callable

import numpy as np
import torch

from ..devices import resolve_device
from ..errors import Cancelled, TrainingError
from ..progress import NEVER_STOP, Progress, StopFlag, Throttle
from .config import TrainConfig
from .distributed import SINGLE
from .events import LrFound, LrStep, Prepare, Status, TrainEvent
from .loop import not_finite_from_the_start, train_one_epoch

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


MIN_POINTS = 5          # fewer finite losses than this: no curve to read
# A clear descent: the smoothed loss falls at least this share below its starting level (the median of the
# sweep's first tenth). Measured at batch 16 on resnet18_cifar, 100-step sweeps, two seeds each: 120 random-noise
# images (10 classes) 0.4-0.7 %, 120 digits (10 classes, flat until it diverged) 1.5 %, 120 lfw_subset faces and
# non-faces 20-21 %; 90 digits at batch 64 18 %. Below it, the "steepest descent" is noise (it suggested
# 1e-6 to 1e-5 on noise and on those digits).
MIN_DESCENT = 0.05
NO_DESCENT = "no clear descent of the smoothed loss"
STEEPEST = "steepest descent of the smoothed loss"
MINIMUM = "the smoothed loss's minimum ÷ 10"
LOWEST = "the lowest rate tried (the loss fell from the start)"


def descent(losses: list[float]) -> float:
    """How far the smoothed loss falls below its starting level (the median of the sweep's first tenth), as a
    share of that level; 0 when it never falls below it."""
    skip = max(1, len(losses) // 10)
    start = float(np.median(losses[:skip]))
    lowest = min(losses[skip:]) if len(losses) > skip else start
    return max(0.0, (start - lowest) / start) if start > 0 else 0.0


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


# What each way of suggesting means, in words (LrFound.meaning)
MEANINGS = {STEEPEST: "where the smoothed loss fell fastest as the rate rose",
            MINIMUM: "a tenth of the rate where the smoothed loss was lowest (it fell too early to find where it "
                     "fell fastest)",
            LOWEST: "the lowest rate tried (the loss fell from the first step)"}


class Sweep:
    """The range test's bookkeeping around the training step: its schedule raises the rate every step, its
    on_losses callback keeps the smoothed loss and reports the new points (LrStep, throttled, with the time
    left), and it is the stop flag train_one_epoch sees (set once the sweep is done, or when the user asks)."""

    def __init__(self, steps: int, start_lr: float, end_lr: float, stop: StopFlag,
                 emit: Callable[[TrainEvent], None]):
        self.steps, self.start_lr, self.stop, self.emit = steps, start_lr, stop, emit
        self.factor = (end_lr / start_lr) ** (1 / max(1, steps - 1))
        self.scheduler: torch.optim.lr_scheduler.LRScheduler | None = None
        self.lrs: list[float] = []
        self.losses: list[float] = []
        self.avg, self.best, self.start = 0.0, math.inf, math.inf
        self.taken = 0                                    # steps whose loss was read
        self.not_finite: tuple[int, float, float] | None = None   # (step, rate, loss) of a NaN or infinite loss
        self.done = False
        self.reported = 0                                 # points already sent in an LrStep
        self.throttle = Throttle()
        self.first_step_at: float | None = None           # the pace is measured from the end of the first step

    def schedule(self, optimizer: torch.optim.Optimizer) -> torch.optim.lr_scheduler.LRScheduler:
        """start_lr x factor^step: exponential from start_lr to end_lr over `steps` steps."""
        for group in optimizer.param_groups:
            group["lr"] = group["initial_lr"] = self.start_lr
        self.scheduler = torch.optim.lr_scheduler.LambdaLR(optimizer, lambda step: self.factor ** step)
        return self.scheduler

    def is_set(self) -> bool:
        return self.done or self.stop.is_set()

    def __call__(self, _epoch: int, losses: list[tuple[int, float]], _seen: int, _elapsed: float) -> None:
        """train_one_epoch's on_losses: one call per step (the trainer reads every loss back)."""
        for _, value in losses:
            if self.done:
                return
            lr = self.start_lr * self.factor ** (self.scheduler.last_epoch - 1)  # the rate this step used
            self.taken += 1
            if not math.isfinite(value):
                self.not_finite, self.done = (self.taken, lr, value), True
                return
            self.avg = SMOOTHING * self.avg + (1 - SMOOTHING) * value
            smoothed = self.avg / (1 - SMOOTHING ** self.taken)
            self.lrs.append(lr)
            self.losses.append(smoothed)
            self.best = min(self.best, smoothed)
            if self.taken == SETTLED:
                self.start = smoothed
            self.done = self.taken >= self.steps or diverged(self.taken, smoothed, self.best, self.start)
            self._report()

    def _report(self) -> None:
        now = time.monotonic()
        if self.first_step_at is None:
            self.first_step_at = now
        if not self.throttle.ready(force=self.done):
            return
        pace = (now - self.first_step_at) / (self.taken - 1) if self.taken > 1 else None
        self.emit(LrStep(step=self.taken, steps=self.steps, lrs=tuple(self.lrs[self.reported:]),
                         losses=tuple(self.losses[self.reported:]),
                         eta_s=0.0 if self.done else None if pace is None else pace * (self.steps - self.taken)))
        self.reported = len(self.lrs)

    def result(self, cfg: TrainConfig) -> LrFound:
        """The suggestion; no rate when the loss shows no clear descent; an error when too few steps had a
        finite loss."""
        if len(self.lrs) < MIN_POINTS:
            if self.not_finite is None:
                raise TrainingError(f"the learning-rate test ran only {len(self.lrs)} steps; it needs at least "
                                    f"{MIN_POINTS} to suggest a rate")
            step, lr, value = self.not_finite
            if step == 1:
                raise TrainingError(not_finite_from_the_start(value, "the learning-rate test", cfg.precision)
                                    + "; no rate can be suggested")
            raise TrainingError(
                f"the loss became {'NaN' if math.isnan(value) else 'infinite'} at step {step} of the learning-rate "
                f"test, at a rate of only {lr:.2g}, before the test could show anything; no rate can be suggested. "
                f"Check the images and their normalisation, and try --precision fp32 (it was {cfg.precision})")
        fell = descent(self.losses)
        if fell < MIN_DESCENT:
            return LrFound(lr=None, lrs=tuple(self.lrs), losses=tuple(self.losses),
                           method=f"{NO_DESCENT} (it fell {fell:.1%} below its starting level; a clear descent is "
                                  f"{MIN_DESCENT:.0%} or more)")
        lr, method = suggestion(self.lrs, self.losses)
        return LrFound(lr=lr, lrs=tuple(self.lrs), losses=tuple(self.losses), method=method, meaning=MEANINGS[method])


def find_lr(config: TrainConfig, on_event: Callable[[TrainEvent], None] | None = None,
            stop: StopFlag | None = None, *, steps: int = STEPS, start_lr: float = START_LR,
            end_lr: float = END_LR) -> LrFound:
    """Run the range test; report through on_event (Status, Prepare, then LrFound). Raises TrainingError or
    DatasetError with a sentence, Cancelled when stopped."""
    from .run import Env, build_trainer, opened_data, torch_threads  # the same data, model and step as training

    emit = on_event if on_event is not None else (lambda event: None)
    stop = stop or NEVER_STOP
    cfg = config.validate()
    progress = Progress(lambda what, done, total: emit(Prepare(what, done, total)), stop)
    with torch_threads(cfg.threads):
        device = resolve_device(cfg.device)
        env = Env(emit=emit, stop=stop, progress=progress, world=SINGLE, device=device, registry=None)
        with opened_data(cfg, env) as prepared:
            data = prepared.data
            t = build_trainer(cfg, len(prepared.class_names), device, emit, progress,
                              max(1, data.steps_per_epoch(cfg.batch_size)),
                              train_counts=list(prepared.description["class_counts"].values()))
            sweep = Sweep(steps, start_lr, end_lr, stop, emit)
            t.scheduler, t.readback, t.freeze_backbone_epochs = sweep.schedule(t.optimizer), 1, 0
            emit(Status(f"Trying learning rates from {start_lr:g} to {end_lr:g}"))
            epoch = 0
            while not sweep.is_set():
                stats = train_one_epoch(t, data.train_batches(epoch, cfg.batch_size, cfg.seed), epoch, stop=sweep,
                                        on_losses=sweep)
                if stats is not None and not stats["train_images"]:
                    break  # an epoch without a single usable batch: nothing more to learn from
                epoch += 1
            if stop.is_set():
                raise Cancelled()
            found = sweep.result(cfg)
    emit(found)
    return found
