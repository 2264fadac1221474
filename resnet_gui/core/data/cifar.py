"""CIFAR-10: find a local copy (folder or tarball), download it when asked, load it as uint8 tensors."""
from __future__ import annotations

import os
import shutil
import tarfile
import tempfile
from pathlib import Path

import torch

from ..download import download
from ..errors import DatasetError, DownloadError, Remedy
from ..paths import datasets_dir
from ..progress import NO_PROGRESS, Progress
from .arrays import ArrayData

CIFAR_FOLDER = "cifar-10-batches-py"
CIFAR_TARBALL = "cifar-10-python.tar.gz"


def default_cifar_root() -> Path:
    return datasets_dir() / "cifar10"


def find_cifar(location: Path) -> tuple[Path | None, Path | None]:
    """(folder holding cifar-10-batches-py, tarball) found at `location`."""
    if location.is_file() and location.name.endswith((".tar.gz", ".tgz")):
        if (location.parent / CIFAR_FOLDER).is_dir():  # extracted before
            return location.parent, None
        return None, location
    if location.name == CIFAR_FOLDER and location.is_dir():
        return location.parent, None
    if (location / CIFAR_FOLDER).is_dir():
        return location, None
    if (location / CIFAR_TARBALL).is_file():
        return None, location / CIFAR_TARBALL
    return None, None


def _safe_extract(tarball: Path, dest: Path) -> None:
    """Extract the CIFAR tarball after checking its MD5 (only the official archive is accepted)."""
    from torchvision.datasets import CIFAR10
    from torchvision.datasets.utils import check_integrity

    if not check_integrity(str(tarball), CIFAR10.tgz_md5):
        raise DatasetError(f"{tarball}: not the official CIFAR-10 archive (MD5 mismatch); download it again")
    dest.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=".cifar-extract-", dir=dest))
    try:  # extract aside, then move into place: an interrupted extraction never looks complete
        with tarfile.open(tarball, "r:gz") as tar:
            tar.extractall(staging, filter="data")
        if not (staging / CIFAR_FOLDER).is_dir():
            raise DatasetError(f"{tarball}: the archive holds no {CIFAR_FOLDER} folder")
        os.replace(staging / CIFAR_FOLDER, dest / CIFAR_FOLDER)
    except (tarfile.TarError, OSError, EOFError) as exc:
        raise DatasetError(f"{tarball}: cannot extract ({exc})") from None
    finally:
        shutil.rmtree(staging, ignore_errors=True)


def cifar_missing_message(root: Path) -> str:
    return (f"CIFAR-10 was not found in {root}. Put {CIFAR_TARBALL} (from "
            f"https://www.cs.toronto.edu/~kriz/cifar-10-python.tar.gz) or the extracted {CIFAR_FOLDER} folder "
            "there")


def _writable_folder(folder: Path) -> bool:
    try:
        folder.mkdir(parents=True, exist_ok=True)
    except OSError:
        return False
    return os.access(folder, os.W_OK)


def cifar_candidates(data: os.PathLike | str | None) -> list[Path]:
    """Where CIFAR-10 is looked for: the chosen location first, then the app's data folder."""
    chosen = Path(data).expanduser() if data else None
    out = [chosen] if chosen is not None else []
    if default_cifar_root() not in out:
        out.append(default_cifar_root())
    return out


def find_cifar10(data: os.PathLike | str | None) -> tuple[Path | None, Path | None]:
    """(folder holding cifar-10-batches-py, tarball) at the chosen location or in the app's data folder."""
    tarball = None
    for location in cifar_candidates(data):
        base, tar = find_cifar(location)
        if base is not None:
            return base, None
        tarball = tarball or tar
    return None, tarball


def locate_cifar10(
    data: os.PathLike | str | None = None,
    *,
    download_if_missing: bool = False,
    progress: Progress = NO_PROGRESS,
) -> Path:
    """The folder that holds cifar-10-batches-py: a local copy first, then a tarball, then a download.

    A download or an extraction goes to the chosen location when it can be written, else to the app's
    data folder; both are searched next time, so nothing is fetched twice."""
    root = Path(data).expanduser() if data else default_cifar_root()
    base, tarball = find_cifar10(data)
    if base is not None:
        return base
    if tarball is not None:
        target = tarball.parent if _writable_folder(tarball.parent) else default_cifar_root()
        progress.update("Extracting CIFAR-10", 0, 1)
        _safe_extract(tarball, target)
        return target
    if not download_if_missing:
        raise DatasetError(cifar_missing_message(root), remedy=Remedy("cifar10"))
    from torchvision.datasets import CIFAR10

    target = root if _writable_folder(root) else default_cifar_root()
    try:
        download(CIFAR10.url, target / CIFAR_TARBALL, md5=CIFAR10.tgz_md5, timeout=30, progress=progress,
                 what="Downloading CIFAR-10")
    except DownloadError as exc:
        raise DatasetError(f"{str(exc)[:1].upper()}{str(exc)[1:]}. {cifar_missing_message(root)}",
                           remedy=Remedy("cifar10_location")) from None
    _safe_extract(target / CIFAR_TARBALL, target)
    return target


def load_cifar10(base: Path) -> tuple[ArrayData, ArrayData, list[str]]:
    """Train and test splits from a folder holding cifar-10-batches-py (torchvision checks the MD5s)."""
    from torchvision.datasets import CIFAR10

    try:
        train = CIFAR10(str(base), train=True, download=False)
        test = CIFAR10(str(base), train=False, download=False)
    except RuntimeError as exc:
        raise DatasetError(f"CIFAR-10 in {base / CIFAR_FOLDER} is incomplete or corrupted ({exc}); delete that "
                           "folder and download or extract it again") from None
    except (OSError, EOFError, ValueError, KeyError) as exc:
        raise DatasetError(f"CIFAR-10 in {base / CIFAR_FOLDER} cannot be read ({exc})") from None

    def to_tensor(ds) -> ArrayData:
        images = torch.from_numpy(ds.data).permute(0, 3, 1, 2).contiguous()
        return ArrayData(images, torch.tensor(ds.targets, dtype=torch.long))

    return to_tensor(train), to_tensor(test), list(train.classes)
