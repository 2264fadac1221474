"""names.name_fault: what is wrong with a name, never cutting or repeating it (the rename dialog quotes it)."""
import pytest

from resnet_gui.core.errors import RegistryError
from resnet_gui.core.names import name_fault, validate_name


def test_a_fault_names_the_bad_characters_and_never_contains_the_name():
    assert name_fault("digits: zero/one?").startswith("has ':', '/' and '?': use letters, digits")
    assert name_fault(".hidden").startswith("starts with '.'") and name_fault("ok.").startswith("ends with a dot")
    assert name_fault("a" * 101).startswith("is longer than 100 characters")
    assert name_fault("aux.txt").startswith("is a name Windows reserves")
    assert name_fault("digits zero one") is None and name_fault("pets.pth") is None


def test_validate_name_quotes_the_whole_name():
    with pytest.raises(RegistryError, match=r"^invalid model name 'digits: zero/one\?': it has ':', '/' and '\?'"):
        validate_name("digits: zero/one?")
    assert validate_name(" pets.pth ") == "pets"
