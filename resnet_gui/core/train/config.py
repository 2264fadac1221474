"""Training configuration: one flat dataclass, saved inside every checkpoint, and the recipes.

Recipes (every value can be overridden):

* ``cifar10`` -- ResNet-18 (3x3 stem) from scratch on CIFAR-10. SGD + Nesterov momentum 0.9, weight
  decay 5e-4, batch 512, one-cycle learning rate peaking at 0.4 after 25 % of the run (0.1 per 128
  images, scaled linearly to batch 512), label smoothing 0.1, pad-4 random crop + horizontal flip,
  30 epochs. Published ResNet-18 one-cycle recipes reach ~95 % in about 70 epochs at batch 512; the
  shorter run here aims at >= 94 % on a GPU with bf16 autocast and channels_last.
* ``finetune`` -- an ImageNet-pretrained ResNet/ResNeXt on a folder of images: the weights' own eval
  preprocessing, random-resized crop + flip for training, backbone frozen for the first epoch (the new
  head settles at the full learning rate before it can disturb pretrained features), then a 1-epoch
  linear warm-up from the moment the backbone unfreezes and a cosine decay; AdamW lr 5e-4 with weight
  decay 0.05, label smoothing 0.1, batch 32, 10 epochs.
* ``scratch`` -- a ResNet from scratch on a folder: SGD + Nesterov lr 0.05 at batch 64, weight decay
  5e-4, random-resized crop + flip, cosine after a 2-epoch warm-up, label smoothing 0.1, 30 epochs.

Several processes (torchrun): `batch_size` is per process, so one step sees world_size x batch_size
images. The learning rate of every recipe is the rate for one process's batch; with scale_lr (the
default) the engine multiplies it by world_size for SGD (the linear scaling rule of Goyal et al.,
"Accurate, Large Minibatch SGD", which the recipes' warm-ups make safe) and by sqrt(world_size) for
AdamW (Adam's update does not grow with the batch the way SGD's does). `lr_scale()` is that factor;
world_size is recorded by the engine, so every checkpoint says how many processes trained it.
"""
from __future__ import annotations

import dataclasses
import math
from dataclasses import dataclass, fields
from typing import Any

from ..errors import Remedy, TrainingError
from ..models.archs import ARCHS

OPTIMIZERS = ("sgd", "adamw")
SCHEDULES = ("onecycle", "cosine", "step")
PRECISIONS = ("auto", "fp32", "bf16")
DATASETS = ("cifar10", "folder")
RECIPES = ("cifar10", "finetune", "scratch")
# pad_crop: pad by 1/8 of the size, random crop back (CIFAR style); random_resized_crop: torchvision's
# RandomResizedCrop(scale 0.08-1); none: the eval resize + center crop. A horizontal flip is added
# when hflip is set. Both data paths implement all three.
AUGMENTS = ("pad_crop", "random_resized_crop", "none")
MIN_IMAGE_SIZE, MAX_IMAGE_SIZE = 16, 1024


