"""Train tab widgets on their own: the curves' empty state and axes, the image-size and thread fields, and the
buttons an offline fine-tune failure offers."""
from drivers import outcome
from helpers import make_folder_dataset

from resnet_gui.core import progress
from resnet_gui.core.train import events as E
from resnet_gui.ui.train.form import TrainForm, automatic_threads
from resnet_gui.ui.train.live_plots import TrainingPlots


def test_plots_empty_state_axes_and_no_legend_over_the_curves(qtbot):
    plots = TrainingPlots()
    qtbot.addWidget(plots)
    plots.resize(800, 300)
    plots.show()
    assert plots.stack.currentWidget() is plots.empty_label and "once training starts" in plots.empty_label.text()
    plots.start(steps_per_epoch=4, epochs=1)
    assert plots.stack.currentIndex() == 1
    for plot in (plots.loss_plot, plots.acc_plot):
        item = plot.getPlotItem()
        assert item.legend is None  # the curves are named in a line above the plots instead
        assert not item.getAxis("left").autoSIPrefix and not item.getAxis("bottom").autoSIPrefix
        x_min, x_max = item.viewRange()[0]
        assert -0.1 <= x_min <= 0.0 and 1.0 <= x_max <= 1.1  # a 1-epoch run spans 0 to 1, not -10 to 15
    assert "training" in plots.key_label.text() and "validation" in plots.key_label.text()
    plots.add_batches([(1, 700.0), (2, 800.0), (3, 900.0)])
    plots.add_epoch(E.Epoch(epoch=1, epochs=1, train_loss=800.0, train_accuracy=0.5, val_loss=850.0,
                            val_accuracy=0.5, lr=0.1, images_per_s=10.0, epoch_time_s=1.0, eta_s=0.0, best=True))
    assert plots.loss_plot.getPlotItem().getAxis("left").labelString().count("(x") == 0
    assert plots.point_counts() == {"batch": 3, "epochs": 1}
    plots.clear()
    assert plots.stack.currentIndex() == 0


def test_a_longer_run_after_a_short_one_gets_the_whole_epoch_axis(qtbot):
    """The second run's range was clamped to the first run's limits: epochs 2-4 were drawn off the edge."""
    plots = TrainingPlots()
    qtbot.addWidget(plots)
    plots.resize(800, 300)
    plots.show()
    for epochs in (1, 4, 2):
        plots.start(steps_per_epoch=4, epochs=epochs)
        for plot in (plots.loss_plot, plots.acc_plot):
            x_min, x_max = plot.getPlotItem().viewRange()[0]
            assert -0.2 <= x_min <= 0.0 and epochs <= x_max <= epochs + 0.2, (epochs, x_min, x_max)


def test_image_size_and_threads_are_form_fields(qtbot, settings):
    form = TrainForm(settings)
    qtbot.addWidget(form)
    form.load_settings()
    form.set_mode("scratch")
    form.set_devices([("cpu", "CPU (2 cores)")])
    cfg = form.config("/data")
    assert cfg.image_size is None and cfg.threads == automatic_threads()
    form.image_size_spin.setValue(96)
    form.threads_spin.setValue(1)
    cfg = form.config("/data")
    assert cfg.image_size == 96 and cfg.threads == 1
    assert form.threads_spin.specialValueText() == f"Automatic ({automatic_threads()})"
    for placeholder in (form.weights_edit.placeholderText(), form.name_edit.placeholderText()):
        assert form.weights_edit.fontMetrics().horizontalAdvance(placeholder) < 200  # fits the field


