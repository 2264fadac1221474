"""Remedies for class imbalance (--balance): class weights in the loss, or a sampler that draws the classes about
equally often; deterministic per (seed, epoch), per rank under torchrun, on both data paths; saved in the
checkpoints (old ones mean none); named with the balanced accuracy at the end of the run."""
from __future__ import annotations

import json
from collections import Counter

import pytest
import torch
from helpers import make_folder_dataset

from resnet_gui.cli import main
from resnet_gui.core.data.arrays import ArrayData
from resnet_gui.core.data.balance import epoch_order, loss_weights, sample_weights
from resnet_gui.core.data.folders import scan_folder
from resnet_gui.core.data.loader_data import EpochSampler, LoaderData
from resnet_gui.core.data.tensor_data import TensorData, epoch_generator
from resnet_gui.core.models.archs import default_preprocess
from resnet_gui.core.models.checkpoint import read_checkpoint_metadata
from resnet_gui.core.models.preprocess import cifar_preprocess
from resnet_gui.core.train import TrainConfig, recipe, train
from resnet_gui.core.train import run as run_mod

LABELS = torch.tensor([0] * 100 + [1] * 20)  # lfw_subset's faces and the 20 non-faces of the README's measurement


def test_loss_weights_are_inverse_to_the_counts_and_average_one_per_image():
    w = loss_weights([100, 20])
    assert w.tolist() == pytest.approx([120 / 200, 120 / 40])
    assert float((w[LABELS]).mean()) == pytest.approx(1.0)  # the loss keeps its scale
    assert loss_weights([5, 0, 5]).tolist() == [1.0, 0.0, 1.0]  # a class without images weighs nothing


def test_the_weighted_sampler_draws_the_classes_about_equally_and_the_same_way_each_time():
    weights = sample_weights(LABELS)
    first = epoch_order(120, epoch_generator(3, 0), weights)
    assert torch.equal(first, epoch_order(120, epoch_generator(3, 0), weights))  # per (seed, epoch)
    assert not torch.equal(first, epoch_order(120, epoch_generator(3, 1), weights))
    drawn = Counter(LABELS[epoch_order(120, epoch_generator(0, e), weights)].tolist()[i]
                    for e in range(20) for i in range(120))
    assert 0.45 < drawn[1] / (drawn[0] + drawn[1]) < 0.55  # was 20 / 120 = 0.17 without it
    assert sorted(epoch_order(120, epoch_generator(0, 0)).tolist()) == list(range(120))  # plain: a permutation


def tensor_data(rank=0, world_size=1, weighted=True):
    images = torch.arange(120, dtype=torch.uint8).view(120, 1, 1, 1).expand(120, 3, 8, 8).contiguous()
    train, val = ArrayData(images, LABELS.clone()), ArrayData(images[:6], LABELS[:6].clone())
    return TensorData(train, val, cifar_preprocess(), torch.device("cpu"), channels_last=False, augment="none",
                      hflip=False, rank=rank, world_size=world_size, weighted_sampler=weighted)


def drawn_indices(data, epoch, batch=10, seed=1):
    """The images drawn (each image's pixels hold its index), undoing the normalisation."""
    mean, inv_std = float(data.normalize.mean[0, 0, 0, 0]), float(data.normalize.inv_std[0, 0, 0, 0])
    return [round(float(x[i, 0, 0, 0]) / inv_std + mean) for x, _ in data.train_batches(epoch, batch, seed)
            for i in range(len(x))]


def test_both_data_paths_sample_by_class_weight_and_split_one_draw_between_ranks():
    single = drawn_indices(tensor_data(), 0)
    assert 0.4 < sum(i >= 100 for i in single) / len(single) < 0.6  # non-faces drawn about as often as faces
    assert single == drawn_indices(tensor_data(), 0) != drawn_indices(tensor_data(), 1)
    ranks = [drawn_indices(tensor_data(r, 2), 0) for r in range(2)]
    assert len(ranks[0]) == len(ranks[1]) == 60
    whole = epoch_order(120, epoch_generator(1, 0), sample_weights(LABELS)).tolist()
    assert ranks[0] == whole[0::2] and ranks[1] == whole[1::2]  # every rank takes its share of the same draw
    # the DataLoader path's sampler: the same draw, the same shares
    sampler = [EpochSampler(120, 1, shuffle=True, rank=r, world_size=2, weights=sample_weights(LABELS))
               for r in range(2)]
    assert [[i for i, _ in s] for s in sampler] == ranks


def test_the_loader_path_draws_by_class_weight(tmp_path):
    data = make_folder_dataset(tmp_path / "d", classes=("many", "few"), per_class=4, size=(40, 40))
    make_folder_dataset(data, classes=("many",), per_class=16, size=(40, 40))  # 20 vs 4 images
    split = scan_folder(data, val_split=0.2, seed=0)
    loader = LoaderData(split, default_preprocess("resnet18"), torch.device("cpu"), seed=0, batch_size=4, workers=0,
                        cache_mb=64, channels_last=False, augment="none", hflip=False, weighted_sampler=True)
    try:
        labels = [int(v) for e in range(10) for _, y in loader.train_batches(e, 4, 0) for v in y]
    finally:
        loader.close()
    few = split.class_names.index("few")
    assert 0.35 < labels.count(few) / len(labels) < 0.65  # 3 of 19 training images (0.16) without the sampler


def test_a_run_with_a_remedy_names_it_with_the_balanced_accuracy_and_saves_it(tmp_path, monkeypatch, capsys):
    data = make_folder_dataset(tmp_path / "d", classes=("face",), per_class=30, size=(32, 32))
    make_folder_dataset(data, classes=("not face",), per_class=6, size=(32, 32))
    criteria = []
    real_build = run_mod.build_trainer

    def build(*args, **kwargs):
        t = real_build(*args, **kwargs)
        criteria.append(t.criterion)
        return t

    monkeypatch.setattr(run_mod, "build_trainer", build)
    cfg = recipe("scratch", data=str(data), arch="resnet18_cifar", epochs=1, batch_size=8, device="cpu",
                 augment="pad_crop", balance="weighted-loss", name="weighted")
    result = train(cfg)
    assert result.status == "finished", result.message
    weight = criteria[0].weight.tolist()  # 24 faces and 5 non-faces train: 29 / (2 x count)
    assert weight == pytest.approx([29 / 48, 29 / 10])
    assert result.balance == "weighted-loss" and 0 <= result.balanced_accuracy <= 1
    assert f"balanced accuracy {result.balanced_accuracy:.2%}, with the weighted-loss remedy" in result.message
    assert result.event().balanced_accuracy == result.balanced_accuracy
    assert read_checkpoint_metadata(result.best_path)["train_config"]["balance"] == "weighted-loss"
    code = main(["train", "--dataset", "folder", "--data", str(data), "--arch", "resnet18_cifar", "--epochs", "1",
                 "--batch-size", "8", "--device", "cpu", "--balance", "weighted-sampler", "--json", "--name", "drawn"])
    last = json.loads(capsys.readouterr().out.splitlines()[-1])
    assert code == 0 and last["balance"] == "weighted-sampler" and "weighted-sampler remedy" in last["message"]
    assert criteria[-1].weight is None  # the sampler leaves the loss alone


def test_settings_saved_before_the_remedy_existed_mean_none():
    old = recipe("scratch", data="/d").to_dict()
    del old["balance"]
    assert TrainConfig.from_dict(old).balance == "none"
    with pytest.raises(Exception, match="unknown balance 'oversample'; use one of: none, weighted-loss"):
        TrainConfig(balance="oversample").validate()
