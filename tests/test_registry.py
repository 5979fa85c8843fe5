from __future__ import annotations

import ast
from pathlib import Path

import gymnasium as gym
import pytest
from gymnasium import spaces

from sb3_ext import ALGOS, IncompatibleEnvError, UnknownAlgorithmError, algo_keys, get_algo, load_zoo_config
from sb3_ext.config import ZOO_CONFIG_DIR

ZOO_KEYS = {"dqn", "a2c", "ppo", "sac", "td3", "ddpg", "qrdqn", "tqc", "trpo", "ars", "crossq", "ppo_lstm"}


def test_registry_has_the_zoo_keys() -> None:
    assert ZOO_KEYS <= set(ALGOS)
    for key, spec in ALGOS.items():
        assert spec.key == key
        assert get_algo(key) is spec


def test_every_registry_key_has_a_zoo_config() -> None:
    assert {p.stem for p in ZOO_CONFIG_DIR.glob("*.yml")} == set(ALGOS)


@pytest.mark.parametrize(("key", "on_policy"), [("ppo", True), ("a2c", True), ("dqn", False), ("sac", False), ("trpo", True)])
def test_on_policy_flag(key: str, on_policy: bool) -> None:
    assert get_algo(key).on_policy is on_policy


def test_unknown_key_lists_valid_keys_and_suggests() -> None:
    with pytest.raises(UnknownAlgorithmError) as info:
        get_algo("ppp")
    message = str(info.value)
    assert "unknown algorithm 'ppp'" in message
    assert "did you mean 'ppo'?" in message
    assert f"(valid: {', '.join(sorted(ALGOS))})" in message


def test_unknown_key_without_close_match_has_no_suggestion() -> None:
    with pytest.raises(UnknownAlgorithmError) as info:
        get_algo("zzzzzzzz")
    assert "did you mean" not in str(info.value)


@pytest.mark.parametrize(
    ("algo", "env_id", "space"),
    [
        ("dqn", "Pendulum-v1", "Box"),
        ("qrdqn", "Pendulum-v1", "Box"),
        ("sac", "CartPole-v1", "Discrete"),
        ("td3", "CartPole-v1", "Discrete"),
        ("ddpg", "Acrobot-v1", "Discrete"),
        ("tqc", "MountainCar-v0", "Discrete"),
        ("crossq", "CartPole-v1", "Discrete"),
    ],
)
def test_action_space_errors_name_algo_space_and_support(algo: str, env_id: str, space: str) -> None:
    spec = get_algo(algo)
    env = gym.make(env_id)
    with pytest.raises(IncompatibleEnvError) as info:
        spec.check_spaces(env.observation_space, env.action_space, env_id)
    message = str(info.value)
    assert f"{algo} cannot train on {env_id}" in message
    assert f"action space is {space}" in message
    assert "supports only " + ", ".join(t.__name__ for t in spec.action_spaces) + " action spaces" in message


def test_observation_space_error() -> None:
    obs = spaces.Tuple((spaces.Discrete(3), spaces.Discrete(2)))
    with pytest.raises(IncompatibleEnvError, match=r"its observation space is Tuple\(.*ppo supports only Box, Discrete"):
        get_algo("ppo").check_spaces(obs, spaces.Discrete(2), "Blackjack-v1")
    with pytest.raises(IncompatibleEnvError, match="ars supports only Box, Discrete, MultiDiscrete, MultiBinary observation"):
        get_algo("ars").check_spaces(spaces.Dict({"a": spaces.Discrete(2)}), spaces.Discrete(2))


def test_make_model_fails_before_training_on_incompatible_env() -> None:
    cfg = load_zoo_config("dqn", "CartPole-v1")
    env = load_zoo_config("ppo", "Pendulum-v1").make_env(n_envs=1)
    with pytest.raises(IncompatibleEnvError, match=r"dqn cannot train on Pendulum-v1: its action space is Box\(-2.0, 2.0"):
        cfg.make_model(env)


def test_sb3_ext_imports_without_optuna() -> None:
    import subprocess
    import sys

    code = "import sys, sb3_ext; sys.exit('optuna' in sys.modules)"
    assert subprocess.run([sys.executable, "-c", code], check=False).returncode == 0


def test_readme_algorithm_table_matches_the_registry() -> None:
    readme = (Path(__file__).parents[1] / "README.md").read_text()
    table = readme.split("## Algorithms")[1].split("\n\n")[2]  # the heading, a paragraph, then the table
    rows = [line.split(" | ") for line in table.splitlines()[2:]]
    listed = {row[0].strip("| `"): row for row in rows}
    # Every registered algorithm (plug-ins installed here included) has its row, generated from its spec
    missing = sorted(set(algo_keys()) - set(listed))
    assert not missing, f"README.md's table of algorithms has no row for {missing}"
    assert set(listed) == set(algo_keys())
    for key, row in listed.items():
        spec = get_algo(key)
        cls = f"{spec.cls.__module__.split('.')[0]}.{spec.cls.__name__}"
        assert row[1] == f"`{cls}`" + (f" ({spec.summary})" if spec.summary else ""), (key, row[1])
        assert row[2].split(" (")[0] == ", ".join(t.__name__ for t in spec.action_spaces), (key, row[2])
        assert spec.paper in row[3], (key, spec.paper)


def _sb3_ext_imports(path: Path, package: str) -> list[str]:
    """:return: the ``sb3_ext`` modules and names the module at ``path`` (in ``package``) imports, relative ones resolved"""
    found = []
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            found += [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:  # relative: from the package, one level up per dot beyond the first
                parts = package.split(".")
                base = ".".join([*parts[: len(parts) - node.level + 1], *([base] if base else [])])
            found += [f"{base}.{alias.name}" if base == "sb3_ext" else base for alias in node.names]
    return [name for name in found if name == "sb3_ext" or name.startswith("sb3_ext.")]


def test_common_imports_nothing_above_it() -> None:
    # sb3_ext.common is the bottom layer: it may import sb3_ext.errors and itself, never what builds on it (config,
    # cli, registry, the algorithms, ...), which would make import cycles and tie shared helpers to their users.
    import sb3_ext.common

    root = Path(sb3_ext.common.__file__).parent
    wrong = []
    for path in sorted(root.rglob("*.py")):
        package = ".".join(["sb3_ext", *path.relative_to(root.parent).parent.parts])
        for name in _sb3_ext_imports(path, package):
            if name.split(".")[1:2] not in (["common"], ["errors"]):
                wrong.append(f"{path.relative_to(root.parents[1])} imports {name}")
    assert not wrong, "sb3_ext.common must not import upwards: " + "; ".join(wrong)
