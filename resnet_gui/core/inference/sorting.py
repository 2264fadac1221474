"""Sort classified files into folders: OUT/<class>/ for the sure answers, OUT/_not_sure/, OUT/_unfamiliar/ and
OUT/_unreadable/ for the rest; copied by default, or moved. No torch, no Qt.

Safety rules, in the order they apply to each file:

* a source that is a symbolic link is not followed (it is logged as skipped), and neither is a destination folder
  that is one (the sort stops: it would write somewhere else than OUT);
* nothing is ever overwritten: a name already taken gets a suffix (`photo-2.jpg`, `photo-3.jpg`, ...), and the
  destination is created exclusively, so a file that appears meanwhile is not replaced either;
* a copy is written through core.atomic (temporary file, fsync, then a hard link that fails if the name exists):
  a full disk or a crash never leaves a half-copied file; a move is a hard link then the source's removal on the
  same disk, or that copy then the removal elsewhere: the source goes only once its copy is complete on disk;
* a failure to write (full disk, permission, read-only disk) stops the sort there; a source that cannot be read
  is logged as failed and the others go on; a cancel stops between two files.

`OUT/sorted.csv` logs every file as it is done (source, destination, class, confidence, state, action). It is a
journal, not a file written at once: each row is flushed when its file is done (so a sort stopped by anything,
a crash included, has logged what it did), synced to disk at least once a second and at the end; a reader skips
a torn last row. The folders the sort creates (OUT itself when it did not exist, its sub-folders) are logged too,
as rows with the action "created folder" and the folder as destination (read_log() leaves them out).
`undo_sort(OUT)` moves the moved files back from it (never over a file that exists) and marks them so in the log
(written atomically). Copies are left where they are: their originals never moved. An undo that put every file
back removes the log and the folders the sort created that are left empty: the output folder is gone again when
the sort made it (never a folder that existed before, never a file the sort did not write).
"""
from __future__ import annotations

import csv
import errno
import os
import re
import time
from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path

from ..atomic import atomic_write_bytes, atomic_writer
from ..errors import ResnetGuiError, user_message
from ..progress import NO_PROGRESS, Progress
from .prediction import ERROR, SURE, UNFAMILIAR, UNSURE, Prediction, csv_cell

LOG_NAME = "sorted.csv"
STATE_FOLDERS = {UNSURE: "_not_sure", UNFAMILIAR: "_unfamiliar", ERROR: "_unreadable"}
LOG_COLUMNS = ["source", "destination", "class", "confidence", "state", "action"]
COPIED, MOVED, MOVED_BACK, SKIPPED, FAILED = "copied", "moved", "moved back", "skipped", "failed"
CREATED = "created folder"   # a folder the sort made (it did not exist before)
CHUNK = 1 << 20
SYNC_EVERY_S = 1.0
# what a folder name must not hold on Windows, macOS or Linux (and control characters)
_BAD_CHARS = re.compile(r'[\x00-\x1f\x7f<>:"/\\|?*]')
_RESERVED = {"con", "prn", "aux", "nul", *(f"com{i}" for i in range(10)), *(f"lpt{i}" for i in range(10))}


class SortError(ResnetGuiError):
    """The sort cannot start or go on (an output folder that is a link, a log that cannot be read)."""


@dataclass(frozen=True)
class SortItem:
    source: str
    folder: str                 # the sub-folder of OUT it goes to
    label: str | None
    confidence: float | None
    state: str


@dataclass
class SortResult:
    out: str
    move: bool
    total: int                                   # files planned
    done: Counter = field(default_factory=Counter)   # folder -> files copied or moved there
    skipped: list[str] = field(default_factory=list)  # sources not followed (links)
    failed: list[str] = field(default_factory=list)   # "source: why", for sources that could not be read
    renamed: int = 0                             # files that got a suffix because the name was taken
    stopped: str | None = None                   # why the sort stopped before the end (full disk, ...)
    cancelled: bool = False

    @property
    def written(self) -> int:
        return sum(self.done.values())


