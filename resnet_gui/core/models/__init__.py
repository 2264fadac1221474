"""Models: what a network is and how it is kept.

No torch import (classifying needs none): archs, preprocess, weights, pickle_globals, unpickler, pth_read,
pth_write, checkpoint, import_foreign, registry, demo. With torch: resnet, build, safe_load.

archs.py           the architectures offered, their layouts, state-dict shapes and default preprocessing
resnet.py          torchvision's ResNet family, same modules and weights, without importing torchvision
build.py           building a network for an architecture; ImageNet weights; a checkpoint's network
preprocess.py      the eval preprocessing stored in every checkpoint
weights.py         a state dict from a file, checked: dense tensors, shapes against an architecture, finite values
pickle_globals.py  what a checkpoint's pickle may name (torch's weights-only table) and the records it builds
unpickler.py       the restricted unpickler of a checkpoint's data.pkl (plain values and tensor records)
pth_read.py        PyTorch's .pth format read without torch (zip-bomb and storage checks, numpy arrays)
pth_write.py       the same format written without torch (torch.load reads it)
safe_load.py       torch.load with weights_only (train-state files); weights into a torch model
checkpoint.py      the one checkpoint format: Checkpoint, read_checkpoint, read_checkpoint_metadata, write_checkpoint
import_foreign.py  state dicts saved by tutorial scripts, into our format
registry.py        the model registry (listing, import, rename, edit, default)
demo.py            the bundled demo model, installed once per registry
"""
