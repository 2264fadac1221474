"""The fast folder-prediction path: JPEG draft decoding, crop-region resizing, decode_batches (threads ahead of
the model), channels_last batches and the precision option. Behaviour only: same results as before, input
order, one error per bad file, cancel and close, bf16 agreement logic. Nothing here is timed."""
from __future__ import annotations

import threading

import numpy as np
import pytest
import torch
from helpers import make_checkpoint, write_image
from PIL import Image

from resnet_gui.core.engines.torch_backend import fold_batch_norms, inference_dtype
from resnet_gui.core.images import draft_scale, load_image
from resnet_gui.core.inference import batches as batch_decoding
from resnet_gui.core.inference.batches import DecodedBatch, decode_batches, decode_for_model
from resnet_gui.core.inference.predictor import top1_agreement
from resnet_gui.core.models.build import model_from_checkpoint
from resnet_gui.core.models.checkpoint import read_checkpoint
from resnet_gui.core.models.preprocess import Preprocess, crop_box, resize_and_crop, resized_size


def photo(path, size, seed=0):
    """A smooth colour picture (JPEG's scaled decoding is only close to a resampled one on photo-like images)."""
    w, h = size
    yy, xx = np.mgrid[0:h, 0:w].astype(np.float32)
    rng = np.random.default_rng(seed)
    arr = np.stack([128 + 100 * np.sin(xx / w * rng.uniform(2, 8) + yy / h * rng.uniform(2, 8) + c)
                    for c in range(3)], axis=-1)
    Image.fromarray(arr.clip(0, 255).astype(np.uint8)).save(path, quality=90)
    return path


# ---- draft decoding ----------------------------------------------------------------------------------------
def test_draft_scale_keeps_the_shorter_side_and_never_enlarges():
    assert draft_scale(1600, 1200, 256) == pytest.approx(256 / 1200)
    assert draft_scale(4032, 3024, 256) == pytest.approx(256 / 3024)
    assert draft_scale(200, 100, 256) == 1.0
    assert draft_scale(1600, 1200, None) == 1.0                      # under the working-pixel limit: whole
    assert draft_scale(8000, 8000, None) == pytest.approx((24e6 / 64e6) ** 0.5)


def test_camera_sized_jpeg_is_decoded_at_a_quarter_and_still_covers_the_model(tmp_path):
    f = photo(tmp_path / "cam.jpg", (1600, 1200))
    assert load_image(f).size == (1600, 1200)
    small = load_image(f, min_side=256)
    assert small.size == (400, 300) and small.mode == "RGB"      # 1/4 in the DCT; 1/8 would be 200 x 150
    assert load_image(f, min_side=1000).size == (1600, 1200)     # 1/2 would be under 1000
    phone = photo(tmp_path / "phone.jpg", (4032, 3024))
    assert load_image(phone, min_side=256).size == (504, 378)    # 1/8


def test_draft_decoding_gives_nearly_the_same_model_input(tmp_path):
    pre = Preprocess()
    f = photo(tmp_path / "cam.jpg", (1600, 1200))
    with Image.open(f) as im:
        full = np.asarray(resize_and_crop(im.convert("RGB"), pre)).astype(int)
    drafted = decode_for_model(str(f), pre)[0].astype(int)
    assert drafted.shape == full.shape == (224, 224, 3)
    assert np.abs(drafted - full).mean() < 2.0


def test_png_is_not_drafted(tmp_path):
    f = write_image(tmp_path / "big.png", size=(1600, 1200))
    assert load_image(f, min_side=256).size == (1600, 1200)


# ---- resize and crop -----------------------------------------------------------------------------------------
@pytest.mark.parametrize("size", [(500, 375), (375, 500), (256, 256), (224, 300), (1001, 257), (640, 480)])
@pytest.mark.parametrize("interpolation", ["bilinear", "bicubic", "nearest"])
def test_crop_region_resize_equals_torchvision_resize_and_center_crop(tmp_path, size, interpolation):
    from torchvision import transforms as T

    from resnet_gui.core.data.transforms import interpolation_mode

    pre = Preprocess(interpolation=interpolation)
    img = Image.open(write_image(tmp_path / "x.png", size=size, seed=sum(size))).convert("RGB")
    theirs = T.Compose([T.Resize(pre.resize, interpolation=interpolation_mode(interpolation)),
                        T.CenterCrop(pre.input_size)])(img)
    ours = resize_and_crop(img, pre)
    assert ours.size == theirs.size == (224, 224)
    diff = np.abs(np.asarray(ours).astype(int) - np.asarray(theirs).astype(int))
    assert diff.max() <= 1 and diff.mean() < 0.3   # the filter's positions, computed from the region: rounding


