"""Engines: which program runs the network, and the PyTorch one.

choose.py        open_predictor(): ONNX Runtime on the CPU (core/inference, no torch), PyTorch on a GPU or
                 when asked (`--engine torch`); int8, fp32 or bf16
torch_backend.py the network in PyTorch (BatchNorm folded, channels_last, bf16 autocast where native)
"""
