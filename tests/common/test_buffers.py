from __future__ import annotations

import pickle
from typing import Any

import gymnasium as gym
import numpy as np
import pytest
import torch as th
from gymnasium import spaces
from stable_baselines3.common.buffers import NStepReplayBuffer, ReplayBuffer
from stable_baselines3.common.vec_env import DummyVecEnv, VecNormalize

from sb3_ext.common.buffers import DictPrioritizedReplayBuffer, EpisodeBuffer, PrioritizedReplayBuffer
from sb3_ext.common.type_aliases import PrioritizedReplayBufferSamples

OBS = spaces.Box(-10, 10, (3,), np.float32)
ACT = spaces.Discrete(4)
# Chi-square critical value for 7 degrees of freedom at p = 0.001.
CHI2_7DOF_999 = 24.322


class BoxEnv(gym.Env):
    """Only its spaces matter: it gives VecNormalize the buffer's observation shape."""

    observation_space = OBS
    action_space = ACT


def normalizer(n_envs: int) -> VecNormalize:
    """VecNormalize with non-trivial statistics."""
    env = VecNormalize(DummyVecEnv([BoxEnv] * n_envs), gamma=0.9)
    env.obs_rms.mean, env.obs_rms.var = np.array([1.0, -1.0, 0.5]), np.array([4.0, 0.25, 1.0])
    env.ret_rms.var = np.array(9.0)
    return env


def make(size: int = 16, n_envs: int = 1, **kwargs: Any) -> PrioritizedReplayBuffer:
    return PrioritizedReplayBuffer(size, OBS, ACT, device="cpu", n_envs=n_envs, **kwargs)


def fill(
    buffers: list[Any], steps: int, n_envs: int = 1, seed: int = 0, p_done: float = 0.2, p_truncated: float = 0.3
) -> None:
    """Add the same random transitions (with terminations and time-limit truncations) to every buffer."""
    rng = np.random.default_rng(seed)
    for _ in range(steps):
        obs = rng.normal(size=(n_envs, 3)).astype(np.float32)
        next_obs = rng.normal(size=(n_envs, 3)).astype(np.float32)
        action = rng.integers(0, 4, (n_envs, 1))
        reward = rng.normal(size=n_envs).astype(np.float32)
        done = rng.random(n_envs) < p_done
        infos = [{"TimeLimit.truncated": bool(d and rng.random() < p_truncated)} for d in done]
        for buffer in buffers:
            buffer.add(obs, next_obs, action, reward, done, infos)


def assert_same_samples(ours: Any, theirs: Any, fields: tuple[str, ...]) -> None:
    for name in fields:
        th.testing.assert_close(getattr(ours, name), getattr(theirs, name), msg=name)


# --- sampling by priority --------------------------------------------------------------------------------------------


def test_lap_priorities_are_at_least_one_and_weights_are_one() -> None:
    buffer = make(size=8, alpha=0.5, prioritization="lap")
    fill([buffer], 8)
    samples = buffer.sample(8)
    buffer.update_priorities(samples.indices, np.linspace(0.0, 4.0, 8))
    # p ** alpha = max(|delta| ** alpha, 1): errors below 1 all count as 1 (Fujimoto et al. 2020, eq. 13)
    expected = np.maximum(np.linspace(0.0, 4.0, 8), 1.0) ** 0.5
    np.testing.assert_allclose(buffer.priorities()[samples.indices, 0], expected)
    assert buffer.max_priority == 4.0
    np.testing.assert_array_equal(buffer.sample(8).weights.numpy(), np.ones((8, 1), np.float32))


def test_sampled_without_updates_it_warns_once_that_replay_is_uniform() -> None:
    from stable_baselines3 import DQN

    model = DQN("MlpPolicy", "CartPole-v1", replay_buffer_class=PrioritizedReplayBuffer, learning_starts=10, train_freq=1)
    with pytest.warns(UserWarning, match=r"sampled 100 times without a priority update: DQN does not update priorities") as w:
        model.learn(400)
    assert sum("without a priority update" in str(x.message) for x in w) == 1
    buffer = make(size=8)
    fill([buffer], 8)
    for _ in range(150):  # a buffer whose priorities are updated never warns
        buffer.update_priorities(buffer.sample(4).indices, np.ones(4))


