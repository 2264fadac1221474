"""Sorting classified files into folders: copy, move, undo, clashes, dry run, cancel, full disk, links."""
import errno
import os
import threading

import pytest

from resnet_gui.core.inference import sorting
from resnet_gui.core.inference.prediction import Prediction
from resnet_gui.core.inference.sorting import (
    folder_counts,
    folder_names,
    plan_sort,
    preview,
    read_log,
    sort_files,
    undo_sort,
)
from resnet_gui.core.progress import Progress

CLASSES = ["cat", "dog"]


def _files(folder, names):
    folder.mkdir(parents=True, exist_ok=True)
    out = []
    for name in names:
        path = folder / name
        path.write_bytes(f"image bytes of {name}".encode() * 50)
        out.append(path)
    return out


def _predictions(files, answers):
    """answers: per file, (label, confidence, unfamiliar) or None for an unreadable file."""
    preds = []
    for path, answer in zip(files, answers):
        if answer is None:
            preds.append(Prediction(path=str(path), error=f"{path}: not an image"))
        else:
            label, conf, unfamiliar = answer
            preds.append(Prediction(path=str(path), label=label, confidence=conf, top_k=[(label, conf)],
                                    class_index=CLASSES.index(label), unfamiliar=unfamiliar, familiarity=0.5))
    return preds


@pytest.fixture
def sorted_inputs(tmp_path):
    files = _files(tmp_path / "in", ["a.jpg", "b.jpg", "c.jpg", "d.jpg", "e.jpg"])
    preds = _predictions(files, [("cat", 0.95, False), ("dog", 0.9, False), ("cat", 0.4, False),
                                 ("dog", 0.99, True), None])
    return files, preds


def test_plan_puts_each_state_in_its_folder_and_counts_them(sorted_inputs):
    _, preds = sorted_inputs
    plan = plan_sort(preds, CLASSES, threshold=0.6)
    assert [item.folder for item in plan] == ["cat", "dog", "_not_sure", "_unfamiliar", "_unreadable"]
    assert folder_counts(plan) == {"cat": 1, "dog": 1, "_not_sure": 1, "_unfamiliar": 1, "_unreadable": 1}
    # a class's own operating point counts: 0.95 is below a 0.97 bar for "cat"
    preds[0].class_threshold = 0.97
    assert plan_sort(preds, CLASSES, threshold=0.6)[0].folder == "_not_sure"


def test_copy_leaves_sources_and_logs_every_file(sorted_inputs, tmp_path):
    files, preds = sorted_inputs
    out = tmp_path / "out"
    result = sort_files(plan_sort(preds, CLASSES, 0.6), out)
    assert result.written == 5 and not result.stopped and not result.failed
    assert all(f.exists() for f in files)
    assert (out / "cat" / "a.jpg").read_bytes() == files[0].read_bytes()
    assert (out / "_unreadable" / "e.jpg").exists() and (out / "_unfamiliar" / "d.jpg").exists()
    rows = read_log(out)
    assert [r["action"] for r in rows] == ["copied"] * 5
    assert rows[0]["source"] == str(files[0]) and rows[0]["destination"] == str(out / "cat" / "a.jpg")
    assert rows[0]["class"] == "cat" and rows[0]["confidence"] == "0.950000" and rows[0]["state"] == "sure"
    assert rows[4]["state"] == "error" and rows[4]["class"] == ""
    assert not [p for p in out.rglob("*") if p.name.endswith(".tmp")]


def test_move_then_undo_puts_everything_back(sorted_inputs, tmp_path):
    files, preds = sorted_inputs
    contents = {f: f.read_bytes() for f in files}
    out = tmp_path / "out"
    result = sort_files(plan_sort(preds, CLASSES, 0.6), out, move=True)
    assert result.written == 5 and not any(f.exists() for f in files)
    assert (out / "dog" / "b.jpg").read_bytes() == contents[files[1]]
    undone = undo_sort(out)
    assert undone.moved_back == 5 and not undone.kept and not undone.stopped
    assert {f: f.read_bytes() for f in files} == contents
    assert undone.cleaned and not out.exists()  # the folder the sort made is gone, its log with it
    with pytest.raises(sorting.SortError, match="does not exist"):
        undo_sort(out)  # a second undo has nothing to do


