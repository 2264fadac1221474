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
    from resnet_gui.core.models.checkpoint import read_checkpoint

    path = make_checkpoint(tmp_path / "m.pth", class_names=["a", "b", "c"])
    obj = torch.load(path, weights_only=True)
    obj["dataset"] = {"name": "x", "class_counts": HOSTILE_COUNTS,
                      "val_class_counts": {"a": "<img src=x onerror=alert(1)>", "b": 7, "c": "\n## two"}}
    obj["notes"] = {"description": description}
    torch.save(obj, path)
    facts = SimpleNamespace(path=tmp_path / "m.onnx", fmt="onnx", input_name="images", output_name="probabilities",
                            input_size=32, temperature=1.0, max_abs_diff=None, checked_with=None)
    return model_card(read_checkpoint(path), facts, "m")


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


# ---- file names ---------------------------------------------------------------------------------------------
LONG_NAME = "0" + "猫" * 80 + ".png"  # 245 bytes in UTF-8: a valid name, 81 characters


def test_a_long_image_name_gets_its_heat_map_and_so_do_the_others(tmp_path, capsys):
    from helpers import write_image

    from resnet_gui.cli import main
    from resnet_gui.core.names import NAME_MAX_BYTES

    assert len(LONG_NAME.encode()) == 245
    for name in (LONG_NAME, "a.png", "b.png"):
        write_image(tmp_path / "images" / name, seed=len(name))
    out = tmp_path / "maps"
    code = main(["predict", str(tmp_path / "images"), "--explain-dir", str(out)])
    captured = capsys.readouterr()
    assert code == 0, captured.err
    names = sorted(p.name for p in out.iterdir())
    assert len(names) == 3 and "a_cam.png" in names and "b_cam.png" in names, names
    long = next(n for n in names if n.startswith("0猫"))
    assert long.endswith("_cam.png") and len(long.encode()) <= NAME_MAX_BYTES
    assert "Wrote 3 heat maps" in captured.err


def test_a_heat_map_that_cannot_be_written_does_not_stop_the_others(tmp_path, capsys):
    from helpers import write_image

    from resnet_gui.cli import main

    for name in ("a.png", "b.png", "c.png"):
        write_image(tmp_path / "images" / name, seed=ord(name[0]))
    out = tmp_path / "maps"
    (out / "b_cam.png").mkdir(parents=True)  # in the way of b's heat map
    code = main(["predict", str(tmp_path / "images"), "--explain-dir", str(out)])
    captured = capsys.readouterr()
    assert code == 1 and "Traceback" not in captured.err
    assert (out / "a_cam.png").is_file() and (out / "c_cam.png").is_file()
    assert "b.png: no heat map:" in captured.err and "1 of 3 heat maps could not be made" in captured.err
    assert "Wrote 2 heat maps" in captured.err
    assert sum(line.startswith(str(tmp_path)) for line in captured.out.splitlines()) == 3  # every answer given


def test_heat_map_names_are_cut_by_bytes_never_inside_a_character():
    from resnet_gui.cli.predict import HEAT_MAP_STEM_BYTES, heat_map_name

    used: set[str] = set()
    first = heat_map_name("/x/" + LONG_NAME, used)
    second = heat_map_name("/y/" + LONG_NAME, used)
    assert first.endswith("_cam.png") and second.endswith("_cam-2.png") and first[:-8] == second[:-10]
    assert len(first[:-8].encode()) <= HEAT_MAP_STEM_BYTES and set(first[1:-8]) == {"猫"}
    assert heat_map_name("", set()) == "image_cam.png"


def test_explain_uses_the_predicted_index_when_class_names_repeat(tmp_path, capsys, monkeypatch):
    from helpers import write_image

    from resnet_gui.cli import main
    from resnet_gui.core.inference.predictor import Predictor

    model = make_checkpoint(tmp_path / "dup.pth", class_names=["same", "same", "other"], favour=1)
    write_image(tmp_path / "x.png")
    asked = []
    real = Predictor.explain
    monkeypatch.setattr(Predictor, "explain", lambda self, image, index=None: asked.append(index) or
                        real(self, image, index))
    assert main(["predict", str(tmp_path / "x.png"), "--model", str(model), "--explain", "--json"]) == 0
    assert asked == [1]  # class_names.index("same") would have explained class 0


