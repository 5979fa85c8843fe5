"""``python -m sb3_ext``: see :mod:`sb3_ext.cli`."""

import sys

from sb3_ext.cli import main

if __name__ == "__main__":
    sys.exit(main())
