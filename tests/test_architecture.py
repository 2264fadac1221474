"""Layering rules (resnet_gui.core never imports Qt; the import-linter contracts), lint, dead code, and the size
of modules and folders."""
import pkgutil
import subprocess
import sys
from pathlib import Path

import resnet_gui.core

ROOT = Path(__file__).resolve().parent.parent


def core_modules():
    return sorted(m.name for m in pkgutil.walk_packages(resnet_gui.core.__path__, "resnet_gui.core."))


def test_core_has_the_expected_rooms():
    mods = set(core_modules())
    for needed in ("errors", "progress", "images", "models.checkpoint", "models.registry", "models.safe_load",
                   "inference.predictor", "evaluation.evaluate", "export.exporter", "data.folders", "train.run",
                   "train.runs"):
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


def test_the_main_window_module_loads_no_torch():
    """The window shows before PyTorch: importing it (and every tab) must not pull torch in."""
    code = ("import sys\nimport resnet_gui.ui.main_window\n"
            "bad = sorted(n for n in sys.modules if n.split('.')[0] in ('torch', 'torchvision'))\n"
            "print(bad[:5]); sys.exit(1 if bad else 0)\n")
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stdout + proc.stderr


def test_cli_help_does_not_import_torch():
    code = ("import sys\nfrom resnet_gui.cli import build_parser\nbuild_parser()\n"
            "import resnet_gui.core.paths, resnet_gui.core.errors\n"
            "sys.exit(1 if 'torch' in sys.modules else 0)\n")
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr


def _tool(name: str) -> str:
    import os

    return os.path.join(os.path.dirname(sys.executable), name)


def test_import_contracts_hold():
    """pyproject.toml's import-linter contracts: no Qt in core, ui above core, no cycles between siblings
    (imports inside functions included)."""
    proc = subprocess.run([_tool("lint-imports"), "--no-cache"], capture_output=True, text=True, timeout=300,
                          cwd=ROOT)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-2000:]
    assert "BROKEN" not in proc.stdout and proc.stdout.count("KEPT") >= 6


def test_ruff_is_clean():
    proc = subprocess.run([_tool("ruff"), "check", "resnet_gui", "tests", "benchmarks", "scripts", "packaging",
                           "tasks.py"], capture_output=True, text=True, timeout=300, cwd=ROOT)
    assert proc.returncode == 0, proc.stdout[-4000:]


def test_no_dead_code():
    proc = subprocess.run([_tool("vulture")], capture_output=True, text=True, timeout=300, cwd=ROOT)
    assert proc.returncode == 0 and not proc.stdout.strip(), proc.stdout[-4000:] + proc.stderr[-1000:]


def test_no_module_is_over_about_450_lines():
    sizes = {str(p.relative_to(ROOT)): len(p.read_text(encoding="utf-8").splitlines())
             for p in (ROOT / "resnet_gui").rglob("*.py")}
    assert not {k: v for k, v in sizes.items() if v > 470}, sorted(sizes.items(), key=lambda kv: -kv[1])[:5]


MAX_MODULES_PER_FOLDER = 15


def test_no_folder_holds_more_than_15_modules():
    """Rooms by feature: a folder's name says what it is for, and it stays small enough to read."""
    counts = {str(d.relative_to(ROOT)): sum(1 for f in d.glob("*.py") if f.name != "__init__.py")
              for d in (ROOT / "resnet_gui").rglob("*") if d.is_dir() and (d / "__init__.py").exists()}
    assert not {k: v for k, v in counts.items() if v > MAX_MODULES_PER_FOLDER}, counts
