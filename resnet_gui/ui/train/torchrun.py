"""Training on several GPUs: torchrun as a child process, followed through its JSON events.

    python -m torch.distributed.run --standalone --nproc_per_node=N -m resnet_gui train --config FILE \\
        --device cuda --json --stop-file PATH

A new run's settings go in FILE (TrainConfig.save(), written atomically into the child's temporary folder),
so every setting the form has reaches the processes, the list of files to leave out included; a resumed run
is `--resume NAME [--epochs N]`.

Rank 0 prints one JSON object per event on stdout (core.train.events' to_json()); they are rebuilt into the
same typed events an in-process run reports, so the plots, progress, log and banners cannot tell the two
apart. Stop creates the stop file (every rank stops after the current batch and the run's last event says
"cancelled"); a run that has not ended after a grace period is terminated, then killed.
"""
from __future__ import annotations

import dataclasses
import json
import logging
import shutil
import sys
import tempfile
from collections.abc import Callable
from pathlib import Path

from PySide6.QtCore import QObject, QProcess, QTimer, Signal

from resnet_gui.core.errors import Remedy
from resnet_gui.core.train import events as E
from resnet_gui.core.train.config import TrainConfig

from ..common.failures import Failure

log = logging.getLogger(__name__)
STOP_GRACE_MS = 120_000      # after Stop: how long the ranks get to finish their batch and save
TERMINATE_GRACE_MS = 10_000  # after terminate(): how long before kill()
STDERR_LINES = 40            # kept for the failure message and the log file

SETTINGS_FILE = "settings.json"


def resume_options(run_name: str, epochs: int | None = None) -> list[str]:
    return ["--resume", run_name] + (["--epochs", str(epochs)] if epochs else []) + ["--device", "cuda"]


def config_options(path: str) -> list[str]:
    """A new run's options: its settings (every TrainConfig field, `exclude` included) in a file, on the GPUs."""
    return ["--config", path, "--device", "cuda"]


def torchrun_command(nproc: int, train_options: list[str]) -> list[str]:
    """The child's command line (tests put a fake program here)."""
    return [sys.executable, "-m", "torch.distributed.run", "--standalone", f"--nproc_per_node={nproc}",
            "-m", "resnet_gui", "train", *train_options]


_KINDS = {cls.kind: cls for cls in E.EVENT_TYPES if isinstance(cls.__dict__.get("kind"), str)}
_ENDED = ("finished", "cancelled", "failed")


def _tuples(value):
    return tuple(_tuples(v) for v in value) if isinstance(value, list) else value


def event_from_json(obj: dict) -> E.TrainEvent | None:
    """A typed event from its to_json() form (None for an unknown kind). Lists become tuples, as in the engine's
    events (Batch.losses holds (step, loss) pairs); unknown keys are ignored, so a newer engine still works."""
    if not isinstance(obj, dict):
        return None
    kind = obj.get("event")
    cls = E.Ended if kind in _ENDED else _KINDS.get(kind)
    if cls is None:
        return None
    values = {}
    for f in dataclasses.fields(cls):
        if f.name in obj:
            value = obj[f.name]
            if isinstance(value, list) and f.name not in ("history",):
                value = _tuples(value)
            elif f.name == "history" and isinstance(value, list):
                value = tuple(v for v in value if isinstance(v, dict))
            elif f.name == "remedy":
                value = Remedy.from_json(value)
            values[f.name] = value
    if cls is E.Ended:
        values["status"] = kind
    try:
        return cls(**values)
    except TypeError:  # a required field is missing
        log.warning("ignored an incomplete %s event from the training processes", kind)
        return None


