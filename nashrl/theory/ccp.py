r"""Markov perfect equilibria of dynamic games with private shocks, in conditional choice probabilities.

For a market of :mod:`nashrl.markets.private_shocks` (states :math:`x = (z, a_{t-1})`, flow
profits :math:`\pi_i(x, a)`, exogenous chain :math:`\Pi`, discount :math:`\beta`, shocks of scale
:math:`\sigma`), a profile of CCPs :math:`P = (P_i(a_i \mid x))` is valued by solving a linear
system (Aguirregabiria and Mira 2007, eq. 12; Pesendorfer and Schmidt-Dengler 2008):

.. math::

    V_i^P = (I - \beta F^P)^{-1} \Big[ \sum_a P(a \mid x)\, \pi_i(x, a) + e_i^P(x) \Big],

:math:`F^P` the state transition under :math:`P` and :math:`e_i^P(x)` the expected shock of the
chosen action (:math:`-\sigma \sum_a P_i(a|x) \ln P_i(a|x)` for centred type-1 extreme-value
shocks, :math:`\sigma\sqrt 2\, \phi(\Phi^{-1}(P_i(1|x)))` for binary normal ones of standard
deviation :math:`\sigma` each). Each choice is valued
against the rivals' CCPs,
:math:`v_i(x, a_i) = \sum_{a_{-i}} P_{-i}(a_{-i} \mid x) [\pi_i(x, a) + \beta\, E[V_i^P(x') \mid x, a]]`,
and :math:`\Psi(P)` returns the choice probabilities of those values (logit, or probit for normal
shocks). An MPE is a fixed point :math:`P = \Psi(P)`.

:func:`solve_mpe` finds them from several starting points by fixed-point iteration
(best-response iteration: it converges only to equilibria that are stable under it) and by
Newton's method on :math:`P - \Psi(P) = 0` (Newton-Krylov, Jacobian-free; finds unstable
ones too), and keeps every distinct equilibrium with :math:`\max |P - \Psi(P)| \le 10^{-10}`.
:func:`equilibrium_statistics` gives the statistics Aguirregabiria and Mira report for their
design, from the ergodic distribution of the equilibrium's Markov chain.
"""

from __future__ import annotations

import math
import time
from dataclasses import dataclass
from typing import Any

import numpy as np
import scipy.optimize
import torch

from nashrl.equilibrium.payoffs import deviation_payoffs

#: An equilibrium must satisfy max |P - Psi(P)| below this.
FIXED_POINT_TOL = 1e-10
#: Two equilibria closer than this (max CCP difference) are the same.
DISTINCT_TOL = 1e-6
#: CCPs are kept inside (PROB_FLOOR, 1 - PROB_FLOOR) while iterating (logs and probits stay finite).
PROB_FLOOR = 1e-14


