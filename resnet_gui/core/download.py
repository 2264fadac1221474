"""Downloads for the few things the app fetches (CIFAR-10, ImageNet weights).

Written to a temporary name in the destination folder and moved into place only when complete and
verified, so an interrupted download never leaves a file that looks finished.
"""
from __future__ import annotations

import hashlib
import os
import socket
import tempfile
import urllib.error
import urllib.request
from pathlib import Path
from urllib.parse import urlsplit

from .errors import Cancelled, DownloadError
from .progress import NO_PROGRESS, Progress


def _reason(exc: BaseException, url: str) -> str:
    """Why a download failed, in words: offline, timed out, refused, HTTP status."""
    reason = getattr(exc, "reason", None) or exc
    host = urlsplit(url).hostname or url
    if isinstance(reason, socket.gaierror):
        return f"this computer seems to be offline (could not look up {host})"
    if isinstance(reason, (socket.timeout, TimeoutError)):
        return f"{host} did not answer in time"
    if isinstance(reason, ConnectionRefusedError):
        return f"{host} refused the connection"
    if isinstance(exc, urllib.error.HTTPError):
        return f"{host} answered HTTP {exc.code} ({exc.reason})"
    if isinstance(reason, OSError) and reason.errno is not None and "network" in str(reason).lower():
        return "this computer seems to be offline (the network is unreachable)"
    return str(reason)


def download(
    url: str,
    dest: Path,
    *,
    md5: str | None = None,
    sha256_prefix: str | None = None,
    progress: Progress = NO_PROGRESS,
    what: str = "Downloading",
    timeout: float = 30.0,
    chunk: int = 1 << 20,
) -> Path:
    """Fetch `url` into `dest`; verify md5 or a sha256 prefix. Raises DownloadError with a reason, or
    Cancelled when progress.stop is set."""
    dest = Path(dest)
    dest.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp_name = tempfile.mkstemp(prefix=f".{dest.name}.", suffix=".part", dir=dest.parent)
    tmp = Path(tmp_name)
    try:
        md5_h, sha_h = hashlib.md5(), hashlib.sha256()
        try:
            with os.fdopen(fd, "wb") as out, urllib.request.urlopen(url, timeout=timeout) as resp:
                total = int(resp.headers.get("Content-Length") or 0)
                done = 0
                while True:
                    progress.check()
                    block = resp.read(chunk)
                    if not block:
                        break
                    out.write(block)
                    md5_h.update(block)
                    sha_h.update(block)
                    done += len(block)
                    progress.update(what, done, total)
                out.flush()
                os.fsync(out.fileno())
        except (DownloadError, Cancelled):
            raise
        except (urllib.error.URLError, OSError, ValueError) as exc:
            if isinstance(exc, urllib.error.HTTPError):
                exc.close()   # an HTTP error is also the response: its connection would be left to the collector
            error = DownloadError(f"could not download {url}: {_reason(exc, url)}")
            error.reason = _reason(exc, url)
            raise error from None
        if total and done != total:
            raise DownloadError(f"download of {url} stopped early ({done} of {total} bytes)")
        if md5 and md5_h.hexdigest() != md5:
            raise DownloadError(f"download of {url} is corrupt (MD5 {md5_h.hexdigest()}, expected {md5})")
        if sha256_prefix and not sha_h.hexdigest().startswith(sha256_prefix):
            raise DownloadError(f"download of {url} is corrupt (SHA-256 does not start with {sha256_prefix})")
        os.replace(tmp, dest)
        return dest
    finally:
        tmp.unlink(missing_ok=True)
