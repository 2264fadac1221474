"""The classify-only edition in this venv: PyTorch made unimportable in a subprocess (helpers.run_without_torch), as
it is in the frozen resnet-gui-classify. The same package decides its edition by what is installed."""
from helpers import app_without_torch, run_without_torch

from resnet_gui import edition


def test_the_edition_is_decided_by_what_is_installed():
    assert edition.current() == edition.FULL and edition.can_train()
    proc = run_without_torch("from resnet_gui import edition\nprint(edition.current(), edition.can_train())\n")
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.split() == ["classify", "False"]
    assert edition.executable_name(edition.FULL) == "resnet-gui"
    assert edition.executable_name(edition.CLASSIFY) == "resnet-gui-classify"


def test_train_and_runs_say_where_training_lives_and_exit_2():
    for argv in (("train", "--dataset", "cifar10", "--epochs", "1"), ("runs", "list")):
        proc = run_without_torch(app_without_torch(*argv))
        assert proc.returncode == 2, proc.stdout + proc.stderr
        assert proc.stderr.strip() == f"resnet-gui: error: {edition.TRAINING_ELSEWHERE}"
        assert "Traceback" not in proc.stderr and proc.stdout == ""
