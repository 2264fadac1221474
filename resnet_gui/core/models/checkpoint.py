"""The one checkpoint format (see docs/checkpoint-format.md): the Checkpoint record, atomic saving,
validated loading. Every read goes through `pth.safe_torch_load` (weights_only=True, always)."""
from __future__ import annotations

import datetime as _dt
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn

from resnet_gui import __version__

from ..atomic import atomic_write
from ..errors import CheckpointError, ModelError
from ..jsonsafe import TooLarge, to_plain
from .archs import ARCHS
from .build import build_model
from .operating_points import clean as clean_operating_points
from .preprocess import Preprocess
from .safe_load import check_dense_tensors, check_finite, check_fits, check_tensor, load_weights_strict, safe_torch_load

FORMAT = "resnet-gui-checkpoint"
FORMAT_VERSION = 1
METADATA_KEYS = (
    "format", "format_version", "arch", "num_classes", "class_names", "preprocess", "metrics",
    "train_config", "dataset", "created", "app_version", "torch_version", "notes", "calibration", "int8",
    "operating_points",
)
MAX_INT8_MODEL_BYTES = 1 << 30   # the int8 graph of the largest architecture (resnext101_32x8d) is about 90 MB
FEATURE_DIMS = {"resnet18_cifar": 512, "resnet18": 512, "resnet34": 512}  # input of fc; 2048 for the others


# --------------------------------------------------------------------------------------------
# Our format
# --------------------------------------------------------------------------------------------
def _now() -> str:
    return _dt.datetime.now(_dt.timezone.utc).astimezone().isoformat(timespec="seconds")


@dataclass
class Checkpoint:
    arch: str
    class_names: list[str]
    preprocess: Preprocess
    state_dict: dict[str, torch.Tensor] | None = None
    metrics: dict[str, Any] = field(default_factory=dict)
    train_config: dict[str, Any] = field(default_factory=dict)
    dataset: dict[str, Any] = field(default_factory=dict)
    notes: dict[str, Any] = field(default_factory=dict)
    calibration: dict[str, Any] | None = None   # optional: {"temperature", "ece_before", "ece_after", ...}
    familiarity: dict[str, Any] | None = None   # optional: see familiarity.py (tensors)
    familiarity_error: str | None = field(default=None, compare=False)  # why stored familiarity data was unusable
    int8: dict[str, Any] | None = None          # optional: how its int8 version was verified (inference/int8.py)
    int8_model: Any = field(default=None, repr=False, compare=False)  # that version's ONNX graph, uint8 bytes
    operating_points: dict[str, Any] | None = None  # optional: each class's own threshold (operating_points.py)
    created: str = field(default_factory=_now)
    app_version: str = __version__
    torch_version: str = field(default_factory=lambda: torch.__version__.split("+")[0])

    @property
    def num_classes(self) -> int:
        return len(self.class_names)

    def metadata(self) -> dict[str, Any]:
        """Everything but the weights, as plain JSON-compatible values."""
        return {
            "format": FORMAT,
            "format_version": FORMAT_VERSION,
            "arch": self.arch,
            "num_classes": self.num_classes,
            "class_names": list(self.class_names),
            "preprocess": self.preprocess.to_dict(),
            "metrics": dict(self.metrics),
            "train_config": dict(self.train_config),
            "dataset": dict(self.dataset),
            "created": self.created,
            "app_version": self.app_version,
            "torch_version": self.torch_version,
            "notes": dict(self.notes),
            **({"calibration": dict(self.calibration)} if self.calibration else {}),
            **({"int8": dict(self.int8)} if self.int8 else {}),
            **({"operating_points": dict(self.operating_points)} if self.operating_points else {}),
        }

    def build_model(self, path: os.PathLike | str = "<checkpoint>") -> nn.Module:
        """A freshly built model with these weights loaded strictly, in eval mode, float32."""
        if self.state_dict is None:
            raise CheckpointError(f"{path}: metadata only, no weights were loaded")
        try:
            model = build_model(self.arch, self.num_classes)
        except ModelError as exc:
            raise CheckpointError(f"{path}: {exc}") from None
        load_weights_strict(model, self.state_dict, path, self.arch)
        return model.eval()


