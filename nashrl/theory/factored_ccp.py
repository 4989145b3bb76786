r"""Exact best responses in private-shock games too large for joint-action tables.

:mod:`nashrl.theory.ccp` enumerates every (state, joint action) pair: :math:`S \cdot A^N` entries,
:math:`10^9` for entry and exit with 12 firms. A *single* firm's best response to the others'
choice probabilities needs far less, because the rivals choose independently given the public
state (their shocks are private and i.i.d.): at state :math:`x = (z, b)` the rivals' joint action
has probability :math:`R_i(x, a_{-i}) = \prod_{j \ne i} P_j(a_j \mid x)`, and firm :math:`i`'s
choice values are

.. math::

    v_i(x, a_i) = \sum_{a_{-i}} R_i(x, a_{-i}) \Big[ \pi_i(x, a_i, a_{-i})
        + \beta \sum_{z'} \Pi(z, z')\, V_i(z', a_i, a_{-i}) \Big],

(tomorrow's public state is today's joint action with the new exogenous state). The bracket's
second term is a table :math:`W = \Pi V` of :math:`Z \cdot A^N` numbers, so one Bellman step is one
batched matrix product of :math:`R_i` (``[S, A^{N-1}]``) with :math:`W` (``[Z, A^N]`` with firm
:math:`i`'s axis first): :math:`S \cdot A^N` multiply-adds, no joint table. The expected flow
profit is computed once, in chunks of states, from the market's own ``flow_profits``.

The best response solves the single-agent dynamic discrete choice problem
:math:`V(x) = E \max_a [v_i(x, a) + \varepsilon(a)]` (:class:`~nashrl.theory.ccp.ShockLaw`) by
value iteration; the learned profile's own value by the same iteration with the choice fixed (the
two as two value columns of one matrix product per step, first with the rivals' table in float32,
then in float64). Both stop with McQueen-Porteus bounds (Puterman 1994, section 6.6.3): with
:math:`\Delta = V_{k+1} - V_k`, the fixed point lies within
:math:`V_{k+1} + \frac{\beta}{1-\beta}[\min \Delta, \max \Delta]`, so the midpoint is returned once
:math:`\frac{\beta}{1-\beta}(\max\Delta - \min\Delta) / 2 \le` ``tol``; in markets whose state
mixes (activity is chosen afresh every period) the span of :math:`\Delta` contracts far faster
than :math:`\beta^k`. The gap's conventions are :func:`nashrl.theory.ccp.best_response_gap`'s.

The ergodic distribution of the learned profile is found by power iteration with the same
factorisation (the joint action's probability is the product of all firms' CCPs).
"""

from __future__ import annotations

from typing import Any

import numpy as np
import torch

from nashrl.equilibrium.aggregative_logit import count_index, rival_distributions
from nashrl.markets.validation import ConfigError
from nashrl.theory.ccp import PROB_FLOOR, ShockLaw, product_law

#: Largest ``S * A^(N-1)`` (the rivals' joint-action table of one firm) held in memory.
MAX_FACTORED_ENTRIES = 100_000_000
CHUNK_ENTRIES = 4_000_000  # states x joint actions per chunk of the expected flow profit


