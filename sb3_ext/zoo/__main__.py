"""``python -m sb3_ext.zoo``: see :mod:`sb3_ext.zoo.cli`."""

from sb3_ext.zoo.cli import run

if __name__ == "__main__":
    run()
