"""`resnet-gui --self-test`: prove this installation (frozen or not) can do its jobs.

Runs in a temporary RESNET_GUI_HOME, with offscreen Qt, and prints one line per check. Both editions:
  qt          the main window builds (offscreen), with this edition's tabs
  model       the bundled demo checkpoint loads (or, in the full edition without one, a freshly created checkpoint)
  predict     a bundled sample image is classified (right digit when the demo model is bundled)
  import      the model's weights saved as a tutorial script saves them (a plain state dict with the
              kuangliu/pytorch-cifar names `linear` and `shortcut`) are imported into the registry and answer alike
  folder      `predict FOLDER --csv` over the bundled samples, as the command line runs it: one CSV row per image,
              every digit right when the demo model is bundled
The full edition (edition.py) then checks what needs PyTorch:
  export      a TorchScript export, loaded back and compared
  train       two training steps on a tiny generated dataset, with DataLoader worker processes
  checkpoint  the trained model was saved atomically into the temporary registry and loads back
and the classify edition that it never needed PyTorch:
  no-torch    no torch, torchvision or triton module was loaded by any check
Exit status 0 only when every check passed.
"""
from __future__ import annotations

import contextlib
import csv
import io
import os
import re
import shutil
import sys
import tempfile
import time
import traceback
from collections.abc import Callable
from pathlib import Path

from resnet_gui import edition

TORCH_MODULES = ("torch", "torchvision", "triton")
DIGIT = re.compile(r"digit_(\d)_")


def torch_modules_loaded() -> list[str]:
    return sorted(name for name in sys.modules if name.split(".")[0] in TORCH_MODULES and sys.modules[name])


