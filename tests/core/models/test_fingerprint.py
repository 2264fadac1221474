"""The weights' fingerprint, computed once per load and kept with the checkpoint (the graph cache's key and the
int8 version's check both use it), and reading a checkpoint without keeping its weights (prediction from a
cached graph)."""
from __future__ import annotations

from unittest import mock

import numpy as np
import pytest
import torch
from helpers import make_checkpoint, write_image

from resnet_gui.core.errors import CheckpointError
from resnet_gui.core.models import checkpoint, weights
from resnet_gui.core.models.checkpoint import read_checkpoint, read_weights, weights_fingerprint


def test_reading_without_the_weights_checks_them_and_keeps_only_the_head_and_the_fingerprint(tmp_path):
    path = make_checkpoint(tmp_path / "m.pth")
    full = read_checkpoint(path)
    light = read_checkpoint(path, weights=False)
    assert light.state_dict is None and sorted(light.head) == ["fc.bias", "fc.weight"]
    np.testing.assert_array_equal(light.head["fc.weight"], full.state_dict["fc.weight"])
    assert light.fingerprint == full.fingerprint == weights_fingerprint(full.arch, full.state_dict, full.preprocess)
    assert light.metadata() == full.metadata()
    assert read_weights(path, light.fingerprint).keys() == full.state_dict.keys()


def test_reading_without_the_weights_still_refuses_values_that_are_not_finite(tmp_path):
    path = make_checkpoint(tmp_path / "m.pth")
    obj = torch.load(path, weights_only=True)
    obj["state_dict"]["layer2.0.conv1.weight"][0, 0, 0, 0] = float("nan")
    torch.save(obj, path)
    with pytest.raises(CheckpointError, match="'layer2.0.conv1.weight' holds NaN"):
        read_checkpoint(path, weights=False)


def test_weights_read_later_from_a_file_rewritten_since_are_refused(tmp_path):
    path = make_checkpoint(tmp_path / "m.pth")
    light = read_checkpoint(path, weights=False)
    make_checkpoint(path, seed=1)  # other weights under the same name, after the model was opened
    with pytest.raises(CheckpointError, match="changed while the model was being opened"):
        read_weights(path, light.fingerprint)


def test_the_fingerprint_is_computed_once_and_forgotten_with_the_weights_it_describes(tmp_path):
    ckpt = read_checkpoint(make_checkpoint(tmp_path / "m.pth"))
    with mock.patch.object(weights, "hash_array", wraps=weights.hash_array) as hashed:
        first = ckpt.fingerprint
        assert ckpt.fingerprint == first and hashed.call_count == len(ckpt.state_dict)
        ckpt.state_dict = {**ckpt.state_dict, "fc.bias": ckpt.state_dict["fc.bias"] + 1}
        assert ckpt.fingerprint != first and hashed.call_count == 2 * len(ckpt.state_dict)


@pytest.mark.parametrize("read_first", [False, True])
def test_opening_a_model_with_an_int8_version_hashes_its_weights_once(tmp_path, read_first):
    """The int8 check and the graph cache's key share one pass over the weights (they were two: 74 ms and 30 ms
    for the demo model), whether open_predictor reads the file or is given a checkpoint read before. (A graph not
    cached yet costs a second pass: the weights are read again for the builder and checked to be the same.)"""
    from resnet_gui.core.engines.choose import open_predictor
    from resnet_gui.core.models.demo import demo_checkpoint_path

    def open_fp32():
        source = read_checkpoint(demo_checkpoint_path()) if read_first else demo_checkpoint_path()
        return open_predictor(source, engine="onnxruntime", device="cpu", precision="fp32",
                              path=demo_checkpoint_path())

    open_fp32()  # caches the graph
    ckpt = read_checkpoint(demo_checkpoint_path())
    assert ckpt.int8_model is not None  # the stored int8 version was checked against the weights' fingerprint
    with mock.patch.object(weights, "hash_array", wraps=weights.hash_array) as hashed:
        predictor = open_fp32()
    assert hashed.call_count == len(ckpt.state_dict)
    assert predictor.backend.precision == "fp32" and predictor.predict_file(write_image(tmp_path / "x.png")).ok


