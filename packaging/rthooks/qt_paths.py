"""Run-time hook (runs first in the frozen app): where Qt finds its plugins, without importing Qt.

It replaces PyInstaller's pyi_rth_pyside6, which imports PySide6.QtCore at every start to register a qt.conf: the
command line (`predict one.jpg`) then loaded QtCore and ICU for nothing (0.1 s and 10 MB of the process). PySide6's
wheels register that qt.conf themselves when QtCore is first imported (its prefix: the Qt folder beside PySide6's
package, the same one), so this hook keeps only the environment the stock one sets.
"""
import os
import sys


def _qt_paths() -> None:
    windows = sys.platform.startswith("win")
    qt = os.path.join(sys._MEIPASS, "PySide6") if windows else os.path.join(sys._MEIPASS, "PySide6", "Qt")
    os.environ["QT_PLUGIN_PATH"] = os.path.join(qt, "plugins")
    os.environ["QML2_IMPORT_PATH"] = os.path.join(qt, "qml")
    # as the stock hook does: OpenSSL libraries that Qt's network module loads at run time are found in the bundle
    variable = "PATH" if windows else "DYLD_LIBRARY_PATH" if sys.platform == "darwin" else None
    if variable:
        os.environ[variable] = os.pathsep.join(p for p in (sys._MEIPASS, os.environ.get(variable)) if p)


_qt_paths()
del _qt_paths
