"""The CUDA path, and the GPU benchmark harness.

`pytest -m gpu` runs the GPU tests where CUDA is present; without it they are skipped (CI checks the
skip path). The harness test runs everywhere: `bench_gpu.py --quick --device cpu` must work.
"""
from __future__ import annotations

import os
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest
import torch
import torchvision
from helpers import make_cifar

from resnet_gui.core.train import recipe, resume_config, train
from resnet_gui.core.train import run as run_mod

ROOT = Path(__file__).resolve().parents[3]
needs_cuda = pytest.mark.skipif(not torch.cuda.is_available(), reason="needs CUDA (run with `pytest -m gpu` on a GPU)")


@pytest.fixture
def cifar_dir(tmp_path, monkeypatch):
    """Generated CIFAR-format batches; torchvision's MD5 check is patched in tests only."""
    monkeypatch.setattr(torchvision.datasets.cifar, "check_integrity", lambda *a, **k: True)
    return make_cifar(tmp_path / "cifar")


def cuda_cifar(data, **kw):
    base = dict(data=str(data), epochs=2, batch_size=25, lr=0.05, device="cuda", name="gpu")
    base.update(kw)
    return recipe("cifar10", **base)


class Recorder(list):
    def __call__(self, ev):
        self.append(ev)

    def kinds(self, kind):
        return [e for e in self if e.kind == kind]


@pytest.fixture
def captured_trainer(monkeypatch):
    box = {}
    real = run_mod.build_trainer

    def build(*args, **kwargs):
        box["t"] = real(*args, **kwargs)
        return box["t"]

    monkeypatch.setattr(run_mod, "build_trainer", build)
    return box


@pytest.fixture
def deterministic_cuda():
    """cuDNN and cuBLAS without run-to-run differences, so two CUDA runs can be compared bit for bit (this
    test comes first in the file: cuBLAS reads CUBLAS_WORKSPACE_CONFIG when the process first uses it)."""
    old = (torch.backends.cudnn.deterministic, torch.backends.cudnn.benchmark,
           torch.are_deterministic_algorithms_enabled(), os.environ.get("CUBLAS_WORKSPACE_CONFIG"))
    os.environ["CUBLAS_WORKSPACE_CONFIG"] = ":4096:8"
    torch.backends.cudnn.deterministic, torch.backends.cudnn.benchmark = True, False
    torch.use_deterministic_algorithms(True, warn_only=True)
    yield
    torch.backends.cudnn.deterministic, torch.backends.cudnn.benchmark = old[0], old[1]
    torch.use_deterministic_algorithms(old[2])
    if old[3] is None:
        os.environ.pop("CUBLAS_WORKSPACE_CONFIG", None)
    else:
        os.environ["CUBLAS_WORKSPACE_CONFIG"] = old[3]


@pytest.mark.gpu
@needs_cuda
def test_resume_on_cuda_gives_identical_weights(cifar_dir, deterministic_cuda):
    straight = train(cuda_cifar(cifar_dir, name="straight"))
    assert straight.status == "finished", straight.message
    stop = threading.Event()

    def stop_after_first_epoch(ev):
        if ev.kind == "epoch" and ev.epoch == 1:
            stop.set()

    first = train(cuda_cifar(cifar_dir, name="split"), stop_after_first_epoch, stop)
    assert first.status == "cancelled" and first.epochs_done == 1
    config, path = resume_config("split")
    events = Recorder()
    resumed = train(config, events, resume=path)
    assert resumed.status == "finished" and events.kinds("started")[0].start_epoch == 1
    a = torch.load(straight.last_path, weights_only=True)
    b = torch.load(resumed.last_path, weights_only=True)
    for k in a["model"]:
        assert torch.equal(a["model"][k], b["model"][k]), k
    assert a["scheduler"]["last_epoch"] == b["scheduler"]["last_epoch"]


@pytest.mark.gpu
@needs_cuda
def test_two_epochs_on_cuda_with_bf16_autocast_and_channels_last(cifar_dir, captured_trainer):
    events = Recorder()
    result = train(cuda_cifar(cifar_dir), events)
    assert result.status == "finished", result.message
    started = events.kinds("started")[0]
    assert started.device.startswith("GPU: ")
    expected = "bf16 autocast" if torch.cuda.is_bf16_supported() else "fp16 autocast"
    assert started.precision == expected and started.data_path == "tensor"
    t = captured_trainer["t"]
    assert t.device.type == "cuda" and t.amp_dtype in (torch.bfloat16, torch.float16)
    conv = t.model.conv1.weight
    assert conv.is_cuda and conv.is_contiguous(memory_format=torch.channels_last)
    assert [e.epoch for e in events.kinds("epoch")] == [1, 2]
    assert all(0 <= e.val_accuracy <= 1 and e.train_loss == e.train_loss for e in events.kinds("epoch"))
    state = torch.load(result.last_path, weights_only=True)  # saved on the CPU, loadable without a GPU
    assert all(v.device.type == "cpu" for v in state["model"].values())


