r"""Estimators of the profit coefficients of a dynamic game with private shocks.

With CCPs :math:`P` held fixed, every firm's value is linear in :math:`\theta` (the profit is,
and the value is its discounted expectation), so each choice-specific value is
:math:`\tilde v_i(x, a; \theta, P) = \tilde Z_i(x, a; P)\,\theta + \tilde e_i(x, a; P)`
(Aguirregabiria and Mira 2007, eq. 15): :func:`choice_index` computes :math:`\tilde Z` and
:math:`\tilde e` by one linear solve with :math:`I - \beta F^P`. The pseudo-likelihood
:math:`Q(\theta, P) = \sum n_i(x,a) \ln \Lambda(\tilde v_i(x,a;\theta,P))` (logit, or probit for
normal shocks) is then a logit likelihood with offsets, concave in :math:`\theta`.

- ``two_step`` (Hotz-Miller; Aguirregabiria-Mira's two-step PML, Pesendorfer-Schmidt-Dengler's
  with an identity weight): :math:`\hat\theta = \arg\max_\theta Q(\theta, \hat P_0)` with first-stage
  CCPs from the data (:mod:`~nashrl.inverse.first_stage`).
- ``npl`` (Aguirregabiria-Mira 2007): iterate :math:`\theta_k = \arg\max Q(\theta, P_{k-1})`,
  :math:`P_k = \Psi(\theta_k, P_{k-1})` until both stop moving; a run that does not converge within
  ``max_iter`` is reported as not converged. NPL's fixed point is an equilibrium of the estimated
  game, but the iteration is best-response iteration in disguise: it fails (cycles, or converges
  to an inconsistent point) where the data's equilibrium is unstable under best responses
  (Pesendorfer and Schmidt-Dengler 2010; Kasahara and Shimotsu 2012), as Aguirregabiria and
  Mira's own design is at theta_RN = 2.5 and 4 (:mod:`nashrl.theory.ccp` reports the spectral
  radius of dPsi: 1.16 at 2.5).
- ``mle``: the maximum-likelihood estimator over equilibria, the estimator that MPEC computes (Su
  and Judd 2012; Egesdal, Lai and Su 2015: maximise :math:`\sum n \ln P` subject to
  :math:`P = \Psi(\theta, P)`). Here the constraint is eliminated: for each trial
  :math:`\theta` the equilibrium :math:`P^*(\theta)` is solved by Newton-Krylov, warm-started
  from the previous one (the first from the first-stage CCPs, so the branch followed is the
  one nearest the data), and the gradient comes from the implicit function theorem by one
  adjoint solve (GMRES on vector-Jacobian products), so the cost per trial is a few dozen
  evaluations of Psi, not a dense Jacobian. Newton does not care whether the equilibrium is
  stable under iteration, so the estimator stays consistent where NPL breaks down; it is
  asymptotically efficient (full maximum likelihood). Its limit, shared with MPEC: with several
  equilibria it follows the one connected to the data's CCPs, which is the data's equilibrium
  when the first stage is accurate. Chosen over Dearing and Blevins' efficient pseudo-likelihood
  because it reuses the exact equilibrium machinery already verified for theory (one code path
  for Psi) and its standard errors are the textbook inverse information.

Standard errors: ``mle`` the inverse observed information (Hessian of the log-likelihood by
central differences of the adjoint gradient). ``two_step`` and ``npl`` the inverse Hessian of the
pseudo-likelihood at the estimate, which treats the CCPs as known: for two_step it ignores the
first stage's sampling error (it understates the spread; use the bootstrap), for npl it is
the pseudo-likelihood information at the NPL fixed point (Aguirregabiria-Mira show the full
variance has a correction; use the bootstrap for inference). ``bootstrap`` resamples markets.
"""

from __future__ import annotations

import time
from typing import Any

import numpy as np
import scipy.optimize
import scipy.sparse.linalg
import torch

from nashrl.inverse.first_stage import first_stage
from nashrl.inverse.model import InverseModel
from nashrl.markets.validation import ConfigError
from nashrl.theory.ccp import FIXED_POINT_TOL, PROB_FLOOR, _full, iterate, newton, residual_vector


