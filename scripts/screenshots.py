#!/usr/bin/env python
"""Drive the real app on a (virtual) screen and save screenshots of each tab to docs/screenshots/.

    xvfb-run -s "-screen 0 2800x1900x24" .venv/bin/python scripts/screenshots.py [--theme light|dark] [--scale 2]

Uses a fresh temporary RESNET_GUI_HOME (so the demo model is installed as on a first run), classifies a
bundled sample and the samples folder, shows the three answer states and the Grad-CAM overlay, evaluates
the demo model on held-out digits, runs the dataset health check on a folder with planted problems, trains
a small model on 400 scikit-learn digits, then two tiny runs that differ in learning rate and epochs (overlaid
in the Runs tab) and the learning-rate finder on the same tiny data, and grabs the window after each step.

    --only runs,train-lr-finder    # just some shots (names as in --help), to iterate fast
"""
from __future__ import annotations

import argparse
import os
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "scripts"))


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--theme", default="light", choices=["light", "dark", "system"])
    parser.add_argument("--scale", type=float, default=1.0)
    parser.add_argument("--out", type=Path, default=ROOT / "docs" / "screenshots")
    parser.add_argument("--size", default="1280x820")
    parser.add_argument("--only", nargs="*", default=None,
                        help="predict folder states gradcam evaluate many health labels train train-empty models "
                             "details runs train-lr-finder, separated by spaces or commas (default: all but "
                             "train-empty)")
    parser.add_argument("--switch-theme", action="store_true",
                        help="start in the other theme and switch to --theme once the window is up (a live change)")
    args = parser.parse_args()
    if args.scale != 1.0:
        os.environ["QT_SCALE_FACTOR"] = str(args.scale)
    tmp = tempfile.mkdtemp(prefix="resnet-gui-shots-")
    os.environ["RESNET_GUI_HOME"] = tmp

    from PySide6.QtCore import QEventLoop, QTimer
    from PySide6.QtWidgets import QApplication

    from resnet_gui import resources
    from resnet_gui.core.settings import Settings
    from resnet_gui.ui.common import theme
    from resnet_gui.ui.main_window import MainWindow

    app = QApplication(sys.argv[:1])
    first = ("light" if args.theme == "dark" else "dark") if args.switch_theme else args.theme
    theme.apply(app, first)
    settings = Settings()
    settings.set("theme", first)
    window = MainWindow(settings)
    w, h = (int(v) for v in args.size.split("x"))
    window.resize(w, h)
    window.show()
    window.start_background_loading()
    suffix = ("" if args.theme == "light" else f"-{args.theme}") + ("" if args.scale == 1 else f"-{args.scale:g}x") \
        + ("-switched" if args.switch_theme else "")
    args.out.mkdir(parents=True, exist_ok=True)
    wanted = {name for item in args.only for name in item.split(",") if name} if args.only else \
        {"predict", "folder", "states", "gradcam", "evaluate", "many", "health", "labels", "train", "models",
         "details", "runs", "train-lr-finder"}

    def wait_until(cond, timeout_s=600):
        loop_timer = QTimer()
        deadline = [timeout_s * 1000]
        while not cond():
            loop = QEventLoop()
            loop_timer.singleShot(50, loop.quit)
            loop.exec()
            deadline[0] -= 50
            if deadline[0] <= 0:
                raise TimeoutError("the app did not reach the expected state")

    def settle(ms=400):
        loop = QEventLoop()
        QTimer.singleShot(ms, loop.quit)
        loop.exec()

    def shot(name, widget=None):
        settle()
        path = args.out / f"{name}{suffix}.png"
        (widget or window).grab().save(str(path))
        print(f"wrote {path}")

    wait_until(lambda: window.is_ready() and window.registry.loaded)
    if args.switch_theme:
        window.set_theme(args.theme)
    pt = window.predict_tab
    wait_until(lambda: pt.session.model is not None)
    if "predict" in wanted:
        pt.set_source(str(resources.path("samples/digit_3_1332.png")), None)
        wait_until(lambda: pt.single.class_label.text() == "3" and not pt.busy())
        shot("predict")
    if "folder" in wanted:
        pt.open_path(str(resources.path("samples")))
        wait_until(lambda: pt.folder.table_model.rowCount() > 0 and not pt.busy())
        pt.folder.lowest_button.click()
        shot("predict-folder")
        sort_shot(pt, Path(tmp), wait_until, settle, args.out / f"predict-sort{suffix}.png")
    from sklearn.datasets import load_digits
    from train_demo_model import export, split_indices

    digits = load_digits()
    labels = digits.target.astype(int)
    if "states" in wanted:
        unsure_shot(pt, digits, Path(tmp), wait_until, shot)
        unfamiliar_shot(window, pt, digits, labels, Path(tmp), wait_until, shot)
    if "gradcam" in wanted:
        pt.set_source(str(resources.path("samples/digit_3_1332.png")), None)
        wait_until(lambda: pt.single.class_label.text() == "3" and not pt.busy())
        pt.single.explain_toggle.setChecked(True)
        wait_until(lambda: pt.single.overlay_label == "3" and not pt.busy())
        shot("predict-gradcam")
        pt.single.explain_toggle.setChecked(False)
    if "evaluate" in wanted:
        _, _, test_idx = split_indices(labels, 0, None)
        held_out = Path(tmp) / "digits-test"
        export(held_out, digits.images, labels, test_idx)
        et = window.evaluate_tab
        window.tabs.setCurrentWidget(et)
        et.evaluate_folder(pt.current_model_name(), str(held_out))
        wait_until(lambda: et.outcome is not None and not et.busy())
        matrix = et.outcome.evaluation.figures.confusion_matrix
        mistakes = [(t, p) for t, row in enumerate(matrix) for p, n in enumerate(row) if n and t != p]
        et.show_cell(*(mistakes[0] if mistakes else (0, 0)))
        wait_until(lambda: et.gallery.count() > 0 and not et.session.gallery.busy())
        shot("evaluate")
        et.details.setCurrentIndex(et.details.indexOf(et.reliability_page))
        shot("evaluate-reliability")
        et.details.setCurrentIndex(et.details.indexOf(et.curves_page))
        et.curves.class_combo.setCurrentIndex(8)
        et.curves.precision_spin.setValue(99.5)
        et.curves.find_for_precision()
        shot("evaluate-thresholds")
    if "many" in wanted:
        many_classes_shot(window, wait_until, shot)
    if "health" in wanted:
        health_shot(window, digits, labels, Path(tmp), wait_until, shot)
    if "labels" in wanted:
        label_shots(window, digits, labels, Path(tmp), wait_until, shot)
    tiny = tiny_digits(digits, labels, Path(tmp) / "digits-tiny") \
        if "runs" in wanted or "train-lr-finder" in wanted else None
    if "train-lr-finder" in wanted:  # before training, as one would: the monitor below it still empty
        lr_finder_shot(window, tiny, wait_until, shot)
    if "train" in wanted or "train-empty" in wanted:
        train_idx, val_idx, _ = split_indices(labels, 0, 400)
        data = Path(tmp) / "digits"
        export(data / "train", digits.images, labels, train_idx)
        export(data / "val", digits.images, labels, val_idx)
        tt = window.train_tab
        window.tabs.setCurrentWidget(tt)
        tt.set_mode("scratch")
        tt.data.folder_edit.setText(str(data))
        tt.data.scan_folder()
        tt.form.arch_combo.setCurrentIndex(tt.form.arch_combo.findData("resnet18_cifar"))
        tt.form.epochs_spin.setValue(6)
        tt.form.batch_spin.setValue(32)
        tt.form.flip_check.setChecked(False)
        tt.form.warmup_spin.setValue(1)
        tt.form.name_edit.setText("digits-small")
        if "train-empty" in wanted:
            wait_until(lambda: tt.data.folder_summary.text().startswith("✓"))
            shot("train-empty")
        if "train" in wanted:
            tt.start()
            wait_until(lambda: not tt.is_training(), 900)
            shot("train")
    if "models" in wanted or "details" in wanted:
        window.tabs.setCurrentWidget(window.models_tab)
        wait_until(lambda: window.models_tab.table.rowCount() > 0)
        window.models_tab.table.selectRow(0)
        if "models" in wanted:
            shot("models")
        if "details" in wanted:
            dialog = window.models_tab.show_details()
            settle()
            path = args.out / f"model-details{suffix}.png"
            dialog.grab().save(str(path))
            print(f"wrote {path}")
            dialog.reject()
    if "runs" in wanted:  # last: its models would show in the Models tab
        runs_shot(window, tiny, wait_until, shot)
    window.close()
    wait_until(lambda: not window.isVisible())
    return 0


