"""The engines' forward pass on the CPU: PyTorch against ONNX Runtime fp32 and int8 (core/inference).

All sides in one process, interleaved, warm, same thread count, on the same uint8 batch of real photographs
(scikit-image's, cropped with the model's preprocessing; repeated to fill the batch), through the Predictor:

* torch fp32: the torch backend (BatchNorm folded, channels_last, inference mode), and bf16 autocast where
  the CPU has native bf16 (what `--engine torch` runs);
* onnxruntime fp32: the graph built from the weights (the default for a model without an int8 version);
* onnxruntime int8: that graph quantized the way the app does it (core/inference/int8.quantize: QDQ, per
  channel, min-max on 64 photo crops); its top-1 agreement with fp32 on the batch is printed too (random
  weights: the verified agreement of trained models is what `models details` shows).

And the demo model (trained): its stored int8 version against its fp32 graph, speed and the verification it
carries.

Also: the time `build_graph` takes (with `onnx` already imported, and `import onnx` itself in a fresh process),
serialising, the weights' fingerprint (the graph cache's key hashes only that), creating the session, and the
serialized size, for resnet18 and resnet50.

    .venv/bin/python benchmarks/bench_onnx_graph.py [--repeats N] [--batch N]
"""
from __future__ import annotations

import argparse
import statistics
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))
from bench_predict import cpu_flags, cpu_name  # noqa: E402


def photos(pre, n: int) -> np.ndarray:
    from PIL import Image
    from skimage import data

    from resnet_gui.core.models.preprocess import resize_and_crop

    names = ("astronaut", "coffee", "chelsea", "rocket", "hubble_deep_field", "immunohistochemistry")
    crops = [np.asarray(resize_and_crop(Image.fromarray(getattr(data, name)()), pre)).transpose(2, 0, 1)
             for name in names]
    return np.stack([crops[i % len(crops)] for i in range(n)])


def checkpoint(arch: str):
    from resnet_gui.core.models.archs import default_preprocess
    from resnet_gui.core.models.build import build_model
    from resnet_gui.core.models.checkpoint import Checkpoint

    torch.manual_seed(0)
    model = build_model(arch, 10)
    return Checkpoint(arch=arch, class_names=[str(i) for i in range(10)], preprocess=default_preprocess(arch),
                      state_dict=model.state_dict())


def median_time(fn, repeats: int) -> float:
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return statistics.median(times)


def import_onnx_seconds() -> float:
    code = "import time; t = time.perf_counter(); import onnx; print(time.perf_counter() - t)"
    return float(subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout)


def build_figures(arch: str) -> None:
    import onnxruntime as ort

    from resnet_gui.core.inference.onnx_graph import build_graph
    from resnet_gui.core.models.checkpoint import weights_fingerprint

    ckpt = checkpoint(arch)
    state = {k: v.numpy() for k, v in ckpt.state_dict.items()}
    args = (arch, state, ckpt.num_classes, ckpt.preprocess)
    build = median_time(lambda: build_graph(*args), 3)
    proto = build_graph(*args)
    serialise = median_time(proto.SerializeToString, 3)
    data = proto.SerializeToString()
    key = median_time(lambda: weights_fingerprint(arch, state, ckpt.preprocess), 3)
    options = ort.SessionOptions()
    options.intra_op_num_threads = torch.get_num_threads()
    session = median_time(lambda: ort.InferenceSession(data, options, providers=["CPUExecutionProvider"]), 3)
    print(f"{arch:16s} build_graph {build:.3f} s, SerializeToString {serialise:.3f} s, fingerprint {key:.3f} s, "
          f"InferenceSession {session:.3f} s, {len(data) / 1e6:.1f} MB serialized")


def rates(sides: dict, batch: np.ndarray, repeats: int) -> dict[str, float]:
    """Images/s of each side's `probabilities(batch)`, interleaved."""
    for _ in range(2):
        for fn in sides.values():
            fn(batch)
    times = {name: [] for name in sides}
    for _ in range(repeats):
        for name, fn in sides.items():
            start = time.perf_counter()
            fn(batch)
            times[name].append(time.perf_counter() - start)
    return {name: len(batch) / statistics.median(t) for name, t in times.items()}


