"""Several training processes under torchrun: DistributedDataParallel, each process on its own shard.

    torchrun --nproc_per_node=2 -m resnet_gui train ...

`join(cfg)` reads what torchrun sets for each process (WORLD_SIZE, RANK, LOCAL_RANK, LOCAL_WORLD_SIZE,
MASTER_ADDR, MASTER_PORT), starts the process group -- NCCL on CUDA with one GPU per local rank, gloo on
the CPU -- and returns a World. Without those variables, or with WORLD_SIZE=1, it returns SINGLE, and
nothing else here does anything: a one-process run is exactly what it was before.

Rank 0 decides (the config, the run name, the resumed state: `from_main`) and only rank 0 writes files
and events. Every collective below is entered by every rank in the same order:

* `agree()` wraps each batch stream: one all_reduce per batch of [stop asked here, no batch here,
  batches left here]. A stop on any rank (a signal, the stop file) ends every rank before the same step;
  a step whose images all failed to load on one rank is skipped on all; validation shards of unequal
  length end together.
* `mean_losses`, `reduce_train` and `reduce_eval` add up exactly: sums of losses, correct answers and
  counts (never means of means), and the validation predictions gathered back into the single-process
  order, so the validation accuracy is the one one process computes on the saved model.
* `sync_buffers` gives every rank rank 0's BatchNorm statistics before validation: the model every rank
  evaluates is the model rank 0 saves.
* `local_first` lets the first process on each machine prepare CIFAR-10 (download, extract) before the
  others; `everywhere` prepares a folder dataset on all ranks at once. Both turn a failure on any rank
  into an error on every rank instead of a hang.
"""
from __future__ import annotations

import math
import os
import threading
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from typing import Any, TypeVar

import torch
import torch.distributed as dist
from torch import nn

from ..data.shard import interleave
from ..devices import resolve_device
from ..errors import Cancelled, DeviceError, TrainingError, user_message
from ..progress import StopFlag
from .config import TrainConfig
from .loop import Trainer

LAUNCHER_VARS = ("WORLD_SIZE", "RANK", "MASTER_ADDR", "MASTER_PORT")
_END = object()
T = TypeVar("T")


def launcher_rank_and_size() -> tuple[int, int]:
    """(rank, number of processes) that torchrun gave this process; (0, 1) when torchrun did not start it."""
    env = os.environ
    if not all(env.get(name) for name in LAUNCHER_VARS):
        return 0, 1
    try:
        return int(env["RANK"]), int(env["WORLD_SIZE"])
    except ValueError:
        return 0, 1


class OtherProcessFailed(TrainingError):
    """Another training process failed; its own message (on its standard error) says why."""


class Agreement:
    """The stop flag the loops see when several processes train: set only where all ranks agree (agree())."""

    def __init__(self, local: StopFlag):
        self.local = local
        self.agreed = threading.Event()

    def is_set(self) -> bool:
        return self.agreed.is_set()


