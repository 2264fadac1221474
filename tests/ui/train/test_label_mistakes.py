"""Find label mistakes in the Train tab's health panel (real digits with flipped labels) and in the Evaluate tab
(the demo model on digits it never trained on): the gallery, relabel / exclude / it is right, moving a file with
undo, the run's configuration, Cancel."""
import shutil
from pathlib import Path

import numpy as np
import pytest
from PIL import Image
from PySide6.QtCore import Qt

from resnet_gui.ui.common.label_issues_view import THUMBNAIL_PX, doubt_text

DEMO = Path(__file__).resolve().parents[3] / "resnet_gui" / "resources" / "models" / "digits-resnet18_cifar.pth"


def noisy_digits(root: Path, count: int, flips: int, seed: int = 0) -> set[str]:
    """`count` real digits as 32 px PNGs in class folders 0-9, `flips` of them filed under a wrong class."""
    digits = pytest.importorskip("sklearn.datasets").load_digits()
    rng = np.random.default_rng(seed)
    wrong = set(rng.choice(count, flips, replace=False).tolist())
    paths = set()
    for i in range(count):
        label = int(digits.target[i])
        if i in wrong:
            label = (label + int(rng.integers(1, 10))) % 10
        path = root / str(label) / f"d{i:04d}.png"
        path.parent.mkdir(parents=True, exist_ok=True)
        grey = (255 - digits.images[i] * (255 / 16)).clip(0, 255).astype(np.uint8)
        Image.fromarray(grey, "L").resize((32, 32), Image.Resampling.BILINEAR).convert("RGB").save(path)
        if i in wrong:
            paths.add(str(path))
    return paths


def test_doubt_shows_how_far_from_certain():
    assert [doubt_text(s) for s in (0.75, 0.99996, 0.999999999, 1.0)] == ["75.0 %", "99.996 %", "> 99.9999 %",
                                                                          "100 %"]


def scanned(qtbot, window, folder):
    tab = window.train_tab
    window.tabs.setCurrentWidget(tab)
    tab.form.mode_combo.setCurrentIndex(2)  # from scratch on a folder: resnet18_cifar, 32 px
    tab.form.arch_combo.setCurrentIndex(tab.form.arch_combo.findData("resnet18_cifar"))
    tab.data.folder_edit.setText(str(folder))
    tab.data.scan_folder()
    qtbot.waitUntil(lambda: tab.health.result is not None and not tab.health.busy(), timeout=120_000)
    return tab


def test_label_mistakes_in_the_health_panel_go_into_the_run(qtbot, window, tmp_path, monkeypatch):
    folder = tmp_path / "digits"
    wrong = noisy_digits(folder, 400, 20)
    before = sorted(p.name for p in folder.rglob("*.png"))
    tab = scanned(qtbot, window, folder)
    health, view = tab.health, tab.health.labels
    assert health.labels_button.isVisibleTo(health)
    qtbot.mouseClick(health.labels_button, Qt.MouseButton.LeftButton)
    qtbot.waitUntil(lambda: view.outcome is not None and not health.busy(), timeout=180_000)
    assert view.isVisibleTo(health)
    assert view.summary.text().split("\n")[0] not in health.summary.text()   # said once, above the list
    items = view.items()
    listed = [i.data(0, Qt.ItemDataRole.UserRole) for i in items]
    # 400 digits here; the 80 % figures are measured on all 1,797 (test_label_issues, bench_label_issues)
    assert sum(p in wrong for p in listed) >= 0.6 * len(listed) and not items[0].icon(0).isNull()
    assert items[0].text(1) == Path(listed[0]).parent.name and items[0].text(2) != items[0].text(1)
    assert items[0].icon(0).availableSizes()[0].width() == THUMBNAIL_PX   # 32 px digits enlarged to be seen
    assert len({item.text(3) for item in items[:5]}) > 1   # the doubts differ in the decimals that matter
    # relabel the first, exclude the second, the third is right
    for index, button in ((0, view.relabel_button), (1, view.exclude_button), (2, view.right_button)):
        view.list.clearSelection()
        items[index].setSelected(True)
        qtbot.mouseClick(button, Qt.MouseButton.LeftButton)
    assert items[0].text(4) == f"train as {items[0].text(2)}" and items[1].text(4) == "left out"
    assert items[2].text(4) == "right"
    assert "will be trained as the class it looks like" in health.excluded_label.text()
    started = []
    monkeypatch.setattr(tab.session, "start", lambda config, gpus=1: started.append(config) or True)
    tab.start()
    assert started[0]["relabel"] == {listed[0]: items[0].text(2)} and listed[1] in started[0]["exclude"]
    assert sorted(p.name for p in folder.rglob("*.png")) == before  # nothing moved
    # moving a file changes the folder, and Undo puts it back
    view.list.clearSelection()
    items[3].setSelected(True)
    qtbot.mouseClick(view.move_button, Qt.MouseButton.LeftButton)
    moved = folder / items[3].text(2) / Path(listed[3]).name
    assert moved.exists() and not Path(listed[3]).exists() and items[3].text(4).startswith("moved to")
    qtbot.mouseClick(view.undo_button, Qt.MouseButton.LeftButton)
    assert Path(listed[3]).exists() and not moved.exists() and not view.undo_button.isEnabled()


def test_cancelling_the_search_leaves_nothing(qtbot, window, tmp_path):
    folder = tmp_path / "digits"
    noisy_digits(folder, 1200, 30)
    tab = scanned(qtbot, window, folder)
    health = tab.health
    qtbot.mouseClick(health.labels_button, Qt.MouseButton.LeftButton)
    qtbot.waitUntil(health.busy, timeout=10_000)
    qtbot.mouseClick(health.cancel_button, Qt.MouseButton.LeftButton)
    assert not health.busy() and "cancelled; nothing was changed" in health.summary.text()
    from resnet_gui.ui.common.workers import wait_for_all

    wait_for_all(120_000)
    assert health.labels.outcome is None and health.relabel_map(str(folder)) == {}


def test_the_evaluate_tab_finds_label_mistakes_with_a_model_and_tells_the_train_tab(qtbot, registry_dir, make_window,
                                                                                  tmp_path):
    shutil.copy(DEMO, registry_dir / "demo.pth")
    window = make_window()
    folder = tmp_path / "held"
    wrong = noisy_digits(folder, 150, 8, seed=1)
    tab = scanned(qtbot, window, folder)     # the Train tab has the folder open
    ev = window.evaluate_tab
    window.tabs.setCurrentWidget(ev)
    ev.select_model("demo")
    ev.data_combo.setCurrentIndex(ev.data_combo.findData("folder"))
    ev.folder_edit.setText(str(folder))
    assert ev.labels_button.isEnabled()
    qtbot.mouseClick(ev.labels_button, Qt.MouseButton.LeftButton)
    qtbot.waitUntil(lambda: ev.labels.outcome is not None and not ev._labels_slot.busy(), timeout=180_000)
    assert ev.details.currentWidget() is ev.labels_page and ev.labels_stack.currentWidget() is ev.labels
    assert "the answers of demo" in ev.labels.summary.text()
    listed = [i.data(0, Qt.ItemDataRole.UserRole) for i in ev.labels.items()]
    assert listed and sum(p in wrong for p in listed) >= 0.8 * len(listed)
    ev.labels.items()[0].setSelected(True)
    qtbot.mouseClick(ev.labels.relabel_button, Qt.MouseButton.LeftButton)
    assert tab.health.relabel_map(str(folder)) == {listed[0]: ev.labels.items()[0].text(2)}
