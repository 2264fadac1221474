"""The one checkpoint format (see docs/checkpoint-format.md): the Checkpoint record, reading it and writing it,
with no torch import.

- `read_checkpoint(path)`: THE reader of our files, for every use (prediction, training, export, the registry):
  the record with its weights as numpy arrays (float32 for floating-point ones), validated as a whole:
  metadata types and bounds, dense tensors, names and shapes against the architecture, finite values, the
  familiarity data. Torch code makes tensors of them with `torch.from_numpy` (build.model_from_checkpoint).
- `read_checkpoint(path, weights=False)`: the same checks, for prediction from a cached graph: the weights are
  streamed through them and the fingerprint one tensor at a time and not kept (`state_dict` None, `head` holds
  fc's arrays); `read_weights(path, fingerprint)` reads them later, when a graph must be built.
- `read_checkpoint_metadata(path)`: the metadata only, for listing the registry (data.pkl and the classifier
  head are read, no other weights).
- `write_checkpoint(ckpt, path, half=False, overwrite=True)`: THE writer, atomic; numpy arrays or torch
  tensors; the file loads with `torch.load(weights_only=True)`.
"""
from __future__ import annotations

import datetime as _dt
import math
import os
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from resnet_gui import __version__

from ..atomic import atomic_write
from ..errors import CheckpointError
from ..jsonsafe import TooLarge, to_plain
from .archs import ARCHS, check_fits, feature_dim_of, state_dict_shapes
from .operating_points import clean as clean_operating_points
from .preprocess import Preprocess
from .pth_read import PthFile, is_tensor, tensor_checker, too_large
from .pth_write import write_pth
from .weights import (  # noqa: F401 - as_array: imported from here by the exporter
    as_array,
    check_entries,
    check_finite,
    crc_of,
    fingerprint,
    float32,
    stored,
    stored_crc,
    weights_fingerprint,
)

FORMAT = "resnet-gui-checkpoint"
FORMAT_VERSION = 1
METADATA_KEYS = (
    "format", "format_version", "arch", "num_classes", "class_names", "preprocess", "metrics",
    "train_config", "dataset", "created", "app_version", "torch_version", "notes", "calibration", "int8",
    "operating_points",
)
MAX_CLASSES = 25_000          # ImageNet-21k has 21,841; the head of a bigger one would not fit the memory budget
MAX_CLASS_NAME = 200
FAMILIARITY_QUANTILES = 201   # distances of validation images stored per model (inference/familiarity.py)
FAMILIARITY_INPUT_STATS = 16  # input statistics per image (inference/input_stats.py)
_INPUT_KEYS = ("input_low", "input_high", "input_scale", "input_margin")
MAX_INT8_MODEL_BYTES = 1 << 30   # the int8 graph of the largest architecture (resnext101_32x8d) is about 90 MB
_FINGERPRINTED = frozenset({"state_dict", "arch", "preprocess"})
STALE_INT8 = "the weights or the preprocessing changed after it was built; build it again"


def _now() -> str:
    return _dt.datetime.now(_dt.timezone.utc).astimezone().isoformat(timespec="seconds")


def torch_version() -> str:
    """The PyTorch version of this environment ("" without PyTorch), found without importing torch."""
    torch = sys.modules.get("torch")
    if torch is not None and hasattr(torch, "__version__"):
        return str(torch.__version__).split("+")[0]
    import importlib.metadata  # here: its import costs more than the rest of this module's

    package = "torch"  # not a literal argument: PyInstaller would bundle torch's metadata into the classify edition
    try:
        return importlib.metadata.version(package).split("+")[0]
    except importlib.metadata.PackageNotFoundError:
        return ""


