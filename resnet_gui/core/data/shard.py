"""Which samples a process sees when several train together (torchrun + DistributedDataParallel).

Training: every process draws the same epoch order (seeded by seed and epoch), drops the last
`n % world_size` samples of it, and takes every world_size-th one from its rank on, as PyTorch's
DistributedSampler does with drop_last: equal shards, no sample twice, a different tail each epoch.
Validation: rank r takes samples r, r + W, r + 2W, ... of the fixed order, with no padding, so the
shards may differ by one sample and together hold every validation sample exactly once.
`interleave()` puts the per-rank results back into that order.
"""
from __future__ import annotations

import torch


def train_shard(order: torch.Tensor, rank: int, world_size: int) -> torch.Tensor:
    """This rank's part of an epoch's order: equal parts, the last n % world_size samples dropped."""
    if world_size <= 1:
        return order
    usable = (len(order) // world_size) * world_size
    return order[:usable][rank::world_size]


def val_shard_size(n: int, rank: int, world_size: int) -> int:
    """How many of n validation samples rank `rank` holds (samples rank, rank + W, ...)."""
    return len(range(rank, n, world_size))


def interleave(parts: list[torch.Tensor], n: int) -> torch.Tensor:
    """Inverse of the validation split: parts[r] holds samples r, r + W, ... of an n-sample order."""
    world_size = len(parts)
    out = parts[0].new_empty((n, *parts[0].shape[1:]))
    for rank, part in enumerate(parts):
        out[rank::world_size] = part[:val_shard_size(n, rank, world_size)]
    return out
