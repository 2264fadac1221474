"""Entry script of the PyInstaller build. freeze_support() runs before anything heavy is imported:
spawned DataLoader worker processes re-run this executable and must be diverted at once."""
import multiprocessing

multiprocessing.freeze_support()

import sys  # noqa: E402

from resnet_gui.__main__ import main  # noqa: E402

if __name__ == "__main__":
    sys.exit(main())
