"""What the training images looked like, in plain numbers: colour or grey, saturation, colour cast, brightness,
contrast, the intensity histogram and the amount of fine detail. No torch.

The feature distance (familiarity.py) asks "does the network see something like its training images?". A small
model trained from scratch on a few hundred images sees little, and a colour cat photo can land near its class
means. These statistics ask the simpler question first: a colour photo shown to a model that only ever saw grey
faces is unfamiliar whatever the features say.

Each statistic is computed on the pixels the model receives (resized and centre-cropped, uint8 RGB). Fitted on
the training images: per statistic the range of the middle 98 % (`low`, `high`) and a scale (that range's width,
at least `MIN_SCALE`). An image's input distance is how far its most unusual statistic lies outside its range,
in scales; beyond `margin` (set from the validation images, at least `MIN_MARGIN`) the image is unfamiliar.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

from ..models.checkpoint import FAMILIARITY_INPUT_STATS

HIST_BINS = 8
NAMES = ("chroma", "coloured share", "saturation", "red-green cast", "blue-yellow cast", "brightness", "contrast",
         "fine detail", *(f"intensity {i}/{HIST_BINS}" for i in range(HIST_BINS)))
assert len(NAMES) == FAMILIARITY_INPUT_STATS, "the checkpoint's check must know how many statistics there are"
MIN_SCALE = 0.02       # a statistic that never varied in training (chroma of grey images): 0.02 is a clear step
MIN_MARGIN = 1.0       # in scales beyond the training range
RANGE = (0.01, 0.99)   # quantiles of the training images that bound each statistic
CHUNK = 64             # images per step: bounds the float32 working memory (64 x 224 x 224 x 3 x 4 B = 38 MB)

# why an image was flagged, by its most unusual statistic: (above the training range, below it)
_WHY = {"chroma": ("more colourful", "greyer"), "coloured share": ("more colourful", "greyer"),
        "saturation": ("more saturated", "less saturated"), "red-green cast": ("redder", "greener"),
        "blue-yellow cast": ("bluer", "yellower"), "brightness": ("brighter", "darker"),
        "contrast": ("more contrasted", "flatter"), "fine detail": ("noisier or more detailed", "smoother")}
GREY_CHROMA = 0.03     # training images whose chroma stayed below this were grey

def image_stats(pixels: Any) -> np.ndarray:
    """uint8 N x S x S x 3 (RGB, as the model receives them) -> float32 N x len(NAMES)."""
    x = np.asarray(pixels)
    if x.ndim == 3:
        x = x[None]
    out = np.empty((len(x), len(NAMES)), np.float32)
    for start in range(0, len(x), CHUNK):
        out[start:start + CHUNK] = _stats(x[start:start + CHUNK].astype(np.float32) / 255.0)
    return out


def _stats(x: np.ndarray) -> np.ndarray:
    r, g, b = x[..., 0], x[..., 1], x[..., 2]
    hi, lo = x.max(-1), x.min(-1)
    chroma = hi - lo
    y = 0.299 * r + 0.587 * g + 0.114 * b
    n = len(x)
    flat = y.reshape(n, -1)
    detail = (np.abs(np.diff(y, axis=1)).mean((1, 2)) + np.abs(np.diff(y, axis=2)).mean((1, 2))) / 2
    hist = np.stack([np.bincount(np.minimum((row * HIST_BINS).astype(np.int64), HIST_BINS - 1),
                                 minlength=HIST_BINS) for row in flat]) / flat.shape[1]
    cols = [chroma.mean((1, 2)), (chroma > 0.1).mean((1, 2)), (chroma / np.maximum(hi, 1e-3)).mean((1, 2)),
            (r - g).mean((1, 2)), (b - (r + g) / 2).mean((1, 2)), flat.mean(1), flat.std(1), detail]
    return np.concatenate([np.stack(cols, 1), hist], 1)


@dataclass
class InputProfile:
    low: np.ndarray       # K: per statistic, the low end of the training images' range
    high: np.ndarray      # K
    scale: np.ndarray     # K, > 0
    margin: float         # input distance beyond which an image is unfamiliar

    def __post_init__(self) -> None:
        self.low, self.high, self.scale = (np.asarray(a, np.float32).reshape(-1)
                                           for a in (self.low, self.high, self.scale))

    def excess(self, stats: Any) -> np.ndarray:
        """N x K: how far each statistic lies outside the training range, in scales (0 inside)."""
        s = np.asarray(stats, np.float32)
        return np.maximum(np.maximum(self.low - s, s - self.high), 0) / self.scale

    def distances(self, stats: Any) -> np.ndarray:
        """N: the most unusual statistic's excess."""
        return self.excess(stats).max(1)

    def unusual(self, stats: Any) -> np.ndarray:
        """N booleans: beyond the margin."""
        return self.distances(stats) > self.margin

    def why(self, stats_row: Any) -> str:
        """Why one image is unusual, in a few words: "in colour; its training images were grey", "brighter than
        its training images", ..."""
        s = np.asarray(stats_row, np.float32).reshape(1, -1)
        excess = self.excess(s)[0]
        chroma = NAMES.index("chroma")
        if self.high[chroma] < GREY_CHROMA and excess[chroma] > self.margin:
            return "in colour; its training images were grey"
        k = int(excess.argmax())
        name = NAMES[k]
        above = bool(s[0, k] > self.high[k])
        if name in _WHY:
            return f"{_WHY[name][0 if above else 1]} than its training images"
        return "lit differently from its training images (its spread of light and dark)"

    def to_checkpoint(self) -> dict[str, Any]:
        return {"input_low": self.low.copy(), "input_high": self.high.copy(), "input_scale": self.scale.copy(),
                "input_margin": float(self.margin)}

    @classmethod
    def from_checkpoint(cls, obj: dict) -> InputProfile | None:
        """None when the record has no input statistics (files written before them)."""
        if obj.get("input_low") is None:
            return None
        return cls(np.asarray(obj["input_low"]), np.asarray(obj["input_high"]), np.asarray(obj["input_scale"]),
                   float(obj["input_margin"]))


def fit(train_stats: Any, val_stats: Any | None = None) -> InputProfile:
    """Ranges from the training images' statistics; the margin from the validation images' (when given): the
    largest excess among 98 % of them, at least MIN_MARGIN."""
    s = np.asarray(train_stats, np.float64)
    low, high = np.quantile(s, RANGE[0], axis=0), np.quantile(s, RANGE[1], axis=0)
    profile = InputProfile(low, high, np.maximum(high - low, MIN_SCALE), MIN_MARGIN)
    if val_stats is not None and len(val_stats):
        d = profile.distances(val_stats)
        profile.margin = float(max(MIN_MARGIN, np.quantile(d, 0.98)))
    return profile
