"""Figures measured on few images carry their 95 % interval, and the end-of-run verdict says what the app knew
(issue 22, items 5 and 6): the validation split's interval and that it chose the model, unstable validation."""
from __future__ import annotations

import numpy as np
import pytest

from resnet_gui.core.evaluation.metrics import accuracy_with_interval, figures, run_verdicts, wilson_interval


def test_the_wilson_interval_matches_the_published_values():
    # Newcombe (1998), Statistics in Medicine 17:857, table I: 81/263 -> 0.2553-0.3662; 0/10 -> 0-0.2775
    lo, hi = wilson_interval(81, 263)
    assert (lo, hi) == (pytest.approx(0.2553, abs=1e-4), pytest.approx(0.3662, abs=1e-4))
    assert wilson_interval(0, 10) == (0.0, pytest.approx(0.2775, abs=1e-4))
    assert wilson_interval(10, 10)[1] == 1.0 and wilson_interval(0, 0) == (0.0, 1.0)


def test_accuracy_words_give_an_interval_below_a_thousand_images():
    assert accuracy_with_interval(39, 40) == "97.5% (87%–100%) on 40 images"
    assert accuracy_with_interval(189, 200) == "94.5% (90%–97%) on 200 images"
    assert accuracy_with_interval(950, 1000) == "95.0% on 1,000 images"


def _figures(n_right: int, n: int):
    true = np.zeros(n, dtype=np.int64)
    true[n // 2:] = 1
    probs = np.zeros((n, 2))
    probs[np.arange(n), true] = 0.9
    probs[np.arange(n), 1 - true] = 0.1
    wrong = np.arange(n - n_right)
    probs[wrong] = probs[wrong][:, ::-1]
    return figures(probs, true, ["face", "not face"])


def test_the_run_verdict_gives_the_interval_and_names_unstable_validation():
    f = _figures(39, 40)
    words = run_verdicts(f, [{"val_loss": v} for v in (0.7, 712.0, 0.1, 35.0, 0.12)])
    assert words[0].startswith("Validation accuracy 97.5% (87%–100%) on 40 images (95 % interval): this split "
                               "also chose the best epoch and fitted the calibration, so the figure is optimistic")
    assert words[1].startswith("Validation loss swung between 0.1 and 712 during the run")
    assert run_verdicts(_figures(1900, 2000), [{"val_loss": v} for v in (0.9, 0.5, 0.4)]) == []
