"""The plots (pyqtgraph, half a second to import) stay off the start-up path: the window shows, and the Predict tab
loads its model, without them; each tab makes its plots when it is first opened, and their modules are imported in
a worker once the first model is ready. Each test runs a fresh process: this one has imported pyqtgraph already."""
import json
import os
import subprocess
import sys

OPENING = """
import json, sys
from PySide6.QtWidgets import QApplication
app = QApplication([])
from resnet_gui.core.settings import Settings
from resnet_gui.ui.main_window import MainWindow

w = MainWindow(Settings())
w.resize(1200, 800)
w.show()
app.processEvents()
steps = {"shown": "pyqtgraph" in sys.modules}

def step(name, page, plot):
    app.processEvents()
    made = page.made_widget()
    # made and shown (its sentence until there is something to plot), its plots pyqtgraph's
    steps[name] = ["pyqtgraph" in sys.modules, made is not None and made.isVisible() and made.height() > 100
                   and type(plot(made)).__module__.startswith("pyqtgraph")]

ev = w.evaluate_tab
w.tabs.setCurrentWidget(ev)           # opens on its Images page: no plot there
app.processEvents()
steps["evaluate"] = ["pyqtgraph" in sys.modules, ev.reliability_page.made_widget() is not None]
ev.details.setCurrentWidget(ev.reliability_page)
step("reliability", ev.reliability_page, lambda p: p.plot)
ev.details.setCurrentWidget(ev.curves_page)
step("thresholds", ev.curves_page, lambda p: p.pr_plot)
w.tabs.setCurrentWidget(w.train_tab)
step("train", w.train_tab.monitor.plots_page, lambda p: p.loss_plot)
w.tabs.setCurrentWidget(w.runs_tab)
step("runs", w.runs_tab.curves_page, lambda p: p.acc_plot)
steps["torch"] = "torch" in sys.modules
print("STEPS " + json.dumps(steps), flush=True)
w.deleteLater()
"""

PRELOAD = """
import json, sys
from PySide6.QtCore import QTimer
from PySide6.QtWidgets import QApplication
app = QApplication([])
from resnet_gui.core.settings import Settings
from resnet_gui.ui.main_window import MainWindow
from resnet_gui.ui.common.workers import wait_for_all

w = MainWindow(Settings())
w.show()
seen = {}
# connected before the window's own slot: what was imported when the first model was ready
w.predict_tab.session.model_done.connect(lambda m: seen.update(model=m.name, torch="torch" in sys.modules,
                                                              plots="pyqtgraph" in sys.modules))
w.start_background_loading()

def poll():
    preload = getattr(w, "_preload", None)
    if w.is_ready() and preload is not None and preload.isFinished():
        timer.stop()
        app.quit()

timer = QTimer()
timer.timeout.connect(poll)
timer.start(20)
app.exec()
app.processEvents()
seen["modules"] = [m for m in ("resnet_gui.ui.train.live_plots", "resnet_gui.ui.train.lr_finder_panel",
                               "resnet_gui.ui.runs.curves", "resnet_gui.ui.evaluate.curves_panel",
                               "resnet_gui.ui.evaluate.reliability_plot", "pyqtgraph") if m in sys.modules]
seen["made"] = [p.made_widget() is not None for p in (w.train_tab.monitor.plots_page, w.runs_tab.curves_page,
                                                      w.evaluate_tab.reliability_page, w.evaluate_tab.curves_page)]
seen["torch_info"] = bool(w.torch_info)
print("SEEN " + json.dumps(seen), flush=True)
w.close()
wait_for_all(60_000)
"""


def _run(code: str, marker: str, home) -> dict:
    env = dict(os.environ, QT_QPA_PLATFORM="offscreen", RESNET_GUI_HOME=str(home))
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env, timeout=300,
                          cwd=str(home))
    assert proc.returncode == 0, proc.stderr[-3000:]
    line = next(ln for ln in proc.stdout.splitlines() if ln.startswith(marker))
    return json.loads(line[len(marker):])


def test_tabs_make_their_plots_when_first_opened(tmp_path):
    steps = _run(OPENING, "STEPS ", tmp_path)
    assert steps["shown"] is False                    # the window is up without pyqtgraph
    assert steps["evaluate"] == [False, False]        # nor does the Evaluate tab's first page need it
    for name in ("reliability", "thresholds", "train", "runs"):
        assert steps[name] == [True, True], name      # opened: made and shown
    assert steps["torch"] is False


def test_after_the_first_model_torch_and_the_plots_modules_load_in_workers(tmp_path):
    seen = _run(PRELOAD, "SEEN ", tmp_path)
    assert seen["model"] and seen["torch"] is False and seen["plots"] is False  # neither delays classifying
    assert len(seen["modules"]) == 6                    # then imported, ahead of the tabs' first showing,
    assert seen["made"] == [False, False, False, False]  # but nothing is made before a tab is opened
    assert seen["torch_info"] is True                   # and PyTorch loaded for training


def test_a_window_closed_before_its_first_model_starts_nothing_more(qtbot, settings, digits_model):
    """Closed while the registry is listed and the first model opens: the model's arrival must not then start
    importing PyTorch (seconds) and the plots, which the closing window would have to wait for."""
    from resnet_gui.ui.main_window import MainWindow

    w = MainWindow(settings)
    w.show()
    w.start_background_loading()
    w.close()
    qtbot.waitUntil(lambda: not w.isVisible(), timeout=60_000)
    assert w._preload is None and w.torch_info is None
    w.deleteLater()