def sort_shot(pt, tmp: Path, wait_until, settle, path: Path) -> None:
    """Sort into folders… on the samples folder's results: the preview of the count per folder."""
    dialog = pt.folder.sort_dialog()
    dialog.out_edit.setText(str(tmp / "samples-sorted"))
    dialog.show()
    wait_until(dialog.ready)
    settle()
    dialog.grab().save(str(path))
    print(f"wrote {path}")
    dialog.reject()
    dialog.deleteLater()


def many_classes_shot(window, wait_until, shot) -> None:
    """The Evaluate tab at 200 classes (CUB-200's count): a SIMULATED evaluation (generated probabilities with
    look-alike groups of classes, no model), heat map sorted by errors and the most confused pairs."""
    import numpy as np

    from resnet_gui.core.evaluation.curves import class_curves
    from resnet_gui.core.evaluation.evaluate import Evaluation
    from resnet_gui.core.evaluation.metrics import figures
    from resnet_gui.ui.evaluate.session import EvalOutcome, EvalRequest

    rng = np.random.default_rng(0)
    n, per = 200, 20
    names = [f"{i + 1:03d}.{kind}_{group}" for i, (group, kind) in enumerate(
        (g, k) for g in ("Albatross", "Auklet", "Blackbird", "Bunting", "Cormorant", "Flycatcher", "Grebe", "Gull",
                         "Hummingbird", "Jay", "Kingfisher", "Oriole", "Pelican", "Sparrow", "Swallow", "Tern",
                         "Vireo", "Warbler", "Woodpecker", "Wren")
        for k in ("Black", "Brown", "Common", "Crested", "Eastern", "Great", "Least", "Northern", "Red", "Western"))]
    true = np.repeat(np.arange(n), per)
    logits = rng.normal(0, 1, (len(true), n))
    logits[np.arange(len(true)), true] += rng.uniform(1.5, 5, len(true))
    group = true // 10 * 10   # look-alikes: the ten species of a family
    for k in range(10):
        logits[np.arange(len(true)), group + k] += rng.uniform(0, 2.2, len(true))
    probs = np.exp(logits - logits.max(1, keepdims=True))
    probs /= probs.sum(1, keepdims=True)
    f = figures(probs, true, names)
    pred, conf = probs.argmax(1), probs.max(1)
    rows = [{"path": f"simulated image {i}", "true": names[t], "predicted": names[p], "confidence": float(c)}
            for i, (t, p, c) in enumerate(zip(true, pred, conf))]
    ev = Evaluation(figures=f, model="simulated-birds", data="simulated 200-class data (4,000 images)", tta=False,
                    misclassified=[r for r in rows if r["true"] != r["predicted"]][:50], failed=[],
                    unknown_classes={}, calibrated=True, rows=rows, curves=class_curves(probs, true, names))
    et = window.evaluate_tab
    window.tabs.setCurrentWidget(et)
    et._done(EvalOutcome(EvalRequest("simulated-birds", "", "simulated"), ev, ()))
    et.matrix_panel.order_combo.setCurrentIndex(1)
    et.details.setCurrentIndex(et.details.indexOf(et.pairs))
    # the results only (matrix and lists): the model and data fields above still name the model evaluated before
    area = et.matrix_panel.parentWidget()
    shot("evaluate-200-classes", area)
    et.matrix_panel.set_zoom(12)
    et.matrix_panel.scroll.horizontalScrollBar().setValue(0)   # the most-missed classes, names readable
    et.matrix_panel.scroll.verticalScrollBar().setValue(0)
    shot("evaluate-200-classes-zoomed", area)


