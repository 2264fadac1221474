"""The network as an ONNX graph built straight from its weights: numpy and onnx, no torch.

`build_graph(arch, state_dict, num_classes, preprocess)` turns the numpy state dict of any architecture of the
zoo (models/archs.py: resnet18_cifar, ResNet-18/34/50/101/152, ResNeXt, Wide ResNet) into the network
torchvision's ResNet computes in eval mode, as ONNX Runtime runs it best:

* input ``images``: uint8 ``[N, 3, S, S]`` (N dynamic, S the preprocessing's input size), RGB 0-255, resized
  and center-cropped: what ``models export --format onnx`` takes (docs/export.md);
* Cast to float, Sub ``255 * mean``, then the first convolution with ``1 / (255 * std)`` folded into its
  weights. Folding the mean too (into the bias) would not be exact: the convolution pads with zeros, and a zero
  after normalisation is the pixel ``255 * mean``, not 0. Measured against torch on resnet18 at 224 px, four
  scikit-image photos: folding everything moves the logits by 5e-2 (of values up to 1.9: the border pixels of
  the first feature map are wrong), Sub + folded scale by 1e-6, as much as a separate Sub and Mul; so the Sub
  stays (one elementwise op on the input, nothing next to the convolutions);
* every BatchNorm folded into the convolution before it (running statistics, eps 1e-5 as torch's default),
  computed in float64 and stored as float32; Relu, MaxPool (not after the CIFAR stem), residual Add,
  GlobalAveragePool, Flatten, Gemm for fc;
* outputs, any of: ``logits`` [N, C]; ``features`` [N, D], the pooled penultimate features (the input of fc);
  ``feature_maps`` [N, D, h, w], the last stage's output before pooling (for a global-average-pool + linear head
  Grad-CAM on layer4 equals CAM from these maps and fc's weights); ``probabilities`` [N, C],
  ``softmax(logits / temperature)`` (the export's default output).

Every node is named after the module it comes from (``conv1``, ``layer2.0.conv1``, ``fc``), so a quantizer can
leave chosen nodes in fp32 by name. The weights are checked before anything is built: names and shapes against
the architecture, floating point, finite, variances that are not negative; one CheckpointError naming the key.

`import onnx` costs 0.55 s here (its ml_dtypes extension: 0.48 s), so it is imported only inside build_graph:
`graph_key` and the checks run without it, and a graph cached as bytes is loaded by onnxruntime alone.
"""
from __future__ import annotations

import hashlib
import json
import math
from collections.abc import Mapping, Sequence

import numpy as np

from ..errors import CheckpointError, ModelError
from ..models.archs import Block, arch_info, blocks, check_fits, feature_dim_of, state_dict_shapes
from ..models.preprocess import Preprocess

INPUT = "images"
LOGITS, FEATURES, FEATURE_MAPS, PROBABILITIES = "logits", "features", "feature_maps", "probabilities"
OUTPUTS = (LOGITS, FEATURES, FEATURE_MAPS, PROBABILITIES)
ENGINE_OUTPUTS = (LOGITS, FEATURES, FEATURE_MAPS)  # what the inference engine asks for by default
DEFAULT_OPSET = 17    # ONNX Runtime >= 1.14 and every current runtime run it; nothing here needs newer ops
MIN_OPSET = 13        # Softmax over one axis (axis=1) as meant here
BN_EPS = 1e-5         # torch.nn.BatchNorm2d's default, which every model of the zoo uses
BUILDER_VERSION = 1   # bump when the graph built from the same weights changes: cached graphs are then rebuilt


# ---------------------------------------------------------------------------------------------
# checks
# ---------------------------------------------------------------------------------------------
def check_weights(arch: str, state_dict: Mapping, num_classes: int, source: str = "<state dict>") \
        -> dict[str, np.ndarray]:
    """The weights of `arch` with a `num_classes`-way head, checked: numpy arrays of floating point with exactly
    the architecture's names and shapes, finite, BatchNorm variances >= 0. Returns them (same arrays, not
    copied). Raises ModelError (unknown architecture, bad class count) or CheckpointError naming `source` and
    the key at fault."""
    arch_info(arch)
    if isinstance(num_classes, bool) or not isinstance(num_classes, (int, np.integer)) or num_classes < 1:
        raise ModelError(f"the number of classes must be a whole number of at least 1, got {num_classes!r}")
    if not isinstance(state_dict, Mapping):
        raise CheckpointError(f"{source}: the weights are not a mapping of names to arrays")
    for key, value in state_dict.items():
        if not isinstance(value, np.ndarray):
            raise CheckpointError(f"{source}: entry {str(key)[:80]!r} is a {type(value).__name__}, not a numpy "
                                  "array of numbers")
    check_fits(state_dict, state_dict_shapes(arch, int(num_classes)), source, arch)
    for key, value in state_dict.items():
        if key.endswith("num_batches_tracked"):  # a counter for training; eval mode never reads it
            continue
        if value.dtype.kind != "f":
            raise CheckpointError(f"{source}: entry {key!r} holds {value.dtype} values, not floating-point weights")
        if not np.isfinite(value).all():
            raise CheckpointError(f"{source}: entry {key!r} holds NaN or infinite values; the model cannot give "
                                  "meaningful answers (retrain it, or use an earlier checkpoint)")
        if key.endswith("running_var") and (value < 0).any():
            raise CheckpointError(f"{source}: entry {key!r} holds negative variances; the file is damaged "
                                  "(retrain the model, or use an earlier checkpoint)")
    return dict(state_dict)