class SelfTest:
    """`cli_main` is the `resnet-gui` command's main(argv) -> exit status (given by the CLI, which imports this
    module: the folder check runs the command a user would type)."""

    def __init__(self, cli_main: Callable[[list[str]], int], out=None):
        self.cli_main = cli_main
        self.out = out or sys.stdout
        self.results: list[tuple[str, bool]] = []
        self.state: dict = {}
        self.edition = edition.current()

    def check(self, name: str, fn: Callable[[], str]) -> bool:
        t0 = time.perf_counter()
        try:
            detail = fn()
            ok = True
        except Exception as exc:  # noqa: BLE001 - a self-test reports every failure and goes on
            detail = f"{type(exc).__name__}: {exc}"
            ok = False
            if os.environ.get("RESNET_GUI_SELFTEST_TRACEBACK"):
                traceback.print_exc(file=self.out)
        status = "PASS" if ok else "FAIL"
        print(f"{status} {name:<10} {detail} ({time.perf_counter() - t0:.1f} s)", file=self.out, flush=True)
        self.results.append((name, ok))
        return ok

    def skip(self, *names: str) -> None:
        """Checks that cannot run because one they build on failed: they count as failed."""
        self.results += [(name, False) for name in names]

    # ---- checks of both editions ----------------------------------------------------------------
    def qt(self) -> str:
        os.environ["QT_QPA_PLATFORM"] = "offscreen"
        from PySide6.QtWidgets import QApplication

        from resnet_gui.core.settings import Settings
        from resnet_gui.ui.main_window import MainWindow

        app = QApplication.instance() or QApplication([sys.argv[0]])
        window = MainWindow(Settings())
        window.show()
        app.processEvents()
        tabs = [window.tabs.tabText(i) for i in range(window.tabs.count())]
        window.hide()
        window.deleteLater()
        app.processEvents()
        return f"main window built with tabs {', '.join(tabs)} ({self.edition} edition)"

    def model(self) -> str:
        from resnet_gui.core.models.checkpoint import read_checkpoint
        from resnet_gui.core.models.demo import demo_checkpoint_path

        path = demo_checkpoint_path()
        bundled = path.is_file()
        if not bundled:
            if self.edition != edition.FULL:
                raise RuntimeError(f"the demo model is not bundled (looked for {path})")
            path = self._created_checkpoint()
        ckpt = read_checkpoint(path)
        self.state.update(model_path=path, bundled=bundled, checkpoint=ckpt)
        kind = "bundled demo" if bundled else "created"
        return f"{kind} checkpoint {path.name}: {ckpt.arch}, {ckpt.num_classes} classes"

    def _created_checkpoint(self) -> Path:
        from resnet_gui.core.models.archs import default_preprocess
        from resnet_gui.core.models.build import build_model
        from resnet_gui.core.models.checkpoint import Checkpoint, write_checkpoint

        path = Path(self.state["tmp"]) / "created.pth"
        model = build_model("resnet18_cifar", 10)
        write_checkpoint(Checkpoint(arch="resnet18_cifar", class_names=[str(i) for i in range(10)],
                                    preprocess=default_preprocess("resnet18_cifar"),
                                    state_dict=model.state_dict()), path)
        return path

    def _samples(self) -> list[Path]:
        from resnet_gui import resources

        folder = resources.path("samples")
        samples = sorted(folder.glob("digit_*.png")) if folder.is_dir() else []
        if not samples:
            from PIL import Image

            sample = Path(self.state["tmp"]) / "sample.png"
            Image.new("RGB", (32, 32), (200, 40, 40)).save(sample)
            samples = [sample]
        return samples

    def predict(self) -> str:
        from resnet_gui.core.engines.choose import open_predictor

        sample = self._samples()[0]
        predictor = open_predictor(self.state["model_path"], device="cpu")
        pred = predictor.predict_file(sample)
        if not pred.ok:
            raise RuntimeError(pred.error)
        m = DIGIT.match(sample.name)
        if self.state["bundled"] and m and pred.label != m.group(1):
            raise RuntimeError(f"{sample.name} classified as {pred.label}, expected {m.group(1)}")
        self.state["answer"] = pred.label
        return (f"{sample.name} -> {pred.label} ({pred.confidence:.1%}; {predictor.backend.name}, "
                f"{predictor.backend.precision})")

    def import_(self) -> str:
        """A plain state dict in the kuangliu/pytorch-cifar layout, as `torch.save(net.state_dict(), f)` writes it
        (written here by our own writer: no torch needed), imported as `models import` does."""
        from resnet_gui.core.engines.choose import open_predictor
        from resnet_gui.core.models.pth_write import write_pth
        from resnet_gui.core.models.registry import Registry

        ckpt = self.state["checkpoint"]
        renamed = {}
        for key, value in ckpt.state_dict.items():
            key = "linear." + key[len("fc."):] if key.startswith("fc.") else key.replace(".downsample.", ".shortcut.")
            renamed[key] = value
        tutorial = Path(self.state["tmp"]) / "tutorial_resnet18.pth"
        with open(tutorial, "wb") as fh:
            write_pth(renamed, fh)
        entry = Registry().import_file(tutorial, name="selftest-import", class_names=list(ckpt.class_names))
        sample = self._samples()[0]
        fp32 = {"precision": "fp32"}
        imported = open_predictor(entry.path, device="cpu", **fp32).predict_file(sample)
        original = open_predictor(self.state["model_path"], device="cpu", **fp32).predict_file(sample)
        if not imported.ok:
            raise RuntimeError(imported.error)
        if imported.label != original.label:
            raise RuntimeError(f"the imported copy says {imported.label}, the original {original.label}")
        return f"{tutorial.name} ({len(renamed)} tensors) imported as “{entry.name}”: {sample.name} -> {imported.label}"

    def folder(self) -> str:
        samples = self._samples()
        out = Path(self.state["tmp"]) / "results.csv"
        printed = io.StringIO()
        with contextlib.redirect_stdout(printed), contextlib.redirect_stderr(io.StringIO()):
            code = self.cli_main(["predict", str(samples[0].parent), "--model", str(self.state["model_path"]),
                             "--csv", str(out)])
        if code != 0:
            raise RuntimeError(f"predict FOLDER exited {code}: {printed.getvalue()[-300:]}")
        with open(out, newline="", encoding="utf-8") as fh:
            rows = list(csv.DictReader(fh))
        images = sorted(p for p in samples[0].parent.iterdir() if p.suffix.lower() in (".png", ".jpg", ".jpeg"))
        if len(rows) != len(images):
            raise RuntimeError(f"{len(rows)} CSV rows for {len(images)} images")
        wrong = []
        for row in rows:
            m = DIGIT.match(Path(row["path"]).name)
            if self.state["bundled"] and m and row["label"] != m.group(1):
                wrong.append(f"{Path(row['path']).name}: {row['label']}")
        if wrong:
            raise RuntimeError(f"wrong digits: {', '.join(wrong)}")
        return f"{len(rows)} images of {samples[0].parent.name}/ classified, {out.name} written"

    # ---- the full edition: what needs PyTorch -----------------------------------------------------
    def export(self) -> str:
        """TorchScript export, loaded back and compared: it compiles the model from its Python source, which a
        frozen app has only when the spec ships resnet_gui's .py files (module_collection_mode)."""
        from resnet_gui.core.export.exporter import export_model

        result = export_model(self.state["model_path"], "torchscript", Path(self.state["tmp"]) / "selftest.pt")
        if result.max_abs_diff is None or result.max_abs_diff > 1e-4:
            raise RuntimeError(f"the exported model differs from PyTorch's by {result.max_abs_diff}")
        return f"TorchScript {result.path.name}, checked with {result.checked_with} (max difference " \
               f"{result.max_abs_diff:.1e})"

    def train(self) -> str:
        import numpy as np
        from PIL import Image

        from resnet_gui.core.train import events as E
        from resnet_gui.core.train import recipe, train

        data = Path(self.state["tmp"]) / "data"
        rng = np.random.default_rng(0)
        for c, name in enumerate(("red", "blue")):
            (data / name).mkdir(parents=True)
            for i in range(6):
                arr = np.zeros((80, 80, 3), np.uint8)
                arr[..., 0 if c == 0 else 2] = 200
                arr = np.clip(arr + rng.integers(0, 40, arr.shape), 0, 255).astype(np.uint8)
                Image.fromarray(arr).save(data / name / f"{i}.png")
        events: list = []
        cfg = recipe("scratch", data=str(data), arch="resnet18", image_size=72, epochs=1, batch_size=4,
                     val_split=0.34, workers=2, cache_mb=0, device="cpu", name="selftest", threads=1)
        result = train(cfg, events.append)
        if result.status != "finished":
            raise RuntimeError(result.message)
        batches = [e for e in events if isinstance(e, E.Batch)]
        steps = sum(len(e.losses) for e in batches)
        started = next(e for e in events if isinstance(e, E.Started))
        if started.data_path != "loader" or steps != 2:
            raise RuntimeError(f"expected 2 DataLoader steps, ran {steps} on the {started.data_path} path")
        self.state["trained"] = result
        loss = batches[-1].loss
        return f"{steps} training steps with 2 DataLoader worker processes (last loss {loss:.3f})"

    def checkpoint(self) -> str:
        from resnet_gui.core.models.build import load_model
        from resnet_gui.core.models.registry import Registry

        result = self.state["trained"]
        registry = Registry()
        ckpt, _ = load_model(result.best_path)
        leftovers = [p.name for p in registry.root.iterdir() if p.name.startswith(".")]
        if leftovers:
            raise RuntimeError(f"temporary files left behind: {leftovers}")
        name = Path(result.best_path).name
        return f"{name} in the temporary registry loads ({ckpt.arch}, {ckpt.num_classes} classes)"

    # ---- the classify edition: no PyTorch ----------------------------------------------------------
    def no_torch(self) -> str:
        loaded = torch_modules_loaded()
        if loaded:
            raise RuntimeError(f"{len(loaded)} PyTorch modules were loaded: {', '.join(loaded[:5])}")
        return f"none of {', '.join(TORCH_MODULES)} loaded ({len(sys.modules)} modules in all)"

    # ---- run ------------------------------------------------------------------------------------
    def run(self) -> int:
        tmp = tempfile.mkdtemp(prefix="resnet-gui-selftest-")
        self.state["tmp"] = tmp
        old_home = os.environ.get("RESNET_GUI_HOME")
        os.environ["RESNET_GUI_HOME"] = str(Path(tmp) / "home")
        from resnet_gui import __version__

        print(f"resnet-gui {__version__} self-test, {self.edition} edition "
              f"({'frozen' if getattr(sys, 'frozen', False) else 'from source'}, Python {sys.version.split()[0]})",
              file=self.out, flush=True)
        try:
            self.check("qt", self.qt)
            if self.check("model", self.model):
                self.check("predict", self.predict)
                self.check("import", self.import_)
                self.check("folder", self.folder)
                if self.edition == edition.FULL:
                    self.check("export", self.export)
            else:
                self.skip("predict", "import", "folder", *(("export",) if self.edition == edition.FULL else ()))
            if self.edition == edition.FULL:
                if self.check("train", self.train):
                    self.check("checkpoint", self.checkpoint)
                else:
                    self.skip("checkpoint")
            else:
                self.check("no-torch", self.no_torch)
        finally:
            if old_home is None:
                os.environ.pop("RESNET_GUI_HOME", None)
            else:
                os.environ["RESNET_GUI_HOME"] = old_home
            shutil.rmtree(tmp, ignore_errors=True)
        failed = [name for name, ok in self.results if not ok]
        print(f"self-test {'passed' if not failed else 'FAILED: ' + ', '.join(failed)}", file=self.out, flush=True)
        return 0 if not failed else 1


def run_self_test(cli_main: Callable[[list[str]], int]) -> int:
    return SelfTest(cli_main).run()
