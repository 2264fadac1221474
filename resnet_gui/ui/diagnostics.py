"""What a bug report needs (versions, device, paths), and device names in the window's words."""
from __future__ import annotations

import platform
import sys
from importlib import metadata

from resnet_gui import APP_NAME, __version__, edition
from resnet_gui.text import plural

PACKAGES = ("onnxruntime", "onnx", "torch", "torchvision", "PySide6-Essentials", "pyqtgraph", "pillow", "numpy")


def _version(package: str) -> str:
    try:
        return metadata.version(package)
    except metadata.PackageNotFoundError:
        return "not installed"


def device_label(device: str, threads: int | None = None, gpu_name: str | None = None) -> str:
    """"CPU (1 thread)", "CPU (4 threads)", "GPU: NVIDIA H100" (core's describe_device, with plurals)."""
    if device.startswith("cuda"):
        return f"GPU: {gpu_name}" if gpu_name else "GPU"
    if device == "mps":
        return "Apple GPU (MPS)"
    return f"CPU ({plural(threads, 'thread')})" if threads else "CPU"


def device_choices(devices: list[tuple[str, str]], cores: int) -> list[tuple[str, str]]:
    """The training device list with the CPU entry in words: "CPU (1 core)", "CPU (16 cores)"."""
    return [(dev, f"CPU ({plural(cores, 'core')})" if dev == "cpu" else label) for dev, label in devices]


def diagnostics_text(torch_info: dict | None) -> str:
    """Plain text to paste into a bug report."""
    from PySide6 import __version__ as pyside_version
    from PySide6.QtCore import qVersion

    from resnet_gui.core import paths

    lines = [f"{APP_NAME} {__version__} ({edition.current()} edition)",
             f"Python {sys.version.split()[0]} ({sys.executable})",
             f"Platform {platform.platform()} ({platform.machine()})",
             f"Qt {qVersion()}, PySide6 {pyside_version}"]
    lines += [f"{package} {_version(package)}" for package in PACKAGES if package != "PySide6-Essentials"]
    if torch_info:
        lines.append(f"Device: {torch_info.get('device_label', '?')} (PyTorch {torch_info.get('torch', '?')}, "
                     f"CUDA {torch_info.get('cuda') or 'none'})")
        lines.append("Devices: " + "; ".join(label for _, label in torch_info.get("devices", [])))
    elif torch_info is None:
        lines.append("Device: classifying on the CPU (ONNX Runtime); PyTorch has not loaded yet")
    else:
        lines.append("Device: classifying on the CPU (ONNX Runtime); PyTorch is not available")
    for name, fn in (("Data folder", paths.data_dir), ("Models", paths.models_dir), ("Logs", paths.log_dir),
                     ("Settings", paths.settings_file)):
        try:
            lines.append(f"{name}: {fn()}")
        except OSError as exc:
            lines.append(f"{name}: unavailable ({exc})")
    lines.append(f"Frozen build: {'yes' if getattr(sys, 'frozen', False) else 'no'}")
    return "\n".join(lines)
