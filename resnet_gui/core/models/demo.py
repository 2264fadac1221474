"""First run: install the bundled demo model into an empty registry and make it the default.

It is installed once per registry: registry.json remembers it, so a user who deletes every model does
not get the demo back at the next start."""
from __future__ import annotations

import shutil

from resnet_gui import resources

from ..atomic import atomic_write
from ..errors import CheckpointError
from .registry import Registry

DEMO_RESOURCE = "models/digits-resnet18_cifar.pth"
DEMO_NAME = "Demo - handwritten digits"


def demo_checkpoint_path():
    return resources.path(DEMO_RESOURCE)


def ensure_demo_model(registry: Registry) -> str | None:
    """When the registry never had the demo and holds no .pth at all, copy the demo model in as the
    default; return its name (None when nothing was installed).

    A registry that has any file (even a broken one) is left alone: the user has been here before.
    """
    if registry.demo_installed_before() or any(registry.root.glob("*.pth")):
        return None
    src = demo_checkpoint_path()
    if not src.is_file():
        return None
    dst = registry.path_for(DEMO_NAME)

    def copy(fh):
        with open(src, "rb") as s:
            shutil.copyfileobj(s, fh, 1 << 20)

    atomic_write(dst, copy)
    try:
        registry.set_default(DEMO_NAME)
    except Exception as exc:  # noqa: BLE001 - a damaged bundle must not break the app
        dst.unlink(missing_ok=True)
        raise CheckpointError(f"{src}: the bundled demo model is damaged ({exc})") from None
    registry.mark_demo_installed()
    return DEMO_NAME
