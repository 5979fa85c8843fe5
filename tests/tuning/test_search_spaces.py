from __future__ import annotations

from pathlib import Path

import optuna
import pytest
from gymnasium import spaces
from torch import nn

from sb3_ext import ALGOS, ConfigError, load_zoo_config
from tuning.search_spaces import Param, get_search_space, load_search_space, sample_params, to_hyperparams


def test_every_registry_key_has_a_search_space() -> None:
    for key, spec in ALGOS.items():
        assert spec.search_space, key
        assert get_search_space(key) == dict(spec.search_space)  # (each parameter sets a constructor argument)


def _env_for(algo: str) -> str:
    spec = ALGOS[algo]
    if spaces.Tuple in spec.observation_spaces:  # tabular
        return "FrozenLake-v1"
    return "CartPole-v1" if spaces.Discrete in spec.action_spaces else "Pendulum-v1"


@pytest.mark.parametrize("algo", sorted(ALGOS))
def test_sampled_params_build_a_model_that_trains(algo: str) -> None:
    env_id = _env_for(algo)
    study = optuna.create_study(sampler=optuna.samplers.RandomSampler(seed=3), direction="maximize")
    trial = study.ask()
    params = sample_params(trial, get_search_space(algo))
    assert set(params) == set(get_search_space(algo))
    base = load_zoo_config(algo, env_id, hyperparams={"n_envs": 2})
    hyper = to_hyperparams(params, base.hyperparams, ALGOS[algo].on_policy)
    cfg = load_zoo_config(algo, env_id, hyperparams={"n_envs": 2, **hyper}, n_timesteps=300)
    model = cfg.make_model(cfg.make_env(seed=0), seed=0)
    model.learn(300)
    assert model.num_timesteps >= 300


def test_converter_rules() -> None:
    base = {"n_envs": 4, "policy_kwargs": "dict(ortho_init=False)", "n_delta": 8}
    out = to_hyperparams(
        {
            "one_minus_gamma": 0.01,
            "n_steps_pow": 3,
            "batch_size_pow": 9,
            "net_arch": "small",
            "activation_fn": "relu",
            "learning_rate": 3e-4,
            "n_top_ratio": 0.3,
        },
        base,
        on_policy=True,
    )
    assert out["gamma"] == pytest.approx(0.99)
    assert out["n_steps"] == 8
    assert out["batch_size"] == 32  # 2**9 clipped to the rollout size n_steps * n_envs
    assert out["learning_rate"] == 3e-4
    assert out["n_top"] == 3
    assert out["policy_kwargs"] == "dict(ortho_init=False, net_arch=[64, 64], activation_fn=nn.ReLU)"
    cfg = load_zoo_config("ppo", "CartPole-v1", hyperparams={k: v for k, v in out.items() if k != "n_top"})
    assert cfg.model_kwargs["policy_kwargs"] == {"ortho_init": False, "net_arch": [64, 64], "activation_fn": nn.ReLU}

    noise = to_hyperparams({"noise_type": "none", "noise_std": 0.3}, {})
    assert noise == {"noise_type": None, "noise_std": None}
    assert "action_noise" not in load_zoo_config("td3", "Pendulum-v1", hyperparams=noise).model_kwargs
    assert to_hyperparams({"train_freq": 8}, {"gradient_steps": 1}) == {"train_freq": 8, "gradient_steps": 8}
    # Off-policy n_steps (n-step returns) is no rollout length: the minibatch is left alone.
    assert to_hyperparams({"batch_size_pow": 6}, {"n_steps": 3}) == {"batch_size": 64}
    per = to_hyperparams({"per_alpha": 0.5, "per_beta": 0.3}, {"replay_buffer_kwargs": "dict(eps=1e-6)"})
    assert per == {"replay_buffer_kwargs": "dict(eps=1e-06, alpha=0.5, beta=0.3)"}


def test_search_space_yaml(tmp_path: Path) -> None:
    path = tmp_path / "space.yml"
    path.write_text(
        "learning_rate: {type: float, low: 1.0e-4, high: 1.0e-3, log: true}\n"
        "n_epochs: {choices: [1, 2]}\n"
        "n_steps_pow: 5\n"
        "clip_range: {value: 0.25}\n"
    )
    space = load_search_space(path, "ppo")
    assert space["learning_rate"] == Param("float", 1e-4, 1e-3, True)
    assert space["n_epochs"] == Param("categorical", choices=(1, 2))
    assert space["n_steps_pow"].fixed == 5 and space["clip_range"].fixed == 0.25
    assert "ent_coef" in space  # the unlisted defaults stay
    path.write_text("extend: false\nlearning_rate: {type: float, low: 1.0e-4, high: 1.0e-3}\n")
    assert set(load_search_space(path, "ppo")) == {"learning_rate"}


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("learning_rate: {type: float, low: 0.1, high: 0.01}", "learning_rate: low must be < high, got low=0.1, high=0.01"),
        ("learning_rate: {type: float, low: 0.1, high: 0.1}", "learning_rate: low must be < high"),
        ("learning_rate: {type: float, low: 0.0, high: 0.1, log: true}", "a log-scale range needs low > 0"),
        ("learning_rate: {type: floaty, low: 0.0, high: 0.1}", "unknown type 'floaty' (use float, int or categorical)"),
        ("learning_rate: {type: float, low: 0.0}", "a float needs 'low' and 'high'"),
        ("learning_rate: {type: float, lo: 0.0, high: 1}", "unknown field 'lo'; did you mean 'low'?"),
        ("n_epochs: {type: categorical, choices: []}", "a categorical needs a non-empty 'choices' list"),
        ("n_epochs: {choices: 3}", "choices must be a list, got 3"),
        ("learning_rate: {type: float, low: abc, high: 1}", "low and high must be numbers"),
        ("learning_rate: [1, 2", "malformed YAML"),
        ("- a\n- b", "expected a mapping of parameter names to definitions"),
        ("extend: maybe", "'extend' must be true or false"),
        ("extend: false\nlearning_rate: 0.1", "nothing left to search"),
    ],
)
def test_bad_search_space_yaml(tmp_path: Path, text: str, message: str) -> None:
    path = tmp_path / "space.yml"
    path.write_text(text)
    with pytest.raises(ConfigError) as info:
        load_search_space(path, "ppo")
    assert message in str(info.value)
    assert str(path) in str(info.value)


def test_defaults_that_depend_on_the_algorithm_come_from_its_signature() -> None:
    from sb3_contrib import ARS
    from stable_baselines3 import A2C, PPO

    from sb3_ext.config import constructor_defaults

    sampled = {"batch_size_pow": 12}  # 4096, more than any default rollout
    assert to_hyperparams(sampled, {}, on_policy=True, defaults=constructor_defaults(PPO))["batch_size"] == 2048
    assert to_hyperparams(sampled, {"n_envs": 2}, on_policy=True, defaults=constructor_defaults(A2C))["batch_size"] == 10
    assert to_hyperparams({"n_top_ratio": 0.5}, {}, defaults=constructor_defaults(ARS))["n_top"] == 4  # n_delta=8
    assert to_hyperparams({"n_top_ratio": 0.5}, {"n_delta": 32}, defaults=constructor_defaults(ARS))["n_top"] == 16
