"""``python -m tuning``: see :mod:`tuning.cli`."""

from tuning.cli import run

if __name__ == "__main__":
    run()
