"""Rainbow's policies: a categorical (C51) Q-network with dueling streams and noisy layers, in SB3's DQN structure."""

from __future__ import annotations

from typing import Any

import torch as th
from gymnasium import spaces
from stable_baselines3.common.torch_layers import BaseFeaturesExtractor, CombinedExtractor, FlattenExtractor, NatureCNN
from stable_baselines3.common.type_aliases import PyTorchObs, Schedule
from stable_baselines3.dqn.policies import QNetwork
from torch import nn

from sb3_ext.common import torch_layers
from sb3_ext.common.heads import TrunkQNetwork, dueling_combination
from sb3_ext.common.torch_layers import linear_stack
from sb3_ext.d3qn.policies import DuelingDQNPolicy

__all__ = ["CategoricalQNetwork", "CnnPolicy", "MlpPolicy", "MultiInputPolicy", "RainbowPolicy"]


class CategoricalQNetwork(TrunkQNetwork):
    """
    Categorical Q-network (C51, Bellemare et al. 2017, https://arxiv.org/abs/1707.06887): for every action, a
    distribution of the return over ``n_atoms`` fixed atoms :attr:`support` ``z_1 = v_min < ... < z_N = v_max``.

    The observation goes through the features extractor and the shared hidden layers ``net_arch``; with ``dueling``
    (Wang et al. 2016, as in Rainbow) it splits into a value stream (``n_atoms`` logits) and an advantage stream
    (``n_actions * n_atoms`` logits), combined per sample and atom as ``V + A - mean over actions of A`` (Hessel et al.
    2018, eq. 3), then a softmax over the atoms gives the probabilities. Without dueling one stream gives the logits.
    With ``noisy`` the streams' layers are :class:`~sb3_ext.common.torch_layers.NoisyLinear` layers.

    ``forward`` returns the expected Q-values ``Q(s, a) = sum_i p_i(s, a) z_i``, so SB3's ``predict`` and
    ``evaluate_policy`` work as for DQN; :meth:`probabilities` returns the distributions.

    :param observation_space: observation space
    :param action_space: action space (Discrete)
    :param features_extractor: the features extractor
    :param features_dim: number of features it outputs
    :param net_arch: sizes of the hidden layers shared by the streams
    :param activation_fn: activation function
    :param normalize_images: whether to divide images by 255
    :param n_atoms: number of atoms, >= 2
    :param v_min: smallest atom
    :param v_max: largest atom, > ``v_min``
    :param dueling: value and advantage streams (True) or one stream of logits (False)
    :param dueling_net_arch: sizes of the hidden layers of each stream (default none: one layer each)
    :param noisy: noisy linear layers in the streams
    :param noisy_std: their initial noise scale, > 0
    """

    support: th.Tensor

    def __init__(
        self,
        observation_space: spaces.Space,
        action_space: spaces.Discrete,
        features_extractor: BaseFeaturesExtractor,
        features_dim: int,
        net_arch: list[int] | None = None,
        activation_fn: type[nn.Module] = nn.ReLU,
        normalize_images: bool = True,
        n_atoms: int = 51,
        v_min: float = -10.0,
        v_max: float = 10.0,
        dueling: bool = True,
        dueling_net_arch: list[int] | None = None,
        noisy: bool = True,
        noisy_std: float = 0.5,
    ) -> None:
        _check_support(n_atoms, v_min, v_max)
        super().__init__(
            observation_space, action_space, features_extractor, features_dim, net_arch, activation_fn, normalize_images
        )
        self.n_atoms, self.v_min, self.v_max = int(n_atoms), float(v_min), float(v_max)
        self.dueling, self.dueling_net_arch = dueling, list(dueling_net_arch or [])
        self.noisy, self.noisy_std = noisy, noisy_std
        n_actions = int(action_space.n)
        latent_dim = self.latent_dim
        arch = self.dueling_net_arch
        self.advantage_net = linear_stack(latent_dim, n_actions * self.n_atoms, arch, activation_fn, noisy, noisy_std)
        self.value_net = linear_stack(latent_dim, self.n_atoms, arch, activation_fn, noisy, noisy_std) if dueling else None
        self.register_buffer("support", th.linspace(self.v_min, self.v_max, self.n_atoms), persistent=False)

    def logits(self, obs: PyTorchObs) -> th.Tensor:
        """
        :param obs: a batch of observations
        :return: the logits of the return distributions, shape ``(batch, n_actions, n_atoms)``
        """
        latent = self.latent(obs)
        advantage = self.advantage_net(latent).view(-1, int(self.action_space.n), self.n_atoms)
        if self.value_net is None:
            return advantage
        return dueling_combination(self.value_net(latent).unsqueeze(1), advantage)

    def log_probabilities(self, obs: PyTorchObs) -> th.Tensor:
        """
        :param obs: a batch of observations
        :return: the log-probabilities of the atoms, shape ``(batch, n_actions, n_atoms)``
        """
        return th.log_softmax(self.logits(obs), dim=-1)

    def probabilities(self, obs: PyTorchObs) -> th.Tensor:
        """
        :param obs: a batch of observations
        :return: the return distribution of every action, shape ``(batch, n_actions, n_atoms)``; each row sums to 1
        """
        return th.softmax(self.logits(obs), dim=-1)

    def forward(self, obs: PyTorchObs) -> th.Tensor:
        """
        :param obs: a batch of observations
        :return: the expected Q-values ``sum_i p_i z_i``, shape ``(batch, n_actions)``
        """
        return self.probabilities(obs) @ self.support

    def reset_noise(self) -> None:
        """Draw new noise for the noisy layers (nothing to do without them)."""
        torch_layers.reset_noise(self)

    def _get_constructor_parameters(self) -> dict[str, Any]:
        data = super()._get_constructor_parameters()
        data.update(
            n_atoms=self.n_atoms,
            v_min=self.v_min,
            v_max=self.v_max,
            dueling=self.dueling,
            dueling_net_arch=self.dueling_net_arch,
            noisy=self.noisy,
            noisy_std=self.noisy_std,
        )
        return data


