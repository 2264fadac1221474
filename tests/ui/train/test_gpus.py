"""Several GPUs: the GPUs choice appears only with more than one CUDA device; a run on several GPUs is torchrun as
a child process whose JSON events reach the same plots, progress, log and banners; Stop ends it (the stop file,
then terminate after a grace period); closing the window asks first. Tested with a fake torchrun on the CPU."""
import json
import sys
from pathlib import Path

from drivers import outcome
from helpers import make_folder_dataset
from PySide6.QtWidgets import QMessageBox

from resnet_gui.cli import build_parser
from resnet_gui.cli.train import config_from_args
from resnet_gui.core.train import events as E
from resnet_gui.core.train import recipe
from resnet_gui.ui.train.form import TrainForm
from resnet_gui.ui.train.torchrun import config_options, event_from_json, resume_options, torchrun_command

FAKE = str(Path(__file__).parent.parent / "fakes" / "fake_torchrun.py")


def fake(mode: str, seen: list | None = None):
    def command(nproc, options):
        if seen is not None:  # with the settings file's content (the file goes with the run's temporary folder)
            settings = json.loads(Path(options[options.index("--config") + 1]).read_text()) \
                if "--config" in options else None
            seen.append((nproc, options, settings))
        return [sys.executable, FAKE, "--mode", mode, "--nproc", str(nproc), *options]
    return command


def test_the_gpus_choice_appears_only_with_several_gpus(qtbot, settings):
    form = TrainForm(settings)
    qtbot.addWidget(form)
    form.load_settings()
    for count in (0, 1):
        form.set_gpu_count(count)
        assert not form.hp_form.isRowVisible(form.gpus_spin) and form.gpus() == 1
        assert form.device_combo.isEnabled()
    form.set_gpu_count(4)
    assert form.hp_form.isRowVisible(form.gpus_spin) and form.gpus_spin.maximum() == 4
    form.gpus_spin.setValue(3)
    assert form.gpus() == 3 and not form.device_combo.isEnabled()  # each process uses its own GPU
    form.save_settings()
    assert settings.get("train.gpus") == 3
    form.set_gpu_count(2)  # fewer GPUs next time: the saved choice is capped
    assert form.gpus() == 2


def test_the_form_becomes_a_settings_file_the_train_command_reads(tmp_path):
    cfg = recipe("finetune", data="/data/pets", arch="resnet50", epochs=7, batch_size=24, lr=0.0003, hflip=False,
                 name="pets ddp", warmup_epochs=1.5, image_size=160, exclude=["/data/pets/cat/copy.png"])
    options = config_options(str(cfg.save(tmp_path / "settings.json")))
    config, resume = config_from_args(build_parser().parse_args(["train", *options]))
    assert resume is None and config == cfg.replace(device="cuda")  # every setting, the files left out too
    assert (config.dataset, config.data, config.arch, config.epochs, config.batch_size) == ("folder", "/data/pets",
                                                                                           "resnet50", 7, 24)
    assert config.lr == 0.0003 and not config.hflip and config.pretrained and config.name == "pets ddp"
    assert config.warmup_epochs == 1.5 and config.image_size == 160 and config.device == "cuda"
    resumed = build_parser().parse_args(["train", *resume_options("pets ddp", 12)])
    assert resumed.resume == "pets ddp" and resumed.epochs == 12
    argv = torchrun_command(2, options)
    assert argv[1:6] == ["-m", "torch.distributed.run", "--standalone", "--nproc_per_node=2", "-m"]


def test_every_event_comes_back_from_its_json_as_it_was():
    events = [
        E.Status("Scanning"), E.Prepare("Decoding", 3, 9), E.DatasetSummary({"name": "x", "train_images": 3}),
        E.Warning("careful", ("a.png",)),
        E.Started(run_name="r", device="cuda:0", precision="bf16", epochs=2, start_epoch=1, steps_per_epoch=3,
                  train_images=6, val_images=2, class_names=("a", "b"), config={"arch": "resnet18"}, data_path="d",
                  history=({"epoch": 1, "val_accuracy": 0.5},), world_size=2),
        E.Batch(epoch=1, epochs=2, step=2, steps=3, loss=0.5, losses=((1, 0.6), (2, 0.5)), lr=0.1, images_per_s=9.0,
                eta_s=3.0),
        E.Epoch(epoch=1, epochs=2, train_loss=0.5, train_accuracy=0.5, val_loss=0.6, val_accuracy=0.4, lr=0.1,
                images_per_s=9.0, epoch_time_s=1.0, eta_s=1.0, best=True),
        E.CheckpointSaved(which="best", path="p", epoch=1, name="r", val_accuracy=0.4),
        E.Ended(status="cancelled", message="Stopped", run_name="r", epochs_done=1, warnings=("w",)),
        E.LrStep(step=2, steps=100, lrs=(0.001, 0.01), losses=(2.0, 1.0), eta_s=9.5),
        E.LrFound(lr=0.01, lrs=(0.001, 0.01), losses=(2.0, 1.0), meaning="where it fell fastest"),
    ]
    assert {type(ev) for ev in events} == set(E.EVENT_TYPES)  # a new event kind needs a case here
    for ev in events:
        assert event_from_json(json.loads(json.dumps(ev.to_json()))) == ev
    assert event_from_json({"event": "something new"}) is None
    assert event_from_json({"event": "batch", "epoch": 1}) is None  # incomplete: ignored, not a crash


