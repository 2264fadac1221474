"""The Train tab's dataset health check: problems listed with thumbnails, files left out of the run (the
folder untouched), progress and Cancel."""
import shutil

from helpers import make_distinct_folder, make_folder_dataset
from PIL import Image
from PySide6.QtCore import Qt


def problem_folder(root):
    data = make_folder_dataset(root, classes=("cats", "dogs"), per_class=8, size=(40, 32), bad=1, split=True)
    train_cat = sorted((data / "train" / "cats").glob("cats_*.png"))[0]
    shutil.copy(train_cat, data / "val" / "cats" / "copy_in_val.png")  # leakage: the same image in both splits
    shutil.copy(train_cat, data / "train" / "cats" / "zz_copy.png")    # an exact duplicate in training
    Image.new("RGB", (6, 6), (200, 10, 10)).save(data / "train" / "dogs" / "tiny.png")
    return data


def scan(qtbot, tab, folder):
    tab.set_mode("scratch")  # from scratch on a folder: resnet18_cifar, 32 px
    tab.form.arch_combo.setCurrentIndex(tab.form.arch_combo.findData("resnet18_cifar"))
    tab.data.folder_edit.setText(str(folder))
    tab.data.scan_folder()


def test_health_check_lists_problems_and_leaves_ticked_files_out_of_the_run(qtbot, train_tab, tmp_path, monkeypatch):
    data = problem_folder(tmp_path / "pets")
    before = sorted(p.name for p in data.rglob("*"))
    tab = train_tab
    scan(qtbot, tab, data)
    health = tab.health
    qtbot.waitUntil(lambda: health.result is not None and not health.busy(), timeout=120_000)
    assert health.isVisible()
    report = health.result.report
    assert len(report.unreadable) == 1 and report.exact_duplicates and report.leakage and report.small_images
    heads = [health.tree.topLevelItem(i).text(0) for i in range(health.tree.topLevelItemCount())]
    assert heads[0] == "Unreadable: 1 file" and any(h.startswith("In both training and validation") for h in heads)
    assert any(h.startswith("Much smaller than the model's input: 1 file") for h in heads)
    assert "problems found" in health.summary.text() and "validation accuracy will be too optimistic" in \
        health.summary.text()
    items = {item.data(0, Qt.ItemDataRole.UserRole): item for item in health.file_items()}
    assert not items[str(data / "train" / "dogs" / "tiny.png")].icon(0).isNull()  # with its thumbnail
    assert all(i.checkState(0) == Qt.CheckState.Unchecked for i in health.file_items())
    qtbot.mouseClick(health.suggest_button, Qt.MouseButton.LeftButton)
    suggested = set(report.exclusions())
    assert health.excluded == suggested and str(data / "train" / "cats" / "broken_0.png") in suggested
    assert "will be left out of the training run; your folder is not changed" in health.excluded_label.text()
    # a file listed twice (a duplicate that also crosses the split) is ticked in both places
    copy = str(data / "val" / "cats" / "copy_in_val.png")
    assert copy in suggested
    assert {i.checkState(0) for i in health.file_items() if i.data(0, Qt.ItemDataRole.UserRole) == copy} == \
        {Qt.CheckState.Checked}
    # unticking one keeps it in the run
    tiny = items[str(data / "train" / "dogs" / "tiny.png")]
    tiny.setCheckState(0, Qt.CheckState.Checked)
    assert str(data / "train" / "dogs" / "tiny.png") in health.excluded
    next(i for i in health.file_items() if i.data(0, Qt.ItemDataRole.UserRole) == copy).setCheckState(
        0, Qt.CheckState.Unchecked)
    assert copy not in health.excluded
    started = []
    monkeypatch.setattr(tab.session, "start", lambda config, gpus=1: started.append(config) or True)
    tab.start()
    assert started and started[0]["exclude"] == sorted(health.excluded)
    assert all(p.startswith(str(data)) for p in started[0]["exclude"])
    assert sorted(p.name for p in data.rglob("*")) == before  # the folder is untouched
    qtbot.mouseClick(health.include_button, Qt.MouseButton.LeftButton)
    assert health.excluded == set() and health.excluded_paths(str(data)) == []


