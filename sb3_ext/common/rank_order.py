"""Transitions ordered by priority, for rank-based prioritized replay (Schaul et al. 2016, section 3.3).

Rank-based prioritization samples the transition of rank ``r`` (1 for the largest priority) with probability
proportional to ``(1 / r) ** alpha``. :class:`RankOrder` keeps the ranks; sampling maps ranks drawn from that
distribution to transitions. Like the binary heap of Schaul et al. (and sony/nnabla-rl's ``MaxHeap``) the order is
only approximately right between two sorts: a priority set by :meth:`RankOrder.update` is stored at once, but the
transition keeps its rank until the next :meth:`RankOrder.sort`, which the caller makes every few updates (the sort
is the cost of rank-based replay, amortised over the updates between two sorts), or, among the first ranks, until the
next :meth:`RankOrder.sort_top`, cheap enough for every update. New transitions go to the top
(:meth:`RankOrder.insert`: rank 1, the newest first) until a sort puts them where their priority belongs.

Layout. The order is a flat array of leaf ids (one leaf per stored transition) in rank order, ``order[head:]``,
twice as long as the number of leaves: a sort writes the ranked leaves at the end of the array, and new leaves are
written just above ``head``, which moves down, so that no entry ever moves between two sorts. A leaf that is
overwritten (a circular buffer writing a new transition into its slot) or removed leaves a *hole* (``-1``) in its old
place; the ``r``-th rank is the ``r``-th entry that is not a hole, found for a whole batch of ranks with one
``searchsorted`` over the (few) sorted hole positions. A sort drops the holes and merges the leaves whose priority
changed (sorted among themselves) into the others, which are still in order: ``O(n + m log m)`` for ``m`` changed
leaves out of ``n``, with a handful of numpy calls and no Python loop.
"""

from __future__ import annotations

import numpy as np

__all__ = ["RankOrder"]


