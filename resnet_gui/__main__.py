"""`resnet-gui` / `python -m resnet_gui`: no sub-command starts the desktop app."""
from __future__ import annotations

import sys


def main(argv: list[str] | None = None) -> int:
    from resnet_gui.startup import prepare_process

    prepare_process()
    from resnet_gui.cli import main as cli_main

    return cli_main(sys.argv[1:] if argv is None else argv)


if __name__ == "__main__":
    sys.exit(main())