def test_a_cached_graph_is_opened_without_reading_the_weights_and_a_new_one_reads_them_once(tmp_path):
    from resnet_gui.core.engines.choose import open_predictor

    path = make_checkpoint(tmp_path / "m.pth", favour=3)
    image = write_image(tmp_path / "x.png")
    with mock.patch.object(checkpoint, "read_weights", wraps=read_weights) as read:
        assert open_predictor(path, engine="onnxruntime", device="cpu").predict_file(image).label == "c3"
        assert read.call_count == 1  # built: the weights were read for the builder
        assert open_predictor(path, engine="onnxruntime", device="cpu").predict_file(image).label == "c3"
        assert read.call_count == 1  # cached: the weights were only streamed through the checks and the hash


def test_a_cache_entry_is_an_onnx_file_that_the_runtime_reads_itself_and_no_session_keeps_graph_bytes(
        tmp_path, isolated_home):
    """The entry is read by ONNX Runtime from its path (the graph's bytes never sit in Python's memory; they were
    held twice while the session was made, and once for its whole life by onnxruntime's InferenceSession)."""
    import onnx

    from resnet_gui.core.engines.choose import open_predictor
    from resnet_gui.core.inference import graph_cache
    from resnet_gui.core.inference.ort_backend import make_session

    path = make_checkpoint(tmp_path / "m.pth", favour=3)
    open_predictor(path, engine="onnxruntime", device="cpu")
    (entry,) = (isolated_home / "cache" / "graphs").glob("*.onnx")
    assert entry.read_bytes()[-graph_cache.TRAILER_BYTES:].find(graph_cache.MAGIC) > 0
    assert [o.name for o in onnx.load(entry).graph.output] == ["logits", "features", "feature_maps"]
    with mock.patch.object(graph_cache, "store", side_effect=AssertionError("built again")), \
            mock.patch("onnxruntime.InferenceSession", wraps=__import__("onnxruntime").InferenceSession) as made:
        predictor = open_predictor(path, engine="onnxruntime", device="cpu")
    assert made.call_args.args[0] == str(entry)
    assert predictor.predict_file(write_image(tmp_path / "x.png")).label == "c3"
    assert getattr(make_session(entry.read_bytes()), "_model_bytes", None) is None


def test_the_models_list_says_an_int8_version_is_out_of_date_once_the_weights_were_rewritten_elsewhere(tmp_path):
    """The listing (metadata only) said "kept" for a file whose weights another program had rewritten, while
    opening it dropped the int8 version. It now compares the zip directory's CRC-32s of the weights (no weight
    read) with those written beside a kept int8 version; files written before that record cannot tell."""
    from resnet_gui.core.models.demo import demo_checkpoint_path

    path = tmp_path / "m.pth"
    checkpoint.write_checkpoint(read_checkpoint(demo_checkpoint_path()), path, half=True)
    assert checkpoint.read_checkpoint_metadata(path)["int8"]["kept"] is True
    obj = torch.load(path, weights_only=True)
    torch.save(obj, path)  # the same weights written by torch: still this int8 version's weights
    assert checkpoint.read_checkpoint_metadata(path)["int8"]["kept"] is True
    obj["state_dict"]["fc.bias"] = obj["state_dict"]["fc.bias"] + 0.5
    torch.save(obj, path)
    with mock.patch.object(checkpoint.PthFile, "array", wraps=checkpoint.PthFile.array, autospec=True) as read:
        meta = checkpoint.read_checkpoint_metadata(path)
    assert meta["int8"]["kept"] is False and meta["int8"]["reason"] == checkpoint.STALE_INT8
    assert {call.args[2] for call in read.call_args_list} == {"fc.weight", "fc.bias"}  # no other weight was read
    assert read_checkpoint(path).int8["reason"] == meta["int8"]["reason"]  # what opening it says too
    old = torch.load(demo_checkpoint_path(), weights_only=True)  # written before the record: cannot tell
    assert "weights_crc" not in old["int8"]
    old["state_dict"]["fc.bias"] = old["state_dict"]["fc.bias"] + 0.5
    torch.save(old, path)
    assert checkpoint.read_checkpoint_metadata(path)["int8"]["kept"] is True