# held-out digits blended into one ambiguous image: (index of the first, index of the second, weight of the first)
AMBIGUOUS = ((380, 254, 0.4), (21, 24, 0.4), (45, 37, 0.45))   # a 4 over a 9, a 1 over a 4, a 3 over a 9


def unsure_shot(pt, digits, tmp: Path, wait_until, shot) -> None:
    """The "Not sure" answer: the first blend of two digits that the model answers unsure of (a familiar-looking
    digit that no class reaches the threshold on); the checkerboard if none is (it used to be, with older demo
    models; the current one calls it unfamiliar)."""
    from train_demo_model import digit_image

    from resnet_gui import resources

    sources = []
    for i, j, w in AMBIGUOUS:
        path = tmp / f"{digits.target[i]}_or_{digits.target[j]}.png"
        digit_image(digits.images[i] * w + digits.images[j] * (1 - w)).save(path)
        sources.append(str(path))
    sources.append(str(resources.path("samples/not_a_digit_checkerboard.png")))
    for source in sources:
        pt.set_source(source, None)
        wait_until(lambda source=source: pt.single.shown_name == source and pt.single.state is not None
                   and not pt.busy())
        if pt.single.state == "unsure":
            break
    else:
        print(f"note: no image tried was answered unsure (the last: {pt.single.state})")
    shot("predict-unsure")