@dataclass
class Checkpoint:
    arch: str
    class_names: list[str]
    preprocess: Preprocess
    state_dict: dict[str, Any] | None = None   # name -> numpy array (as read) or torch tensor (from training)
    metrics: dict[str, Any] = field(default_factory=dict)
    train_config: dict[str, Any] = field(default_factory=dict)
    dataset: dict[str, Any] = field(default_factory=dict)
    notes: dict[str, Any] = field(default_factory=dict)
    calibration: dict[str, Any] | None = None   # optional: {"temperature", "ece_before", "ece_after", ...}
    familiarity: dict[str, Any] | None = None   # optional: see inference/familiarity.py (arrays or tensors)
    familiarity_error: str | None = field(default=None, compare=False)  # why stored familiarity data was unusable
    int8: dict[str, Any] | None = None          # optional: how its int8 version was verified (inference/int8.py)
    int8_model: Any = field(default=None, repr=False, compare=False)  # that version's ONNX graph, uint8 bytes
    operating_points: dict[str, Any] | None = None  # optional: each class's own threshold (operating_points.py)
    created: str = field(default_factory=_now)
    app_version: str = __version__
    torch_version: str = field(default_factory=torch_version)
    head: dict[str, Any] | None = field(default=None, repr=False, compare=False)  # fc's arrays, read without weights
    _fingerprint: str | None = field(default=None, init=False, repr=False, compare=False)

    def __setattr__(self, name: str, value: Any) -> None:
        if name in _FINGERPRINTED:  # other weights (or what they compute from): the kept fingerprint is not theirs
            object.__setattr__(self, "_fingerprint", None)
        object.__setattr__(self, name, value)

    @property
    def fingerprint(self) -> str:
        """weights_fingerprint of this model, computed once per load (by the reader, or here at first use) and
        forgotten when state_dict, arch or preprocess is assigned: the graph cache's key and the int8 version's
        check both use it. Arrays changed in place are not noticed: assign a new state dict instead."""
        if self._fingerprint is None:
            if self.state_dict is None:
                raise ValueError("checkpoint has no weights")
            object.__setattr__(self, "_fingerprint", weights_fingerprint(self.arch, self.state_dict, self.preprocess))
        return self._fingerprint

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


# --------------------------------------------------------------------------------------------
# Writing
# --------------------------------------------------------------------------------------------
def _int8_to_save(ckpt: Checkpoint, half: bool) -> tuple[dict | None, np.ndarray | None]:
    """The int8 record and graph to write with `ckpt`: the graph only while the weights and preprocessing it was
    built from are unchanged; otherwise the record says why it was dropped."""
    if not ckpt.int8:
        return None, None
    info = dict(ckpt.int8)
    if ckpt.int8_model is None or not info.get("kept"):
        return info, None
    if info.get("fingerprint") != weights_fingerprint(ckpt.arch, ckpt.state_dict, ckpt.preprocess, half=half):
        info.update(kept=False, reason=STALE_INT8)
        return info, None
    # what the zip directory will say about these weights: the registry's listing compares it without reading them
    state = ckpt.state_dict
    info["weights_crc"] = stored_crc((key, crc_of(stored(state[key], half))) for key in sorted(state))
    blob = ckpt.int8_model
    if isinstance(blob, (bytes, bytearray, memoryview)):
        return info, np.frombuffer(bytes(blob), dtype=np.uint8)
    return info, as_array(blob).astype(np.uint8, copy=False).reshape(-1)


def write_checkpoint(ckpt: Checkpoint, path: os.PathLike | str, *, half: bool = False, overwrite: bool = True) -> Path:
    """Write `ckpt` atomically. half=True stores floating-point weights as float16 (read back as float32).
    overwrite=False raises FileExistsError instead of replacing an existing file (exclusive creation)."""
    if ckpt.state_dict is None:
        raise ValueError("checkpoint has no state_dict")
    if len(ckpt.class_names) < 1:
        raise ValueError("checkpoint needs at least one class name")
    state = {key: stored(value, half) for key, value in ckpt.state_dict.items()}
    obj = ckpt.metadata()
    obj["state_dict"] = state
    if ckpt.familiarity:
        # arrays and tensors as float32; plain values ("fitted_on", "input_margin", the "measured" record) as they are
        obj["familiarity"] = {k: (as_array(v).astype(np.float32) if isinstance(v, np.ndarray) or hasattr(v, "detach")
                                  else v) for k, v in ckpt.familiarity.items()}
    if half:
        obj["notes"] = {**obj["notes"], "weights_dtype": "float16"}
    info, blob = _int8_to_save(ckpt, half)
    obj.pop("int8", None)
    if info:
        obj["int8"] = info
    if blob is not None:
        obj["int8_model"] = blob
    return atomic_write(path, lambda fh: write_pth(obj, fh), overwrite=overwrite)


