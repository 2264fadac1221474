"""Layering rules: resnet_gui.core never imports Qt."""
import pkgutil
import subprocess
import sys

import resnet_gui.core


def core_modules():
    return sorted(f"resnet_gui.core.{m.name}" for m in pkgutil.iter_modules(resnet_gui.core.__path__))


def test_core_has_the_expected_modules():
    mods = set(core_modules())
    for needed in ("checkpoint", "models", "registry", "images", "predict", "foreign", "devices", "train", "data",
                   "pth", "errors", "progress"):
        assert f"resnet_gui.core.{needed}" in mods


def test_importing_every_core_module_loads_no_qt():
    code = (
        "import importlib, sys\n"
        f"for m in {core_modules()!r}: importlib.import_module(m)\n"
        "bad = sorted(n for n in sys.modules if n.split('.')[0] in "
        "('PySide6', 'shiboken6', 'PyQt5', 'PyQt6', 'pyqtgraph', 'superqt', 'qtpy') or n.startswith('resnet_gui.ui'))\n"
        "print(bad); sys.exit(1 if bad else 0)\n"
    )
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stdout + proc.stderr


def test_cli_help_does_not_import_torch():
    code = ("import sys\nfrom resnet_gui.cli import build_parser\nbuild_parser()\n"
            "import resnet_gui.core.paths, resnet_gui.core.errors\n"
            "sys.exit(1 if 'torch' in sys.modules else 0)\n")
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr
