"""workers.Task and TaskSlot: nothing arrives after cancel(), a Cancelled exception is a quiet end, failures
become one sentence (and are logged), and a superseded task can never deliver."""
import logging
import threading

from resnet_gui.core.errors import Cancelled, DatasetError
from resnet_gui.ui.common.workers import Task, TaskSlot, running_tasks


def gated(report, stop, gate: threading.Event, value):
    report(f"started {value}")
    gate.wait(30)
    report(f"late event {value}")
    return value


def test_no_result_and_no_event_after_cancel(qtbot):
    gate = threading.Event()
    task = Task(gated, gate, "old")
    got = []
    task.progress.connect(got.append)
    task.done.connect(lambda v: got.append(("result", v)))
    with qtbot.waitSignal(task.progress, timeout=10_000):
        task.start()
    task.cancel()
    assert task.stop.is_set()
    with qtbot.waitSignal(task.finished, timeout=10_000):
        gate.set()
    qtbot.waitUntil(lambda: not running_tasks(), timeout=10_000)
    assert got == ["started old"]


def test_request_stop_still_delivers_the_result(qtbot):
    gate = threading.Event()
    task = Task(gated, gate, "kept")
    with qtbot.waitSignal(task.progress, timeout=10_000):
        task.start()
    task.request_stop()
    with qtbot.waitSignal(task.done, timeout=10_000) as blocker:
        gate.set()
    assert blocker.args == ["kept"]
    qtbot.waitUntil(lambda: not running_tasks(), timeout=10_000)


def test_cancelled_exception_is_a_quiet_end_and_errors_are_sentences(qtbot, caplog):
    def stops(report, stop):
        raise Cancelled()

    def fails(report, stop):
        raise DatasetError("class folder /x has no images")

    quiet = Task(stops)
    heard = []
    quiet.failed.connect(heard.append)
    quiet.done.connect(heard.append)
    with qtbot.waitSignal(quiet.finished, timeout=10_000):
        quiet.start()
    qtbot.waitUntil(lambda: not running_tasks(), timeout=10_000)
    assert heard == []
    failing = Task(fails, name="scan")
    with caplog.at_level(logging.WARNING), qtbot.waitSignal(failing.failed, timeout=10_000) as blocker:
        failing.start()
    assert blocker.args[0].message == "Class folder /x has no images." and blocker.args[0].kind == "DatasetError"
    assert any(r.exc_info and "scan" in r.getMessage() for r in caplog.records)  # with its traceback
    qtbot.waitUntil(lambda: not running_tasks(), timeout=10_000)


def test_slot_cancels_and_disconnects_the_superseded_task(qtbot):
    slot = TaskSlot("test")
    first_gate, second_gate = threading.Event(), threading.Event()
    results, events = [], []
    slot.start(gated, first_gate, "first", on_done=results.append, on_progress=events.append)
    qtbot.waitUntil(lambda: events == ["started first"], timeout=10_000)
    second = slot.start(gated, second_gate, "second", on_done=results.append, on_progress=events.append)
    first_gate.set()  # the first one finishes after it was superseded
    qtbot.waitUntil(lambda: len(running_tasks()) == 1, timeout=10_000)
    with qtbot.waitSignal(second.finished, timeout=10_000):
        second_gate.set()
    qtbot.waitUntil(lambda: not slot.busy(), timeout=10_000)
    assert results == ["second"]
    assert "late event first" not in events and events[-1] == "late event second"


def test_slot_signals_carry_the_current_task_only(qtbot):
    """started, progress, done and busy_changed come from the slot, whichever task it runs: a superseded
    task's late progress and result never reach them."""
    slot = TaskSlot("test")
    heard = []
    slot.started.connect(lambda: heard.append("started"))
    slot.progress.connect(lambda v: heard.append(("progress", v)))
    slot.done.connect(lambda v: heard.append(("done", v)))
    slot.failed.connect(lambda m: heard.append(("failed", m)))
    slot.busy_changed.connect(lambda busy: heard.append(("busy", busy)))
    first_gate, second_gate = threading.Event(), threading.Event()
    slot.start(gated, first_gate, "first")
    qtbot.waitUntil(lambda: ("progress", "started first") in heard, timeout=10_000)
    second = slot.start(gated, second_gate, "second")
    first_gate.set()
    qtbot.waitUntil(lambda: len(running_tasks()) == 1, timeout=10_000)
    with qtbot.waitSignal(slot.busy_changed, timeout=10_000, check_params_cb=lambda busy: not busy):
        second_gate.set()
    assert second.isFinished() or second.wait(10_000)
    assert heard == ["started", ("busy", True), ("progress", "started first"),
                     ("busy", False), "started", ("busy", True),  # the first was cancelled when the second began
                     ("progress", "started second"), ("progress", "late event second"), ("done", "second"),
                     ("busy", False)]

    def fails(report, stop):
        raise DatasetError("no images")

    with qtbot.waitSignal(slot.failed, timeout=10_000) as blocker:
        slot.start(fails)
    assert blocker.args[0].message == "No images."
    qtbot.waitUntil(lambda: not slot.busy(), timeout=10_000)


def test_a_task_ending_after_its_slot_was_deleted_raises_nothing(qtbot):
    """A tab deleted (a closed window, a test's teardown) while its slot's task was ending: the task's queued
    `finished` reached the deleted slot through a lambda, and the event loop raised "Signal source has been
    deleted" in whatever ran next."""
    from PySide6.QtCore import QCoreApplication, QEvent, QObject

    owner = QObject()
    slot = TaskSlot("test", owner)
    gate = threading.Event()
    task = slot.start(gated, gate, "only")
    owner.deleteLater()
    QCoreApplication.sendPostedEvents(None, QEvent.Type.DeferredDelete)  # the slot goes with its owner
    gate.set()
    assert task.wait(10_000)
    QCoreApplication.processEvents()  # delivers the queued `finished`: nothing may be raised by it
    qtbot.waitUntil(lambda: not running_tasks(), timeout=10_000)
