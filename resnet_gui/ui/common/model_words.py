"""Words about a model that several tabs show (the Models table, the Predict model list)."""
from __future__ import annotations


def incomplete_words(meta: dict | None) -> str | None:
    """"incomplete: best at epoch 9 of 40" for the model of a run that stopped before its last epoch, else None.
    A finished run's model carries its verdicts (metrics["warnings"], written when the run finishes)."""
    metrics = (meta or {}).get("metrics") or {}
    epoch, epochs = metrics.get("epoch"), metrics.get("epochs")
    if not (isinstance(epoch, int) and isinstance(epochs, int)) or epoch >= epochs or "warnings" in metrics:
        return None
    return f"incomplete: best at epoch {epoch} of {epochs}"
