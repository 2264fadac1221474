"""core/inference/onnx_graph.py: the ONNX graph built from numpy weights (no torch) computes what the torch model
computes, for every architecture of the zoo, on real images.

Each torch model is built with a seed, its BatchNorm running statistics set from real images (a train-mode pass)
and then scaled at random with random affine parameters, so folding is tested on values far from 0 and 1; it is
then compared in eval mode with its graph run by ONNX Runtime on the bundled samples and scikit-image's photos,
cropped with the model's preprocessing: logits within 1e-3 (relative to the largest logit when above 1), the same
top-1, the same pooled features and last-stage maps, and CAMs from those maps and fc that correlate >= 0.99 with
Grad-CAM on torch. The large networks run at 64 px.
"""
from __future__ import annotations

import importlib.util
import os
import subprocess
import sys
import textwrap
from pathlib import Path

import numpy as np
import pytest
import torch
from reference_gradcam import grad_cam

from resnet_gui import resources
from resnet_gui.core.errors import CheckpointError, ModelError
from resnet_gui.core.inference import onnx_graph
from resnet_gui.core.models.archs import ARCHS, state_dict_shapes
from resnet_gui.core.models.build import build_model
from resnet_gui.core.models.preprocess import IMAGENET_MEAN, IMAGENET_STD, Preprocess, resize_and_crop

ort = pytest.importorskip("onnxruntime")
onnx = pytest.importorskip("onnx")

ROOT = Path(__file__).resolve().parents[3]
PHOTOS = ("astronaut", "coffee", "chelsea", "rocket", "hubble_deep_field", "immunohistochemistry")
# input size per architecture: the real one for resnet18 and resnet18_cifar, small for the deep ones (speed)
SIZES = {"resnet18_cifar": 32, "resnet18": 224, "resnet34": 96, "resnet50": 96, "resnext50_32x4d": 96,
         "resnet101": 64, "resnet152": 64, "resnext101_32x8d": 64, "wide_resnet50_2": 64}
CLASSES = 10
TOLERANCE = 1e-3


def real_images() -> list:
    """The bundled samples (32 x 32 digit scans and two non-digits) and six scikit-image photographs, as PIL RGB."""
    from PIL import Image
    from skimage import data

    samples = sorted(resources.path("samples").glob("*.png"))
    assert len(samples) >= 20
    return [Image.open(p).convert("RGB") for p in samples] + [Image.fromarray(getattr(data, n)()) for n in PHOTOS]


@pytest.fixture(scope="module")
def images() -> list:
    return real_images()


def batch_of(images: list, pre: Preprocess) -> np.ndarray:
    """uint8 N x 3 x S x S, resized and center-cropped the app's way."""
    return np.stack([np.asarray(resize_and_crop(image, pre)).transpose(2, 0, 1) for image in images])


def normalised(batch: np.ndarray, pre: Preprocess) -> torch.Tensor:
    """The normalisation Predictor applies: (x - 255 mean) * 1 / (255 std), in float32."""
    mean255 = torch.tensor(pre.mean, dtype=torch.float32).view(1, 3, 1, 1) * 255.0
    inv_std255 = 1.0 / (torch.tensor(pre.std, dtype=torch.float32).view(1, 3, 1, 1) * 255.0)
    return (torch.from_numpy(batch).float() - mean255) * inv_std255


def randomised_model(arch: str, pre: Preprocess, calibration: np.ndarray, seed: int = 0) -> torch.nn.Module:
    """`arch` with a seed, its BatchNorm statistics measured on real images then scaled at random, random
    BatchNorm affine parameters; eval mode."""
    torch.manual_seed(seed)
    model = build_model(arch, CLASSES)
    bns = [m for m in model.modules() if isinstance(m, torch.nn.BatchNorm2d)]
    for bn in bns:
        bn.momentum = None  # a cumulative average: the statistics of this batch
    model.train()
    with torch.no_grad():
        model(normalised(calibration, pre))
    g = torch.Generator().manual_seed(seed + 1)
    with torch.no_grad():
        for bn in bns:
            n = bn.num_features
            bn.running_var.mul_(torch.rand(n, generator=g) * 1.5 + 0.5)
            bn.running_mean.add_(torch.randn(n, generator=g) * 0.1)
            bn.weight.copy_(torch.rand(n, generator=g) + 0.5)
            bn.bias.copy_(torch.randn(n, generator=g) * 0.2)
        model.eval()
        # a random deep network maps every image near one point, and a random head then gives all of them one
        # class: centre the head on the calibration images so that the classes differ between images
        features = torch.flatten(model.avgpool(model.layer4(model.layer3(model.layer2(model.layer1(model.maxpool(
            model.relu(model.bn1(model.conv1(normalised(calibration, pre)))))))))), 1)
        model.fc.weight.mul_(5 / float((model.fc.weight @ (features - features.mean(0)).T).std()))  # logits ~ +-5
        model.fc.bias.copy_(-model.fc.weight @ features.mean(0))
    return model


