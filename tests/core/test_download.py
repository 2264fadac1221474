"""Downloads (CIFAR-10, ImageNet weights) against a local HTTP server on loopback."""
import hashlib
import http.server
import threading

import pytest

from resnet_gui.core.download import download
from resnet_gui.core.errors import Cancelled, DownloadError
from resnet_gui.core.progress import Progress

PAYLOAD = bytes(range(256)) * 4096  # 1 MiB
FILES: dict[str, bytes] = {}  # path -> content served besides PAYLOAD


@pytest.fixture
def server():
    class Handler(http.server.BaseHTTPRequestHandler):
        def do_GET(self):  # noqa: N802
            if self.path == "/missing":
                self.send_error(404)
                return
            body = FILES.get(self.path, PAYLOAD)
            self.send_response(200)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *args):
            pass

    httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{httpd.server_address[1]}"
    httpd.shutdown()
    thread.join()
    httpd.server_close()  # its listening socket (left to the garbage collector: a ResourceWarning, an error)


def test_download_verifies_and_reports_progress(server, tmp_path):
    seen = []
    out = download(f"{server}/file", tmp_path / "f.bin", md5=hashlib.md5(PAYLOAD).hexdigest(),
                   progress=Progress(lambda what, d, t: seen.append((d, t)), rate=1e9), chunk=65536)
    assert out.read_bytes() == PAYLOAD
    assert seen[-1] == (len(PAYLOAD), len(PAYLOAD)) and len(seen) == 16
    assert [p.name for p in tmp_path.iterdir()] == ["f.bin"]


def test_corrupt_download_leaves_nothing(server, tmp_path):
    with pytest.raises(DownloadError, match="corrupt"):
        download(f"{server}/file", tmp_path / "f.bin", md5="0" * 32)
    with pytest.raises(DownloadError, match="SHA-256"):
        download(f"{server}/file", tmp_path / "g.bin", sha256_prefix="ffffffff")
    assert list(tmp_path.iterdir()) == []


def test_cancel_and_http_errors_leave_nothing(server, tmp_path):
    with pytest.raises(Cancelled):
        stop = threading.Event()
        stop.set()
        download(f"{server}/file", tmp_path / "f.bin", progress=Progress(stop=stop))
    with pytest.raises(DownloadError, match="Not Found"):
        download(f"{server}/missing", tmp_path / "f.bin")
    assert list(tmp_path.iterdir()) == []


def test_existing_file_survives_a_failed_download(server, tmp_path):
    target = tmp_path / "f.bin"
    target.write_bytes(b"previous")
    with pytest.raises(DownloadError):
        download(f"{server}/file", target, md5="0" * 32)
    assert target.read_bytes() == b"previous"


def test_imagenet_weights_download_into_the_hub_cache(server, monkeypatch):
    """The real download path of build_model(weights="imagenet"), pointed at the local server."""
    import io

    import torch
    import torchvision

    from resnet_gui.core.models import build as models

    state = torchvision.models.resnet18().state_dict()
    buf = io.BytesIO()
    torch.save(state, buf)
    data = buf.getvalue()
    prefix = hashlib.sha256(data).hexdigest()[:8]
    fake = type("W", (), {"url": f"{server}/resnet18-{prefix}.pth",
                          "transforms": torchvision.models.ResNet18_Weights.DEFAULT.transforms})()
    monkeypatch.setattr(models, "_imagenet_weights", lambda arch: fake)
    FILES[f"/resnet18-{prefix}.pth"] = data
    model = models.build_model("resnet18", 3, weights="imagenet")
    assert torch.equal(model.conv1.weight, state["conv1.weight"]) and model.fc.out_features == 3
    assert models.imagenet_weights_path("resnet18").name == f"resnet18-{prefix}.pth"
    assert models.imagenet_weights_path("resnet18").is_file()


def test_cifar_download_when_asked_with_the_md5_check(server, tmp_path, monkeypatch):
    """train(download=True) fetches the archive, checks its MD5 (torchvision's value, patched to our
    generated archive's), extracts it into the app's data folder and trains."""
    import tarfile

    import torchvision
    from helpers import make_cifar

    from resnet_gui.core.data.cifar import default_cifar_root
    from resnet_gui.core.train import recipe, train

    make_cifar(tmp_path / "src")
    archive = tmp_path / "cifar-10-python.tar.gz"
    with tarfile.open(archive, "w:gz") as tar:
        tar.add(tmp_path / "src" / "cifar-10-batches-py", arcname="cifar-10-batches-py")
    data = archive.read_bytes()
    FILES["/cifar-10-python.tar.gz"] = data
    monkeypatch.setattr(torchvision.datasets.CIFAR10, "url", f"{server}/cifar-10-python.tar.gz")
    monkeypatch.setattr(torchvision.datasets.CIFAR10, "tgz_md5", hashlib.md5(data).hexdigest())
    monkeypatch.setattr(torchvision.datasets.cifar, "check_integrity", lambda *a, **k: True)  # the batch files
    events = []
    cfg = recipe("cifar10", epochs=1, batch_size=25, device="cpu", download=True)
    result = train(cfg, events.append)
    assert result.status == "finished", result.message
    assert (default_cifar_root() / "cifar-10-batches-py" / "data_batch_1").is_file()
    assert any(e.kind == "prepare" and e.message == "Downloading CIFAR-10" for e in events)
    # a second run finds the local copy and downloads nothing
    FILES.pop("/cifar-10-python.tar.gz")
    monkeypatch.setattr(torchvision.datasets.CIFAR10, "url", f"{server}/missing")
    assert train(recipe("cifar10", epochs=1, batch_size=25, device="cpu")).status == "finished"
