"""Red team, part 5: what the app writes from hostile input. A model card from a checkpoint whose counts and
description carry Markdown and HTML; file names too long for the file system; output files that would
replace a model or a run."""
from __future__ import annotations

from pathlib import Path
from types import SimpleNamespace

import pytest
import torch
from helpers import make_checkpoint

HOSTILE_COUNTS = {
    "a": "<script>alert(1)</script>",
    "b": "[click](javascript:alert(1))",
    "c": "3 |\n\n# Owned\n| x | y",
}
CARD_HEADINGS = {"Input and output", "Preprocessing (do this before the model)", "Classes",
                 "Training data and figures", "Calibration", "Limits"}


def hostile_card(tmp_path: Path, description: str) -> str:
    from resnet_gui.core.export.model_card import model_card
    from resnet_gui.core.models.checkpoint import load_checkpoint

    path = make_checkpoint(tmp_path / "m.pth", class_names=["a", "b", "c"])
    obj = torch.load(path, weights_only=True)
    obj["dataset"] = {"name": "x", "class_counts": HOSTILE_COUNTS,
                      "val_class_counts": {"a": "<img src=x onerror=alert(1)>", "b": 7, "c": "\n## two"}}
    obj["notes"] = {"description": description}
    torch.save(obj, path)
    facts = SimpleNamespace(path=tmp_path / "m.onnx", fmt="onnx", input_name="images", output_name="probabilities",
                            input_size=32, temperature=1.0, max_abs_diff=None, checked_with=None)
    return model_card(load_checkpoint(path), facts, "m")


@pytest.mark.parametrize("description", ["# Owned heading", "   ## indented heading", "> quoted", "1. a list",
                                         "    four spaces: a code block", "- a list item", "=====",
                                         "line one\n# line two"])
def test_the_model_card_escapes_every_value_from_the_checkpoint(tmp_path, description):
    card = hostile_card(tmp_path, description)
    assert "<script" not in card and "<img" not in card and "](javascript:" not in card.replace("\\]", "")
    headings = [line for line in card.splitlines() if line.startswith("#")]
    assert headings == ["# Model card: m"] + [f"## {h}" for h in sorted(CARD_HEADINGS, key=card.index)]
    table = [line for line in card.splitlines() if line.startswith("| ") and line[2].isdigit()]
    assert len(table) == 3 and all(line.replace("\\|", "").count("|") == 5 for line in table)  # 4 cells each
    assert "| 1 | b | \\[click\\](javascript:alert(1)) | 7 |" in card

    markdown_it = pytest.importorskip("markdown_it")
    html = markdown_it.MarkdownIt("commonmark").enable("table").render(card)
    assert html.count("<h1>") == 1 and html.count("<h2>") == len(CARD_HEADINGS) and "<h3>" not in html
    for tag in ("<script", "<img", "<a ", "<blockquote", "<pre", "<hr"):
        assert tag not in html, tag
    assert html.count("<ol>") == 1  # the card's own preprocessing steps
    assert html.count("<tr>") == 4  # the header and three classes