def numpy_state(model: torch.nn.Module) -> dict[str, np.ndarray]:
    return {k: v.detach().cpu().numpy().copy() for k, v in model.state_dict().items()}


def session(proto) -> ort.InferenceSession:
    return ort.InferenceSession(proto.SerializeToString(), providers=["CPUExecutionProvider"])


def torch_outputs(model: torch.nn.Module, x: torch.Tensor) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(logits, pooled features, layer4 maps) of the torch model."""
    with torch.no_grad():
        maps = model.layer4(model.layer3(model.layer2(model.layer1(model.maxpool(model.relu(model.bn1(
            model.conv1(x))))))))
        features = torch.flatten(model.avgpool(maps), 1)
        logits = model.fc(features)
        assert torch.equal(logits, model(x))
    return logits.numpy(), features.numpy(), maps.numpy()


def assert_close(got: np.ndarray, expected: np.ndarray, what: str) -> None:
    """Within TOLERANCE, relative to the largest value when that is above 1 (no silent broadcasting)."""
    assert got.shape == expected.shape, what
    scale = max(1.0, float(np.abs(expected).max()))
    diff = float(np.abs(got - expected).max())
    assert diff <= TOLERANCE * scale, f"{what}: max difference {diff:.3g} (values up to {scale:.3g})"


def cam_from_maps(maps: np.ndarray, fc_weight: np.ndarray, index: int) -> np.ndarray:
    """Class activation map: relu(sum_k w[c, k] A_k), normalised to [0, 1]."""
    cam = np.maximum(np.einsum("k,khw->hw", fc_weight[index].astype(np.float64), maps.astype(np.float64)), 0)
    return cam / cam.max() if cam.max() > 0 else cam


@pytest.mark.slow
@pytest.mark.parametrize("arch", list(ARCHS))
def test_the_graph_gives_torchs_logits_top1_features_and_cams_on_real_images(arch, images):
    size = SIZES[arch]
    pre = Preprocess(input_size=size, resize=size if size == 32 else round(size * 256 / 224),
                     mean=IMAGENET_MEAN, std=IMAGENET_STD)
    batch = batch_of(images, pre)
    model = randomised_model(arch, pre, batch[-len(PHOTOS):])
    state = numpy_state(model)
    logits, features, maps = torch_outputs(model, normalised(batch, pre))

    got = session(onnx_graph.build_graph(arch, state, CLASSES, pre)).run(None, {"images": batch})
    assert [a.shape for a in got] == [logits.shape, features.shape, maps.shape]
    assert_close(got[0], logits, "logits")
    assert (got[0].argmax(1) == logits.argmax(1)).all(), "top-1"
    assert len(set(logits.argmax(1).tolist())) > 1, "the classes differ between images, so top-1 means something"
    assert_close(got[1], features, "features")
    assert_close(got[2], maps, "feature maps")

    checked = 0
    for i in [len(batch) - 1 - k for k in range(len(PHOTOS))] + list(range(len(batch) - len(PHOTOS))):
        expected, index = grad_cam(model, normalised(batch[i:i + 1], pre))
        expected = expected.numpy()
        assert index == int(got[0][i].argmax())
        ours = cam_from_maps(got[2][i], state["fc.weight"], index)
        if np.ptp(expected) == 0:  # at 2 x 2 the whole map may be negative evidence: both say nothing
            assert np.abs(ours - expected).max() <= 1e-4
            continue
        assert np.corrcoef(ours.ravel(), expected.ravel())[0, 1] >= 0.99, f"image {i}"
        checked += 1
        if checked == 3:
            break
    assert checked == 3


def test_the_batch_is_dynamic_and_probabilities_divide_by_the_temperature(images):
    pre = Preprocess(input_size=32, resize=32)
    batch = batch_of(images[:5], pre)
    model = randomised_model("resnet18_cifar", pre, batch)
    with torch.no_grad():
        model.fc.weight.mul_(20)  # far from uniform probabilities, so the temperature shows
    state = numpy_state(model)
    logits, _, _ = torch_outputs(model, normalised(batch, pre))
    proto = onnx_graph.build_graph("resnet18_cifar", state, CLASSES, pre,
                                   outputs=("probabilities", "logits"), temperature=2.5)
    onnx.checker.check_model(proto, full_check=True)
    run = session(proto)
    assert [o.name for o in run.get_outputs()] == ["probabilities", "logits"]
    assert run.get_inputs()[0].type == "tensor(uint8)" and run.get_inputs()[0].shape == ["N", 3, 32, 32]
    for n in (1, 3, 5):
        probabilities, raw = run.run(None, {"images": batch[:n]})
        assert_close(raw, logits[:n], "logits")
        expected = torch.softmax(torch.from_numpy(logits[:n]) / 2.5, dim=1).numpy()
        assert float(np.abs(probabilities - expected).max()) <= 1e-5
    assert float(expected.max()) > 0.5
    names = {node.name for node in proto.graph.node}
    assert {"conv1", "layer1.0.conv1", "layer4.1.conv2", "fc", "layer4.1"} <= names
    assert "maxpool" not in names  # the CIFAR stem has none
    assert not any(node.op_type == "BatchNormalization" for node in proto.graph.node)


def test_the_demo_model_gives_torchs_top1_on_the_samples_and_the_held_out_digits():
    """The bundled demo (float16 weights, used as float32): same top-1 as torch's Predictor on the 22 bundled
    samples and on the 360 held-out digits of scripts/train_demo_model.py's split."""
    from sklearn.datasets import load_digits

    from resnet_gui.core.engines.choose import open_predictor
    from resnet_gui.core.models.checkpoint import read_checkpoint
    from resnet_gui.core.models.demo import demo_checkpoint_path

    spec = importlib.util.spec_from_file_location("train_demo_model", ROOT / "scripts" / "train_demo_model.py")
    script = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(script)
    digits = load_digits()
    _, _, test = script.split_indices(digits.target, 0, None)
    assert len(test) == 360
    predictor = open_predictor(demo_checkpoint_path(), engine="torch", device="cpu", precision="fp32")
    pre = predictor.preprocess
    held_out = [script.digit_image(digits.images[i]) for i in test]
    batch = batch_of(real_images()[:-len(PHOTOS)] + held_out, pre)
    expected = predictor.probabilities(batch.transpose(0, 2, 3, 1))
    checkpoint = read_checkpoint(demo_checkpoint_path())  # stored as float16, read as float32 numpy arrays
    assert checkpoint.state_dict["conv1.weight"].dtype == np.float32
    state = checkpoint.state_dict
    graph = onnx_graph.build_graph("resnet18_cifar", state, 10, pre, outputs=("logits",))
    logits = session(graph).run(None, {"images": batch})[0]
    assert (logits.argmax(1) == expected.argmax(1)).all()
    accuracy = float((logits.argmax(1)[-360:] == digits.target[test]).mean())
    assert accuracy >= 0.98  # the README's 98.9 %: really the demo's digits, really its preprocessing


