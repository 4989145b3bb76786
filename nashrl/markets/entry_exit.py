r"""Dynamic entry and exit, the Monte Carlo design of Aguirregabiria and Mira (2007, Econometrica, section 4).

:math:`N` firms (5 in the paper), each active (:math:`a_i = 1`) or not (0) every period. Public
state: market size :math:`s_t \in \{1, \dots, S\}` (``market_sizes``, 5 in the paper) and last
period's activity of every firm, :math:`S \cdot 2^N` states (160). Market size follows a
tridiagonal chain: stay with ``size_stay`` (0.6), one step up or down with ``size_move`` (0.2)
each; at the edges stay with :math:`1 -` ``size_move`` (0.8). An active firm earns

.. math::

    \pi_i = \theta_{FC,i} - \theta_{EC} (1 - a_{i,t-1}) + \theta_{RS}\, s_t
            - \theta_{RN} \ln(1 + N_{-i,t}),

:math:`N_{-i,t}` the number of active rivals this period; an inactive firm earns 0. Each action
has a private type-1 extreme-value shock of scale :math:`\sigma` (``sigma``, 1), :math:`\beta = 0.95`
(``discount``). Defaults are the paper's: :math:`\theta_{FC} = (-1.9, -1.8, -1.7, -1.6, -1.5)`,
:math:`\theta_{RS} = 1`, :math:`\theta_{EC} = 1`, :math:`\theta_{RN}` one of the design's cells
1.0, 2.5 or 4.0 (default 2.5). ``n_firms`` and ``market_sizes`` scale the game up (a scalar
``theta_fc`` is shared by every firm; a list needs one value per firm).
"""

from __future__ import annotations

from typing import Any

import numpy as np

from nashrl.markets import validation as v
from nashrl.markets.private_shocks import SHOCK_FIELDS, PrivateShockMarket, markov_chain

AM2007_THETA_FC = (-1.9, -1.8, -1.7, -1.6, -1.5)


def tridiagonal_chain(sizes: int, stay: float, move: float, field: str) -> np.ndarray:
    """Market-size chain: ``stay`` / ``move`` up / ``move`` down inside, ``1 - move`` at the edges."""
    m = np.zeros((sizes, sizes))
    for k in range(sizes):
        if k > 0:
            m[k, k - 1] = move
        if k < sizes - 1:
            m[k, k + 1] = move
        m[k, k] = stay if 0 < k < sizes - 1 else 1.0 - move
    if sizes == 1:
        m[0, 0] = 1.0
    return markov_chain(m, field)