def test_resized_size_and_crop_box_follow_torchvision_rounding():
    assert resized_size(500, 375, 256) == (341, 256)
    assert resized_size(375, 500, 256) == (256, 341)
    left, top, right, bottom = crop_box(500, 375, Preprocess())
    assert (right - left) == pytest.approx(224 * 500 / 341) and (bottom - top) == pytest.approx(224 * 375 / 256)
    assert left == pytest.approx(58 * 500 / 341) and top == pytest.approx(16 * 375 / 256)


# ---- decode_batches ----------------------------------------------------------------------------------------
def files_with_errors(tmp_path, n=7, bad=(1, 4)):
    out = []
    for i in range(n):
        if i in bad:
            f = tmp_path / f"{i}_bad.jpg"
            f.write_bytes(b"not a picture")
        else:
            f = write_image(tmp_path / f"{i}.png", size=(60 + 7 * i, 50), seed=i)
        out.append(f)
    return out


@pytest.mark.parametrize("batch_size,workers", [(1, 1), (3, 2), (4, 3), (50, 2)])
def test_decode_batches_keeps_input_order_and_reports_each_bad_file(tmp_path, batch_size, workers):
    pre = Preprocess(input_size=32, resize=36)
    files = files_with_errors(tmp_path)
    batches = list(decode_batches(files, pre, batch_size=batch_size, workers=workers))
    assert [len(b.paths) for b in batches] == [min(batch_size, 7 - s) for s in range(0, 7, batch_size)]
    assert [p for b in batches for p in b.paths] == [str(f) for f in files]
    seen_rows = 0
    for b in batches:
        assert b.pixels.shape == (len(b.decoded), 32, 32, 3) and b.pixels.dtype == np.uint8
        assert sorted(b.decoded + list(b.errors)) == list(range(len(b.paths)))
        for row, i in enumerate(b.decoded):
            expected = decode_for_model(b.paths[i], pre)[0]
            assert np.array_equal(b.pixels[row], expected)
            seen_rows += 1
        for i, message in b.errors.items():
            assert b.paths[i].endswith("_bad.jpg") and b.paths[i] in message and "not an image" in message
    assert seen_rows == 5


def test_empty_and_all_bad_batches(tmp_path):
    pre = Preprocess(input_size=32, resize=32)
    assert list(decode_batches([], pre)) == []
    bad = tmp_path / "x.jpg"
    bad.write_bytes(b"")
    (batch,) = decode_batches([bad, tmp_path / "missing.png"], pre)
    assert batch.pixels.shape == (0, 32, 32, 3) and batch.decoded == [] and set(batch.errors) == {0, 1}
    assert "file not found" in batch.errors[1]


def test_thumbnails_sit_at_their_files_positions(tmp_path):
    pre = Preprocess(input_size=32, resize=32)
    files = files_with_errors(tmp_path, n=5, bad=(2,))
    (batch,) = decode_batches(files, pre, batch_size=5, thumbnail=16)
    assert sorted(batch.thumbnails) == [0, 1, 3, 4]
    assert all(max(t.size) == 16 for t in batch.thumbnails.values())


def counting_decoder(monkeypatch, gate: threading.Event | None = None):
    calls = []
    real = batch_decoding.decode_for_model

    def decode(path, pre, thumbnail=None):
        calls.append(path)
        if gate is not None:
            gate.wait(5)
        return real(path, pre, thumbnail)

    monkeypatch.setattr(batch_decoding, "decode_for_model", decode)
    return calls


def test_cancel_stops_before_the_remaining_files(tmp_path, monkeypatch):
    pre = Preprocess(input_size=16, resize=16)
    src = write_image(tmp_path / "a.png", size=(20, 20))
    files = [src] * 200
    calls = counting_decoder(monkeypatch)
    stop = threading.Event()
    got = []
    for batch in decode_batches(files, pre, batch_size=4, cancelled=stop.is_set, workers=2, ahead=8):
        got.append(batch)
        stop.set()
    assert len(got) == 1
    assert len(calls) <= 4 + 8 + 2       # the first batch, the files decoded ahead, one per thread at most


def test_closing_early_drops_the_queued_files_and_ends_the_threads(tmp_path, monkeypatch):
    pre = Preprocess(input_size=16, resize=16)
    files = [write_image(tmp_path / "a.png", size=(20, 20))] * 100
    gate = threading.Event()
    calls = counting_decoder(monkeypatch, gate)
    it = decode_batches(files, pre, batch_size=2, workers=2, ahead=10)
    gate.set()
    first = next(it)
    assert isinstance(first, DecodedBatch) and len(first.paths) == 2
    it.close()
    assert len(calls) <= 2 + 10 + 2
    assert not [t for t in threading.enumerate() if t.name.startswith("image-decode")]