class RankOrder:
    """
    Leaves ``0 .. capacity - 1`` (stored transitions), each with a priority, ranked by decreasing priority.

    :param capacity: number of leaves
    """

    def __init__(self, capacity: int) -> None:
        if isinstance(capacity, bool) or not isinstance(capacity, (int, np.integer)) or capacity < 1:
            raise ValueError(f"the capacity of a rank order must be a positive integer, got {capacity!r}")
        self.capacity = int(capacity)
        self._length = 2 * self.capacity
        #: the priority of each leaf (read where the leaf is ranked)
        self.priorities = np.zeros(self.capacity)
        # order[head:]: ranked leaves, best first, -1 for holes; keys[p]: -priority of order[p] when it was placed
        self._order = np.full(self._length, -1, dtype=np.int64)
        self._keys = np.zeros(self._length)
        self._head = self._length
        # where each leaf is in _order (-1: not ranked)
        self._slot = np.full(self.capacity, -1, dtype=np.int64)
        # sorted positions of the holes in order[head:], and those minus their count before them (see _positions)
        self._holes = np.empty(0, dtype=np.int64)
        self._hole_offsets = np.empty(0, dtype=np.int64)
        # leaves out of their place since the last sort (new, or a new priority)
        self._moved = np.zeros(self.capacity, dtype=bool)

    def __len__(self) -> int:
        """:return: the number of ranked leaves"""
        return self._length - self._head - len(self._holes)

    def insert(self, leaves: np.ndarray, priority: float) -> None:
        """
        Rank leaves at the top, the last of ``leaves`` first, with a priority; a leaf that was ranked already (its
        slot overwritten) leaves its old rank.

        :param leaves: distinct leaf indices (1-D int64)
        :param priority: their priority
        """
        self._unrank(leaves)
        count = len(leaves)
        if count > self._head or len(self._holes) > max(1024, len(self) // 64):
            self.sort()  # (no room left above the ranked leaves, or many holes to skip)
        start = self._head - count
        self._order[start : self._head] = leaves[::-1]
        self._keys[start : self._head] = -priority
        self._slot[leaves[::-1]] = np.arange(start, self._head)
        self._head = start
        self.priorities[leaves] = priority
        self._moved[leaves] = True

    def remove(self, leaves: np.ndarray) -> None:
        """
        Unrank leaves (they can no longer be sampled); unranked leaves are ignored.

        :param leaves: leaf indices (1-D int64)
        """
        self._unrank(leaves)
        self.priorities[leaves] = 0.0

    def update(self, leaves: np.ndarray, priorities: np.ndarray) -> None:
        """
        Give ranked leaves new priorities; their ranks change at the next :meth:`sort`.

        :param leaves: ranked leaf indices (1-D int64)
        :param priorities: their new priorities (finite; for a repeated leaf numpy keeps one)
        """
        self.priorities[leaves] = priorities
        self._moved[leaves] = True

    def sort(self) -> None:
        """
        Put every ranked leaf at the rank its priority gives (of equal priorities, those moved since the last sort go
        first).
        """
        ranked, keys = self._order[self._head :], self._keys[self._head :]
        moved = self._moved[ranked]  # (a hole, -1, reads the last leaf's flag: cleared below)
        stay = ~moved
        if len(self._holes):
            holes = ranked < 0
            moved[holes] = stay[holes] = False
        elif not moved.any():
            return
        # The others are still in order (their priorities have not changed): sort the moved ones, then merge the two
        # sorted runs with a stable sort (one merge pass), the moved ones first for equal keys.
        moving = ranked[moved]
        moving_keys = -self.priorities[moving]
        by_key = np.argsort(moving_keys)
        n_moving = len(moving)
        n = n_moving + int(np.count_nonzero(stay))
        runs, run_keys = np.empty(n, dtype=np.int64), np.empty(n)
        np.take(moving, by_key, out=runs[:n_moving])
        np.take(moving_keys, by_key, out=run_keys[:n_moving])
        np.compress(stay, ranked, out=runs[n_moving:])
        np.compress(stay, keys, out=run_keys[n_moving:])
        merged = np.argsort(run_keys, kind="stable")
        self._head = self._length - n
        np.take(runs, merged, out=self._order[self._head :])
        np.take(run_keys, merged, out=self._keys[self._head :])
        self._slot[self._order[self._head :]] = np.arange(self._head, self._length)
        self._holes = self._hole_offsets = np.empty(0, dtype=np.int64)
        self._moved[:] = False

    def sort_top(self, count: int) -> None:
        """
        Re-rank the leaves of the first ``count`` ranks among themselves by their priorities (of equal priorities, the
        one ranked first stays first): cheaper than :meth:`sort` for a small ``count``, and exact for the leaves that
        are sampled most, which otherwise keep their ranks after an update lowered their priorities.

        :param count: number of ranks (all of them if there are fewer)
        """
        count = min(count, len(self))
        positions = self._positions(np.arange(count))
        leaves = self._order[positions]
        keys = -self.priorities[leaves]
        by_key = np.argsort(keys, kind="stable")
        leaves = leaves[by_key]
        self._order[positions], self._keys[positions] = leaves, keys[by_key]
        self._slot[leaves] = positions

    def leaves(self, ranks: np.ndarray) -> np.ndarray:
        """
        :param ranks: 0-based ranks (0: the largest priority), each ``< len(self)``; sorted for the fastest search
        :return: the leaves at these ranks
        """
        return self._order[self._positions(ranks)]

    def _positions(self, ranks: np.ndarray) -> np.ndarray:
        """:return: where the leaves of 0-based ranks are in ``_order``"""
        positions = ranks + self._head
        if len(self._holes):
            # The r-th entry that is not a hole is at head + r + (number of holes before it): hole j (sorted) is
            # before it when the entries that are not holes before hole j, hole_j - head - j, are at most r.
            positions += np.searchsorted(self._hole_offsets, positions, side="right")
        return positions

    def ranks(self) -> np.ndarray:
        """:return: the 0-based rank of every leaf, -1 for the leaves that are not ranked"""
        ranks = np.full(self.capacity, -1, dtype=np.int64)
        ranked = self._slot >= 0
        positions = self._slot[ranked]
        ranks[ranked] = positions - self._head - np.searchsorted(self._holes, positions)
        return ranks

    def _unrank(self, leaves: np.ndarray) -> None:
        """Turn the entries of the ranked ones among ``leaves`` into holes."""
        slots = self._slot[leaves]
        slots = slots[slots >= 0]
        if not len(slots):
            return
        self._order[slots] = -1
        self._slot[leaves] = -1
        slots.sort()
        self._holes = np.insert(self._holes, np.searchsorted(self._holes, slots), slots)
        self._hole_offsets = self._holes - np.arange(len(self._holes))
