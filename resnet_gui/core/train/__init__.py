"""Training as a package, in the style of torchvision's classification references:

config.py    TrainConfig (one flat dataclass, saved in every checkpoint; each field declares its flag, type
             and range), the settings file and the recipes
events.py    typed events (frozen dataclasses with to_json()) and TrainResult
schedule.py  optimizer and learning-rate schedule builders
state.py     the resumable train-state file: save, load with validation, resume config; the history's checks
prepare.py   the dataset of a run, checked before any step
loop.py      train_one_epoch() and evaluate(): the math, with explicit parameters
distributed.py  several processes under torchrun: DDP, shards, agreed stop, exact reductions
compiling.py torch.compile of the training step (CUDA), with the eager fallback
checkpointer.py  what a run keeps after each epoch: the best model, the resumable state
finalize.py  the end of a run: evaluation, calibration and familiarity of the best model
run.py       train(): the whole run, top to bottom
lr_find.py   the learning-rate range test, on the training step
runs.py      runs on disk: list, show, compare, free space
run_files.py what one run folder holds, read into a RunInfo (status, size, figures, duration)
tensorboard.py  event files for TensorBoard, when it is installed

config and events import no torch (the GUI reads them before PyTorch has loaded); train and resume_config
are imported on first use.
"""
from .config import RECIPES, TrainConfig, recipe
from .events import TrainResult

_LAZY = {"train": "run", "resume_config": "state"}


def __getattr__(name: str):
    if name in _LAZY:
        import importlib

        return getattr(importlib.import_module(f"{__name__}.{_LAZY[name]}"), name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")

__all__ = ["RECIPES", "TrainConfig", "TrainResult", "recipe", "resume_config", "train"]