def test_a_failure_that_is_not_a_bad_image_is_raised(tmp_path, monkeypatch):
    pre = Preprocess(input_size=16, resize=16)
    files = [write_image(tmp_path / "a.png", size=(20, 20))] * 3

    def broken(path, pre, thumbnail=None):
        raise RuntimeError("bug")

    monkeypatch.setattr(batch_decoding, "decode_for_model", broken)
    with pytest.raises(RuntimeError, match="bug"):
        list(decode_batches(files, pre))


# ---- predict_paths on top of it ----------------------------------------------------------------------------
def test_predict_paths_equals_one_file_at_a_time(cifar_checkpoint_file, tmp_path, open_model):
    p = open_model(cifar_checkpoint_file)
    files = files_with_errors(tmp_path, n=9, bad=(0, 5, 8))
    singles = [p.predict_file(f) for f in files]
    for batch_size in (1, 4, 64):
        batched = [r for b in p.predict_paths(files, batch_size=batch_size) for r in b]
        assert [r.path for r in batched] == [str(f) for f in files]
        assert [r.ok for r in batched] == [s.ok for s in singles] == [i not in (0, 5, 8) for i in range(9)]
        for s, b in zip(singles, batched):
            assert s.label == b.label and s.error == b.error
            if s.ok:
                assert b.confidence == pytest.approx(s.confidence, abs=1e-5)
                assert [label for label, _ in b.top_k] == [label for label, _ in s.top_k]


def test_predict_paths_matches_the_plain_torchvision_way(tmp_path, open_model):
    """An ImageNet-style model on photos that need no draft: the same probabilities as torchvision's own
    eval preset on PIL images, within float tolerance."""
    from torchvision import transforms as T

    ckpt = make_checkpoint(tmp_path / "r.pth", arch="resnet18", class_names=[f"k{i}" for i in range(6)])
    p = open_model(ckpt)
    files = [photo(tmp_path / f"{i}.jpg", (500, 375) if i % 2 else (375, 500), seed=i) for i in range(4)]
    preset = T.Compose([T.Resize(256), T.CenterCrop(224), T.ToTensor(),
                        T.Normalize(mean=p.preprocess.mean, std=p.preprocess.std)])
    x = torch.stack([preset(Image.open(f).convert("RGB")) for f in files])
    ours = [r for b in p.predict_paths(files, top_k=6) for r in b]
    unfolded = model_from_checkpoint(read_checkpoint(ckpt)).eval()
    with torch.inference_mode():
        theirs = unfolded(x).softmax(dim=1)
    for row, r in zip(theirs, ours):
        assert r.label == f"k{int(row.argmax())}"
        assert r.confidence == pytest.approx(float(row.max()), abs=2e-3)   # 1-level rounding at the crop's edge


def test_predict_paths_cancel_yields_no_further_batches(cifar_checkpoint_file, tmp_path, open_model):
    p = open_model(cifar_checkpoint_file)
    files = [write_image(tmp_path / f"{i}.png", size=(40, 30), seed=i) for i in range(12)]
    stop = threading.Event()
    seen = []
    for batch in p.predict_paths(files, batch_size=3, cancelled=stop.is_set):
        seen.append(batch)
        stop.set()
    assert len(seen) == 1 and [r.path for r in seen[0]] == [str(f) for f in files[:3]]
    assert not [t for t in threading.enumerate() if t.name.startswith("image-decode")]


def test_predict_batch_puts_thumbnails_and_errors_in_place(cifar_checkpoint_file, tmp_path, open_model):
    p = open_model(cifar_checkpoint_file)
    files = files_with_errors(tmp_path, n=4, bad=(1,))
    (batch,) = p.batches(files, batch_size=4, thumbnail=24)
    preds = p.predict_batch(batch, top_k=2)
    assert [r.ok for r in preds] == [True, False, True, True]
    assert preds[1].thumbnail is None and all(max(preds[i].thumbnail.size) == 24 for i in (0, 2, 3))
    assert all(len(r.top_k) == 2 for r in preds if r.ok)


def test_probabilities_are_a_distribution_per_image(cifar_checkpoint_file, open_model):
    p = open_model(cifar_checkpoint_file)
    x = np.random.default_rng(0).integers(0, 256, (3, 32, 32, 3), dtype=np.uint8)
    probs = p.probabilities(x)
    assert probs.shape == (3, 10) and probs.dtype == np.float32 and np.allclose(probs.sum(1), 1, atol=1e-5)
    assert np.allclose(p.probabilities(x[1]), probs[1:2], atol=1e-5)   # one image: the same row


# ---- precision -------------------------------------------------------------------------------------------------
def test_inference_dtype_rules(monkeypatch):
    from resnet_gui.core import devices

    cpu = torch.device("cpu")
    assert inference_dtype(cpu, "fp32") is None
    assert inference_dtype(cpu, "bf16") is torch.bfloat16
    monkeypatch.setattr(devices, "cpu_has_native_bf16", lambda: False)
    assert inference_dtype(cpu, "auto") is None
    monkeypatch.setattr(devices, "cpu_has_native_bf16", lambda: True)
    assert inference_dtype(cpu, "auto") is torch.bfloat16
    with pytest.raises(ValueError, match="unknown precision 'fp8'; one of fp32, bf16, auto"):
        inference_dtype(cpu, "fp8")


