from __future__ import annotations

import math

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from sb3_ext.common.segment_tree import MAX_ROOT_ROW, MinTree, SumTree

# Chi-square critical value for 9 degrees of freedom at p = 0.001.
CHI2_9DOF_999 = 27.877


def naive_find(leaves: np.ndarray, values: np.ndarray) -> np.ndarray:
    """First leaf whose inclusive prefix sum exceeds each value."""
    return np.searchsorted(np.cumsum(leaves), values, side="right")


@st.composite
def update_sequences(draw: st.DrawFn) -> tuple[int, list[tuple[np.ndarray, np.ndarray]]]:
    # Capacities around the root row and powers of two, most of them not powers of two.
    capacity = draw(st.sampled_from([1, 2, 3, 5, 17, 100, MAX_ROOT_ROW - 1, MAX_ROOT_ROW + 1, 2 * MAX_ROOT_ROW + 3, 5000]))
    seed = draw(st.integers(0, 2**32 - 1))
    n_batches = draw(st.integers(1, 30))
    rng = np.random.default_rng(seed)
    batches = []
    for _ in range(n_batches):
        size = int(rng.integers(1, 300))
        index = rng.integers(0, capacity, size)  # repeats included
        # Small integers: every partial sum is exact in float64, so tree and reference must agree exactly.
        values = rng.integers(0, 50, size).astype(np.float64) * (rng.random(size) < 0.8)
        batches.append((index, values))
    return capacity, batches


@settings(max_examples=60, deadline=None)
@given(update_sequences())
def test_sum_and_min_trees_match_naive_numpy(case: tuple[int, list[tuple[np.ndarray, np.ndarray]]]) -> None:
    capacity, batches = case
    sum_tree, min_tree = SumTree(capacity), MinTree(capacity)
    reference = np.zeros(capacity)
    written = np.zeros(capacity, dtype=bool)
    rng = np.random.default_rng(capacity)
    for index, values in batches:
        sum_tree[index] = values
        min_tree[index] = values
        reference[index] = values  # the same numpy assignment, so the same value is kept for a repeated index
        written[index] = True

        np.testing.assert_array_equal(sum_tree.leaves(), reference)
        np.testing.assert_array_equal(sum_tree[index], reference[index])
        assert sum_tree.total() == reference.sum()
        assert min_tree.min() == reference[written].min()
        if reference.sum() > 0:
            queries = rng.integers(0, int(reference.sum()), 200) + 0.5
            queries = np.concatenate([queries, np.cumsum(reference)[:-1]])  # exactly on the boundaries too
            queries = queries[queries < reference.sum()]
            np.testing.assert_array_equal(sum_tree.find_prefixsum_idx(queries), naive_find(reference, queries))


@settings(max_examples=30, deadline=None)
@given(st.integers(1, 3000), st.integers(0, 2**32 - 1))
def test_float_prefix_sums_land_in_the_right_interval(capacity: int, seed: int) -> None:
    rng = np.random.default_rng(seed)
    leaves = rng.random(capacity) ** 4 * (rng.random(capacity) < 0.9)  # wide range, some zeros
    if leaves.sum() == 0:
        leaves[0] = 1.0
    tree = SumTree(capacity)
    tree[np.arange(capacity)] = leaves
    queries = rng.random(500) * tree.total()
    found = tree.find_prefixsum_idx(queries)
    cumulative = np.cumsum(leaves)
    tolerance = 1e-12 * leaves.sum()
    assert (leaves[found] > 0).all()
    assert (cumulative[found] - leaves[found] <= queries + tolerance).all()
    assert (queries < cumulative[found] + tolerance).all()