@dataclass(frozen=True)
class ShockLaw:
    """The private shocks' distribution (``gumbel`` or binary ``normal``, scale ``sigma``): what a
    choice probability, its log, the expected shock of the chosen action and the expected maximum
    are for given choice values, whatever the state space (the inverse estimators that never
    enumerate states use it alone)."""

    shock: str
    sigma: float

    @property
    def difference_scale(self) -> float:
        """Normal shocks: the standard deviation of the shock difference, :math:`\\sigma\\sqrt 2`."""
        return self.sigma * math.sqrt(2.0)

    def expected_shock(self, ccp: torch.Tensor) -> torch.Tensor:
        """``[...]`` expected shock of the chosen action under choice probabilities ``ccp [..., A]``
        (mean-zero shocks)."""
        p = ccp.clamp_min(PROB_FLOOR)
        if self.shock == "gumbel":
            return -self.sigma * (p * torch.log(p)).sum(-1)
        q = torch.special.ndtri(p[..., 1].clamp(PROB_FLOOR, 1 - PROB_FLOOR))
        return self.difference_scale * _normal_pdf(q)

    def response(self, choice_values: torch.Tensor) -> torch.Tensor:
        """Choice probabilities of ``choice_values`` ``[..., A]``: logit or (binary) probit."""
        if self.shock == "gumbel":
            return torch.softmax(choice_values / self.sigma, dim=-1)
        p1 = torch.special.ndtr((choice_values[..., 1] - choice_values[..., 0]) / self.difference_scale)
        return torch.stack([1 - p1, p1], -1)

    def log_response(self, choice_values: torch.Tensor) -> torch.Tensor:
        """``log`` of :meth:`response`, computed stably (log-softmax, log of the normal cdf)."""
        if self.shock == "gumbel":
            return torch.log_softmax(choice_values / self.sigma, dim=-1)
        d = (choice_values[..., 1] - choice_values[..., 0]) / self.difference_scale
        return torch.stack([torch.special.log_ndtr(-d), torch.special.log_ndtr(d)], -1)

    def expected_max(self, choice_values: torch.Tensor) -> torch.Tensor:
        """:math:`E \\max_a [v(a) + \\varepsilon(a)]` for choice values ``[..., A]`` (mean-zero shocks)."""
        if self.shock == "gumbel":
            return self.sigma * torch.logsumexp(choice_values / self.sigma, dim=-1)
        d = (choice_values[..., 1] - choice_values[..., 0]) / self.difference_scale
        return choice_values[..., 0] + self.difference_scale * (d * torch.special.ndtr(d) + _normal_pdf(d))


def product_law(ccps: list[torch.Tensor]) -> torch.Tensor:
    """``[S, A^k]``: probability of the joint action of ``k`` firms choosing independently at each
    state, :math:`\\prod_j P_j(a_j \\mid x)`, from their CCPs ``[S, A]`` each; the first firm's axis
    is the slowest (row-major, as joint-action indices are everywhere in nashrl)."""
    if not ccps:
        raise ValueError("ccps: expected at least one firm's choice probabilities")
    out = ccps[0]
    for p in ccps[1:]:
        out = (out.unsqueeze(-1) * p.unsqueeze(1)).flatten(1)
    return out