class FactoredGame:
    """One private-shock market's pieces for factored Bellman steps (float64 tensors)."""

    def __init__(self, market):
        self.market = market
        self.n, self.a, self.z = market.n_firms, market.n_actions, market.n_exo
        self.n_profiles = self.a**self.n
        self.n_states = self.z * self.n_profiles
        if self.n_states * self.a ** (self.n - 1) > MAX_FACTORED_ENTRIES:
            raise ConfigError(
                f"market.n_firms: one firm's best response holds {self.n_states:,} states x "
                f"{self.a ** (self.n - 1):,} rival profiles, above {MAX_FACTORED_ENTRIES:,}"
            )
        self.beta = float(market.discount)
        self.exo = torch.as_tensor(market.exo_transition, dtype=torch.float64)
        self.shocks = ShockLaw(market.shock, float(market.sigma))
        # the rivals' aggregate on a count grid (expected_flow's short cut), or None
        self.aggregation = market.aggregation() if market.aggregative else None
        self.count_index = count_index(self.aggregation) if self.aggregation is not None else None
        self.states = market.state_array()

    def clean(self, ccp: np.ndarray | torch.Tensor) -> torch.Tensor:
        """``ccp`` ``[N, S, A]`` as float64, each probability kept within ``[PROB_FLOOR, 1 -
        PROB_FLOOR]`` and renormalised; a wrong shape is refused, naming ``ccp``."""
        p = torch.as_tensor(np.asarray(ccp), dtype=torch.float64)
        expected = (self.n, self.n_states, self.a)
        if tuple(p.shape) != expected:
            raise ValueError(f"ccp: expected shape {expected}, got {tuple(p.shape)}")
        p = p.clamp(PROB_FLOOR, 1 - PROB_FLOOR)
        return p / p.sum(-1, keepdim=True)

    def rivals(self, p: torch.Tensor, firm: int) -> torch.Tensor:
        """``[S, A^(N-1)]``: :math:`R_i(x, a_{-i})`, rivals in increasing order, row-major."""
        ones = torch.ones(self.n_states, 1, dtype=torch.float64)  # the law of no rivals, for one firm
        return product_law([ones] + [p[j] for j in range(self.n) if j != firm])

    def own_first(self, table: torch.Tensor, firm: int) -> torch.Tensor:
        """``[..., A, A^(N-1)]`` of a ``[..., A^N]`` table over joint actions, firm's axis first."""
        lead = table.shape[:-1]
        axes = table.reshape(*lead, *([self.a] * self.n)).movedim(len(lead) + firm, len(lead))
        return axes.reshape(*lead, self.a, -1)

    def expected_flow(self, p: torch.Tensor, rivals: torch.Tensor, firm: int) -> torch.Tensor:
        """``[S, A]``: :math:`E_{a_{-i}}[\\pi_i(x, a_i, a_{-i})]` from the market's profits: in an
        aggregative market on a count grid, its ``aggregate_profits`` against the law of the
        rivals' aggregate (:mod:`~nashrl.equilibrium.aggregative_logit`), else its flow profits
        over every joint action, in chunks of states."""
        states = self.states
        if self.count_index is not None:
            knots = self.aggregation.knots[firm].numpy()  # the rivals' aggregate values
            law = rival_distributions(list(p), self.count_index, len(knots))[:, firm]  # [S, M]
            table = self.market.aggregate_profits(states[:, None, :], firm, knots[None, :])  # [S, M, A]
            return torch.einsum("sk,ska->sa", law, torch.as_tensor(table, dtype=torch.float64))
        joint = self.market.all_profiles()
        chunk = max(1, CHUNK_ENTRIES // self.n_profiles)
        out = torch.empty(self.n_states, self.a, dtype=torch.float64)
        for start in range(0, self.n_states, chunk):
            s = states[start : start + chunk]
            profits = self.market.flow_profits(s[:, None, 0], s[:, None, 1:], joint[None])[..., firm]  # [c, J]
            table = self.own_first(torch.as_tensor(profits, dtype=torch.float64), firm)  # [c, A, A^(N-1)]
            out[start : start + chunk] = torch.einsum("sar,sr->sa", table, rivals[start : start + chunk])
        return out

    def expected_next(self, values: torch.Tensor, rivals: torch.Tensor, firm: int) -> torch.Tensor:
        """``[S, A, C]``: :math:`E[V(x') \\mid x, a_i]` (module doc) of ``C`` value columns
        ``values`` ``[S, C]``, in ``rivals``' precision (float64 results)."""
        c = values.shape[1]
        w = torch.einsum("zy,yjc->zjc", self.exo, values.reshape(self.z, self.n_profiles, c))  # [Z, A^N, C]
        per_z = self.own_first(w.transpose(1, 2), firm)  # [Z, C, A, A^(N-1)]
        per_z = per_z.reshape(self.z, c * self.a, -1).transpose(1, 2).to(rivals.dtype)  # [Z, A^(N-1), C * A]
        out = torch.bmm(rivals.view(self.z, self.n_profiles, -1), per_z).double()  # [Z, A^N, C * A]
        return out.reshape(self.n_states, c, self.a).transpose(1, 2)


def _iterate(step, start: torch.Tensor, beta: float, tol: float, max_iter: int) -> tuple[torch.Tensor, int]:
    """Value iteration ``V <- step(V)`` on value columns ``[S, C]`` to the McQueen-Porteus midpoint
    of every column (module doc)."""
    v = start
    factor = beta / (1.0 - beta)
    for k in range(1, max_iter + 1):
        new = step(v)
        delta = new - v
        low, high = delta.amin(0), delta.amax(0)
        v = new
        if float((factor * (high - low) / 2).max()) <= tol:
            return v + factor * (high + low) / 2, k
    span = float((factor * (high - low)).max())
    raise RuntimeError(f"value iteration did not converge in {max_iter} steps (span {span:.3g})")


#: Bellman steps run with the rivals' table in float32 (half the memory traffic of the step's
#: matrix product) until the McQueen-Porteus bound reaches this, before float64 steps to ``tol``.
SINGLE_PRECISION_TOL = 1e-4


def firm_values(game: FactoredGame, p: torch.Tensor, firm: int, tol: float = 1e-9, max_iter: int = 20_000):
    """``(V^P [S], V^BR [S], iterations)``: firm ``firm``'s value when every firm
    plays ``p`` and when it best-responds to the others' ``p`` (shocks included, centred). Both
    iterate together (two value columns of one matrix product per step), first in float32 to
    :data:`SINGLE_PRECISION_TOL`, then in float64 from there to ``tol``."""
    rivals = game.rivals(p, firm)
    flow = game.expected_flow(p, rivals, firm)
    own = p[firm]
    shock = game.shocks.expected_shock(own)

    def step_with(table):
        def step(v):  # column 0: follow p; column 1: best response
            ahead = flow.unsqueeze(-1) + game.beta * game.expected_next(v, table, firm)  # [S, A, 2]
            follow = (own * ahead[..., 0]).sum(-1) + shock
            return torch.stack([follow, game.shocks.expected_max(ahead[..., 1])], 1)

        return step

    zero = torch.zeros(game.n_states, 2, dtype=torch.float64)
    rough, k1 = _iterate(step_with(rivals.float()), zero, game.beta, max(tol, SINGLE_PRECISION_TOL), max_iter)
    values, k2 = _iterate(step_with(rivals), rough, game.beta, tol, max_iter)
    return values[:, 0], values[:, 1], k1 + k2


def stationary(game: FactoredGame, p: torch.Tensor, tol: float = 1e-12, max_iter: int = 10_000) -> torch.Tensor:
    """``[S]`` ergodic distribution of the public state when every firm plays ``p``, by power
    iteration from the uniform distribution: :math:`\\mu'(z', a) = \\sum_x \\mu(x) \\Pi(z, z')
    \\prod_j P_j(a_j \\mid x)`."""
    joint = product_law(list(p)).view(game.z, game.n_profiles, game.n_profiles)  # [Z, A^N, A^N]
    mu = torch.full((game.n_states,), 1.0 / game.n_states, dtype=torch.float64)
    for _ in range(max_iter):
        today = torch.einsum("zs,zsa->za", mu.view(game.z, game.n_profiles), joint)  # [Z, A^N]
        new = (game.exo.T @ today).reshape(-1)
        change = float((new - mu).abs().sum())
        mu = new / new.sum()
        if change <= tol:
            return mu
    raise RuntimeError(f"the ergodic distribution did not converge in {max_iter} power iterations")


def rotation_equivariant(market, ccp: np.ndarray, tol: float = 1e-9) -> bool:
    """Whether firm ``i``'s CCPs at every state equal firm 0's at the state seen from firm ``i``
    (last actions rotated to start at its own, :meth:`firm_views`' convention) in a market whose
    firms are exchangeable. Then the game with the others' CCPs fixed is the same for every firm
    up to relabelling the states, and so is its best-response gain: one firm stands for all."""
    if market.firm_views() is None:
        return False
    states = market.state_array()
    n = market.n_firms
    for i in range(1, n):
        seen = np.concatenate([states[:, :1], np.roll(states[:, 1:], -i, axis=1)], 1)
        if not np.allclose(ccp[i], ccp[0][market.state_index(seen)], atol=tol, rtol=0):
            return False
    return True


def factored_gap(
    market, ccp: np.ndarray, firms: list[int] | None = None, tol: float = 1e-9, mu: torch.Tensor | None = None
) -> dict[str, Any]:
    """:func:`nashrl.theory.ccp.best_response_gap`'s figures without joint tables: each firm's exact
    best response to the others' ``ccp`` ``[N, S, A]`` (every firm, or ``firms``; firm 0 alone
    when the profile is :func:`rotation_equivariant`, ``by_symmetry`` then says so), its gain over
    the profile's value in money (largest over states), relative to the mean :math:`|V^P|` over
    states and firms computed, and weighted by the profile's ergodic distribution (``mu`` where
    the caller has it, else :func:`stationary`)."""
    game = FactoredGame(market)
    p = game.clean(ccp)
    mu = stationary(game, p) if mu is None else mu
    by_symmetry = firms is None and rotation_equivariant(market, p.numpy())
    firms = [0] if by_symmetry else list(range(game.n)) if firms is None else list(firms)
    gains, ergodic, scales, iterations = [], [], [], 0
    for i in firms:
        policy, response, k = firm_values(game, p, i, tol)
        gain = (response - policy).clamp_min(0.0)
        gains.append(float(gain.max()))
        ergodic.append(float((mu * gain).sum() / (mu * policy.abs()).sum().clamp_min(1e-12)))
        scales.append(float(policy.abs().mean()))
        iterations += k
    scale = float(np.mean(scales)) or 1.0
    return {
        "dynamic_nash_gap": max(gains),
        "per_firm": gains,
        "firms": firms,
        "by_symmetry": by_symmetry,
        "relative": max(gains) / scale,
        "ergodic_relative": max(ergodic),
        "bellman_steps": iterations,
    }
