"""`torch.compile` for the training step on CUDA (TrainConfig.compile, `train --compile`), with a fallback.

Off by default. Compilation happens during the first step of the run. When it fails (no Triton or C++
compiler, an operation the compiler cannot handle, a bug in the compiler stack), the run says so in a
warning event, puts back the weights and buffers from before that step and trains the same epoch
eagerly: a run never fails only because it asked for compilation. Validation always runs eagerly.
"""
from __future__ import annotations

from collections.abc import Callable
from typing import TypeVar

import torch

from ..errors import Cancelled, ResnetGuiError
from .config import TrainConfig
from .events import TrainEvent
from .events import Warning as WarningEvent
from .loop import Trainer

COMPILE_DEVICES = ("cuda",)  # on the CPU, compiling ResNet's backward takes minutes and gains little
T = TypeVar("T")


class CompiledStep:
    """Owns the switch from the compiled step back to the eager one, until the first epoch has trained."""

    def __init__(self, t: Trainer, emit: Callable[[TrainEvent], None]):
        self.t, self.emit = t, emit
        self.eager = t.step_model  # the DDP wrapper, or None for the plain model
        self.snapshot = {k: v.detach().clone() for k, v in t.model.state_dict().items()}
        self.first_step = t.scheduler.last_epoch
        t.step_model = torch.compile(t.step_model if t.step_model is not None else t.model)

    def run(self, epoch_fn: Callable[[], T]) -> T:
        """epoch_fn() (one training epoch); if compiling fails before the first optimiser step, the same
        epoch again without compilation (its batches depend only on the epoch, so they are the same)."""
        if self.snapshot is None:
            return epoch_fn()
        try:
            result = epoch_fn()
        except (torch.OutOfMemoryError, ResnetGuiError, Cancelled):
            raise
        except Exception as exc:  # noqa: BLE001 - any compiler failure; re-raised when a step had completed
            if self.t.scheduler.last_epoch != self.first_step:
                raise
            self._fall_back(exc)
            result = epoch_fn()
        self.snapshot = None
        return result

    def _fall_back(self, exc: Exception) -> None:
        t = self.t
        t.model.load_state_dict(self.snapshot)
        t.optimizer.zero_grad(set_to_none=True)
        t.step_model = self.eager
        self.snapshot = None
        first = (str(exc).strip().splitlines() or [""])[0][:200]
        self.emit(WarningEvent(f"torch.compile could not compile the training step ({type(exc).__name__}: {first}); "
                               "training continues without compilation. Leave --compile off to skip the attempt."))


def compile_step(t: Trainer, cfg: TrainConfig, emit: Callable[[TrainEvent], None]) -> CompiledStep | None:
    """Compile the training step when cfg.compile asks for it and the device allows it."""
    if not cfg.compile:
        return None
    if t.device.type not in COMPILE_DEVICES:
        emit(WarningEvent(f"--compile is for CUDA GPUs; training on the {t.device.type.upper()} runs without "
                          "compilation."))
        return None
    try:
        return CompiledStep(t, emit)
    except Exception as exc:  # noqa: BLE001 - torch.compile refused at once (e.g. an unsupported Python)
        emit(WarningEvent(f"torch.compile is not available here ({type(exc).__name__}: {str(exc)[:200]}); training "
                          "runs without compilation."))
        return None
