"""Command line: `resnet-gui [gui|predict|models|train] ...`. Heavy imports happen per command.

predict.py, models.py and train.py hold the commands; this module builds the parser and turns every
error into one line on stderr (the log file keeps tracebacks)."""
from __future__ import annotations

import argparse
from pathlib import Path

from resnet_gui import APP_ID, __version__, edition

from .options import add_engine_options
from .output import err


# ---------------------------------------------------------------------------------------------
# gui
# ---------------------------------------------------------------------------------------------
def cmd_gui(args: argparse.Namespace) -> int:
    from resnet_gui.ui.app import run_app

    return run_app()


# ---------------------------------------------------------------------------------------------
def positive_int(text: str) -> int:
    """argparse type: a whole number from 1 up."""
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a whole number") from None
    if value < 1:
        raise argparse.ArgumentTypeError(f"{value} is out of range (it must be at least 1)")
    return value


def fraction(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a number") from None
    if not 0.0 <= value <= 1.0:
        raise argparse.ArgumentTypeError(f"{value} is out of range (0 to 1)")
    return value


def batch_size(text: str) -> int:
    value = positive_int(text)
    if value > 4096:
        raise argparse.ArgumentTypeError(f"{value} is out of range (1 to 4096)")
    return value


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog=APP_ID, description="Classify images with ResNet models, train new ones, manage the model registry. "
        "With no command, the desktop app starts.")
    parser.add_argument("--version", action="version", version=f"%(prog)s {__version__}")
    parser.add_argument("--self-test", action="store_true",
                        help="check that this installation can show its window, predict (and train, where it "
                        "can), then exit")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")

    sub.add_parser("gui", help="start the desktop app (the default)")

    p = sub.add_parser("predict", help="classify images or folders of images")
    p.add_argument("paths", nargs="+", metavar="PATH", help="image files or folders (searched recursively)")
    p.add_argument("--model", help="registry name or .pth file (default: the registry's default model)")
    p.add_argument("--top-k", type=positive_int, default=5,
                   help="how many classes to report per image (default 5; at most the model's classes)")
    p.add_argument("--csv", type=Path, metavar="OUT", help="also write the results to this CSV file")
    p.add_argument("--json", action="store_true", help="one JSON object per image on stdout")
    p.add_argument("--device", default="auto", help="auto (default), cpu, cuda, cuda:N or mps")
    add_engine_options(p)
    p.add_argument("--batch-size", type=batch_size, default=32, help=argparse.SUPPRESS)
    p.add_argument("--unsure-below", type=fraction, default=0.6, metavar="P",
                   help="answers with a (calibrated) confidence below P are marked 'not sure' (default 0.6)")
    p.add_argument("--explain", action="store_true",
                   help="with --json: add 'cam', the Grad-CAM map of the top class (rows of values in [0, 1])")
    p.add_argument("--explain-dir", type=Path, metavar="DIR",
                   help="write each image with its Grad-CAM heat map overlaid as a PNG into DIR")
    p.add_argument("--sort-into", type=Path, metavar="OUT",
                   help="copy the files into OUT/<class>/ for sure answers and OUT/_not_sure/, OUT/_unfamiliar/, "
                   "OUT/_unreadable/ for the rest, logged in OUT/sorted.csv (names taken get a suffix; nothing is "
                   "overwritten; links are not followed)")
    p.add_argument("--move", action="store_true", help="with --sort-into: move the files instead of copying them "
                   "('resnet-gui sort undo OUT' puts them back)")
    p.add_argument("--dry-run", action="store_true",
                   help="with --sort-into: say where each file would go and write nothing")

    m = sub.add_parser("models", help="list, inspect, import, rename, remove models in the registry")
    msub = m.add_subparsers(dest="models_cmd", metavar="ACTION", required=True)
    ml = msub.add_parser("list", help="list the registry's models")
    ml.add_argument("--json", action="store_true")
    ms = msub.add_parser("show", help="all metadata of one model")
    ms.add_argument("name")
    ms.add_argument("--json", action="store_true")
    mi = msub.add_parser("import", help="import a .pth (ours, or a state dict saved by a training script)")
    mi.add_argument("file", type=Path)
    mi.add_argument("--name", help="registry name (default: the file's name)")
    mi.add_argument("--classes", metavar="LIST_OR_FILE",
                    help="class names: comma-separated, or a text file with one name per line")
    mi.add_argument("--arch", help="expected architecture (inferred from the weights when omitted)")
    mi.add_argument("--input-size", type=int, help="input size the model was trained at (default: by arch)")
    mi.add_argument("--resize", type=int, help="shorter side before the center crop (default: by arch)")
    mi.add_argument("--mean", type=float, nargs=3, help="normalisation mean (default: by arch)")
    mi.add_argument("--std", type=float, nargs=3, help="normalisation std (default: by arch)")
    mi.add_argument("--allow-duplicate", action="store_true", help="import a file that is already in the registry")
    me = msub.add_parser("edit", help="change a model's class names, preprocessing or per-class thresholds")
    me.add_argument("name")
    me.add_argument("--classes", metavar="LIST_OR_FILE", help="new class names (comma-separated or a text file)")
    me.add_argument("--input-size", type=int)
    me.add_argument("--resize", type=int)
    me.add_argument("--mean", type=float, nargs=3)
    me.add_argument("--std", type=float, nargs=3)
    me.add_argument("--threshold", action="append", metavar="CLASS=P",
                    help="a class's own 'not sure below' (0.9, 90%%, or none to remove it); answers of that class "
                    "below it are 'not sure' in predict and the app. Repeat for more classes")
    mr = msub.add_parser("remove", help="delete a model from the registry")
    mr.add_argument("name")
    md = msub.add_parser("default", help="make a model the default")
    md.add_argument("name")
    mn = msub.add_parser("rename", help="rename a model")
    mn.add_argument("name")
    mn.add_argument("new_name")
    mx = msub.add_parser("export", help="export a model to ONNX or TorchScript, with a Markdown model card next to it",
                         description="Export a model for deployment. The exported model takes uint8 RGB images "
                         "[N, 3, S, S] (resized and center-cropped; normalisation is inside) and returns class "
                         "probabilities [N, C]; N can be any batch size. The model card goes to FILE.md. ONNX needs "
                         "'pip install resnet-gui[export]'. See docs/export.md.")
    mx.add_argument("name", help="registry name or .pth file")
    mx.add_argument("--format", choices=["onnx", "torchscript"], required=True)
    mx.add_argument("--output", "-o", type=Path, required=True, metavar="FILE",
                    help="the file to write (for example model.onnx or model.pt)")
    mx.add_argument("--logits", action="store_true", help="output raw logits instead of probabilities")
    mc = msub.add_parser("calibrate", help="give a model familiarity data, a temperature and a verified int8 version",
                         description="With --data (a folder with one sub-folder per class, named like the model's "
                         "classes, of images it was NOT trained on): fit familiarity data ('unlike anything it was "
                         "trained on'), a temperature when the model has none, and build its int8 version, verified "
                         "against fp32 on part of the folder. Without --data: build the int8 version from the "
                         "images the model was trained on (a model trained by this app). The same as Add "
                         "familiarity data… in the Models tab.")
    mc.add_argument("name", help="registry name")
    mc.add_argument("--data", metavar="FOLDER", help="a folder of class folders (see above)")
    mc.add_argument("--no-int8", action="store_true", help="fit familiarity data and a temperature only")
    for module in _plugin_modules():
        module.add_parser(sub)
    return parser


