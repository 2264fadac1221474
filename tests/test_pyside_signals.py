"""Regression: PySide6 6.12.0 on Python 3.11 aborts ("Fatal Python error: bool_dealloc") after a few
hundred signals emitted from a worker thread. We pin PySide6 < 6.12; this proves the pinned one holds."""
import subprocess
import sys
import textwrap

SCRIPT = textwrap.dedent("""
    import sys
    from PySide6.QtCore import QCoreApplication, QObject, QThread, Signal, Slot, Qt

    N = 20000

    class Emitter(QObject):
        value = Signal(int, float)
        done = Signal()

        @Slot()
        def run(self):
            for i in range(N):
                self.value.emit(i, i * 0.5)
            self.done.emit()

    class Receiver(QObject):
        def __init__(self):
            super().__init__()
            self.count = 0

        @Slot(int, float)
        def on_value(self, i, x):
            self.count += 1
            if self.count == N:
                app.quit()

    app = QCoreApplication(sys.argv)
    thread = QThread()
    emitter, receiver = Emitter(), Receiver()
    emitter.moveToThread(thread)
    emitter.value.connect(receiver.on_value, Qt.QueuedConnection)
    thread.started.connect(emitter.run)
    thread.start()
    app.exec()
    thread.quit(); thread.wait()
    print("received", receiver.count)
    sys.exit(0 if receiver.count == N else 3)
""")


def test_twenty_thousand_queued_signals_from_a_qthread(tmp_path):
    proc = subprocess.run([sys.executable, "-c", SCRIPT], capture_output=True, text=True, timeout=300,
                          env={**__import__("os").environ, "QT_QPA_PLATFORM": "offscreen"})
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert "received 20000" in proc.stdout


def test_installed_pyside6_is_below_6_12():
    import PySide6

    major, minor = (int(x) for x in PySide6.__version__.split(".")[:2])
    assert (major, minor) < (6, 12), PySide6.__version__


TASK_SCRIPT = textwrap.dedent("""
    import sys
    from PySide6.QtCore import QCoreApplication

    from resnet_gui.ui.common.workers import Task, wait_for_all

    N = 20000
    app = QCoreApplication(sys.argv)
    got = []

    def many(report, stop):
        for i in range(N):
            report((i, i * 0.5))
        return N

    task = Task(many, name="many")
    task.progress.connect(got.append)
    task.done.connect(lambda n: app.quit())
    task.start()
    app.exec()
    wait_for_all()
    print("received", len(got))
    sys.exit(0 if len(got) == N else 3)
""")


def test_twenty_thousand_events_through_the_apps_task_relay():
    """workers.Task relays every worker signal once more in the GUI thread; the pinned PySide6 holds that too."""
    proc = subprocess.run([sys.executable, "-c", TASK_SCRIPT], capture_output=True, text=True, timeout=300,
                          env={**__import__("os").environ, "QT_QPA_PLATFORM": "offscreen"})
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert "received 20000" in proc.stdout