# --------------------------------------------------------------------------------------------
# Reading
# --------------------------------------------------------------------------------------------
def parse_metadata(obj: Any, path: os.PathLike | str) -> dict[str, Any]:
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
        raise CheckpointError(f"{path}: {too_large(exc)}") from None
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
    if isinstance(raw, dict):  # a summary only: the arrays are read with the weights
        meta["familiarity"] = {k: to_plain(raw.get(k)) for k in ("method", "threshold", "fitted_on")
                               if isinstance(raw.get(k), (str, int, float))}
        meta["familiarity"]["input_statistics"] = raw.get("input_low") is not None
        try:
            if isinstance(raw.get("measured"), dict):
                meta["familiarity"]["measured"] = to_plain(raw["measured"])
        except TooLarge:
            pass  # an outsized record is not shown; the model still loads
    return meta


def _weights(pth: PthFile, meta: dict) -> dict:
    """The state dict's tensor records, checked (dense, within their storage) and fitted to the architecture."""
    state = check_entries(pth.obj.get("state_dict"), pth.path, is_tensor, tensor_checker(pth.path))
    check_fits(state, state_dict_shapes(meta["arch"], len(meta["class_names"])), pth.path, meta["arch"])
    return state


def read_checkpoint_metadata(path: os.PathLike | str) -> dict[str, Any]:
    """The metadata of one of our checkpoints, without reading the weights: the weights' names and shapes are
    checked against the architecture and the classifier head's values are read to check they are finite, so a
    file listed as working really loads."""
    with PthFile(path) as pth:
        meta = parse_metadata(pth.obj, path)
        state = _weights(pth, meta)
        check_finite({k: pth.array(ref, k) for k, ref in state.items() if k.startswith("fc.")}, path)
        if _stale_int8(pth, meta, state):
            meta["int8"] = {**meta["int8"], "kept": False, "reason": STALE_INT8}
    return meta


def _dense(shape: tuple) -> tuple:
    """The strides (in elements) of a C-contiguous tensor of `shape`."""
    strides, step = [], 1
    for n in reversed(shape):
        strides.append(step)
        step *= n
    return tuple(reversed(strides))


def _stale_int8(pth: PthFile, meta: dict, state: dict) -> bool:
    """Whether the zip directory's CRC-32s of the weights' storages (no weight read) differ from those the kept int8
    version's record was written with: the file was rewritten with other weights. False when it cannot tell:
    no such record (files written before it), not a zip, a weight that is a view of a larger storage."""
    info, members = meta.get("int8"), getattr(pth, "members", None)
    if not isinstance(info, dict) or info.get("kept") is not True or not isinstance(info.get("weights_crc"), str) \
            or members is None:
        return False
    crcs = []
    for key in sorted(state):
        ref = state[key]
        member = members.get(f"{pth.prefix}data/{getattr(ref.storage, 'key', '')}")
        size = ref.dtype.itemsize * math.prod(ref.shape) if ref.dtype is not None else -1
        if member is None or ref.offset != 0 or member.file_size != size or tuple(ref.stride) != _dense(ref.shape):
            return False  # not stored the way write_checkpoint stores it: the CRCs cannot be compared
        crcs.append((key, member.CRC))
    return stored_crc(crcs) != info["weights_crc"]