@dataclass
class TrainConfig:
    # what to train on
    dataset: str = "cifar10"          # "cifar10" or "folder"
    data: str | None = None           # folder dataset root, or where CIFAR-10 is (None: app data folder)
    download: bool = False            # CIFAR-10: download when no local copy is found
    val_split: float = 0.2            # folder datasets without val/: fraction held out, stratified
    exclude: list[str] | None = None  # files left out of a folder dataset (the health check's duplicates, ...)
    # the model
    arch: str = "resnet18_cifar"
    pretrained: bool = False          # ImageNet weights (torch hub cache, or weights_file)
    weights_file: str | None = None   # local ImageNet weights file for offline labs
    image_size: int | None = None     # input size override (default: the arch/weights preset)
    # optimisation
    epochs: int = 30
    batch_size: int = 512
    lr: float = 0.4                   # peak learning rate (after warm-up)
    optimizer: str = "sgd"
    momentum: float = 0.9             # SGD only
    nesterov: bool = True             # SGD only
    weight_decay: float = 5e-4
    schedule: str = "onecycle"
    warmup_epochs: float | None = None  # linear warm-up (None: 25 % of the run for one-cycle, else 0)
    label_smoothing: float = 0.1
    augment: str = "pad_crop"         # one of AUGMENTS (saved, so a resumed run augments the same way)
    hflip: bool = True                # random horizontal flips (turn off for digits, text, handedness)
    freeze_backbone_epochs: int = 0   # train only the new head for this many epochs first
    # running
    seed: int = 0
    device: str = "auto"
    precision: str = "auto"           # auto: bf16 autocast on CUDA (fp16 + scaling on older GPUs) and on
                                      # CPUs with native bf16 (AVX512-BF16/AMX); fp32: never; bf16: always
    workers: int | None = None        # DataLoader workers for folder datasets (None: automatic)
    threads: int | None = None        # CPU threads for torch (None: torch's default)
    cache_mb: int = 2048              # decode folder images into memory when they fit in this much
    name: str | None = None           # registry name of the best model (default: generated)
    recipe: str = "cifar10"
    compile: bool = False             # torch.compile the training step (CUDA only; eager if compiling fails)
    # several processes (torchrun); see the module docstring
    world_size: int = 1               # recorded by the engine: how many processes train (batch_size is per process)
    scale_lr: bool = True             # lr x world_size (SGD) or x sqrt(world_size) (AdamW) when world_size > 1
    sync_bn: bool = False             # BatchNorm statistics over all processes' batches (CUDA only)

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> TrainConfig:
        known = {f.name for f in fields(cls)}
        values = {k: v for k, v in d.items() if k in known}
        if "augment" not in values:  # saved before the field existed: what the data path used to choose
            small = values.get("dataset") == "cifar10" or values.get("arch") == "resnet18_cifar" \
                or (isinstance(values.get("image_size"), int) and values["image_size"] <= 64)
            values["augment"] = "pad_crop" if small else "random_resized_crop"
        return cls(**values)

    def replace(self, **changes) -> TrainConfig:
        return dataclasses.replace(self, **{k: v for k, v in changes.items() if v is not None})

    def lr_scale(self) -> float:
        """The factor applied to `lr` for world_size processes (1.0 for one process)."""
        if self.world_size <= 1 or not self.scale_lr:
            return 1.0
        return float(self.world_size) if self.optimizer == "sgd" else math.sqrt(self.world_size)

    def warmup(self) -> float:
        """Warm-up length in epochs, counted from when the backbone unfreezes (at most half the rest)."""
        trainable = max(0, self.epochs - self.freeze_backbone_epochs)
        if self.warmup_epochs is None:
            value = 0.25 * trainable if self.schedule == "onecycle" else 0.0
        else:
            value = float(self.warmup_epochs)
        return min(value, 0.5 * trainable)

    def validate(self) -> TrainConfig:
        """Raise TrainingError naming the first bad value (types, ranges, finiteness)."""

        def bad(msg: str, remedy: Remedy | None = None):
            raise TrainingError(msg, remedy=remedy)

        def number(name: str, label: str, *, integer: bool = False, optional: bool = False):
            value = getattr(self, name)
            if value is None and optional:
                return None
            if isinstance(value, bool) or not isinstance(value, (int, float)):
                bad(f"{label} must be a number, got {value!r}")
            if not math.isfinite(float(value)):
                bad(f"{label} must be a finite number, got {value!r}")
            if integer and float(value) != int(value):
                bad(f"{label} must be a whole number, got {value!r}")
            return int(value) if integer else float(value)

        for name, choices in (("dataset", DATASETS), ("optimizer", OPTIMIZERS), ("schedule", SCHEDULES),
                              ("precision", PRECISIONS), ("augment", AUGMENTS), ("recipe", RECIPES)):
            if getattr(self, name) not in choices:
                bad(f"unknown {name} {getattr(self, name)!r}; use one of: {', '.join(choices)}")
        if self.exclude is not None and (not isinstance(self.exclude, list) or len(self.exclude) > 1_000_000
                                         or not all(isinstance(p, str) for p in self.exclude)):
            bad("exclude must be a list of file paths")
        if self.dataset == "folder" and not self.data:
            bad("a folder dataset needs a folder", Remedy("data_folder"))
        if self.arch not in ARCHS:
            bad(f"unknown architecture {self.arch!r}; supported: {', '.join(ARCHS)}")
        if self.pretrained and ARCHS[self.arch].cifar_stem:
            bad(f"{self.arch} has no ImageNet weights; choose resnet18 (or larger) to fine-tune")
        if not 1 <= number("epochs", "epochs", integer=True) <= 10_000:
            bad(f"epochs must be between 1 and 10000, got {self.epochs}")
        if not 1 <= number("batch_size", "batch size", integer=True) <= 65_536:
            bad(f"batch size must be between 1 and 65536, got {self.batch_size}")
        if not 0 < number("lr", "learning rate") < 100:
            bad(f"learning rate must be above 0 and below 100, got {self.lr}")
        if not 0 <= number("momentum", "momentum") < 1:
            bad(f"momentum must be in [0, 1), got {self.momentum}")
        if not 0 <= number("weight_decay", "weight decay") <= 10:
            bad(f"weight decay must be between 0 and 10, got {self.weight_decay}")
        if not 0 <= number("label_smoothing", "label smoothing") < 1:
            bad(f"label smoothing must be in [0, 1), got {self.label_smoothing}")
        if not 0 < number("val_split", "validation split") < 1:
            bad(f"validation split must be between 0 and 1, got {self.val_split}")
        warmup = number("warmup_epochs", "warm-up epochs", optional=True)
        if warmup is not None and not 0 <= warmup <= 10_000:
            bad(f"warm-up epochs must be between 0 and 10000, got {self.warmup_epochs}")
        if not 0 <= number("freeze_backbone_epochs", "frozen backbone epochs", integer=True) <= 10_000:
            bad(f"frozen backbone epochs must be between 0 and 10000, got {self.freeze_backbone_epochs}")
        if not 0 <= number("seed", "seed", integer=True) < 2**63:
            bad(f"seed must be a whole number from 0 to 2**63-1, got {self.seed}")
        workers = number("workers", "loader workers", integer=True, optional=True)
        if workers is not None and not 0 <= workers <= 64:
            bad(f"loader workers must be between 0 and 64, got {self.workers}")
        threads = number("threads", "threads", integer=True, optional=True)
        if threads is not None and not 1 <= threads <= 1024:
            bad(f"threads must be between 1 and 1024, got {self.threads}")
        if not 0 <= number("cache_mb", "cache size", integer=True) <= 1 << 24:
            bad(f"cache size must be between 0 and {1 << 24} MB, got {self.cache_mb}")
        if not 1 <= number("world_size", "number of processes", integer=True) <= 65_536:
            bad(f"number of processes must be between 1 and 65536, got {self.world_size}")
        if not 0 < self.lr * self.lr_scale() < 100:
            bad(f"learning rate {self.lr:g} scaled for {self.world_size} processes is {self.lr * self.lr_scale():g}, "
                "too high; pass a lower --lr, or --no-scale-lr to use it as it is")
        size = number("image_size", "image size", integer=True, optional=True)
        if size is not None and not MIN_IMAGE_SIZE <= size <= MAX_IMAGE_SIZE:
            bad(f"image size must be between {MIN_IMAGE_SIZE} and {MAX_IMAGE_SIZE}, got {self.image_size}")
        return self


