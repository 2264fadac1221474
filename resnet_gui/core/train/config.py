"""Training configuration: one flat dataclass, saved inside every checkpoint, and the recipes.

Each setting is declared once, as a field whose metadata (a Setting) gives its label, type, range, choices,
command-line flag, help and --help group: the CLI's flags are generated from it (cli/train.py), validate()
checks every value against it, and a settings file (save() / from_file(), `train --config FILE`) carries
every field, which is how the app hands torchrun a run's settings.

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
import json
import math
import os
import stat
from dataclasses import dataclass, field, fields
from pathlib import Path
from typing import Any

from ..atomic import atomic_write_bytes
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
# Remedies for class imbalance (data/balance.py): none; weighted-loss (class weights in the cross entropy);
# weighted-sampler (each epoch draws the classes about equally often, with replacement).
BALANCES = ("none", "weighted-loss", "weighted-sampler")
MIN_IMAGE_SIZE, MAX_IMAGE_SIZE = 16, 1024
MAX_CONFIG_FILE_BYTES = 64 * 2**20  # a settings file with a long exclude list (1,000,000 paths at most)
MAX_EXCLUDED = 1_000_000
MAX_TEXT = 4096                     # characters in a path, name or device

# The groups of `resnet-gui train --help`: (title, description), in this order.
DATA, MODEL, OPTIMISATION, AUGMENTATION, RUNNING, PROCESSES = (
    "what to train on", "the model", "optimisation", "augmentation", "running", "several processes")
GROUPS: dict[str, str | None] = {
    DATA: None, MODEL: None, OPTIMISATION: None, AUGMENTATION: None, RUNNING: None,
    PROCESSES: "Under torchrun (torchrun --nproc_per_node=N -m resnet_gui train ...) every process trains on its "
               "shard with DistributedDataParallel; --batch-size is per process. See docs/distributed.md.",
}


@dataclass(frozen=True)
class Setting:
    """How one TrainConfig field meets people and files: its label in messages, its type and range (checked by
    TrainConfig.validate()), and its command-line flag, help and group (the CLI's flags are generated from
    these; see cli/train.py). A field without a flag is set through a settings file (--config) or the app."""
    label: str
    kind: type                      # bool, int, float, str, list (of str) or dict (str -> str)
    flag: str | None = None
    help: str | None = None
    group: str = RUNNING
    choices: tuple[str, ...] = ()   # also offered by the flag
    low: float | None = None
    high: float | None = None
    low_open: bool = False          # the range excludes `low` ...
    high_open: bool = False         # ... or `high`
    optional: bool = False          # None is allowed (automatic, not set)
    metavar: str | None = None
    switch: bool | None = None      # a bool's flag: the value it sets (--pretrained: True, --no-hflip: False)
    on_resume: bool = False         # the flag may change a resumed run (device, epochs, ...)
    title: str | None = None        # the Train form's word for it, where that differs from the label

    def heading(self) -> str:
        """The setting's name on screen (the Train form's row, the Runs tab's comparison): `title`, or the label
        with a capital."""
        return self.title or self.label[:1].upper() + self.label[1:]

    def problem(self, value: Any) -> str | None:
        """What is wrong with `value` for this setting, as a sentence fragment; None when it is fine."""
        shown = shown_value(value)
        if value is None:
            return None if self.optional else f"{self.label} must be set"
        if self.kind is bool:
            return None if isinstance(value, bool) else f"{self.label} must be true or false, got {shown}"
        if self.kind is str:
            if not isinstance(value, str) or len(value) > MAX_TEXT:
                return f"{self.label} must be text of at most {MAX_TEXT} characters, got {shown}"
            if self.choices and value not in self.choices:
                return f"unknown {self.label} {shown}; use one of: {', '.join(self.choices)}"
            return None
        if self.kind is list:
            if (not isinstance(value, list) or len(value) > MAX_EXCLUDED
                    or not all(isinstance(v, str) and len(v) <= MAX_TEXT for v in value)):
                return f"{self.label} must be a list of file paths"
            return None
        if self.kind is dict:
            if (not isinstance(value, dict) or len(value) > MAX_EXCLUDED
                    or not all(isinstance(k, str) and isinstance(v, str) and len(k) <= MAX_TEXT
                               and len(v) <= MAX_TEXT for k, v in value.items())):
                return f"{self.label} must map file paths to class names"
            return None
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            return f"{self.label} must be a {'whole ' if self.kind is int else ''}number, got {shown}"
        if self.kind is int and not isinstance(value, int):
            return f"{self.label} must be a whole number, got {shown}"
        if isinstance(value, float) and not math.isfinite(value):
            return f"{self.label} must be a finite number, got {shown}"
        below = self.low is not None and (value <= self.low if self.low_open else value < self.low)
        above = self.high is not None and (value >= self.high if self.high_open else value > self.high)
        return f"{self.label} must be {self.range_text()}, got {shown}" if below or above else None

    def range_text(self) -> str:
        low, high = _number_text(self.low), _number_text(self.high)
        if self.low_open and self.high_open:
            return f"above {low} and below {high}"
        if self.low_open:
            return f"above {low} and at most {high}"
        if self.high_open:
            return f"at least {low} and below {high}"
        return f"between {low} and {high}"


def shown_value(value: Any) -> str:
    """A value from a file or a form, short enough for a message (a whole number of thousands of digits cannot
    even be turned into text)."""
    if isinstance(value, int) and not isinstance(value, bool) and abs(value) >= 10**30:
        return "a whole number of more than 30 digits"
    return repr(value)[:80]


def _number_text(value: float | None) -> str:
    return f"{value:g}" if isinstance(value, float) else str(value)


def setting(default: Any, label: str, kind: type, **spec) -> Any:
    """A TrainConfig field with its Setting (see above) as metadata."""
    return field(default=default, metadata={"setting": Setting(label, kind, **spec)})


def settings() -> list[tuple[str, Setting]]:
    """(field name, Setting) of every TrainConfig field, in the dataclass's order."""
    return [(f.name, f.metadata["setting"]) for f in fields(TrainConfig)]