def unfamiliar_shot(window, pt, digits, labels, tmp: Path, wait_until, shot) -> None:
    """Give the demo model familiarity data from its validation digits (Models tab: Add familiarity data…; not
    the training digits, which it knows by heart and which would make its calibration too sure), then show it
    a photo (scikit-image's cat)."""
    from resnet_gui.core.inference.prediction import Prediction

    if "unfamiliar" not in getattr(Prediction, "__dataclass_fields__", {}):
        print("skipped predict-unfamiliar: core.predict.Prediction has no `unfamiliar` yet")
        return
    from PIL import Image
    from skimage import data as photos
    from train_demo_model import export, split_indices

    _, val_idx, _ = split_indices(labels, 0, None)
    known = tmp / "digits-familiar"
    export(known, digits.images, labels, val_idx)
    name = pt.current_model_name()
    mt = window.models_tab
    if (window.registry.entry(name).meta or {}).get("familiarity") is None:
        mt.add_familiarity(name, str(known))
        wait_until(lambda: not mt.jobs.busy())
        wait_until(lambda: (window.registry.entry(name).meta or {}).get("familiarity") is not None, 120)
    cat = tmp / "cat.png"
    Image.fromarray(photos.chelsea()).save(cat)
    window.tabs.setCurrentWidget(pt)
    pt.set_source(str(cat), None)
    wait_until(lambda: pt.single.shown_name == str(cat) and pt.single.state is not None and not pt.busy())
    if pt.single.state != "unfamiliar":
        print(f"note: the cat photo was not flagged as unfamiliar (state {pt.single.state})")
    shot("predict-unfamiliar")


def scanned_in_train_tab(window, data: Path, wait_until):
    """The Train tab, from scratch on `data` with resnet18_cifar, once its health check is done."""
    tt = window.train_tab
    window.tabs.setCurrentWidget(tt)
    tt.set_mode("scratch")
    tt.form.arch_combo.setCurrentIndex(tt.form.arch_combo.findData("resnet18_cifar"))
    tt.data.folder_edit.setText(str(data))
    tt.data.scan_folder()
    # the check starts once the scan is done: until then the result is the previous folder's
    wait_until(lambda: tt.health.result is not None and Path(tt.health.result.folder) == Path(data)
               and not tt.health.busy())
    return tt


