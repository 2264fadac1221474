"""Words and numbers as people read them: one copy for the command line, core and the window (no Qt, no torch).

plural(3, "epoch") -> "3 epochs"; sentence("stopped") -> "Stopped."; decimal_size(45_000_000) -> "45 MB"
(file managers' units); binary_size(3 * 2**20) -> "3.0 MiB" (labelled as binary); duration(125) ->
"2 min 05 s"; clock(125) -> "02:05" (a progress bar's ETA); learning_rate(0.0025) -> "0.0025",
learning_rate(2.5e-5) -> "2.5e-05"; percent(0.4213) -> "42.1%", percent(0.9986, below=0.999) -> "99.8%" (a
confidence under a threshold never reads as reaching it).
"""
from __future__ import annotations

import math


def plural(n: int, word: str, words: str | None = None) -> str:
    """'1 epoch', '2 epochs', '1 class', '3 classes' (words: the irregular plural), '1,797 images'."""
    return f"{n:,} {word if n == 1 else (words or word + 's')}"


def sentence(text: str) -> str:
    """`text` with a capital first letter and a full stop (kept when it ends in . ! ? or …)."""
    text = text.strip()
    if not text:
        return text
    text = text[:1].upper() + text[1:]
    return text if text[-1] in ".!?…" else text + "."


def percent(share: float, decimals: int = 1, below: float | None = None) -> str:
    """A share as a percentage, rounded: percent(0.4213) -> "42.1%". `below`: a bar the share is measured against
    (the "not sure below" threshold); a share under it is rounded down, and kept under the bar as written with
    `decimals`, so that a not-sure 99.86 % shows "99.8%", never "99.9%" beside a 99.9 % threshold."""
    if below is None or not share < below:
        return f"{share:.{decimals}%}"
    scale = 100 * 10 ** decimals
    units = min(math.floor(round(share * scale, 6)), math.ceil(round(below * scale, 6)) - 1)
    return f"{units / 10 ** decimals:.{decimals}f}%"


def decimal_size(n: int | float) -> str:
    """A size in decimal units (1 MB = 1,000,000 bytes), as file managers and download buttons show it."""
    for unit, scale in (("GB", 1e9), ("MB", 1e6), ("kB", 1e3)):
        if n >= scale:
            return f"{n / scale:.1f} {unit}" if n < 10 * scale else f"{n / scale:.0f} {unit}"
    return plural(int(n), "byte")


def binary_size(n: int | float) -> str:
    """Bytes in binary units, labelled as such (B, KiB, MiB, GiB)."""
    value = float(n)
    for unit in ("B", "KiB", "MiB", "GiB"):
        if value < 1024 or unit == "GiB":
            return f"{value:.0f} {unit}" if unit == "B" else f"{value:.1f} {unit}"
        value /= 1024
    return f"{n} B"


def _known(seconds: float | None) -> bool:
    return seconds is not None and isinstance(seconds, (int, float)) and math.isfinite(seconds) and seconds >= 0


def duration(seconds: float | None, unknown: str = "–") -> str:
    """12 s, 3 min 05 s, 2 h 04 min; `unknown` when there is no finite, non-negative figure."""
    if not _known(seconds):
        return unknown
    s = round(seconds)
    if s < 60:
        return f"{s} s"
    if s < 3600:
        return f"{s // 60} min {s % 60:02d} s"
    return f"{s // 3600} h {s % 3600 // 60:02d} min"


def clock(seconds: float | None) -> str:
    """02:05, or 1:02:05 past an hour; --:-- when unknown (a progress bar's ETA)."""
    if not _known(seconds):
        return "--:--"
    s = int(seconds)
    h, rem = divmod(s, 3600)
    return f"{h}:{rem // 60:02d}:{rem % 60:02d}" if h else f"{rem // 60:02d}:{rem % 60:02d}"


def learning_rate(lr: float) -> str:
    """A learning rate as people write it: 0.003, 0.05, 2.5e-05 (two significant digits)."""
    return f"{lr:.2g}" if lr >= 1e-3 else f"{lr:.1e}"
