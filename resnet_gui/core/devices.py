"""Device choice: CUDA, then Apple MPS, then the CPU, unless the user names one."""
from __future__ import annotations

import os
import re

import torch

from .errors import DeviceError, Remedy

DEVICE_CHOICES_HELP = "auto, cpu, cuda, cuda:N or mps"



def _mps_available() -> bool:
    mps = getattr(torch.backends, "mps", None)
    return bool(mps is not None and mps.is_available())


def cpu_has_native_bf16() -> bool:
    """Whether this CPU computes bfloat16 natively (AVX512-BF16 or AMX): autocast pays off only then."""
    cpu = getattr(torch, "cpu", None)
    checks = [getattr(cpu, "_is_avx512_bf16_supported", None), getattr(cpu, "_is_amx_tile_supported", None)]
    return any(fn() for fn in checks if fn is not None)


def available_devices() -> list[tuple[str, str]]:
    """(device string, human description) for every device that really works here, best first."""
    out: list[tuple[str, str]] = []
    if torch.cuda.is_available():
        for i in range(torch.cuda.device_count()):
            out.append((f"cuda:{i}", f"GPU {i}: {torch.cuda.get_device_name(i)}"))
    if _mps_available():
        out.append(("mps", "Apple GPU (MPS)"))
    out.append(("cpu", f"CPU ({os.cpu_count() or 1} cores)"))
    return out


def resolve_device(spec: str | torch.device | None = "auto") -> torch.device:
    """'auto' (or None) picks CUDA, then MPS, then CPU; otherwise the named device, checked to exist."""
    if isinstance(spec, torch.device):
        spec = str(spec)
    spec = (spec or "auto").strip().lower()
    if spec == "auto":
        if torch.cuda.is_available():
            return torch.device("cuda", torch.cuda.current_device())
        if _mps_available():
            return torch.device("mps")
        return torch.device("cpu")
    if spec == "cpu":
        return torch.device("cpu")
    if spec == "mps":
        if not _mps_available():
            raise DeviceError("MPS (Apple GPU) is not available on this machine", remedy=Remedy("device"))
        return torch.device("mps")
    m = re.fullmatch(r"cuda(?::(\d+))?", spec)
    if m:
        if not torch.cuda.is_available():
            raise DeviceError("CUDA is not available here (no NVIDIA GPU, or a CPU-only PyTorch)",
                              remedy=Remedy("device"))
        index = int(m.group(1) or 0)
        if index >= torch.cuda.device_count():
            raise DeviceError(f"there is no GPU cuda:{index} (this machine has {torch.cuda.device_count()})")
        return torch.device("cuda", index)
    raise DeviceError(f"unknown device {spec!r}; use {DEVICE_CHOICES_HELP}")


def describe_device(device: torch.device) -> str:
    if device.type == "cuda":
        return f"GPU: {torch.cuda.get_device_name(device)}"
    if device.type == "mps":
        return "Apple GPU (MPS)"
    return f"CPU ({torch.get_num_threads()} threads)"