def test_an_atomic_write_works_for_any_name_the_file_system_takes(tmp_path):
    from resnet_gui.core.atomic import atomic_write_bytes

    for name in ("a" * 255, LONG_NAME, "é" * 127):
        atomic_write_bytes(tmp_path / name, b"x")
        assert (tmp_path / name).read_bytes() == b"x"
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted(["a" * 255, LONG_NAME, "é" * 127])  # no temporaries


# ---- output files that would replace a model, a run or an input ---------------------------------------------
@pytest.fixture
def registry(isolated_home):
    folder = isolated_home / "models"
    folder.mkdir(parents=True, exist_ok=True)
    make_checkpoint(folder / "M.pth", class_names=["zero", "one"])
    return folder


def refused(capsys, args, needle):
    from resnet_gui.cli import main

    code = main(args)
    err = capsys.readouterr().err
    assert code == 2 and needle in err and "Traceback" not in err, err


def test_evaluate_never_writes_its_csv_over_the_model_or_into_the_app_folders(registry, tmp_path, capsys):
    from helpers import make_folder_dataset

    from resnet_gui.core.paths import runs_dir

    data = make_folder_dataset(tmp_path / "data", classes=("zero", "one"), per_class=2)
    model = registry / "M.pth"
    before = model.read_bytes()
    refused(capsys, ["evaluate", "--model", "M", "--data", str(data), "--csv", str(model)], "inside the app's models")
    refused(capsys, ["evaluate", "--model", "M", "--data", str(data), "--csv", str(runs_dir() / "r" / "x.csv")],
            "inside the app's runs folder")
    outside = make_checkpoint(tmp_path / "own.pth", class_names=["zero", "one"])
    mine = outside.read_bytes()
    refused(capsys, ["evaluate", "--model", str(outside), "--data", str(data), "--csv", str(outside)],
            "the model's own checkpoint")
    assert model.read_bytes() == before and outside.read_bytes() == mine


def test_predict_never_writes_over_the_model_an_image_or_into_the_app_folders(registry, tmp_path, capsys):
    from helpers import write_image

    from resnet_gui.cli import main

    images = tmp_path / "images"
    for name in ("a.png", "a_cam.png"):
        write_image(images / name, seed=len(name))
    model = registry / "M.pth"
    kept = {p: p.read_bytes() for p in (model, images / "a.png", images / "a_cam.png")}
    refused(capsys, ["predict", str(images), "--model", "M", "--csv", str(model)], "inside the app's models")
    refused(capsys, ["predict", str(images), "--model", "M", "--csv", str(images / "a.png")],
            "one of the files being read")
    refused(capsys, ["predict", str(images), "--model", "M", "--explain-dir", str(registry)], "models folder")
    # heat maps written beside the images never replace one: a.png's goes to a_cam-2.png
    assert main(["predict", str(images), "--model", "M", "--explain-dir", str(images)]) == 0
    assert {p.name for p in images.iterdir()} == {"a.png", "a_cam.png", "a_cam-2.png", "a_cam_cam.png"}
    assert all(p.read_bytes() == data for p, data in kept.items())


def test_the_shared_check_follows_links_and_passes_ordinary_files(registry, tmp_path):
    from resnet_gui.core.errors import OutputError
    from resnet_gui.core.paths import check_output, output_problem

    (tmp_path / "link").symlink_to(registry, target_is_directory=True)
    assert "models folder" in output_problem(tmp_path / "link" / "M.pth")
    assert output_problem(tmp_path / "out.csv", model=registry / "M.pth", reading=[tmp_path / "a.png"]) is None
    with pytest.raises(OutputError, match="own checkpoint"):
        check_output(tmp_path / "x" / ".." / "m.pth", model=tmp_path / "m.pth")
