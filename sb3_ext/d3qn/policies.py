"""Dueling Q-network policies (https://arxiv.org/abs/1511.06581): drop-in replacements of SB3's DQN policies."""

from __future__ import annotations

from typing import Any

import torch as th
from gymnasium import spaces
from stable_baselines3.common.torch_layers import BaseFeaturesExtractor, CombinedExtractor, FlattenExtractor, NatureCNN
from stable_baselines3.common.type_aliases import PyTorchObs, Schedule
from stable_baselines3.dqn.policies import DQNPolicy, QNetwork
from torch import nn
from torch.nn import functional as F

from sb3_ext.common import torch_layers
from sb3_ext.common.heads import TrunkQNetwork, dueling_combination
from sb3_ext.common.torch_layers import NoisyLinear, linear_stack, noisy_sampling

__all__ = ["CnnPolicy", "DuelingDQNPolicy", "DuelingQNetwork", "MlpPolicy", "MultiInputPolicy", "NoisyQNetwork"]


class NoisyQNetwork(QNetwork):
    """
    SB3's Q-network with its output layer a :class:`~sb3_ext.common.torch_layers.NoisyLinear` layer (Fortunato et al.
    2018, https://arxiv.org/abs/1706.10295): the non-dueling network of ``noisy=True``.

    :param observation_space: observation space
    :param action_space: action space (Discrete)
    :param features_extractor: the features extractor
    :param features_dim: number of features it outputs
    :param net_arch: sizes of the hidden layers
    :param activation_fn: activation function
    :param normalize_images: whether to divide images by 255
    :param noisy_std: initial noise scale of the noisy layer, > 0
    """

    def __init__(
        self,
        observation_space: spaces.Space,
        action_space: spaces.Discrete,
        features_extractor: BaseFeaturesExtractor,
        features_dim: int,
        net_arch: list[int] | None = None,
        activation_fn: type[nn.Module] = nn.ReLU,
        normalize_images: bool = True,
        noisy_std: float = 0.5,
    ) -> None:
        super().__init__(
            observation_space, action_space, features_extractor, features_dim, net_arch, activation_fn, normalize_images
        )
        self.noisy_std = noisy_std
        last = self.q_net[-1]
        assert isinstance(last, nn.Linear)
        self.q_net[-1] = NoisyLinear(last.in_features, last.out_features, noisy_std)

    def reset_noise(self) -> None:
        """Draw new noise for the noisy layer."""
        torch_layers.reset_noise(self)

    def _get_constructor_parameters(self) -> dict[str, Any]:
        return {**super()._get_constructor_parameters(), "noisy_std": self.noisy_std}


