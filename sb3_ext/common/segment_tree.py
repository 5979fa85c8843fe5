"""Vectorised segment trees (sum and min) for prioritized experience replay.

Layout. ``capacity`` leaves are padded with neutral elements (0 for sums, +inf for minima) to ``size``, the next power
of two, and stored with their ancestors in one flat float64 array in heap layout: node ``i`` has children ``2i`` and
``2i + 1``, and leaf ``j`` is node ``size + j``. The top of the heap is cut off: the highest level kept, the *root row*,
holds at most :data:`MAX_ROOT_ROW` nodes (nodes ``r .. 2r - 1``); a reduction over all leaves reduces this row, and a
prefix-sum query scans it with one ``cumsum`` and one ``searchsorted`` before descending. Padding and unwritten leaves
hold the neutral element, so they change no reduction.

Cost. A batch operation runs one numpy call per tree level below the root row, never a Python loop over the batch
items: O(log capacity) calls per batch, each over the whole batch. Cutting off the top ~10 levels replaces 10 of these
calls (each costs ~1 us of numpy overhead, whatever the batch) by one scan of at most 1024 floats.

Exactness. A write sets the leaves and recomputes each ancestor from its two children; nothing is ever updated by
adding a delta, so reductions cannot drift however many writes are made: they always equal the reduction of the
current leaves to float precision.
"""

from __future__ import annotations

from typing import overload

import numpy as np

__all__ = ["MAX_ROOT_ROW", "MinTree", "SegmentTree", "SumTree"]

#: Largest number of nodes in the root row (a power of two).
MAX_ROOT_ROW = 1024