def read_checkpoint(path: os.PathLike | str, *, weights: bool = True) -> Checkpoint:
    """One of our checkpoints with its weights as numpy arrays (floating point as float32), validated: metadata,
    dense tensors, names and shapes against the architecture (before any conversion), finite values. Unusable
    familiarity data is dropped, with the reason in `familiarity_error`; the model still loads.
    weights=False (prediction from a cached graph): the same checks, the weights streamed through them and the
    fingerprint one tensor at a time and not kept: `state_dict` is None and `head` holds fc's arrays (a ResNet-18
    at 224 peaks 47 MB lower)."""
    with PthFile(path) as pth:
        return checkpoint_from(pth, weights=weights)


def read_weights(path: os.PathLike | str, fingerprint: str) -> dict[str, np.ndarray]:
    """The weights of a checkpoint read before with weights=False, whose fingerprint was `fingerprint`; a
    CheckpointError when the file holds other weights now (rewritten since)."""
    ckpt = read_checkpoint(path)
    if ckpt.fingerprint != fingerprint:
        raise CheckpointError(f"{path}: the file changed while the model was being opened; open it again")
    return ckpt.state_dict


def checkpoint_from(pth: PthFile, *, weights: bool = True) -> Checkpoint:
    """read_checkpoint of a file already open (import_foreign.py opens ours and foreign state dicts alike)."""
    path = pth.path
    meta = parse_metadata(pth.obj, path)
    refs = _weights(pth, meta)
    state = fingerprint = head = None
    if weights:
        state = {k: float32(pth.array(ref, k)) for k, ref in refs.items()}
        check_finite(state, path)
    else:
        fingerprint, head = _streamed(pth, meta, refs)
    ckpt = Checkpoint(
        arch=meta["arch"], class_names=list(meta["class_names"]), preprocess=Preprocess.from_dict(meta["preprocess"]),
        state_dict=state, metrics=meta["metrics"], train_config=meta["train_config"], dataset=meta["dataset"],
        notes=meta["notes"], calibration=meta.get("calibration"), int8=meta.get("int8"),
        operating_points=meta.get("operating_points") or None, created=meta["created"],
        app_version=meta["app_version"], torch_version=meta["torch_version"], head=head)
    object.__setattr__(ckpt, "_fingerprint", fingerprint)
    raw = pth.obj.get("familiarity")
    if raw is not None:
        try:
            if not isinstance(raw, dict):
                raise ValueError("not a mapping")
            check = tensor_checker(path)
            for key, value in raw.items():
                if is_tensor(value):
                    check(f"familiarity.{key}", value)
            fam = {k: float32(pth.array(v, k)) if is_tensor(v) else v for k, v in raw.items()}
            check_familiarity(fam, num_classes=ckpt.num_classes, feature_dim=feature_dim_of(ckpt.arch))
            ckpt.familiarity = fam
        except (ValueError, CheckpointError) as exc:
            ckpt.familiarity_error = str(exc).removeprefix(f"{path}: ")
    ckpt.int8_model = _int8_model(pth, ckpt)
    return ckpt


def _streamed(pth: PthFile, meta: dict, refs: dict) -> tuple[str, dict[str, np.ndarray]]:
    """(weights_fingerprint, fc's arrays) of the file's weights, each checked finite, read one tensor at a time:
    a storage that only one tensor uses is dropped once hashed (one read per storage, as with every weight kept)."""
    users: dict[str, int] = {}
    for ref in refs.values():
        users[getattr(ref.storage, "key", "")] = users.get(getattr(ref.storage, "key", ""), 0) + 1
    head: dict[str, np.ndarray] = {}

    def arrays():
        for key in sorted(refs):
            arr = float32(pth.array(refs[key], key, keep=users[getattr(refs[key].storage, "key", "")] > 1))
            check_finite({key: arr}, pth.path)
            if key.startswith("fc."):
                head[key] = arr
            yield key, arr

    return fingerprint(meta["arch"], Preprocess.from_dict(meta["preprocess"]), arrays()), head


