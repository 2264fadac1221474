"""Every plot of the window is set up by common.plots and follows the palette through theme.follow_palette:
the Train tab's live curves, the Runs tab's comparison, the learning-rate finder and the reliability diagram
all turn dark with the dark theme, and back."""
import pytest
from PIL import Image
from PySide6.QtGui import QColor, QPalette
from PySide6.QtWidgets import QApplication

from resnet_gui.ui.common import theme
from resnet_gui.ui.common.qimages import pil_to_qimage, qimage_to_png_bytes, rgb_array_to_qimage


def plots_of(widget):
    from resnet_gui.ui.evaluate.reliability_plot import ReliabilityPlot
    from resnet_gui.ui.runs.curves import RunCurves
    from resnet_gui.ui.train.live_plots import TrainingPlots
    from resnet_gui.ui.train.lr_finder_panel import LrFinderPanel

    if isinstance(widget, (TrainingPlots, RunCurves)):
        return [widget.loss_plot, widget.acc_plot]
    assert isinstance(widget, (LrFinderPanel, ReliabilityPlot))
    return [widget.plot]


@pytest.fixture
def plot_widgets(qtbot):
    from resnet_gui.ui.evaluate.reliability_plot import ReliabilityPlot
    from resnet_gui.ui.runs.curves import RunCurves
    from resnet_gui.ui.train.live_plots import TrainingPlots
    from resnet_gui.ui.train.lr_finder_panel import LrFinderPanel

    widgets = [TrainingPlots(), RunCurves(), LrFinderPanel(), ReliabilityPlot()]
    for w in widgets:
        qtbot.addWidget(w)
    yield widgets
    theme.apply(QApplication.instance(), "system")


def colours(plot) -> tuple[QColor, QColor]:
    return plot.backgroundBrush().color(), plot.getPlotItem().getAxis("left").pen().color()


def test_every_plot_follows_the_theme(qtbot, plot_widgets):
    app = QApplication.instance()
    for name in ("dark", "light"):
        theme.apply(app, name)
        base, text = app.palette().color(QPalette.ColorRole.Base), app.palette().color(QPalette.ColorRole.Text)
        plots = [plot for widget in plot_widgets for plot in plots_of(widget)]
        qtbot.waitUntil(lambda plots=plots, want=(base, text): all(colours(p) == want for p in plots), timeout=5_000)


def test_a_widgets_own_palette_is_followed_too(plot_widgets):
    runs = plot_widgets[1]
    runs.set_runs({"a": [{"epoch": 1, "val_loss": 1.0, "val_accuracy": 0.5, "train_loss": 1.2,
                          "train_accuracy": 0.4}]})
    palette = QPalette(runs.palette())
    palette.setColor(QPalette.ColorRole.Base, QColor("#102030"))
    palette.setColor(QPalette.ColorRole.Text, QColor("#f0e0d0"))
    runs.setPalette(palette)
    assert colours(runs.loss_plot) == (QColor("#102030"), QColor("#f0e0d0"))
    assert "#f0e0d0" in runs.key_label.text() and "■&nbsp;a" in runs.key_label.text()


def test_qimages_are_deep_copies_with_the_same_pixels():
    import numpy as np

    pixels = np.zeros((3, 5, 3), np.uint8)
    pixels[1, 2] = (200, 100, 50)
    from_array = rgb_array_to_qimage(pixels)
    pixels[1, 2] = 0  # the QImage owns its copy
    from_pil = pil_to_qimage(Image.fromarray(np.where(pixels.any(), pixels, 0)).convert("L"))
    assert (from_array.width(), from_array.height()) == (5, 3)
    assert from_array.pixelColor(2, 1) == QColor(200, 100, 50) and from_pil.pixelColor(2, 1) == QColor(0, 0, 0)
    big = pil_to_qimage(Image.new("RGB", (400, 100), (1, 2, 3)), max_side=100)
    assert (big.width(), big.height()) == (100, 25) and big.pixelColor(0, 0) == QColor(1, 2, 3)
    png = qimage_to_png_bytes(from_array)
    assert png.startswith(b"\x89PNG") and Image.open(__import__("io").BytesIO(png)).getpixel((2, 1)) == (200, 100, 50)


def test_a_deleted_plot_no_longer_follows_the_theme(qtbot):
    """Its palette watcher goes with it: a theme change after the widget is gone paints nothing deleted."""
    from PySide6.QtCore import QCoreApplication, QEvent

    from resnet_gui.ui.train.lr_finder_panel import LrFinderPanel

    panel = LrFinderPanel()
    panel.deleteLater()
    QCoreApplication.sendPostedEvents(None, QEvent.Type.DeferredDelete)
    try:
        theme.apply(QApplication.instance(), "dark")  # raised "Internal C++ object already deleted" in a slot
    finally:
        theme.apply(QApplication.instance(), "system")


def test_a_plot_without_a_parent_goes_with_its_last_reference(qtbot):
    """The palette watcher held the widget's method strongly: widget -> watcher -> method -> widget was a cycle,
    so a widget without a parent was freed by the garbage collector whenever it ran, once while the widget was
    painting (a segfault). Without the cycle it goes with its last reference, and still follows the theme."""
    import weakref

    from resnet_gui.ui.evaluate.reliability_plot import ReliabilityPlot
    from resnet_gui.ui.runs.curves import RunCurves
    from resnet_gui.ui.train.live_plots import TrainingPlots
    from resnet_gui.ui.train.lr_finder_panel import LrFinderPanel

    for kind in (TrainingPlots, RunCurves, LrFinderPanel, ReliabilityPlot):
        widget = kind()
        gone = weakref.ref(widget)
        del widget
        assert gone() is None, kind.__name__
    panel = LrFinderPanel()
    qtbot.addWidget(panel)
    try:
        theme.apply(QApplication.instance(), "dark")
        want = (QApplication.instance().palette().color(QPalette.ColorRole.Base),
                QApplication.instance().palette().color(QPalette.ColorRole.Text))
        qtbot.waitUntil(lambda: colours(panel.plot) == want, timeout=5_000)
    finally:
        theme.apply(QApplication.instance(), "system")


def test_epoch_axes_count_whole_epochs_and_the_loss_axis_is_not_crowded(qtbot):
    from resnet_gui.ui.train.live_plots import TrainingPlots

    plots = TrainingPlots()
    qtbot.addWidget(plots)
    plots.resize(900, 300)
    plots.show()
    plots.start(steps_per_epoch=4, epochs=2)
    for epoch, loss in ((1, 2.3), (2, 0.04)):
        plots.add_epoch({"epoch": epoch, "train_loss": loss, "val_loss": loss * 1.5, "train_accuracy": 0.5,
                         "val_accuracy": 0.4})
    for plot in (plots.loss_plot, plots.acc_plot):
        ticks = [v for _spacing, values in plot.getPlotItem().getAxis("bottom").tickValues(0, 2, 400) for v in values]
        assert ticks and all(float(v).is_integer() for v in ticks), ticks  # no epoch 0.5 or 1.5
    left = plots.loss_plot.getPlotItem().getAxis("left")
    values = [v for _spacing, vs in left.tickValues(-1.5, 0.6, 250) for v in vs]  # 0.03 to 4: two decades
    labels = [t for t in left.tickStrings(values, 1.0, 1.0) if t]
    assert 2 <= len(labels) <= 8 < len(values), (labels, len(values))
