"""The in-app help speaks the app's units and numbers: what it says about familiarity, the threshold, and the
verdicts is what the app shows."""
import html
import re

import torch

from resnet_gui import resources
from resnet_gui.core.evaluation.metrics import BALANCE_RATIO, figures, verdicts
from resnet_gui.core.inference.prediction import DEFAULT_THRESHOLD
from resnet_gui.ui.help import HELP_PAGE
from resnet_gui.ui.predict.answer import FAMILIARITY_WORDS, threshold_words


def _page() -> str:
    text = resources.path(HELP_PAGE).read_text(encoding="utf-8")
    return " ".join(html.unescape(re.sub(r"<[^>]+>", "", text)).replace("\xa0", "").split())


def test_familiarity_is_a_percentage_as_the_app_shows_it():
    page = _page()
    assert not re.search(r"familiarity of 0?\.\d", page, re.I)  # "a familiarity of 0.02" was not what the app shows
    example = re.search(r"familiarity of (\d+)%", page, re.I)
    assert example, "the glossary gives an example familiarity"
    shown = FAMILIARITY_WORDS.format(value=int(example[1]) / 100, limit="2%")
    assert shown.startswith(f"Familiarity {example[1]}%")
    assert f"only {example[1]}% of the model's own validation images lie at least this far" in page
    assert "from 0 to 100%" in page


def test_the_threshold_and_the_imbalance_rule_are_the_apps():
    page = _page()
    assert f"({threshold_words(DEFAULT_THRESHOLD)} unless you change it)" in page
    assert f"more than {BALANCE_RATIO:g} times the smallest" in page


def test_the_verdicts_the_help_names_are_the_ones_the_app_gives():
    page = _page()
    true4 = torch.arange(4).repeat_interleave(8)
    at_chance = " ".join(verdicts(figures(torch.tensor([[0.1, 0.1, 0.1, 0.7]] * 32), true4, list("abcd"))))
    true2 = torch.tensor([0] * 100 + [1] * 8)
    at_share = " ".join(verdicts(figures(torch.tensor([[0.9, 0.1]] * 108), true2, ["face", "not face"])))
    assert "At chance level" in page and "at chance level (25.0% for 4 equally sized classes)" in at_chance
    assert "(25% for 4 equally sized classes)" in page
    assert "About the share of the largest class" in page and "about the share of the largest class" in at_share