def _int8_model(pth: PthFile, ckpt: Checkpoint) -> np.ndarray | None:
    """The stored int8 graph (1-D uint8, within a size limit) when the record says it was kept; else None, and
    the record says why (a damaged or missing graph only loses the int8 version, never the model)."""
    raw = pth.obj.get("int8_model")
    if raw is None or not ckpt.int8 or not ckpt.int8.get("kept"):
        return None
    try:
        if not is_tensor(raw):
            raise CheckpointError("not a tensor")
        tensor_checker(pth.path)("int8_model", raw)
        if raw.dtype.name != "uint8" or len(raw.shape) != 1 or not 0 < raw.shape[0] <= MAX_INT8_MODEL_BYTES:
            raise CheckpointError("not a 1-D byte array of a sensible size")
        if ckpt.int8.get("fingerprint") != ckpt.fingerprint:
            # the file was rewritten by something other than write_checkpoint (which drops a stale graph)
            ckpt.int8 = {**ckpt.int8, "kept": False, "reason": STALE_INT8}
            return None
        return pth.array(raw, "int8_model")
    except CheckpointError as exc:
        ckpt.int8 = {**ckpt.int8, "kept": False,
                     "reason": f"its stored int8 version is damaged ({str(exc).removeprefix(f'{pth.path}: ')})"}
        return None


def _floats(value: Any) -> np.ndarray | None:
    """`value` as a floating-point numpy array (a numpy array, or a CPU torch tensor through .numpy()), or None."""
    if not isinstance(value, np.ndarray):
        try:
            value = value.detach().numpy()
        except (AttributeError, TypeError, RuntimeError):  # not a tensor; bfloat16, sparse, on a GPU
            return None
    return value if value.dtype.kind == "f" else None


def check_familiarity(obj: Any, *, num_classes: int, feature_dim: int) -> None:
    """The stored familiarity record (inference/familiarity.py) fits the model: shapes, finite values, a
    threshold in [0, 1]; its arrays are numpy arrays or torch tensors. Raises ValueError."""
    if not isinstance(obj, dict) or obj.get("method") != "mahalanobis":
        raise ValueError("unknown familiarity data")
    for name, shape in (("class_means", (num_classes, feature_dim)), ("precision", (feature_dim, feature_dim)),
                        ("quantiles", (FAMILIARITY_QUANTILES,))):
        values = _floats(obj.get(name))
        if values is None or values.shape != shape or not np.isfinite(values).all():
            raise ValueError(f"familiarity {name} must be finite numbers of shape {shape}")
    threshold = obj.get("threshold")
    if isinstance(threshold, bool) or not isinstance(threshold, (int, float)) or not 0 <= threshold <= 1:
        raise ValueError("familiarity threshold must be between 0 and 1")
    _check_input_stats(obj)


def _check_input_stats(obj: dict) -> None:
    """The optional input statistics (files written before them have none): all four keys or none,
    FAMILIARITY_INPUT_STATS finite numbers each, a positive scale, a margin >= 0."""
    present = [k for k in _INPUT_KEYS if obj.get(k) is not None]
    if not present:
        return
    if len(present) != len(_INPUT_KEYS):
        raise ValueError("familiarity input statistics are incomplete")
    for key in _INPUT_KEYS[:3]:
        values = _floats(obj[key])
        if values is None or values.shape != (FAMILIARITY_INPUT_STATS,) or not np.isfinite(values).all():
            raise ValueError(f"familiarity {key} must be {FAMILIARITY_INPUT_STATS} finite numbers")
    if not (_floats(obj["input_scale"]) > 0).all():
        raise ValueError("familiarity input_scale must be positive")
    margin = obj["input_margin"]
    if isinstance(margin, bool) or not isinstance(margin, (int, float)) or not 0 <= margin < 1e6:
        raise ValueError("familiarity input_margin must be a number >= 0")
