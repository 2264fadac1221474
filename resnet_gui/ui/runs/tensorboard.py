"""Open in TensorBoard: start `tensorboard --logdir <run>/tensorboard --port <free port> --host 127.0.0.1` as a
child process, wait until it answers, open the browser; stop it when the app closes.

Several runs at once go to one TensorBoard through --logdir_spec name:folder,… (each run under its own name);
TensorBoard splits that at every comma and cannot quote one, so when a folder's path holds a comma it gets one
folder instead: a temporary folder of links named after the runs.
When the tensorboard package is missing, the failure (kind NOT_INSTALLED) says what to install and the command to
run by hand.
One TensorBoard at a time: asking for the same runs again only opens the browser again.
"""
from __future__ import annotations

import logging
import shutil
import socket
import sys
import tempfile
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from PySide6.QtCore import QObject, QProcess, QUrl, Signal
from PySide6.QtGui import QDesktopServices

from resnet_gui.core.paths import runs_dir

from ..common.failures import Failure
from ..common.workers import TaskSlot

log = logging.getLogger(__name__)
INSTALL = 'pip install "resnet-gui[tensorboard]"'
START_TIMEOUT_S = 120.0      # TensorBoard loads its plugins first: seconds on a slow machine
OUTPUT_LINES = 20
NOT_INSTALLED = "not installed"   # the kind of failure that is no error: the package is missing


@dataclass(frozen=True)
class Plan:
    available: bool                    # the tensorboard package can be imported
    logdirs: dict                      # run name -> its TensorBoard folder (the ones that exist)
    missing: tuple[str, ...]           # runs without TensorBoard files
    command: str                       # what to type in a terminal


def plan_task(report, stop, names: list[str]) -> Plan:
    from resnet_gui.core.train import tensorboard

    folders = {name: tensorboard.logdir(name) for name in names}
    existing = {name: str(folder) for name, folder in folders.items() if folder.is_dir()}
    missing = tuple(name for name in names if name not in existing)
    if len(names) == 1:
        command = tensorboard.command(names[0])
    elif any("," in str(folder) for folder in folders.values()):  # a spec would split there: all the runs
        command = f"tensorboard --logdir \"{runs_dir()}\""
    else:
        command = "tensorboard --logdir_spec \"" + ",".join(f"{n}:{folders[n]}" for n in names) + "\""
    return Plan(tensorboard.available(), existing, missing, command)


def logdir_arguments(logdirs: dict[str, str], links: Callable[[], Path]) -> list[str]:
    """TensorBoard's arguments for these runs (name -> folder). Run names never hold a comma or a colon
    (core.names); a folder's path may: then `links()` gives an empty folder, filled with one link per run."""
    if len(logdirs) == 1:
        return ["--logdir", next(iter(logdirs.values()))]
    if not any("," in folder for folder in logdirs.values()):
        return ["--logdir_spec", ",".join(f"{name}:{folder}" for name, folder in logdirs.items())]
    folder = links()
    for name, target in logdirs.items():
        (folder / name).symlink_to(target, target_is_directory=True)
    return ["--logdir", str(folder), "--load_fast", "false"]  # the Python loader follows the links


def wait_task(report, stop, port: int, timeout_s: float) -> str:
    """Poll http://127.0.0.1:port/ until it answers (any HTTP status)."""
    import http.client
    import time

    from resnet_gui.core.errors import Cancelled, ResnetGuiError

    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if stop.is_set():
            raise Cancelled()
        connection = http.client.HTTPConnection("127.0.0.1", port, timeout=2)
        try:
            connection.request("GET", "/")
            connection.getresponse().read(1)
            return f"http://127.0.0.1:{port}/"
        except OSError:
            stop.wait(0.25)
        finally:
            connection.close()
    raise ResnetGuiError(f"TensorBoard did not answer on port {port} within {timeout_s:.0f} s")


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def tensorboard_program() -> list[str]:
    """TensorBoard from this Python (its package was found importable here)."""
    return [sys.executable, "-m", "tensorboard.main"]


