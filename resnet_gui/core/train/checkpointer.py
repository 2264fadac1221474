"""What a run keeps: the RunRecord of what it has achieved (what even a failure reports) and the Checkpointer,
which saves after every epoch the best model so far into the registry and the resumable state.

Only rank 0 writes (the Env's registry is None elsewhere); every rank keeps the best weights in memory for
the final evaluation, which every rank takes part in.
"""
from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from ..errors import Remedy
from ..models.checkpoint import Checkpoint, read_checkpoint
from ..models.registry import Registry
from .config import TrainConfig
from .distributed import World
from .events import CheckpointSaved, TrainEvent, TrainResult
from .loop import Trainer
from .prepare import PreparedData
from .state import run_state_path, save_state


@dataclass
class RunRecord:
    """What the run has achieved so far (every field exists from the start): what a failure still reports."""
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



class Checkpointer:
    """What the run keeps after each epoch: the best model so far in the registry (and its weights in memory,
    for the final evaluation), and the resumable state. Only rank 0 writes; every rank keeps the weights."""

    def __init__(self, cfg: TrainConfig, record: RunRecord, prepared: PreparedData, *, registry: Registry | None,
                 emit: Callable[[TrainEvent], None], world: World):
        self.cfg, self.record, self.prepared = cfg, record, prepared
        self.registry, self.emit, self.world = registry, emit, world
        self.best_state: dict | None = None

    def epoch_done(self, t: Trainer, row: dict) -> bool:
        """Save after the epoch whose history `row` was just recorded; whether it is the best so far."""
        record, registry, emit = self.record, self.registry, self.emit
        is_best = record.best_acc is None or row["val_accuracy"] > record.best_acc
        if is_best:
            record.best_acc = row["val_accuracy"]
            self.best_state = {k: v.detach().to("cpu", copy=True) for k, v in t.model.state_dict().items()}
        if is_best and registry is not None:
            metrics = {k: row[k] for k in ("val_accuracy", "val_loss", "train_accuracy", "train_loss", "epoch",
                                           "images_per_s")}
            path = self._save_best(metrics | {"epochs": self.cfg.epochs})
            emit(CheckpointSaved(which="best", path=str(path), epoch=row["epoch"], name=record.best_name,
                                 val_accuracy=row["val_accuracy"]))
        if registry is not None:
            p = self.prepared
            last = save_state(run_name=record.run_name, config=self.cfg, epoch=row["epoch"], model=t.model,
                              optimizer=t.optimizer, scheduler=t.scheduler, scaler=t.scaler,
                              best_val_accuracy=record.best_acc, best_name=record.best_name, history=record.history,
                              class_names=p.class_names, preprocess=p.preprocess.to_dict(), dataset=p.description)
            emit(CheckpointSaved(which="last", path=str(last), epoch=row["epoch"]))
        return is_best

    def _save_best(self, metrics: dict) -> Path:
        p, record = self.prepared, self.record
        ckpt = Checkpoint(arch=self.cfg.arch, class_names=list(p.class_names), preprocess=p.preprocess,
                          state_dict=self.best_state, metrics=metrics, train_config=self.cfg.to_dict(),
                          dataset=p.description, notes={"run_name": record.run_name})
        path = self.registry.add(ckpt, record.best_name, overwrite=True).path
        record.saved_best = True
        return path

    def best_path(self) -> str | None:
        if self.registry is None or not self.record.saved_best:
            return None
        return str(self.registry.path_for(self.record.best_name))

    def best_weights(self) -> dict | None:
        """The best epoch's weights: this session's, or those saved by an earlier session of a resumed run."""
        if self.best_state is None and self.record.saved_best:
            return self.world.from_main(lambda: read_checkpoint(self.best_path()).state_dict)
        return self.best_state
