from __future__ import annotations

from pathlib import Path

import gymnasium as gym
import numpy as np
import pytest
import yaml
from sb3_contrib.common.wrappers import TimeFeatureWrapper
from stable_baselines3 import HerReplayBuffer
from stable_baselines3.common.callbacks import CheckpointCallback, StopTrainingOnMaxEpisodes
from stable_baselines3.common.noise import NormalActionNoise, OrnsteinUhlenbeckActionNoise
from stable_baselines3.common.sb2_compat.rmsprop_tf_like import RMSpropTFLike
from stable_baselines3.common.vec_env import VecCheckNan, VecFrameStack, VecMonitor, VecNormalize
from torch import nn

from sb3_ext import ALGOS, ConfigError, UnknownEnvError, load_zoo_config
from sb3_ext.common.safe_eval import safe_eval
from sb3_ext.config import ZOO_CONFIG_DIR, constructor_types
from sb3_ext.errors import UnsafeExpressionError


def write(tmp_path: Path, text: str, name: str = "cfg.yml") -> Path:
    path = tmp_path / name
    path.write_text(text)
    return path


def entry(tmp_path: Path, algo: str, env_id: str, body: str) -> Path:
    lines = "\n".join("  " + line for line in body.strip().splitlines())
    return write(tmp_path, f"{env_id}:\n{lines}\n")


# Every shipped file parses, for every entry, and builds a model.
@pytest.mark.parametrize("algo", sorted(ALGOS))
def test_shipped_configs_load(algo: str) -> None:
    data = yaml.safe_load((ZOO_CONFIG_DIR / f"{algo}.yml").read_text())
    assert "default" in data
    continuous = ALGOS[algo].action_spaces == (gym.spaces.Box,)
    wanted = {"Pendulum-v1"} if continuous else {"CartPole-v1", "Acrobot-v1", "MountainCar-v0"}
    assert wanted <= set(data)
    for entry_name in data:
        if entry_name == "default":
            continue
        env_id = "BreakoutNoFrameskip-v4" if entry_name == "atari" else entry_name
        # (the model is built, not trained: a small replay buffer, not the 1e6 Atari frames of a default one)
        small = {"buffer_size": 1000} if "buffer_size" in constructor_types(ALGOS[algo].cls) else {}
        cfg = load_zoo_config(algo, env_id, hyperparams=small)
        assert cfg.entry == entry_name
        env = cfg.make_env(seed=0)
        cfg.make_model(env, seed=0)
        env.close()


def test_lookup_env_then_default(tmp_path: Path) -> None:
    path = write(
        tmp_path, "default:\n  n_timesteps: 100\n  policy: MlpPolicy\nCartPole-v1:\n  n_timesteps: 5\n  policy: MlpPolicy\n"
    )
    assert load_zoo_config("ppo", "CartPole-v1", path).n_timesteps == 5
    cfg = load_zoo_config("ppo", "Acrobot-v1", path)
    assert (cfg.entry, cfg.n_timesteps) == ("default", 100)


