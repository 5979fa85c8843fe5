"""The mechanics of prioritized replay, once, for every off-policy algorithm that prioritizes.

:class:`PrioritizedReplay` is a mixin put before an SB3 off-policy algorithm in a class's bases
(``class PrioritizedSAC(PrioritizedReplay, SAC)``): it chooses and configures the buffer (n-step returns, ``Dict``
observations), anneals ``beta`` to 1 over training, samples with importance-sampling weights, weights the loss, updates
the priorities with per-sample errors and logs ``train/beta``, ``train/mean_priority``, ``train/max_priority`` and the
mean error. An algorithm's ``train`` then differs from its upstream class's only where prioritization needs it: the
sample (:meth:`~PrioritizedReplay._prioritized_sample`), the loss (:meth:`~PrioritizedReplay._sample_loss`), the
priority update (:meth:`~PrioritizedReplay._update_priorities`) and the logs
(:meth:`~PrioritizedReplay._record_prioritized_logs`).
"""

from __future__ import annotations

import warnings
from collections.abc import Callable
from typing import Any, ClassVar

import numpy as np
import torch as th
from gymnasium import spaces
from stable_baselines3.common.buffers import NStepReplayBuffer, ReplayBuffer
from stable_baselines3.common.type_aliases import ReplayBufferSamples, Schedule
from stable_baselines3.common.utils import LinearSchedule
from torch.nn import functional as F

from sb3_ext.common.buffers import DictPrioritizedReplayBuffer, PrioritizedReplayBuffer
from sb3_ext.common.env_util import env_with_supported_actions
from sb3_ext.common.type_aliases import PrioritizedReplayBufferSamples

__all__ = ["PRIORITIZED_VARIANTS", "PrioritizedReplay"]

#: The prioritized variant of each upstream algorithm class that has one (``SAC -> PrioritizedSAC``), filled by the
#: variants' class definitions: what an error or warning about uniform replay names
PRIORITIZED_VARIANTS: dict[type, type] = {}

_LOSSES: dict[str, Callable[..., th.Tensor]] = {"mse": F.mse_loss, "huber": F.smooth_l1_loss}