@dataclass
class World:
    rank: int = 0
    size: int = 1
    local_rank: int = 0
    comm_device: torch.device = field(default_factory=lambda: torch.device("cpu"))  # where collectives run
    owns_group: bool = False

    @property
    def enabled(self) -> bool:
        return self.size > 1

    @property
    def is_main(self) -> bool:
        return self.rank == 0

    # ---- decisions and failures ----------------------------------------------------------------------
    def from_main(self, fn: Callable[[], T]) -> T:
        """fn() run on rank 0 alone; its result (or its failure, as an error) reaches every rank."""
        if not self.enabled:
            return fn()
        box: list[Any] = [None]
        if self.is_main:
            try:
                box[0] = ("ok", fn())
            except Exception as exc:  # noqa: BLE001 - re-raised below, after the others have heard of it
                dist.broadcast_object_list([_failure(exc)], src=0)
                raise
        dist.broadcast_object_list(box, src=0)
        if box[0][0] != "ok":
            _raise_failure(box[0], 0, self.size)
        return box[0][1]

    def local_first(self, fn: Callable[[], T]) -> T:
        """fn() on the first process of each machine, then on the others (downloads and extraction happen
        once per machine); a failure on any rank raises on every rank."""
        if not self.enabled:
            return fn()
        result = None
        for first in (True, False):
            error = None
            if (self.local_rank == 0) == first:
                try:
                    result = fn()
                except Exception as exc:  # noqa: BLE001 - shared with the other ranks, then re-raised
                    error = exc
            self.raise_any(error)
        return result

    def everywhere(self, fn: Callable[[], T]) -> T:
        """fn() on every rank at once; a failure on any rank raises on every rank."""
        if not self.enabled:
            return fn()
        result, error = None, None
        try:
            result = fn()
        except Exception as exc:  # noqa: BLE001 - shared with the other ranks, then re-raised
            error = exc
        self.raise_any(error)
        return result

    def raise_any(self, error: BaseException | None) -> None:
        """Collective: raise `error` here, and an error on every other rank, when any rank failed."""
        reports: list[Any] = [None] * self.size
        dist.all_gather_object(reports, None if error is None else _failure(error))
        if error is not None:
            raise error
        for rank, report in enumerate(reports):
            if report is not None:
                _raise_failure(report, rank, self.size)

    def explain(self, exc: BaseException) -> BaseException:
        """A lost connection to another rank, as a sentence (any other error as it is)."""
        if self.enabled and isinstance(exc, dist.DistError):
            first = (str(exc).strip().splitlines() or [type(exc).__name__])[0][:200]
            return OtherProcessFailed(
                f"the connection to another training process was lost ({first}); that process's own message "
                "(on its standard error) says why. The best and last checkpoints from earlier epochs are kept")
        return exc

    # ---- the model ---------------------------------------------------------------------------------
    def wrap(self, t: Trainer, sync_bn: bool) -> None:
        """DistributedDataParallel around t.model (after SyncBatchNorm when asked): t.step_model."""
        if not self.enabled:
            return
        if sync_bn:
            t.model = nn.SyncBatchNorm.convert_sync_batchnorm(t.model)  # same parameters, the optimizer keeps them
        t.step_model = nn.parallel.DistributedDataParallel(
            t.model, device_ids=[t.device.index] if t.device.type == "cuda" else None,
            find_unused_parameters=t.freeze_backbone_epochs > 0)  # a frozen backbone has no gradients

    def sync_buffers(self, module: nn.Module) -> None:
        """Every rank takes rank 0's buffers (BatchNorm running statistics)."""
        if self.enabled:
            for buffer in module.buffers():
                dist.broadcast(buffer, src=0)

    # ---- batches ---------------------------------------------------------------------------------
    def collective_stop(self, local: StopFlag) -> StopFlag:
        return Agreement(local) if self.enabled else local

    def agree(self, batches: Iterable[T | None], stop: StopFlag) -> Iterable[T | None]:
        """The batches of this rank, in step with the other ranks (see the module docstring); `stop` is the
        flag collective_stop() gave."""
        if not isinstance(stop, Agreement):
            return batches
        return self._agreed(batches, stop)

    def _agreed(self, batches: Iterable[T | None], stop: Agreement) -> Iterator[T | None]:
        it = iter(batches)
        while True:
            item = next(it, _END)
            flags = torch.tensor([stop.local.is_set(), item is None, item is not _END], dtype=torch.int32,
                                 device=self.comm_device)
            dist.all_reduce(flags, op=dist.ReduceOp.MAX)
            stop_any, missing, more = (bool(v) for v in flags.tolist())
            if stop_any:
                stop.agreed.set()  # every rank sets it at the same step; the loop returns before using the item
                yield None if item is _END or missing else item
                return
            if not more:
                return
            if item is not _END:  # a rank whose shard has ended keeps answering until all have ended
                yield None if missing else item

    # ---- metrics -----------------------------------------------------------------------------------
    def _sum(self, values: list[float], op=None) -> list[float]:
        tensor = torch.tensor(values, dtype=torch.float64, device=self.comm_device)
        dist.all_reduce(tensor, op=op or dist.ReduceOp.SUM)
        return tensor.tolist()

    def mean_losses(self, losses: list[tuple[int, float]]) -> list[tuple[int, float]]:
        """The mean over ranks of each step's loss (every rank then takes the same decisions on it)."""
        if not self.enabled or not losses:
            return losses
        means = self._sum([value for _, value in losses])
        return [(step, total / self.size) for (step, _), total in zip(losses, means)]

    def reduce_train(self, stats: dict) -> dict:
        """An epoch's training figures over all ranks: summed losses, correct answers and images."""
        if not self.enabled:
            return stats
        loss_sum, correct, images = self._sum([stats["train_loss_sum"], stats["train_correct"],
                                               stats["train_images"]])
        (elapsed,) = self._sum([stats["train_time_s"]], dist.ReduceOp.MAX)
        images = int(images)
        return {**stats, "train_loss": loss_sum / max(images, 1), "train_accuracy": correct / max(images, 1),
                "images_per_s": images / max(elapsed, 1e-9), "train_time_s": elapsed,
                "train_loss_sum": loss_sum, "train_correct": int(correct), "train_images": images}

    def reduce_eval(self, val: dict, n_val: int) -> dict:
        """Validation over all ranks' shards: loss summed, predictions gathered into the whole set's order,
        so the accuracy counts each sample once, exactly as one process would."""
        if not self.enabled:
            return val
        (loss_sum,) = self._sum([val["val_loss_sum"]])
        pred, true = self.gather(val["predictions"], n_val), self.gather(val["labels"], n_val)
        correct = int((pred == true).sum())
        return {**val, "val_loss": loss_sum / max(n_val, 1), "val_accuracy": correct / max(n_val, 1),
                "val_loss_sum": loss_sum, "predictions": pred, "labels": true}

    def gather(self, part: torch.Tensor, n: int) -> torch.Tensor:
        """This rank's validation shard of a per-sample tensor -> the whole set's, in order (on the CPU)."""
        if not self.enabled:
            return part
        rows = math.ceil(n / self.size)
        padded = part.new_zeros((rows, *part.shape[1:]), device=self.comm_device)
        padded[:len(part)] = part.to(self.comm_device)
        parts = [torch.empty_like(padded) for _ in range(self.size)]
        dist.all_gather(parts, padded)
        return interleave([p.cpu() for p in parts], n)

    def close(self) -> None:
        if self.owns_group and dist.is_initialized():
            dist.destroy_process_group()
        self.owns_group = False