def test_special_keys(tmp_path: Path) -> None:
    path = entry(
        tmp_path,
        "ppo",
        "Pendulum-v1",
        """
n_timesteps: !!float 2e4
n_envs: 2
policy: 'MlpPolicy'
gamma: 0.95
normalize: "dict(norm_obs=True, norm_reward=False)"
frame_stack: 2
env_wrapper:
  - sb3_contrib.common.wrappers.TimeFeatureWrapper
  - gymnasium.wrappers.TimeLimit:
      max_episode_steps: 50
vec_env_wrapper: stable_baselines3.common.vec_env.VecCheckNan
callback:
  - stable_baselines3.common.callbacks.StopTrainingOnMaxEpisodes:
      max_episodes: 3
env_kwargs: "dict(g=9.0)"
monitor_kwargs:
  info_keywords: []
policy_kwargs: "dict(net_arch=dict(pi=[32], vf=[32]), activation_fn=nn.ReLU, ortho_init=False, optimizer_class=RMSpropTFLike)"
learning_rate: lin_3e-4
clip_range: 0.2
clip_range_vf: lin_0.5
""",
    )
    cfg = load_zoo_config("ppo", "Pendulum-v1", path)
    assert cfg.n_timesteps == 20000 and isinstance(cfg.n_timesteps, int)
    assert cfg.n_envs == 2
    assert cfg.normalize is True
    assert cfg.normalize_kwargs == {"norm_obs": True, "norm_reward": False, "gamma": 0.95}
    assert cfg.frame_stack == 2
    # Looked up now: importing rl_zoo3 (the parity test) replaces gymnasium.wrappers.TimeLimit with its own patch.
    assert cfg.env_wrappers == ((TimeFeatureWrapper, {}), (gym.wrappers.TimeLimit, {"max_episode_steps": 50}))
    assert cfg.vec_env_wrappers == ((VecCheckNan, {}),)
    assert cfg.callbacks == ((StopTrainingOnMaxEpisodes, {"max_episodes": 3}),)
    assert cfg.env_kwargs == {"g": 9.0}
    assert cfg.monitor_kwargs == {"info_keywords": []}
    kwargs = cfg.model_kwargs
    assert kwargs["policy_kwargs"] == {
        "net_arch": {"pi": [32], "vf": [32]},
        "activation_fn": nn.ReLU,
        "ortho_init": False,
        "optimizer_class": RMSpropTFLike,
    }
    assert [kwargs["learning_rate"](p) for p in (1.0, 0.5, 0.0)] == pytest.approx([3e-4, 1.5e-4, 0.0])
    assert [kwargs["clip_range_vf"](p) for p in (1.0, 0.0)] == pytest.approx([0.5, 0.0])
    assert kwargs["clip_range"] == 0.2
    assert set(kwargs) == {"policy", "gamma", "policy_kwargs", "learning_rate", "clip_range", "clip_range_vf"}

    env = cfg.make_env(seed=0)
    assert isinstance(env, VecFrameStack)
    assert isinstance(env.venv, VecNormalize) and env.venv.norm_reward is False and env.venv.gamma == 0.95
    assert isinstance(env.venv.venv, VecCheckNan)
    assert env.observation_space.shape == (2 * 4,)  # 3 obs + time feature, stacked twice
    assert env.get_attr("g") == [9.0, 9.0]
    model = cfg.make_model(env, seed=0)
    assert model.policy.optimizer.__class__ is RMSpropTFLike
    assert [type(cb) for cb in cfg.make_callbacks()] == [StopTrainingOnMaxEpisodes]
    eval_env = cfg.make_env(n_envs=1, eval_env=True)
    assert eval_env.venv.training is False and eval_env.venv.norm_reward is False


def test_normalize_forms(tmp_path: Path) -> None:
    for text, kwargs in [
        ("true", {"gamma": 0.9}),
        ("false", None),
        ("\"{'norm_obs': False, 'norm_reward': True}\"", {"norm_obs": False, "norm_reward": True, "gamma": 0.9}),
        ("{clip_obs: 5.0}", {"clip_obs": 5.0, "gamma": 0.9}),
    ]:
        path = entry(tmp_path, "ppo", "CartPole-v1", f"n_timesteps: 10\npolicy: MlpPolicy\ngamma: 0.9\nnormalize: {text}")
        cfg = load_zoo_config("ppo", "CartPole-v1", path)
        assert cfg.normalize is (kwargs is not None)
        assert cfg.normalize_kwargs == (kwargs or {})


def test_off_policy_keys(tmp_path: Path) -> None:
    path = entry(
        tmp_path,
        "td3",
        "Pendulum-v1",
        """
n_timesteps: 1000
policy: MlpPolicy
train_freq: [1, "episode"]
noise_type: 'ornstein-uhlenbeck'
noise_std: 0.5
replay_buffer_kwargs: "dict(handle_timeout_termination=True)"
learning_rate: !!float 1e-3
buffer_size: !!float 1e4
""",
    )
    cfg = load_zoo_config("td3", "Pendulum-v1", path)
    kwargs = cfg.model_kwargs
    assert kwargs["train_freq"] == (1, "episode")
    assert "action_noise" not in kwargs  # made for the env's action space with the model
    assert (cfg.noise_type, cfg.noise_std) == ("ornstein-uhlenbeck", 0.5)
    assert kwargs["replay_buffer_kwargs"] == {"handle_timeout_termination": True}
    assert kwargs["buffer_size"] == 10000 and isinstance(kwargs["buffer_size"], int)
    env = cfg.make_env(seed=0)
    model, other = cfg.make_model(env, seed=0), cfg.make_model(env, seed=0)
    assert isinstance(model.action_noise, OrnsteinUhlenbeckActionNoise)
    np.testing.assert_allclose(model.action_noise._sigma, [0.5])
    assert model.action_noise is not other.action_noise  # each model gets its own noise state

    path = entry(tmp_path, "sac", "Pendulum-v1", "n_timesteps: 10\npolicy: MlpPolicy\nnoise_type: normal\nnoise_std: 0.2")
    cfg = load_zoo_config("sac", "Pendulum-v1", path)
    assert isinstance(cfg.make_action_noise(cfg.make_env().action_space), NormalActionNoise)


