"""Metadata from a file, made into plain JSON values within fixed limits.

A checkpoint's metadata comes from a pickle: it can hold shared references ("billion laughs": a few MB
that expand to gigabytes when walked), self-references, tensors, bytes, huge integers or NaN. `to_plain`
walks it once with a node budget, so any such input either becomes small plain data or is refused at
once, before anything (listing, `models show`, JSON output, the GUI) expands it.
"""
from __future__ import annotations

import math
from typing import Any

MAX_DEPTH = 32
MAX_NODES = 2_000_000        # values visited, shared references counted each time they are reached
MAX_STRING = 10_000          # characters kept of any one string
MAX_INT = 2**63


class TooLarge(ValueError):
    """The metadata is larger or deeper than any checkpoint of this app writes."""


def to_plain(value: Any, *, max_nodes: int = MAX_NODES, max_depth: int = MAX_DEPTH) -> Any:
    """JSON-safe copy: dicts (string keys), lists, str, int, float (finite), bool, None. Other objects become a
    short description ("<tensor 3x3 float32>"); non-finite floats and out-of-range ints become None.
    Raises TooLarge past the node or depth budget."""
    budget = [max_nodes]

    def walk(v: Any, depth: int) -> Any:
        budget[0] -= 1
        if budget[0] < 0:
            raise TooLarge(f"more than {max_nodes:,} values")
        if depth > max_depth:
            raise TooLarge(f"nested more than {max_depth} levels deep")
        if v is None or isinstance(v, bool):
            return v
        if isinstance(v, int):
            return v if -MAX_INT < v < MAX_INT else None
        if isinstance(v, float):
            return v if math.isfinite(v) else None
        if isinstance(v, str):
            return v[:MAX_STRING].replace("\x00", "")
        if isinstance(v, dict):
            return {str(k)[:200].replace("\x00", "") if not isinstance(k, str) else k[:200].replace("\x00", ""):
                    walk(item, depth + 1) for k, item in v.items()}
        if isinstance(v, (list, tuple)):
            return [walk(item, depth + 1) for item in v]
        return _describe(v)

    return walk(value, 0)


def _describe(v: Any) -> str:
    shape = getattr(v, "shape", None)
    dtype = getattr(v, "dtype", None)
    if shape is not None and dtype is not None:
        dims = "x".join(str(int(n)) for n in tuple(shape)[:8]) or "scalar"
        return f"<tensor {dims} {str(dtype).removeprefix('torch.')}>"
    if isinstance(v, (bytes, bytearray)):
        return f"<{len(v)} bytes>"
    return f"<{type(v).__name__}>"


def finite_fraction(value: Any) -> float | None:
    """`value` as a float in [0, 1] (an accuracy), or None when it is anything else."""
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        return None
    try:
        f = float(value)
    except OverflowError:
        return None
    return f if math.isfinite(f) and 0.0 <= f <= 1.0 else None