def folder_names(class_names: Iterable[str]) -> dict[str, str]:
    """A folder name for every class: characters no file system accepts become '_', no leading dot or trailing
    dot/space, Windows' device names and the state folders (_not_sure, ...) get a suffix, and two classes never
    share a folder, even on a disk that ignores case."""
    out: dict[str, str] = {}
    ours = {name.lower() for name in STATE_FOLDERS.values()} | {LOG_NAME.lower()}
    taken = set(ours)
    for name in class_names:
        base = _BAD_CHARS.sub("_", str(name)).strip().lstrip(".").rstrip(". ")[:120] or "class"
        if base.lower() in ours or base.split(".")[0].lower() in _RESERVED:
            base = f"{base}-class"
        candidate, n = base, 2
        while candidate.lower() in taken:
            candidate, n = f"{base}-{n}", n + 1
        taken.add(candidate.lower())
        out[str(name)] = candidate
    return out


def plan_sort(predictions: Iterable[Prediction], class_names: Iterable[str], threshold: float) -> list[SortItem]:
    """Where each file goes at the reader's threshold (Prediction.state: the class's own operating point too)."""
    folders = folder_names(class_names)
    plan = []
    for p in predictions:
        if p.path is None:
            continue
        state = p.state(threshold)
        folder = folders.get(p.label or "", "_not_sure") if state == SURE else STATE_FOLDERS[state]
        plan.append(SortItem(str(p.path), folder, p.label if p.ok else None, p.confidence if p.ok else None, state))
    return plan


def folder_counts(plan: Iterable[SortItem]) -> Counter:
    """Files per destination folder: the preview shown before anything is written."""
    return Counter(item.folder for item in plan)


def _numbered(name: str, n: int) -> str:
    stem, dot, ext = name.rpartition(".")
    return f"{stem}-{n}.{ext}" if dot and stem else f"{name}-{n}"


def _free_name(folder: Path, name: str, planned: set[str] | None = None) -> str:
    candidate, n = name, 2
    while os.path.lexists(folder / candidate) or (planned is not None and candidate.lower() in planned):
        candidate, n = _numbered(name, n), n + 1
    return candidate


def _open_source(source: str):
    """The source file opened for reading without following a link; OSError when it cannot be."""
    flags = os.O_RDONLY | getattr(os, "O_NOFOLLOW", 0) | getattr(os, "O_BINARY", 0)
    fd = os.open(source, flags)
    return os.fdopen(fd, "rb")


def _copy_into(src_fh, dest: Path, stat: os.stat_result) -> None:
    """Copy the open source into `dest` atomically and exclusively (FileExistsError: the name was taken)."""
    with atomic_writer(dest, overwrite=False) as out:
        while chunk := src_fh.read(CHUNK):
            out.write(chunk)
    try:
        os.utime(dest, ns=(stat.st_atime_ns, stat.st_mtime_ns))
    except OSError:
        pass


def _place(source: str, folder: Path, name: str, move: bool) -> Path:
    """Copy or move `source` to folder/name, or to the first free numbered name; returns where it went.
    OSError from reading the source is a SourceError; anything else is a failure to write."""
    try:
        st = os.lstat(source)
        src_fh = _open_source(source)
    except OSError as exc:
        raise _SourceError(exc) from None
    with src_fh:
        while True:
            dest = folder / _free_name(folder, name)
            if move:
                try:
                    os.link(source, dest)  # same disk: atomic, never replaces an existing name
                except FileExistsError:
                    continue
                except OSError as exc:
                    if exc.errno not in (errno.EXDEV, errno.EPERM, errno.ENOTSUP, errno.EMLINK, errno.EACCES):
                        raise
                else:
                    os.unlink(source)
                    return dest
            try:
                src_fh.seek(0)
                _copy_into(src_fh, dest, st)
            except FileExistsError:
                continue
            if move:
                os.unlink(source)  # only now: its copy is complete and synced
            return dest


class _SourceError(Exception):
    def __init__(self, exc: OSError):
        super().__init__(exc)
        self.exc = exc


class _Journal:
    """sorted.csv, appended a row at a time (see the module docstring)."""

    def __init__(self, path: Path):
        self.path = path
        new = not path.exists() or path.stat().st_size == 0
        self.fh = open(path, "a", newline="", encoding="utf-8")  # noqa: SIM115 - closed in close()
        self.writer = csv.writer(self.fh)
        self.synced = time.monotonic()
        if new:
            self.writer.writerow(LOG_COLUMNS)
            self.fh.flush()

    def row(self, item: SortItem, dest: str, action: str) -> None:
        confidence = "" if item.confidence is None else f"{item.confidence:.6f}"
        self._write([item.source, dest, csv_cell(item.label or ""), confidence, item.state, action])

    def created(self, folder: Path) -> None:
        self._write(["", str(folder), "", "", "", CREATED])

    def _write(self, cells: list[str]) -> None:
        self.writer.writerow(cells)
        self.fh.flush()
        if time.monotonic() - self.synced >= SYNC_EVERY_S:
            os.fsync(self.fh.fileno())
            self.synced = time.monotonic()

    def close(self) -> None:
        try:
            self.fh.flush()
            os.fsync(self.fh.fileno())
        finally:
            self.fh.close()