def health_shot(window, digits, labels, tmp: Path, wait_until, shot) -> None:
    """The Train tab's health check on 400 digits with planted problems: a copy across the split, a duplicate,
    a broken file, a tiny image."""
    import shutil

    from PIL import Image
    from train_demo_model import export, split_indices

    train_idx, val_idx, _ = split_indices(labels, 0, 400)
    data = tmp / "digits-problems"
    train = export(data / "train", digits.images, labels, train_idx)
    export(data / "val", digits.images, labels, val_idx)
    shutil.copy(train[0], data / "val" / train[0].parent.name / "copied_from_training.png")
    shutil.copy(train[5], train[5].with_name("second_copy.png"))
    (data / "train" / "7" / "broken.png").write_bytes(b"\x89PNG\r\n\x1a\n cut short")
    Image.new("RGB", (8, 8), (30, 30, 30)).save(data / "train" / "1" / "tiny_scan.png")
    tt = scanned_in_train_tab(window, data, wait_until)
    report = tt.health.result.report  # tick what is plainly wrong: the broken file and the exact copies
    tt.health.set_excluded([u["path"] for u in report.unreadable] + [g[-1] for g in report.exact_duplicates])
    scroll = tt.form.parentWidget().parentWidget()  # the form's scroll area
    scroll.ensureWidgetVisible(tt.health, 0, 0)
    shot("train-health")
    tt.health.include_all()


def noisy_export(folder: Path, digits, labels, indices, share: float, seed: int) -> None:
    """The digits of `indices` as class folders, `share` of them filed under another class (seeded)."""
    import numpy as np
    from train_demo_model import digit_image

    rng = np.random.default_rng(seed)
    wrong = set(rng.choice(len(indices), round(share * len(indices)), replace=False).tolist())
    for n, i in enumerate(indices):
        label = (labels[i] + int(rng.integers(1, 10))) % 10 if n in wrong else labels[i]
        target = folder / str(label) / f"digit_{i:04d}.png"
        target.parent.mkdir(parents=True, exist_ok=True)
        digit_image(digits.images[i]).save(target)


def label_shots(window, digits, labels, tmp: Path, wait_until, shot) -> None:
    """Likely label mistakes: in the Train tab's health panel on 600 digits with 5 % of them filed under another
    class (three decisions taken), and in the Evaluate tab with the demo model on its held-out digits (5 %
    misfiled)."""
    from train_demo_model import split_indices

    data = tmp / "digits-misfiled"
    noisy_export(data, digits, labels, list(range(600)), 0.05, 0)
    tt = scanned_in_train_tab(window, data, wait_until)
    tt.health.find_label_mistakes()
    wait_until(lambda: tt.health.labels.outcome is not None and not tt.health.busy())
    view = tt.health.labels
    for index, act in ((0, view.relabel_selected), (1, view.exclude_selected), (2, view.confirm_selected)):
        view.list.clearSelection()
        view.items()[index].setSelected(True)
        act()
    view.list.clearSelection()
    view.items()[3].setSelected(True)
    scroll = tt.form.parentWidget().parentWidget()  # the form's scroll area
    scroll.ensureWidgetVisible(view, 0, 0)
    shot("train-labels")
    _, _, test_idx = split_indices(labels, 0, None)
    held_out = tmp / "digits-test-misfiled"
    noisy_export(held_out, digits, labels, test_idx, 0.05, 1)
    et = window.evaluate_tab
    window.tabs.setCurrentWidget(et)
    et.data_combo.setCurrentIndex(et.data_combo.findData("folder"))
    et.folder_edit.setText(str(held_out))
    et.find_label_mistakes()
    wait_until(lambda: et.labels.outcome is not None and not et._labels_slot.busy())
    shot("evaluate-labels")