@dataclass
class CCPGame:
    """The arrays of a private-shock game the MPE computations use (float64 tensors)."""

    profits: torch.Tensor  # [S, J, N] flow profits, joint actions row-major (firm 0 slowest)
    exo: torch.Tensor  # [Z, Z] exogenous chain
    z_of_state: torch.Tensor  # [S] exogenous index of each state
    n_firms: int
    n_actions: int
    beta: float
    sigma: float
    shock: str

    @classmethod
    def of(cls, market) -> CCPGame:
        states = market.state_array()
        return cls(
            profits=torch.as_tensor(market.profit_table(), dtype=torch.float64),
            exo=torch.as_tensor(market.exo_transition, dtype=torch.float64),
            z_of_state=torch.as_tensor(states[:, 0], dtype=torch.long),
            n_firms=market.n_firms,
            n_actions=market.n_actions,
            beta=float(market.discount),
            sigma=float(market.sigma),
            shock=market.shock,
        )

    @property
    def n_states(self) -> int:
        return self.profits.shape[0]

    @property
    def shocks(self) -> ShockLaw:
        return ShockLaw(self.shock, self.sigma)

    @property
    def n_joint(self) -> int:
        return self.profits.shape[1]

    # ----- the pieces of Psi -----
    def joint(self, ccp: torch.Tensor) -> torch.Tensor:
        """``[S, J]`` probability of each joint action at each state, ``ccp`` ``[N, S, A]``."""
        return product_law(list(ccp))

    def transition(self, joint: torch.Tensor) -> torch.Tensor:
        """``[S, S]`` state transition: next state ``(z', a)`` with probability ``Pi(z, z') P(a | x)``."""
        exo = self.exo[self.z_of_state]  # [S, Z]
        return (exo.unsqueeze(2) * joint.unsqueeze(1)).flatten(1)

    def expected_shock(self, ccp: torch.Tensor) -> torch.Tensor:
        """``[N, S]`` expected shock of the chosen action under ``ccp`` (:meth:`ShockLaw.expected_shock`)."""
        return self.shocks.expected_shock(ccp)

    def discounted(self, joint: torch.Tensor, flows: torch.Tensor) -> torch.Tensor:
        """:math:`(I - \\beta F^P)^{-1}` ``flows`` ``[S, ...]``: expected discounted sums of per-state
        flows when joint actions are drawn from ``joint`` ``[S, J]``."""
        system = torch.eye(self.n_states, dtype=flows.dtype) - self.beta * self.transition(joint)
        return torch.linalg.solve(system, flows.reshape(self.n_states, -1)).reshape(flows.shape)

    def values(self, ccp: torch.Tensor) -> torch.Tensor:
        """``[S, N]`` each firm's expected discounted payoff (shocks included) when all play ``ccp``."""
        joint = self.joint(ccp)
        flow = torch.einsum("sj,sjn->sn", joint, self.profits) + self.expected_shock(ccp).T
        return self.discounted(joint, flow)

    def expected_next(self, values: torch.Tensor) -> torch.Tensor:
        """``[S, J, N, ...]``: :math:`E[V(x') \\mid x, a] = \\sum_{z'} \\Pi(z, z') V(z', a)` of
        ``values`` ``[S, N, ...]`` (next state ``(z', a)``: today's joint action is tomorrow's state)."""
        z_count = self.exo.shape[0]
        future = values.reshape(z_count, self.n_joint, *values.shape[1:])
        return torch.einsum("sz,zj...->sj...", self.exo[self.z_of_state], future)

    def contract(self, ccp: torch.Tensor, w: torch.Tensor) -> torch.Tensor:
        """``[N, S, A, ...]``: firm i's expectation of ``w[s, a, i, ...]`` ``[S, J, N, ...]`` over the
        rivals' actions drawn from ``ccp``, for each of its own actions (trailing dims kept)."""
        extra = w.shape[3:]
        k = math.prod(extra)
        flat = w.reshape(self.n_states, self.n_joint, self.n_firms, k).permute(0, 3, 2, 1)  # [S, K, N, J]
        game = flat.reshape(self.n_states * k, self.n_firms, *([self.n_actions] * self.n_firms))
        strategies = [p.repeat_interleave(k, dim=0) for p in ccp]
        out = torch.stack(deviation_payoffs(game, strategies), 0)  # [N, S*K, A]
        return (
            out.reshape(self.n_firms, self.n_states, k, self.n_actions)
            .transpose(2, 3)
            .reshape(self.n_firms, self.n_states, self.n_actions, *extra)
        )

    def choice_values(self, ccp: torch.Tensor, values: torch.Tensor) -> torch.Tensor:
        """``[N, S, A]``: :math:`v_i(x, a_i)` against the rivals' ``ccp`` with continuation ``values`` ``[S, N]``."""
        return self.contract(ccp, self.profits + self.beta * self.expected_next(values))

    def response(self, choice_values: torch.Tensor) -> torch.Tensor:
        return self.shocks.response(choice_values)

    def log_response(self, choice_values: torch.Tensor) -> torch.Tensor:
        return self.shocks.log_response(choice_values)

    def psi(self, ccp: torch.Tensor) -> torch.Tensor:
        """The equilibrium mapping :math:`\\Psi(P)` (``[N, S, A]`` to ``[N, S, A]``)."""
        return self.response(self.choice_values(ccp, self.values(ccp)))

    def residual(self, ccp: torch.Tensor) -> float:
        return float((ccp - self.psi(ccp)).abs().max())

    def expected_max(self, choice_values: torch.Tensor) -> torch.Tensor:
        return self.shocks.expected_max(choice_values)


def _normal_pdf(x: torch.Tensor) -> torch.Tensor:
    return torch.exp(-0.5 * x**2) / math.sqrt(2.0 * math.pi)


def _full(game: CCPGame, free: torch.Tensor) -> torch.Tensor:
    """CCPs ``[N, S, A]`` from the free probabilities of actions 1..A-1 ``[N, S, A-1]``."""
    free = free.clamp(PROB_FLOOR, 1 - PROB_FLOOR)
    return torch.cat([(1 - free.sum(-1, keepdim=True)).clamp_min(PROB_FLOOR), free], -1)


