"""The ONNX graph built from the weights (core/inference/onnx_graph.py) against today's torch path, on the CPU.

Both sides in one process, interleaved, warm, same thread count, on the same uint8 batch of real photographs
(scikit-image's, cropped with the model's preprocessing; repeated to fill the batch):

* torch: `Predictor.probabilities` fp32 (BatchNorm folded, channels_last, inference mode; today's CPU path);
* onnxruntime: the graph with the engine's outputs (logits, features, feature_maps) and a numpy softmax.

Also: the time `build_graph` takes (with `onnx` already imported, and `import onnx` itself in a fresh process),
serialising, `graph_key`, creating the session, and the serialized size, for resnet18 and resnet50.

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
from bench_predict import cpu_name  # noqa: E402


def photos(pre, n: int) -> np.ndarray:
    from PIL import Image
    from skimage import data

    from resnet_gui.core.models.preprocess import resize_and_crop

    names = ("astronaut", "coffee", "chelsea", "rocket", "hubble_deep_field", "immunohistochemistry")
    crops = [np.asarray(resize_and_crop(Image.fromarray(getattr(data, name)()), pre)).transpose(2, 0, 1)
             for name in names]
    return np.stack([crops[i % len(crops)] for i in range(n)])


def checkpoint(arch: str):
    from resnet_gui.core.models.build import build_model, default_preprocess
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

    from resnet_gui.core.inference.onnx_graph import build_graph, graph_key

    ckpt = checkpoint(arch)
    state = {k: v.numpy() for k, v in ckpt.state_dict.items()}
    args = (arch, state, ckpt.num_classes, ckpt.preprocess)
    build = median_time(lambda: build_graph(*args), 3)
    proto = build_graph(*args)
    serialise = median_time(proto.SerializeToString, 3)
    data = proto.SerializeToString()
    key = median_time(lambda: graph_key(*args), 3)
    options = ort.SessionOptions()
    options.intra_op_num_threads = torch.get_num_threads()
    session = median_time(lambda: ort.InferenceSession(data, options, providers=["CPUExecutionProvider"]), 3)
    print(f"{arch:16s} build_graph {build:.3f} s, SerializeToString {serialise:.3f} s, graph_key {key:.3f} s, "
          f"InferenceSession {session:.3f} s, {len(data) / 1e6:.1f} MB serialized")


def bench(arch: str, batch_size: int, repeats: int) -> None:
    import onnxruntime as ort

    from resnet_gui.core.inference.onnx_graph import build_graph
    from resnet_gui.core.inference.predictor import Predictor

    ckpt = checkpoint(arch)
    state = {k: v.numpy().copy() for k, v in ckpt.state_dict.items()}
    pre = ckpt.preprocess
    predictor = Predictor(ckpt, device="cpu")
    options = ort.SessionOptions()
    options.intra_op_num_threads = torch.get_num_threads()
    session = ort.InferenceSession(build_graph(arch, state, ckpt.num_classes, pre).SerializeToString(), options,
                                   providers=["CPUExecutionProvider"])
    batch = photos(pre, batch_size)
    tensor = torch.from_numpy(batch)

    def torch_side():
        return predictor.probabilities(tensor).numpy()

    def ort_side():
        logits = session.run(None, {"images": batch})[0]
        e = np.exp(logits - logits.max(1, keepdims=True))
        return e / e.sum(1, keepdims=True)

    diff = float(np.abs(torch_side() - ort_side()).max())
    for _ in range(2):
        torch_side(), ort_side()
    t_torch, t_ort = [], []
    for _ in range(repeats):
        for fn, sink in ((torch_side, t_torch), (ort_side, t_ort)):
            start = time.perf_counter()
            fn()
            sink.append(time.perf_counter() - start)
    torch_rate, ort_rate = batch_size / statistics.median(t_torch), batch_size / statistics.median(t_ort)
    print(f"{arch:16s} {pre.input_size:3d} px, batch {batch_size}: torch fp32 channels_last {torch_rate:7.1f} "
          f"images/s, onnxruntime fp32 {ort_rate:7.1f} images/s, ratio {ort_rate / torch_rate:.2f}x "
          f"(probabilities differ by {diff:.1e})")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=7)
    parser.add_argument("--batch", type=int, default=32)
    args = parser.parse_args()
    import onnxruntime as ort

    print(f"{cpu_name()}, {torch.get_num_threads()} threads; torch {torch.__version__}, onnxruntime "
          f"{ort.__version__}")
    print(f"import onnx (fresh process): {import_onnx_seconds():.2f} s")
    for arch in ("resnet18", "resnet50"):
        build_figures(arch)
    bench("resnet18", args.batch, args.repeats)
    bench("resnet18_cifar", args.batch, args.repeats)


if __name__ == "__main__":
    main()
