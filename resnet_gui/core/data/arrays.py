"""A dataset held in memory as uint8 images and int64 labels."""
from __future__ import annotations

from dataclasses import dataclass

import torch


@dataclass
class ArrayData:
    """A dataset held as uint8 images N x 3 x H x W and int64 labels."""
    images: torch.Tensor
    labels: torch.Tensor
