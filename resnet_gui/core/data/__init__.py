"""Training data: CIFAR-10 and folders of class folders, behind one protocol.

Two implementations of `TrainData` feed the training loop:

* `TensorData` (tensor_data.py) -- CIFAR-sized data (input <= 64 px) as one uint8 tensor on the
  training device; batched augmentation there; no PIL and no DataLoader inside the loop.
* `LoaderData` (loader_data.py) -- folder datasets at ImageNet sizes through a DataLoader.

Both apply the augmentation the config names (`TrainConfig.augment`), produce normalised float
batches on the device, and are deterministic given (seed, epoch), so a resumed run sees exactly the
batches an uninterrupted run would. Built with rank and world_size (several processes under torchrun),
each yields only its process's shard of the training and validation data (shard.py); n_train and
n_val still count the whole set, and steps_per_epoch is the per-process count.
"""
from __future__ import annotations

from collections.abc import Iterator
from typing import TYPE_CHECKING, Protocol

if TYPE_CHECKING:  # scanning and splitting folders (data.folders) must not import torch: the classify edition has none
    import torch

    Batch = tuple[torch.Tensor, torch.Tensor]


class TrainData(Protocol):
    kind: str                 # "tensor" or "loader"
    skipped: list[str]        # messages for images that could not be loaded (grows during an epoch)

    @property
    def n_train(self) -> int: ...

    @property
    def n_val(self) -> int: ...

    def steps_per_epoch(self, batch_size: int) -> int:
        """Exactly how many items train_batches yields per epoch (in this process)."""

    def train_batches(self, epoch: int, batch_size: int, seed: int) -> Iterator[Batch | None]:
        """steps_per_epoch items; None for a step whose images all failed to load (the step still counts)."""

    def val_batches(self, batch_size: int) -> Iterator[Batch]:
        """This process's validation shard, in order (rank r: samples r, r + W, ...)."""

    def seen_batches(self, batch_size: int) -> Iterator[Batch]:
        """The training images without augmentation (this process's share): what the model has seen."""

    def close(self) -> None: ...