def setup(tab, tmp_path, gpus=2):
    tab.form.set_gpu_count(2)
    tab.form.gpus_spin.setValue(gpus)
    tab.set_mode("scratch")
    tab.data.folder_edit.setText(str(make_folder_dataset(tmp_path / "shapes", per_class=6, size=(32, 32))))
    tab.form.arch_combo.setCurrentIndex(tab.form.arch_combo.findData("resnet18_cifar"))
    tab.form.epochs_spin.setValue(2)
    tab.form.name_edit.setText("fake-ddp")
    return tab


def test_a_several_gpu_run_follows_torchrun_into_the_plots_progress_and_log(qtbot, train_tab, tmp_path):
    tab = setup(train_tab, tmp_path)
    seen = []
    tab.session.child.command = fake("finish", seen)
    with qtbot.waitSignal(tab.training_busy_changed, timeout=10_000, check_params_cb=lambda running: running):
        tab.start_button.click()
    assert tab.is_training() and tab.session.child_running() and not tab.start_button.isEnabled()
    assert not tab.find_lr_button.isEnabled()  # never at the same time as training
    with qtbot.waitSignal(tab.training_busy_changed, timeout=60_000, check_params_cb=lambda running: not running):
        pass
    nproc, options, settings = seen[0]
    assert nproc == 2 and "--json" in options and "--stop-file" in options and settings["name"] == "fake-ddp"
    assert tab.plots.point_counts() == {"batch": 6, "epochs": 2}
    log = tab.monitor.log.toPlainText()
    assert "Starting 2 training processes with torchrun" in log and "fake torchrun: 2 processes" in log
    assert "epoch 2/2" in log and "Saved the best model so far as “fake-ddp”" in log
    result = tab.last_result
    assert result.status == "finished" and result.best_name == "fake-ddp" and len(result.history) == 2
    assert outcome(tab).kind() == "success" and "fake-ddp" in outcome(tab).text()
    assert tab.monitor.progress.format() == "Finished" and tab.start_button.isEnabled()
    assert not Path(options[options.index("--stop-file") + 1]).parent.exists()  # its temporary folder is gone


def test_stop_ends_every_rank_through_the_stop_file(qtbot, train_tab, tmp_path):
    tab = setup(train_tab, tmp_path)
    tab.session.child.command = fake("endless")
    tab.start()
    qtbot.waitUntil(lambda: tab.plots.point_counts()["batch"] >= 2, timeout=30_000)
    assert tab.monitor.progress.format().startswith("Epoch 1 of 2 · batch")
    tab.stop_button.click()
    assert tab.monitor.progress.format() == "Stopping after this batch…"
    qtbot.waitUntil(lambda: not tab.is_training(), timeout=30_000)
    assert tab.last_result.status == "cancelled" and outcome(tab).kind() == "info"


def test_a_run_that_ignores_the_stop_file_is_ended_after_a_grace_period(qtbot, train_tab, tmp_path):
    tab = setup(train_tab, tmp_path)
    tab.session.child.command = fake("stubborn")
    tab.session.child.stop_grace_ms = 300
    tab.start()
    qtbot.waitUntil(lambda: tab.plots.point_counts()["batch"] >= 1, timeout=30_000)
    tab.stop()
    qtbot.waitUntil(lambda: not tab.is_training(), timeout=30_000)
    assert tab.last_result.status == "cancelled" and "by force" in outcome(tab).text()


def test_health_list_exclusions_reach_every_process_on_several_gpus(qtbot, train_tab, tmp_path, monkeypatch):
    tab = setup(train_tab, tmp_path)
    monkeypatch.setattr(tab.health, "excluded_paths", lambda _folder: ["/x/a.png"])
    seen = []
    tab.session.child.command = fake("finish", seen)
    tab.start()
    qtbot.waitUntil(lambda: not tab.is_training(), timeout=60_000)
    assert seen[0][2]["exclude"] == ["/x/a.png"] and tab.last_result.status == "finished"
    assert "Leaving out 1 file ticked in the dataset health list" in tab.monitor.log.toPlainText()


def test_closing_during_a_several_gpu_run_asks_then_stops_it(qtbot, window, tmp_path, monkeypatch):
    tab = setup(window.train_tab, tmp_path)
    tab.session.child.command = fake("endless")
    tab.start()
    qtbot.waitUntil(lambda: tab.plots.point_counts()["batch"] >= 1, timeout=30_000)
    monkeypatch.setattr(QMessageBox, "question", lambda *a, **k: QMessageBox.StandardButton.No)
    window.close()
    assert window.isVisible() and tab.session.child_running()
    monkeypatch.setattr(QMessageBox, "question", lambda *a, **k: QMessageBox.StandardButton.Yes)
    window.close()
    qtbot.waitUntil(lambda: not window.isVisible(), timeout=60_000)
    assert not tab.session.child_running() and tab.last_result.status == "cancelled"


def test_resume_on_several_gpus_passes_the_run_and_epochs(qtbot, train_tab, tmp_path):
    tab = setup(train_tab, tmp_path)
    seen = []
    tab.session.child.command = fake("finish", seen)
    tab.resume("old run", epochs_done=3, more_epochs=2)
    qtbot.waitUntil(lambda: not tab.is_training(), timeout=60_000)
    nproc, options, _ = seen[0]
    assert nproc == 2 and options[:4] == ["--resume", "old run", "--epochs", "5"]
    assert tab.last_result.status == "finished"
