"""Shared fixtures. Every test gets its own RESNET_GUI_HOME and TORCH_HOME; nothing reaches the network."""
from __future__ import annotations

import os
import socket
import sys
from pathlib import Path

import pytest

os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")
ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(Path(__file__).resolve().parent))


@pytest.fixture(autouse=True)
def isolated_home(tmp_path_factory, monkeypatch):
    home = tmp_path_factory.mktemp("home")
    monkeypatch.setenv("RESNET_GUI_HOME", str(home))
    monkeypatch.setenv("TORCH_HOME", str(home / "torch"))
    return home


class NetworkBlocked(OSError):
    pass


@pytest.fixture(autouse=True)
def no_network(monkeypatch):
    """Any attempt to open an internet connection fails at once, as it would offline."""
    real_connect = socket.socket.connect

    def guarded(self, address):
        if self.family in (socket.AF_INET, socket.AF_INET6):
            host = address[0]
            if host not in ("127.0.0.1", "::1", "localhost"):
                raise NetworkBlocked(f"network access blocked in tests ({address})")
        return real_connect(self, address)

    monkeypatch.setattr(socket.socket, "connect", guarded)

    real_getaddrinfo = socket.getaddrinfo

    def loopback_only(host, *args, **kwargs):
        if host not in ("127.0.0.1", "::1", "localhost"):
            raise socket.gaierror(f"DNS blocked in tests ({host})")
        return real_getaddrinfo(host, *args, **kwargs)

    monkeypatch.setattr(socket, "getaddrinfo", loopback_only)


@pytest.fixture(scope="session")
def cifar_checkpoint_file(tmp_path_factory) -> Path:
    """One resnet18_cifar checkpoint in our format (10 classes, random weights), made once."""
    from helpers import make_checkpoint

    path = tmp_path_factory.mktemp("ckpt") / "tiny.pth"
    make_checkpoint(path)
    return path