def _checked_folder(out: Path, name: str, journal: _Journal) -> Path:
    """out/name, made (and logged as made) when it does not exist."""
    folder = out / name
    if folder.is_symlink():
        raise SortError(f"{folder} is a symbolic link; the sort does not write through links. "
                        "Remove the link or choose another output folder")
    try:
        folder.mkdir()
    except FileExistsError:
        return folder
    journal.created(folder)
    return folder


def sort_files(plan: list[SortItem], out: os.PathLike | str, *, move: bool = False,
               progress: Progress = NO_PROGRESS) -> SortResult:
    """Copy (or move) every planned file into its folder under `out`, logging each one in out/sorted.csv.
    Stops at the first failure to write (SortResult.stopped says why) or when progress is cancelled. Raises
    OSError or SortError only when nothing could start (the folder or its log cannot be made)."""
    out = Path(out).expanduser().absolute()
    result = SortResult(out=str(out), move=move, total=len(plan))
    if out.is_symlink():
        raise SortError(f"{out} is a symbolic link; choose the folder it points to, or another one")
    made = [p for p in (out, *out.parents) if not os.path.lexists(p)]
    out.mkdir(parents=True, exist_ok=True)
    journal = _Journal(out / LOG_NAME)
    try:
        for folder in reversed(made):
            journal.created(folder)
    except OSError:
        journal.close()
        raise
    folders: dict[str, Path] = {}
    try:
        for i, item in enumerate(plan):
            progress.update("Sorting", i, len(plan))
            if progress.cancelled():
                result.cancelled = True
                break
            if not _sort_one(item, out, folders, move, journal, result):
                break
        else:
            progress.update("Sorting", len(plan), len(plan))
    finally:
        try:
            journal.close()
        except OSError as exc:
            result.stopped = result.stopped or user_message(exc)
    return result


def _sort_one(item: SortItem, out: Path, folders: dict[str, Path], move: bool, journal: _Journal,
              result: SortResult) -> bool:
    """One file placed and logged; False when the sort must stop (result.stopped says why)."""
    source = os.path.abspath(item.source)
    dest, action = "", MOVED if move else COPIED
    if os.path.islink(source):
        result.skipped.append(source)
        action = f"{SKIPPED}: a symbolic link, not followed"
    else:
        name = os.path.basename(source)
        try:
            if item.folder not in folders:
                folders[item.folder] = _checked_folder(out, item.folder, journal)
            placed = _place(source, folders[item.folder], name, move)
        except _SourceError as cause:
            reason = cause.exc.strerror or str(cause.exc)
            result.failed.append(f"{source}: {reason}")
            action = f"{FAILED}: {reason}"
        except (OSError, SortError) as exc:
            result.stopped = user_message(exc)
            return False
        else:
            dest = str(placed)
            result.renamed += placed.name != name
            result.done[item.folder] += 1
    try:
        journal.row(item, dest, action)
    except OSError as exc:
        done = f" The log lacks the last file: {source} went to {dest}." if dest else ""
        result.stopped = user_message(exc) + done
        return False
    return True


def preview(plan: list[SortItem], out: os.PathLike | str) -> list[tuple[SortItem, str]]:
    """Where each file would go (a dry run): names taken in `out` or by an earlier file of the plan get the
    suffix the sort would give them. Nothing is written."""
    out = Path(out).expanduser().absolute()
    taken: dict[str, set[str]] = {}
    rows = []
    for item in plan:
        folder = out / item.folder
        planned = taken.setdefault(item.folder, set())
        name = _free_name(folder, os.path.basename(item.source), planned)
        planned.add(name.lower())
        rows.append((item, str(folder / name)))
    return rows


def read_log(out: os.PathLike | str) -> list[dict[str, str]]:
    """The files of out/sorted.csv, a row each (a torn last row, from a sort that was killed, is left out)."""
    return [row for row in _log_rows(out) if row["action"] != CREATED]


