"""Every prediction test runs on both engines: ONNX Runtime (the default on the CPU) and PyTorch."""
import pytest

ENGINES = ("onnxruntime", "torch")


@pytest.fixture(params=ENGINES)
def engine(request) -> str:
    return request.param


@pytest.fixture
def open_model(engine):
    """open_model(path_or_checkpoint, **options) -> a Predictor on the CPU with the test's engine, fp32."""
    from resnet_gui.core.engines.choose import open_predictor

    def make(source, **options):
        options.setdefault("precision", "fp32")
        return open_predictor(source, engine=engine, device="cpu", **options)

    return make