def _check_support(n_atoms: int, v_min: float, v_max: float) -> None:
    if isinstance(n_atoms, bool) or not isinstance(n_atoms, int) or n_atoms < 2:
        raise ValueError(f"n_atoms must be an integer >= 2 (a distribution over at least two returns), got {n_atoms!r}")
    if not v_min < v_max:
        raise ValueError(f"v_min must be < v_max (the support runs from v_min to v_max), got v_min={v_min}, v_max={v_max}")


class RainbowPolicy(DuelingDQNPolicy):
    """
    Rainbow's policy (Hessel et al. 2018, https://arxiv.org/abs/1710.02298): :class:`CategoricalQNetwork` online and
    target networks, dueling and noisy by default. With ``distributional=False`` it is D3QN's
    :class:`~sb3_ext.d3qn.policies.DuelingDQNPolicy` (expected Q-values, no atoms).

    :param observation_space: observation space
    :param action_space: action space (must be Discrete)
    :param lr_schedule: learning rate schedule
    :param net_arch: sizes of the hidden layers shared by the streams
    :param activation_fn: activation function
    :param features_extractor_class: features extractor class
    :param features_extractor_kwargs: its keyword arguments
    :param normalize_images: whether to divide images by 255
    :param optimizer_class: optimizer class
    :param optimizer_kwargs: its keyword arguments, the learning rate excepted
    :param dueling: value and advantage streams
    :param dueling_net_arch: sizes of the hidden layers of each stream (default none); needs ``dueling=True``
    :param noisy: noisy linear layers in the streams (new noise for every action chosen with ``deterministic=False``
        and every training batch; the mean weights with ``deterministic=True``)
    :param noisy_std: their initial noise scale, > 0
    :param distributional: categorical return distributions (False: expected Q-values, as D3QN)
    :param n_atoms: number of atoms, >= 2
    :param v_min: smallest atom
    :param v_max: largest atom, > ``v_min``
    """

    def __init__(
        self,
        observation_space: spaces.Space,
        action_space: spaces.Discrete,
        lr_schedule: Schedule,
        net_arch: list[int] | None = None,
        activation_fn: type[nn.Module] = nn.ReLU,
        features_extractor_class: type[BaseFeaturesExtractor] = FlattenExtractor,
        features_extractor_kwargs: dict[str, Any] | None = None,
        normalize_images: bool = True,
        optimizer_class: type[th.optim.Optimizer] = th.optim.Adam,
        optimizer_kwargs: dict[str, Any] | None = None,
        dueling: bool = True,
        dueling_net_arch: list[int] | None = None,
        noisy: bool = True,
        noisy_std: float = 0.5,
        distributional: bool = True,
        n_atoms: int = 51,
        v_min: float = -10.0,
        v_max: float = 10.0,
    ) -> None:
        _check_support(n_atoms, v_min, v_max)
        # Read by make_q_net, which DQNPolicy.__init__ calls.
        self.distributional, self.n_atoms, self.v_min, self.v_max = distributional, n_atoms, float(v_min), float(v_max)
        super().__init__(
            observation_space,
            action_space,
            lr_schedule,
            net_arch,
            activation_fn,
            features_extractor_class,
            features_extractor_kwargs,
            normalize_images,
            optimizer_class,
            optimizer_kwargs,
            dueling,
            dueling_net_arch,
            noisy,
            noisy_std,
        )

    def make_q_net(self) -> QNetwork:
        if not self.distributional:
            return super().make_q_net()
        # Separate features extractors for the online and target networks, as in SB3
        net_args = self._update_features_extractor(self.net_args, features_extractor=None)
        return CategoricalQNetwork(
            **net_args,
            n_atoms=self.n_atoms,
            v_min=self.v_min,
            v_max=self.v_max,
            dueling=self.dueling,
            dueling_net_arch=self.dueling_net_arch,
            noisy=self.noisy,
            noisy_std=self.noisy_std,
        ).to(self.device)

    def _get_constructor_parameters(self) -> dict[str, Any]:
        data = super()._get_constructor_parameters()
        data.update(distributional=self.distributional, n_atoms=self.n_atoms, v_min=self.v_min, v_max=self.v_max)
        return data


