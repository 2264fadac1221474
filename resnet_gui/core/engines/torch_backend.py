"""The network run by PyTorch: for GPUs, and on the CPU when asked (`--engine torch`).

Same contract as the ONNX Runtime backend (core/inference/predictor.py's Backend): uint8 images N x S x S x 3
in; logits, the pooled penultimate features and the last stage's feature maps out, float32 numpy arrays. Each
BatchNorm is folded into its convolution, the model runs `channels_last`, and bf16 autocast is used where asked
(or, with precision "auto", where the device computes bf16 natively). Safe to call from several threads: hooks
leave their outputs in the calling thread's own box.
"""
from __future__ import annotations

import contextlib
import threading
from collections.abc import Iterator, Sequence

import numpy as np
import torch
from torch import nn

from .. import devices

PRECISIONS = ("fp32", "bf16", "auto")


def fold_batch_norms(model: nn.Module) -> nn.Module:
    """Fold each BatchNorm2d that directly follows a Conv2d in a torchvision ResNet (convN -> bnN in the stem and
    the blocks, Sequential(conv, bn) in the shortcuts) into that convolution's weight and bias, in place; the
    BatchNorm becomes an Identity. For inference only (eval mode): the same outputs within float rounding,
    one pass over the activations fewer per convolution."""
    from torch.nn.utils.fusion import fuse_conv_bn_eval

    if model.training:
        raise ValueError("fold_batch_norms() is for a model in eval mode")
    for module in list(model.modules()):
        for n in ("1", "2", "3"):
            conv, bn = getattr(module, "conv" + n, None), getattr(module, "bn" + n, None)
            if isinstance(conv, nn.Conv2d) and isinstance(bn, nn.BatchNorm2d) and bn.track_running_stats:
                setattr(module, "conv" + n, fuse_conv_bn_eval(conv, bn))
                setattr(module, "bn" + n, nn.Identity())
        if isinstance(module, nn.Sequential) and len(module) == 2 and isinstance(module[0], nn.Conv2d) \
                and isinstance(module[1], nn.BatchNorm2d) and module[1].track_running_stats:
            module[0], module[1] = fuse_conv_bn_eval(module[0], module[1]), nn.Identity()
    return model


@contextlib.contextmanager
def penultimate_features(model: nn.Module) -> Iterator[dict]:
    """While active, every forward pass of `model` leaves the input of its `fc` layer in box["features"]
    (N x D, float32): logits and features from one pass, no second forward (training's end uses it)."""
    box: dict[str, torch.Tensor] = {}

    def hook(module, inputs):
        box["features"] = inputs[0].detach().float()

    handle = model.fc.register_forward_pre_hook(hook)
    try:
        yield box
    finally:
        handle.remove()


def inference_dtype(device: torch.device, precision: str = "fp32") -> torch.dtype | None:
    """The autocast dtype prediction runs in on `device` ("fp32", "bf16" or "auto"), or None for fp32."""
    if precision not in PRECISIONS:
        raise ValueError(f"unknown precision {str(precision)[:40]!r}; one of {', '.join(PRECISIONS)}")
    if precision == "fp32":
        return None
    if precision == "bf16":
        return torch.bfloat16
    if device.type == "cuda":
        return torch.bfloat16 if torch.cuda.is_bf16_supported() else None
    if device.type == "cpu":
        return torch.bfloat16 if devices.cpu_has_native_bf16() else None
    return None


class TorchBackend:
    """One model in PyTorch on one device."""
    name = "torch"

    def __init__(self, model: nn.Module, preprocess, *, device: str | torch.device | None = "auto",
                 precision: str = "fp32"):
        self.torch_device = devices.resolve_device(device)
        self.device = str(self.torch_device)
        self.amp_dtype = inference_dtype(self.torch_device, precision)
        self.precision = "bf16" if self.amp_dtype is not None else "fp32"
        model = fold_batch_norms(model.eval())
        # channels_last: the layout oneDNN (CPU) and cuDNN (GPU) convolutions run fastest in; the decoded rows
        # (N x S x S x 3) are already in it
        self.model = model.to(self.torch_device).to(memory_format=torch.channels_last)
        scale = torch.tensor(preprocess.mean, device=self.torch_device).view(1, 3, 1, 1) * 255.0
        self._mean = scale
        self._inv_std = 1.0 / (torch.tensor(preprocess.std, device=self.torch_device).view(1, 3, 1, 1) * 255.0)
        self._local = threading.local()
        self.model.fc.register_forward_pre_hook(self._keep("features", lambda args, out: args[0]))
        self.model.layer4.register_forward_hook(self._keep("feature_maps", lambda args, out: out))

    @classmethod
    def for_checkpoint(cls, ckpt, *, device="auto", precision: str = "fp32", source: str = "<checkpoint>"):
        from ..models.build import model_from_checkpoint

        return cls(model_from_checkpoint(ckpt, source), ckpt.preprocess, device=device, precision=precision)

    def _keep(self, name: str, pick):
        def hook(module, args, output=None):
            box = getattr(self._local, "box", None)
            if box is not None and name in box:
                box[name] = pick(args, output).detach()
        return hook

    @torch.inference_mode()
    def run(self, images: np.ndarray, outputs: Sequence[str]) -> dict[str, np.ndarray]:
        x = torch.from_numpy(np.require(images, np.uint8, ["C", "W"])).permute(0, 3, 1, 2)  # channels_last
        x = x.to(self.torch_device, non_blocking=True).float()
        x = x.sub_(self._mean).mul_(self._inv_std).contiguous(memory_format=torch.channels_last)
        self._local.box = {n: None for n in outputs if n != "logits"}
        try:
            if self.amp_dtype is None:
                logits = self.model(x)
            else:
                with torch.autocast(self.torch_device.type, dtype=self.amp_dtype):
                    logits = self.model(x)
            box = self._local.box
        finally:
            self._local.box = None
        out = {"logits": logits}
        out.update(box)
        return {n: out[n].float().cpu().numpy() for n in outputs}