def weights_fingerprint(arch: str, state: dict, preprocess: Preprocess, *, half: bool = False) -> str:
    """sha256 of what a model computes from: its architecture, its weights as float32 values as they are read back
    (after float16 storage when half), and its preprocessing. An int8 version is kept with the checkpoint only
    while this is unchanged (save_checkpoint)."""
    import hashlib
    import json

    h = hashlib.sha256(json.dumps([arch, preprocess.to_dict()], sort_keys=True).encode())
    for key in sorted(state):
        value = state[key]
        if isinstance(value, torch.Tensor):
            value = value.detach().to("cpu")
            value = (value.half() if half and value.is_floating_point() else value).numpy()
        arr = np.asarray(value)
        if arr.dtype.kind == "f":
            arr = (arr.astype(np.float16) if half else arr).astype(np.float32)
        h.update(key.encode() + b"\0" + str(arr.dtype).encode() + b"\0" + np.ascontiguousarray(arr).tobytes())
    return h.hexdigest()


def _int8_to_save(ckpt: Checkpoint, half: bool) -> tuple[dict | None, torch.Tensor | None]:
    """The int8 record and graph to write with `ckpt`: the graph only while the weights and preprocessing it was
    built from are unchanged; otherwise the record says why it was dropped."""
    if not ckpt.int8:
        return None, None
    info = dict(ckpt.int8)
    if ckpt.int8_model is None or not info.get("kept"):
        return info, None
    if info.get("fingerprint") != weights_fingerprint(ckpt.arch, ckpt.state_dict, ckpt.preprocess, half=half):
        info.update(kept=False, reason="the weights or the preprocessing changed after it was built; build it again")
        return info, None
    blob = ckpt.int8_model
    data = blob if isinstance(blob, (bytes, bytearray)) else np.asarray(blob, dtype=np.uint8).tobytes()
    return info, torch.frombuffer(bytearray(data), dtype=torch.uint8)


def _float_tensor(value) -> torch.Tensor:
    """A float32 CPU tensor from a tensor or a numpy array (familiarity data is computed in numpy)."""
    if isinstance(value, np.ndarray):
        return torch.from_numpy(np.ascontiguousarray(value, dtype=np.float32))
    return value.detach().cpu().float().contiguous()


def save_checkpoint(ckpt: Checkpoint, path: os.PathLike | str, *, half: bool = False, overwrite: bool = True) -> Path:
    """Write `ckpt` atomically. half=True stores floating-point weights as float16 (loaded as float32).
    overwrite=False raises FileExistsError instead of replacing an existing file (exclusive creation)."""
    if ckpt.state_dict is None:
        raise ValueError("checkpoint has no state_dict")
    if len(ckpt.class_names) < 1:
        raise ValueError("checkpoint needs at least one class name")
    state = {}
    for key, value in ckpt.state_dict.items():
        value = value.detach().to("cpu", copy=False).contiguous()
        if half and value.is_floating_point():
            value = value.half()
        state[key] = value
    obj = ckpt.metadata()
    obj["state_dict"] = state
    if ckpt.familiarity:
        obj["familiarity"] = {k: _float_tensor(v) if isinstance(v, (torch.Tensor, np.ndarray)) else v
                              for k, v in ckpt.familiarity.items()}
    if half:
        obj["notes"] = {**obj["notes"], "weights_dtype": "float16"}
    info, blob = _int8_to_save(ckpt, half)
    obj.pop("int8", None)
    if info:
        obj["int8"] = info
    if blob is not None:
        obj["int8_model"] = blob
    return atomic_write(path, lambda fh: torch.save(obj, fh), overwrite=overwrite)


MAX_CLASSES = 25_000          # ImageNet-21k has 21,841; the head of a bigger one would not fit the memory budget
MAX_CLASS_NAME = 200


