"""*Sort into folders…* on the folder results: preview counts, copy, move + undo, stop, a full disk."""
import errno

import pytest
from helpers import write_image
from PySide6.QtWidgets import QLabel

from resnet_gui.core.inference.prediction import Prediction
from resnet_gui.ui.predict.folder_results_view import FolderResultsView
from resnet_gui.ui.predict.session import FolderDone, FolderRows


@pytest.fixture
def view(qtbot, settings, tmp_path):
    view = FolderResultsView(settings)
    qtbot.addWidget(view)
    folder = tmp_path / "photos"
    preds = []
    for i in range(40):
        path = write_image(folder / f"img{i:03d}.png", size=(8, 8), seed=i)
        if i % 10 == 9:
            preds.append(Prediction(path=str(path), error=f"{path}: not an image"))
        else:
            label = "cat" if i % 2 else "dog"
            conf = 0.3 if i % 5 == 0 else 0.9
            preds.append(Prediction(path=str(path), label=label, confidence=conf, top_k=[(label, conf)],
                                    class_index=0, unfamiliar=i == 4))
    view.start(str(folder), "pets")
    view.add_rows(FolderRows(tuple((p, None) for p in preds), 40, 40))
    view.finish(FolderDone(folder=str(folder), model_name="pets", total=40, done=40))
    qtbot.waitUntil(lambda: not view.running)
    return view


def test_the_preview_counts_each_folder_before_anything_is_written(view, qtbot, tmp_path):
    assert view.sort_button.isEnabled()
    dialog = view.sort_dialog()
    qtbot.addWidget(dialog)
    qtbot.waitUntil(dialog.ready)
    rows = dict(dialog.preview_rows())
    # 9, 19, 29, 39 unreadable; multiples of 5 at 30 % (not sure); 4 unfamiliar; the rest sure, odd ones cats
    assert rows == {"cat": 12, "dog": 15, "_not_sure": 8, "_unfamiliar": 1, "_unreadable": 4}
    qtbot.waitUntil(dialog.sort_button.isEnabled)   # once the plan's task has ended
    assert dialog.out_edit.text() == str(tmp_path / "photos-sorted")
    assert dialog.sort_button.text() == "Copy 40 files"
    assert not (tmp_path / "photos-sorted").exists()
    dialog.out_edit.setText("relative/path")
    assert not dialog.sort_button.isEnabled() and "whole path" in dialog.message.text()


def test_move_with_progress_then_undo(view, qtbot, tmp_path):
    dialog = view.sort_dialog()
    qtbot.addWidget(dialog)
    qtbot.waitUntil(dialog.ready)
    dialog.move_radio.setChecked(True)
    assert dialog.sort_button.text() == "Move 40 files"
    with qtbot.waitSignal(dialog._slot.busy_changed, timeout=30_000, check_params_cb=lambda busy: not busy):
        dialog.start()
        assert not dialog.progress.isHidden() and not dialog.close_button.isEnabled()
    out = tmp_path / "photos-sorted"
    assert dialog.result.written == 40 and dialog.message.kind() == "success"
    assert len(list((out / "cat").iterdir())) == 12 and not list((tmp_path / "photos").iterdir())
    assert not dialog.undo_button.isHidden() and dialog.undo_button.isEnabled()
    with qtbot.waitSignal(dialog._slot.busy_changed, timeout=30_000, check_params_cb=lambda busy: not busy):
        dialog.undo()
    assert dialog.undo_result.moved_back == 40 and len(list((tmp_path / "photos").iterdir())) == 40
    assert "Moved 40 files back." in dialog.message.text()
    dialog.out_edit.setText(str(tmp_path / "elsewhere"))
    assert not dialog.sort_button.isEnabled()   # one sort per dialog


def test_stop_keeps_what_was_done_and_a_full_disk_is_an_error_message(view, qtbot, tmp_path, monkeypatch):
    from resnet_gui.core.inference import sorting

    dialog = view.sort_dialog()
    qtbot.addWidget(dialog)
    qtbot.waitUntil(dialog.ready)
    real = sorting._copy_into
    copied = []

    def slow_then_full(src, dest, stat):
        copied.append(dest)
        if len(copied) == 5:
            dialog._slot.request_stop()  # as the Stop button does, while the sort runs
        real(src, dest, stat)

    monkeypatch.setattr(sorting, "_copy_into", slow_then_full)
    with qtbot.waitSignal(dialog._slot.busy_changed, timeout=30_000, check_params_cb=lambda busy: not busy):
        dialog.start()
    assert dialog.result.cancelled and dialog.result.written == 5 and "Stopped." in dialog.message.text()
    assert len(sorting.read_log(tmp_path / "photos-sorted")) == 5

    def full(src, dest, stat):
        raise OSError(errno.ENOSPC, "No space left on device", str(dest))

    monkeypatch.setattr(sorting, "_copy_into", full)
    dialog2 = view.sort_dialog()
    qtbot.addWidget(dialog2)
    qtbot.waitUntil(dialog2.ready)
    with qtbot.waitSignal(dialog2._slot.busy_changed, timeout=30_000, check_params_cb=lambda busy: not busy):
        dialog2.start()
    assert dialog2.message.kind() == "error" and "The disk is full" in dialog2.message.text()
    assert "no file was lost" in dialog2.message.text()
    assert len(list((tmp_path / "photos").iterdir())) == 40


def test_the_sort_dialog_states_the_threshold_as_set(view, qtbot):
    view.set_threshold(0.999)   # "100%" at no decimals, though 99.96 % answers would go to _not_sure
    dialog = view.sort_dialog()
    qtbot.addWidget(dialog)
    qtbot.waitUntil(dialog.ready)
    texts = " ".join(label.text() for label in dialog.findChildren(QLabel))
    assert "“not sure below” 99.9% and" in texts
