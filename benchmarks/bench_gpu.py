"""GPU harness: what the training and prediction engines do on one device, through their own code paths.

    python benchmarks/bench_gpu.py                      # CUDA when present, full sizes
    python benchmarks/bench_gpu.py --quick --device cpu # tiny sizes, under a minute (CI runs this)

Measures, on --device (default: CUDA when present, else the CPU):
  * ResNet-18 (CIFAR stem) training: 50,000 synthetic 32x32 images held on the device as one uint8
    tensor (the engine's TensorData), the cifar10 recipe's batch (512) and precision (bf16 autocast on
    CUDA), channels_last, one epoch through core.train.loop.train_one_epoch -- eager, then with
    --compile (core.train.compiling; CUDA only). Images/s, seconds per epoch, validation seconds on
    10,000 images, and the projected 30-epoch time (30 x (epoch + validation)).
  * ResNet-50 fine-tuning at 224 (finetune recipe: AdamW, batch 32; also batch 256): images/s on
    images held on the device (random-resized crop on the device). Real folders add JPEG decoding in
    DataLoader workers on the CPU, which this does not measure.
  * Prediction through the app's Predictor, PyTorch engine (uint8 from the CPU, softmax back on the CPU): latency at
    batch 1 and images/s at batch 256, for ResNet-18 CIFAR at 32 and ResNet-50 at 224.
  * Peak GPU memory of each, and the fraction of the GPU's bf16 peak that training uses: model FLOPs
    (counted by torch.utils.flop_counter on one step) x images/s, against the rate of a large bf16
    matrix product measured here (and the datasheet figure when the GPU is known).

Prints one "... images/s" line per measurement, then a table.
"""
from __future__ import annotations

import argparse
import itertools
import os
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from resnet_gui.core.data.arrays import ArrayData  # noqa: E402
from resnet_gui.core.data.tensor_data import TensorData  # noqa: E402
from resnet_gui.core.engines.choose import open_predictor  # noqa: E402
from resnet_gui.core.models.archs import default_preprocess  # noqa: E402
from resnet_gui.core.models.build import build_model  # noqa: E402
from resnet_gui.core.models.checkpoint import Checkpoint  # noqa: E402
from resnet_gui.core.models.preprocess import cifar_preprocess, with_overrides  # noqa: E402
from resnet_gui.core.progress import NO_PROGRESS  # noqa: E402
from resnet_gui.core.train import recipe  # noqa: E402
from resnet_gui.core.train.compiling import compile_step  # noqa: E402
from resnet_gui.core.train.loop import PRECISION_NAMES, evaluate, train_one_epoch  # noqa: E402
from resnet_gui.core.train.run import build_trainer  # noqa: E402

# dense bf16 tensor-core peak by datasheet (TFLOP/s), for the GPUs we may be lent
DATASHEET_BF16_TFLOPS = {"H100 80GB HBM3": 989, "H100 SXM": 989, "H100 PCIe": 756, "H100 NVL": 835, "H200": 989,
                         "A100": 312, "L40S": 362, "L4": 121, "A10": 125}


@dataclass
class Sizes:
    cifar_train: int = 50_000
    cifar_val: int = 10_000
    cifar_batch: int = 512          # the cifar10 recipe's
    cifar_epochs_timed: int = 1     # after one warm-up epoch
    r50_batches: tuple = (32, 256)  # the finetune recipe's, and one that fills a large GPU
    r50_steps: int = 30
    r50_size: int = 224
    predict_batch: int = 256
    predict_repeats: int = 20
    matmul: int = 8192
    warmup: int = 3                 # untimed steps / calls before each timed measurement


QUICK = Sizes(cifar_train=32, cifar_val=16, cifar_batch=16, r50_batches=(2,), r50_steps=2, r50_size=64,
              predict_batch=4, predict_repeats=3, matmul=256, warmup=1)


class Never:
    @staticmethod
    def is_set() -> bool:
        return False


def sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def reset_peak(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.empty_cache()
        torch.cuda.reset_peak_memory_stats(device)


def peak_gib(device: torch.device) -> float | None:
    return torch.cuda.max_memory_allocated(device) / 2**30 if device.type == "cuda" else None


def synthetic(n: int, size: int, classes: int = 10, seed: int = 0) -> ArrayData:
    gen = torch.Generator().manual_seed(seed)
    return ArrayData(torch.randint(0, 256, (n, 3, size, size), dtype=torch.uint8, generator=gen),
                     torch.randint(0, classes, (n,), generator=gen))


def step_flops(t, x: torch.Tensor, y: torch.Tensor) -> float:
    """FLOPs of one forward + backward of t.model on (x, y) (matrix products and convolutions)."""
    from torch.utils.flop_counter import FlopCounterMode

    counter = FlopCounterMode(display=False)
    with counter, t.autocast():
        loss = t.criterion(t.model(x), y)
    with counter:
        loss.backward()
    t.optimizer.zero_grad(set_to_none=True)
    return float(counter.get_total_flops())


def matmul_tflops(device: torch.device, n: int) -> float:
    """Rate of an n x n x n bf16 matrix product here (the practical peak of the tensor cores)."""
    dtype = torch.bfloat16 if device.type == "cuda" else torch.float32
    a = torch.randn(n, n, device=device, dtype=dtype)
    b = torch.randn(n, n, device=device, dtype=dtype)
    for _ in range(3):
        a @ b
    sync(device)
    reps = 10 if device.type == "cuda" else 2
    t0 = time.perf_counter()
    for _ in range(reps):
        a @ b
    sync(device)
    return 2 * n ** 3 * reps / (time.perf_counter() - t0) / 1e12


class Report:
    def __init__(self):
        self.rows: list[tuple[str, str]] = []

    def images(self, what: str, per_s: float, extra: str = "") -> None:
        print(f"{what}: {per_s:,.1f} images/s{extra}", flush=True)
        self.rows.append((what, f"{per_s:,.1f} images/s{extra}"))

    def value(self, what: str, text: str) -> None:
        print(f"{what}: {text}", flush=True)
        self.rows.append((what, text))

    def table(self) -> str:
        width = max(len(w) for w, _ in self.rows)
        lines = [f"| {'measurement'.ljust(width)} | result |", f"|{'-' * (width + 2)}|---|"]
        lines += [f"| {w.ljust(width)} | {r} |" for w, r in self.rows]
        return "\n".join(lines)


def timed_epochs(t, step, data, cfg, epochs: int) -> list[float]:
    """Seconds of each of `epochs` training epochs through the engine's loop (and the compile fallback)."""
    times = []
    for epoch in range(epochs):
        def one_epoch(epoch=epoch):
            return train_one_epoch(t, data.train_batches(epoch, cfg.batch_size, cfg.seed), epoch, stop=Never,
                                   on_losses=lambda *a: None)
        t0 = time.perf_counter()
        stats = step.run(one_epoch) if step is not None else one_epoch()
        sync(t.device)
        times.append(time.perf_counter() - t0)
        if stats is None:
            raise SystemExit("training stopped unexpectedly")
    return times


def cifar_training(device: torch.device, sizes: Sizes, report: Report, compile_too: bool) -> float | None:
    """The cifar10 recipe's training step through the engine, eager and compiled. Returns the eager rate."""
    train_set, val_set = synthetic(sizes.cifar_train, 32), synthetic(sizes.cifar_val, 32, seed=1)
    data = TensorData(train_set, val_set, cifar_preprocess(), device, channels_last=True, augment="pad_crop")
    eager_rate, flops_per_image = None, None
    for compiled in ((False, True) if compile_too else (False,)):
        cfg = recipe("cifar10", batch_size=sizes.cifar_batch, device=str(device), epochs=30, compile=compiled)
        steps = data.steps_per_epoch(cfg.batch_size)
        reset_peak(device)
        warnings: list = []
        t = build_trainer(cfg, 10, device, lambda ev: None, NO_PROGRESS, steps)
        step = compile_step(t, cfg, warnings.append)
        if flops_per_image is None:
            x, y = next(iter(data.train_batches(0, 2, cfg.seed)))
            flops_per_image = step_flops(t, x, y) / 2
        name = f"ResNet-18 CIFAR training, batch {cfg.batch_size}, {PRECISION_NAMES[t.amp_dtype]}, " \
               f"{'torch.compile' if compiled else 'eager'}"
        times = timed_epochs(t, step, data, cfg, 1 + sizes.cifar_epochs_timed)  # epoch 0 warms up (and compiles)
        for event in warnings:
            report.value(f"{name}: warning", event.message)
        if compiled and (step is None or warnings):
            continue
        epoch_s = sum(times[1:]) / len(times[1:])
        rate = steps * cfg.batch_size / epoch_s
        t0 = time.perf_counter()
        evaluate(t, data.val_batches(max(cfg.batch_size, 256)), stop=Never)
        sync(device)
        val_s = time.perf_counter() - t0
        scale = sizes.cifar_train / (steps * cfg.batch_size)
        epoch_full = epoch_s * scale
        report.images(name, rate, f"; {epoch_full:.2f} s per epoch of {sizes.cifar_train:,} + {val_s:.2f} s "
                                  f"validation; 30 epochs: {30 * (epoch_full + val_s):.0f} s")
        if compiled:
            report.value(f"{name}: compile time (first epoch - steady epoch)", f"{times[0] - epoch_s:.1f} s")
        peak = peak_gib(device)
        if peak is not None:
            report.value(f"{name}: peak GPU memory", f"{peak:.2f} GiB")
        achieved = flops_per_image * rate / 1e12
        report.value(f"{name}: model FLOPs", f"{flops_per_image / 1e9:.2f} GFLOP per image (fwd+bwd) -> "
                                            f"{achieved:.3g} TFLOP/s")
        if not compiled:
            eager_rate = rate
        del t, step
    return eager_rate


def resnet50_finetune(device: torch.device, sizes: Sizes, report: Report) -> None:
    """The finetune recipe's step (AdamW, whole network training) on images held on the device."""
    n = max(sizes.r50_batches) * (sizes.r50_steps + sizes.warmup + 2)
    images = synthetic(n, sizes.r50_size, classes=37)
    pre = default_preprocess("resnet50")
    data = TensorData(images, synthetic(8, sizes.r50_size, 37, seed=1), pre, device, channels_last=True,
                      augment="random_resized_crop")
    for batch in sizes.r50_batches:
        cfg = recipe("finetune", arch="resnet50", pretrained=False, batch_size=batch, device=str(device),
                     freeze_backbone_epochs=0)
        reset_peak(device)
        t = build_trainer(cfg, 37, device, lambda ev: None, NO_PROGRESS, sizes.r50_steps + sizes.warmup + 2)
        warm = sizes.warmup
        batches = list(itertools.islice(data.train_batches(0, batch, cfg.seed), sizes.r50_steps + warm))
        train_one_epoch(t, batches[:warm], 0, stop=Never, on_losses=lambda *a: None)  # warm-up (cudnn choices)
        sync(device)
        t0 = time.perf_counter()
        train_one_epoch(t, batches[warm:], 0, stop=Never, on_losses=lambda *a: None)
        sync(device)
        rate = (len(batches) - warm) * batch / (time.perf_counter() - t0)
        name = f"ResNet-50 fine-tuning at {sizes.r50_size}, batch {batch}, {PRECISION_NAMES[t.amp_dtype]}"
        report.images(name, rate)
        peak = peak_gib(device)
        if peak is not None:
            report.value(f"{name}: peak GPU memory", f"{peak:.2f} GiB")
        del t, batches


def prediction(device: torch.device, sizes: Sizes, report: Report) -> None:
    for arch, size in (("resnet18_cifar", 32), ("resnet50", sizes.r50_size)):
        model = build_model(arch, 10)
        pre = with_overrides(default_preprocess(arch), input_size=size)
        ckpt = Checkpoint(arch=arch, class_names=[f"c{i}" for i in range(10)], preprocess=pre,
                          state_dict=model.state_dict(), metrics={}, train_config={}, dataset={})
        reset_peak(device)
        predictor = open_predictor(ckpt, engine="torch", device=str(device), precision="auto")
        one = torch.randint(0, 256, (1, size, size, 3), dtype=torch.uint8).numpy()
        many = torch.randint(0, 256, (sizes.predict_batch, size, size, 3), dtype=torch.uint8).numpy()
        for _ in range(sizes.warmup):
            predictor.probabilities(one)
            predictor.probabilities(many)
        lat = []
        for _ in range(sizes.predict_repeats):
            t0 = time.perf_counter()
            predictor.probabilities(one)
            lat.append(time.perf_counter() - t0)
        lat.sort()
        report.images(f"prediction {arch} at {size}, batch 1", 1 / lat[len(lat) // 2],
                      f"; latency {1000 * lat[len(lat) // 2]:.2f} ms (median of {len(lat)})")
        t0 = time.perf_counter()
        reps = max(1, sizes.predict_repeats // 2)
        for _ in range(reps):
            predictor.probabilities(many)
        report.images(f"prediction {arch} at {size}, batch {sizes.predict_batch}",
                      reps * sizes.predict_batch / (time.perf_counter() - t0))
        peak = peak_gib(device)
        if peak is not None:
            report.value(f"prediction {arch}: peak GPU memory", f"{peak:.2f} GiB")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    parser.add_argument("--quick", action="store_true", help="tiny sizes (under a minute on a CPU): checks it works")
    parser.add_argument("--no-compile", action="store_true", help="skip the torch.compile measurement")
    args = parser.parse_args()
    device = torch.device(args.device)
    if device.type == "cuda" and not torch.cuda.is_available():
        raise SystemExit("CUDA is not available here; use --device cpu (with --quick for a fast check)")
    sizes = QUICK if args.quick else Sizes()
    os.environ.setdefault("RESNET_GUI_HOME", str(Path(os.environ.get("TMPDIR", "/tmp")) / "resnet-gui-bench-gpu"))
    if device.type == "cuda":
        torch.backends.cudnn.benchmark = True
        name = torch.cuda.get_device_name(device)
        props = torch.cuda.get_device_properties(device)
        where = f"{name}, {props.total_memory / 2**30:.0f} GiB, {props.multi_processor_count} SMs"
    else:
        name, where = "CPU", f"CPU, {os.cpu_count()} cores, {torch.get_num_threads()} threads"
    print(f"device: {where}; torch {torch.__version__}; {'quick sizes' if args.quick else 'full sizes'}", flush=True)
    report = Report()
    t_start = time.perf_counter()
    peak = matmul_tflops(device, sizes.matmul)
    report.value(f"{'bf16' if device.type == 'cuda' else 'fp32'} matrix product {sizes.matmul}^3 (practical peak)",
                 f"{peak:.3g} TFLOP/s")
    datasheet = next((v for k, v in DATASHEET_BF16_TFLOPS.items() if k in name), None)
    compile_too = not args.no_compile and device.type == "cuda"
    if not compile_too:
        report.value("torch.compile", "not measured (CUDA only)" if device.type != "cuda" else "skipped (--no-compile)")
    rate = cifar_training(device, sizes, report, compile_too)
    if rate is not None and device.type == "cuda":  # a CPU's matrix rate says little about convolutions
        tflops = next(float(r.split("-> ")[1].split()[0]) for w, r in report.rows if "eager: model FLOPs" in w)
        text = f"{tflops / peak:.1%} of the measured matrix-product rate"
        if datasheet:
            text += f", {tflops / datasheet:.1%} of the {datasheet} TFLOP/s datasheet bf16 peak"
        report.value("ResNet-18 CIFAR eager training: share of the peak", text)
    resnet50_finetune(device, sizes, report)
    prediction(device, sizes, report)
    print(f"\ntotal {time.perf_counter() - t_start:.0f} s\n\n{report.table()}")


if __name__ == "__main__":
    main()
