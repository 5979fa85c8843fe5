"""rl-baselines3-zoo with sb3-ext's algorithms: ``python -m sb3_ext.zoo train|enjoy ...`` (the extra ``zoo``).

:func:`register` adds every registry key to rl_zoo3's ``ALGOS`` and gives every key without a sampler of the zoo's
own a sampler of its sb3-ext search space, so the zoo's ``--optimize`` tunes it too; :mod:`sb3_ext.zoo.cli` runs the
zoo's own ``train`` and ``enjoy`` scripts after it. rl_zoo3 is imported only when they are called.
"""

from sb3_ext.zoo.cli import main, run
from sb3_ext.zoo.plugin import SearchSpaceSampler, register

__all__ = ["SearchSpaceSampler", "main", "register", "run"]
