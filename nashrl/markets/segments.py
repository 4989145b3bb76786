r"""Logit Bertrand with many consumer segments whose sizes move over time (high-dimensional state).

:math:`S` segments (``n_segments``, default 64) differ in price sensitivity
:math:`\mu_s` (log-spaced on ``[mu_low, mu_high]``) and outside option :math:`a_{0s}`.
Segment weights are :math:`w_t = \mathrm{softmax}(z_t)` with log-sizes following
:math:`z_{t+1} = \rho z_t + \sigma \varepsilon_t`, :math:`\varepsilon_t \sim N(0, I)`.
Demand is the mixture of logits of :mod:`nashrl.theory.segments`; profits
:math:`(p_i - c_i) q_i(p; w_t)`.

The price grid is Calvano's construction around the static Nash and joint-profit
prices at equal segment weights. The exogenous weights are the payoff-relevant state;
the benchmark is the static Nash equilibrium at the current weights, evaluated at equal
weights and at ``evaluation_states`` (default 32) draws from the weights' stationary law.

State: ``[z (S floats), last memory periods' price indices]``. Observation: the segment
weights (S entries) followed by the scaled past price indices, so the observation has
``S + memory * N >= 50`` entries at the default. ``encoding`` says how the weights enter:
``weights`` (default) :math:`w_t` as they are, each near :math:`1/S` (0.016 for 64 segments);
``scaled`` :math:`S w_t - 1`, the same information centred at equal weights on the scale of
:math:`e^{z}` (standard deviation about 0.8 at the defaults), the input scale a network's
initialisation expects.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from nashrl.markets import validation as v
from nashrl.markets.base import COMMON_FIELDS, RepeatedGameMarket
from nashrl.theory import segments

#: How the observation holds the segment weights (see the module docstring).
ENCODINGS = ("weights", "scaled")


class SegmentsMarket(RepeatedGameMarket):
    market_type = "logit_segments"
    action_label = "price"
    metadata = {**RepeatedGameMarket.metadata, "name": "logit_segments_v0"}
    deterministic = False  # random state process
    FIELDS = COMMON_FIELDS | {
        "n_firms",
        "n_segments",
        "a",
        "a0",
        "mu_low",
        "mu_high",
        "costs",
        "rho",
        "sigma",
        "m",
        "xi",
        "memory",
        "evaluation_states",
        "encoding",
    }

    def __init__(self, **params: Any):
        v.only_known(params, self.FIELDS, "market")
        n = v.n_firms(params.get("n_firms", 2))
        self.n_segments = v.integer(params.get("n_segments", 64), "market.n_segments")
        self.a = v.per_firm(params.get("a", 2.0), n, "market.a")
        self.costs = v.per_firm(params.get("costs", 1.0), n, "market.costs", nonneg=True)
        if np.any(self.a <= self.costs):
            raise v.ConfigError("market.a: expected quality a > marginal cost for every firm")
        mu_low = v.number(params.get("mu_low", 0.1), "market.mu_low", positive=True)
        mu_high = v.number(params.get("mu_high", 0.5), "market.mu_high", positive=True)
        if mu_high < mu_low:
            raise v.ConfigError(f"market.mu_high: expected >= mu_low ({mu_low}), got {mu_high}")
        self.mus = np.geomspace(mu_low, mu_high, self.n_segments)
        self.a0s = np.full(self.n_segments, v.number(params.get("a0", 0.0), "market.a0"))
        self.rho = v.number(params.get("rho", 0.9), "market.rho", nonneg=True, below=1.0)
        self.sigma = v.number(params.get("sigma", 0.3), "market.sigma", nonneg=True)
        #: How many draws of the segment sizes, beyond equal weights, evaluation compares a policy at.
        self.evaluation_states = v.integer(params.get("evaluation_states", 32), "market.evaluation_states", minimum=0)
        self.encoding = params.get("encoding", "weights")
        if self.encoding not in ENCODINGS:
            raise v.ConfigError(f"market.encoding: expected one of {list(ENCODINGS)}, got {self.encoding!r}")
        m = v.integer(params.get("m", 15), "market.m")
        xi = v.number(params.get("xi", 0.1), "market.xi", nonneg=True)
        equal = np.full(self.n_segments, 1.0 / self.n_segments)
        p_n = segments.nash(self.a, self.a0s, self.mus, equal, self.costs)
        p_m = self._joint_profit_price(equal, n)
        spread = float(p_m - p_n.min())
        grid = np.linspace(p_n.min() - xi * spread, p_m + xi * spread, m)
        super().__init__(n, [grid] * n, params)

    def _joint_profit_price(self, weights: np.ndarray, n_firms: int) -> float:
        """Symmetric joint-profit price at ``weights`` (a fine 1-D search; used for the grid only)."""
        prices = np.linspace(self.costs.max(), self.costs.max() + 5 * self.mus.max(), 4001)
        joint = np.stack([prices] * n_firms, -1)
        total = ((joint - self.costs) * segments.demand(self.a, self.a0s, self.mus, weights, joint)).sum(-1)
        return float(prices[np.argmax(total)])

    def weights(self, state: np.ndarray) -> np.ndarray:
        return self.weights_all(np.asarray(state)[None])[0]

    def weights_all(self, states: np.ndarray) -> np.ndarray:
        """Segment weights ``[K, S]`` (softmax of the log-sizes) of states ``[K, ...]``."""
        z = np.asarray(states, dtype=float)[:, : self.n_segments]
        e = np.exp(z - z.max(1, keepdims=True))
        return e / e.sum(1, keepdims=True)

    @property
    def observation_size(self) -> int:
        return self.n_segments + self.memory * self.n_firms

    def observation_bounds(self) -> tuple[float, float]:
        # scaled weights S w - 1 lie in [-1, S - 1]; remembered prices in [0, 1]
        return (-1.0, float(self.n_segments - 1)) if self.encoding == "scaled" else (0.0, 1.0)

    def initial_state(self, rng: np.random.Generator) -> np.ndarray:
        z = rng.normal(0.0, self.sigma / np.sqrt(max(1 - self.rho**2, 1e-9)), self.n_segments)
        return np.concatenate([z, super().initial_state(rng).ravel().astype(float)])

    # Single-copy and K-copy methods share the array code; a subclass that overrides a
    # single-copy method keeps it with K copies (the base class's loop).
    def _past(self, states: np.ndarray) -> np.ndarray:
        """Remembered price indices ``[K, memory, N]`` of states ``[K, ...]``."""
        past = np.asarray(states)[:, self.n_segments :].astype(np.int64)
        return past.reshape(len(past), self.memory, self.n_firms)

    def transition(self, state: np.ndarray, actions: np.ndarray, rng: np.random.Generator) -> np.ndarray:
        return self._next_states(np.asarray(state)[None], np.asarray(actions)[None], rng)[0]

    def transitions(self, states: np.ndarray, actions: np.ndarray, rng: np.random.Generator) -> np.ndarray:
        if not self._own(SegmentsMarket, "transition"):
            return super().transitions(states, actions, rng)
        return self._next_states(states, actions, rng)

    def _next_states(self, states: np.ndarray, actions: np.ndarray, rng: np.random.Generator) -> np.ndarray:
        """:math:`z' = \\rho z + \\sigma \\varepsilon` for every copy (one normal draw per copy and
        segment, copy by copy), the remembered prices shifted."""
        z = np.asarray(states, dtype=float)[:, : self.n_segments]
        z = self.rho * z + self.sigma * rng.normal(size=z.shape)
        past = self.shift_memory(self._past(states), np.asarray(actions, dtype=np.int64))
        return np.concatenate([z, past.reshape(len(z), -1).astype(float)], axis=1)

    def observe(self, state: np.ndarray) -> np.ndarray:
        return self._encode(np.asarray(state)[None])[0]

    def observe_all(self, states: np.ndarray) -> np.ndarray:
        if not self._own(SegmentsMarket, "observe"):
            return super().observe_all(states)
        return self._encode(states)

    def _encode(self, states: np.ndarray) -> np.ndarray:
        """Observations ``[K, S + memory * N]``: the weights (as ``encoding`` says), then the scaled
        remembered prices."""
        weights = self.weights_all(states)
        if self.encoding == "scaled":
            weights = self.n_segments * weights - 1.0
        return np.concatenate([weights, self.observe_past(self._past(states))], axis=1)

    def stage_profits(self, state: np.ndarray, actions: np.ndarray) -> np.ndarray:
        return self.stage_profits_at_prices(state, self.action_values(actions))

    def stage_profits_at_prices(self, state: np.ndarray, prices: np.ndarray) -> np.ndarray:
        """Profits at arbitrary (off-grid) prices ``[..., N]`` in ``state``."""
        return (prices - self.costs) * segments.demand(self.a, self.a0s, self.mus, self.weights(state), prices)

    def profits_at(self, states: np.ndarray, actions: np.ndarray) -> np.ndarray:
        if not self._own(SegmentsMarket, "stage_profits", "stage_profits_at_prices"):
            return super().profits_at(states, actions)
        prices = self.action_values(actions)  # [K, N]
        shares = segments.segment_shares(self.a, self.a0s, self.mus, prices)  # [K, S, N]
        demand = np.einsum("ksn,ks->kn", shares, self.weights_all(states))
        return (prices - self.costs) * demand

    def representative_states(self) -> list[np.ndarray]:
        past = np.zeros(self.memory * self.n_firms)
        return [np.concatenate([np.zeros(self.n_segments), past])]

    def benchmark_states(self) -> list[np.ndarray]:
        r"""Where policies are compared with the static Nash: equal segment weights (:math:`z = 0`)
        and ``evaluation_states`` draws of :math:`z` from its stationary law
        :math:`N(0, \sigma^2 / (1 - \rho^2) I)` (seed 0, the same draws for every run)."""
        rng = np.random.default_rng(0)
        past = np.zeros(self.memory * self.n_firms)
        scale = self.sigma / np.sqrt(max(1 - self.rho**2, 1e-9))
        draws = [rng.normal(0.0, scale, self.n_segments) for _ in range(self.evaluation_states)]
        return [np.concatenate([z, past]) for z in [np.zeros(self.n_segments), *draws]]

    def benchmarks(self, selection: str = "pareto") -> list[dict]:
        """At every :meth:`benchmark_states` state: the logit Nash prices at its segment weights and
        the grid's exact equilibrium there."""
        from nashrl.theory.rows import grid_row, row

        rows = []
        for k, state in enumerate(self.benchmark_states()):
            p_n = segments.nash(self.a, self.a0s, self.mus, self.weights(state), self.costs)
            label = "equal segment weights" if k == 0 else f"stationary draw {k}"
            rows += [
                row("nash", p_n, self.stage_profits_at_prices(state, p_n), label, state),
                grid_row(self, state, label, selection),
            ]
        return rows
