"""The registry entries of the prioritized variants (``<upstream key>_per``)."""

from __future__ import annotations

from sb3_ext.per.contrib_specs import SPECS as CONTRIB_SPECS
from sb3_ext.per.sb3_specs import SPECS as SB3_SPECS

__all__ = ["SPECS"]

SPECS = (*SB3_SPECS, *CONTRIB_SPECS)
