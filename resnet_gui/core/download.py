"""Downloads for the few things the app fetches (CIFAR-10, ImageNet weights).

Written to a temporary name in the destination folder and moved into place only when complete and
verified, so an interrupted download never leaves a file that looks finished.
"""
from __future__ import annotations

import hashlib
import os
import tempfile
import urllib.error
import urllib.request
from pathlib import Path
from typing import Callable

from .errors import ResnetGuiError

ProgressFn = Callable[[int, int], None]  # (bytes done, bytes total or 0 when unknown)
CancelFn = Callable[[], bool]  # returns True when the user asked to stop


class DownloadError(ResnetGuiError):
    pass


class DownloadCancelled(DownloadError):
    pass


def download(
    url: str,
    dest: Path,
    *,
    md5: str | None = None,
    sha256_prefix: str | None = None,
    progress: ProgressFn | None = None,
    cancelled: CancelFn | None = None,
    timeout: float = 30.0,
    chunk: int = 1 << 20,
) -> Path:
    """Fetch `url` into `dest`; verify md5 or a sha256 prefix; raise DownloadError with a reason."""
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
                    if cancelled is not None and cancelled():
                        raise DownloadCancelled(f"download of {url} cancelled")
                    block = resp.read(chunk)
                    if not block:
                        break
                    out.write(block)
                    md5_h.update(block)
                    sha_h.update(block)
                    done += len(block)
                    if progress is not None:
                        progress(done, total)
                out.flush()
                os.fsync(out.fileno())
        except DownloadError:
            raise
        except (urllib.error.URLError, OSError, ValueError) as exc:
            reason = getattr(exc, "reason", None) or exc
            raise DownloadError(f"could not download {url}: {reason}") from None
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
