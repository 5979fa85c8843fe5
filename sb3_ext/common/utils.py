"""Small helpers shared by several sb3-ext modules: files written atomically."""

from __future__ import annotations

import os
from collections.abc import Callable
from pathlib import Path
from typing import Any

__all__ = ["atomic_save", "atomic_write_text"]


def atomic_save(save: Callable[[str], Any], path: str | Path) -> None:
    """
    Write a file atomically: ``save`` writes a temporary file beside ``path``, which then replaces ``path`` in one
    step, so a crash while writing leaves the previous file (or none) and never a half-written one.

    :param save: writes the file at the path it is given, e.g. ``model.save`` or ``vec_normalize.save``
    :param path: the final path; its suffix is kept on the temporary file (SB3 keeps a non-empty suffix as it is)
    """
    path = Path(path)
    tmp = path.with_name(f".{path.stem}.tmp{path.suffix}")
    try:
        save(str(tmp))
        os.replace(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)


def atomic_write_text(path: str | Path, text: str) -> None:
    """
    Write ``text`` to ``path`` atomically (see :func:`atomic_save`).

    :param path: the file
    :param text: its new content
    """
    atomic_save(lambda tmp: Path(tmp).write_text(text), path)