class SegmentTree:
    """
    A binary segment tree over ``capacity`` float64 leaves, with batched, vectorised writes and reads.

    Leaves are indexed ``0 .. capacity - 1``; indexing takes an int or an integer array, e.g. ``tree[idx] = values``.

    :param capacity: number of leaves, any positive integer (it is padded to a power of two internally)
    :param operation: the associative and commutative ufunc that combines two children (``np.add``, ``np.minimum``)
    :param neutral_element: its neutral element, the value of unwritten and padding leaves
    """

    def __init__(self, capacity: int, operation: np.ufunc, neutral_element: float) -> None:
        if isinstance(capacity, bool) or not isinstance(capacity, (int, np.integer)) or capacity < 1:
            raise ValueError(f"the capacity of a segment tree must be a positive integer, got {capacity!r}")
        self.capacity = int(capacity)
        self.operation = operation
        self.neutral_element = float(neutral_element)
        depth = (self.capacity - 1).bit_length()  # levels between a single root and the leaves
        self._size = 1 << depth
        root_level = min(depth, MAX_ROOT_ROW.bit_length() - 1)
        self._root = 1 << root_level  # first node of the root row; the row is nodes [_root, 2 * _root)
        self._levels = depth - root_level  # levels between the root row and the leaves
        # Right shifts that take a leaf to each of its kept ancestors, the leaf itself first.
        self._shifts = np.arange(self._levels + 1, dtype=np.int64)[:, None]
        self._value = np.full(2 * self._size, self.neutral_element, dtype=np.float64)

    def __len__(self) -> int:
        return self.capacity

    @overload
    def __getitem__(self, index: int) -> float: ...

    @overload
    def __getitem__(self, index: np.ndarray) -> np.ndarray: ...

    def __getitem__(self, index: int | np.ndarray) -> float | np.ndarray:
        """
        :param index: a leaf index, or an integer array of them
        :return: the leaf value, or an array of leaf values of the same shape as ``index``
        """
        if isinstance(index, (int, np.integer)):
            return float(self._value[self._nodes(np.asarray(index))])
        return self._value[self._nodes(np.asarray(index))]

    def __setitem__(self, index: int | np.ndarray, value: float | np.ndarray) -> None:
        """
        Set leaves, then recompute their ancestors from their children.

        :param index: a leaf index, or an integer array of them. An index may repeat: numpy keeps one of its values,
            and the ancestors are recomputed from the leaves as they are after the write, so the tree stays consistent.
        :param value: one value for all, or one value per index
        """
        nodes = self._nodes(np.asarray(index).reshape(-1))
        values = np.asarray(value, dtype=np.float64).reshape(-1)
        if values.shape != nodes.shape:
            values = np.broadcast_to(values, nodes.shape)
        self._check_values(values)
        self._write(nodes, values)

    def update(self, index: np.ndarray, value: np.ndarray) -> None:
        """
        ``tree[index] = value`` without the argument checks, for callers that have made them: ``index`` must be a 1-D
        integer array of valid leaf indices and ``value`` a float64 array of the same shape (non-negative and finite for
        a :class:`SumTree`, not NaN).

        :param index: leaf indices
        :param value: their new values
        """
        self._write(index + self._size, value)

    def reduce(self) -> float:
        """:return: the operation reduced over all leaves (a :class:`SumTree`'s total, a :class:`MinTree`'s minimum)"""
        return float(self.operation.reduce(self._value[self._root : 2 * self._root]))

    def leaves(self) -> np.ndarray:
        """:return: a read-only view of the ``capacity`` leaf values"""
        view = self._value[self._size : self._size + self.capacity]
        view.flags.writeable = False
        return view

    def _nodes(self, index: np.ndarray) -> np.ndarray:
        """Check leaf indices and turn them into node indices."""
        if index.dtype.kind not in "iu":
            raise IndexError(f"segment tree indices must be integers, got dtype {index.dtype}")
        index = index.astype(np.int64, copy=False)
        if (index.view(np.uint64) >= self.capacity).any():  # negative indices wrap to huge unsigned ones
            raise IndexError(
                f"segment tree index out of range [0, {self.capacity}): got values in [{index.min()}, {index.max()}]"
            )
        return index + self._size

    def _check_values(self, values: np.ndarray) -> None:
        if np.isnan(values).any():
            raise ValueError("segment tree values must not be NaN")

    def _path(self, nodes: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """The ancestors of leaf nodes (row k: k levels above, up to the root row) and the siblings of the ancestors
        below the root row."""
        path = nodes >> self._shifts
        return path, path[:-1] ^ 1

    def _write(self, nodes: np.ndarray, values: np.ndarray) -> None:
        """Write leaf nodes, then recompute each level of their ancestors, up to the root row, from both children."""
        tree = self._value
        tree[nodes] = values
        # Read back what was kept: copies of a repeated index now carry the same value, so they compute the same
        # ancestors below (a + b == b + a exactly), whatever order numpy writes them in.
        current = tree[nodes]
        if self._levels == 0:
            return
        ancestors, siblings = self._path(nodes)
        operation = self.operation
        for level in range(self._levels):
            # Fancy indexing, not ``take``: it is the faster of the two for a few hundred indices.
            operation(current, tree[siblings[level]], out=current)
            tree[ancestors[level + 1]] = current


class SumTree(SegmentTree):
    """
    Segment tree of sums over non-negative, finite leaves; finds leaves by prefix sum, to sample them in proportion
    to their value.

    :param capacity: number of leaves
    """

    def __init__(self, capacity: int) -> None:
        super().__init__(capacity, np.add, 0.0)

    def total(self) -> float:
        """:return: the sum of all leaves"""
        return self.reduce()

    def _check_values(self, values: np.ndarray) -> None:
        if values.size and not (values.min() >= 0 and np.isfinite(values.max())):  # also False with NaN
            raise ValueError(f"sum tree values must be finite and >= 0, got values in [{values.min()}, {values.max()}]")

    def find_prefixsum_idx(self, prefix_sums: np.ndarray) -> np.ndarray:
        """
        For each query ``v``, the leaf ``i`` with ``sum(leaves[:i]) <= v < sum(leaves[:i + 1])``: for ``v`` uniform in
        ``[0, total)``, leaf ``i`` is returned with probability ``leaves[i] / total``.

        All queries go down together: the root row is scanned with one ``cumsum`` and ``searchsorted``, then each
        level takes one numpy step, where a query goes to the right child if its remaining value is at least the
        left child's sum (and subtracts that sum). A leaf of value 0 is never returned: a value at or past the total
        gives the last leaf of positive value, and the rare query that float rounding leads into a zero leaf is redone
        with a descent that enters only subtrees of positive sum.

        :param prefix_sums: query values, any shape, normally in ``[0, total)``
        :return: leaf indices, same shape as ``prefix_sums``
        :raises ValueError: when the total is 0 (nothing to find)
        """
        values = np.asarray(prefix_sums, dtype=np.float64)
        return self.find(values.reshape(-1))[0].reshape(values.shape)

    def find(self, prefix_sums: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """
        :meth:`find_prefixsum_idx` for a 1-D float64 array of queries, returning the leaves' values too.

        :param prefix_sums: query values (1-D, float64; not modified)
        :return: the leaf indices and their values (all positive)
        :raises ValueError: when the total is 0 (nothing to find)
        """
        roots = self._value[self._root : 2 * self._root]
        cumulative = np.zeros(len(roots) + 1)
        np.add.accumulate(roots, out=cumulative[1:])
        if not cumulative[-1] > 0:
            raise ValueError("cannot search a sum tree whose total is 0")
        nodes = self._descend(prefix_sums, cumulative, guard=False)
        found = self._value[nodes]
        if len(found) and not np.minimum.reduce(found) > 0:
            empty = found <= 0
            nodes[empty] = self._descend(prefix_sums[empty], cumulative, guard=True)
            found = self._value[nodes]
        nodes -= self._size
        return nodes, found

    def _descend(self, values: np.ndarray, cumulative: np.ndarray, guard: bool) -> np.ndarray:
        """
        Batched descent from the root row to the leaves.

        :param values: prefix sums (not modified)
        :param cumulative: 0 followed by the cumulative sums of the root row
        :param guard: enter only subtrees of positive sum (slower; for the rare queries that rounding misleads)
        :return: leaf node indices
        """
        # Root j is the first whose cumulative sum exceeds the value (the last root for a value at or past the
        # total: the last sum is not searched); roots of sum 0 are never the first.
        root = cumulative[1:-1].searchsorted(values, side="right")
        if guard:  # not past the last root of positive sum
            np.minimum(root, np.flatnonzero(np.diff(cumulative) > 0)[-1], out=root)
        remaining = values - cumulative[root]  # >= 0: cumulative[root] <= value
        nodes = root
        nodes += self._root
        tree = self._value
        go_right = np.empty(len(values), dtype=bool)
        # One level: a handful of numpy calls on the whole batch, in place where numpy allows it.
        for _ in range(self._levels):
            nodes += nodes  # left children
            left = tree[nodes]
            np.greater_equal(remaining, left, out=go_right)
            if guard:
                go_right &= tree[nodes + 1] > 0
            np.multiply(left, go_right, out=left)
            remaining -= left
            nodes += go_right
        return nodes


class MinTree(SegmentTree):
    """
    Segment tree of minima; unwritten leaves are +inf.

    :param capacity: number of leaves
    """

    def __init__(self, capacity: int) -> None:
        super().__init__(capacity, np.minimum, float("inf"))

    def min(self) -> float:
        """:return: the smallest leaf (+inf while no leaf has been written)"""
        return self.reduce()
