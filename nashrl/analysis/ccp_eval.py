r"""Learned play in games with private shocks against their Markov perfect equilibria.

A policy's conditional choice probabilities :math:`\hat P_i(a \mid x)` at every public state are
compared with the closest computed MPE :math:`P^*` (:func:`nashrl.theory.ccp.solve_mpe`): the
largest and the ergodic-weighted mean :math:`|\hat P - P^*|` over the states the MPE visits
(stationary probability at least :data:`VISITED`), and the dynamic Nash gap of the learned
profile (each firm's exact best response to the others' learned CCPs,
:func:`nashrl.theory.ccp.best_response_gap`).

CCPs come exactly from a policy that can state them (Deep Nash-Q: the logit equilibrium of its
stage game at each state) and otherwise by Monte Carlo over the firm's own shocks (independent
DQN sees its shocks in its observation): ``draws`` shocks per state, the same draws at every
state; the standard error of each estimate is at most :math:`0.5/\sqrt{\text{draws}}` and is
reported.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import torch

from nashrl.markets.validation import ConfigError
from nashrl.theory.ccp import CCPGame, best_response_gap, cached_mpe, stationary
from nashrl.theory.factored_ccp import FactoredGame, factored_gap
from nashrl.theory.factored_ccp import stationary as factored_stationary

#: A state counts as visited by the MPE when its stationary probability is at least this.
VISITED = 1e-4


def policy_ccps(policy, market, draws: int = 4000, seed: int = 0) -> tuple[np.ndarray, str]:
    """``[N, S, A]`` choice probabilities of ``policy`` at every state, and how they were obtained."""
    states = market.state_array()
    public = np.stack([market.observe(s) for s in states]).astype(np.float32)
    if hasattr(policy, "choice_probabilities"):
        return np.stack(policy.choice_probabilities(public)), "exact"
    rng = np.random.default_rng(seed)
    shocks = (market.draw_shocks(rng, (draws,)) / market.reward_scale).astype(np.float32)  # [D, A]
    obs = np.concatenate([np.repeat(public, draws, 0), np.tile(shocks, (len(states), 1))], 1)
    out = np.zeros((market.n_firms, len(states), market.n_actions))
    for i in range(market.n_firms):
        actions = np.asarray(policy.firm_actions(i, obs)).reshape(len(states), draws)
        for a in range(market.n_actions):
            out[i, :, a] = (actions == a).mean(1)
    return out, f"monte carlo, {draws} shock draws per state (standard error <= {0.5 / np.sqrt(draws):.4f})"


def long_run_activity(market, ccp: np.ndarray, mu: np.ndarray) -> dict[str, float] | None:
    """Long-run entry and exit of an entry market (actions: inactive 0, active 1; the state holds
    last period's actions) whose firms play ``ccp`` ``[N, S, 2]`` with ergodic law ``mu`` ``[S]``:
    mean number of active firms :math:`E_\\mu[\\sum_i P_i(1 \\mid x)]`, entries per period
    :math:`E_\\mu[\\sum_i (1 - x_i) P_i(1 \\mid x)]` and exits :math:`E_\\mu[\\sum_i x_i P_i(0 \\mid x)]`,
    the industry-dynamics statistics read off a dynamic entry game (in steady state entries equal
    exits). None for other markets."""
    if market.action_label != "active" or market.n_actions != 2:
        return None
    incumbent = market.state_array()[:, 1:].T.astype(float)  # [N, S]: x_i, active last period
    active = np.asarray(ccp)[:, :, 1]
    w = np.asarray(mu, float) / float(np.sum(mu))
    return {
        "active_firms": float(w @ active.sum(0)),
        "entries": float(w @ ((1 - incumbent) * active).sum(0)),
        "exits": float(w @ (incumbent * (1 - active)).sum(0)),
    }


def ccp_differences(game: CCPGame, eq_ccp: np.ndarray, learned: np.ndarray) -> dict[str, Any]:
    """Largest and ergodic-mean |learned - MPE| (over firms and actions) on the MPE's visited states."""
    mu = stationary(game.transition(game.joint(torch.as_tensor(eq_ccp)))).numpy()
    visited = mu >= VISITED
    diff = np.abs(learned - eq_ccp).max(axis=(0, 2))  # [S]
    return {
        "max_ccp_diff": float(diff[visited].max()),
        "mean_ccp_diff": float((mu * diff).sum() / mu.sum()),
        "visited_states": int(visited.sum()),
    }


def closest_mpe(market, learned: np.ndarray):
    """The computed MPE closest to ``learned`` CCPs (smallest largest difference on its visited
    states) and its differences; ``(None, None)`` when no MPE was found."""
    result = cached_mpe(market)
    best = None
    for k, eq in enumerate(result["equilibria"]):
        entry = {"equilibrium": k, **ccp_differences(result["game"], eq.ccp, learned)}
        if best is None or entry["max_ccp_diff"] < best[1]["max_ccp_diff"]:
            best = (eq, entry)
    return best if best is not None else (None, None)


def ccp_summary(policy, market, draws: int = 4000, seed: int = 0) -> dict[str, Any]:
    """The learned CCPs against the closest MPE, and the learned profile's dynamic Nash gap (in a
    game too large for the exact MPE: neither, and ``mpe_note`` says so)."""
    from nashrl.markets.private_shocks import MAX_THEORY_ENTRIES

    if not market.enumerable:
        note = (
            f"no exact MPE over the full state: {float(market.theory_size()):.3g} enumerated entries, above "
            f"{MAX_THEORY_ENTRIES:,}"
        )
        try:
            game = FactoredGame(market)
        except ConfigError as err:
            return {
                "market": market.market_type,
                "ccp_estimate": "not computed",
                "mpe_equilibria": 0,
                "comparisons": [],
                "mpe_note": f"{note}; no exact best response either ({err})",
            }
        return large_game_summary(policy, market, game, note, draws, seed)
    learned, how = policy_ccps(policy, market, draws, seed)
    result = cached_mpe(market)
    summary: dict[str, Any] = {
        "market": market.market_type,
        "ccp_estimate": how,
        "mpe_equilibria": len(result["equilibria"]),
        "learned_prob_active": learned[:, :, 1:].sum(-1).tolist(),
        "comparisons": [],
    }
    _, best = closest_mpe(market, learned)
    if best is not None:
        summary["mpe_max_ccp_diff"] = best["max_ccp_diff"]
        summary["mpe_mean_ccp_diff"] = best["mean_ccp_diff"]
        summary["mpe_closest_equilibrium"] = best["equilibrium"]
        summary["mpe_visited_states"] = best["visited_states"]
    summary["dynamic_nash_gap"] = best_response_gap(result["game"], learned)
    game = result["game"]
    mu = stationary(game.transition(game.joint(torch.as_tensor(learned, dtype=torch.float64)))).numpy()
    _add_activity(summary, market, learned, mu, None if best is None else result["equilibria"][best["equilibrium"]].ccp)
    return summary


def _add_activity(summary: dict[str, Any], market, learned: np.ndarray, mu: np.ndarray, eq_ccp, eq_mu=None) -> None:
    """:func:`long_run_activity` of the learned profile (``ergodic_*``) and of the MPE it is
    compared with (``mpe_ergodic_*``), into ``summary``."""
    activity = long_run_activity(market, learned, mu)
    if activity is None:
        return
    summary.update({f"ergodic_{k}": v for k, v in activity.items()})
    if eq_ccp is not None:
        if eq_mu is None:
            game = cached_mpe(market)["game"]
            eq_mu = stationary(game.transition(game.joint(torch.as_tensor(eq_ccp)))).numpy()
        summary.update({f"mpe_ergodic_{k}": v for k, v in long_run_activity(market, eq_ccp, eq_mu).items()})


#: Shock draws times states for Monte Carlo CCPs in games too large to enumerate jointly.
MAX_DRAW_ROWS = 20_000_000
_SYMMETRIC_CACHE: dict[str, Any] = {}


def symmetric_benchmark(market):
    """The symmetric MPE spread to every full state (``[N, S, A]``) where the market has one
    (:mod:`nashrl.theory.symmetric_entry`: entry_exit with one fixed cost), memoised per market
    configuration; None elsewhere."""
    import json

    from nashrl.theory.symmetric_entry import full_ccp, symmetric_mpe

    if market.market_type != "entry_exit" or np.ptp(market.theta_fc) != 0.0:
        return None
    key = json.dumps(market.params, sort_keys=True, default=str)
    if key not in _SYMMETRIC_CACHE:
        eq = symmetric_mpe(market)
        _SYMMETRIC_CACHE[key] = (full_ccp(market, eq), eq.residual)
    return _SYMMETRIC_CACHE[key]


def large_game_summary(policy, market, game: FactoredGame, note: str, draws: int, seed: int) -> dict[str, Any]:
    """:func:`ccp_summary` where the joint tables do not fit: the learned CCPs at every state, the
    dynamic Nash gap by factored best responses (:func:`nashrl.theory.factored_ccp.factored_gap`),
    and the distance to the symmetric MPE where there is one (states visited by its ergodic
    distribution, computed with the same factorisation)."""
    draws = min(draws, max(200, MAX_DRAW_ROWS // game.n_states))
    learned, how = policy_ccps(policy, market, draws, seed)
    summary: dict[str, Any] = {
        "market": market.market_type,
        "ccp_estimate": how,
        "mpe_note": note,
        "mpe_equilibria": 0,
        "learned_prob_active": learned[:, :, 1:].sum(-1).mean(1).tolist(),  # per firm, mean over states
        "comparisons": [],
    }
    benchmark = symmetric_benchmark(market)
    eq_ccp = eq_mu = None
    if benchmark is not None:
        eq_ccp, residual = benchmark
        mu = eq_mu = factored_stationary(game, torch.as_tensor(eq_ccp)).numpy()
        visited = mu >= VISITED
        diff = np.abs(learned - eq_ccp).max(axis=(0, 2))
        summary.update(
            mpe_equilibria=1,
            mpe_closest_equilibrium="symmetric",
            mpe_max_ccp_diff=float(diff[visited].max()),
            mpe_mean_ccp_diff=float((mu * diff).sum()),
            mpe_visited_states=int(visited.sum()),
            mpe_fixed_point_residual=residual,
        )
        summary["mpe_note"] = f"{note}; compared with the symmetric MPE on reduced states"
    learned_mu = factored_stationary(game, game.clean(learned))
    summary["dynamic_nash_gap"] = factored_gap(market, learned, mu=learned_mu)
    _add_activity(summary, market, learned, learned_mu.numpy(), eq_ccp, eq_mu)
    return summary