def _parse_metadata(obj: Any, path: os.PathLike | str) -> dict[str, Any]:
    """Validate the header of one of our files; return its metadata as plain, bounded JSON values."""
    if not isinstance(obj, dict) or obj.get("format") != FORMAT:
        raise CheckpointError(f"{path}: not a {FORMAT} file (import it as a foreign state dict instead)")
    version = obj.get("format_version")
    if isinstance(version, bool) or not isinstance(version, int):
        raise CheckpointError(f"{path}: format version {str(version)[:40]!r} is not a whole number; the file "
                              "is damaged")
    if version > FORMAT_VERSION:
        raise CheckpointError(f"{path}: format version {version} is newer than this app understands "
                              f"({FORMAT_VERSION}); update ResNet GUI")
    if version < 1:
        raise CheckpointError(f"{path}: format version {version} is not valid; the file is damaged")
    arch = obj.get("arch")
    if not isinstance(arch, str) or arch not in ARCHS:
        raise CheckpointError(f"{path}: unknown architecture {str(arch)[:60]!r}; supported: {', '.join(ARCHS)}")
    names = obj.get("class_names")
    if not isinstance(names, list) or not names or not all(isinstance(n, str) for n in names):
        raise CheckpointError(f"{path}: class_names must be a non-empty list of strings")
    if len(names) > MAX_CLASSES:
        raise CheckpointError(f"{path}: {len(names):,} classes; at most {MAX_CLASSES:,} are supported")
    if any(not n.strip() or len(n) > MAX_CLASS_NAME or "\x00" in n for n in names):
        raise CheckpointError(f"{path}: class names must be 1 to {MAX_CLASS_NAME} characters, without NUL bytes")
    count = obj.get("num_classes")
    if isinstance(count, bool) or count != len(names):
        raise CheckpointError(f"{path}: num_classes {str(count)[:40]!r} does not match {len(names)} class names")
    try:
        Preprocess.from_dict(obj.get("preprocess"))
    except (KeyError, TypeError, ValueError) as exc:
        raise CheckpointError(f"{path}: bad preprocessing description ({str(exc)[:200]})") from None
    try:
        meta = {k: to_plain(obj.get(k)) for k in METADATA_KEYS}
    except TooLarge as exc:
        raise CheckpointError(f"{path}: its metadata is too large or too deeply nested ({exc}); this is not a "
                              "normal checkpoint and was not loaded") from None
    for key in ("metrics", "train_config", "dataset", "notes"):
        meta[key] = meta[key] if isinstance(meta[key], dict) else {}
    for key in ("created", "app_version", "torch_version"):
        meta[key] = meta[key] if isinstance(meta[key], str) else ""
    if not isinstance(meta.get("calibration"), dict):
        meta.pop("calibration", None)
    if not isinstance(meta.get("int8"), dict):
        meta.pop("int8", None)
    meta["operating_points"] = clean_operating_points(meta.get("operating_points"), names)
    if not meta["operating_points"]:
        meta.pop("operating_points")
    raw = obj.get("familiarity")
    if isinstance(raw, dict):  # a summary only: the tensors are read when the model is loaded
        meta["familiarity"] = {k: to_plain(raw.get(k)) for k in ("method", "threshold", "fitted_on")
                               if isinstance(raw.get(k), (str, int, float))}
    return meta


_SHAPES: dict[tuple[str, int], dict[str, tuple]] = {}


def expected_shapes(arch: str, num_classes: int) -> dict[str, tuple]:
    """Parameter names and shapes of `arch` with a num_classes head (built on the meta device: no memory)."""
    key = (arch, num_classes)
    if key not in _SHAPES:
        with torch.device("meta"):
            model = build_model(arch, num_classes)
        _SHAPES[key] = {k: tuple(v.shape) for k, v in model.state_dict().items()}
    return _SHAPES[key]


def _from_metadata(meta: dict, state: dict | None) -> Checkpoint:
    return Checkpoint(
        arch=meta["arch"],
        class_names=list(meta["class_names"]),
        preprocess=Preprocess.from_dict(meta["preprocess"]),
        state_dict=state,
        metrics=meta["metrics"],
        train_config=meta["train_config"],
        dataset=meta["dataset"],
        notes=meta["notes"],
        calibration=meta["calibration"] if isinstance(meta.get("calibration"), dict) else None,
        int8=meta["int8"] if isinstance(meta.get("int8"), dict) else None,
        operating_points=meta.get("operating_points") or None,
        created=str(meta.get("created") or ""),
        app_version=str(meta.get("app_version") or ""),
        torch_version=str(meta.get("torch_version") or ""),
    )