def test_new_transitions_enter_at_max_priority() -> None:
    buffer = make(alpha=0.5)
    fill([buffer], 3)
    np.testing.assert_array_equal(buffer.priorities()[:3, 0], 1.0)  # max priority starts at 1
    assert (buffer.priorities()[3:] == 0).all()
    buffer.update_priorities(np.array([0, 1]), np.array([-4.0, 0.5]))
    assert buffer.max_priority == pytest.approx(4.0 + buffer.eps)
    fill([buffer], 1)
    assert buffer.priorities()[3, 0] == pytest.approx((4.0 + buffer.eps) ** 0.5)
    buffer.update_priorities(np.array([0]), np.array([0.1]))  # the max priority never decreases
    fill([buffer], 1)
    assert buffer.priorities()[4, 0] == pytest.approx((4.0 + buffer.eps) ** 0.5)


def test_importance_weights_by_hand() -> None:
    buffer = make(size=4, alpha=0.5, beta=0.5, eps=0.25)
    fill([buffer], 4)
    buffer.update_priorities(np.arange(4), np.array([0.0, 0.75, -3.75, 8.75]))
    # priorities |delta| + eps = 0.25, 1, 4, 9; p^alpha = 0.5, 1, 2, 3; total 6.5; N = 4
    # P = 1/13, 2/13, 4/13, 6/13; N P = 4/13, 8/13, 16/13, 24/13
    # w = (N P)^-1/2 / max_j (N P_j)^-1/2 = sqrt((4/13) / (N P)) = 1, 1/sqrt(2), 1/2, 1/sqrt(6)
    np.random.seed(0)
    batch = buffer.sample(64)
    expected = np.array([1.0, 1 / np.sqrt(2), 0.5, 1 / np.sqrt(6)])[batch.indices]
    np.testing.assert_allclose(batch.weights.numpy().reshape(-1), expected, rtol=1e-6)
    assert batch.weights.shape == (64, 1) and batch.weights.dtype == th.float32
    # Annealed beta = 1: w = (4/13) / (N P)
    buffer.set_beta(1.0)
    batch = buffer.sample(64)
    np.testing.assert_allclose(batch.weights.numpy().reshape(-1), np.array([1.0, 0.5, 0.25, 1 / 6])[batch.indices], rtol=1e-6)


def test_importance_weights_are_normalised_by_the_batch() -> None:
    # The max weight is that of the batch: a stored transition of tiny priority that is not in the batch changes
    # nothing (normalising by the buffer's smallest priority would scale these weights by (1e-6 / p)^beta).
    buffer = make(size=4, alpha=1.0, beta=1.0, eps=1e-6)
    fill([buffer], 4)
    buffer.update_priorities(np.arange(4), np.array([1.0, 1.0, 2.0, 0.0]))  # p ~ 1, 1, 2, 1e-6
    batch = buffer.sample(4)  # strata [0, 1), [1, 2), [2, 3), [3, 4) of the total 4: positions 0, 1, 2, 2
    np.testing.assert_array_equal(batch.indices, [0, 1, 2, 2])
    # N P(i) = 4 p_i / total: w = (N P(i))^-1 / max over the batch = min over the batch of p / p_i
    np.testing.assert_allclose(batch.weights.numpy().reshape(-1), [1.0, 1.0, 0.5, 0.5], rtol=1e-6)


def test_sampling_frequencies_follow_priorities_over_all_envs() -> None:
    n_envs, alpha = 4, 0.7
    buffer = make(size=8, n_envs=n_envs, alpha=alpha)  # 2 positions of 4 envs
    fill([buffer], 2, n_envs=n_envs)  # 8 transitions: positions 0-1, envs 0-3
    rng = np.random.default_rng(1)
    td = rng.random((2, n_envs)) * 5
    buffer.update_priorities(np.arange(8), td.reshape(-1))  # one index per transition: position * n_envs + env
    np.random.seed(0)
    counts = np.zeros((2, n_envs))
    n_batches, batch_size = 2_000, 64
    for _ in range(n_batches):
        batch = buffer.sample(batch_size)
        np.add.at(counts, np.divmod(batch.indices, n_envs), 1)
    p = (td + buffer.eps) ** alpha
    expected = n_batches * batch_size * p / p.sum()
    chi2 = ((counts - expected) ** 2 / expected).sum()
    assert chi2 < CHI2_7DOF_999
    assert (counts > 0).all()  # every env is sampled


