"""``python -m contrast_sr`` is the same as the ``contrast-sr`` command."""

import sys

from contrast_sr.cli import main

if __name__ == "__main__":
    sys.exit(main())