def test_fp32_is_the_torch_engines_default(cifar_checkpoint_file, monkeypatch):
    from resnet_gui.core import devices
    from resnet_gui.core.engines.choose import open_predictor

    monkeypatch.setattr(devices, "cpu_has_native_bf16", lambda: True)
    assert open_predictor(cifar_checkpoint_file, engine="torch", device="cpu", precision="fp32").backend.amp_dtype \
        is None


def test_top1_agreement_counts_rows_with_the_same_class():
    fp32 = np.array([[0.1, 0.9], [0.8, 0.2], [0.5, 0.4]])
    other = np.array([[0.2, 0.8], [0.3, 0.7], [0.6, 0.3]])
    assert top1_agreement(fp32, other) == (2, 3)
    assert top1_agreement(fp32, fp32) == (3, 3)
    with pytest.raises(ValueError, match="differ in shape"):
        top1_agreement(fp32, other[:2])


def test_bf16_autocast_keeps_a_clear_answer(tmp_path):
    ckpt = make_checkpoint(tmp_path / "f.pth", favour=2, class_names=["a", "b", "c", "d"])
    files = [write_image(tmp_path / f"{i}.png", size=(40, 30), seed=i) for i in range(4)]
    from resnet_gui.core.engines.choose import open_predictor

    fp32 = open_predictor(ckpt, engine="torch", device="cpu", precision="fp32")
    bf16 = open_predictor(ckpt, engine="torch", device="cpu", precision="bf16")
    assert bf16.backend.amp_dtype is torch.bfloat16 and bf16.backend.precision == "bf16"
    (batch,) = fp32.batches(files, batch_size=8)
    a, b = fp32.probabilities(batch.pixels), bf16.probabilities(batch.pixels)
    assert b.dtype == np.float32 and top1_agreement(a, b) == (4, 4)
    assert [r.label for r in bf16.predict_batch(batch)] == ["c"] * 4


# ---- batch norms folded into the convolutions --------------------------------------------------------------
@pytest.mark.parametrize("arch", ["resnet18_cifar", "resnet50"])
def test_folded_batch_norms_give_the_same_outputs(arch):
    from resnet_gui.core.models.build import build_model

    torch.manual_seed(0)
    model = build_model(arch, 7)
    for m in model.modules():   # statistics and affine parameters that are not the identity
        if isinstance(m, torch.nn.BatchNorm2d):
            m.running_mean.uniform_(-0.5, 0.5)
            m.running_var.uniform_(0.5, 2.0)
            m.weight.data.uniform_(0.5, 1.5)
            m.bias.data.uniform_(-0.2, 0.2)
    model.eval()
    size = 32 if arch.endswith("cifar") else 96
    x = torch.randn(2, 3, size, size)
    with torch.inference_mode():
        before = model(x)
        folded = fold_batch_norms(model)
        after = folded(x)
    assert folded is model
    assert not [m for m in model.modules() if isinstance(m, torch.nn.BatchNorm2d)]
    assert torch.allclose(before, after, rtol=1e-4, atol=1e-4 * float(before.abs().max()))


def test_folding_refuses_a_training_model():
    from resnet_gui.core.models.build import build_model

    with pytest.raises(ValueError, match="eval mode"):
        fold_batch_norms(build_model("resnet18_cifar", 3).train())


def test_explain_works_on_both_engines(cifar_checkpoint_file, open_model):
    p = open_model(cifar_checkpoint_file)
    cam, index = p.explain(Image.new("RGB", (40, 30), (200, 30, 30)))
    assert cam.shape == (4, 4) and 0 <= index < 10 and float(cam.max()) <= 1.0


def test_explain_leaves_nothing_behind_in_the_thread(open_model):
    """Features and maps are kept per call, in the calling thread's own box: nothing survives the call (the GUI's
    explain worker once crashed when a thread-local holding an autograd graph was freed at thread exit)."""
    import threading

    from resnet_gui import resources

    p = open_model(resources.path("models/digits-resnet18_cifar.pth"))
    assert p.familiarity is not None
    errors = []

    def work():
        try:
            p.explain(Image.new("RGB", (40, 30), (200, 30, 30)))
            p.predict_image(Image.new("RGB", (40, 30), (20, 30, 200)))
        except Exception as exc:  # noqa: BLE001 - reported below
            errors.append(exc)

    thread = threading.Thread(target=work)
    thread.start()
    thread.join()
    assert not errors
    if p.backend.name == "torch":
        assert getattr(p.backend._local, "box", None) is None