def test_stratified_sampling_covers_the_segments() -> None:
    buffer = make(size=1000, alpha=1.0)
    fill([buffer], 1000)
    batch = buffer.sample(100)  # equal priorities: one sample in each tenth of the buffer, in order
    np.testing.assert_array_equal(batch.indices // 10, np.arange(100))


def test_update_priorities_changes_exactly_the_sampled_leaves() -> None:
    buffer = make(size=64, n_envs=2, alpha=0.6)  # 32 positions of 2 envs
    fill([buffer], 32, n_envs=2)
    buffer.update_priorities(np.arange(64), np.linspace(0.1, 3, 64))
    before = buffer.priorities().copy()
    batch = buffer.sample(8)
    td = np.arange(1, 9) * 10.0
    buffer.update_priorities(batch.indices, td)
    after = buffer.priorities()
    changed = np.zeros_like(before, dtype=bool)
    changed[np.divmod(batch.indices, 2)] = True  # (position, env) of each index
    np.testing.assert_array_equal(after[~changed], before[~changed])
    expected = before.copy()
    expected[np.divmod(batch.indices, 2)] = (td + buffer.eps) ** 0.6
    np.testing.assert_allclose(after, expected)
    assert buffer._sum_tree.total() == pytest.approx(after.sum())


# --- same transitions as SB3's buffers -------------------------------------------------------------------------------


@pytest.mark.parametrize("n_envs", [1, 4])
@pytest.mark.parametrize("n_steps", [2, 5])
def test_n_step_returns_equal_sb3(n_envs: int, n_steps: int) -> None:
    kwargs = dict(device="cpu", n_envs=n_envs, n_steps=n_steps, gamma=0.9)
    ours = PrioritizedReplayBuffer(40 * n_envs, OBS, ACT, **kwargs)  # 40 positions
    theirs = NStepReplayBuffer(40 * n_envs, OBS, ACT, **kwargs)
    fill([ours, theirs], 47, n_envs=n_envs)  # wraps around: the newest transition is in the middle of the storage
    for env in (None, normalizer(n_envs)):
        batch_inds = np.arange(40)
        np.random.seed(3)
        expected = theirs._get_samples(batch_inds, env=env)  # draws its env indices with np.random
        np.random.seed(3)
        env_indices = np.random.randint(0, n_envs, size=batch_inds.shape)
        assert_same_samples(
            ours._get_samples(batch_inds, env=env, env_indices=env_indices),
            expected,
            ("observations", "actions", "next_observations", "dones", "rewards", "discounts"),
        )


@pytest.mark.parametrize("handle_timeout_termination", [True, False])
def test_one_step_samples_equal_sb3(handle_timeout_termination: bool) -> None:
    kwargs = dict(device="cpu", n_envs=2, handle_timeout_termination=handle_timeout_termination)
    ours = PrioritizedReplayBuffer(40, OBS, ACT, **kwargs)  # 20 positions
    theirs = ReplayBuffer(40, OBS, ACT, **kwargs)
    fill([ours, theirs], 25, n_envs=2)
    for env in (None, normalizer(2)):
        batch_inds = np.arange(20)
        np.random.seed(3)
        expected = theirs._get_samples(batch_inds, env=env)
        np.random.seed(3)
        env_indices = np.random.randint(0, 2, size=batch_inds.shape)
        ours_samples = ours._get_samples(batch_inds, env=env, env_indices=env_indices)
        assert_same_samples(ours_samples, expected, ("observations", "actions", "next_observations", "dones", "rewards"))
        assert ours_samples.discounts is None  # the algorithm's gamma applies


def test_optimize_memory_usage_samples_equal_sb3_and_skip_the_overwritten_slot() -> None:
    kwargs = dict(device="cpu", n_envs=2, optimize_memory_usage=True, handle_timeout_termination=False)
    ours = PrioritizedReplayBuffer(20, OBS, ACT, **kwargs)  # 10 positions
    theirs = ReplayBuffer(20, OBS, ACT, **kwargs)
    fill([ours, theirs], 13, n_envs=2)
    assert not hasattr(ours, "next_observations")
    batch_inds = np.array([0, 1, 2, 4, 5, 6, 7, 8, 9])  # all but self.pos == 3
    np.random.seed(0)
    expected = theirs._get_samples(batch_inds)
    np.random.seed(0)
    env_indices = np.random.randint(0, 2, size=batch_inds.shape)
    assert_same_samples(
        ours._get_samples(batch_inds, env_indices=env_indices),
        expected,
        ("observations", "actions", "next_observations", "dones", "rewards"),
    )
    assert (ours.priorities()[ours.pos] == 0).all()
    assert not (ours.sample(2_000).indices // 2 == ours.pos).any()
    ours.update_priorities(np.array([2 * ours.pos, 0]), np.array([5.0, 1.0]))  # (pos, env 0): stale, ignored
    assert (ours.priorities()[ours.pos] == 0).all()
    with pytest.raises(ValueError, match="only with n_steps=1"):
        make(optimize_memory_usage=True, handle_timeout_termination=False, n_steps=3)
    with pytest.raises(ValueError, match="handle_timeout_termination"):
        make(optimize_memory_usage=True)


def test_truncation_is_bootstrapped_termination_is_not() -> None:
    for handle_timeout_termination, truncated_done in ((True, 0.0), (False, 1.0)):
        for n_steps in (1, 3):
            buffer = make(size=8, n_envs=2, n_steps=n_steps, handle_timeout_termination=handle_timeout_termination)
            obs = np.zeros((2, 3), np.float32)
            # env 0 is truncated by a time limit, env 1 terminates
            infos = [{"TimeLimit.truncated": True}, {"TimeLimit.truncated": False}]
            buffer.add(obs, obs + 1, np.zeros((2, 1)), np.ones(2, np.float32), np.array([True, True]), infos)
            samples = buffer._get_samples(np.array([0, 0]), env_indices=np.array([0, 1]))
            np.testing.assert_array_equal(samples.dones.numpy().reshape(-1), [truncated_done, 1.0])


# --- Dict observations ----------------------------------------------------------------------------------------------


class _AsDict:
    """Adds a buffer's transitions to a Dict buffer as {"state": obs, "twice": 2 * obs}."""

    def __init__(self, buffer: DictPrioritizedReplayBuffer) -> None:
        self.buffer = buffer

    def add(self, obs: np.ndarray, next_obs: np.ndarray, *rest: Any) -> None:
        self.buffer.add({"state": obs, "twice": 2 * obs}, {"state": next_obs, "twice": 2 * next_obs}, *rest)  # type: ignore[arg-type]


@pytest.mark.parametrize("n_steps", [1, 3])
def test_dict_buffer_samples_equal_the_array_buffer_key_by_key(n_steps: int) -> None:
    space = spaces.Dict({"state": OBS, "twice": spaces.Box(-20, 20, (3,), np.float32)})
    kwargs = dict(device="cpu", n_envs=2, n_steps=n_steps, gamma=0.9, alpha=0.7)
    ours = DictPrioritizedReplayBuffer(40, space, ACT, **kwargs)
    plain = PrioritizedReplayBuffer(40, OBS, ACT, **kwargs)
    fill([_AsDict(ours), plain], 25, n_envs=2)  # wraps around
    for buffer in (ours, plain):
        buffer.update_priorities(np.arange(40), np.linspace(0.1, 4, 40))
    np.testing.assert_array_equal(ours.priorities(), plain.priorities())
    np.random.seed(5)
    batch = ours.sample(32)
    np.random.seed(5)
    expected = plain.sample(32)
    np.testing.assert_array_equal(batch.indices, expected.indices)
    assert isinstance(batch.observations, dict) and isinstance(batch.next_observations, dict)
    for name in ("observations", "next_observations"):
        th.testing.assert_close(getattr(batch, name)["state"], getattr(expected, name))
        th.testing.assert_close(getattr(batch, name)["twice"], 2 * getattr(expected, name))
    assert_same_samples(batch, expected, ("actions", "dones", "rewards", "weights"))
    th.testing.assert_close(batch.discounts, expected.discounts)


def test_dict_buffer_and_array_buffer_refuse_the_other_space() -> None:
    with pytest.raises(ValueError, match="needs a Dict observation space"):
        DictPrioritizedReplayBuffer(8, OBS, ACT)
    with pytest.raises(ValueError, match="Dict observation spaces need DictPrioritizedReplayBuffer"):
        PrioritizedReplayBuffer(8, spaces.Dict({"a": OBS}), ACT)


# --- persistence, errors ---------------------------------------------------------------------------------------------


def test_pickle_keeps_priorities_and_sampling() -> None:
    buffer = make(size=100, n_envs=2, n_steps=3)  # 50 positions
    fill([buffer], 60, n_envs=2)
    buffer.update_priorities(np.arange(100), np.linspace(0, 5, 100))
    copy = pickle.loads(pickle.dumps(buffer))
    np.testing.assert_array_equal(copy.priorities(), buffer.priorities())
    assert copy.max_priority == buffer.max_priority
    np.random.seed(1)
    a = buffer.sample(32)
    np.random.seed(1)
    b = copy.sample(32)
    np.testing.assert_array_equal(a.indices, b.indices)
    assert isinstance(a, PrioritizedReplayBufferSamples)


def test_reset_clears_priorities() -> None:
    buffer = make()
    fill([buffer], 5)
    buffer.update_priorities(np.array([0]), np.array([9.0]))
    buffer.reset()
    assert buffer.size() == 0 and buffer.max_priority == 1.0 and (buffer.priorities() == 0).all()
    with pytest.raises(ValueError, match="empty"):
        buffer.sample(4)


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        (dict(alpha=-0.1), "alpha must be >= 0"),
        (dict(beta=1.5), r"beta must be in \[0, 1\]"),
        (dict(beta=-0.1), r"beta must be in \[0, 1\]"),
        (dict(eps=0.0), "eps must be > 0"),
        (dict(n_steps=0), "n_steps must be an integer >= 1"),
        (dict(prioritization="proportionnal"), r"unknown prioritization 'proportionnal'; did you mean 'proportional'"),
    ],
)
def test_bad_arguments_raise_at_construction(kwargs: dict[str, Any], message: str) -> None:
    with pytest.raises(ValueError, match=message):
        make(**kwargs)


