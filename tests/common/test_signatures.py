"""Constructor arguments followed through ``**kwargs`` up the class hierarchy."""

from __future__ import annotations

from typing import Any

from stable_baselines3 import PPO

from sb3_ext.common.signatures import init_defaults, init_parameters, init_type_hints
from sb3_ext.rainbow.policies import CnnPolicy, RainbowPolicy


class Base:
    def __init__(self, a: int, b: float = 1.0, *, c: str = "c") -> None:
        pass


class Forwards(Base):
    def __init__(self, d: bool = True, b: float = 2.0, **kwargs: Any) -> None:
        super().__init__(b=b, **kwargs)


class Inherits(Forwards):  # no __init__ of its own
    pass


class Closes(Forwards):
    def __init__(self, e: int = 0) -> None:
        super().__init__()


def test_kwargs_are_followed_up_the_mro_and_own_arguments_win() -> None:
    assert list(init_parameters(Forwards)) == ["d", "b", "a", "c"]
    assert init_defaults(Forwards) == {"d": True, "b": 2.0, "c": "c"}
    assert init_defaults(Inherits) == init_defaults(Forwards)
    assert list(init_parameters(Closes)) == ["e"]  # no **kwargs: the parents' arguments are not accepted
    assert init_type_hints(Forwards) == {"d": bool, "b": float, "a": int, "c": str}


def test_sb3_and_our_policies() -> None:
    # Rainbow's CnnPolicy forwards its other arguments to RainbowPolicy: noisy layers by default
    assert init_defaults(CnnPolicy)["noisy"] is True and init_defaults(RainbowPolicy)["noisy"] is True
    assert "n_steps" in init_parameters(PPO) and "self" not in init_parameters(PPO)