class TensorBoardLauncher(QObject):
    done = Signal(str)            # the URL opened in the browser
    failed = Signal(object)       # a Failure; kind NOT_INSTALLED: what to install and the command, in sentences
    busy_changed = Signal(bool)   # starting (from the request until the browser opens)

    def __init__(self, parent=None, program: Callable[[], list[str]] = tensorboard_program):
        super().__init__(parent)
        self.program = program
        self.start_timeout_s = START_TIMEOUT_S
        self.process: QProcess | None = None
        self.url: str | None = None
        self._logdirs: dict = {}
        self._output: list[str] = []
        self._plan = TaskSlot("tensorboard-plan", self)
        self._wait = TaskSlot("tensorboard-wait", self)
        self._busy = False
        self._links: Path | None = None   # the folder of links given to TensorBoard, when one was needed

    def busy(self) -> bool:
        return self._busy

    def _set_busy(self, busy: bool) -> None:
        if busy != self._busy:
            self._busy = busy
            self.busy_changed.emit(busy)

    def running(self) -> bool:
        return self.process is not None

    def open(self, names: list[str]) -> None:
        if not names:
            return
        self._set_busy(True)
        self._plan.start(plan_task, list(names), on_done=self._planned, on_failed=self._fail)

    def _fail(self, failure: Failure) -> None:
        self._set_busy(False)
        self.failed.emit(failure)

    def _planned(self, plan: Plan) -> None:
        if not plan.available:
            self._fail(Failure(f"TensorBoard is not installed. Install it with {INSTALL}, then open it again here, or "
                               f"run this in a terminal: {plan.command}", NOT_INSTALLED))
            return
        if not plan.logdirs:
            have = "has" if len(plan.missing) == 1 else "have"
            self._fail(Failure(f"{', '.join(plan.missing)} {have} no TensorBoard files (the run was trained before "
                               "TensorBoard was installed).", "no files"))
            return
        if self.process is not None and plan.logdirs == self._logdirs and self.url:
            self._open_browser(self.url)  # already running for these runs
            return
        self.stop()
        port = free_port()
        try:
            where = logdir_arguments(plan.logdirs, self._links_folder)
        except OSError as exc:  # links not allowed here (Windows without the privilege)
            self._remove_links()
            self._fail(Failure(f"A run's folder holds a comma, which TensorBoard cannot take in a list of runs, and no "
                               f"links could be made ({exc.strerror or exc}): open the runs one at a time.", "links"))
            return
        argv = [*self.program(), *where, "--port", str(port), "--host", "127.0.0.1"]
        process = QProcess(self)
        process.setProcessChannelMode(QProcess.ProcessChannelMode.MergedChannels)
        process.setProgram(argv[0])
        process.setArguments(argv[1:])
        process.readyReadStandardOutput.connect(self._read)
        process.finished.connect(self._ended)
        process.errorOccurred.connect(self._error)
        self.process, self._logdirs, self.url, self._output = process, dict(plan.logdirs), None, []
        log.info("starting %s", " ".join(argv))
        process.start()
        self._wait.start(wait_task, port, self.start_timeout_s, on_done=self._answered, on_failed=self._not_answering)

    def _read(self) -> None:
        if self.process is not None:
            text = bytes(self.process.readAllStandardOutput().data()).decode("utf-8", "replace")
            self._output = (self._output + [line for line in text.splitlines() if line.strip()])[-OUTPUT_LINES:]

    def _answered(self, url: str) -> None:
        self.url = url
        self._open_browser(url)

    def _open_browser(self, url: str) -> None:
        self._set_busy(False)
        QDesktopServices.openUrl(QUrl(url))
        self.done.emit(url)

    def _not_answering(self, failure: Failure) -> None:
        self.stop()
        self._fail(failure)

    def _error(self, error) -> None:
        if error == QProcess.ProcessError.FailedToStart and self.process is not None:
            message = f"TensorBoard could not be started ({self.process.errorString()})."
            self._forget()
            self._fail(Failure(message, "FailedToStart"))

    def _ended(self, exit_code: int, _status) -> None:
        """TensorBoard ended by itself (stop() forgets the process first, so this is not heard then)."""
        self._read()
        waiting = self._wait.busy()
        self._forget()
        if waiting:
            why = self._output[-1] if self._output else f"exit status {exit_code}"
            self._fail(Failure(f"TensorBoard ended before it answered: {why}", "ended"))

    def _links_folder(self) -> Path:
        self._links = Path(tempfile.mkdtemp(prefix="resnet-gui-tensorboard-"))
        return self._links

    def _remove_links(self) -> None:
        if self._links is not None:
            shutil.rmtree(self._links, ignore_errors=True)  # the links only: rmtree never follows them
            self._links = None

    def _forget(self) -> QProcess | None:
        """Stop listening to the child (and waiting for it); the caller ends it when it still runs."""
        self._wait.cancel()
        self._remove_links()
        process, self.process, self.url, self._logdirs = self.process, None, None, {}
        if process is not None:
            process.finished.disconnect(self._ended)
            process.errorOccurred.disconnect(self._error)
            process.deleteLater()
        return process

    def stop(self) -> None:
        """End the TensorBoard child (the app closes, or other runs are shown)."""
        process = self._forget()
        if process is not None and process.state() != QProcess.ProcessState.NotRunning:
            process.terminate()
            if not process.waitForFinished(3000):
                process.kill()
                process.waitForFinished(2000)
