"""The one checkpoint format (see docs/checkpoint-format.md), safe loading, and atomic saving.

Every load goes through `safe_torch_load`, which always passes `weights_only=True` (an explicit
argument, so TORCH_FORCE_NO_WEIGHTS_ONLY_LOAD cannot turn it off) and never falls back to a full
unpickle. Anything that goes wrong becomes a `CheckpointError` naming the file and the reason.
"""
from __future__ import annotations

import datetime as _dt
import os
import pickle
import re
import zipfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch
from torch import nn

from resnet_gui import __version__

from .atomic import atomic_write
from .errors import CheckpointError, ModelError
from .preprocess import Preprocess

FORMAT = "resnet-gui-checkpoint"
FORMAT_VERSION = 1
METADATA_KEYS = (
    "format", "format_version", "arch", "num_classes", "class_names", "preprocess", "metrics",
    "train_config", "dataset", "created", "app_version", "torch_version", "notes",
)


# --------------------------------------------------------------------------------------------
# Reading any .pth safely
# --------------------------------------------------------------------------------------------
def _reason_from_exception(exc: BaseException) -> str:
    text = str(exc)
    if isinstance(exc, pickle.UnpicklingError) and "Weights only load failed" in text:
        m = re.search(r"(Unsupported global: GLOBAL [^\s]+|Unsupported operand \d+|Trying to call [^\n]+|"
                      r"Can only [^\n]+|Unsupported class [^\n]+)", text)
        detail = f" ({m.group(1).rstrip('.')})" if m else ""
        return ("refused to load: it contains Python objects or code that a weights-only load does not "
                f"allow{detail}. Only plain tensors and values are accepted")
    if "failed finding central directory" in text or "PytorchStreamReader failed" in text \
            or isinstance(exc, (EOFError, zipfile.BadZipFile)):
        return "the file is truncated or damaged (not a complete PyTorch archive)"
    if isinstance(exc, (pickle.UnpicklingError, IndexError, KeyError)) or "invalid load key" in text:
        return "not a PyTorch checkpoint (not a zip archive nor a legacy torch file)"
    if isinstance(exc, MemoryError):
        return "the file is too large to load into memory"
    first = text.strip().splitlines()[0] if text.strip() else type(exc).__name__
    return f"could not be read ({type(exc).__name__}: {first[:300]})"


def safe_torch_load(path: os.PathLike | str, *, mmap: bool = False) -> Any:
    """torch.load with weights_only=True; every failure becomes a CheckpointError naming the file."""
    path = Path(path)
    try:
        size = path.stat().st_size
    except FileNotFoundError:
        raise CheckpointError(f"{path}: file not found") from None
    except OSError as exc:
        raise CheckpointError(f"{path}: cannot be read ({exc.strerror or exc})") from None
    if not path.is_file():
        raise CheckpointError(f"{path}: not a file")
    if size == 0:
        raise CheckpointError(f"{path}: the file is empty (0 bytes)")
    try:
        with open(path, "rb") as fh:
            magic = fh.read(4)
    except OSError as exc:
        raise CheckpointError(f"{path}: cannot be read ({exc.strerror or exc})") from None
    is_zip = magic.startswith(b"PK")
    if not is_zip and not magic.startswith(b"\x80"):  # neither a zip archive nor a (legacy) pickle
        raise CheckpointError(f"{path}: not a PyTorch checkpoint (not a zip archive nor a legacy torch file)")
    try:
        return torch.load(path, map_location="cpu", weights_only=True, mmap=bool(mmap and is_zip))
    except Exception as exc:  # noqa: BLE001 - every failure is reported as a CheckpointError
        raise CheckpointError(f"{path}: {_reason_from_exception(exc)}") from None


def check_dense_tensors(state: dict, path: os.PathLike | str) -> dict[str, torch.Tensor]:
    """Accept only a flat mapping of names to dense (strided) tensors."""
    if not isinstance(state, dict) or not state:
        raise CheckpointError(f"{path}: holds no weights (expected a mapping of parameter names to tensors)")
    for key, value in state.items():
        if not isinstance(key, str):
            raise CheckpointError(f"{path}: weight names must be strings, found {type(key).__name__}")
        if not isinstance(value, torch.Tensor):
            raise CheckpointError(f"{path}: entry {key!r} is a {type(value).__name__}, not a tensor")
        if value.layout != torch.strided or value.is_sparse or value.is_quantized or value.is_meta \
                or value.is_nested:
            raise CheckpointError(f"{path}: entry {key!r} is not a dense tensor ({value.layout}); "
                                  "only dense tensors are accepted")
        if value.is_complex():
            raise CheckpointError(f"{path}: entry {key!r} has unsupported dtype {value.dtype}")
    return state


