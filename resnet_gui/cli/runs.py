"""`resnet-gui runs list|show|remove|prune|compare`: training runs and the disk space their states use."""
from __future__ import annotations

import argparse
import json

from resnet_gui.text import binary_size, duration, plural

from .output import safe


def add_parser(subparsers) -> None:
    r = subparsers.add_parser(
        "runs", help="list, compare and clean up training runs (resumable states in the runs folder)",
        description="Every training run keeps a resumable state (last.pth, about 2-3 times the model's size) in "
        "the runs folder. List the runs, compare their settings and curves, and remove states you no longer "
        "need: the run's best model stays in the registry.")
    sub = r.add_subparsers(dest="runs_cmd", metavar="ACTION", required=True)
    rl = sub.add_parser("list", help="every run with its status, figures and disk use")
    rl.add_argument("--json", action="store_true", help="one JSON array of runs (disk_bytes per run)")
    rs = sub.add_parser("show", help="one run: settings, figures and per-epoch history")
    rs.add_argument("name")
    rs.add_argument("--json", action="store_true")
    rr = sub.add_parser("remove", help="delete a run's training state, freeing its space (the model stays)")
    rr.add_argument("name")
    rr.add_argument("--all", action="store_true",
                    help="delete the whole run folder, its summary and TensorBoard logs too (the model stays)")
    rp = sub.add_parser("prune", help="delete the training states of finished runs (their models stay)")
    rp.add_argument("--finished", action="store_true", required=True,
                    help="runs that completed all their epochs (required: the only kind pruned)")
    rp.add_argument("--dry-run", action="store_true", help="only say what would be removed and freed")
    rc = sub.add_parser("compare", help="two or more runs side by side: differing settings and per-epoch figures")
    rc.add_argument("names", nargs="+", metavar="NAME")
    rc.add_argument("--all", action="store_true", help="show every setting, not only the differing ones")
    rc.add_argument("--json", action="store_true", help="configurations, differing keys and full histories")


def run(args: argparse.Namespace) -> int:
    from resnet_gui.core.train import runs

    action = args.runs_cmd
    if action == "list":
        return _list(runs.list_run_infos(), args.json)
    if action == "show":
        return _show(runs.run_info(args.name), args.json)
    if action == "remove":
        removed = runs.remove_run(args.name) if args.all else runs.remove_run_state(args.name)
        print(_removed_sentence(removed))
        return 0
    if action == "prune":
        return _prune(runs.prune(finished=args.finished, dry_run=args.dry_run), args.dry_run)
    if action == "compare":
        return _compare(runs.compare(args.names), args.all, args.json)
    raise AssertionError(action)


# ---------------------------------------------------------------------------------------------
def _duration_text(info) -> str:
    text = duration(info.duration_s)
    return f"~{text}" if info.duration_source == "files" else text


DURATION_SOURCES = {
    "history": "the epochs' training times recorded in the run's history",
    "files": "the times on the run folder's files (wall-clock time, pauses included)",
    None: "unknown",
}


def _percent(value: float | None) -> str:
    return f"{value:.1%}" if value is not None else "-"


def _epochs(info) -> str:
    return f"{info.epoch}/{info.epochs}" if info.epoch is not None else "-"


def _status(info) -> str:
    if info.error is not None:
        return "UNREADABLE"
    if info.status in ("finished", "unfinished") and not info.has_state:
        return f"{info.status}, state removed"
    return info.status


def _list(infos, as_json: bool) -> int:
    from resnet_gui.core.paths import runs_dir

    from .models import _table

    if as_json:
        print(json.dumps([i.to_json(history=False) for i in infos], allow_nan=False))
        return 0
    root = runs_dir()
    if not infos:
        print(f"No runs in {safe(root)}. Training ('resnet-gui train') creates one per run.")
        return 0
    rows = [["NAME", "STATUS", "DATASET", "ARCHITECTURE", "EPOCHS", "BEST VAL.", "DURATION", "DISK"]]
    for i in infos:
        rows.append([safe(i.name), _status(i), safe(i.dataset or "-"), i.arch or "-", _epochs(i),
                     _percent(i.best_val_accuracy), _duration_text(i), binary_size(i.disk_bytes)])
    for line in _table(rows, right={4, 5, 6, 7}):
        print(line)
    for i in infos:
        if i.error is not None:
            print(f"  {safe(i.name)}: {safe(i.error)}")
    total = sum(i.disk_bytes for i in infos)
    print(f"\n{plural(len(infos), 'run')} in {safe(root)}, {binary_size(total)} in all.")
    if any(i.duration_source == "files" for i in infos):
        print("~ duration from file times (wall-clock, pauses included); others are the epochs' training times.")
    finished = [i for i in infos if i.status == "finished" and i.has_state]
    if finished:
        freed = sum(i.state_bytes for i in finished)
        print(f"The states of {plural(len(finished), 'finished run')} use {binary_size(freed)}; "
              "'resnet-gui runs prune --finished' frees it (the models stay in the registry).")
    return 0