def recipe(recipe_name: str, /, **overrides) -> TrainConfig:
    """The defaults of one recipe ('cifar10', 'finetune', 'scratch'), with overrides applied."""
    if recipe_name == "cifar10":
        base = TrainConfig(recipe="cifar10")
    elif recipe_name == "finetune":
        base = TrainConfig(recipe="finetune", dataset="folder", arch="resnet18", pretrained=True, epochs=10,
                           batch_size=32, lr=5e-4, optimizer="adamw", weight_decay=0.05, schedule="cosine",
                           warmup_epochs=1, freeze_backbone_epochs=1, augment="random_resized_crop")
    elif recipe_name == "scratch":
        base = TrainConfig(recipe="scratch", dataset="folder", arch="resnet18", epochs=30, batch_size=64,
                           lr=0.05, optimizer="sgd", schedule="cosine", warmup_epochs=2, augment="random_resized_crop")
    else:
        raise TrainingError(f"unknown recipe {recipe_name!r}; use one of: {', '.join(RECIPES)}")
    return base.replace(**overrides)


# Python types a field's annotation allows ("bool", "int | None", "list[str] | None", ...): validate() checks
# ranges and choices; the types of the fields it does not look at (bool, str) are checked here.
_ANNOTATION_TYPES: dict[str, tuple[type, ...]] = {"bool": (bool,), "int": (int,), "float": (int, float),
                                                  "str": (str,), "list[str]": (list,)}
MAX_FORM_TEXT = 4096  # characters in a path or a device name


def _has_annotated_type(annotation: str, value: Any) -> bool:
    for part in (p.strip() for p in str(annotation).split("|")):
        if part == "None" and value is None:
            return True
        kinds = _ANNOTATION_TYPES.get(part, ())
        if isinstance(value, kinds) and (part == "bool" or not isinstance(value, bool)):
            return not isinstance(value, str) or (len(value) <= MAX_FORM_TEXT and "\x00" not in value)
    return False


def usable_form(values: dict[str, Any], recipe_name: str) -> tuple[dict[str, Any], dict[str, str]]:
    """The fields of a saved training form (the app's settings file) that TrainConfig accepts, each checked
    alone on top of the recipe's defaults (its annotated type, then validate()), and why each other one was
    dropped: one odd value never costs the rest of the form."""
    base = recipe(recipe_name)
    if base.dataset == "folder":
        base = dataclasses.replace(base, data=".")  # a stand-in: the form never holds the data folder
    types = {f.name: f.type for f in fields(TrainConfig)}
    kept: dict[str, Any] = {}
    dropped: dict[str, str] = {}
    for name, value in values.items():
        if name not in types:
            dropped[str(name)[:40]] = "not a training setting"
        elif not _has_annotated_type(types[name], value):
            dropped[name] = f"expected {types[name]}, found {repr(value)[:60]}"
        else:
            try:
                dataclasses.replace(base, **{name: value}).validate()
                kept[name] = value
            except TrainingError as exc:
                dropped[name] = str(exc)
    return kept, dropped
