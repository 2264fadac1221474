"""Errors users see. Each message names the file or value at fault and what to do about it."""
from __future__ import annotations


class ResnetGuiError(Exception):
    """Base class: an error whose message is meant for the user, never a traceback."""


class CheckpointError(ResnetGuiError):
    """A checkpoint file could not be read, is unsafe, or does not fit its architecture."""


class ImageLoadError(ResnetGuiError):
    """An image could not be opened or decoded."""


class DatasetError(ResnetGuiError):
    """A dataset is missing, empty or unusable."""


class ModelError(ResnetGuiError):
    """An unknown architecture, or pretrained weights that cannot be found."""


class RegistryError(ResnetGuiError):
    """A model registry operation failed (unknown name, name taken, ...)."""


class TrainingError(ResnetGuiError):
    """Training stopped because of a problem (non-finite loss, out of memory, bad settings)."""
