#!/usr/bin/env python
"""Drive the real app on a (virtual) screen and save screenshots of each tab to docs/screenshots/.

    xvfb-run -s "-screen 0 2800x1900x24" .venv/bin/python scripts/screenshots.py [--theme light|dark] [--scale 2]

Uses a fresh temporary RESNET_GUI_HOME (so the demo model is installed as on a first run), classifies a
bundled sample and the samples folder, trains a small model on 300 scikit-learn digits, and grabs the
window after each step.
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
                        help="predict folder train train-empty models details (default: all but train-empty)")
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
    from resnet_gui.ui import theme
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
    wanted = set(args.only or ["predict", "folder", "train", "models", "details"])

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

    def shot(name):
        settle()
        path = args.out / f"{name}{suffix}.png"
        window.grab().save(str(path))
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
    if "train" in wanted or "train-empty" in wanted:
        from sklearn.datasets import load_digits
        from train_demo_model import export, split_indices

        digits = load_digits()
        labels = digits.target.astype(int)
        train_idx, val_idx, _ = split_indices(labels, 0, 400)
        data = Path(tmp) / "digits"
        export(data / "train", digits.images, labels, train_idx)
        export(data / "val", digits.images, labels, val_idx)
        tt = window.train_tab
        window.tabs.setCurrentWidget(tt)
        tt.form.mode_combo.setCurrentIndex(2)
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
    window.close()
    wait_until(lambda: not window.isVisible())
    return 0


if __name__ == "__main__":
    sys.exit(main())
