"""Start the desktop app: the window first, PyTorch in the background."""
from __future__ import annotations

import logging
import logging.handlers
import os
import sys
import time

START = time.perf_counter()


def setup_logging() -> None:
    from resnet_gui.core.paths import log_dir

    try:
        handler = logging.handlers.RotatingFileHandler(log_dir() / "resnet-gui.log", maxBytes=2_000_000,
                                                       backupCount=3, encoding="utf-8")
    except OSError:
        return
    handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(name)s [%(threadName)s] %(message)s"))
    root = logging.getLogger()
    root.addHandler(handler)
    root.setLevel(logging.INFO)


def run_app(argv: list[str] | None = None) -> int:
    from PySide6.QtCore import QTimer
    from PySide6.QtGui import QIcon
    from PySide6.QtWidgets import QApplication

    from resnet_gui import APP_ID, APP_NAME, resources
    from resnet_gui.core.settings import Settings

    from . import theme
    from .main_window import MainWindow
    from .tasks import wait_for_all

    setup_logging()
    app = QApplication.instance() or QApplication(argv if argv is not None else sys.argv[:1])
    app.setApplicationName(APP_NAME)
    app.setOrganizationName(APP_ID)
    app.setDesktopFileName(APP_ID)
    icon = resources.path("icons/app.png")
    if icon.exists():
        app.setWindowIcon(QIcon(str(icon)))
    settings = Settings()
    theme.apply(app, settings.get("theme") or "system")
    window = MainWindow(settings)
    window.show()
    if os.environ.get("RESNET_GUI_STARTUP_PROBE"):
        # benchmarks/bench_gui.py: report once the first frame is on screen
        def shown():
            print(f"RESNET_GUI_WINDOW_SHOWN {time.perf_counter() - START:.3f} s after app import, "
                  f"torch_loaded={'torch' in sys.modules}", flush=True)
            if os.environ.get("RESNET_GUI_STARTUP_PROBE") == "exit":
                app.quit()
        QTimer.singleShot(0, shown)
    QTimer.singleShot(0, window.start_background_loading)
    code = app.exec()
    wait_for_all()
    return code