def test_a_clean_folder_lists_nothing_and_cifar_hides_the_check(qtbot, train_tab, tmp_path):
    data = make_distinct_folder(tmp_path / "clean", classes=("a", "b"), per_class=4, size=(40, 40))
    tab = train_tab
    scan(qtbot, tab, data)
    qtbot.waitUntil(lambda: tab.health.result is not None and not tab.health.busy(), timeout=120_000)
    assert "no unreadable files, duplicates or tiny images" in tab.health.summary.text()
    assert not tab.health.tree.isVisibleTo(tab.health)
    assert tab.health.excluded_paths(str(data)) == []
    assert not tab.health.balance_button.isVisibleTo(tab.health)  # balanced classes: no remedy offered
    tab.set_mode("cifar10")  # CIFAR-10: nothing to check
    assert not tab.health.isVisibleTo(tab) and tab.health.result is None


def test_the_health_check_can_be_cancelled(qtbot, train_tab, tmp_path):
    data = make_folder_dataset(tmp_path / "many", classes=("a", "b"), per_class=150, size=(64, 64))
    tab = train_tab
    scan(qtbot, tab, data)
    qtbot.waitUntil(tab.health.busy, timeout=60_000)
    assert tab.health.cancel_button.isVisibleTo(tab.health)
    qtbot.mouseClick(tab.health.cancel_button, Qt.MouseButton.LeftButton)
    assert not tab.health.busy() and "cancelled" in tab.health.summary.text()
    assert not tab.health.cancel_button.isVisibleTo(tab.health)
    from resnet_gui.ui.common.workers import wait_for_all

    wait_for_all(60_000)
    assert tab.health.result is None  # the cancelled check never reports


def test_the_check_runs_again_when_the_model_input_size_changes(qtbot, train_tab, tmp_path):
    """The result said "much smaller than the model's input (224 px)" after switching to a 32 px model."""
    data = make_folder_dataset(tmp_path / "small", classes=("a", "b"), per_class=6, size=(32, 32))
    tab = train_tab
    tab.set_mode("scratch")
    tab.form.arch_combo.setCurrentIndex(tab.form.arch_combo.findData("resnet18"))  # 224 px: every image tiny
    tab.data.folder_edit.setText(str(data))
    tab.data.scan_folder()
    health = tab.health
    qtbot.waitUntil(lambda: health.result is not None and not health.busy(), timeout=120_000)
    assert len(health.result.report.small_images) == 12
    first = health.result
    tab.form.arch_combo.setCurrentIndex(tab.form.arch_combo.findData("resnet18_cifar"))  # 32 px
    qtbot.waitUntil(lambda: health.result is not first and not health.busy(), timeout=120_000)
    assert health.result.report.small_images == [] and "smaller than the model's input" not in \
        health.summary.text()


def test_an_imbalanced_folder_offers_the_remedy_and_the_button_sets_it(qtbot, train_tab, tmp_path):
    data = make_folder_dataset(tmp_path / "d", classes=("many",), per_class=20, size=(40, 40))
    make_folder_dataset(data, classes=("few",), per_class=5, size=(40, 40))
    tab = train_tab
    tab.form.show_advanced(False)  # the basic view: the remedy's button opens the advanced settings
    scan(qtbot, tab, data)
    health = tab.health
    qtbot.waitUntil(lambda: health.result is not None and not health.busy(), timeout=120_000)
    remedy = health.result.report.imbalance["remedy"]
    assert "Class imbalance" in health.summary.text()
    assert health.balance_button.isVisible() and health.balance_button.isEnabled()
    assert remedy.replace("-", " ") in health.balance_button.text() and tab.form.balance() == "none"
    qtbot.mouseClick(health.balance_button, Qt.MouseButton.LeftButton)
    assert tab.form.balance() == remedy and tab.config().balance == remedy
    assert tab.form.balance_combo.isVisibleTo(tab.form)  # the Balance classes setting shows what was chosen
    assert not health.balance_button.isEnabled() and health.balance_button.text().startswith("Balanced in training")
    tab.form.set_balance("none")  # chosen back in the form: offered again
    assert health.balance_button.isEnabled()
