"""Shared fixtures. Every test gets its own RESNET_GUI_HOME and TORCH_HOME; nothing reaches the network."""
from __future__ import annotations

import contextlib
import os
import shutil
import socket
import sys
from pathlib import Path

import pytest

os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")
ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(Path(__file__).resolve().parent))


_PASSED = pytest.StashKey[dict]()


# Shiboken prints this, on stderr only, when a value cannot become the C++ type a signal or a call wants (a bool
# emitted through Signal(str) arrives as ""): neither a Python warning nor a Qt message, so it is looked for here.
SHIBOKEN_CONVERSION = "_pythonToCppCopy"


@pytest.hookimpl(wrapper=True, tryfirst=True)
def pytest_runtest_makereport(item, call):
    report = yield
    stderr = f"Captured stderr {report.when}"
    if report.passed and any(SHIBOKEN_CONVERSION in text for name, text in report.sections if name == stderr):
        report.outcome = "failed"
        report.longrepr = (f"{SHIBOKEN_CONVERSION} on stderr: a value of the wrong type went through a signal or a "
                           "Qt call (see the captured stderr)")
    item.stash.setdefault(_PASSED, {})[report.when] = report.passed
    return report


@pytest.fixture(autouse=True)
def isolated_home(request, tmp_path_factory, monkeypatch):
    home = tmp_path_factory.mktemp("home")
    monkeypatch.setenv("RESNET_GUI_HOME", str(home))
    monkeypatch.setenv("TORCH_HOME", str(home / "torch"))
    yield home
    # Like tmp_path under `tmp_path_retention_policy = "failed"` (pyproject.toml): a passed test's home goes at
    # once, so the suite's disk use stays that of one test, not the sum of all (runs leave model files behind);
    # a failed test's home stays for a look.
    if request.node.stash.get(_PASSED, {}).get("call", False):
        shutil.rmtree(home, ignore_errors=True)


class NetworkBlocked(OSError):
    pass


@pytest.fixture(autouse=True)
def no_network(monkeypatch):
    """Any attempt to open an internet connection fails at once, as it would offline."""
    real_connect = socket.socket.connect

    def guarded(self, address):
        if self.family in (socket.AF_INET, socket.AF_INET6):
            host = address[0]
            if host not in ("127.0.0.1", "::1", "localhost"):
                raise NetworkBlocked(f"network access blocked in tests ({address})")
        return real_connect(self, address)

    monkeypatch.setattr(socket.socket, "connect", guarded)

    real_getaddrinfo = socket.getaddrinfo

    def loopback_only(host, *args, **kwargs):
        if host not in ("127.0.0.1", "::1", "localhost"):
            raise socket.gaierror(f"DNS blocked in tests ({host})")
        return real_getaddrinfo(host, *args, **kwargs)

    monkeypatch.setattr(socket, "getaddrinfo", loopback_only)


@pytest.fixture(scope="session")
def cifar_checkpoint_file(tmp_path_factory) -> Path:
    """One resnet18_cifar checkpoint in our format (10 classes, random weights), made once."""
    from helpers import make_checkpoint

    path = tmp_path_factory.mktemp("ckpt") / "tiny.pth"
    make_checkpoint(path)
    return path


# ---- the PyInstaller builds start in the background at once ---------------------------------------------
# Each build is mostly one Python process analysing imports and copying files; run at the lowest priority
# while the rest of the suite runs, they use the CPU time the tests leave idle (subprocess start-ups, file
# work, Qt waits) instead of adding their minutes at the end. One process builds the classify edition, then
# the full one; tests/test_packaging.py waits for it.


def _lowest_priority() -> None:
    """In the build's process before it starts: lowest CPU priority; on Linux, killed with pytest (a pytest
    killed outright never reaches pytest_unconfigure; PyInstaller, its child, then runs to its end)."""
    os.nice(19)
    if sys.platform.startswith("linux"):
        import ctypes

        ctypes.CDLL(None, use_errno=True).prctl(1, 9)  # PR_SET_PDEATHSIG, SIGKILL


@pytest.hookimpl(trylast=True)  # after -m / -k deselection
def pytest_collection_modifyitems(session, config, items):
    packaging = [item for item in items if item.get_closest_marker("packaging")]
    if not packaging or config.getoption("collectonly"):
        return
    items[:] = [item for item in items if item not in packaging] + packaging  # last: the build has had time
    import subprocess
    import tempfile

    from helpers import BUILD_DISK_BYTES, BUILD_KEY

    # Beside the other tests only where the disk holds both; otherwise the packaging test builds at the end,
    # when the other tests' files are gone.
    if shutil.disk_usage(tempfile.gettempdir()).free < BUILD_DISK_BYTES + 4 * 2**30:
        return
    out = Path(tempfile.mkdtemp(prefix="resnet-gui-build-"))
    log = open(out / "build.log", "w")  # noqa: SIM115 - closed when the build is collected
    cmd = [sys.executable, str(ROOT / "packaging" / "build.py"), "--edition", "classify", "--edition", "full",
           "--dist", str(out / "dist"), "--work", str(out / "work")]
    posix = hasattr(os, "killpg")  # its own process group: PyInstaller and its helpers go with it
    proc = subprocess.Popen(cmd, stdout=log, stderr=subprocess.STDOUT, cwd=ROOT, start_new_session=posix,
                            preexec_fn=_lowest_priority if posix else None)
    config.stash[BUILD_KEY] = {"proc": proc, "out": out, "log": log}


def pytest_unconfigure(config):
    from helpers import BUILD_KEY

    build = config.stash.get(BUILD_KEY, None)
    if build is None:
        return
    if hasattr(os, "killpg"):  # the run ended early, or helpers of a finished build linger: not needed any more
        import signal

        with contextlib.suppress(OSError):
            os.killpg(build["proc"].pid, signal.SIGKILL)
    elif build["proc"].poll() is None:
        build["proc"].kill()
    build["proc"].wait()
    build["log"].close()
    shutil.rmtree(build["out"], ignore_errors=True)