class TorchrunRun(QObject):
    """One torchrun child at a time, a job like a task slot: `progress` carries typed events, `done` a
    TrainResult (also when the processes failed or were killed), `failed` a run that could not start at all."""

    progress = Signal(object)     # core.train.events.*
    done = Signal(object)         # core.train.TrainResult
    failed = Signal(object)       # a Failure
    busy_changed = Signal(bool)   # the child runs
    output = Signal(str)          # lines that are not events (shown in the log)

    def __init__(self, parent=None, command: Callable[[int, list[str]], list[str]] = torchrun_command):
        super().__init__(parent)
        self.command = command
        self.stop_grace_ms = STOP_GRACE_MS
        self.process: QProcess | None = None
        self._stdout = b""
        self._stderr: list[str] = []
        self._ended: E.Ended | None = None
        self._history: list[dict] = []
        self._tmp: str | None = None
        self._stopping = False
        self._forced = False
        self._kill_timer = QTimer(self)
        self._kill_timer.setSingleShot(True)
        self._kill_timer.timeout.connect(self._force)

    def running(self) -> bool:
        return self.process is not None

    def start(self, nproc: int, train_options: list[str] | None = None, config: TrainConfig | None = None) -> bool:
        """Start torchrun with `train_options`, or with `config` written to a settings file (a new run)."""
        if self.running():
            return False
        self._tmp = tempfile.mkdtemp(prefix="resnet-gui-torchrun-")
        self.stop_file = str(Path(self._tmp) / "stop")
        if config is not None:
            try:
                train_options = config_options(str(config.save(Path(self._tmp) / SETTINGS_FILE)))
            except OSError as exc:
                self._cleanup(announce=False)
                self.failed.emit(Failure(f"Could not write the settings for the training processes: {exc}.", "OSError"))
                return False
        argv = self.command(nproc, [*(train_options or []), "--json", "--stop-file", self.stop_file])
        self._stdout, self._stderr, self._ended, self._history = b"", [], None, []
        self._stopping = self._forced = False
        process = QProcess(self)
        process.setProgram(argv[0])
        process.setArguments(argv[1:])
        env = process.processEnvironment()
        if env.isEmpty():
            from PySide6.QtCore import QProcessEnvironment

            env = QProcessEnvironment.systemEnvironment()
        env.insert("PYTHONUNBUFFERED", "1")
        process.setProcessEnvironment(env)
        process.readyReadStandardOutput.connect(self._read_stdout)
        process.readyReadStandardError.connect(self._read_stderr)
        process.finished.connect(self._finished)
        process.errorOccurred.connect(self._error)
        self.process = process
        log.info("starting %s", " ".join(argv))
        process.start()
        self.busy_changed.emit(True)
        return True

    def stop(self) -> None:
        """Ask every rank to stop after the current batch; terminate, then kill, if they do not."""
        if self.process is None or self._stopping:
            return
        self._stopping = True
        try:
            Path(self.stop_file).touch()
        except OSError:
            log.warning("could not create the stop file %s; terminating the training processes", self.stop_file)
            self.process.terminate()
        self._kill_timer.start(self.stop_grace_ms)

    def _force(self) -> None:
        if self.process is None:
            return
        self._forced = True
        if self.process.state() != QProcess.ProcessState.NotRunning:
            self.process.terminate()  # torchrun passes SIGTERM on to the ranks
            if not self.process.waitForFinished(TERMINATE_GRACE_MS):
                self.process.kill()

    # ---- output -----------------------------------------------------------------------------------
    def _read_stdout(self) -> None:
        if self.process is None:
            return
        self._stdout += bytes(self.process.readAllStandardOutput().data())
        *lines, self._stdout = self._stdout.split(b"\n")
        for raw in lines:
            self._line(raw.decode("utf-8", "replace").strip())

    def _line(self, line: str) -> None:
        if not line:
            return
        try:
            obj = json.loads(line) if line.startswith("{") else None
        except ValueError:
            obj = None
        ev = event_from_json(obj) if obj is not None else None
        if ev is None:
            self.output.emit(line)
            return
        if isinstance(ev, E.Started):
            self._history = [dict(h) for h in ev.history]
        elif isinstance(ev, E.Epoch):
            self._history.append({k: getattr(ev, k) for k in ("epoch", "train_loss", "train_accuracy", "val_loss",
                                                              "val_accuracy", "lr", "epoch_time_s")})
        elif isinstance(ev, E.Ended):
            self._ended = ev
            return  # becomes the result, as train()'s return value does in a worker
        self.progress.emit(ev)

    def _read_stderr(self) -> None:
        if self.process is None:
            return
        text = bytes(self.process.readAllStandardError().data()).decode("utf-8", "replace")
        for line in text.splitlines():
            if line.strip():
                log.info("torchrun: %s", line)
                self._stderr = (self._stderr + [line.strip()])[-STDERR_LINES:]

    # ---- the end ----------------------------------------------------------------------------------
    def _error(self, error) -> None:
        if error == QProcess.ProcessError.FailedToStart and self.process is not None:
            message = (f"Could not start the training processes ({self.process.program()}): "
                       f"{self.process.errorString()}.")
            self._cleanup()
            self.failed.emit(Failure(message, "FailedToStart"))

    def _finished(self, exit_code: int, _status) -> None:
        if self.process is None:
            return
        self._read_stdout()
        self._read_stderr()
        if self._stdout.strip():
            self._line(self._stdout.decode("utf-8", "replace").strip())
            self._stdout = b""
        result = self._result(exit_code)
        self._kill_timer.stop()
        self.done.emit(result)  # before busy_changed(False), as a worker's result comes before its end
        self._cleanup()

    def _result(self, exit_code: int):
        from resnet_gui.core.train import TrainResult

        ev = self._ended
        if ev is not None:
            return TrainResult(status=ev.status, message=ev.message, remedy=ev.remedy, run_name=ev.run_name,
                               best_name=ev.best_name,
                               best_path=ev.best_path, best_val_accuracy=ev.best_val_accuracy,
                               last_path=ev.last_path, epochs_done=ev.epochs_done, history=list(self._history),
                               warnings=list(ev.warnings), balanced_accuracy=ev.balanced_accuracy, balance=ev.balance)
        done = len(self._history)
        if self._forced or self._stopping:
            message = (f"Stopped the training processes by force after {self.stop_grace_ms // 1000} s"
                       if self._forced else "The training processes ended when asked to stop")
            return TrainResult(status="cancelled", message=f"{message}; the last completed epoch is saved",
                               epochs_done=done, history=list(self._history))
        why = self._stderr[-1] if self._stderr else "no message"
        return TrainResult(status="failed", epochs_done=done, history=list(self._history),
                           message=f"The training processes ended without a result (exit status {exit_code}): {why}")

    def _cleanup(self, announce: bool = True) -> None:
        self._kill_timer.stop()
        process, self.process = self.process, None
        if process is not None:
            process.deleteLater()
        if self._tmp:
            shutil.rmtree(self._tmp, ignore_errors=True)
            self._tmp = None
        if announce:
            self.busy_changed.emit(False)