def test_fine_tuning_offline_offers_to_choose_the_weights_file(qtbot, train_tab, tmp_path):
    data = make_folder_dataset(tmp_path / "pets", per_class=4)
    tab = train_tab
    tab.set_mode("finetune")
    tab.data.folder_edit.setText(str(data))
    tab.form.epochs_spin.setValue(1)
    tab.form.batch_spin.setValue(4)
    tab.start()
    qtbot.waitUntil(lambda: tab.last_result is not None and not tab.is_training(), timeout=120_000)
    banner = outcome(tab)
    assert tab.last_result.status == "failed" and banner.kind() == "error"
    assert "ImageNet weights" in banner.text() and "--weights-file" not in banner.text()
    assert banner.text()[0].isupper() and "[Errno" not in banner.text()
    assert "http" not in banner.text() and "checkpoints" not in banner.text()  # no address, no cache path
    assert [b.text() for b in banner.buttons()] == ["Download ImageNet weights", "Locate a file…"]


def test_the_imagenet_weights_are_a_step_before_start(qtbot, train_tab, tmp_path, monkeypatch):
    """Fine-tuning says beforehand that the weights must be downloaded (and how big they are), offers Download
    with progress and Cancel, or Locate a file…; offline, one short sentence says so."""
    import socket
    import urllib.error

    from resnet_gui.core import download

    def offline(*args, **kwargs):
        raise urllib.error.URLError(socket.gaierror(-2, "Name or service not known"))

    monkeypatch.setattr(download.urllib.request, "urlopen", offline)
    tab = train_tab
    tab.set_mode("finetune")
    tab.form.arch_combo.setCurrentIndex(tab.form.arch_combo.findData("resnet18"))
    panel = tab.form.weights_row
    qtbot.waitUntil(lambda: panel.download_button.isVisible(), timeout=60_000)
    assert panel.download_button.text() == "Download ImageNet weights (45 MB)" and panel.needs_download()
    assert "downloaded once" in panel.status.text() and "resnet18-" in panel.status.text()
    panel.download_button.click()
    qtbot.waitUntil(lambda: "could not be downloaded" in panel.status.text(), timeout=60_000)
    assert "this computer seems to be offline" in panel.status.text() and "http" not in panel.status.text()
    assert panel.download_button.isEnabled() and not panel.cancel_button.isVisible()
    copy = tmp_path / "resnet18-copy.pth"
    copy.write_bytes(b"weights")
    panel.edit.setText(str(copy))  # what Locate a file… does
    assert not panel.download_button.isVisible() and not panel.needs_download()
    assert tab.config().weights_file == str(copy)


def test_a_finished_run_with_verdict_warnings_is_amber_and_lists_them(qtbot):
    from resnet_gui.core.train import TrainResult
    from resnet_gui.ui.train.monitor import TrainingMonitor

    monitor = TrainingMonitor()
    qtbot.addWidget(monitor)
    monitor.begin("Training…")
    pressed = []
    verdicts = ["the model mostly answers 'face' (100% of its answers); its 90.9% validation accuracy is about the "
                "share of the largest class", "Class 'other' is recognised far less often than the others"]
    monitor.on_result(TrainResult(status="finished", message="done", best_name="faces", best_val_accuracy=0.909,
                                  epochs_done=1, warnings=verdicts), [("Evaluate it…", lambda: pressed.append(1))])
    assert outcome(monitor).kind() == "warning"  # amber, not green
    text = outcome(monitor).text()
    assert text.startswith("Finished, but read this before trusting “faces” (90.9% validation accuracy)")
    assert "• The model mostly answers 'face'" in text and "• Class 'other' is recognised" in text
    outcome(monitor).buttons()[0].click()
    assert pressed == [1]
    monitor.on_result(TrainResult(status="finished", message="done", best_name="good", best_val_accuracy=0.97,
                                  epochs_done=3))
    assert outcome(monitor).kind() == "success" and outcome(monitor).buttons() == []
    monitor.on_result(TrainResult(status="finished", message="done", best_name="balanced", best_val_accuracy=0.9,
                                  epochs_done=3, balanced_accuracy=0.85, balance="weighted-sampler"))
    assert "reached 90.0% validation accuracy, balanced accuracy 85.0% with the weighted-sampler remedy" in \
        outcome(monitor).text()