def tiny_digits(digits, labels, folder: Path) -> Path:
    """Digits 0-3 only, 25 per class to train on and 8 to validate (trained at 16 px: the digits are 8x8
    scans): a few seconds an epoch on a laptop's CPU."""
    from train_demo_model import export

    train_idx, val_idx = [], []
    for digit in range(4):
        idx = [int(i) for i in (labels == digit).nonzero()[0]]
        train_idx += idx[:25]
        val_idx += idx[25:33]
    export(folder / "train", digits.images, labels, train_idx)
    export(folder / "val", digits.images, labels, val_idx)
    return folder


def tiny_form(tt, data: Path, name: str, lr: float, epochs: int) -> None:
    """The Train tab's form set up for resnet18_cifar from scratch on the tiny digits, at 16 px, no augmentation."""
    tt.set_mode("scratch")
    tt.data.folder_edit.setText(str(data))
    tt.data.scan_folder()
    tt.form.arch_combo.setCurrentIndex(tt.form.arch_combo.findData("resnet18_cifar"))
    tt.form.epochs_spin.setValue(epochs)
    tt.form.batch_spin.setValue(16)
    tt.form.lr_spin.setValue(lr)
    tt.form.augment_combo.setCurrentIndex(tt.form.augment_combo.findData("none"))
    tt.form.flip_check.setChecked(False)
    tt.form.image_size_spin.setValue(16)
    tt.form.warmup_spin.setValue(0)
    tt.form.name_edit.setText(name)


RUNS = (("digits-lr0.05", 0.05, 4), ("digits-lr0.01", 0.01, 3))   # name, learning rate, epochs


def runs_shot(window, data: Path, wait_until, shot) -> None:
    """Two tiny runs that differ in learning rate and epochs, both selected in the Runs tab: curves overlaid,
    the differing settings listed first and highlighted."""
    tt = window.train_tab
    window.tabs.setCurrentWidget(tt)
    for name, lr, epochs in RUNS:
        tiny_form(tt, data, name, lr, epochs)
        wait_until(lambda: tt.data.folder_summary.text().startswith("✓"), 120)
        tt.start()
        wait_until(lambda: not tt.is_training(), 600)
        if tt.last_result is None or tt.last_result.status != "finished":
            raise RuntimeError(f"the run {name} did not finish: {tt.last_result and tt.last_result.message}")
    names = [name for name, _, _ in RUNS]
    tab = window.runs_tab
    window.tabs.setCurrentWidget(tab)
    wait_until(lambda: tab.table.rowCount() >= 2 and not tab.session.listing.busy(), 120)
    tab.table.select_names(names)
    wait_until(lambda: bool(tab.diff.differing) and not tab.session.comparison.busy(), 120)
    shot("runs")


def lr_finder_shot(window, data: Path, wait_until, shot) -> None:
    """The learning-rate finder in the Train tab on the tiny digits (60 steps instead of 100), its suggestion
    taken into the form, the form scrolled to the learning rate. Afterwards the panel is hidden and the form
    reset to the recipe's defaults, as the next shots expect."""
    from PySide6.QtCore import QPoint
    from PySide6.QtWidgets import QPushButton

    tt = window.train_tab
    window.tabs.setCurrentWidget(tt)
    tiny_form(tt, data, "digits-tiny", 0.01, 4)
    wait_until(lambda: tt.data.folder_summary.text().startswith("✓"), 120)
    tt.session.lr_find_steps = 60
    tt.find_lr_button.click()
    wait_until(lambda: tt.lr_panel.suggested is not None and not tt.session.is_finding_lr(), 600)
    tt.lr_panel.use_button.click()
    model_box = tt.form.arch_combo.parentWidget()  # the form scrolled to its Model and Settings groups
    scroll = tt.form.parentWidget().parentWidget()  # the form's scroll area
    scroll.verticalScrollBar().setValue(model_box.mapTo(tt.form, QPoint(0, 0)).y() - 8)
    shot("train-lr-finder")
    tt.lr_panel.close_button.click()
    next(b for b in tt.form.findChildren(QPushButton) if b.text() == "Reset to recipe defaults").click()
    scroll.verticalScrollBar().setValue(0)


if __name__ == "__main__":
    sys.exit(main())