#: Below this many free CCPs a stalled Newton-Krylov solve is retried with a dense Jacobian.
SMALL_DENSE = 200


def residual_vector(game: CCPGame, free: torch.Tensor, shape) -> torch.Tensor:
    """``P - Psi(P)`` in the free CCPs ``free`` (flat), the equation Newton solves."""
    full = _full(game, free.view(shape))
    return (full - game.psi(full))[..., 1:].reshape(-1)


def iterate(
    game: CCPGame, ccp: torch.Tensor, max_iter: int = 1000, tol: float = FIXED_POINT_TOL
) -> tuple[torch.Tensor, int]:
    """Best-response (fixed-point) iteration :math:`P \\leftarrow \\Psi(P)`; returns (P, iterations).
    Gives up early when the step has not shrunk for 100 iterations (a cycle or divergence: the
    equilibrium there is unstable under iteration)."""
    best, since = float("inf"), 0
    for k in range(1, max_iter + 1):
        new = game.psi(ccp).clamp(PROB_FLOOR, 1 - PROB_FLOOR)
        step = float((new - ccp).abs().max())
        ccp = new
        if step <= tol * 0.1:
            return ccp, k
        best, since = (step, 0) if step < 0.999 * best else (best, since + 1)
        if since >= 100:
            break
    return ccp, k


def newton(
    game: CCPGame, ccp: torch.Tensor, max_iter: int = 40, tol: float = FIXED_POINT_TOL
) -> tuple[torch.Tensor, int]:
    """Newton's method on :math:`P - \\Psi(P) = 0` in the free CCPs, Jacobian-free (Newton-Krylov,
    ``scipy.optimize.root(method="krylov")``, as in Dearing and Blevins' replication): each step
    costs a few evaluations of Psi instead of a dense Jacobian. Returns (P, Newton steps)."""
    shape = ccp[..., 1:].shape

    def f(x: np.ndarray) -> np.ndarray:
        return residual_vector(game, torch.as_tensor(x, dtype=torch.float64), shape).numpy()

    x0 = ccp[..., 1:].reshape(-1).numpy()
    try:
        with np.errstate(all="ignore"):
            result = scipy.optimize.root(f, x0, method="krylov", options={"fatol": tol * 0.01, "maxiter": max_iter})
        x, steps = result.x, int(result.nit)
    except (ValueError, ArithmeticError, RuntimeError, np.linalg.LinAlgError):  # a failed start
        x, steps = x0, max_iter
    if not np.isfinite(x).all():
        x = x0
    if len(x0) <= SMALL_DENSE and not np.abs(f(x)).max() <= tol:
        # Small games: Levenberg-Marquardt with the exact Jacobian where Krylov stalled.
        def jacobian(v: np.ndarray) -> np.ndarray:
            t = torch.as_tensor(v, dtype=torch.float64)
            return torch.func.jacrev(lambda u: residual_vector(game, u, shape))(t).numpy()

        with np.errstate(all="ignore"):
            result = scipy.optimize.root(f, x0, jac=jacobian, method="lm", options={"xtol": 1e-15, "ftol": 1e-15})
        if np.isfinite(result.x).all() and np.abs(f(result.x)).max() < np.abs(f(x)).max():
            x, steps = result.x, steps + int(result.get("nfev", 0))
    return _full(game, torch.as_tensor(x, dtype=torch.float64).view(shape)), steps


