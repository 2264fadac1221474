"""The reader's "not sure below" threshold, one setting shared by the Predict and Evaluate tabs."""
from __future__ import annotations

THRESHOLD_SETTING = "predict.unsure_below"


def threshold_from(settings) -> float:
    """The persisted threshold (a fraction), or the default when missing or odd."""
    from resnet_gui.core.inference.prediction import DEFAULT_THRESHOLD

    return float(settings.get(THRESHOLD_SETTING, DEFAULT_THRESHOLD))  # the schema keeps it within 0-1
