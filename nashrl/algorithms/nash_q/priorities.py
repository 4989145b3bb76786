r"""Proportional prioritised replay (Schaul, Quan, Antonoglou and Silver 2016, "Prioritized
Experience Replay", ICLR), for the joint replay of :mod:`nashrl.algorithms.nash_q.replay`.

Transition :math:`j` is sampled with probability

.. math::

    P(j) = \frac{p_j^\alpha}{\sum_k p_k^\alpha}, \qquad p_j = |\delta_j| + \epsilon,

where :math:`\delta_j` is its last TD error (for a joint transition: the mean over the firms of
:math:`|Q_i(s, a) - y_i|`), :math:`\alpha = 0` is uniform sampling, and a new transition gets the
largest priority seen so far (so it is replayed at least once soon). The bias this brings is
corrected by importance-sampling weights in the loss,

.. math::

    w_j = \big(n\, P(j)\big)^{-\beta} / \max_{k \in \text{sample}} w_k

(:math:`n` the transitions held; normalised by the largest weight of the rows drawn together, the
minibatches of one learner call, as Dopamine normalises by its batch's, not by the buffer's; so
the weights are at most 1). Sampling is stratified: the total mass is cut into as many equal
segments as rows and one row drawn in each.

:class:`SumTree` keeps the :math:`p_j^\alpha` in the leaves of a binary tree whose inner nodes
hold the sums of their children: updates and draws take :math:`O(\log n)` steps, each vectorised
over a batch.
"""

from __future__ import annotations

import numpy as np


class SumTree:
    """A binary sum tree over ``capacity`` non-negative leaves (node 1 the root; node k's children
    2k and 2k+1; the leaves from ``self.leaves`` on)."""

    def __init__(self, capacity: int):
        if capacity < 1:
            raise ValueError(f"SumTree: expected capacity >= 1, got {capacity}")
        self.capacity = int(capacity)
        self.leaves = 1 << max(0, (self.capacity - 1).bit_length())
        self.depth = self.leaves.bit_length() - 1
        self.tree = np.zeros(2 * self.leaves, dtype=np.float64)

    @property
    def total(self) -> float:
        return float(self.tree[1])

    def values(self, index: np.ndarray) -> np.ndarray:
        return self.tree[self.leaves + np.asarray(index, dtype=np.int64)]

    def update(self, index: np.ndarray, values: np.ndarray) -> None:
        """Set leaves ``index`` to ``values`` (finite, >= 0; a repeated index keeps its last value)."""
        index = np.asarray(index, dtype=np.int64)
        values = np.broadcast_to(np.asarray(values, dtype=np.float64), index.shape)
        if index.size == 0:
            return
        if not np.all(np.isfinite(values)) or np.any(values < 0):
            raise ValueError("SumTree.update: expected finite priorities >= 0")
        if np.any(index < 0) or np.any(index >= self.capacity):
            raise IndexError(f"SumTree.update: index outside 0..{self.capacity - 1}")
        # The last occurrence of each index wins (fancy assignment does not promise it).
        last = len(index) - 1 - np.unique(index[::-1], return_index=True)[1]
        nodes = index[last] + self.leaves
        self.tree[nodes] = values[last]
        for _ in range(self.depth):
            nodes = np.unique(nodes // 2)
            self.tree[nodes] = self.tree[2 * nodes] + self.tree[2 * nodes + 1]

    def find(self, mass: np.ndarray) -> np.ndarray:
        """The leaf of each prefix mass in ``[0, total)``: the first leaf whose cumulative sum exceeds it."""
        mass = np.array(mass, dtype=np.float64)
        node = np.ones(mass.shape, dtype=np.int64)
        for _ in range(self.depth):
            left = 2 * node
            left_mass = self.tree[left]
            right = mass >= left_mass
            mass = np.where(right, mass - left_mass, mass)
            node = np.where(right, left + 1, left)
        return node - self.leaves

    def sample(self, size: int, held: int, rng: np.random.Generator) -> np.ndarray:
        """``size`` stratified proportional draws among the first ``held`` leaves."""
        total = self.tree[1]
        if held < 1 or not total > 0:
            raise ValueError("SumTree.sample: no priority mass to sample from")
        mass = (np.arange(size) + rng.random(size)) * (total / size)
        index = self.find(mass)
        # Rounding can carry a draw past the last held leaf (whose right neighbours are 0): pull it back.
        return np.minimum(index, held - 1)