def test_the_verdicts_evaluate_button_opens_the_evaluate_tab(qtbot, digits_model, window):
    from resnet_gui.core.train import TrainResult

    tab = window.train_tab
    tab.session.training_done.emit(TrainResult(status="finished", message="done", best_name="digits",
                                               best_val_accuracy=0.5, epochs_done=1,
                                               warnings=["the model mostly answers 'two'"]))
    assert outcome(tab).kind() == "warning"
    outcome(tab).buttons()[0].click()
    evaluate = window.evaluate_tab
    assert window.tabs.currentWidget() is evaluate and evaluate.data_kind() == "validation"
    # this generated model does not say where its images are: a sentence, not a crash
    qtbot.waitUntil(lambda: evaluate.banner.kind() == "error", timeout=60_000)
    assert "no longer" in evaluate.banner.text()


def test_the_finder_panel_shows_a_curve_without_a_suggestion(qtbot):
    """No clear descent: the curve, no mark, no Use button, and why (the rate field is left alone)."""
    from resnet_gui.ui.train.lr_finder_panel import LrFinderPanel

    panel = LrFinderPanel()
    qtbot.addWidget(panel)
    panel.begin(40)
    lrs = tuple(1e-6 * 1e7 ** (i / 39) for i in range(40))
    chosen = []
    panel.lr_chosen.connect(chosen.append)
    panel.show_result(E.LrFound(lr=None, lrs=lrs, losses=tuple(2.3 + 0.001 * (i % 3) for i in range(40)),
                                method="no clear descent of the smoothed loss (it fell 0.4% below its starting level)"))
    assert panel.suggested is None and panel.use_button.isHidden() and panel.cancel_button.isHidden()
    marked = panel.mark.getData()[0]  # pyqtgraph gives None for an emptied plot item
    assert len(panel.curve.getData()[0]) == 40 and (marked is None or len(marked) == 0)
    assert not panel.mark_line.isVisible()
    assert "No learning rate suggested: no clear descent" in panel.note.text()
    panel.use_suggestion()
    assert chosen == []  # nothing to use


def test_the_finder_panel_opens_with_room_for_its_plot(qtbot, train_tab):
    """The column's splitter gave the panel that appears only its minimum, the monitor below asking for more: the
    plot was squeezed and its rate axis cut off. It takes 40 % of the column, and the plot more than its minimum."""
    from resnet_gui.ui.train.lr_finder_panel import ROOM

    panel = train_tab.lr_panel
    column = panel.parentWidget()
    panel.begin(40, current=0.01)
    assert column.sizes()[0] >= int(sum(column.sizes()) * ROOM) > panel.minimumSizeHint().height()
    qtbot.waitUntil(lambda: panel.plot.height() > panel.plot.minimumHeight(), timeout=5_000)


def test_the_form_offers_the_imbalance_remedies_for_folders(qtbot, settings):
    form = TrainForm(settings)
    qtbot.addWidget(form)
    form.load_settings()
    form.set_mode("scratch")  # from scratch on a folder
    assert form.hp_form.isRowVisible(form.balance_combo) and form.config("/data").balance == "none"
    assert "weighted-loss" in form.balance_combo.toolTip()  # the setting's own help
    form.balance_combo.setCurrentIndex(form.balance_combo.findData("weighted-sampler"))
    assert form.config("/data").balance == "weighted-sampler"
    form.save_settings()
    form.set_mode("cifar10")  # CIFAR-10's classes are balanced: no remedy offered
    assert not form.hp_form.isRowVisible(form.balance_combo) and form.config(None).balance == "none"
    again = TrainForm(settings)
    qtbot.addWidget(again)
    again.load_settings()
    again.set_mode("scratch")
    assert again.config("/data").balance == "weighted-sampler"  # kept with the recipe's other edits


