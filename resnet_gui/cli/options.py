"""Options shared by the commands that run a model (predict, evaluate)."""
from __future__ import annotations

import argparse


def add_engine_options(p: argparse.ArgumentParser) -> None:
    """--engine and --precision: what runs the network (core/engines/choose.py)."""
    p.add_argument("--engine", choices=("auto", "onnxruntime", "torch"), default="auto",
                   help="auto (default): ONNX Runtime on the CPU, PyTorch on a GPU; or force one")
    p.add_argument("--precision", choices=("auto", "fp32", "int8", "bf16"), default="auto",
                   help="auto (default): the model's verified int8 version when it has one (ONNX Runtime), else "
                        "fp32; int8 and fp32 ask for one; bf16 with --engine torch")
