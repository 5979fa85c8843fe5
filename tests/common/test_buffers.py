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
    assert buffer.mean_priority() * 64 == pytest.approx(after.sum())


# --- rank-based prioritization ---------------------------------------------------------------------------------------


def naive_rank_probabilities(errors: np.ndarray, alpha: float) -> np.ndarray:
    """P(i) = (1 / rank(i)) ** alpha / sum_k (1 / k) ** alpha, rank 1 for the largest |error| (distinct errors)."""
    ranks = np.empty(len(errors), dtype=np.int64)
    ranks[np.argsort(-np.abs(errors))] = np.arange(1, len(errors) + 1)
    q = (1.0 / ranks) ** alpha
    return q / q.sum()


def test_rank_sampling_frequencies_follow_inverse_rank_over_all_envs() -> None:
    n_envs, alpha = 4, 0.7
    buffer = make(size=8, n_envs=n_envs, alpha=alpha, prioritization="rank")  # 2 positions of 4 envs
    fill([buffer], 2, n_envs=n_envs)
    td = np.random.default_rng(1).normal(size=8) * 5  # one index per transition: position * n_envs + env
    buffer.update_priorities(np.arange(8), td)
    expected_p = naive_rank_probabilities(td, alpha)
    np.testing.assert_allclose(buffer.priorities().reshape(-1) / buffer.priorities().sum(), expected_p, rtol=1e-12)
    np.random.seed(0)
    counts = np.zeros(8)
    n_batches, batch_size = 2_000, 64
    for _ in range(n_batches):
        np.add.at(counts, buffer.sample(batch_size).indices, 1)
    expected = n_batches * batch_size * expected_p
    chi2 = ((counts - expected) ** 2 / expected).sum()
    assert chi2 < CHI2_7DOF_999
    assert (counts.reshape(2, n_envs) > 0).all()  # every env is sampled


def test_rank_importance_weights_by_hand() -> None:
    buffer = make(size=4, alpha=1.0, beta=0.5, prioritization="rank")
    fill([buffer], 4)
    buffer.update_priorities(np.arange(4), np.array([0.1, -7.0, 3.0, 0.5]))  # ranks 4, 1, 2, 3
    # (1 / rank) ** alpha = 1/4, 1, 1/2, 1/3: what priorities() gives and sampling is proportional to
    np.testing.assert_allclose(buffer.priorities()[:, 0], [0.25, 1.0, 0.5, 1 / 3])
    assert buffer.mean_priority() == pytest.approx((1 + 1 / 2 + 1 / 3 + 1 / 4) / 4)
    # w = (N P)^-beta / max over the batch = ((1 / r) / (1 / r_max))^-beta = (r / r_max) ** beta
    np.random.seed(0)
    batch = buffer.sample(64)
    ranks = np.array([4, 1, 2, 3])[batch.indices]
    assert ranks.max() == 4  # (64 strata: the last rank is in the batch)
    np.testing.assert_allclose(batch.weights.numpy().reshape(-1), (ranks / 4) ** 0.5, rtol=1e-6)
    buffer.set_beta(1.0)  # w = r / r_max
    batch = buffer.sample(64)
    ranks = np.array([4, 1, 2, 3])[batch.indices]
    np.testing.assert_allclose(batch.weights.numpy().reshape(-1), ranks / 4, rtol=1e-6)


def test_rank_new_transitions_enter_at_the_top_newest_first() -> None:
    buffer = make(size=8, alpha=1.0, prioritization="rank")
    fill([buffer], 4)
    buffer.update_priorities(np.arange(4), np.array([5.0, 4.0, 3.0, 2.0]))
    assert buffer.max_priority == 5.0  # the largest |delta| given (rank-based priorities take no eps)
    fill([buffer], 2)  # positions 4 and 5: ranks 2 and 1 until they are re-ranked
    np.testing.assert_allclose(buffer.priorities()[:6, 0], 1 / np.array([3, 4, 5, 6, 2, 1]))
    for seed in range(5):
        np.random.seed(seed)
        assert buffer.sample(4).indices[0] == 5  # the first stratum holds rank 1 only
    # An update re-ranks them with the others: position 5 keeps the largest priority given (5.0), ahead of
    # position 0's equal one (of equal priorities, the re-ranked ones go first)
    buffer.update_priorities(np.array([4]), np.array([0.5]))
    np.testing.assert_allclose(buffer.priorities()[:6, 0], 1 / np.array([2, 3, 4, 5, 6, 1]))


