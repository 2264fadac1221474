"""Qt fixtures: a real MainWindow with PyTorch loaded; every test must leave no worker thread running."""
import pytest
from helpers import make_checkpoint


@pytest.fixture(autouse=True)
def no_worker_threads_left(qtbot):
    yield
    from resnet_gui.ui.workers import running_tasks, wait_for_all

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


@pytest.fixture
def vague_model(registry_dir):
    """A model in the registry that is never sure: about 30 % for its top class on generated images."""
    make_checkpoint(registry_dir / "vague.pth", class_names=["zero", "one", "two", "three"])
    return "vague"