def test_a_complete_undo_removes_the_log_and_every_folder_the_sort_made(sorted_inputs, tmp_path):
    """Move then Undo left 'inverted-sorted/sorted.csv' behind; the folders above OUT it made go too."""
    files, preds = sorted_inputs
    before = sorted(tmp_path.rglob("*"))
    out = tmp_path / "new" / "deeper" / "inverted-sorted"
    sort_files(plan_sort(preds, CLASSES, 0.6), out, move=True)
    made = [r["destination"] for r in sorting._log_rows(out) if r["action"] == sorting.CREATED]
    assert made[:3] == [str(tmp_path / "new"), str(tmp_path / "new" / "deeper"), str(out)]
    assert len(read_log(out)) == 5  # the files only
    undone = undo_sort(out)
    assert undone.moved_back == 5 and undone.cleaned
    assert sorted(tmp_path.rglob("*")) == before and all(f.exists() for f in files)


def test_a_complete_undo_keeps_what_existed_before_the_sort(sorted_inputs, tmp_path):
    files, preds = sorted_inputs
    out = tmp_path / "out"
    (out / "cat").mkdir(parents=True)                # an empty folder of the user's, named as a class
    (out / "notes.txt").write_text("mine")
    sort_files(plan_sort(preds, CLASSES, 0.6), out, move=True)
    (out / "dog" / "added meanwhile.txt").write_text("not the sort's")
    undone = undo_sort(out)
    assert undone.moved_back == 5 and undone.cleaned and all(f.exists() for f in files)
    assert sorted(p.relative_to(out).as_posix() for p in out.rglob("*")) == [
        "cat", "dog", "dog/added meanwhile.txt", "notes.txt"]


def test_undo_never_replaces_a_file_that_came_back_and_then_keeps_the_log(sorted_inputs, tmp_path):
    files, preds = sorted_inputs
    out = tmp_path / "out"
    sort_files(plan_sort(preds[:2], CLASSES, 0.6), out, move=True)
    files[0].write_bytes(b"a new file with the old name")
    undone = undo_sort(out)
    assert undone.moved_back == 1 and "exists again" in undone.kept[0] and not undone.cleaned
    assert files[0].read_bytes() == b"a new file with the old name" and (out / "cat" / "a.jpg").exists()
    # an incomplete undo keeps the log (it still lists a moved file) and OUT; the folder it emptied goes
    assert [r["action"] for r in read_log(out)] == ["moved", "moved back"] and not (out / "dog").exists()
    # a sort that copied: its copies stay, and so does the log that lists them
    copies = tmp_path / "copies"
    sort_files(plan_sort(preds[2:], CLASSES, 0.6), copies)
    assert not undo_sort(copies).cleaned and (copies / "sorted.csv").exists()


def test_clashes_get_a_suffix_and_nothing_is_overwritten(tmp_path):
    one = _files(tmp_path / "in" / "x", ["photo.jpg"])[0]
    two = _files(tmp_path / "in" / "y", ["photo.jpg"])[0]
    two.write_bytes(b"the second photo")
    out = tmp_path / "out"
    (out / "cat").mkdir(parents=True)
    (out / "cat" / "photo.jpg").write_bytes(b"already there")
    plan = plan_sort(_predictions([one, two], [("cat", 0.9, False), ("cat", 0.9, False)]), CLASSES, 0.6)
    assert [os.path.basename(d) for _, d in preview(plan, out)] == ["photo-2.jpg", "photo-3.jpg"]
    result = sort_files(plan, out)
    assert result.renamed == 2
    assert (out / "cat" / "photo.jpg").read_bytes() == b"already there"
    assert (out / "cat" / "photo-2.jpg").read_bytes() == one.read_bytes()
    assert (out / "cat" / "photo-3.jpg").read_bytes() == b"the second photo"


def test_dry_run_writes_nothing(sorted_inputs, tmp_path):
    _, preds = sorted_inputs
    out = tmp_path / "out"
    rows = preview(plan_sort(preds, CLASSES, 0.6), out)
    assert [d for _, d in rows][0] == str(out / "cat" / "a.jpg")
    assert not out.exists()


def test_cancel_stops_between_files_with_the_log_complete(sorted_inputs, tmp_path):
    files, preds = sorted_inputs
    stop = threading.Event()
    seen = []

    def on_progress(_what, done, _total):
        seen.append(done)
        if done == 2:
            stop.set()

    result = sort_files(plan_sort(preds, CLASSES, 0.6), tmp_path / "out", move=True,
                        progress=Progress(on_progress, stop, rate=0))
    assert result.cancelled and result.written == 2
    assert len(read_log(tmp_path / "out")) == 2 and sum(f.exists() for f in files) == 3


