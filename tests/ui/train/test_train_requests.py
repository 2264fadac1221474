"""Train tab: the form keeps each recipe's edits and the device choice; scans are never dropped or overtaken by
stale ones; Train more epochs; what the monitor shows after a resume, warnings and a long log."""
import threading

from drivers import outcome
from helpers import make_folder_dataset
from PySide6.QtWidgets import QInputDialog

from resnet_gui.core.train import events as E
from resnet_gui.ui.common.workers import running_tasks
from resnet_gui.ui.train import session as train_session
from resnet_gui.ui.train.form import TrainForm
from resnet_gui.ui.train.monitor import TrainingMonitor


def test_edits_survive_switching_recipes_and_back(qtbot, settings):
    form = TrainForm(settings)
    qtbot.addWidget(form)
    form.load_settings()
    form.set_mode("scratch")
    form.epochs_spin.setValue(7)
    form.lr_spin.setValue(0.0123)
    form.set_mode("finetune")
    assert form.epochs_spin.value() == 10  # the fine-tune recipe's own value
    form.set_mode("scratch")
    assert form.epochs_spin.value() == 7 and abs(form.lr_spin.value() - 0.0123) < 1e-9
    form.save_settings()
    assert settings.get("train.forms")["scratch"]["epochs"] == 7


def test_the_device_choice_is_restored_once_devices_are_known(qtbot, settings, make_window):
    settings.set("train.mode", "scratch")  # as a previous session saved them
    settings.set("train.forms", {"scratch": {"device": "cpu", "epochs": 3}})
    window = make_window()  # builds its form from the saved settings, then learns the devices
    form = window.train_tab.form
    assert form.device_combo.currentData() == "cpu" and form.epochs_spin.value() == 3
    assert form.device_combo.count() >= 2


def test_a_scan_runs_while_cifar10_downloads(qtbot, train_tab, tmp_path, monkeypatch):
    def slow_download(report, stop, location):
        stop.wait(60)
        return ""

    monkeypatch.setattr(train_session, "cifar_download_task", slow_download)
    data = make_folder_dataset(tmp_path / "shapes", per_class=4)
    tab = train_tab
    tab.set_mode("cifar10")
    tab.data.download_cifar()
    qtbot.waitUntil(tab.session.download.busy, timeout=10_000)
    tab.set_mode("scratch")
    tab.data.folder_edit.setText(str(data))
    tab.data.scan_folder()
    qtbot.waitUntil(lambda: tab.data.folder_summary.text().startswith("✓ 3 classes"), timeout=30_000)
    assert tab.session.download.busy()
    tab.session.download.cancel()


def test_a_stale_scan_never_overwrites_a_newer_one(qtbot, train_tab, tmp_path, monkeypatch):
    slow = make_folder_dataset(tmp_path / "slow", classes=("a", "b"), per_class=4)
    fast = make_folder_dataset(tmp_path / "fast", classes=("x", "y", "z"), per_class=4)
    gate = threading.Event()
    real_scan = train_session.scan_task

    def scan(report, stop, folder, val_split, seed):
        if folder == str(slow):
            gate.wait(60)
        return real_scan(report, stop, folder, val_split, seed)

    monkeypatch.setattr(train_session, "scan_task", scan)
    tab = train_tab
    tab.set_mode("scratch")
    tab.data.folder_edit.setText(str(slow))
    tab.data.scan_folder()
    tab.data.folder_edit.setText(str(fast))
    tab.data.scan_folder()
    qtbot.waitUntil(lambda: tab.data.folder_summary.text().startswith("✓ 3 classes"), timeout=30_000)
    gate.set()
    qtbot.waitUntil(lambda: not running_tasks(), timeout=30_000)
    assert tab.data.folder_summary.text().startswith("✓ 3 classes") and "x 3+1" in tab.data.folder_summary.text()


