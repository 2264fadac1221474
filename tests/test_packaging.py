"""Smoke test of the shipped artefact: build the PyInstaller folder, run the built binary's --self-test.

The build takes about 2-3 minutes here and ~5 GB of disk; when this test is selected, conftest.py starts it
in the background at the lowest priority as soon as the suite is collected and runs this test last, so the
build mostly uses CPU time the other tests leave idle. Select or skip it with `-m packaging` /
`-m "not packaging"`.
"""
import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
pytestmark = [pytest.mark.packaging, pytest.mark.slow]


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


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="the smoke test checks /proc for stray processes")
def test_built_executable_passes_its_self_test(tmp_path_factory, request):
    from helpers import BUILD_DISK_BYTES, BUILD_KEY

    background = request.config.stash.get(BUILD_KEY, None)  # started when the suite was collected
    if background is not None:
        out = background["out"]
        dist = out / "dist"
        try:
            code = background["proc"].wait(timeout=1500)
        except subprocess.TimeoutExpired:
            background["proc"].kill()
            raise
        log = (out / "build.log").read_text(errors="replace")
        assert code == 0, log[-8000:]
    else:
        out = tmp_path_factory.mktemp("pyinstaller")
        dist = out / "dist"
        free = shutil.disk_usage(out).free
        if free < BUILD_DISK_BYTES:
            pytest.fail(f"The PyInstaller build needs about {BUILD_DISK_BYTES / 2**30:.0f} GiB free under {out}; "
                        f"{free / 2**30:.1f} GiB are free. Free some disk space (or point TMPDIR elsewhere), or "
                        "leave this test out with -m 'not packaging'.", pytrace=False)
        build = subprocess.run([sys.executable, str(ROOT / "packaging" / "build.py"), "--dist", str(dist),
                                "--work", str(out / "work")], capture_output=True, text=True, timeout=1500)
        assert build.returncode == 0, build.stdout[-3000:] + build.stderr[-5000:]
    try:
        exe = dist / "resnet-gui" / "resnet-gui"
        assert exe.is_file()
        bundled = dist / "resnet-gui" / "_internal" / "resnet_gui" / "resources"
        assert (bundled / "models" / "digits-resnet18_cifar.pth").is_file()
        assert list((dist / "resnet-gui" / "_internal" / "torchvision").glob("_C_stable*"))
        env = {k: v for k, v in os.environ.items() if k not in ("RESNET_GUI_HOME", "PYTHONPATH")}
        env["RESNET_GUI_HOME"] = str(out / "home")
        before = sorted(p.relative_to(dist) for p in dist.rglob("*"))
        t0 = time.monotonic()
        proc = subprocess.run([str(exe), "--self-test"], capture_output=True, text=True, timeout=120, env=env,
                              cwd=out)
        elapsed = time.monotonic() - t0
        assert proc.returncode == 0, proc.stdout + proc.stderr
        for check in ("qt", "model", "predict", "export", "train", "checkpoint"):
            assert f"PASS {check}" in proc.stdout, proc.stdout
        assert "(frozen" in proc.stdout and "self-test passed" in proc.stdout
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
    finally:
        shutil.rmtree(out, ignore_errors=True)