def _show(info, as_json: bool) -> int:
    if as_json:
        print(json.dumps(info.to_json(), allow_nan=False))
        return 0 if info.error is None else 1
    print(f"run: {safe(info.name)}")
    print(f"folder: {safe(info.path)}")
    print(f"status: {_status(info)}" + (" (resume it with 'resnet-gui train --resume NAME')" if info.resumable else ""))
    if info.error is not None:
        print(f"error: {safe(info.error)}")
        return 1
    print(f"disk use: {binary_size(info.disk_bytes)} (training state: {binary_size(info.state_bytes)})")
    if info.state_removed:
        print(f"state removed: {safe(info.state_removed)}")
    if info.status == "no state":
        print("This run ended before its first epoch, or its state was removed by hand; nothing more is known.")
        return 0
    print(f"model: {safe(info.best_name or '-')} (the registry's copy of the best epoch)")
    print(f"dataset: {safe(info.dataset or '-')}")
    print(f"architecture: {info.arch}")
    print(f"epochs: {_epochs(info)}")
    print(f"best validation accuracy: {_percent(info.best_val_accuracy)}")
    print(f"duration: {duration(info.duration_s)} ({DURATION_SOURCES[info.duration_source]})")
    print("settings:")
    for key, value in info.config.items():
        print(f"  {key}: {safe(json.dumps(value))}")
    if info.history:
        print("history:")
        for line in _history_table(info.history):
            print(f"  {line}")
    return 0


HISTORY_COLUMNS = (("epoch", "EPOCH", "{:d}"), ("train_loss", "TRAIN LOSS", "{:.4f}"),
                   ("train_accuracy", "TRAIN ACC.", "{:.1%}"), ("val_loss", "VAL. LOSS", "{:.4f}"),
                   ("val_accuracy", "VAL. ACC.", "{:.1%}"), ("lr", "LR", "{:.3g}"),
                   ("train_time_s", "TIME", None))


def _cell(value, fmt: str | None) -> str:
    if value is None or isinstance(value, bool) or not isinstance(value, (int, float)):
        return "-"
    if fmt is None:
        return duration(value)
    if fmt == "{:d}":
        return str(int(value))
    return fmt.format(value)


def _history_table(history: list[dict]) -> list[str]:
    from .models import _table

    rows = [[title for _, title, _ in HISTORY_COLUMNS]]
    for row in history:
        rows.append([_cell(row.get(key), fmt) for key, _, fmt in HISTORY_COLUMNS])
    return _table(rows, right=set(range(len(HISTORY_COLUMNS))))


def _removed_sentence(removed) -> str:
    what = "Removed run folder" if removed.whole_run else "Removed the training state of"
    model = (f"its model {safe(repr(removed.best_name))} stays in the registry" if removed.best_name
             else "it had no model in the registry")
    tail = "" if removed.whole_run else " It is still listed with its summary but can no longer be resumed."
    return f"{what} {safe(repr(removed.name))} ({binary_size(removed.bytes_freed)} freed); {model}.{tail}"


def _prune(removed, dry_run: bool) -> int:
    if not removed:
        print("No finished run has a training state; nothing to remove.")
        return 0
    for r in removed:
        print(f"{'would remove' if dry_run else 'removed'} {safe(r.name)}: {binary_size(r.bytes_freed)}")
    total = sum(r.bytes_freed for r in removed)
    runs_text = plural(len(removed), "finished run")
    their = "its model" if len(removed) == 1 else "their models"
    if dry_run:
        print(f"Would free {binary_size(total)} from {runs_text}; {their} would stay in the registry.")
    else:
        print(f"Freed {binary_size(total)} from {runs_text}; {their} stay{'s' if len(removed) == 1 else ''} in the "
              "registry.")
    return 0


def _value(config: dict, key: str) -> str:
    return safe(json.dumps(config[key], ensure_ascii=False)) if key in config else "(not set)"


def _compare(comparison, show_all: bool, as_json: bool) -> int:
    from .models import _table

    if as_json:
        print(json.dumps(comparison.to_json(), allow_nan=False))
        return 0
    runs = comparison.runs
    rows = [["", *[safe(r.name) for r in runs]]]
    rows.append(["status", *[_status(r) for r in runs]])
    rows.append(["epochs", *[_epochs(r) for r in runs]])
    rows.append(["best val. accuracy", *[_percent(r.best_val_accuracy) for r in runs]])
    rows.append(["duration", *[_duration_text(r) for r in runs]])
    rows.append(["dataset", *[safe(r.dataset or "-") for r in runs]])
    keys = comparison.keys if show_all else comparison.differing
    for key in keys:
        mark = "* " if key in comparison.differing else "  "
        rows.append([mark + key, *[_value(r.config, key) for r in runs]])
    for line in _table(rows, right=set()):
        print(line)
    same = len(comparison.keys) - len(comparison.differing)
    if show_all:
        print(f"\n* = differs ({plural(len(comparison.differing), 'setting')}); {same} the same.")
    else:
        print(f"\n{plural(len(comparison.differing), 'setting')} differ (*); {same} more are the same "
              "(--all shows them).")
    longest = max(len(r.history) for r in runs)
    if longest:
        print("\nvalidation accuracy per epoch:")
        rows = [["EPOCH", *[safe(r.name) for r in runs]]]
        for e in range(longest):
            rows.append([str(e + 1), *[_cell(r.history[e].get("val_accuracy"), "{:.1%}") if e < len(r.history)
                                       else "" for r in runs]])
        for line in _table(rows, right=set(range(len(runs) + 1))):
            print(f"  {line}")
    return 0