def _outputs(outputs: Sequence[str]) -> tuple[str, ...]:
    names = tuple(outputs)
    unknown = [n for n in names if n not in OUTPUTS]
    if unknown or not names or len(set(names)) != len(names):
        raise ValueError(f"outputs must be distinct names among {', '.join(OUTPUTS)}, got {list(names)}")
    return names


def _temperature(value: float) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value) or value <= 0:
        raise ValueError(f"the temperature must be a positive number, got {value!r}")
    return float(value)


# ---------------------------------------------------------------------------------------------
# the cache key
# ---------------------------------------------------------------------------------------------
def graph_key(arch: str, fingerprint: str, num_classes: int, preprocess: Preprocess, *,
              opset: int = DEFAULT_OPSET, outputs: Sequence[str] = ENGINE_OUTPUTS, temperature: float = 1.0) -> str:
    """A hex digest that changes exactly when `build_graph` with these arguments would build another graph:
    the builder's version, every argument, and the weights through their `fingerprint`
    (models.checkpoint.weights_fingerprint: every name and value as the float32 the graph is built from; the
    loaded checkpoint keeps it, so the weights are hashed once per load). Stable across processes and
    machines; needs no onnx."""
    head = {"builder": BUILDER_VERSION, "arch": arch, "classes": int(num_classes), "opset": int(opset),
            "outputs": list(outputs), "temperature": float(temperature), "preprocess": preprocess.to_dict(),
            "weights": str(fingerprint)}
    return hashlib.blake2b(json.dumps(head, sort_keys=True).encode(), digest_size=20).hexdigest()


# ---------------------------------------------------------------------------------------------
# folding
# ---------------------------------------------------------------------------------------------
def fold_batchnorm(state: Mapping[str, np.ndarray], conv: str, bn: str, eps: float = BN_EPS) \
        -> tuple[np.ndarray, np.ndarray]:
    """(weight, bias) of convolution `conv` followed by eval-mode BatchNorm `bn`, as one convolution (float64
    arithmetic, float32 result): W * g / sqrt(v + eps) and b - m * g / sqrt(v + eps)."""
    scale = state[f"{bn}.weight"].astype(np.float64) / np.sqrt(state[f"{bn}.running_var"].astype(np.float64) + eps)
    weight = state[f"{conv}.weight"].astype(np.float64) * scale[:, None, None, None]
    bias = state[f"{bn}.bias"].astype(np.float64) - state[f"{bn}.running_mean"].astype(np.float64) * scale
    return weight, bias


def _size(size: int, kernel: int, stride: int, pad: int) -> int:
    return (size + 2 * pad - kernel) // stride + 1


class _Graph:
    """Nodes and initializers in the order they are added; every node outputs one tensor named like it."""

    def __init__(self, onnx) -> None:
        self.onnx, self.nodes, self.initializers = onnx, [], []

    def const(self, name: str, array: np.ndarray) -> str:
        self.initializers.append(self.onnx.numpy_helper.from_array(np.ascontiguousarray(array), name))
        return name

    def node(self, op: str, inputs: list[str], output: str, name: str | None = None, **attributes) -> str:
        self.nodes.append(self.onnx.helper.make_node(op, inputs, [output], name=name or output, **attributes))
        return output

    def conv(self, x: str, name: str, weight: np.ndarray, bias: np.ndarray, stride: int, groups: int = 1) -> str:
        kernel = weight.shape[-1]
        pad = kernel // 2
        inputs = [x, self.const(f"{name}.weight", weight.astype(np.float32)),
                  self.const(f"{name}.bias", bias.astype(np.float32))]
        return self.node("Conv", inputs, name, kernel_shape=[kernel, kernel], strides=[stride, stride],
                         pads=[pad] * 4, group=groups)


def _block(g: _Graph, state: Mapping[str, np.ndarray], block: Block, x: str, output: str) -> str:
    out = x
    last = len(block.convs)
    for i, (suffix, _, _, _, stride, groups) in enumerate(block.convs, 1):
        name = f"{block.name}.{suffix}"
        out = g.conv(out, name, *fold_batchnorm(state, name, f"{block.name}.bn{i}"), stride, groups)
        if i < last:
            out = g.node("Relu", [out], f"{block.name}.relu{i}")
    identity = x
    if block.downsample:
        name = f"{block.name}.downsample"
        identity = g.conv(x, f"{name}.0", *fold_batchnorm(state, f"{name}.0", f"{name}.1"), block.downsample[2])
    return g.node("Relu", [g.node("Add", [out, identity], f"{block.name}.add")], output, name=block.name)


