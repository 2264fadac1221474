"""The answer a person reads, in the window's words. Which state an answer is in (sure, not sure, unfamiliar,
error) is decided by core's `Prediction.state(threshold)`, the one rule for the window, the CLI and the CSV: the
single-image view and the folder table use it with the Predict tab's threshold, so a threshold change re-labels
what is on screen without running the model again.
"""
from __future__ import annotations

import re

from resnet_gui.core.inference.prediction import DEFAULT_THRESHOLD, ERROR, STATES, SURE, UNFAMILIAR, UNSURE
from resnet_gui.text import percent, sentence

from ..common.threshold import THRESHOLD_SETTING, threshold_from

__all__ = ["DEFAULT_THRESHOLD", "ERROR", "STATES", "SURE", "UNFAMILIAR", "UNSURE", "THRESHOLD_SETTING",
           "threshold_from"]

STATUS_WORDS = {SURE: "Sure", UNSURE: "Not sure", UNFAMILIAR: "Unfamiliar", ERROR: "Error"}
MAX_NAMED = 4
MIN_CANDIDATE = 0.05   # a class named as a candidate of an unsure answer has at least this


def threshold_words(threshold: float) -> str:
    """The threshold as the spin box shows it: "60%", "99.8%"."""
    return f"{round(100 * threshold, 1):g}%"


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


def bar(pred, threshold: float) -> float:
    """What `pred`'s confidence must reach to be sure: the threshold, or its class's own when that is higher."""
    return max(float(threshold), pred.class_threshold or 0.0)


def confidence_words(p: float, pred, threshold: float, decimals: int = 1) -> str:
    """A probability of `pred` beside its state at `threshold`: "99.8%" for a not-sure 99.86 % when the bar is
    99.9 % (rounded down under the bar, text.percent), so the figure never contradicts "Not sure"."""
    return percent(p, decimals, below=bar(pred, threshold))


def candidates(pred, threshold: float, n: int = 3) -> str:
    """"3 (42.0%) or 8 (31.0%)": the top candidates of an unsure answer, those with at least MIN_CANDIDATE (a
    class at 0.7 % is no candidate); the top one always."""
    top = [f"{label} ({confidence_words(p, pred, threshold)})" for label, p in list(pred.top_k)[:n]
           if p >= MIN_CANDIDATE] or \
        [f"{label} ({confidence_words(p, pred, threshold)})" for label, p in list(pred.top_k)[:1]]
    return top[0] if len(top) == 1 else ", ".join(top[:-1]) + " or " + top[-1]


def unfamiliar_words(why: str | None, knows: str = "") -> str:
    """Why an image is unfamiliar, in one sentence: "This image is darker than its training images (the model
    knows 0–9 digits)."; `why`: the prediction's `unfamiliar_why` (None when its features, not its input
    statistics, made it unfamiliar); `knows`: knows_summary of the model's classes."""
    knows_part = f"the model knows {knows}" if knows else ""
    if why:
        return f"This image is {why}" + (f" ({knows_part})." if knows_part else ".")
    return sentence(knows_part)


def trust_words(model) -> tuple[str, str, bool]:
    """What every answer of `model` (a LoadedModel) carries: ("Confidence calibrated · can flag unfamiliar images:
    well", the banner kind, whether Add familiarity data… would help). An info line when both hold; a warning
    when the confidence is the network's raw one or the model cannot (or was never measured to) flag unfamiliar
    images."""
    calibrated = bool(getattr(model, "calibrated", False))
    flag = str(getattr(model, "can_flag", "cannot flag unfamiliar images"))
    text = f"{'Confidence calibrated' if calibrated else 'Confidence not calibrated'} · {flag}"
    fine = calibrated and flag.endswith(": well")
    helps = not calibrated or not getattr(model, "has_familiarity", False) or flag.endswith("not measured")
    return text, "info" if fine else "warning", helps


FAMILIARITY_WORDS = ("Familiarity {value:.0%}: {value:.0%} of the model's own validation images lie at least this far "
                     "from the classes it knows. Low means unlike what it was trained on; below {limit} it counts as "
                     "unfamiliar.")


def status_tip(pred, state: str, threshold: float, familiarity_limit: float | None) -> str:
    """Why an answer has its state, and what its familiarity number means: a folder row's status tooltip."""
    if state == UNFAMILIAR:
        why = getattr(pred, "unfamiliar_why", None)
        tip = "Unlike the images this model was trained on: its answer means little." + (
            f" {unfamiliar_words(why)}" if why else "")
    elif state == UNSURE:
        needed = bar(pred, threshold)
        own = " (its own threshold)" if needed > threshold else ""
        tip = f"{pred.label} does not reach {threshold_words(needed)}{own}: " + ", ".join(
            f"{label} {confidence_words(p, pred, threshold, 0)}" for label, p in pred.top_k[:3] if p >= MIN_CANDIDATE)
    else:
        tip = ""
    if pred.ok and pred.familiarity is not None:
        limit = f"{familiarity_limit:.0%}" if familiarity_limit is not None else "the model's limit"
        tip = (tip + "\n" if tip else "") + FAMILIARITY_WORDS.format(value=pred.familiarity, limit=limit)
    return tip
