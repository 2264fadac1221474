"""Grad-CAM (Selvaraju et al., 2017) at the last residual stage (`layer4`) in PyTorch: the reference the app's
class activation maps (core/inference/cam.py, no gradients needed) are tested against.

About thirty lines of hooks rather than captum: captum's LayerGradCam computes the same thing, but brings a
dependency (and its own import time) for one function; these hooks work for every architecture of the zoo,
since all of them are torchvision ResNets with a `layer4`.

The map is the ReLU of the activations of layer4 weighted by the spatially averaged gradient of the chosen
class's logit, normalised to [0, 1], at layer4's resolution (7 x 7 for 224-pixel inputs, 4 x 4 at 32).
"""
from __future__ import annotations

import torch
from torch import nn


def grad_cam(model: nn.Module, x: torch.Tensor, class_index: int | None = None) -> tuple[torch.Tensor, int]:
    """(map H' x W' in [0, 1], class explained) for one normalised input 1 x 3 x H x W. class_index None
    explains the top class. Runs one forward and one backward pass; the model's weights are not changed."""
    if x.dim() != 4 or x.shape[0] != 1:
        raise ValueError("grad_cam explains one image at a time (a 1 x 3 x H x W tensor)")
    saved: dict[str, torch.Tensor] = {}

    def keep(module, inputs, output):
        saved["act"] = output
        output.register_hook(lambda grad: saved.__setitem__("grad", grad))

    handle = model.layer4.register_forward_hook(keep)
    was_training = model.training
    try:
        model.eval()
        with torch.enable_grad():
            x = x.detach().requires_grad_(True)  # gradients flow even when every weight is frozen
            logits = model(x)
            index = int(logits.argmax(1)) if class_index is None else int(class_index)
            if not 0 <= index < logits.shape[1]:
                raise ValueError(f"class {index} does not exist (the model has {logits.shape[1]})")
            model.zero_grad(set_to_none=True)
            logits[0, index].backward()
    finally:
        handle.remove()
        model.zero_grad(set_to_none=True)
        model.train(was_training)
    act, grad = saved["act"].detach()[0].float(), saved["grad"].detach()[0].float()
    weights = grad.mean(dim=(1, 2))                       # one weight per channel
    cam = torch.relu((weights[:, None, None] * act).sum(0))
    top = float(cam.max())
    return (cam / top if top > 0 else cam).cpu(), index


def upsample(cam: torch.Tensor, size: tuple[int, int]) -> torch.Tensor:
    """The map resized (bilinear) to `size` (H, W) for an overlay, still in [0, 1]."""
    out = nn.functional.interpolate(cam[None, None], size=size, mode="bilinear", align_corners=False)[0, 0]
    return out.clamp(0, 1)