def read_metadata(path: os.PathLike | str) -> dict[str, Any]:
    """The metadata of one of our checkpoints, memory-mapped so no weights are read from disk; the weights'
    names and shapes are checked against the architecture, so a file listed as working really loads."""
    obj = safe_torch_load(path, mmap=True)
    meta = _parse_metadata(obj, path)
    state = obj.get("state_dict")
    if not isinstance(state, dict):
        raise CheckpointError(f"{path}: holds no weights")
    check_dense_tensors(state, path)
    check_fits(state, expected_shapes(meta["arch"], len(meta["class_names"])), path, meta["arch"])
    check_finite({k: v for k, v in state.items() if k.startswith("fc.")}, path)  # the head: a few KB to read
    return meta


FAMILIARITY_QUANTILES = 201  # distances of validation images stored per model (inference/familiarity.py)


def check_familiarity(obj: Any, *, num_classes: int, feature_dim: int) -> None:
    """The stored familiarity record (inference/familiarity.py) fits the model: shapes, finite values, a
    threshold in [0, 1]. Raises ValueError."""
    if not isinstance(obj, dict) or obj.get("method") != "mahalanobis":
        raise ValueError("unknown familiarity data")
    for name, shape in (("class_means", (num_classes, feature_dim)), ("precision", (feature_dim, feature_dim)),
                        ("quantiles", (FAMILIARITY_QUANTILES,))):
        t = obj.get(name)
        if isinstance(t, torch.Tensor) and t.layout != torch.strided:
            t = None
        arr = np.asarray(t) if isinstance(t, (torch.Tensor, np.ndarray)) else None
        if arr is None or arr.shape != shape or arr.dtype.kind != "f" or not np.isfinite(arr).all():
            raise ValueError(f"familiarity {name} must be finite numbers of shape {shape}")
    threshold = obj.get("threshold")
    if isinstance(threshold, bool) or not isinstance(threshold, (int, float)) or not 0 <= threshold <= 1:
        raise ValueError("familiarity threshold must be between 0 and 1")


def checkpoint_from_object(obj: Any, path: os.PathLike | str) -> Checkpoint:
    """A validated Checkpoint from what safe_torch_load returned for one of our files."""
    meta = _parse_metadata(obj, path)
    ckpt = _from_metadata(meta, check_dense_tensors(obj.get("state_dict"), path))
    raw = obj.get("familiarity")
    if raw is not None:
        try:
            if not isinstance(raw, dict):
                raise ValueError("not a mapping")
            for key, value in raw.items():
                if isinstance(value, torch.Tensor):
                    check_tensor(f"familiarity.{key}", value, path)
            check_familiarity(raw, num_classes=ckpt.num_classes, feature_dim=feature_dim(ckpt.arch))
            ckpt.familiarity = raw
        except (ValueError, CheckpointError) as exc:
            ckpt.familiarity_error = str(exc).removeprefix(f"{path}: ")
    ckpt.int8_model = _int8_model(obj.get("int8_model"), ckpt, path)
    return ckpt


def _int8_model(raw: Any, ckpt: Checkpoint, path) -> Any:
    """The stored int8 graph (1-D uint8, within a size limit) when the record says it was kept; else None, and
    the record says why (a damaged or missing graph only loses the int8 version, never the model)."""
    if raw is None or not ckpt.int8 or not ckpt.int8.get("kept"):
        return None
    try:
        if not isinstance(raw, torch.Tensor):
            raise CheckpointError("not a tensor")
        check_tensor("int8_model", raw, path)
        if raw.dtype != torch.uint8 or raw.dim() != 1 or not 0 < raw.numel() <= MAX_INT8_MODEL_BYTES:
            raise CheckpointError("not a 1-D byte array of a sensible size")
    except CheckpointError as exc:
        ckpt.int8 = {**ckpt.int8, "kept": False,
                     "reason": f"its stored int8 version is damaged ({str(exc).removeprefix(f'{path}: ')})"}
        return None
    return raw


def feature_dim(arch: str) -> int:
    """Width of the penultimate layer (the input of fc) of `arch`."""
    return FEATURE_DIMS.get(arch, 2048)


def load_checkpoint(path: os.PathLike | str) -> Checkpoint:
    """Load one of our checkpoints with its weights, validated (dense tensors only)."""
    return checkpoint_from_object(safe_torch_load(path), path)


def load_model(path: os.PathLike | str) -> tuple[Checkpoint, nn.Module]:
    ckpt = load_checkpoint(path)
    return ckpt, ckpt.build_model(path)