def choice_index(model: InverseModel, ccp: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """``(Z~ [N, S, A, K], e~ [N, S, A])`` with choice values ``Z~ theta + e~`` given CCPs ``ccp``."""
    game = model.game
    joint = game.joint(ccp)  # [S, J]
    features = model.free_features()  # [S, J, N, K]
    offset = model.fixed_profits()  # [S, J, N]
    w_z = game.discounted(joint, torch.einsum("sj,sjnk->snk", joint, features))
    w_o = game.discounted(joint, torch.einsum("sj,sjn->sn", joint, offset) + game.expected_shock(ccp).T)
    z_tilde = game.contract(ccp, features + game.beta * game.expected_next(w_z))
    e_tilde = game.contract(ccp, offset + game.beta * game.expected_next(w_o))
    return z_tilde, e_tilde


def pseudo_loglik(model: InverseModel, theta: torch.Tensor, index, counts: torch.Tensor) -> torch.Tensor:
    z_tilde, e_tilde = index
    return (counts * model.shocks.log_response(z_tilde @ theta + e_tilde)).sum()


def maximise_pseudo_likelihood(
    model, index, counts, start: torch.Tensor, max_iter: int = 100
) -> tuple[torch.Tensor, bool]:
    """Newton's method with backtracking on the concave pseudo-likelihood; returns (theta, converged)."""
    total = float(counts.sum())

    def loss(theta: torch.Tensor) -> torch.Tensor:
        return -pseudo_loglik(model, theta, index, counts) / total

    theta = start.clone()
    for _ in range(max_iter):
        g = torch.func.grad(loss)(theta)
        if float(g.abs().max()) < 1e-12:
            return theta, True
        h = torch.func.hessian(loss)(theta)
        try:
            step = torch.linalg.solve(h, -g)
        except RuntimeError:
            step = -g
        t, current = 1.0, float(loss(theta))
        while float(loss(theta + t * step)) > current + 1e-15 and t > 1e-10:
            t *= 0.5
        theta = theta + t * step
        if float((t * step).abs().max()) < 1e-12:
            return theta, True
    return theta, float(torch.func.grad(loss)(theta).abs().max()) < 1e-8


def pseudo_likelihood_cov(model, theta, index, counts) -> np.ndarray:
    """Inverse Hessian of minus the pseudo-log-likelihood (CCPs treated as known)."""
    h = torch.func.hessian(lambda t: -pseudo_loglik(model, t, index, counts))(theta)
    return _inverse_information(model, h.numpy())


def _inverse_information(model, information: np.ndarray) -> np.ndarray:
    """``information^{-1}``; a singular information is reported, naming the coefficients it cannot separate."""
    information = (information + information.T) / 2
    values, vectors = np.linalg.eigh(information)
    if values[0] <= 1e-9 * max(values[-1], 1e-300):
        weak = vectors[:, 0]
        names = [model.free[k] for k in np.nonzero(np.abs(weak) > 0.2)[0]]
        raise ConfigError(
            f"{', '.join(names)}: not identified in these data (the information matrix is singular along a "
            "combination of them); fix one with --fix or bring more variation"
        )
    return np.linalg.inv(information)


def fit_pseudo_likelihood(model, index, counts: torch.Tensor, start: torch.Tensor | None = None) -> dict[str, Any]:
    """The two-step estimate given the choice index: theta, its covariance (CCPs treated as
    known), the log pseudo-likelihood and whether Newton converged."""
    theta0 = torch.zeros(len(model.free), dtype=torch.float64) if start is None else start
    theta, ok = maximise_pseudo_likelihood(model, index, counts, theta0)
    return {
        "theta": theta,
        "cov": pseudo_likelihood_cov(model, theta, index, counts),
        "loglik": float(pseudo_loglik(model, theta, index, counts)),
        "iterations": 1,
        "converged": ok,
    }


def two_step(model: InverseModel, counts: np.ndarray, first: torch.Tensor, start=None) -> dict[str, Any]:
    n = torch.as_tensor(counts, dtype=torch.float64)
    out = fit_pseudo_likelihood(model, choice_index(model, first), n, start)
    return {**out, "ccp": first, "se_method": "pseudo-likelihood information, first stage treated as known"}


def npl(
    model: InverseModel, counts: np.ndarray, first: torch.Tensor, max_iter: int = 100, tol: float = 1e-8
) -> dict[str, Any]:
    n = torch.as_tensor(counts, dtype=torch.float64)
    p = first
    theta = torch.zeros(len(model.free), dtype=torch.float64)
    converged, iterations = False, 0
    while iterations < max_iter:
        iterations += 1
        index = choice_index(model, p)
        new_theta, ok = maximise_pseudo_likelihood(model, index, n, theta)
        z_tilde, e_tilde = index
        new_p = model.game.response(z_tilde @ new_theta + e_tilde).clamp(PROB_FLOOR, 1 - PROB_FLOOR)
        step = max(float((new_theta - theta).abs().max()), float((new_p - p).abs().max()))
        theta, p = new_theta, new_p
        if ok and step < tol:
            converged = True
            break
    index = choice_index(model, p)
    return {
        "theta": theta,
        "cov": pseudo_likelihood_cov(model, theta, index, n),
        "loglik": float(pseudo_loglik(model, theta, index, n)),
        "iterations": iterations,
        "converged": converged,
        "ccp": p,
        "se_method": "pseudo-likelihood information at the NPL fixed point",
    }


class _NestedLikelihood:
    """:math:`\\ell(\\theta) = \\sum n \\ln P^*(\\theta)` with its adjoint gradient (see the module)."""

    def __init__(self, model: InverseModel, counts: torch.Tensor, start: torch.Tensor):
        self.model, self.counts, self.p, self.first = model, counts, start, start
        # Newton starts from the equilibrium at the best point so far, not from the last trial:
        # a long line-search step can land on another equilibrium, and warm-starting from there
        # would switch branches under the optimiser (an inconsistent objective).
        self.anchor, self.best = start, np.inf
        self.shape = start[..., 1:].shape
        self.evaluations = 0
        self.failures = 0

    def _residual(self, free: torch.Tensor, theta: torch.Tensor) -> torch.Tensor:
        return residual_vector(self.model.game_at(theta), free, self.shape)

    def equilibrium(self, theta: torch.Tensor) -> torch.Tensor | None:
        """``P*(theta)`` by Newton from the last equilibrium; if that fails, from a few damped
        best-response steps, then from the first-stage CCPs (None if all fail)."""
        game = self.model.game_at(theta)
        for start in (self.anchor, None, self.first):
            if start is None:
                start, _ = iterate(game, self.anchor, max_iter=20)
            p, _ = newton(game, start)
            if game.residual(p) <= FIXED_POINT_TOL:
                self.p = p
                return p
        return None

    def __call__(self, theta_np: np.ndarray) -> tuple[float, np.ndarray]:
        self.evaluations += 1
        theta = torch.as_tensor(theta_np, dtype=torch.float64)
        p = self.equilibrium(theta)
        total = float(self.counts.sum())
        if p is None:
            self.failures += 1
            return np.inf, np.zeros_like(theta_np)
        free = p[..., 1:].reshape(-1).clone()

        def loglik(x: torch.Tensor) -> torch.Tensor:
            return (self.counts * torch.log(_full(self.model.game, x.view(self.shape)))).sum()

        value = float(loglik(free))
        if -value < self.best:
            self.best, self.anchor = -value, p
        d_ll = torch.func.grad(loglik)(free)
        _, vjp = torch.func.vjp(lambda x: self._residual(x, theta), free)
        operator = scipy.sparse.linalg.LinearOperator(
            (len(free), len(free)), matvec=lambda v: vjp(torch.as_tensor(v, dtype=torch.float64))[0].numpy()
        )
        lam, info = scipy.sparse.linalg.gmres(operator, d_ll.numpy(), rtol=1e-12, atol=0.0, maxiter=500, restart=100)
        if info != 0:
            lam = np.linalg.lstsq(self._dense(theta, free).T, d_ll.numpy(), rcond=None)[0]
        d_theta = torch.func.jacfwd(lambda t: self._residual(free, t))(theta)  # [n, K]
        grad = -(torch.as_tensor(lam) @ d_theta)
        return -value / total, -grad.numpy() / total

    def _dense(self, theta, free) -> np.ndarray:
        return torch.func.jacrev(lambda x: self._residual(x, theta))(free).numpy()


def mle(model: InverseModel, counts: np.ndarray, first: torch.Tensor, max_iter: int = 200) -> dict[str, Any]:
    n = torch.as_tensor(counts, dtype=torch.float64)
    start = two_step(model, counts, first)["theta"]
    nested = _NestedLikelihood(model, n, first)
    if nested.equilibrium(start) is None:
        raise ConfigError("mle: no equilibrium found near the data's CCPs at the two-step estimate")
    result = scipy.optimize.minimize(
        nested, start.numpy(), jac=True, method="BFGS", options={"maxiter": max_iter, "gtol": 1e-7}
    )
    theta = torch.as_tensor(result.x, dtype=torch.float64)
    nested.equilibrium(theta)
    nested.anchor = nested.p  # differences around the estimate start from its equilibrium
    total = float(n.sum())
    hessian = _hessian_by_differences(nested, result.x) * total
    return {
        "theta": theta,
        "cov": _inverse_information(model, hessian),
        "loglik": -float(result.fun) * total,
        "iterations": int(result.nit),
        "converged": bool(result.success) and nested.failures == 0,
        "ccp": nested.p,
        "se_method": "inverse observed information (Hessian by differences of the exact gradient)",
        "note": None if result.success else str(result.message),
    }


def _hessian_by_differences(objective, x: np.ndarray, step: float = 1e-5) -> np.ndarray:
    k = len(x)
    h = np.zeros((k, k))
    for j in range(k):
        e = np.zeros(k)
        e[j] = step * max(1.0, abs(x[j]))
        g_plus = objective(x + e)[1]
        g_minus = objective(x - e)[1]
        h[:, j] = (g_plus - g_minus) / (2 * e[j])
    objective(x)  # leave the warm start at the estimate
    return h


ESTIMATORS = {"two_step": two_step, "npl": npl, "mle": mle}


def run_estimator(
    method: str, model: InverseModel, counts: np.ndarray, first_stage_method: str = "auto"
) -> dict[str, Any]:
    if method not in ESTIMATORS:
        raise ConfigError(f"--method: expected one of {list(ESTIMATORS)}, got {method!r}")
    start = time.perf_counter()
    first = first_stage(model, counts, first_stage_method)
    out = ESTIMATORS[method](model, counts, first)
    out["seconds"] = time.perf_counter() - start
    return out