def test_action_noise_is_made_for_the_action_space(tmp_path: Path) -> None:
    body = "n_timesteps: 10\npolicy: MlpPolicy\nnoise_type: normal\nnoise_std: [0.1, 0.2]"
    cfg = load_zoo_config("td3", "Pendulum-v1", entry(tmp_path, "td3", "Pendulum-v1", body))
    noise = cfg.make_action_noise(gym.spaces.Box(-1, 1, (2,)))
    assert isinstance(noise, NormalActionNoise)
    np.testing.assert_allclose(noise._sigma, [0.1, 0.2])
    with pytest.raises(ConfigError, match=r"noise_std: expected a number or a list of 1 numbers, got \[0.1, 0.2\]"):
        cfg.make_model(cfg.make_env())  # Pendulum has one action dimension
    with pytest.raises(ConfigError, match=r"noise_type: action noise needs a Box action space, Pendulum-v1 has Discrete\(2\)"):
        cfg.make_action_noise(gym.spaces.Discrete(2))


def test_ars_delta_std_schedule(tmp_path: Path) -> None:
    path = entry(
        tmp_path, "ars", "Pendulum-v1", "n_timesteps: 10\npolicy: LinearPolicy\ndelta_std: lin_0.1\nlearning_rate: 0.02"
    )
    kwargs = load_zoo_config("ars", "Pendulum-v1", path).model_kwargs
    assert [kwargs["delta_std"](p) for p in (1.0, 0.5, 0.0)] == pytest.approx([0.1, 0.05, 0.0])
    assert kwargs["learning_rate"] == 0.02


def test_replay_buffer_class_by_name(tmp_path: Path) -> None:
    for text in ["HerReplayBuffer", "stable_baselines3.HerReplayBuffer"]:
        path = entry(tmp_path, "sac", "Pendulum-v1", f"n_timesteps: 10\npolicy: MlpPolicy\nreplay_buffer_class: {text}")
        assert load_zoo_config("sac", "Pendulum-v1", path).model_kwargs["replay_buffer_class"] is HerReplayBuffer


def test_overrides_and_saved_config_round_trip(tmp_path: Path) -> None:
    cfg = load_zoo_config(
        "ppo",
        "CartPole-v1",
        hyperparams={"learning_rate": "lin_1e-3", "policy_kwargs": {"net_arch": [16], "activation_fn": nn.Tanh}},
        n_timesteps=123,
        n_envs=3,
    )
    assert (cfg.n_timesteps, cfg.n_envs) == (123, 3)
    cfg.save(tmp_path / "config.yml")
    again = load_zoo_config("ppo", "CartPole-v1", tmp_path / "config.yml")
    assert again.hyperparams["policy_kwargs"] == "dict(net_arch=[16], activation_fn=nn.Tanh)"
    assert again.model_kwargs["policy_kwargs"] == {"net_arch": [16], "activation_fn": nn.Tanh}
    assert (again.n_timesteps, again.n_envs) == (123, 3)
    assert again.model_kwargs["learning_rate"](0.5) == pytest.approx(5e-4)
    assert {k: v for k, v in again.model_kwargs.items() if k not in ("learning_rate", "clip_range", "policy_kwargs")} == {
        k: v for k, v in cfg.model_kwargs.items() if k not in ("learning_rate", "clip_range", "policy_kwargs")
    }


INJECTIONS = [
    "__import__('os').system('echo hacked')",
    "eval('1+1')",
    "exec('x=1')",
    "open('/etc/passwd').read()",
    "(lambda: 1)()",
    "lambda x: x",
    "os.system('ls')",
    "dict(a=th.load('x.pt'))",
    "nn.ReLU.__subclasses__()",
    "dict(x=nn.ReLU.__init__)",
    "[c for c in ().__class__.__base__.__subclasses__()]",
    "getattr(nn, 'ReLU')",
    "dict(**{'a': 1})",
    "subprocess.Popen",
    "builtins.print",
    "gymnasium.make",
    "torch.nn.functional.relu",
    "dict(a=1) if True else None",
    "f'{1}'",
    "dict(net_arch=[64] * 100000000)",
    "9 ** 9 ** 9",
    "stable_baselines3.PPO.load",
    "nn",
    "dict(a=b'bytes')",
    "dict(a=1",
]


