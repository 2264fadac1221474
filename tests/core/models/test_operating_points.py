"""Per-class thresholds: stored in the model, old files keep working, honoured by predict (text, CSV, JSON)."""
import csv
import json

import pytest
from helpers import make_checkpoint, write_image

from resnet_gui.cli import main
from resnet_gui.core.models import operating_points
from resnet_gui.core.models.checkpoint import read_checkpoint, read_checkpoint_metadata, write_checkpoint
from resnet_gui.core.models.registry import Registry


@pytest.fixture
def model(isolated_home):
    reg = Registry()
    path = make_checkpoint(reg.root / "twos.pth", favour=2, class_names=["zero", "one", "two"])
    ckpt = read_checkpoint(path)
    ckpt.state_dict["fc.bias"][2] = 3.0   # "two", but not at 100 %: about 90 %
    write_checkpoint(ckpt, path)
    return reg


def test_stored_and_read_back_and_damaged_entries_dropped(model, tmp_path):
    path = model.get("twos").path
    assert "operating_points" not in read_checkpoint_metadata(path)   # an old file: none, and it loads
    ckpt = read_checkpoint(path)
    ckpt.operating_points = {"two": {"threshold": 0.9, "precision_at_least": 0.95, "measured_on": "x"},
                             "one": {"threshold": 7}, "nine": {"threshold": 0.5}, "zero": "junk"}
    write_checkpoint(ckpt, path)
    assert read_checkpoint_metadata(path)["operating_points"] == {"two": {"threshold": 0.9, "precision_at_least": 0.95,
                                                               "measured_on": "x"}}
    assert operating_points.thresholds(read_checkpoint_metadata(path), ["zero", "one", "two"]) == [None, None, 0.9]


def test_models_edit_threshold_then_predict_answers_not_sure(model, tmp_path, capsys):
    image = write_image(tmp_path / "a.png")
    assert main(["predict", str(image), "--json"]) == 0
    before = json.loads(capsys.readouterr().out)
    assert before["state"] == "sure" and "class_threshold" not in before
    assert main(["models", "edit", "twos", "--threshold", "two=99.5%"]) == 0
    assert "two: sure from 99.5 %" in capsys.readouterr().out
    assert model.details("twos")["operating_points"]["two"]["threshold"] == 0.995
    assert main(["predict", str(image), "--json", "--csv", str(tmp_path / "p.csv")]) == 0
    after = json.loads(capsys.readouterr().out)
    assert after["state"] == "unsure" and after["unsure"] and after["class_threshold"] == 0.995
    with open(tmp_path / "p.csv", newline="") as fh:
        row = next(csv.DictReader(fh))
    assert row["status"] == "not sure" and row["class_threshold"] == "0.9950"
    main(["predict", str(image)])
    assert "not sure: two" in capsys.readouterr().out
    # sorting follows the same rule
    main(["predict", str(image), "--sort-into", str(tmp_path / "out")])
    assert (tmp_path / "out" / "_not_sure" / "a.png").exists()
    assert main(["models", "edit", "twos", "--threshold", "two=none"]) == 0
    assert "operating_points" not in model.details("twos")


def test_bad_threshold_arguments_are_messages(model, capsys):
    assert main(["models", "edit", "twos", "--threshold", "seven=0.5"]) == 2
    assert "no class 'seven'" in capsys.readouterr().err
    assert main(["models", "edit", "twos", "--threshold", "two=1.5"]) == 2
    assert "out of range" in capsys.readouterr().err
    assert main(["models", "edit", "twos", "--threshold", "two"]) == 2
    assert "CLASS=P" in capsys.readouterr().err


def test_renaming_classes_keeps_their_thresholds(model):
    model.set_operating_points("twos", {"two": {"threshold": 0.8}})
    model.update("twos", class_names=["nil", "uno", "dos"])
    assert model.details("twos")["operating_points"] == {"dos": {"threshold": 0.8}}


def test_shown_in_the_model_card_and_details(model, tmp_path):
    from types import SimpleNamespace

    from resnet_gui.core.export.model_card import model_card
    from resnet_gui.ui.models.dialogs import summary_sections

    model.set_operating_points("twos", {"two": {"threshold": 0.85, "precision_at_least": 0.95, "precision": 0.96,
                                                "recall": 0.7, "measured_on": "validation split"}})
    ckpt = read_checkpoint(model.get("twos").path)
    facts = SimpleNamespace(path=tmp_path / "m.onnx", fmt="onnx", input_name="images", output_name="probabilities",
                            input_size=32, temperature=1.0, max_abs_diff=None, checked_with=None)
    card = model_card(ckpt, facts, "twos")
    line = "- two: sure from 85 % (chosen for precision ≥ 95 %; 96 % precision, 70 % recall on validation split)"
    assert "## Per-class thresholds" in card and line in card
    sections = dict(summary_sections(model.get("twos")))
    assert dict(sections["Figures"])["Own thresholds"] == line[2:]
    model.set_operating_points("twos", {"two": None})
    assert "Per-class thresholds" not in model_card(read_checkpoint(model.get("twos").path), facts, "twos")
    assert dict(dict(summary_sections(model.get("twos")))["Figures"])["Own thresholds"].startswith("none")