# ---------------------------------------------------------------------------------------------
# the graph
# ---------------------------------------------------------------------------------------------
def build_graph(arch: str, state_dict: Mapping[str, np.ndarray], num_classes: int, preprocess: Preprocess, *,
                opset: int = DEFAULT_OPSET, outputs: Sequence[str] = ENGINE_OUTPUTS, temperature: float = 1.0,
                source: str = "<state dict>"):
    """The ONNX model (an `onnx.ModelProto`) of `arch` with these weights, taking uint8 ``images``
    [N, 3, S, S] (S = preprocess.input_size) and giving `outputs`, in that order (names among OUTPUTS;
    ``probabilities`` divides the logits by `temperature`). Checks the weights first (check_weights; `source`
    names them in errors). ResNet-18: 0.09 s and 45 MB serialized; ResNet-50: 0.19 s, 94 MB."""
    import onnx  # 0.55 s: only when a graph is really built (see the module's docstring)
    import onnx.numpy_helper  # noqa: F401 (a submodule that `import onnx` does not always load)

    if not isinstance(preprocess, Preprocess):
        raise TypeError(f"preprocess must be a Preprocess, got {type(preprocess).__name__}")
    names, temperature = _outputs(outputs), _temperature(temperature)
    if not MIN_OPSET <= int(opset) <= onnx.defs.onnx_opset_version():
        raise ValueError(f"opset {opset} is outside {MIN_OPSET}-{onnx.defs.onnx_opset_version()}")
    state = check_weights(arch, state_dict, num_classes, source)
    cifar, size = arch_info(arch).cifar_stem, preprocess.input_size
    g = _Graph(onnx)
    x = g.node("Cast", [INPUT], "images_float", to=onnx.TensorProto.FLOAT)
    mean255 = np.asarray(preprocess.mean, np.float64).reshape(1, 3, 1, 1) * 255.0
    x = g.node("Sub", [x, g.const("mean255", mean255.astype(np.float32))], "centred")
    weight, bias = fold_batchnorm(state, "conv1", "bn1")
    weight = weight / (np.asarray(preprocess.std, np.float64) * 255.0)[None, :, None, None]
    x = g.node("Relu", [g.conv(x, "conv1", weight, bias, 1 if cifar else 2)], "relu")
    side = _size(size, 3, 1, 1) if cifar else _size(_size(size, 7, 2, 3), 3, 2, 1)
    if not cifar:
        x = g.node("MaxPool", [x], "maxpool", kernel_shape=[3, 3], strides=[2, 2], pads=[1, 1, 1, 1])
    all_blocks = blocks(arch)
    for i, block in enumerate(all_blocks):
        x = _block(g, state, block, x, FEATURE_MAPS if i == len(all_blocks) - 1 else block.name)
        if block.downsample and block.downsample[2] == 2:
            side = _size(side, 1, 2, 0)
    pooled = g.node("GlobalAveragePool", [x], "avgpool")
    features = g.node("Flatten", [pooled], FEATURES, axis=1)
    fc = [g.const("fc.weight", state["fc.weight"].astype(np.float32)),
          g.const("fc.bias", state["fc.bias"].astype(np.float32))]
    logits = g.node("Gemm", [features, *fc], LOGITS, name="fc", transB=1)
    if PROBABILITIES in names:
        scaled = logits if temperature == 1.0 else g.node(
            "Mul", [logits, g.const("inv_temperature", np.asarray(1.0 / temperature, np.float32))], "scaled_logits")
        g.node("Softmax", [scaled], PROBABILITIES, axis=1)
    dim, classes = feature_dim_of(arch), int(num_classes)
    shapes = {LOGITS: ["N", classes], FEATURES: ["N", dim], FEATURE_MAPS: ["N", dim, side, side],
              PROBABILITIES: ["N", classes]}
    helper, float32 = onnx.helper, onnx.TensorProto.FLOAT
    graph = helper.make_graph(
        g.nodes, f"{arch} ({classes} classes)",
        [helper.make_tensor_value_info(INPUT, onnx.TensorProto.UINT8, ["N", 3, size, size])],
        [helper.make_tensor_value_info(n, float32, shapes[n]) for n in names], g.initializers)
    opset_id = helper.make_opsetid("", int(opset))
    model = helper.make_model(graph, opset_imports=[opset_id], producer_name="resnet-gui onnx_graph",
                              producer_version=str(BUILDER_VERSION),
                              ir_version=helper.find_min_ir_version_for([opset_id]))
    return model