def test_rank_order_is_stale_between_sorts_except_at_the_top(monkeypatch: pytest.MonkeyPatch) -> None:
    import sb3_ext.common.buffers as buffers

    monkeypatch.setattr(buffers, "RANK_TOP", 4)  # re-rank the first 4 ranks at every update
    buffer = make(size=32, alpha=1.0, prioritization="rank", rank_sort_interval=3)
    fill([buffer], 32)
    errors = np.linspace(32.0, 1.0, 32)  # position i has rank i + 1
    buffer.update_priorities(np.arange(32), errors)  # update 1: the top re-ranked (nothing else: all were new)
    buffer.update_priorities(np.arange(32), errors)  # update 2
    buffer.update_priorities(np.arange(32), errors)  # update 3: full sort
    np.testing.assert_allclose(buffer.priorities()[:, 0], 1 / np.arange(1, 33))
    buffer.update_priorities(np.array([20, 0]), np.array([100.0, 0.5]))  # update 4
    ranks = np.rint(1 / buffer.priorities()[:, 0]).astype(int)
    assert ranks[20] == 21  # not re-ranked yet: deep in the order
    assert ranks[0] == 4 and list(ranks[1:4]) == [1, 2, 3]  # the top 4 are re-ranked among themselves
    buffer.update_priorities(np.array([5]), np.array([27.0]))  # update 5
    assert np.rint(1 / buffer.priorities()[20, 0]) == 21
    buffer.update_priorities(np.array([6]), np.array([26.0]))  # update 6: the full sort
    current = errors.copy()
    current[[0, 20]] = 0.5, 100.0  # (positions 5 and 6 were given their own errors again)
    expected = np.empty(32, dtype=int)
    expected[np.argsort(-current)] = np.arange(1, 33)
    np.testing.assert_array_equal(np.rint(1 / buffer.priorities()[:, 0]).astype(int), expected)


