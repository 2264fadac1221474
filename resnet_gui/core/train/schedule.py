"""Optimizer and learning-rate schedule builders (explicit if/elif; unknown names list the choices).

The schedule is a pure function of the step. Its parameters never enter the scheduler's saved state:
`LambdaLR.state_dict()` stores the fields of a callable object and `load_state_dict()` writes them
back, so a run resumed with more epochs used to keep the old total and train at learning rate 0
(../shared/FINDINGS.md). `build_scheduler` is called again after loading a state, so the schedule
always follows the current config.
"""
from __future__ import annotations

import math

import torch
from torch import nn

from ..errors import TrainingError
from .config import OPTIMIZERS, SCHEDULES, TrainConfig


def lr_factor(step: int, *, kind: str, total: int, warmup: int, hold: int = 0) -> float:
    """Multiplier of the peak learning rate at optimiser step `step`.

    hold:     steps at the full rate before the warm-up (only the new head trains while the backbone is
              frozen; the warm-up then starts when the whole network starts learning).
    onecycle: linear from 1/25 to 1 over the warm-up, then cosine down to ~0.
    cosine:   linear from ~0 to 1 over the warm-up (if any), then cosine down to 0.
    step:     warm-up (if any), then x0.1 at 50 % and again at 75 % of the run.
    """
    total, warmup, hold = max(1, int(total)), max(0, int(warmup)), max(0, int(hold))
    if step < hold:
        return 1.0
    step -= hold
    span = max(1, total - hold)
    if step < warmup:
        start = 1 / 25 if kind == "onecycle" else 1 / max(1, warmup)
        return start + (1 - start) * step / warmup
    if kind == "step":
        frac = step / span
        return 1.0 if frac < 0.5 else 0.1 if frac < 0.75 else 0.01
    progress = min(1.0, (step - warmup) / max(1, span - warmup))
    floor = 1e-4 / 25 if kind == "onecycle" else 0.0
    return floor + (1 - floor) * 0.5 * (1 + math.cos(math.pi * progress))


def build_optimizer(model: nn.Module, cfg: TrainConfig) -> torch.optim.Optimizer:
    """The optimizer at the peak rate: cfg.lr times cfg.lr_scale() (1 for one process)."""
    params = list(model.parameters())
    lr = cfg.lr * cfg.lr_scale()
    if cfg.optimizer == "sgd":
        return torch.optim.SGD(params, lr=lr, momentum=cfg.momentum, nesterov=cfg.nesterov,
                               weight_decay=cfg.weight_decay)
    if cfg.optimizer == "adamw":
        return torch.optim.AdamW(params, lr=lr, weight_decay=cfg.weight_decay)
    raise TrainingError(f"unknown optimizer {cfg.optimizer!r}; use one of: {', '.join(OPTIMIZERS)}")


def build_scheduler(optimizer: torch.optim.Optimizer, cfg: TrainConfig,
                    steps_per_epoch: int) -> torch.optim.lr_scheduler.LambdaLR:
    """A LambdaLR over the whole run (cfg.epochs x steps_per_epoch optimiser steps)."""
    if cfg.schedule not in SCHEDULES:
        raise TrainingError(f"unknown schedule {cfg.schedule!r}; use one of: {', '.join(SCHEDULES)}")
    kind, total = cfg.schedule, steps_per_epoch * cfg.epochs
    warmup = round(cfg.warmup() * steps_per_epoch)
    hold = min(cfg.freeze_backbone_epochs, cfg.epochs) * steps_per_epoch

    def factor(step: int) -> float:  # a plain function: LambdaLR saves nothing of it
        return lr_factor(step, kind=kind, total=total, warmup=warmup, hold=hold)

    return torch.optim.lr_scheduler.LambdaLR(optimizer, factor)


def restore_scheduler(scheduler: torch.optim.lr_scheduler.LambdaLR, saved: dict, *, step: int | None = None,
                      base_lrs: list[float] | None = None) -> None:
    """Continue at the saved step, under the *current* schedule (the saved one may have had fewer epochs).

    step:     the optimiser step to continue at (default: the saved counter). A run resumed with another
              number of processes has another number of steps per epoch: the caller passes
              epochs done x steps per epoch now, so the schedule continues at the same point of the run.
    base_lrs: the peak rates now (default: the saved ones); they differ when the learning rate was
              scaled for another number of processes.
    The rate of the next step is recomputed from these."""
    scheduler.load_state_dict({**saved, "lr_lambdas": [None] * len(scheduler.lr_lambdas)})
    if base_lrs is not None:
        scheduler.base_lrs = list(base_lrs)
        for group, base in zip(scheduler.optimizer.param_groups, base_lrs):
            group["initial_lr"] = base
    if step is not None:
        scheduler.last_epoch = step
        scheduler._step_count = step + 1
    step = scheduler.last_epoch
    for group, base, fn in zip(scheduler.optimizer.param_groups, scheduler.base_lrs, scheduler.lr_lambdas):
        group["lr"] = base * fn(step)
    scheduler._last_lr = [group["lr"] for group in scheduler.optimizer.param_groups]
