"""Start the desktop app: check that a window can open, then the window first, PyTorch in the background."""
from __future__ import annotations

import logging
import os
import sys
import time

START = time.perf_counter()
log = logging.getLogger(__name__)


def _qt_messages_to_log() -> None:
    """Qt's own warnings go to the log file as well."""
    from PySide6.QtCore import QtMsgType, qInstallMessageHandler

    levels = {QtMsgType.QtDebugMsg: logging.DEBUG, QtMsgType.QtInfoMsg: logging.INFO,
              QtMsgType.QtWarningMsg: logging.WARNING, QtMsgType.QtCriticalMsg: logging.ERROR,
              QtMsgType.QtFatalMsg: logging.CRITICAL}
    qt_log = logging.getLogger("qt")

    def handler(kind, _context, message):
        qt_log.log(levels.get(kind, logging.WARNING), "%s", message)
        if kind in (QtMsgType.QtCriticalMsg, QtMsgType.QtFatalMsg):
            print(message, file=sys.stderr)

    qInstallMessageHandler(handler)


def run_app(argv: list[str] | None = None) -> int:
    from resnet_gui.startup import display_problem, setup_logging

    setup_logging()
    from PySide6.QtWidgets import QApplication

    if QApplication.instance() is None:
        problem = display_problem()
        if problem:  # before Qt would abort (exit 134) naming the wrong package, or no display at all
            log.error("the window cannot open: %s", problem)
            print(problem, file=sys.stderr)
            return 1
    from PySide6.QtCore import QTimer
    from PySide6.QtGui import QIcon

    from resnet_gui import APP_ID, APP_NAME, __version__, resources
    from resnet_gui.core.settings import Settings

    from .predict.model_cache import prewarm
    from .registry_model import FirstListing

    settings = Settings()
    # the first model opens while the window is being built; the registry is listed once, for it and the window
    first_listing = FirstListing()
    warming = prewarm(settings.get("predict.model"), listing=first_listing)
    from .common import theme
    from .common.workers import wait_for_all
    from .main_window import MainWindow

    _qt_messages_to_log()
    log.info("%s %s starting", APP_NAME, __version__)
    app = QApplication.instance() or QApplication(argv if argv is not None else sys.argv[:1])
    app.setApplicationName(APP_NAME)
    app.setOrganizationName(APP_ID)
    app.setDesktopFileName(APP_ID)
    icon = resources.path("icons/app.png")
    if icon.exists():
        app.setWindowIcon(QIcon(str(icon)))
    theme.apply(app, settings.get("theme") or "system")
    window = MainWindow(settings, first_listing)
    window.show()
    probe = os.environ.get("RESNET_GUI_STARTUP_PROBE")
    if probe:
        # benchmarks/bench_gui.py and bench_frozen.py: report once the first frame is on screen ("exit": then quit),
        # or ("ready") once the Predict tab has its model loaded, ready to classify, then quit
        def shown():
            print(f"RESNET_GUI_WINDOW_SHOWN {time.perf_counter() - START:.3f} s after app import, "
                  f"torch_loaded={'torch' in sys.modules}", flush=True)
            if probe == "exit":
                app.quit()

        def ready(*_model):
            print(f"RESNET_GUI_MODEL_READY {time.perf_counter() - START:.3f} s after app import", flush=True)
            app.quit()
        QTimer.singleShot(0, shown)
        if probe == "ready":
            window.predict_tab.session.model_done.connect(ready)
    QTimer.singleShot(0, window.start_background_loading)
    code = app.exec()
    wait_for_all()
    # a window closed at once must not leave ONNX Runtime opening a model while Python shuts down: that aborts the
    # process ("terminate called without an active exception", exit -6)
    warming.join(timeout=120)
    return code