def test_the_finder_panel_draws_points_as_they_come_with_the_time_left_and_the_current_rate(qtbot):
    """The range test's curve grows with each report, the bar says the step and the time left, the current rate
    is a line, and the rate axis writes every tick alike (it mixed "10⁻⁶" and "0.0001")."""
    import math

    import pytest

    from resnet_gui.ui.train.lr_finder_panel import LrFinderPanel, RateAxis

    panel = LrFinderPanel()
    qtbot.addWidget(panel)
    panel.begin(40, current=0.05)
    assert panel.current_line.isVisible() and panel.current_line.value() == pytest.approx(math.log10(0.05))
    assert "current 0.05" in panel.current_line.label.toPlainText()
    panel.on_event(E.LrStep(step=2, steps=40, lrs=(1e-6, 1.5e-6), losses=(2.3, 2.3), eta_s=None))
    assert len(panel.curve.getData()[0]) == 2 and panel.progress.format() == "Step 2 of at most 40"
    panel.on_event(E.LrStep(step=5, steps=40, lrs=(2e-6, 3e-6, 4e-6), losses=(2.2, 2.1, 2.0), eta_s=70.0))
    assert len(panel.curve.getData()[0]) == 5 and panel.progress.value() == 5
    assert panel.progress.format() == "Step 5 of at most 40 · about 1 min 10 s left"
    assert not panel.cancel_button.isHidden()
    assert RateAxis("bottom").logTickStrings([-6, -4, -1, 0], 1, 1) == ["1.0e-06", "1.0e-04", "0.1", "1"]
    assert isinstance(panel.plot.getPlotItem().getAxis("bottom"), RateAxis)


def test_a_failed_or_stopped_run_offers_the_fix_its_remedy_names(qtbot, settings):
    """The buttons come from the result's remedy (data), not from words found in its message; they do what the
    window's sentence says."""
    from resnet_gui.core.errors import Remedy
    from resnet_gui.core.train import TrainResult
    from resnet_gui.ui.train.tab import TrainTab

    tab = TrainTab(settings)
    qtbot.addWidget(tab)
    banner = outcome(tab)
    nan = "the loss became NaN at epoch 1, step 3; training stopped. The learning rate is probably too high"
    tab.session.training_done.emit(TrainResult(status="failed", message=nan, remedy=Remedy("lr", 0.005)))
    assert banner.kind() == "error" and banner.text().endswith("too high. Try a learning rate of 0.005.")
    [use] = banner.buttons()
    assert use.text() == "Use learning rate 0.005"
    use.click()
    assert tab.form.lr_spin.value() == 0.005
    tab.session.training_done.emit(TrainResult(status="failed", message="the device ran out of memory with batch "
                                               "size 25", remedy=Remedy("batch_size", 12)))
    assert banner.text().endswith("Try a batch size of 12.")
    banner.buttons()[0].click()
    assert tab.form.batch_spin.value() == 12
    tab.session.training_done.emit(TrainResult(status="failed", message="CIFAR-10 was not found in /x",
                                               remedy=Remedy("cifar10")))
    assert [b.text() for b in banner.buttons()] == ["Locate…", "Download CIFAR-10"] and "--" not in banner.text()
    tab.session.training_done.emit(TrainResult(status="failed", message="CIFAR-10 was not found in /x"))
    assert banner.buttons() == []  # the words alone are no remedy
    resumed = []
    tab.resume = resumed.append
    tab.session.training_done.emit(TrainResult(status="cancelled", message="Stopped during epoch 2; 1 epoch "
                                               "completed", remedy=Remedy("resume", "r1")))
    assert banner.text().endswith("Continue it with Resume.")
    [resume] = banner.buttons()
    resume.click()
    assert resume.text() == "Resume" and resumed == ["r1"]
    # each result has the time estimate read the earlier runs' speeds again, in a worker: let the last one end
    # (a tab that builds quickly got here before it, which the no-worker-left check took for a leak)
    from resnet_gui.ui.common.workers import running_tasks

    qtbot.waitUntil(lambda: not running_tasks(), timeout=60_000)


