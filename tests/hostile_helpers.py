"""Crafted hostile files for the red-team tests, and a way to run the app under a memory limit."""
from __future__ import annotations

import json
import os
import subprocess
import sys
import zipfile
from pathlib import Path

MEMORY_LIMIT_MB = 1536  # the budget: no single input file may drive the process above about 1.5 GB

_LIMITED = """
import resource, sys
limit = {limit} * 2**20
resource.setrlimit(resource.RLIMIT_DATA, (limit, limit))
from resnet_gui.cli import main
code = main(sys.argv[1:])
# VmHWM is this process's own peak (ru_maxrss would include the forking parent's size)
peak = next(int(line.split()[1]) for line in open("/proc/self/status") if line.startswith("VmHWM"))
print("PEAK_MB", peak // 1024, file=sys.stderr)
sys.exit(code)
"""


EDITIONS = ("full", "without torch")  # the app with PyTorch installed, and the classify-only edition


def run_limited(args: list[str], home: Path, *, limit_mb: int = MEMORY_LIMIT_MB, timeout: float = 180,
                stdin=None, edition: str = "full") -> subprocess.CompletedProcess:
    """`resnet-gui ARGS` in a subprocess whose data segment (heap and anonymous mappings) is capped: an
    attempt to allocate gigabytes fails there instead of swapping this machine. edition "without torch": a
    process in which `import torch` fails (helpers.no_torch_env), so only the torch-free reader can answer."""
    from helpers import no_torch_env

    env = no_torch_env(home.parent / f"{home.name}-no-torch") if edition == "without torch" else dict(os.environ)
    env.update(RESNET_GUI_HOME=str(home), TORCH_HOME=str(home / "torch"), PYTHONUNBUFFERED="1")
    return subprocess.run([sys.executable, "-c", _LIMITED.format(limit=limit_mb), *args], capture_output=True,
                          text=True, env=env, timeout=timeout, stdin=stdin if stdin is not None else subprocess.DEVNULL)


def peak_mb(proc: subprocess.CompletedProcess) -> int | None:
    for line in proc.stderr.splitlines():
        if line.startswith("PEAK_MB"):
            return int(line.split()[1])
    return None


def no_traceback(proc: subprocess.CompletedProcess) -> bool:
    return "Traceback" not in proc.stderr and "Traceback" not in proc.stdout


def png_header_only(path: Path, width: int, height: int) -> Path:
    """A tiny valid PNG of width x height (one compressed block of zero rows): small on disk, huge decoded."""
    import struct
    import zlib

    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data) & 0xFFFFFFFF)

    raw_row = b"\x00" + b"\x00" * width  # filter byte + grey pixels
    comp = zlib.compressobj(9)
    rows_per_block = max(1, (8 << 20) // len(raw_row))
    parts, left = [], height
    while left > 0:
        n = min(left, rows_per_block)
        parts.append(comp.compress(raw_row * n))
        left -= n
    body = b"".join(parts) + comp.flush()
    ihdr = struct.pack(">IIBBBBB", width, height, 8, 0, 0, 0, 0)  # 8-bit greyscale
    path.write_bytes(b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", ihdr) + chunk(b"IDAT", body) + chunk(b"IEND", b""))
    return path


def pad_pickle(src: Path, dst: Path, pad_bytes: int) -> Path:
    """Copy a torch zip checkpoint, appending `pad_bytes` zeros (deflated) to its data.pkl member: the pickle
    still ends where it did, so the file is "valid", but reading the member inflates it."""
    with zipfile.ZipFile(src) as zin, zipfile.ZipFile(dst, "w", allowZip64=True, compresslevel=1) as zout:
        for info in zin.infolist():
            data = zin.read(info.filename)
            if info.filename.endswith("data.pkl"):
                zinfo = zipfile.ZipInfo(info.filename)
                zinfo.compress_type = zipfile.ZIP_DEFLATED
                with zout.open(zinfo, "w", force_zip64=True) as out:
                    out.write(data)
                    block = b"\x00" * (16 << 20)
                    left = pad_bytes
                    while left > 0:
                        out.write(block[:min(left, len(block))])
                        left -= len(block)
            else:
                zout.writestr(info, data)
    return dst


def write_json(path: Path, obj) -> Path:
    path.write_text(json.dumps(obj), encoding="utf-8")
    return path


def free_display() -> str:
    """An X display number nothing serves (no socket, no lock file)."""
    for n in range(93, 200):
        if not Path(f"/tmp/.X11-unix/X{n}").exists() and not Path(f"/tmp/.X{n}-lock").exists():
            return f":{n}"
    raise RuntimeError("no free X display number")


def torch_read_checkpoint(path) -> dict:
    """The torch path to one of our checkpoints, as the app read them before its own reader: torch.load
    (weights_only, after the same file and zip checks), then the same validation (metadata, dense tensors,
    names and shapes against the architecture, finite values). The red-team suites compare read_checkpoint
    with it: a bad file must get the same message from both."""
    from resnet_gui.core.models.archs import check_fits, state_dict_shapes
    from resnet_gui.core.models.checkpoint import parse_metadata
    from resnet_gui.core.models.safe_load import check_dense_tensors, safe_torch_load
    from resnet_gui.core.models.weights import check_finite

    obj = safe_torch_load(path)
    meta = parse_metadata(obj, path)
    state = check_dense_tensors(obj.get("state_dict"), path)
    check_fits(state, state_dict_shapes(meta["arch"], len(meta["class_names"])), path, meta["arch"])
    check_finite(state, path)
    return meta


def torch_read_state_dict(path) -> dict:
    """The torch path to a foreign state dict: torch.load, unwrapped, dense tensors only."""
    import torch

    from resnet_gui.core.models.safe_load import check_dense_tensors, safe_torch_load
    from resnet_gui.core.models.weights import unwrap_state_dict

    state = unwrap_state_dict(safe_torch_load(path), path, lambda v: isinstance(v, torch.Tensor))
    return check_dense_tensors(state, path)
