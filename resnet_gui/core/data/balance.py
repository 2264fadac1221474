"""Remedies for class imbalance (TrainConfig.balance), from the training set's class counts.

* weighted-loss: the cross entropy weighs each class by N / (C x n_c) (n_c its training images, N all of them,
  C the classes; scikit-learn's "balanced"): a class with a tenth of the images counts ten times as much per
  image, and the average weight per image is 1.
* weighted-sampler: each epoch draws N training samples with replacement, each with a chance proportional to
  1 / n_c of its class, so every class is drawn about equally often (PyTorch's WeightedRandomSampler). The draw
  is seeded by (seed, epoch) like the plain shuffle, made on every process alike, and shared out by
  shard.train_shard: deterministic, and correct per rank under torchrun.

Both paths (TensorData, LoaderData) take their epoch order from `epoch_order`.
"""
from __future__ import annotations

import torch


def loss_weights(counts: list[int]) -> torch.Tensor:
    """Per-class weights for the cross entropy: N / (C x n_c), C counting the classes with images (a class
    without any gets 0), so the average weight per training image is 1."""
    n, c = sum(counts), sum(1 for k in counts if k)
    return torch.tensor([n / (c * k) if k else 0.0 for k in counts], dtype=torch.float32)


def sample_weights(labels: torch.Tensor) -> torch.Tensor:
    """Per-sample weights for the weighted sampler: 1 / (training images of the sample's class)."""
    labels = labels.long().cpu()
    counts = torch.bincount(labels).double()
    return (1.0 / counts)[labels]


def epoch_order(n: int, gen: torch.Generator, weights: torch.Tensor | None = None) -> torch.Tensor:
    """An epoch's order of the n training samples: a permutation; with `weights` (the weighted sampler), n
    draws with replacement, each sample's chance proportional to its weight."""
    if weights is None:
        return torch.randperm(n, generator=gen)
    return torch.multinomial(weights, n, replacement=True, generator=gen)
