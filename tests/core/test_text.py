"""text.percent: a share under a bar (the "not sure below" threshold) never reads as reaching it."""
from resnet_gui.text import percent


def test_percent_rounds_as_usual_without_a_bar_or_at_and_above_it():
    assert percent(0.4213) == "42.1%" and percent(0.9986) == "99.9%" and percent(0.5, 0) == "50%"
    assert percent(0.999, below=0.999) == "99.9%" and percent(0.99951, below=0.999) == "100.0%"


def test_percent_under_a_bar_is_rounded_down_and_kept_under_it():
    assert percent(0.9986, below=0.999) == "99.8%"
    assert percent(0.99896, 0, below=0.999) == "99%"
    assert percent(0.29, below=0.6) == "29.0%"   # 0.29 * 1000 is 289.99999999999997 in floats: not 28.9 %
    assert percent(0.99849, below=0.9985) == "99.8%"
    assert percent(0.999 - 1e-12, below=0.999) == "99.8%"   # never "99.9%" for a share under 99.9 %