class DuelingQNetwork(TrunkQNetwork):
    """
    Dueling Q-network (Wang et al. 2016, https://arxiv.org/abs/1511.06581).

    The observation goes through the features extractor and the shared hidden layers ``net_arch``, then splits into a
    value stream ``V(s)`` and an advantage stream ``A(s, a)``, combined per sample as
    ``Q(s, a) = V(s) + A(s, a) - mean_a' A(s, a')``.

    Without ``dueling_net_arch`` each stream is one linear layer; both are then kept as the rows of one layer
    ``head`` (row 0: value, rows 1..n: advantages), and since the combination is linear, ``Q = (C W) h + C b`` with
    ``C = [1 | I - 1/n]``: the same function of the same parameters (so the same gradients) in one matrix product.

    With ``noisy=True`` the layers of both streams are :class:`~sb3_ext.common.torch_layers.NoisyLinear` layers
    (Fortunato et al. 2018, as in Rainbow); the shared layers stay plain linear layers.

    :param observation_space: observation space
    :param action_space: action space (Discrete)
    :param features_extractor: the features extractor
    :param features_dim: number of features it outputs
    :param net_arch: sizes of the hidden layers shared by both streams
    :param activation_fn: activation function
    :param normalize_images: whether to divide images by 255
    :param dueling_net_arch: sizes of the hidden layers of each stream (default none: each stream is one linear layer)
    :param noisy: noisy linear layers in the streams
    :param noisy_std: their initial noise scale, > 0
    """

    combination: th.Tensor

    def __init__(
        self,
        observation_space: spaces.Space,
        action_space: spaces.Discrete,
        features_extractor: BaseFeaturesExtractor,
        features_dim: int,
        net_arch: list[int] | None = None,
        activation_fn: type[nn.Module] = nn.ReLU,
        normalize_images: bool = True,
        dueling_net_arch: list[int] | None = None,
        noisy: bool = False,
        noisy_std: float = 0.5,
    ) -> None:
        super().__init__(
            observation_space, action_space, features_extractor, features_dim, net_arch, activation_fn, normalize_images
        )
        self.dueling_net_arch = list(dueling_net_arch or [])
        self.noisy, self.noisy_std = noisy, noisy_std
        n_actions = int(action_space.n)
        latent_dim = self.latent_dim
        self.head: nn.Linear | NoisyLinear | None = None
        if self.dueling_net_arch:
            self.value_net = linear_stack(latent_dim, 1, self.dueling_net_arch, activation_fn, noisy, noisy_std)
            self.advantage_net = linear_stack(latent_dim, n_actions, self.dueling_net_arch, activation_fn, noisy, noisy_std)
        else:
            self.head = NoisyLinear(latent_dim, 1 + n_actions, noisy_std) if noisy else nn.Linear(latent_dim, 1 + n_actions)
        # Q = combination @ [V; A]: V + A_a - mean(A)
        combination = th.cat([th.ones(n_actions, 1), th.eye(n_actions) - 1.0 / n_actions], dim=1)
        self.register_buffer("combination", combination, persistent=False)

    def streams(self, obs: PyTorchObs) -> tuple[th.Tensor, th.Tensor]:
        """
        :param obs: a batch of observations
        :return: the values ``V(s)``, shape ``(batch, 1)``, and the advantages ``A(s, a)``, shape ``(batch, n_actions)``
        """
        latent = self.latent(obs)
        if self.head is not None:
            out = self.head(latent)
            return out[:, :1], out[:, 1:]
        return self.value_net(latent), self.advantage_net(latent)

    def forward(self, obs: PyTorchObs) -> th.Tensor:
        """
        :param obs: a batch of observations
        :return: Q-values ``V(s) + A(s, a) - mean_a' A(s, a')``, shape ``(batch, n_actions)``
        """
        if self.head is not None:
            return F.linear(self.latent(obs), self.combination @ self.head.weight, self.combination @ self.head.bias)
        return dueling_combination(*self.streams(obs))

    def reset_noise(self) -> None:
        """Draw new noise for the noisy layers (nothing to do without them)."""
        torch_layers.reset_noise(self)

    def _get_constructor_parameters(self) -> dict[str, Any]:
        data = super()._get_constructor_parameters()
        data.update(dueling_net_arch=self.dueling_net_arch, noisy=self.noisy, noisy_std=self.noisy_std)
        return data


