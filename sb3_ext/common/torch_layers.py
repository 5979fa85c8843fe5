"""Network layers that SB3 does not ship: noisy linear layers (Fortunato et al. 2018) and the helpers around them."""

from __future__ import annotations

import itertools
import math
from collections.abc import Iterator
from contextlib import contextmanager

import torch as th
from gymnasium import spaces
from stable_baselines3.common.torch_layers import BaseFeaturesExtractor
from torch import nn
from torch.nn import functional as F

__all__ = ["MinAtarCNN", "NoisyLinear", "linear_stack", "mean_noise_std", "noisy_sampling", "reset_noise"]


class MinAtarCNN(BaseFeaturesExtractor):
    """
    The small CNN of MinAtar's baselines (Young & Tian 2019, https://arxiv.org/abs/1903.03176) for its 10x10xC
    boolean observations (channels last): one 3x3 convolution of ``n_filters`` filters (stride 1), ReLU, then a linear
    layer to ``features_dim`` features, ReLU. Use it as ``policy_kwargs=dict(features_extractor_class=MinAtarCNN)``.

    :param observation_space: a ``Box`` of shape (height, width, channels), e.g. MinAtar's ``(10, 10, C)``
    :param features_dim: number of features
    :param n_filters: number of convolution filters
    """

    def __init__(self, observation_space: spaces.Box, features_dim: int = 128, n_filters: int = 16) -> None:
        if len(observation_space.shape) != 3:
            raise ValueError(f"MinAtarCNN needs (height, width, channels) observations, got shape {observation_space.shape}")
        super().__init__(observation_space, features_dim)
        height, width, channels = observation_space.shape
        self.conv = nn.Sequential(nn.Conv2d(channels, n_filters, kernel_size=3, stride=1), nn.ReLU(), nn.Flatten())
        self.linear = nn.Sequential(nn.Linear(n_filters * (height - 2) * (width - 2), features_dim), nn.ReLU())

    def forward(self, observations: th.Tensor) -> th.Tensor:
        return self.linear(self.conv(observations.float().permute(0, 3, 1, 2)))


class NoisyLinear(nn.Module):
    """
    Linear layer with factorised Gaussian noise (Fortunato et al. 2018, https://arxiv.org/abs/1706.10295), as used by
    Rainbow (Hessel et al. 2018)::

        y = (mu_w + sigma_w * eps_w) x + mu_b + sigma_b * eps_b,   eps_w = f(eps_out) f(eps_in)^T,   eps_b = f(eps_out)

    with ``eps_in ~ N(0, I_in)``, ``eps_out ~ N(0, I_out)`` and ``f(x) = sign(x) sqrt(|x|)``: ``in + out`` draws per
    noise sample instead of ``in * out``. Initialisation: ``mu ~ U(-1/sqrt(in), 1/sqrt(in))``,
    ``sigma = std_init / sqrt(in)``.

    The noise is drawn by :meth:`reset_noise` and held until the next call. It is used in training mode, and in
    evaluation mode only inside :func:`noisy_sampling`; otherwise (evaluation, ``deterministic=True``) the layer is the
    linear layer of the mean weights. :attr:`weight` and :attr:`bias` are the weights in effect; ``forward`` computes
    the same function without forming the noisy weights, ``mu_w x + mu_b + eps_out * (sigma_w (eps_in * x) + sigma_b)``.

    :param in_features: size of each input sample
    :param out_features: size of each output sample
    :param std_init: initial ``sigma * sqrt(in_features)``, > 0
    """

    eps: th.Tensor

    def __init__(self, in_features: int, out_features: int, std_init: float = 0.5) -> None:
        super().__init__()
        if not std_init > 0:
            raise ValueError(f"noisy_std must be > 0 (the initial scale of the noise), got {std_init}")
        self.in_features, self.out_features, self.std_init = in_features, out_features, float(std_init)
        self.weight_mu = nn.Parameter(th.empty(out_features, in_features))
        self.weight_sigma = nn.Parameter(th.empty(out_features, in_features))
        self.bias_mu = nn.Parameter(th.empty(out_features))
        self.bias_sigma = nn.Parameter(th.empty(out_features))
        # The current noise sample, eps_in then eps_out in one buffer (not saved: a new one is drawn before it is used)
        self.register_buffer("eps", th.zeros(in_features + out_features), persistent=False)
        self.sampling = False  # use the noise in evaluation mode too (see noisy_sampling)
        self.reset_parameters()
        self.reset_noise()

    def reset_parameters(self) -> None:
        """Fortunato et al.'s initialisation for factorised noise (section 3.2)."""
        bound = 1.0 / math.sqrt(self.in_features)
        nn.init.uniform_(self.weight_mu, -bound, bound)
        nn.init.uniform_(self.bias_mu, -bound, bound)
        nn.init.constant_(self.weight_sigma, self.std_init * bound)
        nn.init.constant_(self.bias_sigma, self.std_init * bound)

    @property
    def eps_in(self) -> th.Tensor:
        """The input noise ``f(eps_in)``, shape ``(in_features,)``."""
        return self.eps[: self.in_features]

    @property
    def eps_out(self) -> th.Tensor:
        """The output noise ``f(eps_out)``, shape ``(out_features,)``."""
        return self.eps[self.in_features :]

    @th.no_grad()
    def reset_noise(self) -> None:
        """Draw a new noise sample: ``f(x) = sign(x) sqrt(|x|)`` of standard normal ``eps_in`` and ``eps_out`` (in place)."""
        eps = th.randn(self.eps.shape, device=self.eps.device, out=self.eps)
        sign = eps.sign()
        eps.abs_().sqrt_().mul_(sign)

    @property
    def noisy(self) -> bool:
        """Whether the noise is in effect now: training mode, or evaluation mode inside :func:`noisy_sampling`."""
        return self.training or self.sampling

    @property
    def weight(self) -> th.Tensor:
        """The weights in effect: ``mu_w + sigma_w * eps_w`` when :attr:`noisy`, else ``mu_w``."""
        if self.noisy:
            return self.weight_mu + self.weight_sigma * th.outer(self.eps_out, self.eps_in)
        return self.weight_mu

    @property
    def bias(self) -> th.Tensor:
        """The bias in effect: ``mu_b + sigma_b * eps_b`` when :attr:`noisy`, else ``mu_b``."""
        return self.bias_mu + self.bias_sigma * self.eps_out if self.noisy else self.bias_mu

    def forward(self, x: th.Tensor) -> th.Tensor:
        if not self.noisy:
            return F.linear(x, self.weight_mu, self.bias_mu)
        # (mu_w + sigma_w * eps_out eps_in^T) x = mu_w x + eps_out * (sigma_w (eps_in * x)): the noisy weights are
        # never formed, two matrix products on the batch instead
        noise = F.linear(x * self.eps_in, self.weight_sigma, self.bias_sigma) * self.eps_out
        return F.linear(x, self.weight_mu, self.bias_mu) + noise

    def extra_repr(self) -> str:
        return f"in_features={self.in_features}, out_features={self.out_features}, std_init={self.std_init}"


