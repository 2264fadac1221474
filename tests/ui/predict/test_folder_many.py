"""A big folder in the Predict tab: the table fills while the run goes on, and rows are added a slice at a
time so that a fast worker never stalls the window."""
from helpers import write_image
from PySide6.QtGui import QImage


def test_a_folder_fills_the_table_progressively(qtbot, digits_model, predict_tab, tmp_path):
    n = 160
    for i in range(n):
        write_image(tmp_path / "many" / f"c{i % 3}" / f"img{i:04d}.png", size=(16, 16), seed=i)
    tab = predict_tab
    view = tab.folder
    seen: list[int] = []   # rows in the table each time the worker reported some
    tab.session.folder_progress.connect(lambda _rows: seen.append(view.table_model.rowCount()))
    with qtbot.waitSignal(tab.session.folder_done, timeout=120_000) as done:
        tab.open_path(str(tmp_path / "many"))
        qtbot.waitUntil(lambda: view.proxy.rowCount() > 0, timeout=60_000)
        assert view.running  # rows are visible before the run ends
    assert not done.args[0].cancelled
    qtbot.waitUntil(lambda: not view.running, timeout=10_000)
    assert view.table_model.rowCount() == n and not view.pending_rows()
    assert any(0 < count < n for count in seen)   # in several steps, not all at the end
    names = [view.proxy.index(r, 1).data() for r in range(n)]
    assert names == sorted(names)   # sorted A to Z while filling
    assert f"done, {n:,} classified" in view.folder_label.full_text()
    assert view.filter_combo.itemText(0) == f"All images ({n:,})"   # the filter counts each state


def test_rows_are_added_a_slice_at_a_time_and_the_run_ends_after_the_last(qtbot, monkeypatch, settings):
    from resnet_gui.core.inference.prediction import Prediction
    from resnet_gui.ui.predict import folder_results_view
    from resnet_gui.ui.predict.session import FolderDone, FolderLabels, FolderRows

    monkeypatch.setattr(folder_results_view, "INSERT_BUDGET_S", 0.0)  # one row per event-loop turn
    view = folder_results_view.FolderResultsView(settings)
    qtbot.addWidget(view)
    view.show()
    n = 300
    paths = [f"/data/d/{'one' if i % 2 else 'two'}/img{i:04d}.png" for i in range(n)]
    thumb = QImage(8, 8, QImage.Format.Format_RGB888)
    thumb.fill(0)
    view.start("/data/d", "digits")
    view.set_labels(FolderLabels({p: p.split("/")[-2] for p in paths}, {}))
    preds = [Prediction(path=p, label="two", confidence=0.9, top_k=[("two", 0.9)], class_index=2) for p in paths]
    preds[7] = Prediction(path=paths[7], error=f"{paths[7]}: not an image")
    view.add_rows(FolderRows(tuple((p, thumb) for p in preds), n, n))
    assert view.table_model.rowCount() == 1 and view.pending_rows() == n - 1   # the rest follows turn by turn
    view.finish(FolderDone(folder="/data/d", model_name="digits", total=n, done=n))
    assert view.running   # the run ends once its last row is in
    qtbot.waitUntil(lambda: not view.running, timeout=10_000)
    assert view.table_model.rowCount() == n and not view.pending_rows()
    assert f"done, {n - 1:,} classified by “digits”, 1 failed" in view.folder_label.full_text()
    assert view.folder_errors.isVisible() and "img0007.png: not an image" in view.folder_errors.text()
    assert view.accuracy() == (150, 299)   # the even-numbered files are in "two"; img0007 failed
    assert "50.2% right (150 of 299 images)" in view.accuracy_note.text()
    assert len(view.accuracy_note.buttons()) == 1


def test_a_new_run_drops_the_rows_still_queued(qtbot, monkeypatch, settings):
    from resnet_gui.core.inference.prediction import Prediction
    from resnet_gui.ui.predict import folder_results_view
    from resnet_gui.ui.predict.session import FolderDone, FolderRows

    monkeypatch.setattr(folder_results_view, "INSERT_BUDGET_S", 0.0)
    view = folder_results_view.FolderResultsView(settings)
    qtbot.addWidget(view)
    view.start("/data/old", "digits")
    old = tuple((Prediction(path=f"/data/old/{i}.png", label="two", confidence=0.9), None) for i in range(50))
    view.add_rows(FolderRows(old, 50, 50))
    view.finish(FolderDone(folder="/data/old", model_name="digits", total=50, done=50, cancelled=True))
    view.start("/data/new", "digits")
    new = (Prediction(path="/data/new/a.png", label="one", confidence=0.8), None)
    view.add_rows(FolderRows((new,), 1, 1))
    view.finish(FolderDone(folder="/data/new", model_name="digits", total=1, done=1))
    assert not view.running and not view.pending_rows()
    assert view.table_model.rowCount() == 1 and view.results == [new[0]]
    assert "/data/new: done, 1 classified" in view.folder_label.full_text()