def starting_points(game: CCPGame, n_random: int, seed: int) -> list[tuple[str, torch.Tensor]]:
    """Uniform play; every firm alike with probability 0.1, 0.3, 0.7 or 0.9 of action 0; each
    firm's corner (it is active with probability 0.9, its rivals 0.1); and ``n_random`` random
    CCP profiles."""
    n, s, a = game.n_firms, game.n_states, game.n_actions
    out = [("uniform", torch.full((n, s, a), 1.0 / a, dtype=torch.float64))]
    for level in (0.1, 0.3, 0.7, 0.9):  # every firm alike: the road to symmetric equilibria
        same = torch.full((n, s, a), (1.0 - level) / max(a - 1, 1), dtype=torch.float64)
        same[..., 0] = level
        out.append((f"all_inactive_{level}", same))
    for i in range(n):
        high = torch.full((n, s, a), 0.1 / max(a - 1, 1), dtype=torch.float64)
        high[..., 0] = 0.9
        high[i] = 0.1 / max(a - 1, 1)
        high[i, :, 0] = 0.1
        out.append((f"firm_{i}_active", high))
    gen = torch.Generator().manual_seed(seed)
    for k in range(n_random):
        draw = torch.rand((n, s, a), generator=gen, dtype=torch.float64) + 0.05
        out.append((f"random_{k}", draw / draw.sum(-1, keepdim=True)))
    return out


@dataclass
class Equilibrium:
    ccp: np.ndarray  # [N, S, A]
    residual: float
    methods: list[str]  # how it was found (method:start)
    stable: bool | None  # best-response iteration converges to it (spectral radius of dPsi < 1)
    spectral_radius: float | None


#: The stability check builds the dense Jacobian of Psi up to this many free CCPs.
MAX_DENSE_JACOBIAN = 2000


def spectral_radius(game: CCPGame, ccp: torch.Tensor) -> float | None:
    """Largest |eigenvalue| of the Jacobian of Psi in the free CCPs: < 1 means stable under
    best-response iteration (None above :data:`MAX_DENSE_JACOBIAN` free CCPs)."""
    shape = ccp[..., 1:].shape
    if shape.numel() > MAX_DENSE_JACOBIAN:
        return None

    def g(x: torch.Tensor) -> torch.Tensor:
        return game.psi(_full(game, x.view(shape)))[..., 1:].reshape(-1)

    jac = torch.func.jacrev(g)(ccp[..., 1:].reshape(-1))
    return float(torch.linalg.eigvals(jac).abs().max())


