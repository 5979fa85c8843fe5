"""Heads on SB3's Q-network: its features extractor and hidden layers kept as a shared trunk, the output layer replaced.

The dueling Q-network (D3QN) and the categorical one (Rainbow) are both this surgery on SB3's ``QNetwork`` with streams
of (noisy) linear layers on top, combined by :func:`dueling_combination`.
"""

from __future__ import annotations

import torch as th
from gymnasium import spaces
from stable_baselines3.common.torch_layers import BaseFeaturesExtractor
from stable_baselines3.common.type_aliases import PyTorchObs
from stable_baselines3.dqn.policies import QNetwork
from torch import nn

__all__ = ["TrunkQNetwork", "dueling_combination"]


class TrunkQNetwork(QNetwork):
    """
    SB3's ``QNetwork`` without its output layer: the features extractor and the hidden layers ``net_arch`` (kept as
    :attr:`shared_net`) give the latent features of :meth:`latent`, of size :attr:`latent_dim`, on which a subclass
    builds its head. ``forward`` is the subclass's.

    :param observation_space: observation space
    :param action_space: action space (Discrete)
    :param features_extractor: the features extractor
    :param features_dim: number of features it outputs
    :param net_arch: sizes of the hidden layers
    :param activation_fn: activation function
    :param normalize_images: whether to divide images by 255
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
    ) -> None:
        super().__init__(
            observation_space, action_space, features_extractor, features_dim, net_arch, activation_fn, normalize_images
        )
        # QNetwork built hidden layers followed by one linear layer to the Q-values: keep the hidden layers
        self.shared_net = nn.Sequential(*list(self.q_net)[:-1])
        del self.q_net
        self.latent_dim = self.net_arch[-1] if self.net_arch else features_dim

    def latent(self, obs: PyTorchObs) -> th.Tensor:
        """
        :param obs: a batch of observations
        :return: their latent features, shape ``(batch, latent_dim)``
        """
        return self.shared_net(self.extract_features(obs, self.features_extractor))


def dueling_combination(value: th.Tensor, advantage: th.Tensor) -> th.Tensor:
    """
    The dueling combination (Wang et al. 2016, https://arxiv.org/abs/1511.06581, eq. 9), per sample (and per atom for
    distributions, Hessel et al. 2018, eq. 3): ``V + A - mean over actions of A``.

    :param value: ``V``, shape ``(batch, 1, ...)``
    :param advantage: ``A``, shape ``(batch, n_actions, ...)``, actions along dimension 1
    :return: shape ``(batch, n_actions, ...)``
    """
    return value + advantage - advantage.mean(dim=1, keepdim=True)
