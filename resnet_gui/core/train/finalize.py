"""The end of every training run: the truth about the best model, stored in its checkpoint.

On the validation split, with the best epoch's weights: the full evaluation (balanced accuracy, per-class
figures, confusion matrix, majority baseline), a temperature fitted for calibrated confidence (expected
calibration error before and after), and what the model saw (familiarity data from the training images'
penultimate features, thresholded on the validation images). Then the honest verdicts: sentences for
what is wrong, empty when all is well. Logits and features come from one forward pass per batch.
"""
from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field

import numpy as np
import torch

from ..engines.torch_backend import penultimate_features
from ..evaluation.metrics import figures, run_verdicts, verdicts
from ..inference import familiarity, input_stats, outliers
from ..inference.calibration import calibration_report, softmax
from ..progress import NEVER_STOP, StopFlag
from .config import TrainConfig
from .loop import Trainer
from .prepare import eval_preprocess

MAX_FAMILIARITY_IMAGES = 20_000   # training images whose features describe "what the model saw"
VAL_PIXELS_KEPT = 64              # validation images kept to make colour-shifted outliers from (outliers.py)


@dataclass
class Finalized:
    metrics: dict = field(default_factory=dict)        # merged into the checkpoint's metrics
    calibration: dict | None = None
    familiarity: dict | None = None
    warnings: list[str] = field(default_factory=list)


@dataclass
class Seen:
    """What one pass over some images gave: logits N x C, features N x D, labels N (CPU float32 / int64); with a
    normalizer, each image's input statistics N x K and the first `keep` images as the model received them."""
    logits: torch.Tensor
    features: torch.Tensor
    labels: torch.Tensor
    stats: np.ndarray | None = None
    pixels: np.ndarray | None = None   # uint8 n x S x S x 3


def pixels_of(x: torch.Tensor, normalize) -> np.ndarray:
    """The uint8 N x S x S x 3 images behind a normalised batch (the inverse of data's Normalizer)."""
    raw = (x.float() / normalize.inv_std + normalize.mean).round_().clamp_(0, 255).to(torch.uint8)
    return raw.permute(0, 2, 3, 1).contiguous().cpu().numpy()


@torch.inference_mode()
def outputs(t: Trainer, batches: Iterable, stop: StopFlag, limit: int | None = None, *, normalize=None,
            keep: int = 0) -> Seen | None:
    """One pass over `batches` (see Seen); None when stopped."""
    model = t.model.module if hasattr(t.model, "module") else t.model
    model.eval()
    logits, feats, labels, stats, kept, seen = [], [], [], [], [], 0
    with penultimate_features(model) as box:
        for batch in batches:
            if batch is None:
                continue
            if stop.is_set():
                return None
            x, y = batch
            with t.autocast():
                out = model(x)
            logits.append(out.float().cpu())
            feats.append(box["features"].float().cpu())
            labels.append(y.cpu())
            if normalize is not None:
                pixels = pixels_of(x, normalize)
                stats.append(input_stats.image_stats(pixels))
                if sum(len(k) for k in kept) < keep:
                    kept.append(pixels[:keep - sum(len(k) for k in kept)])
            seen += len(y)
            if limit is not None and seen >= limit:
                break
    if not logits:
        return Seen(torch.empty(0, 0), torch.empty(0, 0), torch.empty(0, dtype=torch.long))
    return Seen(torch.cat(logits), torch.cat(feats), torch.cat(labels), np.concatenate(stats) if stats else None,
                np.concatenate(kept) if kept else None)


def _flags(t: Trainer, fam: familiarity.Familiarity, normalize):
    """The model's unfamiliar decision on uint8 N x S x S x 3 images, through the training model (outliers.py)."""
    model = t.model.module if hasattr(t.model, "module") else t.model
    device = next(model.parameters()).device

    @torch.inference_mode()
    def flags(pixels: np.ndarray) -> np.ndarray:
        x = normalize(torch.from_numpy(np.ascontiguousarray(pixels)).permute(0, 3, 1, 2).to(device))
        with penultimate_features(model) as box, t.autocast():
            model(x)
        return fam.judge(box["features"].float().cpu().numpy(), pixels)[1]
    return flags