def test_bad_updates_raise() -> None:
    buffer = make(size=8, n_envs=2)
    fill([buffer], 3, n_envs=2)
    with pytest.raises(ValueError, match="same length"):
        buffer.update_priorities(np.array([0, 1]), np.array([1.0]))
    with pytest.raises(ValueError, match="finite"):
        buffer.update_priorities(np.array([0]), np.array([np.nan]))
    with pytest.raises(IndexError, match=r"not stored: indices are position \* n_envs \+ env, < 6 here"):
        buffer.update_priorities(np.array([6]), np.array([1.0]))  # position 3 is empty
    with pytest.raises(IndexError, match="not stored"):
        buffer.update_priorities(np.array([-1]), np.array([1.0]))
    with pytest.raises(TypeError, match="integers"):
        buffer.update_priorities(np.array([0.0]), np.array([1.0]))
    with pytest.raises(ValueError, match=r"beta must be in \[0, 1\]"):
        buffer.set_beta(2.0)


# --- EpisodeBuffer ----------------------------------------------------------------------------------------------


def episode_buffer(observation_space: spaces.Space = OBS, n_envs: int = 2, buffer_size: int = 2) -> EpisodeBuffer:
    return EpisodeBuffer(buffer_size, observation_space, spaces.Box(-1, 1, (2,), np.float32), "cpu", gamma=0.5, n_envs=n_envs)


