"""Training as a package, in the style of torchvision's classification references:

config.py    TrainConfig (one flat dataclass, saved in every checkpoint) and the recipes
events.py    typed events (frozen dataclasses with to_json()) and TrainResult
schedule.py  optimizer and learning-rate schedule builders
state.py     the resumable train-state file: save, load with validation, list, resume config
prepare.py   the dataset of a run, checked before any step
loop.py      train_one_epoch() and evaluate(): the math, with explicit parameters
distributed.py  several processes under torchrun: DDP, shards, agreed stop, exact reductions
compiling.py torch.compile of the training step (CUDA), with the eager fallback
run.py       train(): the whole run, top to bottom
"""
from .config import RECIPES, TrainConfig, recipe
from .events import TrainResult
from .run import train
from .state import list_runs, resume_config

__all__ = ["RECIPES", "TrainConfig", "TrainResult", "list_runs", "recipe", "resume_config", "train"]