def test_total_does_not_drift_over_a_million_updates() -> None:
    capacity = 10_007
    rng = np.random.default_rng(0)
    tree = SumTree(capacity)
    for _ in range(4_000):  # 4000 batches of 256: ~10^6 leaf updates
        tree[rng.integers(0, capacity, 256)] = rng.random(256) * 10.0 ** rng.integers(-6, 4, 256)
    exact = math.fsum(tree.leaves())
    assert abs(tree.total() - exact) <= 1e-12 * exact
    # Every node, not only the root, is the sum of its children.
    value, size = tree._value, tree._size
    for level_start in (size // 2, tree._root):
        nodes = np.arange(level_start, 2 * level_start)
        np.testing.assert_allclose(value[nodes], value[2 * nodes] + value[2 * nodes + 1], rtol=1e-15, atol=0)


def test_sampling_frequencies_follow_the_leaves() -> None:
    weights = np.array([1.0, 2.0, 3.0, 4.0, 0.5, 0.0, 10.0, 6.0, 1.5, 2.0, 0.0, 0.25])
    tree = SumTree(len(weights))
    tree[np.arange(len(weights))] = weights
    rng = np.random.default_rng(0)
    n = 200_000
    counts = np.bincount(tree.find_prefixsum_idx(rng.random(n) * tree.total()), minlength=len(weights))
    assert counts[weights == 0].sum() == 0
    expected = n * weights / weights.sum()
    positive = weights > 0
    chi2 = ((counts[positive] - expected[positive]) ** 2 / expected[positive]).sum()
    assert positive.sum() - 1 == 9
    assert chi2 < CHI2_9DOF_999


def test_queries_at_or_past_the_total_give_the_last_positive_leaf() -> None:
    tree = SumTree(10)
    tree[np.array([0, 3, 6])] = np.array([1.0, 2.0, 3.0])
    total = tree.total()
    found = tree.find_prefixsum_idx(np.array([total, np.nextafter(total, 0), total * 2, 0.0, 1.0, 2.999, 3.0]))
    np.testing.assert_array_equal(found, [6, 6, 6, 0, 3, 3, 6])
    assert tree.find_prefixsum_idx(np.array([[0.5, 5.0]])).shape == (1, 2)


def test_zero_leaves_are_never_found_even_with_rounding() -> None:
    # Leaves of very different magnitudes make the parents' sums inexact; zeros sit between them.
    rng = np.random.default_rng(3)
    leaves = np.zeros(4096)
    leaves[::3] = 10.0 ** rng.integers(-8, 8, len(leaves[::3])) * rng.random(len(leaves[::3]))
    tree = SumTree(len(leaves))
    tree[np.arange(len(leaves))] = leaves
    cumulative = np.cumsum(leaves)
    queries = np.concatenate([cumulative, np.nextafter(cumulative, 0), np.nextafter(cumulative, np.inf)])
    assert (leaves[tree.find_prefixsum_idx(queries)] > 0).all()


def test_capacity_one_and_scalar_access() -> None:
    tree = SumTree(1)
    tree[0] = 2.5
    assert tree[0] == 2.5 and tree.total() == 2.5 and len(tree) == 1
    np.testing.assert_array_equal(tree.find_prefixsum_idx(np.array([0.0, 2.4, 7.0])), [0, 0, 0])
    min_tree = MinTree(3)
    assert min_tree.min() == np.inf
    min_tree[np.array([0, 2])] = 4.0
    min_tree[1] = 7.0
    assert min_tree.min() == 4.0
    min_tree[np.array([0, 2])] = np.array([9.0, 8.0])
    assert min_tree.min() == 7.0


def test_bad_arguments_raise() -> None:
    with pytest.raises(ValueError, match="positive integer"):
        SumTree(0)
    with pytest.raises(ValueError, match="positive integer"):
        SumTree(2.5)  # type: ignore[arg-type]
    tree = SumTree(4)
    with pytest.raises(ValueError, match="total is 0"):
        tree.find_prefixsum_idx(np.array([0.0]))
    for bad in (-1.0, np.nan, np.inf):
        with pytest.raises(ValueError, match="finite and >= 0"):
            tree[1] = bad
    with pytest.raises(ValueError, match="NaN"):
        MinTree(4)[0] = np.nan
    for index in (4, -1, np.array([0, 4])):
        with pytest.raises(IndexError, match=r"out of range \[0, 4\)"):
            tree[index] = 1.0
    with pytest.raises(IndexError, match="integers"):
        tree[np.array([1.0])] = 1.0
    assert tree.total() == 0  # nothing was written by the refused calls
    with pytest.raises(ValueError, match="read-only"):
        tree.leaves()[0] = 1.0