class DuelingDQNPolicy(DQNPolicy):
    """
    DQN policy with a dueling Q-network (Wang et al. 2016, https://arxiv.org/abs/1511.06581), for :class:`~sb3_ext.D3QN`
    or SB3's ``DQN``. With ``dueling=False`` it builds SB3's plain ``QNetwork``.

    :param observation_space: observation space
    :param action_space: action space (must be Discrete)
    :param lr_schedule: learning rate schedule
    :param net_arch: sizes of the hidden layers (shared by both streams when dueling)
    :param activation_fn: activation function
    :param features_extractor_class: features extractor class
    :param features_extractor_kwargs: its keyword arguments
    :param normalize_images: whether to divide images by 255
    :param optimizer_class: optimizer class
    :param optimizer_kwargs: its keyword arguments, the learning rate excepted
    :param dueling: dueling value/advantage streams (True) or SB3's plain Q-network (False)
    :param dueling_net_arch: sizes of the hidden layers of each stream (default none); needs ``dueling=True``
    :param noisy: noisy linear layers (Fortunato et al. 2018) in the streams (the output layer without dueling): the
        network explores by itself. New noise is drawn for every action chosen with ``deterministic=False`` (in
        rollouts) and, by the algorithm, for every training batch; ``deterministic=True`` acts with the mean weights
    :param noisy_std: initial noise scale of the noisy layers, > 0
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
        noisy: bool = False,
        noisy_std: float = 0.5,
    ) -> None:
        if not isinstance(action_space, spaces.Discrete):
            raise ValueError(f"a dueling Q-network needs a Discrete action space (one Q-value per action), got {action_space}")
        if dueling_net_arch and not dueling:
            raise ValueError("dueling_net_arch sets the layers of the dueling streams: it needs dueling=True")
        if not noisy_std > 0:
            raise ValueError(f"noisy_std must be > 0 (the initial scale of the noise), got {noisy_std}")
        # Read by make_q_net, which DQNPolicy.__init__ calls.
        self.dueling = dueling
        self.dueling_net_arch = list(dueling_net_arch or [])
        self.noisy, self.noisy_std = bool(noisy), float(noisy_std)
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
        )

    def make_q_net(self) -> QNetwork:
        # Separate features extractors for the online and target networks, as in SB3
        net_args = self._update_features_extractor(self.net_args, features_extractor=None)
        if self.dueling:
            net = DuelingQNetwork(
                **net_args, dueling_net_arch=self.dueling_net_arch, noisy=self.noisy, noisy_std=self.noisy_std
            )
            return net.to(self.device)
        if self.noisy:
            return NoisyQNetwork(**net_args, noisy_std=self.noisy_std).to(self.device)
        return QNetwork(**net_args).to(self.device)

    def _predict(self, obs: PyTorchObs, deterministic: bool = True) -> th.Tensor:
        """
        Greedy actions; with noisy layers and ``deterministic=False``, greedy for a new noise sample (the noisy
        network's exploration), else for the mean weights.
        """
        if self.noisy and not deterministic:
            with noisy_sampling(self.q_net):
                self.q_net.reset_noise()  # type: ignore[operator]
                return self.q_net._predict(obs, deterministic=deterministic)
        return self.q_net._predict(obs, deterministic=deterministic)

    def _get_constructor_parameters(self) -> dict[str, Any]:
        data = super()._get_constructor_parameters()
        data.update(dueling=self.dueling, dueling_net_arch=self.dueling_net_arch, noisy=self.noisy, noisy_std=self.noisy_std)
        return data


MlpPolicy = DuelingDQNPolicy


class CnnPolicy(DuelingDQNPolicy):
    """
    :class:`DuelingDQNPolicy` for image observations (Nature CNN features by default).

    :param observation_space: observation space
    :param action_space: action space (must be Discrete)
    :param lr_schedule: learning rate schedule
    :param net_arch: sizes of the hidden layers after the CNN (shared by both streams when dueling)
    :param activation_fn: activation function
    :param features_extractor_class: features extractor class
    :param features_extractor_kwargs: its keyword arguments
    :param normalize_images: whether to divide images by 255
    :param optimizer_class: optimizer class
    :param optimizer_kwargs: its keyword arguments, the learning rate excepted
    :param dueling: dueling value/advantage streams (True) or SB3's plain Q-network (False)
    :param dueling_net_arch: sizes of the hidden layers of each stream (default none); needs ``dueling=True``
    :param noisy: noisy linear layers in the streams (see :class:`DuelingDQNPolicy`)
    :param noisy_std: their initial noise scale, > 0
    """

    def __init__(
        self,
        observation_space: spaces.Space,
        action_space: spaces.Discrete,
        lr_schedule: Schedule,
        net_arch: list[int] | None = None,
        activation_fn: type[nn.Module] = nn.ReLU,
        features_extractor_class: type[BaseFeaturesExtractor] = NatureCNN,
        features_extractor_kwargs: dict[str, Any] | None = None,
        normalize_images: bool = True,
        optimizer_class: type[th.optim.Optimizer] = th.optim.Adam,
        optimizer_kwargs: dict[str, Any] | None = None,
        dueling: bool = True,
        dueling_net_arch: list[int] | None = None,
        noisy: bool = False,
        noisy_std: float = 0.5,
    ) -> None:
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


class MultiInputPolicy(DuelingDQNPolicy):
    """
    :class:`DuelingDQNPolicy` for ``Dict`` observations (SB3's combined features extractor by default).

    :param observation_space: observation space (Dict)
    :param action_space: action space (must be Discrete)
    :param lr_schedule: learning rate schedule
    :param net_arch: sizes of the hidden layers (shared by both streams when dueling)
    :param activation_fn: activation function
    :param features_extractor_class: features extractor class
    :param features_extractor_kwargs: its keyword arguments
    :param normalize_images: whether to divide images by 255
    :param optimizer_class: optimizer class
    :param optimizer_kwargs: its keyword arguments, the learning rate excepted
    :param dueling: dueling value/advantage streams (True) or SB3's plain Q-network (False)
    :param dueling_net_arch: sizes of the hidden layers of each stream (default none); needs ``dueling=True``
    :param noisy: noisy linear layers in the streams (see :class:`DuelingDQNPolicy`)
    :param noisy_std: their initial noise scale, > 0
    """

    def __init__(
        self,
        observation_space: spaces.Dict,
        action_space: spaces.Discrete,
        lr_schedule: Schedule,
        net_arch: list[int] | None = None,
        activation_fn: type[nn.Module] = nn.ReLU,
        features_extractor_class: type[BaseFeaturesExtractor] = CombinedExtractor,
        features_extractor_kwargs: dict[str, Any] | None = None,
        normalize_images: bool = True,
        optimizer_class: type[th.optim.Optimizer] = th.optim.Adam,
        optimizer_kwargs: dict[str, Any] | None = None,
        dueling: bool = True,
        dueling_net_arch: list[int] | None = None,
        noisy: bool = False,
        noisy_std: float = 0.5,
    ) -> None:
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
