"""The math of training: one epoch of forward, loss, backward, step, schedule; and evaluation.

Plain functions with explicit parameters (torchvision references style). Progress, throttling, ETA and
the non-finite-loss check live in the caller's `on_losses` callback, not in here.
"""
from __future__ import annotations

import contextlib
import math
import time
from collections.abc import Callable
from dataclasses import dataclass

import torch
from torch import nn

from ..devices import cpu_has_native_bf16
from ..progress import StopFlag

# (epoch, [(step index in the epoch, loss)], images seen this epoch, seconds since the epoch began)
LossFn = Callable[[int, list[tuple[int, float]], int, float], None]



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


PRECISION_NAMES = {None: "fp32", torch.bfloat16: "bf16 autocast", torch.float16: "fp16 autocast"}


@dataclass
class Trainer:
    """Everything one optimisation step needs, built in one place (run.build_trainer).

    `model` is the plain module (saved, evaluated, restored); `step_model`, when set, is what the training
    step calls instead: the DistributedDataParallel wrapper of it, and/or its torch.compile'd form."""
    model: nn.Module
    criterion: Callable[[torch.Tensor, torch.Tensor], torch.Tensor]
    optimizer: torch.optim.Optimizer
    scheduler: torch.optim.lr_scheduler.LRScheduler
    scaler: torch.amp.GradScaler
    device: torch.device
    amp_dtype: torch.dtype | None
    freeze_backbone_epochs: int = 0
    step_model: nn.Module | None = None
    readback: int | None = None      # read the losses back every this many steps (None: by device, below)

    @property
    def readback_every(self) -> int:
        """Losses are read back every step on the CPU, every 10 steps on GPUs (no sync per step)."""
        if self.readback:
            return self.readback
        return 1 if self.device.type == "cpu" else 10

    def autocast(self):
        if self.amp_dtype is None:
            return contextlib.nullcontext()
        return torch.autocast(self.device.type, dtype=self.amp_dtype)

    @property
    def lr(self) -> float:
        return float(self.optimizer.param_groups[0]["lr"])


def set_frozen(model: nn.Module, frozen: bool) -> None:
    """Train only the classifier head (`fc`) while frozen, keeping pretrained BatchNorm statistics."""
    for name, p in model.named_parameters():
        p.requires_grad_(not frozen or name.startswith("fc."))
    if frozen:
        for m in model.modules():
            if isinstance(m, nn.modules.batchnorm._BatchNorm):
                m.eval()


def train_one_epoch(t: Trainer, batches, epoch: int, *, stop: StopFlag, on_losses: LossFn) -> dict | None:
    """One pass over `batches` (None items are steps whose images all failed to load: the schedule still
    advances). Returns the epoch's training loss, accuracy and speed (and their sums, for adding up over
    processes), or None when stopped."""
    model = t.step_model if t.step_model is not None else t.model
    model.train()
    set_frozen(t.model, epoch < t.freeze_backbone_epochs)
    loss_sum, correct = 0.0, torch.zeros((), device=t.device, dtype=torch.long)
    seen, pending = 0, []
    t0 = time.perf_counter()
    for step, batch in enumerate(batches):
        if stop.is_set():
            return None
        if batch is None:
            t.scheduler.step()
            continue
        x, y = batch
        with t.autocast():
            out = model(x)
            loss = t.criterion(out, y)
        t.optimizer.zero_grad(set_to_none=True)
        t.scaler.scale(loss).backward()
        t.scaler.step(t.optimizer)
        t.scaler.update()
        t.scheduler.step()
        seen += y.numel()
        # kept on the device until the next read-back: no extra operations per step for the epoch's sums
        pending.append((step, loss.detach().float(), (out.detach().argmax(1) == y).sum(), y.numel()))
        if len(pending) >= t.readback_every:
            loss_sum += _read_back(pending, correct, on_losses, epoch, seen, t0)
            pending = []
    if pending:  # the last losses are always checked and reported, however the epoch ended
        loss_sum += _read_back(pending, correct, on_losses, epoch, seen, t0)
    if t.device.type == "cuda":
        torch.cuda.synchronize(t.device)
    elapsed = time.perf_counter() - t0
    return {"train_loss": loss_sum / max(seen, 1), "train_accuracy": correct.item() / max(seen, 1),
            "images_per_s": seen / max(elapsed, 1e-9), "train_time_s": elapsed,
            "train_loss_sum": loss_sum, "train_correct": int(correct.item()), "train_images": seen}


def _read_back(pending: list, correct: torch.Tensor, on_losses: LossFn, epoch: int, seen: int, t0: float) -> float:
    """Read the pending steps' losses (one transfer), add their correct answers to `correct` (on the device),
    report the losses; returns the sum of loss x images of those steps."""
    values = torch.stack([loss for _, loss, _, _ in pending]).tolist()
    correct += torch.stack([right for _, _, right, _ in pending]).sum()
    on_losses(epoch, [(step, value) for (step, *_), value in zip(pending, values)], seen, time.perf_counter() - t0)
    return sum(value * n for (*_, n), value in zip(pending, values))


def not_finite_from_the_start(value: float, what: str, precision: str) -> str:
    """The sentence for a loss that is NaN or infinite at the first step of `what`: computed before any update,
    so the learning rate cannot be the cause; the data, the normalisation or the precision can."""
    kind = "NaN" if math.isnan(value) else "infinite"
    return (f"the loss was {kind} from the first step of {what}, before any update, so the learning rate is not the "
            "cause. Check the images and their normalisation (broken or blank images, the model's mean and std), "
            f"try --precision fp32 (it was {precision}), and if it still happens, a lower learning rate and a "
            "smaller model")


@torch.inference_mode()
def evaluate(t: Trainer, batches, *, stop: StopFlag) -> dict | None:
    """Loss, accuracy and the predictions (for per-class figures) on `batches`; None when stopped."""
    model = t.model.eval()
    t0 = time.perf_counter()
    loss_sum = torch.zeros((), device=t.device)
    preds, labels = [], []
    for batch in batches:
        if stop.is_set():
            return None
        x, y = batch
        with t.autocast():
            out = model(x)
        loss_sum += nn.functional.cross_entropy(out.float(), y, reduction="sum")
        preds.append(out.argmax(1))
        labels.append(y)
    pred = torch.cat(preds).cpu() if preds else torch.empty(0, dtype=torch.long)
    true = torch.cat(labels).cpu() if labels else torch.empty(0, dtype=torch.long)
    seen = int(true.numel())
    return {"val_loss": (loss_sum / max(seen, 1)).item(), "val_accuracy": int((pred == true).sum()) / max(seen, 1),
            "predictions": pred, "labels": true, "eval_time_s": time.perf_counter() - t0,
            "val_loss_sum": loss_sum.item()}