def test_unreadable_files_are_not_counted_and_the_error_banner_goes_with_its_cause(qtbot, train_tab, tmp_path):
    tab = train_tab
    one = make_folder_dataset(tmp_path / "one", classes=("only",))
    tab.set_mode("scratch")
    tab.data.folder_edit.setText(str(one))
    tab.data.scan_folder()
    qtbot.waitUntil(lambda: tab.data.banner.kind() == "error", timeout=30_000)
    assert "at least 2" in tab.data.banner.text()
    good = make_folder_dataset(tmp_path / "good", classes=("face", "house"), per_class=5)
    (good / "face" / "broken.png").write_bytes(b"not a png")
    tab.data.folder_edit.setText(str(good))
    tab.data.scan_folder()
    qtbot.waitUntil(lambda: tab.data.folder_summary.text().startswith("✓"), timeout=30_000)
    assert not tab.data.banner.isVisible()
    summary = tab.data.folder_summary.text()
    assert "face 4+1" in summary and "1 file with an image name is not readable" in summary and "broken.png" in summary
    tab.set_mode("cifar10")
    qtbot.waitUntil(lambda: "CIFAR-10" in tab.data.cifar_status.text(), timeout=30_000)
    tab.data.download_cifar()  # offline here: an error about CIFAR-10 … (after importing torchvision: slow when busy)
    qtbot.waitUntil(lambda: tab.data.banner.kind() == "error", timeout=120_000)
    assert [b.text() for b in tab.data.banner.buttons()] == ["Try again", "Locate…"]
    assert "--" not in tab.data.banner.text()  # the window's words, not the command line's
    tab.set_mode("scratch")  # … that is gone in folder mode
    assert not tab.data.banner.isVisible()


def test_train_more_epochs_continues_a_finished_run(qtbot, train_tab, tmp_path, monkeypatch):
    data = make_folder_dataset(tmp_path / "shapes", per_class=8, size=(32, 32))
    tab = train_tab
    tab.set_mode("scratch")
    tab.data.folder_edit.setText(str(data))
    tab.form.arch_combo.setCurrentIndex(tab.form.arch_combo.findData("resnet18_cifar"))
    tab.form.epochs_spin.setValue(1)
    tab.form.batch_spin.setValue(8)
    tab.form.name_edit.setText("more")
    tab.start()
    assert tab.form.name_edit.text() == ""  # the next run does not silently reuse this name
    qtbot.waitUntil(lambda: tab.last_result is not None and not tab.is_training(), timeout=180_000)
    assert tab.last_result.status == "finished"
    qtbot.waitUntil(lambda: any(r.name == "more" and r.finished for r in tab.session.runs), timeout=30_000)
    labels = [a.text() for a in tab.resume_menu.actions()]
    assert any("Train “more” for more epochs" in label for label in labels)
    monkeypatch.setattr(QInputDialog, "getInt", lambda *a, **k: (1, True))
    tab.ask_more_epochs("more")
    qtbot.waitUntil(lambda: tab.is_training(), timeout=10_000)
    qtbot.waitUntil(lambda: tab.last_result is not None and not tab.is_training(), timeout=180_000)
    result = tab.last_result
    assert result.status == "finished" and len(result.history) == 2
    assert "resuming after epoch 1" in tab.monitor.log.toPlainText()
    assert tab.monitor.acc_label.text() != "Best val. accuracy –"


def test_the_same_name_again_is_saved_under_another_name_and_says_so(qtbot, train_tab, tmp_path):
    from helpers import make_checkpoint

    from resnet_gui.core.paths import models_dir

    make_checkpoint(models_dir() / "taken.pth", class_names=["a", "b"])
    data = make_folder_dataset(tmp_path / "shapes", per_class=8, size=(32, 32))
    tab = train_tab
    tab.set_mode("scratch")
    tab.data.folder_edit.setText(str(data))
    tab.form.arch_combo.setCurrentIndex(tab.form.arch_combo.findData("resnet18_cifar"))
    tab.form.epochs_spin.setValue(1)
    tab.form.batch_spin.setValue(8)
    tab.form.name_edit.setText("taken")
    tab.start()
    qtbot.waitUntil(lambda: tab.last_result is not None and not tab.is_training(), timeout=180_000)
    assert tab.last_result.best_name == "taken-2"
    warning = tab.monitor.warnings_banner.text()
    assert "“taken” already exists" in warning and "taken-2" in warning