SINGLE = World()


def _failure(exc: BaseException) -> tuple[str, str]:
    return ("cancelled", "") if isinstance(exc, Cancelled) else ("failed", user_message(exc))


def _raise_failure(report: tuple[str, str], rank: int, size: int) -> None:
    if report[0] == "cancelled":
        raise Cancelled()
    raise OtherProcessFailed(f"training process {rank} of {size} stopped: {report[1]}")


def _process_device(spec: str | None, local_rank: int, local_size: int) -> torch.device:
    """This process's device: GPU `LOCAL_RANK` of its machine under auto/cuda, else the CPU."""
    spec = (spec or "auto").strip().lower()
    if spec in ("auto", "cuda") and torch.cuda.is_available():
        count = torch.cuda.device_count()
        if local_rank >= count:
            raise DeviceError(f"torchrun started {local_size} processes on this machine, but it has {count} "
                              f"GPU{'s' if count != 1 else ''}; use --nproc_per_node={count} (or --device cpu)")
        return torch.device("cuda", local_rank)
    if spec.startswith("cuda:"):
        raise DeviceError(f"--device {spec} would put every process on the same GPU; under torchrun leave "
                          "--device at auto (or cuda): process N of a machine uses its GPU N")
    if spec == "mps":
        raise DeviceError("several processes need CUDA GPUs or the CPU (PyTorch has no process group for MPS); "
                          "use --device cpu, or run one process")
    return resolve_device(spec)


def join(cfg: TrainConfig) -> tuple[World, torch.device]:
    """The World of this process and its device; starts the process group under torchrun."""
    rank, size = launcher_rank_and_size()
    if size <= 1:
        return SINGLE, resolve_device(cfg.device)
    local_rank = int(os.environ.get("LOCAL_RANK", "0"))
    device = _process_device(cfg.device, local_rank, int(os.environ.get("LOCAL_WORLD_SIZE", "1")))
    if cfg.sync_bn and device.type != "cuda":
        raise TrainingError("--sync-bn needs CUDA GPUs (PyTorch's SyncBatchNorm does not run on the CPU); leave it "
                            "off: each process then keeps the BatchNorm statistics of its own batches")
    owns = False
    if not dist.is_initialized():
        try:
            if device.type == "cuda":
                torch.cuda.set_device(device)
                dist.init_process_group("nccl", device_id=device)
            else:
                dist.init_process_group("gloo")
        except (RuntimeError, ValueError) as exc:
            first = (str(exc).strip().splitlines() or [type(exc).__name__])[0][:200]
            raise TrainingError(f"process {rank} could not join the other {size - 1} training process"
                                f"{'es' if size > 2 else ''} ({first}); check that every machine runs the same "
                                "torchrun command and can reach the --rdzv-endpoint (or MASTER_ADDR:MASTER_PORT)"
                                ) from None
        owns = True
    comm = device if dist.get_backend() == "nccl" else torch.device("cpu")
    return World(rank=dist.get_rank(), size=dist.get_world_size(), local_rank=local_rank, comm_device=comm,
                 owns_group=owns), device
