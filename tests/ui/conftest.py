"""Qt fixtures: a real MainWindow with PyTorch loaded, or one tab on its own made ready the way the window makes it
(for tests of one tab: no other tab, menu or status bar is built); every test must leave no worker thread running."""
import threading

import pytest
from helpers import make_checkpoint


@pytest.fixture(autouse=True)
def no_worker_threads_left(qtbot):
    yield
    from resnet_gui.ui.common.workers import running_tasks, wait_for_all

    leftover = [t.objectName() for t in running_tasks()]
    wait_for_all(60_000)  # clean up either way so one failure does not cascade
    assert not leftover, f"worker threads still running after the test: {leftover}"


@pytest.fixture
def settings():
    from resnet_gui.core.settings import Settings

    return Settings()


@pytest.fixture
def registry_dir(isolated_home):
    folder = isolated_home / "models"
    folder.mkdir(parents=True, exist_ok=True)
    return folder


@pytest.fixture
def digits_model(registry_dir):
    """A model in the registry that calls every image 'two'."""
    make_checkpoint(registry_dir / "digits.pth", favour=2, class_names=["zero", "one", "two", "three"])
    return "digits"


@pytest.fixture
def make_window(qtbot, settings):
    """Windows close at teardown the way a user closes them (workers stopped and waited for)."""
    from resnet_gui.ui.main_window import MainWindow

    made = []

    def make():
        w = MainWindow(settings)
        made.append(w)  # not qtbot.addWidget: pytest-qt would delete it before its workers are done
        w.show()
        w.start_background_loading()
        qtbot.waitUntil(w.is_ready, timeout=120_000)
        qtbot.waitUntil(lambda: w.registry.loaded, timeout=60_000)
        return w

    yield make
    for w in made:
        if w.isVisible():
            w.close()
            qtbot.waitUntil(lambda w=w: not w.isVisible(), timeout=120_000)
        w.deleteLater()


@pytest.fixture
def window(make_window):
    return make_window()


@pytest.fixture(scope="session")
def torch_info():
    """What the window's start-up finds (PyTorch imported, its devices), found once."""
    from resnet_gui.ui.main_window import load_torch_task

    return load_torch_task(None, None)


@pytest.fixture
def make_tab(qtbot, settings, torch_info):
    """make_tab("predict"): that tab alone, shown, made ready and the registry listed (the demo model installed), as
    MainWindow does (Predict and Evaluate at once, Train and Runs once PyTorch is loaded);
    at teardown its work is stopped and waited for, as closing the window does."""
    from PySide6.QtCore import QCoreApplication, QEvent

    from resnet_gui.ui.common.workers import request_stop_all, running_tasks, wait_for_all
    from resnet_gui.ui.evaluate.tab import EvaluateTab
    from resnet_gui.ui.models.tab import ModelsTab
    from resnet_gui.ui.predict.tab import PredictTab
    from resnet_gui.ui.registry_model import RegistryModel
    from resnet_gui.ui.runs.tab import RunsTab
    from resnet_gui.ui.train.tab import TrainTab

    made = []

    def make(kind: str):
        registry = RegistryModel()
        tab = {"predict": lambda: PredictTab(registry, settings), "train": lambda: TrainTab(settings),
               "runs": lambda: RunsTab(), "evaluate": lambda: EvaluateTab(registry, settings),
               "models": lambda: ModelsTab(registry, settings)}[kind]()
        registry.setParent(tab)  # goes with the tab
        made.append(tab)
        tab.resize(1200, 760)
        tab.show()
        if kind == "train":
            tab.set_ready(torch_info["devices"], torch_info.get("gpus", 0))
        elif kind in ("runs", "models"):
            tab.set_ready()
        else:
            tab.set_ready("auto")  # classifying needs no PyTorch: the window makes these ready before it
        registry.refresh()
        qtbot.waitUntil(lambda: registry.loaded, timeout=60_000)
        return tab

    yield make
    for tab in made:
        if isinstance(tab, TrainTab):
            tab.stop()
            qtbot.waitUntil(lambda tab=tab: not tab.child_running(), timeout=120_000)
        elif isinstance(tab, RunsTab):
            tab.shutdown()
        request_stop_all()
        qtbot.waitUntil(lambda: not running_tasks(), timeout=120_000)
        wait_for_all()
        tab.close()
        tab.deleteLater()
    # deleted now, not at some later test's event loop: a tab left alive kept its timers (the Train tab's health
    # re-check, 400 ms after a setting changed) and started work in the next test
    QCoreApplication.sendPostedEvents(None, QEvent.Type.DeferredDelete)


@pytest.fixture
def vague_model(registry_dir):
    """A model in the registry that is never sure: about 30 % for its top class on generated images."""
    make_checkpoint(registry_dir / "vague.pth", class_names=["zero", "one", "two", "three"])
    return "vague"


@pytest.fixture(scope="session")
def runs_template(tmp_path_factory):
    """Two real runs trained once per session (a home folder with runs/ and models/): "quick-a" finished (1 epoch,
    lr 0.05, batch 4) and "quick-b" stopped after 1 of 2 epochs (lr 0.01, batch 6), on tiny generated images."""
    import os

    from helpers import make_folder_dataset

    from resnet_gui.core.train import recipe, train

    home = tmp_path_factory.mktemp("runs-home")
    data = make_folder_dataset(tmp_path_factory.mktemp("runs-data") / "shapes", per_class=6, size=(32, 32))
    old = os.environ.get("RESNET_GUI_HOME")
    os.environ["RESNET_GUI_HOME"] = str(home)
    try:
        for name, lr, batch, epochs in (("quick-a", 0.05, 4, 1), ("quick-b", 0.01, 6, 2)):
            stop = threading.Event()
            stop_after_first = lambda ev, stop=stop: stop.set() if ev.kind == "epoch" else None  # noqa: E731
            cfg = recipe("scratch", data=str(data), arch="resnet18_cifar", epochs=epochs, batch_size=batch, lr=lr,
                         name=name, device="cpu", threads=2)
            result = train(cfg, stop_after_first if epochs > 1 else None, stop)
            assert result.epochs_done == 1, result.message
    finally:
        if old is None:
            os.environ.pop("RESNET_GUI_HOME", None)
        else:
            os.environ["RESNET_GUI_HOME"] = old
    return home


@pytest.fixture
def two_runs(runs_template, isolated_home):
    """The two runs (and their models) copied into this test's home."""
    import shutil

    for sub in ("runs", "models"):
        shutil.copytree(runs_template / sub, isolated_home / sub, dirs_exist_ok=True)
    return ["quick-a", "quick-b"]


def _one_tab(kind: str):
    @pytest.fixture(name=f"{kind}_tab")
    def one_tab(make_tab):
        return make_tab(kind)

    return one_tab


# predict_tab, train_tab, runs_tab, evaluate_tab, models_tab: make_tab("predict") … as a fixture
predict_tab, train_tab, runs_tab, evaluate_tab, models_tab = map(_one_tab, ("predict", "train", "runs", "evaluate",
                                                                            "models"))