def started(history=(), epochs=3, start_epoch=0):
    return E.Started(run_name="r", device="CPU (1 thread)", precision="fp32", epochs=epochs, start_epoch=start_epoch,
                     steps_per_epoch=2, train_images=4, val_images=2, class_names=("a", "b"),
                     config={"arch": "resnet18_cifar"}, data_path="tensor", history=tuple(history))


def test_monitor_after_a_resume_and_with_warnings(qtbot):
    from resnet_gui.core.train import TrainResult

    monitor = TrainingMonitor()
    qtbot.addWidget(monitor)
    monitor.begin("Resuming r…")
    history = [{"epoch": 1, "train_loss": 1.0, "val_loss": 1.0, "train_accuracy": 0.5, "val_accuracy": 0.5}]
    monitor.on_event(started(history, start_epoch=1))
    assert monitor.acc_label.text() == "Best val. accuracy 50.0%"  # not "–" when the resumed epochs do not improve
    assert "2 batches" in monitor.log.toPlainText() and "3 epochs" in monitor.log.toPlainText()
    monitor.on_event(E.Warning("3 images could not be read and were skipped: x.png"))
    monitor.on_result(TrainResult(status="finished", message="done", best_name="r", best_val_accuracy=0.5,
                                  epochs_done=3))
    assert outcome(monitor).kind() == "success"
    assert not monitor.warnings_banner.isHidden() and "could not be read" in monitor.warnings_banner.text()


def test_the_log_follows_new_lines_unless_scrolled_up(qtbot):
    monitor = TrainingMonitor()
    qtbot.addWidget(monitor)
    monitor.resize(600, 500)
    monitor.show()
    log = monitor.log
    bar = log.verticalScrollBar()
    for run in range(3):  # earlier runs leave their lines
        monitor.begin(f"run {run}")
        for i in range(60):
            log.append_line(f"run {run} line {i}")
    assert bar.maximum() > 0 and bar.value() == bar.maximum()
    bar.setValue(10)  # the user scrolls up to read
    log.append_line("new while reading")
    assert bar.value() == 10
    bar.setValue(bar.maximum())
    log.append_line("new at the bottom")
    assert bar.value() == bar.maximum()
    bar.setValue(10)  # scrolled up and left there: the next run still opens on its own lines
    monitor.begin("run 3")
    log.append_line("run 3 line 0")
    assert bar.value() == bar.maximum()


def test_the_log_ends_on_the_verdict_when_the_banner_takes_its_room(qtbot):
    """The verdict is logged, then shown in a banner above the log: the log, smaller now, still ends on it."""
    from resnet_gui.core.train import TrainResult

    monitor = TrainingMonitor()
    qtbot.addWidget(monitor)
    monitor.resize(600, 700)
    monitor.show()
    monitor.begin("run")
    for i in range(60):
        monitor.log_line(f"epoch {i}")
    verdicts = [f"verdict {i}: " + "the validation images may not say what you think " * 3 for i in range(4)]
    monitor.on_result(TrainResult(status="finished", message="done", best_name="r", best_val_accuracy=0.9,
                                  warnings=verdicts))
    bar = monitor.log.verticalScrollBar()
    qtbot.waitUntil(lambda: monitor.banner.isVisible())
    qtbot.waitUntil(lambda: bar.value() == bar.maximum() > 0)


def test_a_training_error_goes_once_the_data_is_fixed(qtbot, train_tab, tmp_path):
    tab = train_tab
    one = make_folder_dataset(tmp_path / "one", classes=("only",))
    tab.set_mode("scratch")
    tab.data.folder_edit.setText(str(one))
    tab.form.batch_spin.setValue(4)
    tab.start()
    qtbot.waitUntil(lambda: tab.last_result is not None and not tab.is_training(), timeout=60_000)
    assert outcome(tab).kind() == "error" and "at least 2" in outcome(tab).text()
    good = make_folder_dataset(tmp_path / "good", classes=("a", "b"), per_class=4)
    tab.data.folder_edit.setText(str(good))
    tab.data.scan_folder()
    qtbot.waitUntil(lambda: tab.data.folder_summary.text().startswith("✓"), timeout=30_000)
    assert not outcome(tab).isVisible()
