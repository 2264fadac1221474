"""The answer a person reads: one of three states for a prediction, in words.

* sure: the (calibrated) confidence reaches the threshold set in the Predict tab (60 % by default);
* not sure: it does not; the top candidates are shown instead of one answer;
* unfamiliar: the image is unlike anything the model saw in training (core familiarity data); the top guess
  is shown small. Models without familiarity data are never called unfamiliar (they cannot tell).

Plain functions of core.predict.Prediction values: the single-image view and the folder table use the same
rule, so a threshold change re-labels what is on screen without running the model again.
"""
from __future__ import annotations

import re

SURE, UNSURE, UNFAMILIAR, ERROR = "sure", "unsure", "unfamiliar", "error"
STATES = (SURE, UNSURE, UNFAMILIAR, ERROR)
STATUS_WORDS = {SURE: "Sure", UNSURE: "Not sure", UNFAMILIAR: "Unfamiliar", ERROR: "Error"}
DEFAULT_THRESHOLD = 0.60
THRESHOLD_SETTING = "predict.unsure_below"
MAX_NAMED = 4


def answer_state(pred, threshold: float = DEFAULT_THRESHOLD) -> str:
    """SURE, UNSURE, UNFAMILIAR or ERROR for one prediction."""
    if not getattr(pred, "ok", True) or pred.confidence is None:
        return ERROR
    if getattr(pred, "unfamiliar", None) is True:
        return UNFAMILIAR
    return UNSURE if pred.confidence < threshold else SURE


def threshold_from(settings) -> float:
    """The persisted threshold (a fraction), or the default when missing or odd."""
    value = settings.get(THRESHOLD_SETTING, DEFAULT_THRESHOLD, (int, float))
    return float(value) if 0.0 <= float(value) <= 1.0 else DEFAULT_THRESHOLD


def knows_summary(class_names) -> str:
    """What a model knows, in a few words: "0–9 digits", "cat, dog and owl", "cat, dog, … (120 classes)"."""
    names = [str(n) for n in class_names]
    if not names:
        return "nothing yet"
    if all(re.fullmatch(r"\d+", n) for n in names):
        numbers = sorted(int(n) for n in names)
        if numbers == list(range(numbers[0], numbers[0] + len(numbers))) and len(numbers) > 2:
            kind = " digits" if numbers[-1] <= 9 else ""
            return f"{numbers[0]}–{numbers[-1]}{kind}"
    if len(names) <= MAX_NAMED:
        return names[0] if len(names) == 1 else ", ".join(names[:-1]) + " and " + names[-1]
    return ", ".join(names[:MAX_NAMED - 1]) + f", … ({len(names):,} classes)"


def candidates(pred, n: int = 3) -> str:
    """"3 (42.0%) or 8 (31.0%)": the top candidates of an unsure answer."""
    top = [f"{label} ({p:.1%})" for label, p in list(pred.top_k)[:n] if p >= 0.005] or \
        [f"{label} ({p:.1%})" for label, p in list(pred.top_k)[:1]]
    return top[0] if len(top) == 1 else ", ".join(top[:-1]) + " or " + top[-1]