class PrioritizedReplay:
    """
    Prioritized experience replay (Schaul et al. 2016, https://arxiv.org/abs/1511.05952) for an SB3 off-policy
    algorithm: put this mixin first in the bases, and call its methods from ``train``.

    The buffer is a :class:`~sb3_ext.common.buffers.PrioritizedReplayBuffer` (``DictPrioritizedReplayBuffer`` for
    ``Dict`` observations) unless ``replay_buffer_class`` names another; ``replay_buffer_kwargs`` give its
    ``prioritization`` (``"proportional"``, ``"rank"`` or ``"lap"``), ``alpha``, ``beta`` (annealed linearly to 1 over
    training) and ``eps``, and ``n_steps`` and ``gamma`` are the algorithm's. With ``"lap"`` (Fujimoto et al. 2020,
    https://arxiv.org/abs/2007.06049) there are no importance-sampling weights, and a mean-squared loss becomes the
    Huber loss.

    :cvar uniform_replay_allowed: whether a buffer that does not prioritize is accepted (uniform replay, as for D3QN's
        ablations); False: refused at construction
    :cvar upstream: the class this one is the prioritized variant of (``SAC``), if any: set by subclasses, it
        registers the pair in :data:`PRIORITIZED_VARIANTS`
    """

    uniform_replay_allowed: ClassVar[bool] = False
    upstream: ClassVar[type | None] = None
    #: the action spaces the algorithm takes (None: left to the upstream constructor): another one is refused at
    #: construction with a ``ValueError`` naming the space, where SB3's constructors fail an ``assert``
    action_space_types: ClassVar[tuple[type[spaces.Space], ...] | None] = None

    # (attributes of the SB3 algorithm this mixin is combined with)
    replay_buffer: ReplayBuffer | None
    replay_buffer_class: type[ReplayBuffer] | None
    replay_buffer_kwargs: dict[str, Any]
    observation_space: spaces.Space
    n_steps: int
    gamma: float
    logger: Any
    _current_progress_remaining: float
    _vec_normalize_env: Any
    beta_schedule: Schedule | None = None

    def __init__(self, policy: Any, env: Any, *args: Any, **kwargs: Any) -> None:
        """
        The upstream class's constructor, unchanged (its arguments, by position or name), after the action-space check
        of :attr:`action_space_types`.

        :param policy: the policy, as for the upstream class
        :param env: the environment, its gymnasium id, or None when loading
        :param args: the upstream class's other arguments, in its order
        :param kwargs: the upstream class's other arguments by name
        """
        if self.action_space_types is not None:
            env = env_with_supported_actions(type(self).__name__, env, self.action_space_types, kwargs.get("verbose", 0))
        super().__init__(policy, env, *args, **kwargs)  # type: ignore[call-arg]

    def __init_subclass__(cls, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        if cls.__dict__.get("upstream") is not None:
            PRIORITIZED_VARIANTS[cls.__dict__["upstream"]] = cls

    def _setup_model(self) -> None:
        self._configure_replay_buffer()
        with warnings.catch_warnings():
            # SB3 warns that n_steps is ignored with a custom buffer class: here it has been passed to the buffer.
            warnings.filterwarnings("ignore", message=r"`n_steps=\d+` is ignored", category=UserWarning)
            super()._setup_model()  # type: ignore[misc]
        buffer = self.prioritized_buffer
        self.beta_schedule = LinearSchedule(buffer.beta, 1.0, 1.0) if buffer is not None else None

    def _configure_replay_buffer(self) -> None:
        """Choose the buffer class and give n-step buffers the algorithm's ``n_steps`` and ``gamma``."""
        buffer_class = self.replay_buffer_class
        if buffer_class is None:
            dict_observations = isinstance(self.observation_space, spaces.Dict)
            buffer_class = DictPrioritizedReplayBuffer if dict_observations else PrioritizedReplayBuffer
        elif not issubclass(buffer_class, PrioritizedReplayBuffer) and not self.uniform_replay_allowed:
            raise ValueError(
                f"{type(self).__name__} prioritizes its replay: replay_buffer_class must be a PrioritizedReplayBuffer "
                f"(or DictPrioritizedReplayBuffer), not {buffer_class.__name__}"
                + (f"; for uniform replay use {self.upstream.__name__}" if self.upstream is not None else "")
            )
        kwargs = dict(self.replay_buffer_kwargs)
        if issubclass(buffer_class, NStepReplayBuffer):
            if self.n_steps == 1 and "n_steps" in kwargs:  # SB3's way to configure a custom n-step buffer
                self.n_steps = kwargs["n_steps"]
            for key, value in (("n_steps", self.n_steps), ("gamma", self.gamma)):
                if kwargs.setdefault(key, value) != value:
                    raise ValueError(
                        f"replay_buffer_kwargs {key}={kwargs[key]} differs from the algorithm's {key}={value}: "
                        f"set {key} on {type(self).__name__} only"
                    )
        elif self.n_steps > 1:
            raise ValueError(
                f"n_steps={self.n_steps} needs a buffer that computes n-step returns (PrioritizedReplayBuffer or "
                f"NStepReplayBuffer), not {buffer_class.__name__}"
            )
        self.replay_buffer_class = buffer_class
        self.replay_buffer_kwargs = kwargs

    @property
    def prioritized_buffer(self) -> PrioritizedReplayBuffer | None:
        """The replay buffer when it prioritizes, else None (uniform replay)."""
        return self.replay_buffer if isinstance(self.replay_buffer, PrioritizedReplayBuffer) else None

    def _start_prioritized_round(self) -> None:
        """Call at the start of ``train``: ``beta`` for the current progress, and a new round of logged errors."""
        buffer = self.prioritized_buffer
        if buffer is not None and self.beta_schedule is not None:
            buffer.set_beta(self.beta_schedule(self._current_progress_remaining))
        self._round_errors: list[float] = []

    def _prioritized_sample(self, batch_size: int) -> tuple[ReplayBufferSamples, th.Tensor | None]:
        """
        :param batch_size: number of transitions
        :return: a batch (by priority, with the VecNormalize statistics applied) and its importance-sampling weights,
            shape ``(batch, 1)``: None for uniform replay and for LAP, whose loss is not weighted
        """
        assert self.replay_buffer is not None, "call _setup_model() first"
        samples = self.replay_buffer.sample(batch_size, env=self._vec_normalize_env)
        if not isinstance(samples, PrioritizedReplayBufferSamples) or self._lap:
            return samples, None
        return samples, samples.weights

    @property
    def _lap(self) -> bool:
        buffer = self.prioritized_buffer
        return buffer is not None and buffer.prioritization == "lap"

    def _sample_loss(self, current: th.Tensor, target: th.Tensor, weights: th.Tensor | None, loss: str = "mse") -> th.Tensor:
        """
        The loss of a batch where the upstream algorithm takes ``F.mse_loss`` (``loss="mse"``) or
        ``F.smooth_l1_loss`` (``"huber"``) of ``current`` and ``target``: each sample's loss weighted by its
        importance-sampling weight (``weights``, shape ``(batch, 1)``), then the mean; with LAP, the Huber loss
        unweighted (Fujimoto et al. 2020: the mean-squared loss with LAP's sampling is the Huber loss's expectation).

        :param current: predictions, shape ``(batch, ...)``
        :param target: their targets, same shape
        :param weights: importance-sampling weights, or None (uniform replay, LAP)
        :param loss: the upstream loss, ``"mse"`` or ``"huber"``
        :return: the loss, a scalar
        """
        function = F.smooth_l1_loss if self._lap else _LOSSES[loss]
        if weights is None:
            return function(current, target)
        elementwise = function(current, target, reduction="none")
        return (weights.reshape(-1, *([1] * (elementwise.dim() - 1))) * elementwise).mean()

    def _update_priorities(self, samples: ReplayBufferSamples, errors: th.Tensor | np.ndarray) -> None:
        """
        Give the sampled transitions new priorities from their per-sample errors (TD errors, or per-sample losses),
        from the same forward pass as the loss; the mean absolute error is logged by
        :meth:`_record_prioritized_logs`.

        :param samples: the batch, as :meth:`_prioritized_sample` returned it
        :param errors: one error per sample, shape ``(batch,)`` or ``(batch, 1)``
        """
        if isinstance(errors, th.Tensor):
            errors = errors.detach().cpu().numpy()
        errors = np.abs(errors.reshape(-1))
        self._round_errors.append(float(errors.mean()))
        buffer = self.prioritized_buffer
        if buffer is not None and isinstance(samples, PrioritizedReplayBufferSamples):
            buffer.update_priorities(samples.indices, errors)

    def _record_prioritized_logs(self, error_name: str = "td_error") -> None:
        """
        Call at the end of ``train``: the round's mean absolute error as ``train/<error_name>``, and for prioritized
        replay ``train/beta``, ``train/mean_priority`` (over the buffer) and ``train/max_priority``.

        :param error_name: what the per-sample errors are (``td_error``, ``cross_entropy``, ``quantile_loss``)
        """
        if self._round_errors:
            self.logger.record(f"train/{error_name}", float(np.mean(self._round_errors)))
        buffer = self.prioritized_buffer
        if buffer is not None:
            self.logger.record("train/beta", buffer.beta)
            self.logger.record("train/mean_priority", buffer.mean_priority())
            self.logger.record("train/max_priority", buffer.max_priority)