def heading(key: str) -> str:
    """A configuration key's name on screen ("lr" -> "Learning rate"); a key TrainConfig does not declare (a
    run saved by another version) as it is."""
    found = TrainConfig.__dataclass_fields__.get(key)
    return found.metadata["setting"].heading() if found is not None else key


@dataclass
class TrainConfig:
    # what to train on
    dataset: str = setting("cifar10", "dataset", str, flag="--dataset", choices=DATASETS, group=DATA,
                           help="cifar10, or folder (class folders under --data)")
    data: str | None = setting(None, "data folder", str, flag="--data", optional=True, group=DATA, metavar="PATH",
                               on_resume=True, help="folder dataset root; for CIFAR-10, where the files are")
    download: bool = setting(False, "download", bool, flag="--download", switch=True, group=DATA,
                             help="CIFAR-10: download it when no local copy is found")
    val_split: float = setting(0.2, "validation split", float, flag="--val-split", low=0, high=1, low_open=True,
                               high_open=True, group=DATA,
                               help="validation fraction for a folder without val/ (default 0.2)")
    # files left out of a folder dataset (the health check's duplicates, ...); in a settings file only
    exclude: list[str] | None = setting(None, "exclude", list, optional=True, group=DATA)
    # file -> class it is trained under (the label check's mistakes); in a settings file only
    relabel: dict[str, str] | None = setting(None, "relabel", dict, optional=True, group=DATA)
    # the model
    arch: str = setting("resnet18_cifar", "architecture", str, flag="--arch", group=MODEL,
                        help="architecture (resnet18_cifar, resnet18, resnet34, resnet50, ...)")
    pretrained: bool = setting(False, "pretrained", bool, flag="--pretrained", switch=True, group=MODEL,
                               title="ImageNet weights",
                               help="start from ImageNet weights (fine-tuning)")
    weights_file: str | None = setting(None, "weights file", str, flag="--weights-file", optional=True,
                                       group=MODEL, metavar="F",
                                       help="local ImageNet weights file (offline; implies --pretrained)")
    image_size: int | None = setting(None, "image size", int, flag="--image-size", low=MIN_IMAGE_SIZE,
                                     high=MAX_IMAGE_SIZE, optional=True, group=MODEL,
                                     help="input size (folder datasets; default: the model's preset)")
    # optimisation
    epochs: int = setting(30, "epochs", int, flag="--epochs", low=1, high=10_000, group=OPTIMISATION,
                          on_resume=True, help="epochs to train (with --resume: in all, to train a run for more)")
    batch_size: int = setting(512, "batch size", int, flag="--batch-size", low=1, high=65_536, group=OPTIMISATION,
                              help="images per step (per process under torchrun)")
    lr: float = setting(0.4, "learning rate", float, flag="--lr", low=0, high=100, low_open=True, high_open=True,
                        group=OPTIMISATION, help="peak learning rate (after warm-up)")
    optimizer: str = setting("sgd", "optimizer", str, flag="--optimizer", choices=OPTIMIZERS, group=OPTIMISATION,
                             help="SGD with Nesterov momentum 0.9, or AdamW")
    momentum: float = setting(0.9, "momentum", float, low=0, high=1, high_open=True)      # SGD only
    nesterov: bool = setting(True, "Nesterov momentum", bool)                            # SGD only
    weight_decay: float = setting(5e-4, "weight decay", float, flag="--weight-decay", low=0, high=10,
                                  group=OPTIMISATION, help="L2 penalty (decoupled for AdamW)")
    schedule: str = setting("onecycle", "schedule", str, flag="--schedule", choices=SCHEDULES, group=OPTIMISATION,
                            help="learning-rate schedule after the warm-up")
    warmup_epochs: float | None = setting(None, "warm-up epochs", float, flag="--warmup-epochs", low=0,
                                          high=10_000, optional=True, group=OPTIMISATION,
                                          help="linear warm-up (default: 25 % of the run for one-cycle, else none)")
    label_smoothing: float = setting(0.1, "label smoothing", float, flag="--label-smoothing", low=0, high=1,
                                     high_open=True, group=OPTIMISATION,
                                     help="share of the target spread over all classes")
    balance: str = setting("none", "balance", str, flag="--balance", choices=BALANCES, group=OPTIMISATION,
                           title="Balance classes",
                           help="remedy for class imbalance: weighted-loss (each class weighs in the loss inversely "
                                "to its training images) or weighted-sampler (each epoch draws every class about "
                                "equally often, with replacement); default none")
    freeze_backbone_epochs: int = setting(0, "frozen backbone epochs", int, flag="--freeze-backbone-epochs", low=0,
                                          high=10_000, group=OPTIMISATION,
                                          help="train only the new head for the first N epochs")
    # augmentation: saved, so a resumed run augments the same way
    augment: str = setting("pad_crop", "augmentation", str, flag="--augment", choices=AUGMENTS, group=AUGMENTATION,
                           help="training augmentation (default: the recipe's; pad_crop for CIFAR-10, "
                                "random_resized_crop for folders)")
    hflip: bool = setting(True, "horizontal flips", bool, flag="--no-hflip", switch=False, group=AUGMENTATION,
                          help="no horizontal flips (digits, text)")
    # running
    seed: int = setting(0, "seed", int, flag="--seed", low=0, high=2**63 - 1,
                        help="for the split, the initial weights, the order and the augmentation")
    device: str = setting("auto", "device", str, flag="--device", on_resume=True,
                          help="auto (default), cpu, cuda, cuda:N or mps")
    # auto: bf16 autocast on CUDA (fp16 + scaling on older GPUs) and on CPUs with native bf16 (AVX512-BF16/AMX);
    # fp32: never; bf16: always
    precision: str = setting("auto", "precision", str, flag="--precision", choices=PRECISIONS, on_resume=True,
                             help="auto (default): bf16 autocast on GPUs and on CPUs with native bf16, else fp32")
    workers: int | None = setting(None, "loader workers", int, flag="--workers", low=0, high=64, optional=True,
                                  on_resume=True,
                                  help="DataLoader workers for folder datasets (default: automatic)")
    threads: int | None = setting(None, "threads", int, flag="--threads", low=1, high=1024, optional=True,
                                  on_resume=True, title="CPU threads", help="CPU threads for PyTorch (default: all)")
    # decode folder images into memory when they fit in this much
    cache_mb: int = setting(2048, "cache size (MB)", int, low=0, high=1 << 24)
    name: str | None = setting(None, "name", str, flag="--name", optional=True, title="Save as",
                               help="registry name of the trained model")
    recipe: str = setting("cifar10", "recipe", str, choices=RECIPES)
    compile: bool = setting(False, "compile", bool, flag="--compile", switch=True, on_resume=True,
                            help="torch.compile the training step (CUDA only; falls back to eager with a warning "
                                 "if it fails)")
    # several processes (torchrun); see the module docstring
    # recorded by the engine: how many processes train (batch_size is per process)
    world_size: int = setting(1, "number of processes", int, low=1, high=65_536, group=PROCESSES)
    scale_lr: bool = setting(True, "scale the learning rate", bool, flag="--no-scale-lr", switch=False,
                             group=PROCESSES, on_resume=True,
                             help="use --lr as it is; by default it is multiplied by the number of processes (SGD) "
                                  "or its square root (AdamW)")
    sync_bn: bool = setting(False, "synchronised BatchNorm", bool, flag="--sync-bn", switch=True, group=PROCESSES,
                            on_resume=True, help="BatchNorm statistics over all processes' batches (CUDA GPUs only)")

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

    @classmethod
    def from_file(cls, path: str | os.PathLike) -> TrainConfig:
        """The settings in a JSON file (what save() writes; the app hands torchrun its settings this way), not
        yet validated. A file that is not a regular file, too large, not a JSON object or holding unknown
        settings is refused with a TrainingError naming it."""
        path = Path(path).expanduser()

        def bad(what: str) -> TrainingError:
            return TrainingError(f"{path}: not a usable settings file ({what})")

        try:
            st = path.stat()
            if not stat.S_ISREG(st.st_mode):
                raise bad("not a regular file")
            if st.st_size > MAX_CONFIG_FILE_BYTES:
                raise bad(f"larger than {MAX_CONFIG_FILE_BYTES // 2**20} MB")
            with path.open("rb") as fh:
                obj = json.loads(fh.read(MAX_CONFIG_FILE_BYTES + 1))
        except FileNotFoundError:
            raise TrainingError(f"{path}: no such settings file") from None
        except (ValueError, RecursionError) as exc:
            raise bad(f"not JSON: {str(exc)[:100]}") from None
        if not isinstance(obj, dict):
            raise bad("not a JSON object of settings")
        unknown = sorted(str(k)[:40] for k in obj if k not in {f.name for f in fields(cls)})
        if unknown:
            raise bad(f"unknown setting{'s' if len(unknown) > 1 else ''} {', '.join(unknown[:5])}")
        return cls.from_dict(obj)

    def save(self, path: str | os.PathLike) -> Path:
        """Write the settings as JSON, atomically (read back by from_file)."""
        return atomic_write_bytes(path, json.dumps(self.to_dict(), indent=1, allow_nan=False).encode("utf-8"))

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
        """Raise TrainingError naming the first bad value: every field's type and range (its Setting), then the
        rules that join several fields. The one check of a configuration; returns self."""
        for name, spec in settings():
            problem = spec.problem(getattr(self, name))
            if problem is not None:
                raise TrainingError(problem)
        if self.dataset == "folder" and not self.data:
            raise TrainingError("a folder dataset needs a folder", remedy=Remedy("data_folder"))
        if self.arch not in ARCHS:
            raise TrainingError(f"unknown architecture {self.arch!r}; supported: {', '.join(ARCHS)}")
        if self.pretrained and ARCHS[self.arch].cifar_stem:
            raise TrainingError(f"{self.arch} has no ImageNet weights; choose resnet18 (or larger) to fine-tune")
        if not 0 < self.lr * self.lr_scale() < 100:
            raise TrainingError(f"learning rate {self.lr:g} scaled for {self.world_size} processes is "
                                f"{self.lr * self.lr_scale():g}, too high; pass a lower --lr, or --no-scale-lr to "
                                "use it as it is")
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