@pytest.mark.gpu
@needs_cuda
def test_cuda_out_of_memory_names_the_batch_size_and_frees_memory(tmp_path, monkeypatch):
    monkeypatch.setattr(torchvision.datasets.cifar, "check_integrity", lambda *a, **k: True)
    data = make_cifar(tmp_path / "cifar", per_batch=400, n_test=40)  # 2,000 training images
    device = torch.device("cuda", torch.cuda.current_device())
    total = torch.cuda.get_device_properties(device).total_memory
    torch.cuda.empty_cache()
    # cap this process at ~1.5 GiB: the model and the data fit, the activations of a 2,000-image batch do not
    torch.cuda.set_per_process_memory_fraction(min(1.0, 1.5 * 2**30 / total), device)
    try:
        result = train(cuda_cifar(data, batch_size=2000, epochs=1, precision="fp32", name="oom"))
    finally:
        torch.cuda.set_per_process_memory_fraction(1.0, device)
    assert result.status == "failed"
    assert "GPU ran out of memory with batch size 2000" in result.message and result.remedy.value == 1000
    assert "Traceback" not in result.message
    torch.cuda.empty_cache()
    assert torch.cuda.memory_allocated(device) < 256 * 2**20  # the batch's tensors were let go


@pytest.mark.gpu
@needs_cuda
def test_prediction_on_cuda_equals_the_cpu_top1():
    from resnet_gui.core.engines.choose import open_predictor
    from resnet_gui.core.models.demo import demo_checkpoint_path

    samples = sorted((ROOT / "resnet_gui" / "resources" / "samples").glob("*.png"))
    assert len(samples) >= 10
    on_cpu = open_predictor(demo_checkpoint_path(), device="cpu", precision="fp32")
    on_gpu = open_predictor(demo_checkpoint_path(), device="cuda", precision="fp32")
    assert on_cpu.backend.name == "onnxruntime" and on_gpu.backend.name == "torch"
    assert on_gpu.device.startswith("cuda")
    cpu = [on_cpu.predict_file(path, top_k=3) for path in samples]
    gpu = [on_gpu.predict_file(path, top_k=3) for path in samples]
    assert all(p.ok for p in cpu + gpu)
    assert [p.label for p in gpu] == [p.label for p in cpu]
    for a, b in zip(cpu, gpu):
        assert abs(a.confidence - b.confidence) < 1e-2, a.path


@pytest.mark.gpu
@needs_cuda
def test_qthread_worker_trains_on_cuda_while_the_gui_stays_responsive(cifar_dir):
    pytest.importorskip("PySide6")
    from PySide6.QtCore import QElapsedTimer, QTimer
    from PySide6.QtWidgets import QApplication

    from resnet_gui.ui.common.workers import Task

    app = QApplication.instance() or QApplication([])
    cfg = cuda_cifar(cifar_dir, epochs=3, name="gui-cuda")

    def fn(report, stop):
        return train(cfg, report, stop)

    events, outcome = [], {}
    task = Task(fn, name="train")
    task.progress.connect(events.append)
    task.done.connect(lambda r: outcome.setdefault("result", r))
    task.failed.connect(lambda m: outcome.setdefault("failed", m))
    gaps, clock = [], QElapsedTimer()
    timer = QTimer()
    timer.setInterval(10)
    timer.timeout.connect(lambda: (gaps.append(clock.restart()), None))
    clock.start()
    timer.start()
    task.start()
    deadline = time.monotonic() + 300
    while ("result" not in outcome and "failed" not in outcome) and time.monotonic() < deadline:
        app.processEvents()
        time.sleep(0.002)
    timer.stop()
    task.wait(10_000)
    assert "failed" not in outcome, outcome.get("failed")
    assert outcome["result"].status == "finished"
    assert any(getattr(e, "kind", "") == "epoch" for e in events)
    assert gaps and max(gaps[1:] or gaps) < 100, f"the GUI thread stalled {max(gaps)} ms"


def test_bench_gpu_quick_runs_on_the_cpu(tmp_path):
    """The GPU harness works (tiny sizes, on the CPU): every measurement prints an images/s line."""
    env = {**os.environ, "RESNET_GUI_HOME": str(tmp_path / "home"), "TORCH_HOME": str(tmp_path / "torch")}
    proc = subprocess.run([sys.executable, str(ROOT / "benchmarks" / "bench_gpu.py"), "--quick", "--device", "cpu"],
                          capture_output=True, text=True, timeout=400, env=env, cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr[-3000:]
    out = proc.stdout
    assert "device: CPU" in out and "quick sizes" in out
    lines = [line for line in out.splitlines() if line.endswith("images/s") or "images/s;" in line]
    assert any(line.startswith("ResNet-18 CIFAR training") for line in lines)
    assert any(line.startswith("ResNet-50 fine-tuning") for line in lines)
    assert sum(line.startswith("prediction ") for line in lines) == 4
    assert "| measurement" in out and "torch.compile: not measured (CUDA only)" in out
