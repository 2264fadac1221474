"""Smoke test of the shipped artefacts: build both PyInstaller folders, run each built binary's --self-test.

The full edition (training included) takes about 3-4 minutes here and ~5 GB of disk, the classify edition (no
PyTorch) about 1.5 minutes and 0.3 GB; when these tests are selected, conftest.py starts both builds (classify
first) in one background process at the lowest priority as soon as the suite is collected and runs these tests
last, so the builds mostly use CPU time the other tests leave idle. Select or skip them with `-m packaging` /
`-m "not packaging"`.
"""
import os
import re
import shutil
import subprocess
import sys
import time
from pathlib import Path

import pytest

from resnet_gui import edition

ROOT = Path(__file__).resolve().parent.parent
pytestmark = [pytest.mark.packaging, pytest.mark.slow]
CLASSIFY_MAX_BYTES = 300 * 10**6  # the classify edition's folder (issue 24: at most 300 MB on Linux)
CHECKS = {edition.FULL: ("qt", "model", "predict", "import", "folder", "export", "train", "checkpoint"),
          edition.CLASSIFY: ("qt", "model", "predict", "import", "folder", "no-torch")}


def processes_using(folder: Path) -> list[str]:
    """Command lines of live processes whose executable or arguments point into `folder`."""
    found = []
    for proc in Path("/proc").iterdir():
        if not proc.name.isdigit():
            continue
        try:
            cmdline = (proc / "cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
            exe = os.readlink(proc / "exe")
        except OSError:
            continue
        if str(folder) in cmdline or exe.startswith(str(folder)):
            found.append(cmdline.strip())
    return found


@pytest.fixture(scope="module")
def built(tmp_path_factory, request):
    """The folder holding dist/ with both editions: from the background build when conftest.py started one,
    else built here, both editions in one process."""
    from helpers import BUILD_DISK_BYTES, BUILD_KEY

    background = request.config.stash.get(BUILD_KEY, None)  # started when the suite was collected
    if background is not None:
        out = background["out"]
        try:
            code = background["proc"].wait(timeout=1800)
        except subprocess.TimeoutExpired:
            background["proc"].kill()
            raise
        log = (out / "build.log").read_text(errors="replace")
    else:
        out = tmp_path_factory.mktemp("pyinstaller")
        free = shutil.disk_usage(out).free
        if free < BUILD_DISK_BYTES:
            pytest.fail(f"The PyInstaller builds need about {BUILD_DISK_BYTES / 2**30:.1f} GiB free under {out}; "
                        f"{free / 2**30:.1f} GiB are free. Free some disk space (or point TMPDIR elsewhere), or "
                        "leave these tests out with -m 'not packaging'.", pytrace=False)
        proc = subprocess.run([sys.executable, str(ROOT / "packaging" / "build.py"), "--edition", "classify",
                               "--edition", "full", "--dist", str(out / "dist"), "--work", str(out / "work")],
                              capture_output=True, text=True, timeout=1800)
        code, log = proc.returncode, proc.stdout + proc.stderr
    yield {"out": out, "dist": out / "dist", "code": code, "log": log}
    shutil.rmtree(out, ignore_errors=True)


def run_self_test(exe: Path, out: Path, which: str) -> str:
    dist = exe.parent.parent
    env = {k: v for k, v in os.environ.items() if k not in ("RESNET_GUI_HOME", "PYTHONPATH")}
    env["RESNET_GUI_HOME"] = str(out / f"home-{which}")
    before = sorted(p.relative_to(dist) for p in dist.rglob("*"))
    t0 = time.monotonic()
    proc = subprocess.run([str(exe), "--self-test"], capture_output=True, text=True, timeout=120, env=env, cwd=out)
    elapsed = time.monotonic() - t0
    assert proc.returncode == 0, proc.stdout + proc.stderr
    for check in CHECKS[which]:
        assert f"PASS {check} " in proc.stdout, proc.stdout
    assert f"{which} edition (frozen" in proc.stdout and "self-test passed" in proc.stdout
    assert elapsed < 120
    from hostile_helpers import free_display

    no_x = {k: v for k, v in env.items() if k not in ("QT_QPA_PLATFORM", "WAYLAND_DISPLAY")}
    no_x["DISPLAY"] = free_display()  # the frozen app checks the display the same way: a sentence, exit 1
    unreachable = subprocess.run([str(exe)], capture_output=True, text=True, timeout=120, env=no_x, cwd=out)
    assert unreachable.returncode == 1 and "has no X server answering" in unreachable.stderr, unreachable.stderr
    deadline = time.monotonic() + 10
    while processes_using(dist) and time.monotonic() < deadline:
        time.sleep(0.2)
    assert not processes_using(dist), processes_using(dist)
    assert sorted(p.relative_to(dist) for p in dist.rglob("*")) == before  # nothing written into the bundle
    return proc.stdout


def assert_predict_libraries(exe: Path, home: Path) -> None:
    """`EXE predict IMAGE` classifies without loading Qt (PyInstaller's own PySide6 run-time hook imported QtCore
    at every start: 0.1 s and 10 MB of each command) and hashes the weights with OpenSSL's sha256 (Python's own is
    3.7x slower: 0.1 s of each command), seen in the libraries the dynamic loader opened."""
    sample = exe.parent / "_internal" / "resnet_gui" / "resources" / "samples" / "digit_0_1157.png"
    env = {k: v for k, v in os.environ.items() if k not in ("RESNET_GUI_HOME", "PYTHONPATH")}
    proc = subprocess.run([str(exe), "predict", str(sample)], capture_output=True, text=True, timeout=120,
                          env=dict(env, RESNET_GUI_HOME=str(home), LD_DEBUG="files"))
    assert proc.returncode == 0 and "digit_0_1157.png" in proc.stdout, proc.stdout + proc.stderr[-4000:]
    opened = {Path(name).name for name in re.findall(r"file=(\S+)", proc.stderr)}
    # the loader's report was read: ONNX Runtime, which classified, is in it
    assert "onnxruntime_pybind11_state" in {name.split(".")[0] for name in opened}, sorted(opened)
    assert not [name for name in opened if name.startswith(("libQt6", "QtCore", "libpyside6"))], sorted(opened)
    assert "_hashlib" in {name.split(".")[0] for name in opened} and any(n.startswith("libcrypto") for n in opened), \
        sorted(opened)


def built_executable(built, which: str) -> Path:
    name = edition.executable_name(which)
    exe = built["dist"] / name / name
    assert exe.is_file(), built["log"][-8000:]
    assert f"built {exe} ({which} edition)" in built["log"], built["log"][-8000:]
    bundled = exe.parent / "_internal" / "resnet_gui" / "resources"
    assert (bundled / "models" / "digits-resnet18_cifar.pth").is_file()
    return exe


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="the smoke test checks /proc for stray processes")
def test_the_classify_edition_is_small_has_no_pytorch_and_passes_its_self_test(built):
    exe = built_executable(built, edition.CLASSIFY)
    internal = exe.parent / "_internal"
    files = [p for p in exe.parent.rglob("*") if p.is_file() and not p.is_symlink()]
    size = sum(p.stat().st_size for p in files)
    assert size <= CLASSIFY_MAX_BYTES, f"{size / 1e6:.0f} MB"
    heavy = sorted({str(p.relative_to(internal)).split(os.sep)[0] for p in internal.rglob("*")
                    if p.name.split(".")[0].lower().startswith(("torch", "triton", "nvidia", "libtorch", "libcudnn",
                                                                 "libcublas", "libnccl", "cuda"))})
    assert not heavy, heavy
    # the modules the widgets use (QtOpenGL and QtOpenGLWidgets: pyqtgraph imports them unconditionally)
    assert sorted(p.name.split(".")[0] for p in (internal / "PySide6").glob("Qt*.so")) == \
        ["QtCore", "QtGui", "QtOpenGL", "QtOpenGLWidgets", "QtWidgets"]
    assert not [p for p in internal.rglob("*") if p.is_symlink() and not p.exists()]  # no link left dangling
    stdout = run_self_test(exe, built["out"], edition.CLASSIFY)
    assert "tabs Predict, Train, Evaluate, Models" in stdout
    assert_predict_libraries(exe, built["out"] / "home-predict")
    proc = subprocess.run([str(exe), "train", "--dataset", "cifar10"], capture_output=True, text=True, timeout=60,
                          env=dict(os.environ, RESNET_GUI_HOME=str(built["out"] / "home-train")))
    assert proc.returncode == 2 and edition.TRAINING_ELSEWHERE in proc.stderr, proc.stdout + proc.stderr


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="the smoke test checks /proc for stray processes")
def test_the_full_edition_passes_its_self_test(built):
    exe = built_executable(built, edition.FULL)
    assert list((exe.parent / "_internal" / "torchvision").glob("_C_stable*"))
    stdout = run_self_test(exe, built["out"], edition.FULL)
    assert "tabs Predict, Train, Runs, Evaluate, Models" in stdout
