"""Per-class operating points: a class's own "not sure below" threshold, stored in the model's metadata
(`operating_points`, docs/checkpoint-format.md) and used wherever the model answers (`Prediction.class_threshold`).

    {"cat": {"threshold": 0.83, "precision_at_least": 0.95, "precision": 0.96, "recall": 0.81,
             "measured_on": "validation split of /data/pets (180 images)", "set": "2026-12-03T14:00:00+00:00"}}

Only `threshold` is needed; `precision_at_least` is the goal it was chosen for, and `precision`/`recall`/
`measured_on` what the evaluation measured at that threshold. A class's threshold adds to the reader's own: an
answer of that class is sure only when its confidence reaches both. No torch.
"""
from __future__ import annotations

import math
from typing import Any

FLOAT_KEYS = ("threshold", "precision_at_least", "precision", "recall")
TEXT_KEYS = ("measured_on", "set")


def _fraction(value: Any) -> float | None:
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        return None
    value = float(value)
    return value if math.isfinite(value) and 0.0 <= value <= 1.0 else None


def clean(raw: Any, class_names: list[str]) -> dict[str, dict]:
    """The usable part of a stored `operating_points` value: entries of known classes with a threshold in
    [0, 1]; other fields kept only when of the right type. Anything else (a damaged or foreign file) is dropped:
    the model still loads and answers with the reader's threshold alone."""
    if not isinstance(raw, dict):
        return {}
    known = set(class_names)
    out: dict[str, dict] = {}
    for name, entry in raw.items():
        if name not in known or not isinstance(entry, dict) or _fraction(entry.get("threshold")) is None:
            continue
        kept: dict[str, Any] = {}
        for key in FLOAT_KEYS:
            value = _fraction(entry.get(key))
            if value is not None:
                kept[key] = value
        for key in TEXT_KEYS:
            if isinstance(entry.get(key), str):
                kept[key] = entry[key][:500]
        out[name] = kept
    return out


def thresholds(meta: dict, class_names: list[str]) -> list[float | None]:
    """Each class's own threshold, in class order (None: the reader's alone)."""
    points = clean(meta.get("operating_points"), class_names)
    return [points[name]["threshold"] if name in points else None for name in class_names]


def describe(name: str, entry: dict) -> str:
    """One line for Details and the model card: "cat: sure from 83 % (chosen for precision ≥ 95 %: 96 % precision,
    81 % recall on …)"."""
    text = f"{name}: sure from {_pct(entry['threshold'])}"
    why = []
    if "precision_at_least" in entry:
        why.append(f"chosen for precision ≥ {_pct(entry['precision_at_least'])}")
    measured = [f"{_pct(entry[k])} {k}" for k in ("precision", "recall") if k in entry]
    if measured:
        where = f" on {entry['measured_on']}" if entry.get("measured_on") else ""
        why.append(", ".join(measured) + where)
    return text + (f" ({'; '.join(why)})" if why else "")


def _pct(value: float) -> str:
    return f"{value * 100:.1f}".rstrip("0").rstrip(".") + " %"


def parse_assignment(text: str, class_names: list[str]) -> tuple[str, float | None]:
    """`CLASS=P` from the command line: P a fraction (0.9), a percentage (90%) or `none` (remove it).
    Raises ValueError with a sentence naming what is wrong."""
    name, sep, value = text.rpartition("=")
    if not sep or not name:
        raise ValueError(f"{text!r} is not CLASS=P (for example cat=0.9, cat=90% or cat=none)")
    if name not in class_names:
        shown = ", ".join(class_names[:10]) + (", …" if len(class_names) > 10 else "")
        raise ValueError(f"the model has no class {name!r} (its classes: {shown})")
    value = value.strip()
    if value.lower() == "none":
        return name, None
    try:
        number = float(value[:-1]) / 100 if value.endswith("%") else float(value)
    except ValueError:
        raise ValueError(f"{value!r} is not a number (use 0.9, 90% or none)") from None
    if _fraction(number) is None:
        raise ValueError(f"{value} is out of range: a threshold is between 0 and 1 (0 % and 100 %)")
    return name, number
