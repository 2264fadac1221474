"""`predict --sort-into OUT [--move] [--dry-run]` and `sort undo OUT`."""
import pytest
from helpers import make_checkpoint, write_image

from resnet_gui.cli import main
from resnet_gui.core.models.registry import Registry


@pytest.fixture
def folder(tmp_path):
    reg = Registry()
    make_checkpoint(reg.root / "favour2.pth", favour=2, class_names=["zero", "one", "two"])
    write_image(tmp_path / "in" / "a.png")
    write_image(tmp_path / "in" / "sub" / "a.png", seed=1)   # the same name: gets a suffix
    (tmp_path / "in" / "broken.png").write_bytes(b"not an image")
    return tmp_path / "in"


def run(capsys, *argv):
    code = main(list(argv))
    out, err = capsys.readouterr()
    return code, out, err


def test_sort_into_copies_by_class_and_state(folder, tmp_path, capsys):
    out = tmp_path / "out"
    code, _, err = run(capsys, "predict", str(folder), "--sort-into", str(out))
    assert code == 1  # one file could not be read
    assert sorted(p.name for p in (out / "two").iterdir()) == ["a-2.png", "a.png"]
    assert [p.name for p in (out / "_unreadable").iterdir()] == ["broken.png"]
    assert (folder / "a.png").exists() and (folder / "broken.png").exists()
    assert "Copied 3 files into" in err and "sorted.csv" in err
    lines = (out / "sorted.csv").read_text().splitlines()  # the header, 3 files, the 3 folders made
    assert len(lines) == 7 and sum(line.endswith(",created folder") for line in lines) == 3


def test_dry_run_says_where_and_writes_nothing(folder, tmp_path, capsys):
    out = tmp_path / "out"
    code, stdout, err = run(capsys, "predict", str(folder), "--sort-into", str(out), "--dry-run", "--move")
    assert f"would move {folder / 'a.png'} -> {out / 'two' / 'a.png'}" in stdout
    assert "a-2.png" in stdout and "nothing was written" in err
    assert not out.exists() and (folder / "a.png").exists()


def test_move_and_undo(folder, tmp_path, capsys):
    out = tmp_path / "out"
    before = sorted(p.relative_to(folder) for p in folder.rglob("*.png"))
    run(capsys, "predict", str(folder), "--sort-into", str(out), "--move")
    assert not list(folder.rglob("*.png"))
    code, stdout, _ = run(capsys, "sort", "undo", str(out))
    assert code == 0 and "Moved 3 files back." in stdout
    assert sorted(p.relative_to(folder) for p in folder.rglob("*.png")) == before


def test_move_without_sort_into_and_undo_of_a_plain_folder_are_messages(folder, tmp_path, capsys):
    code, _, err = run(capsys, "predict", str(folder), "--move")
    assert code == 2 and "--sort-into" in err
    code, _, err = run(capsys, "sort", "undo", str(tmp_path))
    assert code == 2 and "was not sorted by this app" in err and "Traceback" not in err