def _log_rows(out: os.PathLike | str) -> list[dict[str, str]]:
    """Every row of out/sorted.csv: its files and the folders the sort created."""
    path = Path(out).expanduser() / LOG_NAME
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise SortError(f"{path} does not exist: this folder was not sorted by this app") \
            from None
    except (OSError, UnicodeDecodeError) as exc:
        raise SortError(f"{path} cannot be read ({exc})") from None
    rows = list(csv.reader(text.splitlines()))
    if not rows or rows[0][: len(LOG_COLUMNS)] != LOG_COLUMNS:
        raise SortError(f"{path} is not a sort log (its first line should be "
                        f"{','.join(LOG_COLUMNS)})")
    return [dict(zip(LOG_COLUMNS, row)) for row in rows[1:] if len(row) == len(LOG_COLUMNS)]


@dataclass
class UndoResult:
    moved_back: int = 0
    kept: list[str] = field(default_factory=list)   # "destination: why not moved back"
    copies: int = 0                                 # copied files, left where they are
    stopped: str | None = None
    cleaned: bool = False                           # every file went back: the log and the folders made are gone


def undo_sort(out: os.PathLike | str, progress: Progress = NO_PROGRESS) -> UndoResult:
    """Put every file the log says was moved back where it came from; the log then says "moved back". When all
    went back (and none was copied), the log and the folders the sort made that are now empty are removed."""
    out = Path(out).expanduser().absolute()
    rows = _log_rows(out)
    result = UndoResult()
    inside = out.resolve()
    todo = [r for r in rows if r["action"] == MOVED]
    result.copies = sum(r["action"] == COPIED for r in rows)
    try:
        for i, row in enumerate(todo):
            if progress.cancelled():
                break
            progress.update("Moving back", i, len(todo))
            dest, source = Path(row["destination"]), Path(row["source"])
            if not dest.parent.resolve().is_relative_to(inside):
                result.kept.append(f"{dest}: not inside {out}")
                continue
            if dest.is_symlink() or not dest.is_file():
                result.kept.append(f"{dest}: no longer there")
                continue
            if os.path.lexists(source):
                result.kept.append(f"{dest}: {source} exists again; it is not replaced")
                continue
            try:
                source.parent.mkdir(parents=True, exist_ok=True)
                back = _place(str(dest), source.parent, source.name, move=True)
            except _SourceError as cause:
                result.kept.append(f"{dest}: {cause.exc.strerror or cause.exc}")
                continue
            except (OSError, SortError) as exc:
                result.stopped = user_message(exc)
                break
            if back != source:  # appeared meanwhile: keep it where it landed, and say so
                result.kept.append(f"{dest}: went back as {back.name}, {source.name} appeared meanwhile")
            row["action"] = MOVED_BACK
            result.moved_back += 1
    finally:
        _rewrite_log(out, rows)
        made = {Path(r["destination"]) for r in rows if r["action"] == CREATED}
        if not (result.kept or result.stopped) and all(r["action"] not in (MOVED, COPIED) for r in rows):
            result.cleaned = _clean_up(out, made)
        else:
            _remove_empty(out, made & {Path(r["destination"]).parent for r in rows if r["action"] == MOVED_BACK})
    return result


def _rewrite_log(out: Path, rows: list[dict[str, str]]) -> None:
    import io

    buf = io.StringIO()
    writer = csv.writer(buf)
    writer.writerow(LOG_COLUMNS)
    for row in rows:
        writer.writerow([row[c] for c in LOG_COLUMNS])
    atomic_write_bytes(out / LOG_NAME, buf.getvalue().encode("utf-8"))


def _clean_up(out: Path, made: set[Path]) -> bool:
    """After a complete undo: the log, then the folders the sort made that are empty, deepest first (OUT and the
    folders above it last); True when the log is gone."""
    try:
        (out / LOG_NAME).unlink()
    except OSError:
        return False
    _remove_empty(out, made, inside_only=False)
    return True


def _remove_empty(out: Path, folders: set[Path], inside_only: bool = True) -> None:
    """The folders the sort made that are empty now, deepest first (never a link, never one with anything in it;
    only OUT's sub-folders while the log is still in OUT)."""
    for folder in sorted(folders, key=lambda p: len(p.parts), reverse=True):
        if (folder.parent == out or not inside_only) and not folder.is_symlink():
            try:
                folder.rmdir()
            except OSError:
                continue