def load_weights_strict(model: nn.Module, state: dict, path: os.PathLike | str, arch: str) -> nn.Module:
    """Load `state` into a freshly built `model` with strict=True, as float32 where the model is."""
    check_dense_tensors(state, path)
    own = model.state_dict()
    converted = {}
    for key, value in state.items():
        target = own.get(key)
        if target is not None and value.dtype != target.dtype and value.is_floating_point():
            value = value.to(target.dtype)
        converted[key] = value
    try:
        model.load_state_dict(converted, strict=True)
    except RuntimeError as exc:
        lines = [ln.strip() for ln in str(exc).splitlines() if ln.strip()]
        detail = "; ".join(lines[1:4]) if len(lines) > 1 else lines[0] if lines else "mismatch"
        raise CheckpointError(f"{path}: the weights do not fit architecture {arch} ({detail[:400]})") from None
    return model


def load_state_dict_file(path: os.PathLike | str) -> dict[str, torch.Tensor]:
    """A raw state dict from any .pth (ours, a wrapped one, a DataParallel one), checked to be dense."""
    from .foreign import unwrap_state_dict

    obj = safe_torch_load(path)
    if isinstance(obj, dict) and obj.get("format") == FORMAT:
        obj = obj.get("state_dict")
    return check_dense_tensors(unwrap_state_dict(obj, path), path)


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
        }

    def build_model(self, path: os.PathLike | str = "<checkpoint>") -> nn.Module:
        """A freshly built model with these weights loaded strictly, in eval mode, float32."""
        from .models import build_model

        if self.state_dict is None:
            raise CheckpointError(f"{path}: metadata only, no weights were loaded")
        try:
            model = build_model(self.arch, self.num_classes)
        except ModelError as exc:
            raise CheckpointError(f"{path}: {exc}") from None
        load_weights_strict(model, self.state_dict, path, self.arch)
        return model.eval()


def save_checkpoint(ckpt: Checkpoint, path: os.PathLike | str, *, half: bool = False) -> Path:
    """Write `ckpt` atomically. half=True stores floating-point weights as float16 (loaded as float32)."""
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
    if half:
        obj["notes"] = {**obj["notes"], "weights_dtype": "float16"}
    return atomic_write(path, lambda fh: torch.save(obj, fh))


def _parse_metadata(obj: Any, path: os.PathLike | str) -> dict[str, Any]:
    if not isinstance(obj, dict) or obj.get("format") != FORMAT:
        raise CheckpointError(f"{path}: not a {FORMAT} file (import it as a foreign state dict instead)")
    version = obj.get("format_version")
    if not isinstance(version, int) or version > FORMAT_VERSION:
        raise CheckpointError(f"{path}: format version {version!r} is newer than this app understands "
                              f"({FORMAT_VERSION}); update ResNet GUI")
    from .models import ARCHS

    arch = obj.get("arch")
    if arch not in ARCHS:
        raise CheckpointError(f"{path}: unknown architecture {arch!r}")
    names = obj.get("class_names")
    if not isinstance(names, list) or not names or not all(isinstance(n, str) for n in names):
        raise CheckpointError(f"{path}: class_names must be a non-empty list of strings")
    if obj.get("num_classes") != len(names):
        raise CheckpointError(f"{path}: num_classes {obj.get('num_classes')!r} does not match "
                              f"{len(names)} class names")
    try:
        Preprocess.from_dict(obj.get("preprocess") or {})
    except (KeyError, TypeError, ValueError) as exc:
        raise CheckpointError(f"{path}: bad preprocessing description ({exc})") from None
    meta = {k: obj.get(k) for k in METADATA_KEYS}
    for key in ("metrics", "train_config", "dataset", "notes"):
        meta[key] = meta[key] if isinstance(meta[key], dict) else {}
    return meta


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
        created=str(meta.get("created") or ""),
        app_version=str(meta.get("app_version") or ""),
        torch_version=str(meta.get("torch_version") or ""),
    )


def read_metadata(path: os.PathLike | str) -> dict[str, Any]:
    """The metadata of one of our checkpoints, memory-mapped so no weights are read from disk."""
    obj = safe_torch_load(path, mmap=True)
    meta = _parse_metadata(obj, path)
    if not isinstance(obj.get("state_dict"), dict):
        raise CheckpointError(f"{path}: holds no weights")
    return meta


def checkpoint_from_object(obj: Any, path: os.PathLike | str) -> Checkpoint:
    """A validated Checkpoint from what safe_torch_load returned for one of our files."""
    meta = _parse_metadata(obj, path)
    return _from_metadata(meta, check_dense_tensors(obj.get("state_dict"), path))


def load_checkpoint(path: os.PathLike | str) -> Checkpoint:
    """Load one of our checkpoints with its weights, validated (dense tensors only)."""
    return checkpoint_from_object(safe_torch_load(path), path)


def load_model(path: os.PathLike | str) -> tuple[Checkpoint, nn.Module]:
    ckpt = load_checkpoint(path)
    return ckpt, ckpt.build_model(path)