def test_the_basic_view_hints_and_a_time_estimate_before_start(qtbot, train_tab, tmp_path, monkeypatch):
    """Data, model, epochs and Start at first (Advanced closed); architectures say their size and speed; the
    time is estimated before Start: unknown, then measured, then scaled with the epochs."""
    from resnet_gui.ui.train import estimate

    tab = train_tab
    form = tab.form
    assert not form.advanced.isVisible() and form.epochs_spin.isVisible()
    assert not form.lr_spin.isVisible() and not form.optimizer_combo.isVisible()
    labels = [form.arch_combo.itemText(i) for i in range(form.arch_combo.count())]
    assert "resnet18 · 11.7M parameters · fast" in labels and "resnet152 · 60.2M parameters · very slow" in labels
    form.advanced_button.click()
    assert form.advanced.isVisible() and form.lr_spin.isVisible()
    form.advanced_button.click()
    tab.set_learning_rate(0.01)  # a fix that changes an advanced setting shows it
    assert form.advanced.isVisible()
    measured = []

    def fake_measure(report, stop, config):  # the real one is tested below; this one is instant
        measured.append(config)
        return estimate.Speed(config["arch"], estimate.input_size(config), config["device"], 100.0, "measured just now")

    monkeypatch.setattr(estimate, "measure_task", fake_measure)
    data = make_folder_dataset(tmp_path / "shapes", per_class=8, size=(32, 32))
    tab.set_mode("scratch")
    form.arch_combo.setCurrentIndex(form.arch_combo.findData("resnet18_cifar"))
    form.device_combo.setCurrentIndex(form.device_combo.findData("cpu"))
    form.epochs_spin.setValue(10)
    tab.data.folder_edit.setText(str(data))
    tab.data.scan_folder()
    qtbot.waitUntil(lambda: "until measured" in form.estimate.label.text(), timeout=30_000)
    form.estimate.measure_button.click()
    qtbot.waitUntil(lambda: form.estimate.label.text().startswith("About"), timeout=30_000)
    train, val = sum(tab.health_check.last_scan.train.values()), sum(tab.health_check.last_scan.val.values())
    assert measured[0]["arch"] == "resnet18_cifar" and measured[0]["device"] == "cpu"
    assert form.estimate.seconds() == 10 * (train + val / 3) / 100.0
    assert "100 images/s, measured just now" in form.estimate.label.text()
    form.epochs_spin.setValue(20)  # twice the epochs, twice the time
    assert form.estimate.seconds() == 20 * (train + val / 3) / 100.0
    form.arch_combo.setCurrentIndex(form.arch_combo.findData("resnet50"))  # another model: not known
    assert form.estimate.seconds() is None and "until measured" in form.estimate.label.text()


def test_speeds_come_from_earlier_runs_or_a_few_real_steps(monkeypatch):
    from resnet_gui.core.train import runs
    from resnet_gui.ui.train import estimate

    def info(name, arch, rates, image_size=None):
        return runs.RunInfo(name, "/x", "finished", 0, 0, 0.0, False, config={"arch": arch, "device": "auto",
                            "image_size": image_size}, history=[{"images_per_s": r} for r in rates])

    monkeypatch.setattr(runs, "list_run_infos", lambda: [info("a", "resnet18", [90, 100, 400]),
                                                         info("b", "resnet50", []), info("c", "resnet18", [5], 64)])
    speeds = estimate.earlier_speeds_task(None, None)
    assert [(s.arch, s.image_size, s.images_per_s, s.source) for s in speeds] == [
        ("resnet18", 224, 100.0, "run “a”"), ("resnet18", 64, 5.0, "run “c”")]  # the median; none without a speed
    monkeypatch.setattr(estimate, "MEASURE_STEPS", 1)
    seen = []
    speed = estimate.measure_task(seen.append, progress.NEVER_STOP, {"arch": "resnet18_cifar", "device": "cpu",
                                                                      "batch_size": 2, "precision": "fp32"})
    assert speed.images_per_s > 0 and speed.image_size == 32 and seen == [("Measuring", 1, 1)]