def bench(arch: str, batch_size: int, repeats: int) -> None:
    from resnet_gui.core.engines.torch_backend import TorchBackend
    from resnet_gui.core.inference.int8 import quantize
    from resnet_gui.core.inference.onnx_graph import build_graph
    from resnet_gui.core.inference.ort_backend import OrtBackend
    from resnet_gui.core.inference.predictor import ModelFacts, Predictor
    from resnet_gui.core.models.build import model_from_checkpoint

    ckpt = checkpoint(arch)
    facts = ModelFacts.of(ckpt)
    pre = ckpt.preprocess
    fp32_graph = build_graph(arch, {k: v.numpy() for k, v in ckpt.state_dict.items()}, ckpt.num_classes,
                             pre).SerializeToString()
    batch = photos(pre, batch_size).transpose(0, 2, 3, 1)  # the predictor takes N x S x S x 3
    t0 = time.perf_counter()
    int8_graph = quantize(fp32_graph, photos(pre, 64).transpose(0, 2, 3, 1))
    quantize_s = time.perf_counter() - t0
    sides = {"torch fp32": Predictor(facts, TorchBackend(model_from_checkpoint(ckpt), pre, device="cpu")),
             "onnxruntime fp32": Predictor(facts, OrtBackend(fp32_graph)),
             "onnxruntime int8": Predictor(facts, OrtBackend(int8_graph, precision="int8"))}
    bf16 = TorchBackend(model_from_checkpoint(ckpt), pre, device="cpu", precision="bf16")
    if bf16.precision == "bf16":
        sides = {"torch bf16": Predictor(facts, bf16), **sides}
    probs = {name: p.probabilities(batch) for name, p in sides.items()}
    diff = float(np.abs(probs["torch fp32"] - probs["onnxruntime fp32"]).max())
    same = float((probs["onnxruntime int8"].argmax(1) == probs["onnxruntime fp32"].argmax(1)).mean())
    result = rates({name: p.probabilities for name, p in sides.items()}, batch, repeats)
    base = result["torch fp32"]
    print(f"{arch:16s} {pre.input_size:3d} px, batch {batch_size}: "
          + ", ".join(f"{name} {rate:.1f} images/s ({rate / base:.2f}x)" for name, rate in result.items()))
    print(f"{'':16s} fp32 probabilities torch vs onnxruntime differ by {diff:.1e}; int8 top-1 = fp32 on "
          f"{same:.0%} of the batch (random weights); quantizing took {quantize_s:.1f} s, "
          f"{len(int8_graph) / 1e6:.1f} MB vs {len(fp32_graph) / 1e6:.1f} MB")


def bench_demo(batch_size: int, repeats: int) -> None:
    from resnet_gui.core.engines.choose import open_predictor
    from resnet_gui.core.inference.int8 import describe, int8_status
    from resnet_gui.core.models.checkpoint import read_checkpoint
    from resnet_gui.core.models.demo import demo_checkpoint_path

    path = demo_checkpoint_path()
    status = int8_status(read_checkpoint(path))
    sides = {p: open_predictor(path, engine="onnxruntime", precision=p) for p in ("fp32", "int8")}
    batch = photos(sides["fp32"].preprocess, batch_size).transpose(0, 2, 3, 1)
    result = rates({name: p.probabilities for name, p in sides.items()}, batch, repeats)
    print(f"demo (resnet18_cifar, trained) batch {batch_size}: onnxruntime fp32 {result['fp32']:.0f} images/s, "
          f"int8 {result['int8']:.0f} images/s ({result['int8'] / result['fp32']:.2f}x); its int8 version: "
          f"{describe(status.verification or {}) if status.usable else status.reason}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=7)
    parser.add_argument("--batch", type=int, default=32)
    args = parser.parse_args()
    import onnxruntime as ort

    print(f"{cpu_name()} ({cpu_flags()}), {torch.get_num_threads()} threads; torch {torch.__version__}, "
          f"onnxruntime {ort.__version__}")
    print(f"import onnx (fresh process): {import_onnx_seconds():.2f} s")
    for arch in ("resnet18", "resnet50"):
        build_figures(arch)
    bench("resnet18", args.batch, args.repeats)
    bench("resnet18_cifar", args.batch, args.repeats)
    bench_demo(args.batch, args.repeats)


if __name__ == "__main__":
    main()
