"""`resnet-gui sort undo OUT`: put back the files that `predict --sort-into OUT --move` moved; and the sorting
step of `predict --sort-into` (core/inference/sorting.py does the work)."""
from __future__ import annotations

import argparse
import sys

from resnet_gui.text import plural

from .output import safe


def add_parser(sub) -> None:
    p = sub.add_parser("sort", help="undo a sort into folders (predict --sort-into OUT --move)",
                       description="Files sorted with 'resnet-gui predict FOLDER --sort-into OUT' are logged in "
                       "OUT/sorted.csv. 'sort undo OUT' moves the moved ones back where they came from (never over a "
                       "file that exists there now); copies stay, their originals never moved.")
    ssub = p.add_subparsers(dest="sort_cmd", metavar="ACTION", required=True)
    u = ssub.add_parser("undo", help="move the files of a sort back where they came from")
    u.add_argument("out", metavar="OUT", help="the folder that was sorted into (it holds sorted.csv)")


def run(args: argparse.Namespace) -> int:
    from resnet_gui.core.inference.sorting import undo_sort

    result = undo_sort(args.out)
    print(f"Moved {plural(result.moved_back, 'file')} back.")
    if result.copies:
        print(f"{plural(result.copies, 'copied file')} stay in {safe(args.out)}: their originals never moved.")
    for line in result.kept[:20]:
        print(f"  kept: {safe(line)}", file=sys.stderr)
    if len(result.kept) > 20:
        print(f"  … and {len(result.kept) - 20:,} more kept.", file=sys.stderr)
    if result.stopped:
        print(f"Stopped: {safe(result.stopped)}", file=sys.stderr)
        return 2
    return 1 if result.kept else 0


def sort_predictions(predictions: list, class_names: list[str], args: argparse.Namespace, quiet: bool) -> int:
    """The --sort-into step of `predict`: the plan, then a dry run's listing or the sort itself.
    Returns the exit status it adds (2: stopped by a failure to write)."""
    from resnet_gui.core.inference.sorting import folder_counts, plan_sort, preview, sort_files
    from resnet_gui.core.progress import Progress

    plan = plan_sort(predictions, class_names, args.unsure_below)
    counts = ", ".join(f"{safe(name)} {n:,}" for name, n in sorted(folder_counts(plan).items()))
    if args.dry_run:
        for item, dest in preview(plan, args.sort_into):
            if not quiet:
                print(f"would {'move' if args.move else 'copy'} {safe(item.source)} -> {safe(dest)}")
        print(f"Dry run: {plural(len(plan), 'file')} would go to {safe(args.sort_into)} ({counts}); nothing was "
              "written.", file=sys.stderr)
        return 0

    def show(_what, done, total):
        if sys.stderr.isatty():
            print(f"\rSorting {done:,} of {total:,}", end="", file=sys.stderr, flush=True)

    try:
        result = sort_files(plan, args.sort_into, move=args.move, progress=Progress(show))
    except KeyboardInterrupt:  # between two files: the log already holds every file done
        print("\nStopped; sorted.csv lists what was done.", file=sys.stderr)
        return 130
    if sys.stderr.isatty():
        print(file=sys.stderr)
    verb = "Moved" if args.move else "Copied"
    done = ", ".join(f"{safe(name)} {n:,}" for name, n in sorted(result.done.items()))
    print(f"{verb} {plural(result.written, 'file')} into {safe(args.sort_into)} ({done or 'none'}); the log is "
          f"{safe(args.sort_into)}/sorted.csv.", file=sys.stderr)
    if result.renamed:
        print(f"{plural(result.renamed, 'file')} got a numbered name: the name was taken.", file=sys.stderr)
    if result.skipped:
        print(f"{plural(len(result.skipped), 'symbolic link')} not followed, for example "
              f"{safe(result.skipped[0])}.", file=sys.stderr)
    if result.failed:
        print(f"{plural(len(result.failed), 'file')} could not be read: {safe(result.failed[0])}", file=sys.stderr)
    if result.stopped:
        print(f"Stopped after {plural(result.written, 'file')} of {result.total:,}: {safe(result.stopped)} "
              "Nothing was half-copied and no source file was lost.", file=sys.stderr)
        return 2
    return 1 if result.failed else 0
