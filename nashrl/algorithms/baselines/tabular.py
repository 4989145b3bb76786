r"""Tabular baselines for small repeated-game markets (Cournot, Singh-Vives, logit Bertrand).

State: the last ``memory`` joint actions, encoded as :math:`s \in \{0, \dots, P^k - 1\}`
with :math:`P = \prod_i A_i` joint actions (one state when ``memory: 0``).
Exploration: :math:`\varepsilon_t = e^{-\beta t}` (Calvano et al. 2020).

**Independent Q-learning** (``tabular_q``, Calvano et al.): firm :math:`i` keeps
:math:`Q_i(s, a_i)`, initialised at the discounted payoff against uniformly random rivals
:math:`Q_i^0(s, a_i) = \frac{1}{1-\delta} \sum_{a_{-i}} \pi_i(a_i, a_{-i}) / |A_{-i}|`, and updates

.. math:: Q_i(s, a_i) \leftarrow (1-\alpha) Q_i(s, a_i) + \alpha\,[\pi_i + \delta \max_{a'} Q_i(s', a')].

Converged when no firm's greedy action in any state changed for ``convergence_window``
periods (Calvano use 100,000). The loop is compiled with numba.

**Nash-Q** (``tabular_nash_q``, Hu and Wellman 2003): every firm's
:math:`Q_i(s, a_1, \dots, a_N)` over joint actions,

.. math:: Q_i(s, a) \leftarrow (1-\alpha) Q_i(s, a) + \alpha\,[\pi_i + \delta\, \mathrm{Nash}_i(Q(s'))],

acting by the selected stage equilibrium of :math:`Q(s)` with :math:`\varepsilon_t`-random moves.
"""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Any

import numpy as np
import torch
from numba import njit

from nashrl.algorithms.policies import TabularPolicy
from nashrl.config import algorithm_settings
from nashrl.equilibrium import solve
from nashrl.files import write_json
from nashrl.markets import make_market
from nashrl.markets.base import RepeatedGameMarket
from nashrl.schema import SETTINGS

STATE_INDEPENDENT = ("cournot", "linear_bertrand", "logit_bertrand")


#: Largest Q table (entries) the tabular learners allocate.
MAX_TABLE = 100_000_000


def check_market(name: str, market) -> None:
    from nashrl.markets.validation import ConfigError

    if market.market_type not in STATE_INDEPENDENT or not isinstance(market, RepeatedGameMarket):
        raise ConfigError(
            f"algorithm.name: {name} needs a repeated-game market ({', '.join(STATE_INDEPENDENT)}), "
            f"got market.type={market.market_type!r}"
        )
    joint = math.prod(market.action_sizes)
    entries = joint**market.memory * market.n_firms * (joint if name == "tabular_nash_q" else max(market.action_sizes))
    if entries > MAX_TABLE:
        raise ConfigError(
            f"market.memory: {name} with memory {market.memory} needs a Q table of {float(entries):.3g} entries "
            f"({8 * entries / 2**30:.3g} GiB); expected at most {MAX_TABLE:,}: use a smaller memory or grid"
        )


@njit(cache=True)
def _q_learning(q, profits, sizes, n_steps, t0, state, alpha, beta, delta, window, stable, seed):
    """Run Calvano's Q-learning for ``n_steps`` periods in place; returns (t, state, stable, profit sum)."""
    np.random.seed(seed)
    n_firms = q.shape[0]
    n_joint = profits.shape[1]
    n_states = q.shape[1]
    profit_sum = np.zeros(n_firms)
    actions = np.zeros(n_firms, dtype=np.int64)
    t = t0
    for _ in range(n_steps):
        eps = np.exp(-beta * t)
        joint = 0
        for i in range(n_firms):
            if np.random.random() < eps:
                actions[i] = np.random.randint(sizes[i])
            else:
                actions[i] = np.argmax(q[i, state, : sizes[i]])
            joint = joint * sizes[i] + actions[i]
        nxt = (state * n_joint + joint) % n_states
        changed = False
        for i in range(n_firms):
            before = np.argmax(q[i, state, : sizes[i]])
            target = profits[i, joint] + delta * np.max(q[i, nxt, : sizes[i]])
            q[i, state, actions[i]] = (1 - alpha) * q[i, state, actions[i]] + alpha * target
            if np.argmax(q[i, state, : sizes[i]]) != before:
                changed = True
            profit_sum[i] += profits[i, joint]
        stable = 0 if changed else stable + 1
        state = nxt
        t += 1
        if stable >= window:
            break
    return t, state, stable, profit_sum