# Commands that need PyTorch: the classify-only edition says where training lives instead (edition.py)
TRAINING_COMMANDS = ("train", "runs")

# Commands in modules of their own: each defines add_parser(subparsers) and run(args) -> exit status, and
# imports nothing heavy at module level (`--help` must not import torch).
PLUGIN_COMMANDS = {"train": "train", "evaluate": "evaluate", "check-data": "check_data", "runs": "runs",
                   "sort": "sort"}


def _plugin_modules():
    import importlib

    out = []
    for module_name in dict.fromkeys(PLUGIN_COMMANDS.values()):
        try:
            out.append(importlib.import_module(f"{__name__}.{module_name}"))
        except ModuleNotFoundError as exc:
            if exc.name != f"{__name__}.{module_name}":
                raise
    return out


def _command(name: str):
    if name in PLUGIN_COMMANDS:
        import importlib

        return importlib.import_module(f"{__name__}.{PLUGIN_COMMANDS[name]}").run
    if name == "predict":
        from .predict import cmd_predict
        return cmd_predict
    if name == "models":
        from .models import cmd_models
        return cmd_models
    return cmd_gui


def main(argv: list[str]) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    if args.self_test:
        from resnet_gui.selftest import run_self_test

        return run_self_test(main)
    command = args.command or "gui"
    if command in TRAINING_COMMANDS and not edition.can_train():
        err(edition.TRAINING_ELSEWHERE)
        return 2
    from resnet_gui.core.errors import Cancelled, ResnetGuiError, user_message

    try:
        return _command(command)(args)
    except ResnetGuiError as exc:
        err(user_message(exc))
        return 2
    except (KeyboardInterrupt, Cancelled):
        err("interrupted")
        return 130
    except (OSError, MemoryError) as exc:  # full disk, permissions: a message, not a traceback
        err(user_message(exc))
        return 2
    except Exception as exc:  # noqa: BLE001 - a sentence on stderr; user_message logs the traceback
        err(user_message(exc))
        return 1
