"""Models: what a network is and how it is kept.

archs.py           the architectures offered (no torch import: listed before torch has loaded)
resnet.py          torchvision's ResNet family, same modules and weights, without importing torchvision
build.py           building a network for an architecture; ImageNet weights
preprocess.py      the eval preprocessing stored in every checkpoint
safe_load.py       reading any .pth as data only (weights_only, zip-bomb, stride, shape and finite checks)
checkpoint.py      the one checkpoint format: Checkpoint, atomic save, validated load
import_foreign.py  state dicts saved by tutorial scripts, into our format
registry.py        the model registry (listing, import, rename, edit, default)
demo.py            the bundled demo model, installed once per registry
"""