def test_rank_overwrites_of_a_full_buffer_never_sample_a_stale_slot() -> None:
    for kwargs in (dict(n_envs=2), dict(n_envs=2, optimize_memory_usage=True, handle_timeout_termination=False)):
        buffer = make(size=20, alpha=0.8, prioritization="rank", rank_sort_interval=4, **kwargs)  # 10 positions
        rng = np.random.default_rng(0)
        np.random.seed(0)
        for step in range(75):  # wraps around seven times
            fill([buffer], 1, n_envs=2, seed=step)
            if step >= 3:
                batch = buffer.sample(16)
                assert (batch.indices < buffer.size() * 2).all()
                if buffer.optimize_memory_usage and buffer.full:
                    assert not (batch.indices // 2 == buffer.pos).any()  # its observation was overwritten
                buffer.update_priorities(batch.indices, rng.normal(size=16))
            ranks = np.rint(1 / buffer.priorities()[buffer.priorities() > 0] ** (1 / 0.8)).astype(int)
            sampleable = buffer.size() - (1 if buffer.optimize_memory_usage and buffer.full else 0)
            # Every stored transition has exactly one rank: 1 .. N, none twice, none for a stale or empty slot.
            np.testing.assert_array_equal(np.sort(ranks), np.arange(1, 2 * sampleable + 1))
        if buffer.optimize_memory_usage:
            assert (buffer.priorities()[buffer.pos] == 0).all()


def test_rank_alpha_zero_is_uniform() -> None:
    buffer = make(size=16, n_envs=2, alpha=0.0, prioritization="rank")
    fill([buffer], 8, n_envs=2)
    buffer.update_priorities(np.arange(16), np.random.default_rng(0).normal(size=16) * 10)
    np.testing.assert_array_equal(buffer.priorities(), 1.0)
    batch = buffer.sample(16)  # 16 strata of 16 equally likely ranks: each transition once
    np.testing.assert_array_equal(np.sort(batch.indices), np.arange(16))
    np.testing.assert_array_equal(batch.weights.numpy(), 1.0)


def test_rank_pickle_round_trip_and_reset() -> None:
    buffer = make(size=100, n_envs=2, n_steps=3, prioritization="rank", rank_sort_interval=5)  # 50 positions
    fill([buffer], 60, n_envs=2)
    rng = np.random.default_rng(0)
    for _ in range(7):  # between two sorts, with holes left by the overwrites
        buffer.update_priorities(buffer.sample(16).indices, rng.normal(size=16))
        fill([buffer], 1, n_envs=2)
    copy = pickle.loads(pickle.dumps(buffer))
    np.testing.assert_array_equal(copy.priorities(), buffer.priorities())
    for b in (buffer, copy):
        np.random.seed(1)
        b.update_priorities(b.sample(32).indices, np.arange(32.0))
    np.random.seed(2)
    a = buffer.sample(32)
    np.random.seed(2)
    b = copy.sample(32)
    np.testing.assert_array_equal(a.indices, b.indices)
    th.testing.assert_close(a.weights, b.weights)
    buffer.reset()
    assert buffer.size() == 0 and buffer.max_priority == 1.0 and (buffer.priorities() == 0).all()
    assert buffer.mean_priority() == 0.0
    fill([buffer], 3, n_envs=2)
    np.testing.assert_allclose(np.sort(buffer.priorities()[:3].reshape(-1)), np.sort(1 / np.arange(1, 7) ** buffer.alpha))


@pytest.mark.parametrize("capacity", [1, 5, 37, 300])
def test_rank_order_matches_naive_numpy(capacity: int) -> None:
    from sb3_ext.common.rank_order import RankOrder

    rng = np.random.default_rng(capacity)
    order, stored = RankOrder(capacity), np.zeros(capacity, dtype=bool)
    newest_first: list[int] = []  # the leaves of the last insert, newest first: they top the order
    for _ in range(300):
        operation = rng.integers(0, 5)
        if operation == 0:  # new transitions, some of them in slots that held one (overwrites)
            leaves = rng.choice(capacity, int(rng.integers(1, capacity + 1)), replace=False)
            order.insert(leaves, float(rng.random()))
            stored[leaves] = True
            newest_first = leaves[::-1].tolist()  # (earlier ones follow them, unless the insert had to sort)
        elif operation == 1 and stored.any():
            leaves = rng.choice(np.flatnonzero(stored), int(rng.integers(1, stored.sum() + 1)), replace=False)
            order.remove(leaves)
            stored[leaves] = False
            newest_first = [leaf for leaf in newest_first if stored[leaf]]
        elif operation == 2 and stored.any():  # repeats included
            leaves = rng.choice(np.flatnonzero(stored), int(rng.integers(1, stored.sum() + 1)))
            order.update(leaves, rng.random(len(leaves)))
        elif operation == 3:
            order.sort()
            newest_first = []
            ranked = np.flatnonzero(stored)[np.argsort(order.ranks()[stored])]
            assert (np.diff(order.priorities[ranked]) <= 0).all()  # by decreasing priority
        elif stored.any():
            count = int(rng.integers(1, stored.sum() + 1))
            top = np.flatnonzero(stored)[np.argsort(order.ranks()[stored])][:count]
            order.sort_top(count)
            now = np.flatnonzero(stored)[np.argsort(order.ranks()[stored])][:count]
            assert set(now) == set(top) and (np.diff(order.priorities[now]) <= 0).all()
            newest_first = []  # (their order now depends on the priorities)
        ranks = order.ranks()
        assert len(order) == stored.sum() and ((ranks >= 0) == stored).all()
        np.testing.assert_array_equal(np.sort(ranks[stored]), np.arange(stored.sum()))  # a permutation: no duplicate
        np.testing.assert_array_equal(order.leaves(ranks[stored]), np.flatnonzero(stored))  # leaves() inverts ranks()
        if newest_first:
            np.testing.assert_array_equal(ranks[newest_first], np.arange(len(newest_first)))


def test_buffers_pickled_with_a_sum_tree_attribute_still_load() -> None:
    buffer = make(size=16, alpha=0.5)
    fill([buffer], 10)
    buffer.update_priorities(np.arange(10), np.linspace(1, 3, 10))
    state = buffer.__dict__.copy()  # as a buffer of the previous release pickled itself
    state["_sum_tree"] = state.pop("_prioritizer").tree
    loaded = PrioritizedReplayBuffer.__new__(PrioritizedReplayBuffer)
    loaded.__setstate__(state)
    np.testing.assert_array_equal(loaded.priorities(), buffer.priorities())
    np.random.seed(0)
    indices = loaded.sample(8).indices
    np.random.seed(0)
    np.testing.assert_array_equal(buffer.sample(8).indices, indices)


def test_rank_prioritized_dqn_learns_through_the_mixin() -> None:
    from sb3_ext import D3QN

    model = D3QN(
        "MlpPolicy",
        "CartPole-v1",
        learning_starts=50,
        train_freq=1,
        batch_size=16,
        buffer_size=300,  # wraps around
        replay_buffer_kwargs=dict(prioritization="rank", rank_sort_interval=7),
        seed=0,
    )
    model.learn(400)
    buffer = model.replay_buffer
    assert isinstance(buffer, PrioritizedReplayBuffer) and buffer.prioritization == "rank"
    assert buffer._priorities_updated and 0 < buffer.mean_priority() <= 1


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
        (dict(prioritization="ranked"), r"did you mean 'rank'.*\(valid: proportional, rank, lap\)"),
        (dict(prioritization="rank", rank_sort_interval=0), "rank_sort_interval must be None or an integer >= 1"),
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