@pytest.mark.parametrize("text", INJECTIONS)
def test_unsafe_strings_are_refused(text: str) -> None:
    with pytest.raises(UnsafeExpressionError) as info:
        safe_eval(text, "ppo.yml [CartPole-v1] policy_kwargs")
    message = str(info.value)
    assert message.startswith("ppo.yml [CartPole-v1] policy_kwargs: ")
    assert text in message
    assert "\n" not in message


@pytest.mark.parametrize("key", ["policy_kwargs", "replay_buffer_kwargs", "env_kwargs", "monitor_kwargs", "normalize"])
def test_unsafe_strings_in_config_name_file_entry_and_key(tmp_path: Path, key: str) -> None:
    algo = "dqn"
    path = entry(tmp_path, algo, "CartPole-v1", f"n_timesteps: 10\npolicy: MlpPolicy\n{key}: \"__import__('os').getcwd()\"")
    with pytest.raises(UnsafeExpressionError) as info:
        load_zoo_config(algo, "CartPole-v1", path)
    assert f"{path} [CartPole-v1] {key}: refused \"__import__('os').getcwd()\"" in str(info.value)


@pytest.mark.parametrize(
    ("key", "value"),
    [("env_wrapper", "os.path.join"), ("vec_env_wrapper", "builtins.exec"), ("callback", "subprocess.Popen")],
)
def test_dotted_paths_outside_trusted_packages_are_refused(tmp_path: Path, key: str, value: str) -> None:
    path = entry(tmp_path, "ppo", "CartPole-v1", f"n_timesteps: 10\npolicy: MlpPolicy\n{key}: {value}")
    with pytest.raises(
        UnsafeExpressionError, match=rf"\[CartPole-v1\] {key}: refused \"{value}\": '{value}' is not an allowed name"
    ):
        load_zoo_config("ppo", "CartPole-v1", path)


def test_allowed_expressions() -> None:
    value = safe_eval(
        "dict(a=[1, -2.5, 1e-3], b=(1,), c={'x': None}, d=th.nn.Tanh, e=th.optim.Adam, f=float('inf'), g=2 * 32)"
    )
    assert value["a"] == [1, -2.5, 1e-3] and value["b"] == (1,) and value["c"] == {"x": None}
    assert value["d"] is nn.Tanh and value["e"].__name__ == "Adam" and value["f"] == float("inf") and value["g"] == 64