class EntryExitMarket(PrivateShockMarket):
    market_type = "entry_exit"
    action_label = "active"
    #: Profit depends on the rivals through how many are active (:meth:`aggregate_profits`), so
    #: Nash-Q's aggregative head holds each firm's Q at 0..N-1 active rivals (N * 2 * N outputs).
    aggregative = True
    metadata = {**PrivateShockMarket.metadata, "name": "entry_exit_v0"}
    FIELDS = SHOCK_FIELDS | {
        "n_firms",
        "market_sizes",
        "size_stay",
        "size_move",
        "size_transition",
        "theta_fc",
        "theta_rs",
        "theta_ec",
        "theta_rn",
    }

    def __init__(self, **params: Any):
        v.only_known(params, self.FIELDS, "market")
        n = v.n_firms(params.get("n_firms", 5))
        self.sizes = v.integer(params.get("market_sizes", 5), "market.market_sizes")
        if "size_transition" in params:
            if {"size_stay", "size_move"} & set(params):
                raise v.ConfigError("market.size_transition: give either the matrix or size_stay/size_move, not both")
            chain = markov_chain(params["size_transition"], "market.size_transition")
            if chain.shape[0] != self.sizes:
                raise v.ConfigError(
                    f"market.size_transition: expected {self.sizes}x{self.sizes} (market_sizes), got {chain.shape}"
                )
        else:
            stay = v.number(params.get("size_stay", 0.6), "market.size_stay", nonneg=True)
            move = v.number(params.get("size_move", 0.2), "market.size_move", nonneg=True)
            chain = tridiagonal_chain(self.sizes, stay, move, "market.size_stay/size_move")
        default_fc = list(AM2007_THETA_FC) if n == len(AM2007_THETA_FC) else -1.7
        self.theta_fc = v.per_firm(params.get("theta_fc", default_fc), n, "market.theta_fc")
        self.theta_rs = v.number(params.get("theta_rs", 1.0), "market.theta_rs")
        self.theta_ec = v.number(params.get("theta_ec", 1.0), "market.theta_ec")
        self.theta_rn = v.number(params.get("theta_rn", 2.5), "market.theta_rn")
        super().__init__(n, 2, chain, {"discount": 0.95, **params})

    def flow_profits(self, z: np.ndarray, previous: np.ndarray, joint: np.ndarray) -> np.ndarray:
        joint = np.asarray(joint)
        active = joint.astype(float)
        rivals = active.sum(-1, keepdims=True) - active
        size = np.asarray(z, dtype=float)[..., None] + 1.0  # s in 1..S
        return active * self._active_profit(self.theta_fc, np.asarray(previous, dtype=float), size, rivals)

    def _active_profit(self, theta_fc, previous, size, rivals):
        """The module doc's profit of an active firm (broadcast over its arguments)."""
        return theta_fc - self.theta_ec * (1.0 - previous) + self.theta_rs * size - self.theta_rn * np.log1p(rivals)

    def contributions(self) -> np.ndarray:
        """An active firm adds one to each rival's count of active rivals."""
        return np.tile([0.0, 1.0], (self.n_firms, 1))

    def aggregate_profits(self, state: np.ndarray, firm: int, aggregate: np.ndarray) -> np.ndarray:
        """``[..., 2]``: ``firm``'s flow profit inactive (0) and active at states ``[..., 1 + N]``
        (``[z, a_{t-1,1..N}]``) when ``aggregate`` ``[...]`` rivals are active (broadcast)."""
        state = np.asarray(state, dtype=float)
        rivals = np.asarray(aggregate, dtype=float)
        active = self._active_profit(self.theta_fc[firm], state[..., 1 + firm], state[..., 0] + 1.0, rivals)
        return np.stack([np.zeros_like(active), active], -1)

    def firm_views(self) -> np.ndarray | None:
        """With one fixed cost shared by every firm the firms are exchangeable: firm ``i`` sees the
        market size, then last period's activity rotated to start at its own
        ``(a_i, a_{i+1}, ..., a_{i-1})`` (``scaled`` and ``onehot`` encodings)."""
        if np.ptp(self.theta_fc) != 0.0 or self.encoding == "state":
            return None
        n = self.n_firms
        firms = (np.arange(n)[:, None] + np.arange(n)[None, :]) % n  # [i, j]: firm i's j-th entry
        if self.encoding == "scaled":
            return np.concatenate([np.zeros((n, 1), dtype=np.int64), 1 + firms], 1)
        block = self.n_exo + firms[..., None] * self.n_actions + np.arange(self.n_actions)
        exo = np.broadcast_to(np.arange(self.n_exo), (n, self.n_exo))
        return np.concatenate([exo, block.reshape(n, -1)], 1).astype(np.int64)

    def profit_features(self, z: np.ndarray, previous: np.ndarray, joint: np.ndarray) -> np.ndarray:
        """``[..., N, N + 3]``: an active firm's own fixed-effect dummy, market size, minus the entry
        indicator ``1 - a_{i,t-1}``, minus ``ln(1 + active rivals)``; zeros when inactive."""
        joint = np.asarray(joint)
        active = joint.astype(float)
        shape = np.broadcast_shapes(np.shape(z) + (1,), np.shape(previous), joint.shape)
        n = self.n_firms
        rivals = active.sum(-1, keepdims=True) - active
        size = np.broadcast_to(np.asarray(z, dtype=float)[..., None] + 1.0, shape)
        entering = np.broadcast_to(1.0 - np.asarray(previous, dtype=float), shape)
        features = np.zeros((*shape, n + 3))
        features[..., :n] = np.broadcast_to(np.eye(n), (*shape[:-1], n, n))
        features[..., n] = size
        features[..., n + 1] = -entering
        features[..., n + 2] = -np.log1p(np.broadcast_to(rivals, shape))
        return features * np.broadcast_to(active, shape)[..., None]

    def coefficients(self) -> dict[str, float]:
        """The true profit coefficients (simulated panels store them in their metadata)."""
        out = {f"theta_fc_{i}": float(x) for i, x in enumerate(self.theta_fc)}
        return {**out, "theta_rs": self.theta_rs, "theta_ec": self.theta_ec, "theta_rn": self.theta_rn}

    #: Config field of each coefficient (``theta_fc_<i>`` is element i of ``theta_fc``).
    def coefficient_field(self, name: str) -> str:
        return "theta_fc" if name.startswith("theta_fc_") else name

    def state_labels(self) -> list[str]:
        return ["market_size", *[f"active_last_{i}" for i in range(self.n_firms)]]

    def state_values(self, state: np.ndarray) -> np.ndarray:
        """States in the market's units: market size 1..S, last activity 0/1."""
        state = np.asarray(state)
        return np.concatenate([state[..., :1] + 1, state[..., 1:]], axis=-1)

    def state_from_values(self, values: np.ndarray) -> np.ndarray:
        """Inverse of :meth:`state_values` (panel columns to the internal state)."""
        values = np.asarray(values)
        return np.concatenate([values[..., :1] - 1, values[..., 1:]], axis=-1)