MlpPolicy = RainbowPolicy


class CnnPolicy(RainbowPolicy):
    """
    :class:`RainbowPolicy` for image observations (Nature CNN features by default); the same parameters.

    :param observation_space: observation space
    :param action_space: action space (must be Discrete)
    :param lr_schedule: learning rate schedule
    :param net_arch: sizes of the hidden layers shared by the streams
    :param activation_fn: activation function
    :param features_extractor_class: features extractor class
    :param kwargs: :class:`RainbowPolicy`'s other keyword arguments
    """

    def __init__(
        self,
        observation_space: spaces.Space,
        action_space: spaces.Discrete,
        lr_schedule: Schedule,
        net_arch: list[int] | None = None,
        activation_fn: type[nn.Module] = nn.ReLU,
        features_extractor_class: type[BaseFeaturesExtractor] = NatureCNN,
        **kwargs: Any,
    ) -> None:
        super().__init__(
            observation_space, action_space, lr_schedule, net_arch, activation_fn, features_extractor_class, **kwargs
        )


class MultiInputPolicy(RainbowPolicy):
    """
    :class:`RainbowPolicy` for ``Dict`` observations (SB3's combined features extractor by default); the same
    parameters.

    :param observation_space: observation space
    :param action_space: action space (must be Discrete)
    :param lr_schedule: learning rate schedule
    :param net_arch: sizes of the hidden layers shared by the streams
    :param activation_fn: activation function
    :param features_extractor_class: features extractor class
    :param kwargs: :class:`RainbowPolicy`'s other keyword arguments
    """

    def __init__(
        self,
        observation_space: spaces.Space,
        action_space: spaces.Discrete,
        lr_schedule: Schedule,
        net_arch: list[int] | None = None,
        activation_fn: type[nn.Module] = nn.ReLU,
        features_extractor_class: type[BaseFeaturesExtractor] = CombinedExtractor,
        **kwargs: Any,
    ) -> None:
        super().__init__(
            observation_space, action_space, lr_schedule, net_arch, activation_fn, features_extractor_class, **kwargs
        )
