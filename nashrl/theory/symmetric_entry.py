r"""Symmetric Markov perfect equilibria of entry and exit with exchangeable firms, for any number
of firms.

When every firm has the same profit function and that profit depends on the rivals only through
how many of them are active (``entry_exit`` with one ``theta_fc``), a symmetric MPE depends on
the state only through :math:`y = (z, o, m)`: the exogenous state, the firm's own last action and
the number of rivals active last period, :math:`Z \cdot 2 \cdot N` states instead of
:math:`Z \cdot 2^N` (Ericson and Pakes 1995; Doraszelski and Judd 2012 on exploiting symmetry).
Given a symmetric profile :math:`p(y) = P(\text{active} \mid y)`, the number of active rivals is
:math:`K \sim \text{Bin}(m, p(z, 1, m - 1 + o)) + \text{Bin}(N - 1 - m, p(z, 0, m + o))` (an
incumbent rival sees the firm among its own rivals, and so does an entrant), and the firm's next
state is :math:`(z', a, K)`. Values solve the policy's linear system (as in
:mod:`nashrl.theory.ccp`, on the reduced states), choice values are valued against :math:`K`, and
an equilibrium is a fixed point :math:`p = \Psi(p)`, found by Powell's hybrid method from uniform
play (then from a few other starts). Profits come from the market's own ``flow_profits`` at a
representative profile, so the economics stay in one place.

It is the data-generating process of the inverse estimators' many-firm design (there the full
state space has :math:`5 \cdot 2^{12} = 20{,}480` states and the joint-action table that
:mod:`nashrl.theory.ccp` needs 10^9 entries); :func:`full_ccp` spreads it back to every firm and
every full state, and for small :math:`N` it is checked against the full-state solver.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import scipy.optimize
import scipy.stats
import torch

from nashrl.markets.validation import ConfigError
from nashrl.theory.ccp import FIXED_POINT_TOL, ShockLaw


@dataclass
class SymmetricEquilibrium:
    active: np.ndarray  # [Z, 2, N] P(active | z, own last action, rivals active last period)
    residual: float  # max |p - Psi(p)|


def _check(market) -> None:
    if market.market_type != "entry_exit":
        raise ConfigError(f"market.type: the symmetric MPE is for entry_exit, got {market.market_type!r}")
    if np.ptp(market.theta_fc) != 0.0:
        raise ConfigError("market.theta_fc: the symmetric MPE needs one fixed cost shared by every firm")


class _Reduced:
    """The game on reduced states ``(z, o, m)``, flattened ``z``-major."""

    def __init__(self, market):
        _check(market)
        self.market = market
        self.n, self.z = market.n_firms, market.n_exo
        self.beta, self.exo = float(market.discount), np.asarray(market.exo_transition, dtype=float)
        self.shocks = ShockLaw(market.shock, float(market.sigma))
        n = self.n
        # flow[z, o, m, a, k]: a firm's profit with own last action o, m rivals active last period,
        # own action a and k rivals active now (firm 0 of a representative profile).
        flow = np.zeros((self.z, 2, n, 2, n))
        for o in range(2):
            for m in range(n):
                previous = np.array([o] + [1] * m + [0] * (n - 1 - m))
                for a in range(2):
                    for k in range(n):
                        joint = np.array([a] + [1] * k + [0] * (n - 1 - k))
                        flow[:, o, m, a, k] = market.flow_profits(np.arange(self.z), previous, joint)[:, 0]
        self.flow = flow

    def rivals(self, p: np.ndarray) -> np.ndarray:
        """``[Z, 2, N, N]`` distribution of the number of active rivals at each reduced state."""
        n = self.n
        out = np.zeros((self.z, 2, n, n))
        k = np.arange(n)
        for o in range(2):
            for m in range(n):
                incumbents = p[:, 1, m - 1 + o] if m > 0 else np.zeros(self.z)
                entrants = p[:, 0, min(m + o, n - 1)]
                inc = scipy.stats.binom.pmf(k[None, :], m, incumbents[:, None])  # [Z, N]
                ent = scipy.stats.binom.pmf(k[None, :], n - 1 - m, entrants[:, None])
                out[:, o, m] = np.array([np.convolve(inc[z], ent[z])[:n] for z in range(self.z)])
        return out

    def choice_values(self, p: np.ndarray) -> np.ndarray:
        """``[Z, 2, N, 2]``: v(a | y) against the symmetric rivals' ``p``, at ``p``'s own values."""
        q = self.rivals(p)
        # next[z, o, m, a]: E[V(z', a, K)]; V from the policy's linear system on reduced states.
        choice = np.stack([1 - p, p], -1)  # [Z, 2, N, 2]
        size = self.z * 2 * self.n
        reward = (choice * np.einsum("zomk,zomak->zoma", q, self.flow)).sum(-1)
        reward = reward + self.shocks.expected_shock(torch.as_tensor(choice)).numpy()
        transition = np.zeros((self.z, 2, self.n, self.z, 2, self.n))
        for a in range(2):
            transition[:, :, :, :, a, :] = (
                choice[..., a][:, :, :, None, None] * self.exo[:, None, None, :, None] * q[:, :, :, None, :]
            )
        values = np.linalg.solve(np.eye(size) - self.beta * transition.reshape(size, size), reward.reshape(-1))
        values = values.reshape(self.z, 2, self.n)
        ahead = np.einsum("zy,zomk,yak->zoma", self.exo, q, values)
        return np.einsum("zomk,zomak->zoma", q, self.flow) + self.beta * ahead

    def psi(self, p: np.ndarray) -> np.ndarray:
        v = torch.as_tensor(self.choice_values(p))
        return self.shocks.response(v)[..., 1].numpy()


def symmetric_mpe(market, seed: int = 0) -> SymmetricEquilibrium:
    """A symmetric MPE of ``market`` (see the module); refused naming the field when firms are not
    exchangeable, an error when no start converges."""
    game = _Reduced(market)
    shape = (game.z, 2, game.n)
    rng = np.random.default_rng(seed)
    starts = [np.full(shape, 0.5), np.full(shape, 0.8), np.full(shape, 0.2)] + [
        rng.uniform(0.05, 0.95, shape) for _ in range(5)
    ]
    for start in starts:
        logit = np.log(start / (1 - start)).reshape(-1)

        def f(x: np.ndarray) -> np.ndarray:
            p = 1.0 / (1.0 + np.exp(-x.reshape(shape)))
            return (p - game.psi(p)).reshape(-1)

        sol = scipy.optimize.root(f, logit, method="hybr", options={"xtol": 1e-14})
        p = 1.0 / (1.0 + np.exp(-sol.x.reshape(shape)))
        residual = float(np.abs(p - game.psi(p)).max())
        if residual <= FIXED_POINT_TOL:
            return SymmetricEquilibrium(p, residual)
    raise ConfigError("market: no symmetric MPE found from 8 starts (max |p - Psi(p)| above 1e-10)")


def full_ccp(market, eq: SymmetricEquilibrium) -> np.ndarray:
    """``[N, S, 2]`` every firm's CCPs at every full state (``market.state_array`` order)."""
    states = market.state_array()
    own = states[:, 1:]  # [S, N]
    rivals = own.sum(1, keepdims=True) - own
    active = eq.active[states[:, :1], own, rivals]  # [S, N]
    return np.stack([1 - active, active], -1).transpose(1, 0, 2)