def solve_mpe(market, starts: int | None = None, seed: int = 0, max_iter: int = 1000) -> dict[str, Any]:
    """Every distinct MPE found from ``starts`` random starting points (default: 8 to 64, more for
    smaller games) plus the deterministic starts of :func:`starting_points`, each by fixed-point
    iteration and by Newton's method. Returns ``{equilibria, attempts, seconds, game}``;
    equilibria sorted by firm 0's mean activity, then the last firm's (a stable order)."""
    start_time = time.perf_counter()
    game = CCPGame.of(market)
    if starts is None:  # small games get many random starts (several equilibria hide in small basins)
        free = game.n_firms * game.n_states * (game.n_actions - 1)
        starts = int(min(64, max(8, 2000 // free)))
    found: list[Equilibrium] = []
    attempts = []
    for name, start in starting_points(game, starts, seed):
        for method in ("iteration", "newton"):
            if method == "iteration":
                ccp, iters = iterate(game, start, max_iter)
            else:
                ccp, iters = newton(game, start)
            residual = game.residual(ccp)
            ok = residual <= FIXED_POINT_TOL
            attempts.append(
                {"start": name, "method": method, "iterations": iters, "residual": residual, "converged": ok}
            )
            if not ok:
                continue
            label = f"{method}:{name}"
            same = next((e for e in found if float(np.abs(e.ccp - ccp.numpy()).max()) < DISTINCT_TOL), None)
            if same is not None:
                same.methods.append(label)
                continue
            radius = spectral_radius(game, ccp)
            found.append(Equilibrium(ccp.numpy(), residual, [label], None if radius is None else radius < 1.0, radius))
    found.sort(key=lambda e: (float(e.ccp[0, :, 1:].sum(-1).mean()), float(e.ccp[-1, :, 1:].sum(-1).mean())))
    return {"equilibria": found, "attempts": attempts, "seconds": time.perf_counter() - start_time, "game": game}


def stationary(transition: torch.Tensor) -> torch.Tensor:
    """The ergodic distribution ``mu`` with ``mu F = mu``, ``sum mu = 1`` (least squares, so a
    chain with several recurrent classes still gets a distribution, one of them)."""
    s = transition.shape[0]
    system = torch.cat(
        [(transition.T - torch.eye(s, dtype=transition.dtype)), torch.ones(1, s, dtype=transition.dtype)]
    )
    rhs = torch.zeros(s + 1, dtype=transition.dtype)
    rhs[-1] = 1.0
    mu = torch.linalg.lstsq(system, rhs.unsqueeze(1)).solution.squeeze(1).clamp_min(0.0)
    return mu / mu.sum()


def equilibrium_statistics(game: CCPGame, market, ccp: np.ndarray) -> tuple[dict[str, Any], torch.Tensor]:
    """Aguirregabiria-Mira's statistics of an equilibrium, from its ergodic distribution: number of
    active firms (mean, sd, AR(1) coefficient), entries and exits per market-period (means),
    excess turnover :math:`E[\\text{entries} + \\text{exits} - |\\text{entries} - \\text{exits}|]`,
    the correlation of entries and exits, and each firm's probability of being active
    ("active": any action but 0). Returns ``(statistics, ergodic distribution [S])``."""
    p = torch.as_tensor(ccp, dtype=torch.float64)
    joint = game.joint(p)  # [S, J]
    mu = stationary(game.transition(joint))
    states = torch.as_tensor(market.state_array(), dtype=torch.float64)
    profiles = torch.as_tensor(market.all_profiles(), dtype=torch.float64)
    now = (profiles > 0).double()  # [J, N]
    before = (states[:, 1:] > 0).double()  # [S, N]
    n_now = now.sum(1)  # [J]
    n_before = before.sum(1)  # [S]
    entries = ((1 - before).unsqueeze(1) * now.unsqueeze(0)).sum(-1)  # [S, J]
    exits = (before.unsqueeze(1) * (1 - now).unsqueeze(0)).sum(-1)
    weight = mu.unsqueeze(1) * joint  # [S, J] stationary probability of (state, joint action)

    def mean(x: torch.Tensor) -> float:
        return float((weight * x).sum())

    n = n_now.unsqueeze(0).expand_as(weight)
    mean_n, var_n = mean(n), mean(n**2) - mean(n) ** 2
    cov_lag = mean(n * n_before.unsqueeze(1)) - mean_n * float((mu * n_before).sum())
    e_mean, x_mean = mean(entries), mean(exits)
    var_e, var_x = mean(entries**2) - e_mean**2, mean(exits**2) - x_mean**2
    cov_ex = mean(entries * exits) - e_mean * x_mean
    return {
        "mean_active": mean_n,
        "sd_active": math.sqrt(max(var_n, 0.0)),
        "ar1_active": cov_lag / var_n if var_n > 1e-15 else None,
        "mean_entries": e_mean,
        "mean_exits": x_mean,
        "excess_turnover": mean(entries + exits - (entries - exits).abs()),
        "corr_entries_exits": cov_ex / math.sqrt(var_e * var_x) if var_e > 1e-15 and var_x > 1e-15 else None,
        "prob_active": [float((weight * now[:, i].unsqueeze(0)).sum()) for i in range(game.n_firms)],
    }, mu


def best_response_values(
    game: CCPGame, ccp: torch.Tensor, firm: int, max_iter: int = 100
) -> tuple[torch.Tensor, torch.Tensor]:
    """Firm ``firm``'s exact best response to the others' ``ccp`` (a single-agent dynamic discrete
    choice problem), by policy iteration: returns (its values ``[S]``, its CCPs ``[S, A]``)."""
    p = ccp.clone()
    for _ in range(max_iter):
        values = game.values(p)
        best = game.response(game.choice_values(p, values)[firm]).clamp(PROB_FLOOR, 1 - PROB_FLOOR)
        change = float((best - p[firm]).abs().max())
        p[firm] = best
        if change < 1e-13:
            break
    values = game.values(p)[:, firm]
    return values, p[firm]


def best_response_gap(game: CCPGame, ccp: np.ndarray) -> dict[str, Any]:
    r"""How much a firm gains by best-responding to the others' CCPs (the same conventions as
    :func:`nashrl.analysis.best_response.dynamic_nash_gap`): ``dynamic_nash_gap``
    :math:`\max_i \max_x (V_i^{BR}(x) - V_i^P(x))` in money, ``relative`` that over the mean
    :math:`|V_i^P|` over states and firms, ``ergodic_relative``
    :math:`\max_i \sum_x \mu(x) (V_i^{BR} - V_i^P) / \sum_x \mu(x) |V_i^P|` with :math:`\mu`
    the ergodic distribution of ``ccp``, and ``one_step_deviation_gain`` (choose once by the
    best response's values, then follow ``ccp``). Values include the shocks (centred), and are
    zero-gap (to solver precision) exactly at an MPE."""
    p = torch.as_tensor(ccp, dtype=torch.float64).clamp(PROB_FLOOR, 1 - PROB_FLOOR)
    p = p / p.sum(-1, keepdim=True)
    values = game.values(p)
    mu = stationary(game.transition(game.joint(p)))
    choice = game.choice_values(p, values)
    gains, ergodic, one_step = [], [], []
    for i in range(game.n_firms):
        best, _ = best_response_values(game, p, i)
        gain = (best - values[:, i]).clamp_min(0.0)
        gains.append(float(gain.max()))
        ergodic.append(float((mu * gain).sum() / (mu * values[:, i].abs()).sum().clamp_min(1e-12)))
        one_step.append(float((game.expected_max(choice[i]) - values[:, i]).max()))
    scale = float(values.abs().mean()) or 1.0
    return {
        "dynamic_nash_gap": max(gains),
        "per_firm": gains,
        "relative": max(gains) / scale,
        "ergodic_relative": max(ergodic),
        "one_step_deviation_gain": max(one_step),
    }


def mpe_rows(market, starts: int | None = None, seed: int = 0) -> list[dict]:
    """Benchmark rows (:mod:`nashrl.theory.rows`) for ``nashrl theory``: one ``mpe`` row per
    equilibrium found, with its CCPs, the design's statistics, stability and values."""
    from nashrl.theory.rows import row

    result = cached_mpe(market) if starts is None and seed == 0 else solve_mpe(market, starts=starts, seed=seed)
    game = result["game"]
    rows = []
    for k, eq in enumerate(result["equilibria"]):
        stats, mu = equilibrium_statistics(game, market, eq.ccp)
        values = game.values(torch.as_tensor(eq.ccp))
        mean_values = (mu.unsqueeze(1) * values).sum(0)
        rows.append(
            row(
                "mpe",
                stats["prob_active"],
                mean_values.tolist(),
                state=f"equilibrium {k}",
                equilibrium=k,
                n_equilibria=len(result["equilibria"]),
                statistics=stats,
                ccp_active=eq.ccp[:, :, 1:].sum(-1).tolist(),  # [N][S] probability of an action > 0
                states=market.state_values(market.state_array()).tolist(),
                state_labels=market.state_labels(),
                fixed_point_residual=eq.residual,
                stable_under_iteration=eq.stable,
                spectral_radius=eq.spectral_radius,
                found_by=eq.methods,
                solve_seconds=result["seconds"],
            )
        )
    if not rows:
        rows.append(row("mpe_not_found", [], [], attempts=result["attempts"]))
    return rows


_MPE_CACHE: dict[str, dict[str, Any]] = {}


def cached_mpe(market) -> dict[str, Any]:
    """:func:`solve_mpe` with default options, memoised per market configuration in this process
    (training evaluates against the same equilibria every few iterations)."""
    import json

    key = json.dumps([type(market).__module__, type(market).__name__, market.params], sort_keys=True, default=str)
    if key not in _MPE_CACHE:
        _MPE_CACHE[key] = solve_mpe(market)
    return _MPE_CACHE[key]
