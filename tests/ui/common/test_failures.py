"""Failures cross from workers to the window as objects: the message in the window's words, the error's kind,
and the remedy as data. Core's messages name no option and no control; the command line and the window each
word the remedy their own way (and the window may turn it into a button)."""
import json

import pytest

from resnet_gui.core.errors import FLAG_WORDS, DatasetError, RegistryError, Remedy, user_message, with_remedy
from resnet_gui.core.train import TrainConfig
from resnet_gui.core.train import events as E
from resnet_gui.ui.common.failures import WINDOW_WORDS, Failure, window_text
from resnet_gui.ui.train.torchrun import event_from_json


def test_every_remedy_is_worded_for_both_screens():
    assert set(WINDOW_WORDS) == set(FLAG_WORDS)
    for kind in FLAG_WORDS:
        remedy = Remedy(kind, 0.005 if kind == "lr" else 12)
        flag, window = remedy.flag_words(), window_text("x", remedy).removeprefix("X. ")
        assert "--" in flag and "--" not in window, kind
        assert flag[:1].isupper() and flag.endswith(".") and window[:1].isupper() and window.endswith("."), kind


@pytest.mark.parametrize("make, cli, window", [
    (lambda: TrainConfig(dataset="folder", data=None).validate(),
     "A folder dataset needs a folder. Give it with --data PATH.",
     "A folder dataset needs a folder. Choose it in the Data box."),
    (lambda: (_ for _ in ()).throw(RegistryError("pets.pth is already in the registry as 'pets'",
                                                 remedy=Remedy("allow_duplicate"))),
     "Pets.pth is already in the registry as 'pets'. Use that model, or import it again with --allow-duplicate.",
     "Pets.pth is already in the registry as 'pets'. Use that model, or import it again anyway."),
])
def test_the_command_line_names_the_flag_and_the_window_its_own_words(make, cli, window):
    with pytest.raises(Exception) as raised:
        make()
    assert user_message(raised.value) == cli
    failure = Failure.from_exception(raised.value)
    assert failure.message == window and failure.remedy is raised.value.remedy
    assert failure.kind == type(raised.value).__name__


def test_a_failure_without_a_remedy_is_its_sentence():
    failure = Failure.from_exception(DatasetError("class folder /x has no images"))
    assert (failure.message, failure.kind, failure.remedy) == ("Class folder /x has no images.", "DatasetError", None)
    assert Failure.from_exception(OSError(28, "No space left on device")).message.startswith("The disk is full")


def test_the_remedy_travels_in_the_json_events_of_a_run_on_several_gpus():
    ended = E.Ended(status="failed", message="the loss became NaN at epoch 1, step 3; training stopped",
                    remedy=Remedy("lr", 0.005), run_name="r")
    line = json.dumps(ended.to_json())
    assert json.loads(line)["remedy"] == {"kind": "lr", "value": 0.005}
    back = event_from_json(json.loads(line))
    assert back == ended
    assert with_remedy(back.message, back.remedy).endswith("training stopped. Try --lr 0.005.")
    unknown = dict(json.loads(line), remedy={"kind": "from a newer engine"})
    assert event_from_json(unknown).remedy is None