def linear_stack(
    input_dim: int,
    output_dim: int,
    net_arch: list[int],
    activation_fn: type[nn.Module],
    noisy: bool = False,
    noisy_std: float = 0.5,
) -> nn.Sequential:
    """
    SB3's ``create_mlp`` (hidden layers ``net_arch`` with ``activation_fn``, then a linear output layer), with
    :class:`NoisyLinear` layers instead of ``nn.Linear`` when ``noisy``.

    :param input_dim: input size
    :param output_dim: output size
    :param net_arch: sizes of the hidden layers
    :param activation_fn: activation after each hidden layer
    :param noisy: noisy layers
    :param noisy_std: their initial noise scale
    :return: the layers
    """

    def linear(n_in: int, n_out: int) -> nn.Module:
        return NoisyLinear(n_in, n_out, noisy_std) if noisy else nn.Linear(n_in, n_out)

    layers: list[nn.Module] = []
    sizes = [input_dim, *net_arch]
    for n_in, n_out in itertools.pairwise(sizes):
        layers += [linear(n_in, n_out), activation_fn()]
    layers.append(linear(sizes[-1], output_dim))
    return nn.Sequential(*layers)


def _noisy_layers(module: nn.Module) -> Iterator[NoisyLinear]:
    return (layer for layer in module.modules() if isinstance(layer, NoisyLinear))


def reset_noise(module: nn.Module) -> None:
    """
    Draw new noise in every :class:`NoisyLinear` layer of ``module`` (nothing to do when it has none).

    :param module: a network
    """
    for layer in _noisy_layers(module):
        layer.reset_noise()


@contextmanager
def noisy_sampling(module: nn.Module) -> Iterator[None]:
    """
    Within this context the :class:`NoisyLinear` layers of ``module`` use their noise in evaluation mode too: acting
    with a noisy network (exploration) while BatchNorm and dropout stay in evaluation mode.

    :param module: a network
    """
    layers = list(_noisy_layers(module))
    for layer in layers:
        layer.sampling = True
    try:
        yield
    finally:
        for layer in layers:
            layer.sampling = False


def mean_noise_std(module: nn.Module) -> float | None:
    """
    :param module: a network
    :return: the mean of ``|sigma|`` over the weights and biases of its noisy layers, or None when it has none
    """
    sigmas = [
        sigma.detach().abs().reshape(-1) for layer in _noisy_layers(module) for sigma in (layer.weight_sigma, layer.bias_sigma)
    ]
    return float(th.cat(sigmas).mean()) if sigmas else None