def test_full_disk_stops_cleanly_nothing_half_copied_nothing_lost(sorted_inputs, tmp_path, monkeypatch):
    files, preds = sorted_inputs
    contents = {f: f.read_bytes() for f in files}
    real_copy = sorting._copy_into
    calls = []

    def filling_disk(src_fh, dest, stat):
        calls.append(dest)
        if len(calls) == 3:  # the third file fills the disk halfway through its copy
            with sorting.atomic_writer(dest, overwrite=False) as out:
                out.write(src_fh.read(100))
                raise OSError(errno.ENOSPC, "No space left on device", str(dest))
        real_copy(src_fh, dest, stat)

    monkeypatch.setattr(sorting, "_copy_into", filling_disk)
    monkeypatch.setattr(sorting.os, "link", _no_hard_links(sorting.os.link))  # another disk: copy, then remove
    out = tmp_path / "out"
    result = sort_files(plan_sort(preds, CLASSES, 0.6), out, move=True)
    assert result.written == 2 and "disk is full" in result.stopped
    assert [r["action"] for r in read_log(out)] == ["moved", "moved"]
    assert not (out / "_not_sure").exists() or not list((out / "_not_sure").iterdir())  # no half file
    assert not [p for p in out.rglob("*") if p.name.startswith(".")]  # no temporary left
    for f in files[2:]:
        assert f.read_bytes() == contents[f]  # not moved: still there, whole
    for f, d in zip(files[:2], [out / "cat" / "a.jpg", out / "dog" / "b.jpg"]):
        assert d.read_bytes() == contents[f]


def _no_hard_links(real):
    def link(src, dst, *args, **kwargs):
        if str(dst).endswith(".tmp") or ".tmp" in os.path.basename(str(src)):
            return real(src, dst, *args, **kwargs)  # core.atomic's own exclusive rename
        raise OSError(errno.EXDEV, "Invalid cross-device link")
    return link


def test_unwritable_target_is_a_message_and_sources_stay(sorted_inputs, tmp_path, monkeypatch):
    files, preds = sorted_inputs
    out = tmp_path / "out"
    real = sorting._checked_folder

    def read_only(out, name, journal):
        if name == "dog":  # the second folder cannot be made (as in a folder the user may not write to)
            raise PermissionError(errno.EACCES, "Permission denied", str(out / name))
        return real(out, name, journal)

    monkeypatch.setattr(sorting, "_checked_folder", read_only)
    result = sort_files(plan_sort(preds, CLASSES, 0.6), out, move=True)
    assert result.written == 1 and "Permission denied" in result.stopped and str(out / "dog") in result.stopped
    assert [r["action"] for r in read_log(out)] == ["moved"]
    assert all(f.exists() for f in files[1:])


def test_symbolic_links_are_not_followed(tmp_path):
    real = _files(tmp_path / "elsewhere", ["secret.jpg"])[0]
    (tmp_path / "in").mkdir()
    link = tmp_path / "in" / "link.jpg"
    link.symlink_to(real)
    out = tmp_path / "out"
    result = sort_files(plan_sort(_predictions([link], [("cat", 0.9, False)]), CLASSES, 0.6), out, move=True)
    assert result.written == 0 and result.skipped == [str(link)]
    assert link.is_symlink() and real.exists() and not (out / "cat" / "link.jpg").exists()
    assert read_log(out)[0]["action"].startswith("skipped")
    # an output folder that is a link is not written through
    target = tmp_path / "target"
    target.mkdir()
    (out / "dog").symlink_to(target, target_is_directory=True)
    file = _files(tmp_path / "in2", ["b.jpg"])[0]
    result = sort_files(plan_sort(_predictions([file], [("dog", 0.9, False)]), CLASSES, 0.6), out)
    assert "symbolic link" in result.stopped and not list(target.iterdir())


def test_folder_names_are_safe_and_distinct():
    names = folder_names(["a/b", "a_b", "..", "_not_sure", "CON", "Cat", "cat", ""])
    assert names["a/b"] == "a_b" and names["a_b"] == "a_b-2"
    assert names[".."] == "class" and names["_not_sure"] == "_not_sure-class" and names["CON"] == "CON-class"
    assert names["Cat"] == "Cat" and names["cat"] == "cat-2" and names[""] == "class-2"


def test_a_torn_last_log_row_is_skipped_and_a_foreign_file_is_refused(tmp_path, sorted_inputs):
    files, preds = sorted_inputs
    out = tmp_path / "out"
    sort_files(plan_sort(preds[:2], CLASSES, 0.6), out, move=True)
    with open(out / "sorted.csv", "a") as fh:
        fh.write('"/half/written')
    assert len(read_log(out)) == 2
    assert undo_sort(out).moved_back == 2
    (tmp_path / "other").mkdir()
    (tmp_path / "other" / "sorted.csv").write_text("name,size\nx,1\n")
    with pytest.raises(sorting.SortError, match="not a sort log"):
        undo_sort(tmp_path / "other")
