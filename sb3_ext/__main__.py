"""``python -m sb3_ext``: see :mod:`sb3_ext.cli`."""

from sb3_ext.cli import run

if __name__ == "__main__":
    run()