def finalize(t: Trainer, cfg: TrainConfig, *, val_batches: Iterable, train_batches: Iterable | None,
             class_names: list[str], history: list[dict], train_images: int, stop: StopFlag,
             gather=None, n_val: int | None = None, normalize=None, preprocess=None) -> Finalized | None:
    """Evaluate, calibrate and describe the model in `t` (the best epoch's weights). `gather(part, n)` joins
    the validation shards of several processes (DistributedDataParallel); None when stopped. With the data's
    `normalize` (its Normalizer) the familiarity data gets input statistics, and with the model's `preprocess`
    too, it is measured against outliers (outliers.py)."""
    val = outputs(t, val_batches, stop, normalize=normalize, keep=VAL_PIXELS_KEPT)
    if val is None:
        return None
    logits, feats, labels, val_stats = val.logits, val.features, val.labels, val.stats
    if gather is not None and n_val is not None:
        logits, feats, labels = gather(logits, n_val), gather(feats, n_val), gather(labels, n_val)
        if val_stats is not None:
            val_stats = gather(torch.from_numpy(val_stats), n_val).numpy()
    result = Finalized()
    if not len(labels):
        return result
    cal = calibration_report(logits.numpy(), labels.numpy(), source=f"validation split ({len(labels)} images)")
    probs = softmax(logits.numpy(), cal["temperature"])
    f = figures(probs, labels.numpy(), class_names)
    result.calibration = cal
    result.metrics = {"balanced_accuracy": f.balanced_accuracy, "per_class": [c.to_json() for c in f.per_class],
                      "confusion_matrix": f.confusion_matrix, "majority_baseline": f.majority_baseline,
                      "ece": cal["ece_after"], "ece_uncalibrated": cal["ece_before"],
                      **({"top_k_accuracy": {str(k): v for k, v in f.top_k_accuracy.items()}}
                         if f.top_k_accuracy else {})}
    result.warnings = verdicts(f, history=history, epochs=cfg.epochs, warmup_epochs=float(cfg.warmup_epochs or 0),
                               train_images=train_images, pretrained=cfg.pretrained, balance=cfg.balance)
    result.warnings += run_verdicts(f, history)
    if train_batches is not None:
        seen = outputs(t, train_batches, stop, limit=MAX_FAMILIARITY_IMAGES, normalize=normalize)
        if seen is None:
            return None
        if len(seen.labels) >= 2 and seen.features.shape[1] <= familiarity.MAX_FEATURE_DIM:
            fam = familiarity.fit(seen.features.numpy(), seen.labels.numpy(), feats.numpy(), len(class_names),
                                  source=f"{len(seen.labels)} training images; threshold from "
                                         f"{len(labels)} validation images",
                                  train_stats=seen.stats, val_stats=val_stats)
            if normalize is not None and preprocess is not None and val.pixels is not None:
                val_flags = fam.judge(feats.numpy())[1]
                if fam.inputs is not None and val_stats is not None:
                    val_flags |= fam.inputs.unusual(val_stats)
                fam.measured = outliers.measure(_flags(t, fam, normalize), val.pixels, preprocess,
                                                val_flagged=val_flags)
            result.familiarity = fam.to_checkpoint()
    return result


def finish_run(t: Trainer, cfg: TrainConfig, data, *, best_state: dict | None, class_names: list[str],
               history: list[dict], best_path: str | None, world, stop: StopFlag, batch_size: int) -> Finalized:
    """With the best epoch's weights back in the model: finalize() and store its findings in the best model's
    checkpoint (rank 0, atomically). Returns them (the verdict sentences in `warnings`); empty when stopped
    (nothing is changed)."""
    from ..models.checkpoint import read_checkpoint, write_checkpoint
    from ..models.safe_load import as_tensors

    if best_state is not None:  # tensors, or numpy arrays read back from the best model's file
        t.model.load_state_dict(as_tensors(best_state))
    several = bool(getattr(world, "enabled", False))
    found = finalize(t, cfg, val_batches=data.val_batches(batch_size), train_batches=data.seen_batches(batch_size),
                     class_names=class_names, history=history, train_images=data.n_train,
                     stop=NEVER_STOP if several else stop, gather=world.gather if several else None, n_val=data.n_val,
                     normalize=getattr(data, "normalize", None), preprocess=eval_preprocess(cfg))
    if found is None:
        return Finalized()
    if best_path is not None:
        ckpt = read_checkpoint(best_path)
        ckpt.metrics = {**ckpt.metrics, **found.metrics, "warnings": list(found.warnings)}
        ckpt.calibration = found.calibration
        ckpt.familiarity = found.familiarity
        write_checkpoint(ckpt, best_path)
        _add_int8(best_path, stop)  # rank 0 (the only one with a best_path)
    return found


def _add_int8(best_path: str, stop: StopFlag) -> None:
    """The model's verified int8 version (evaluation/int8_version.py), built from its own training and validation
    images; a failure costs only the int8 version (fp32 is always there), and the log says why."""
    import logging

    from ..errors import Cancelled, ResnetGuiError
    from ..evaluation.int8_version import add_int8
    from ..progress import Progress

    try:
        add_int8(best_path, progress=Progress(lambda *_: None, stop))
    except Cancelled:
        pass
    except (ResnetGuiError, OSError, ValueError, RuntimeError):
        logging.getLogger(__name__).warning("no int8 version for %s", best_path, exc_info=True)