def test_building_needs_no_torch(tmp_path):
    """A graph built from a .npz of weights in a process where torch cannot be imported gives torch's logits."""
    pre = Preprocess(input_size=32, resize=32)
    torch.manual_seed(5)
    model = build_model("resnet18_cifar", 3).eval()
    x = torch.randint(0, 256, (2, 3, 32, 32), dtype=torch.uint8, generator=torch.Generator().manual_seed(0))
    logits, _, _ = torch_outputs(model, normalised(x.numpy(), pre))
    np.savez(tmp_path / "weights.npz", **numpy_state(model))
    np.savez(tmp_path / "expected.npz", images=x.numpy(), logits=logits)
    code = textwrap.dedent(f"""
        import sys
        for name in ("torch", "torchvision"):
            sys.modules[name] = None  # import torch now raises ImportError
        import numpy as np
        import onnxruntime
        from resnet_gui.core.inference.onnx_graph import build_graph, graph_key
        from resnet_gui.core.models.preprocess import Preprocess
        weights = dict(np.load({str(tmp_path / "weights.npz")!r}))
        expected = np.load({str(tmp_path / "expected.npz")!r})
        pre = Preprocess(input_size=32, resize=32)
        graph = build_graph("resnet18_cifar", weights, 3, pre).SerializeToString()
        session = onnxruntime.InferenceSession(graph, providers=["CPUExecutionProvider"])
        logits = session.run(["logits"], {{"images": expected["images"]}})[0]
        assert np.abs(logits - expected["logits"]).max() <= 1e-4, np.abs(logits - expected["logits"]).max()
        from resnet_gui.core.models.checkpoint import weights_fingerprint
        assert len(graph_key("resnet18_cifar", weights_fingerprint("resnet18_cifar", weights, pre), 3, pre)) == 40
        loaded = sorted(m for m in sys.modules if m.split(".")[0] in ("torch", "torchvision") and sys.modules[m])
        assert not loaded, loaded
        print("built without torch")
        """)
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(ROOT), os.environ.get("PYTHONPATH", "")])}
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=600, env=env)
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert "built without torch" in proc.stdout


def zeros_state(arch: str, classes: int) -> dict[str, np.ndarray]:
    state = {k: np.zeros(s, np.float32) for k, s in state_dict_shapes(arch, classes).items()}
    for key in state:
        if key.endswith("running_var") or key.endswith("bn1.weight"):
            state[key][:] = 1
    return state


