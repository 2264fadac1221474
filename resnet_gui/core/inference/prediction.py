"""One answer of a model, and the one rule that turns it into what a person reads.

Every answer is in one of four states, decided here and nowhere else (`Prediction.state`):

* SURE: the (calibrated) confidence reaches the threshold the user set (60 % by default) and, where the model
  has an operating point of its own for the answered class, that one too;
* UNSURE ("not sure"): it does not; the top candidates are shown instead of one answer;
* UNFAMILIAR: the image is unlike anything the model saw in training (familiarity data); whatever class it
  names should not be trusted. Models without familiarity data are never called unfamiliar (they cannot tell);
* ERROR: the file could not be used.

A Prediction holds facts (the classes and probabilities, familiarity); the threshold is the reader's, so a
threshold change re-labels answers without running the model again. No torch, no Qt.
"""
from __future__ import annotations

import math
import os
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

SURE, UNSURE, UNFAMILIAR, ERROR = "sure", "unsure", "unfamiliar", "error"
STATES = (SURE, UNSURE, UNFAMILIAR, ERROR)
STATE_WORDS = {SURE: "sure", UNSURE: "not sure", UNFAMILIAR: "unfamiliar", ERROR: "error"}
DEFAULT_THRESHOLD = 0.60


@dataclass
class Prediction:
    path: str | None
    label: str | None = None
    confidence: float | None = None
    top_k: list[tuple[str, float]] = field(default_factory=list)
    top_indices: list[int] = field(default_factory=list)  # the class index of each top_k entry (names may repeat)
    error: str | None = None
    class_index: int | None = None
    thumbnail: Any = field(default=None, repr=False, compare=False)  # small PIL image, when asked for
    unfamiliar: bool | None = None       # unlike anything the model was trained on; None: no familiarity data
    familiarity: float | None = None     # 0..1: share of the model's validation images at least this far away
    class_threshold: float | None = None  # the model's own operating point for this class, when it has one
    unfamiliar_why: str | None = None    # a few words when its input statistics flagged it ("in colour")

    @property
    def ok(self) -> bool:
        return self.error is None and self.confidence is not None

    def unsure(self, threshold: float = DEFAULT_THRESHOLD) -> bool:
        """The confidence is below `threshold`, or below the model's own operating point for this class."""
        if not self.ok:
            return False
        bar = max(float(threshold), self.class_threshold or 0.0)
        return not self.confidence >= bar

    def state(self, threshold: float = DEFAULT_THRESHOLD) -> str:
        """SURE, UNSURE, UNFAMILIAR or ERROR: the answer a person reads, at the reader's `threshold`."""
        if not self.ok:
            return ERROR
        if self.unfamiliar:
            return UNFAMILIAR
        return UNSURE if self.unsure(threshold) else SURE

    def to_json(self, threshold: float = DEFAULT_THRESHOLD) -> dict:
        """Plain JSON values; a non-finite number becomes null (bare NaN is not JSON). `unfamiliar_why` says how
        the image differs from the training images when its input statistics made it unfamiliar, else null."""
        if not self.ok:
            return {"path": self.path, "error": self.error or "no answer"}
        out = {"path": self.path, "label": self.label, "confidence": _finite(self.confidence),
               "top_k": [[label, _finite(prob)] for label, prob in self.top_k], "state": self.state(threshold),
               "unsure": self.unsure(threshold), "unfamiliar": self.unfamiliar,
               "familiarity": _finite(self.familiarity),
               "unfamiliar_why": self.unfamiliar_why if self.unfamiliar else None}
        if self.class_threshold is not None:  # the answered class has its own threshold (an operating point)
            out["class_threshold"] = self.class_threshold
        return out


def _finite(value: float | None) -> float | None:
    return value if value is not None and math.isfinite(value) else None


def csv_cell(value: object) -> str:
    """A CSV cell that a spreadsheet shows as text: NUL bytes dropped, and a leading =, +, -, @ (a formula
    in Excel, LibreOffice and Google Sheets) neutralised with a leading apostrophe."""
    text = str(value).replace("\x00", "")
    return "'" + text if text[:1] in ("=", "+", "-", "@", "\t", "\r") else text


def write_csv(predictions: Iterable[Prediction], out: os.PathLike | str, top_k: int = 5,
              threshold: float = DEFAULT_THRESHOLD, model: os.PathLike | str | None = None) -> Path:
    """path, label, confidence, error, the top-k as label/probability column pairs, then status (sure, not sure,
    unfamiliar or error, at `threshold`), unsure, unfamiliar (empty when the model has no familiarity data) and
    familiarity; written atomically. Refused (OutputError) where it would replace the model, one of the images or
    a file among the app's models and runs."""
    import csv
    import io

    from ..atomic import atomic_write_bytes
    from ..paths import check_output

    predictions = list(predictions)
    check_output(out, model=model, reading=[p.path for p in predictions if p.path])

    buf = io.StringIO()
    writer = csv.writer(buf)
    header = ["path", "label", "confidence", "error"]
    for i in range(1, top_k + 1):
        header += [f"top{i}_label", f"top{i}_prob"]
    header += ["status", "unsure", "unfamiliar", "familiarity", "class_threshold"]
    writer.writerow(header)
    for p in predictions:
        row = [csv_cell(p.path or ""), csv_cell(p.label or ""),
               "" if _finite(p.confidence) is None else f"{p.confidence:.6f}", csv_cell(p.error or "")]
        for i in range(top_k):
            if i < len(p.top_k):
                row += [csv_cell(p.top_k[i][0]), f"{p.top_k[i][1]:.6f}"]
            else:
                row += ["", ""]
        row += [STATE_WORDS[p.state(threshold)], int(p.unsure(threshold)) if p.ok else "",
                "" if p.unfamiliar is None else int(p.unfamiliar),
                "" if _finite(p.familiarity) is None else f"{p.familiarity:.4f}",
                "" if p.class_threshold is None else f"{p.class_threshold:.4f}"]
        writer.writerow(row)
    return atomic_write_bytes(out, buf.getvalue().encode("utf-8"))