def fill_episodes(buffer: EpisodeBuffer, dones: list[list[bool]], kept: list[list[bool]], bootstrap: float = 0.0) -> None:
    """Steps whose observation, action and reward all tell (step, env) apart: obs[0] = 10 * step + env, reward 1."""
    for step, (done, keep) in enumerate(zip(dones, kept, strict=True)):
        obs = np.array([[10 * step + env, 0, 0] for env in range(buffer.n_envs)], dtype=np.float32)
        actions = np.array([[step, env] for env in range(buffer.n_envs)], dtype=np.float32)
        boot = np.where(done, bootstrap, 0.0).astype(np.float32)
        buffer.add(obs, actions, np.ones(buffer.n_envs, np.float32), np.array(done), np.array(keep), boot)


def test_episode_buffer_keeps_whole_episodes_env_after_env() -> None:
    # env 0: episodes of 2 and 1 steps, then waits 2 steps; env 1: one episode of 4 steps (the last bootstraps from 8)
    buffer = episode_buffer()
    dones = [[False, False], [True, False], [True, False], [False, False], [False, True]]
    kept = [[True, True], [True, True], [True, True], [False, True], [False, False]]
    fill_episodes(buffer, dones[:4], kept[:4], bootstrap=8.0)
    dones[3][1] = True  # (env 1's episode ends at step 3; step 4 is past the batch for both)
    buffer.reset()
    fill_episodes(buffer, dones, kept, bootstrap=8.0)
    assert buffer.size() == 5 and buffer.buffer_size == 8  # grown from 2, twice
    buffer.compute_returns_and_advantage()
    assert buffer.episode_lengths.tolist() == [2, 1, 4] and buffer.n_episodes == 3
    assert buffer.discarded_steps == 3
    (batch,) = buffer.get()
    np.testing.assert_array_equal(batch.observations[:, 0].numpy(), [0, 10, 20, 1, 11, 21, 31])
    np.testing.assert_array_equal(batch.actions.numpy(), [[0, 0], [1, 0], [2, 0], [0, 1], [1, 1], [2, 1], [3, 1]])
    g = 1 + 0.5 * 8  # every episode's last step bootstraps from its value (8 here)
    expected = [1 + 0.5 * g, g, g, 1 + 0.5 * (1 + 0.5 * (1 + 0.5 * g)), 1 + 0.5 * (1 + 0.5 * g), 1 + 0.5 * g, g]
    np.testing.assert_allclose(batch.returns.numpy(), expected)

    minibatches = list(buffer.get(batch_size=3))
    assert [len(mb.returns) for mb in minibatches] == [3, 3, 1]
    seen = np.concatenate([mb.observations[:, 0].numpy() for mb in minibatches])
    np.testing.assert_array_equal(np.sort(seen), [0, 1, 10, 11, 20, 21, 31])