@pytest.mark.parametrize(
    ("body", "message"),
    [
        (
            "n_timesteps: 10\npolicy: MlpPolicy\nlearning_rat: 0.1",
            r"\[CartPole-v1\] learning_rat: unknown key for ppo; did you mean 'learning_rate'\?",
        ),
        (
            "n_timesteps: 10\npolicy: MlpPolicy\nlearning_rate: -0.001",
            r"\[CartPole-v1\] learning_rate: must be > 0, got -0.001",
        ),
        ("n_timesteps: 10\npolicy: MlpPolicy\nlearning_rate: lin_-0.1", r"learning_rate: must be > 0, got 'lin_-0.1'"),
        ("n_timesteps: 10\npolicy: MlpPolicy\ngamma: 1.5", r"\[CartPole-v1\] gamma: must be in \[0, 1\], got 1.5"),
        ("n_timesteps: 10\npolicy: MlpPolicy\nn_steps: 0", r"n_steps: must be >= 1, got 0"),
        ("n_timesteps: 10\npolicy: MlpPolicy\nn_envs: -2", r"n_envs: must be >= 1, got -2"),
        ("n_timesteps: 10\npolicy: MlpPolicy\nn_steps: 12.5", r"n_steps: expected int, got float 12.5"),
        ("n_timesteps: 10\npolicy: MlpPolicy\nn_steps: many", r"n_steps: expected int, got str 'many'"),
        ("n_timesteps: 10\npolicy: MlpPolicy\nnormalize_advantage: 3", r"normalize_advantage: expected bool, got int 3"),
        (
            "n_timesteps: 10\npolicy: MlpPolicy\npolicy_kwargs: [1, 2]",
            r"policy_kwargs: expected dict\[str, Any\] \| None, got list",
        ),
        (
            "n_timesteps: 10\npolicy: MlpPolicy\nlearning_rate: exp_0.1",
            r"learning_rate: 'exp_0.1' is not a schedule; use a number or 'lin_<initial value>'",
        ),
        ("n_timesteps: ten\npolicy: MlpPolicy", r"n_timesteps: expected an integer, got 'ten'"),
        ("policy: MlpPolicy", r"\[CartPole-v1\]: missing 'n_timesteps'"),
        ("n_timesteps: 10", r"\[CartPole-v1\]: missing 'policy' \(one of MlpPolicy, CnnPolicy, MultiInputPolicy\)"),
        ("n_timesteps: 10\npolicy: MlpPolcy", r"policy: unknown policy 'MlpPolcy' for ppo; did you mean 'MlpPolicy'\?"),
        (
            "n_timesteps: 10\npolicy: MlpPolicy\nnormalize: {norm_obz: true}",
            r"normalize: unknown VecNormalize argument 'norm_obz'; did you mean 'norm_obs'\?",
        ),
        (
            "n_timesteps: 10\npolicy: MlpPolicy\nnormalize: 3",
            r"normalize: expected true/false or a mapping of VecNormalize arguments, got 3",
        ),
        (
            "n_timesteps: 10\npolicy: MlpPolicy\nenv_wrapper: {a: 1, b: 2}",
            r"env_wrapper: each item must be a dotted path or a one-key mapping",
        ),
        (
            "n_timesteps: 10\npolicy: MlpPolicy\ncallback: gymnasium.wrappers.TimeLimit",
            r"callback: 'gymnasium.wrappers.TimeLimit' is not a BaseCallback subclass",
        ),
        ("n_timesteps: 10\npolicy: MlpPolicy\nnoise_std: 0.1", r"noise_std: 'noise_std' needs 'noise_type'"),
        (
            "n_timesteps: 10\npolicy: MlpPolicy\nnoise_type: normal\nnoise_std: 0.1",
            r"noise_type: ppo takes no action noise \(no action_noise argument\)",
        ),
        ("n_timesteps: 10\npolicy: MlpPolicy\nnoise_type: normal\nnoise_std: -0.1", r"noise_std: must be >= 0, got -0.1"),
        ("n_timesteps: 10\npolicy: MlpPolicy\nenv_kwargs: 5", r"env_kwargs: expected a mapping, got 5"),
    ],
)
def test_bad_values_name_file_entry_and_key(tmp_path: Path, body: str, message: str) -> None:
    path = entry(tmp_path, "ppo", "CartPole-v1", body)
    with pytest.raises(ConfigError, match=message) as info:
        load_zoo_config("ppo", "CartPole-v1", path)
    assert "\n" not in str(info.value)
    if "missing" not in message:
        assert str(path) in str(info.value)


def test_override_errors_name_the_override() -> None:
    with pytest.raises(ConfigError, match=r"^--hyperparams gamma: must be in \[0, 1\], got 2"):
        load_zoo_config("ppo", "CartPole-v1", hyperparams={"gamma": 2})


def test_malformed_yaml(tmp_path: Path) -> None:
    path = write(tmp_path, "CartPole-v1:\n  n_timesteps: [1, 2\n  policy: MlpPolicy\n")
    with pytest.raises(ConfigError, match=rf"^{path}: malformed YAML at line \d+, column \d+: "):
        load_zoo_config("ppo", "CartPole-v1", path)
    path = write(tmp_path, "CartPole-v1: !!python/object/apply:os.system ['echo hacked']\n")
    with pytest.raises(ConfigError, match="malformed YAML"):
        load_zoo_config("ppo", "CartPole-v1", path)
    path = write(tmp_path, "- just\n- a list\n")
    with pytest.raises(ConfigError, match="expected a mapping of env ids"):
        load_zoo_config("ppo", "CartPole-v1", path)


def test_missing_entry_and_file(tmp_path: Path) -> None:
    path = write(tmp_path, "Acrobot-v1:\n  n_timesteps: 10\n  policy: MlpPolicy\n")
    with pytest.raises(
        ConfigError, match=rf"{path}: no entry for 'CartPole-v1' and no 'default' entry \(entries: Acrobot-v1\)"
    ):
        load_zoo_config("ppo", "CartPole-v1", path)
    with pytest.raises(ConfigError, match="no such config file"):
        load_zoo_config("ppo", "CartPole-v1", tmp_path / "missing.yml")