@pytest.mark.parametrize(("change", "error", "message"), [
    (lambda s: s.pop("layer2.1.bn1.running_mean"), CheckpointError,
     r"m\.pth: the weights do not fit architecture resnet18_cifar \(missing layer2\.1\.bn1\.running_mean\)"),
    (lambda s: s.__setitem__("layer3.0.conv2.weight", np.zeros((256, 256, 1, 3), np.float32)), CheckpointError,
     r"wrong shape layer3\.0\.conv2\.weight: \(256, 256, 1, 3\) instead of \(256, 256, 3, 3\)"),
    (lambda s: s.__setitem__("fc.bias", np.zeros(1, np.float32)), CheckpointError,
     r"wrong shape fc\.bias: \(1,\) instead of \(4,\)"),  # broadcasting would have run
    (lambda s: s.__setitem__("extra.weight", np.zeros(1, np.float32)), CheckpointError, r"unexpected extra\.weight"),
    (lambda s: s["layer1.0.conv1.weight"].__setitem__((0, 0, 0, 0), np.nan), CheckpointError,
     r"m\.pth: entry 'layer1\.0\.conv1\.weight' holds NaN or infinite values"),
    (lambda s: s["fc.weight"].__setitem__((1, 2), np.inf), CheckpointError, r"'fc\.weight' holds NaN or infinite"),
    (lambda s: s["bn1.running_var"].__setitem__(3, -1.0), CheckpointError, r"'bn1\.running_var' holds negative"),
    (lambda s: s.__setitem__("conv1.weight", s["conv1.weight"].astype(np.int32)), CheckpointError,
     r"'conv1\.weight' holds int32 values, not floating-point weights"),
    (lambda s: s.__setitem__("fc.bias", [0.0] * 4), CheckpointError,
     r"entry 'fc\.bias' is a list, not a numpy array"),
])
def test_weights_that_do_not_fit_get_one_clear_error_naming_the_key(change, error, message):
    state = zeros_state("resnet18_cifar", 4)
    change(state)
    with pytest.raises(error, match=message):
        onnx_graph.build_graph("resnet18_cifar", state, 4, Preprocess(input_size=32, resize=32), source="m.pth")


def test_wrong_architectures_counts_and_options_are_refused():
    pre, state = Preprocess(input_size=32, resize=32), zeros_state("resnet18_cifar", 4)
    with pytest.raises(ModelError, match="unknown architecture 'vgg16'"):
        onnx_graph.build_graph("vgg16", state, 4, pre)
    with pytest.raises(CheckpointError, match=r"do not fit architecture resnet18 \(wrong shape conv1\.weight: "
                       r"\(64, 3, 3, 3\) instead of \(64, 3, 7, 7\)\)"):  # the CIFAR stem's weights
        onnx_graph.build_graph("resnet18", state, 4, pre)
    with pytest.raises(ModelError, match="at least 1"):
        onnx_graph.build_graph("resnet18_cifar", state, 0, pre)
    with pytest.raises(CheckpointError, match="not a mapping"):
        onnx_graph.build_graph("resnet18_cifar", [("conv1.weight", 0)], 4, pre)
    for options in ({"outputs": ("logits", "scores")}, {"outputs": ()}, {"outputs": ("logits", "logits")},
                    {"temperature": 0.0}, {"temperature": float("nan")}, {"opset": 9}):
        with pytest.raises(ValueError):
            onnx_graph.build_graph("resnet18_cifar", state, 4, pre, **options)


def test_the_graph_key_changes_with_every_input_and_only_then():
    from resnet_gui.core.models.checkpoint import weights_fingerprint

    pre = Preprocess(input_size=32, resize=32)
    state = zeros_state("resnet18_cifar", 4)

    def key_of(weights, classes=4, preprocess=pre, **options):
        return onnx_graph.graph_key("resnet18_cifar", weights_fingerprint("resnet18_cifar", weights, preprocess),
                                    classes, preprocess, **options)

    key = key_of(state)
    assert key == key_of({k: v.copy() for k, v in reversed(state.items())})
    # float16 weights are built as the float32 values they stand for: the same graph, so the same entry
    assert key == key_of({k: v.astype(np.float16) for k, v in state.items()})
    changed = {k: v.copy() for k, v in state.items()}
    changed["layer4.1.bn2.bias"][7] = 1e-6
    others = [key_of(changed), key_of(state, preprocess=Preprocess(input_size=32, resize=32, std=(1, 1, 1))),
              key_of(state, outputs=("logits",)), key_of(state, temperature=2.0), key_of(state, opset=18),
              key_of(zeros_state("resnet18_cifar", 5), classes=5)]
    assert len({key, *others}) == 7