def test_episode_buffer_dict_and_discrete_observations() -> None:
    space = spaces.Dict({"position": spaces.Box(-1, 1, (2,), np.float32), "room": spaces.Discrete(5)})
    buffer = EpisodeBuffer(4, space, spaces.Discrete(3), "cpu", n_envs=2)
    for step in range(3):
        obs = {"position": np.full((2, 2), step, np.float32), "room": np.array([step, step + 1])}
        buffer.add(obs, np.array([1, 2]), np.zeros(2, np.float32), np.array([step == 2] * 2), np.ones(2, bool), np.zeros(2))
    buffer.compute_returns_and_advantage()
    (batch,) = buffer.get()
    assert isinstance(batch.observations, dict)
    np.testing.assert_array_equal(batch.observations["room"].numpy().ravel(), [0, 1, 2, 1, 2, 3])
    assert batch.observations["position"].shape == (6, 2) and batch.actions.shape == (6, 1)


def test_episode_buffer_refuses_what_it_cannot_do() -> None:
    with pytest.raises(ValueError, match=r"gae_lambda must be 1, got 0\.95"):
        EpisodeBuffer(8, OBS, ACT, gae_lambda=0.95)
    buffer = episode_buffer()
    fill_episodes(buffer, [[False, False]], [[True, True]])
    with pytest.raises(RuntimeError, match="holds no complete episode"):
        next(buffer.get())