def test_unknown_env_suggests() -> None:
    with pytest.raises(UnknownEnvError, match="unknown environment 'CartPol-v1'; did you mean 'CartPole-v1'"):
        load_zoo_config("ppo", "CartPol-v1")


def test_checkpoint_callback_kwargs(tmp_path: Path) -> None:
    path = entry(
        tmp_path,
        "ppo",
        "CartPole-v1",
        f"n_timesteps: 10\npolicy: MlpPolicy\ncallback:\n  - stable_baselines3.common.callbacks.CheckpointCallback:\n"
        f"      save_freq: 5\n      save_path: {tmp_path}\nvec_env_wrapper:\n  - stable_baselines3.common.vec_env.VecMonitor",
    )
    cfg = load_zoo_config("ppo", "CartPole-v1", path)
    (callback,) = cfg.make_callbacks()
    assert isinstance(callback, CheckpointCallback) and callback.save_freq == 5
    assert cfg.vec_env_wrappers == ((VecMonitor, {}),)


def test_an_entry_parses_without_its_env(tmp_path: Path) -> None:
    # The env is not built to read a config: an env whose package is missing (here: gymnasium knows no such id)
    # still has its entry read, noise included; making the env is what fails, in one line.
    body = "n_timesteps: 1000\npolicy: MlpPolicy\nnoise_type: normal\nnoise_std: 0.1\nnormalize: true"
    cfg = load_zoo_config("td3", "NoSuchPackage/Walker-v0", entry(tmp_path, "td3", "NoSuchPackage/Walker-v0", body))
    assert (cfg.entry, cfg.n_timesteps, cfg.normalize, cfg.noise_type) == ("NoSuchPackage/Walker-v0", 1000, True, "normal")
    with pytest.raises(UnknownEnvError, match=r"^unknown environment 'NoSuchPackage/Walker-v0'") as info:
        cfg.make_env()
    assert "\n" not in str(info.value)
    # An id without an entry of its own still needs gymnasium to know it (to choose between 'atari' and 'default')
    with pytest.raises(UnknownEnvError, match="unknown environment 'NoSuchPackage/Runner-v0'"):
        load_zoo_config("td3", "NoSuchPackage/Runner-v0", entry(tmp_path, "td3", "NoSuchPackage/Walker-v0", body))


def test_a_constructor_error_names_file_entry_and_key(tmp_path: Path) -> None:
    path = entry(
        tmp_path, "d3qn", "CartPole-v1", "n_timesteps: 10\npolicy: MlpPolicy\nn_steps: 3\nreplay_buffer_kwargs: dict(beta=1.5)"
    )
    cfg = load_zoo_config("d3qn", "CartPole-v1", path)
    with pytest.raises(ConfigError, match=rf"^{path} \[CartPole-v1\]: d3qn refused the value: .*beta must be in \[0, 1\]"):
        cfg.make_model(cfg.make_env())
    path = entry(tmp_path, "rainbow", "CartPole-v1", "n_timesteps: 10\npolicy: MlpPolicy\nn_atoms: 1")
    cfg = load_zoo_config("rainbow", "CartPole-v1", path)
    with pytest.raises(ConfigError, match=rf"^{path} \[CartPole-v1\] n_atoms: rainbow refused the value: n_atoms must be"):
        cfg.make_model(cfg.make_env())


@pytest.mark.parametrize("algo", ["sac", "dqn", "qrdqn"])
def test_a_prioritized_buffer_for_an_algorithm_that_does_not_prioritize_is_refused(tmp_path: Path, algo: str) -> None:
    env_id = "Pendulum-v1" if algo == "sac" else "CartPole-v1"
    config = tmp_path / f"{algo}.yml"
    config.write_text(
        f"{env_id}:\n  policy: MlpPolicy\n  n_timesteps: 1000\n  replay_buffer_class: sb3_ext.PrioritizedReplayBuffer\n"
    )
    with pytest.raises(ConfigError) as error:
        load_zoo_config(algo, env_id, config)
    message = str(error.value)
    assert message.startswith(f"{config} [{env_id}] replay_buffer_class: {algo} never updates priorities")
    assert "would replay uniformly" in message and "\n" not in message
    # D3QN updates them: the same entry loads
    assert load_zoo_config("d3qn", "CartPole-v1", config if algo != "sac" else None).algo == "d3qn"
