"""TensorBoard event files for every run, written by torch.utils.tensorboard (nothing by hand).

A listener on the run's events: it writes under runs/<run name>/tensorboard/ when the optional `tensorboard`
package is installed (`pip install resnet-gui[tensorboard]`), and does nothing otherwise -- training never
needs it. Scalars: batch loss, learning rate and images/s per logged batch; training and validation loss and
accuracy per epoch. At the end: the hyperparameters as hparams (with the best validation accuracy) and the
confusion matrix of the best model as an image.
"""
from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

import torch

from ..paths import runs_dir
from . import events as E

log = logging.getLogger(__name__)
FOLDER = "tensorboard"


def available() -> bool:
    try:
        import tensorboard  # noqa: F401
        from torch.utils.tensorboard import SummaryWriter  # noqa: F401
    except ImportError:
        return False
    return True


def logdir(run_name: str) -> Path:
    return runs_dir() / run_name / FOLDER


def command(run_name: str) -> str:
    return f"tensorboard --logdir \"{logdir(run_name)}\""


def _hparams(config: dict) -> dict[str, Any]:
    keep = ("recipe", "dataset", "arch", "pretrained", "epochs", "batch_size", "lr", "optimizer", "weight_decay",
            "schedule", "warmup_epochs", "label_smoothing", "augment", "hflip", "freeze_backbone_epochs", "seed",
            "precision", "image_size", "world_size")
    out: dict[str, Any] = {}
    for key in keep:
        value = config.get(key)
        out[key] = value if isinstance(value, (bool, int, float, str)) else str(value)
    return out


def confusion_image(matrix: list[list[int]]) -> torch.Tensor:
    """3 x H x W uint8: rows normalised to shares, white (0) to dark blue (1), each cell 16 x 16 pixels."""
    m = torch.tensor(matrix, dtype=torch.float64)
    shares = m / m.sum(1, keepdim=True).clamp_min(1)
    low, high = torch.tensor([255.0, 255.0, 255.0]), torch.tensor([8.0, 48.0, 107.0])
    rgb = low + shares[..., None] * (high - low)
    cell = 16 if m.shape[0] <= 64 else max(1, 1024 // m.shape[0])
    img = rgb.repeat_interleave(cell, 0).repeat_interleave(cell, 1)
    return img.permute(2, 0, 1).round().to(torch.uint8)


class TensorBoardLogger:
    """Call with every event of a run (rank 0); cheap when TensorBoard is missing."""

    def __init__(self) -> None:
        self.writer = None
        self.run_name: str | None = None
        self.config: dict = {}
        self.best: float | None = None
        self.enabled = available()

    def __call__(self, ev: E.TrainEvent) -> None:
        if not self.enabled:
            return
        try:
            self._write(ev)
        except Exception:  # noqa: BLE001 - TensorBoard files are a convenience: never fail a run for them
            log.warning("TensorBoard logging stopped", exc_info=True)
            self.enabled = False

    def _write(self, ev: E.TrainEvent) -> None:
        if isinstance(ev, E.Started):
            from torch.utils.tensorboard import SummaryWriter

            self.run_name, self.config = ev.run_name, dict(ev.config)
            self.writer = SummaryWriter(log_dir=str(logdir(ev.run_name)))
            self.writer.add_text("config", "\n".join(f"    {k}: {v}" for k, v in sorted(ev.config.items())))
            return
        w = self.writer
        if w is None:
            return
        if isinstance(ev, E.Batch):
            for step, loss in ev.losses:
                w.add_scalar("batch/loss", loss, step)
            last = ev.losses[-1][0] if ev.losses else 0
            w.add_scalar("batch/lr", ev.lr, last)
            w.add_scalar("batch/images_per_s", ev.images_per_s, last)
        elif isinstance(ev, E.Epoch):
            for name, value in (("loss/train", ev.train_loss), ("loss/val", ev.val_loss),
                                ("accuracy/train", ev.train_accuracy), ("accuracy/val", ev.val_accuracy),
                                ("epoch/lr", ev.lr), ("epoch/images_per_s", ev.images_per_s)):
                w.add_scalar(name, value, ev.epoch)
            self.best = ev.val_accuracy if self.best is None else max(self.best, ev.val_accuracy)
            w.flush()
        elif isinstance(ev, E.Ended):
            self._end(ev)

    def _end(self, ev: E.Ended) -> None:
        w, self.writer = self.writer, None
        if ev.best_path:
            try:
                from ..models.checkpoint import read_checkpoint_metadata

                matrix = read_checkpoint_metadata(ev.best_path).get("metrics", {}).get("confusion_matrix")
                if isinstance(matrix, list) and matrix:
                    w.add_image("confusion_matrix (rows: true class)", confusion_image(matrix), 0)
            except Exception:  # noqa: BLE001 - the image is optional
                log.warning("no confusion matrix for TensorBoard", exc_info=True)
        metrics = {"hparam/best_val_accuracy": float(ev.best_val_accuracy if ev.best_val_accuracy is not None
                                                     else (self.best or 0.0)),
                   "hparam/epochs_done": float(ev.epochs_done)}
        w.add_hparams(_hparams(self.config), metrics, run_name=".")
        w.close()