class TabularTrainer:
    def __init__(self, config: dict[str, Any]):
        self.config = config
        self.name = config["algorithm"]["name"]
        self.s = SETTINGS[self.name](**algorithm_settings(config["algorithm"])).model_dump(warnings=False)
        self.market = make_market(config["market"])
        check_market(self.name, self.market)
        m = self.market
        self.sizes = np.array(m.action_sizes, dtype=np.int64)
        self.n_joint = int(np.prod(self.sizes))
        self.n_states = self.n_joint**m.memory
        table = m.payoff_table(m.initial_state(np.random.default_rng(0))) / m.reward_scale
        self.profits = table.reshape(m.n_firms, -1)  # [N, P]
        self.rng = np.random.default_rng(config["run"]["seed"])
        self.t, self.state, self.stable, self.iteration = 0, 0, 0, 0
        if self.name == "tabular_q":
            self.q = np.zeros((m.n_firms, self.n_states, int(self.sizes.max())))
            for i in range(m.n_firms):
                own = np.moveaxis(table[i], i, 0).reshape(self.sizes[i], -1).mean(1)
                self.q[i, :, : self.sizes[i]] = own / (1 - self.s["gamma"])
        else:
            self.q = np.zeros((self.n_states, m.n_firms, self.n_joint))
            self.cache: dict[int, tuple[np.ndarray, list[np.ndarray]]] = {}

    # ----- Nash-Q helpers -----
    def _equilibrium(self, s: int) -> tuple[np.ndarray, list[np.ndarray]]:
        """Selected equilibrium of the stage game ``Q(s)``, cached until ``Q(s)`` changes."""
        if s not in self.cache:
            game = torch.as_tensor(self.q[s].reshape(1, self.market.n_firms, *self.sizes))
            sol = solve(game, selection=self.s["selection"])
            self.cache[s] = (sol.values[0].numpy(), [x[0].numpy() for x in sol.strategies])
        return self.cache[s]

    def _greedy(self, s: int) -> list[int]:
        return [int(x.argmax()) for x in self._equilibrium(s)[1]]

    def _nash_q_steps(self, n_steps: int) -> np.ndarray:
        profit_sum = np.zeros(self.market.n_firms)
        alpha, delta = self.s["alpha"], self.s["gamma"]
        for _ in range(n_steps):
            eps = np.exp(-self.s["beta"] * self.t)
            _, strategies = self._equilibrium(self.state)
            before = self._greedy(self.state)
            actions = [
                self.rng.integers(n) if self.rng.random() < eps else self.rng.choice(n, p=x / x.sum())
                for n, x in zip(self.sizes, strategies)
            ]
            joint = int(np.ravel_multi_index(actions, self.sizes))
            nxt = (self.state * self.n_joint + joint) % self.n_states
            next_values, _ = self._equilibrium(nxt)
            reward = self.profits[:, joint]
            self.q[self.state, :, joint] += alpha * (reward + delta * next_values - self.q[self.state, :, joint])
            del self.cache[self.state]
            self.stable = 0 if self._greedy(self.state) != before else self.stable + 1
            profit_sum += reward
            self.state = nxt
            self.t += 1
            if self.stable >= self.s["convergence_window"]:
                break
        return profit_sum

    # ----- trainer API -----
    @property
    def converged(self) -> bool:
        return self.stable >= self.s["convergence_window"]

    def train(self) -> dict[str, float]:
        start = self.t
        n = self.s["steps_per_iteration"]
        if self.name == "tabular_q":
            seed = int(self.rng.integers(2**31))
            self.t, self.state, self.stable, profit_sum = _q_learning(
                self.q,
                self.profits,
                self.sizes,
                n,
                self.t,
                self.state,
                self.s["alpha"],
                self.s["beta"],
                self.s["gamma"],
                self.s["convergence_window"],
                self.stable,
                seed,
            )
        else:
            profit_sum = self._nash_q_steps(n)
        self.iteration += 1
        steps = max(self.t - start, 1)
        out = {
            "iteration": self.iteration,
            "env_steps": float(self.t),
            "converged": float(self.converged),
            "stable_periods": float(self.stable),
            "exploration": float(np.exp(-self.s["beta"] * self.t)),
        }
        for i, p in enumerate(profit_sum / steps * self.market.reward_scale):
            out[f"firm_{i}/mean_profit"] = float(p)
        return out

    def _choose(self, s: int) -> np.ndarray:
        if self.name == "tabular_q":
            return np.array([int(np.argmax(self.q[i, s, : self.sizes[i]])) for i in range(self.market.n_firms)])
        return np.array(self._greedy(s))

    def encode(self, state: np.ndarray) -> int:
        s = 0
        for joint_actions in np.asarray(state).reshape(-1, self.market.n_firms):
            s = s * self.n_joint + int(np.ravel_multi_index(joint_actions, self.sizes))
        return s

    def decode(self, s: int) -> np.ndarray:
        """Inverse of :meth:`encode`: the market state ``[memory, N]`` of state index ``s``."""
        rows = []
        for _ in range(self.market.memory):
            s, joint = divmod(int(s), self.n_joint)
            rows.append(np.unravel_index(joint, self.sizes))
        return np.array(rows[::-1], dtype=np.int64).reshape(self.market.memory, self.market.n_firms)

    def final_state(self) -> list | None:
        """The market state the learners reached (where the long-run outcome is measured from)."""
        return self.decode(self.state).tolist()

    def policy(self) -> TabularPolicy:
        return TabularPolicy(self._choose, self.encode)

    def save(self, path: Path) -> None:
        path = Path(path)
        path.mkdir(parents=True, exist_ok=True)
        np.save(path / "q.npy", self.q)
        meta = {
            "algorithm": self.name,
            "t": self.t,
            "state": int(self.state),
            "stable": self.stable,
            "iteration": self.iteration,
            "rng": self.rng.bit_generator.state,
        }
        write_json(path / "tabular.json", meta)

    def restore(self, path: Path) -> None:
        path = Path(path)
        meta = json.loads((path / "tabular.json").read_text())
        if meta.get("algorithm") != self.name:
            raise ValueError(f"checkpoint {path}: holds {meta.get('algorithm')!r}, expected {self.name!r}")
        q = np.load(path / "q.npy")
        if q.shape != self.q.shape:
            raise ValueError(f"checkpoint {path}: Q table shape {q.shape} does not fit this market {self.q.shape}")
        self.q[...] = q
        if self.name == "tabular_nash_q":
            self.cache.clear()
        self.t, self.state, self.stable, self.iteration = meta["t"], meta["state"], meta["stable"], meta["iteration"]
        self.rng.bit_generator.state = meta["rng"]

    def stop(self) -> None:
        return None
