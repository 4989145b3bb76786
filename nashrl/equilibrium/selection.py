r"""Equilibrium selection among the candidate equilibria of each game.

Candidates of game :math:`b` are given by their payoff vectors :math:`v_k \in \mathbb{R}^N`
(``values[b, k]``) in *discovery order* (pure profiles in lexicographic order, then the
mixed equilibria in the order of their Lemke-Howson labels). Rules:

- ``first``: the first candidate found.
- ``utilitarian``: :math:`\arg\max_k \sum_i v_{k,i}`.
- ``egalitarian``: :math:`\arg\max_k \min_i v_{k,i}`, ties by the larger sum.
- ``pareto``: drop every candidate Pareto-dominated by another
  (:math:`v_j \ge v_k` componentwise with one strict inequality), then break ties
  deterministically: the larger :math:`\min_i v_{k,i}`, then the larger sum, then the
  earlier candidate. (For two players, Pareto followed by a utilitarian tie-break would
  simply be ``utilitarian``; the max-min tie-break picks the symmetric equilibrium of a
  symmetric game.)
- ``strict``: the largest *strictness margin* :math:`m_k` (the smallest loss from a unilateral
  deviation at candidate :math:`k`, :func:`~nashrl.equilibrium.pure.strictness_margins`; 0 for a mixed
  equilibrium, whose support actions are alternatives that lose nothing), ties within the
  tolerance as ``pareto``. Where payoffs are estimated (a learned Q stage game) errors can make a
  neighbouring profile a weak, spurious equilibrium that Pareto or welfare rules then prefer
  (in a pricing game: the higher prices); the strictest equilibrium is the one such errors are
  least likely to have made. A pure-strategy refinement, akin to Harsanyi and Selten's (1988)
  risk dominance, which in 2x2 games compares the products of the same deviation losses.

Remaining ties always go to the earliest candidate, so the choice is deterministic.

The candidates are the equilibria the solver *searched*, not necessarily every equilibrium
of the game: :func:`nashrl.equilibrium.solve`'s ``search_mixed`` says which set that is
(by default every pure equilibrium, and mixed ones only in games without a pure one).
"""

from __future__ import annotations

import torch

SELECTIONS = ("pareto", "utilitarian", "egalitarian", "first", "strict")
_EPS = 1e-12
_PAIRWISE_BUDGET = 1 << 24  # games * K * K booleans per chunk of the Pareto test


def pareto_undominated(values: torch.Tensor, valid: torch.Tensor) -> torch.Tensor:
    """``[B, K]`` True where candidate ``k`` is valid and no valid candidate dominates it."""
    b, k, _ = values.shape
    out = torch.empty_like(valid)
    chunk = max(1, _PAIRWISE_BUDGET // max(1, k * k))
    for start in range(0, b, chunk):
        v = values[start : start + chunk]
        ok = valid[start : start + chunk]
        vj, vk = v.unsqueeze(2), v.unsqueeze(1)  # [c, j, 1, N] against [c, 1, k, N]
        weakly = (vj >= vk - _EPS).all(-1)
        strictly = (vj > vk + _EPS).any(-1)
        dominated = (weakly & strictly & ok.unsqueeze(2)).any(1)
        out[start : start + chunk] = ok & ~dominated
    return out


def _argmax_first(score: torch.Tensor, allowed: torch.Tensor) -> torch.Tensor:
    """Earliest index among the allowed maximisers of ``score`` (up to ``_EPS``)."""
    score = torch.where(allowed, score, torch.full_like(score, -float("inf")))
    best = score.amax(1, keepdim=True)
    return (allowed & (score >= best - _EPS)).to(torch.int8).argmax(1)


def _lexicographic(scores: list[torch.Tensor], allowed: torch.Tensor) -> torch.Tensor:
    """Index maximising ``scores[0]``, ties by ``scores[1]``, ..., then the earliest."""
    for score in scores:
        masked = torch.where(allowed, score, torch.full_like(score, -float("inf")))
        allowed = allowed & (masked >= masked.amax(1, keepdim=True) - _EPS)
    return allowed.to(torch.int8).argmax(1)


def select(values: torch.Tensor, valid: torch.Tensor, rule: str, margins: torch.Tensor | None = None) -> torch.Tensor:
    """Index ``[B]`` of the selected candidate of each game (0 where a game has none); ``margins``
    ``[B, K]``: the candidates' strictness margins, which ``strict`` needs."""
    if rule not in SELECTIONS:
        raise ValueError(f"selection: expected one of {SELECTIONS}, got {rule!r}")
    if rule == "strict" and margins is None:
        raise ValueError(
            "selection: 'strict' needs the candidates' strictness margins, which this solver does not compute "
            "(nashrl.equilibrium.solve does); expected pareto, utilitarian, egalitarian or first"
        )
    several = valid.sum(1) > 1
    if rule == "first" or not bool(several.any()):
        return valid.to(torch.int8).argmax(1)
    if not bool(several.all()):  # only games with a real choice go through the rule
        chosen = valid.to(torch.int8).argmax(1)
        chosen[several] = select(values[several], valid[several], rule, None if margins is None else margins[several])
        return chosen
    total, worst = values.sum(-1), values.amin(-1)
    if rule == "utilitarian":
        return _argmax_first(total, valid)
    if rule == "egalitarian":
        return _lexicographic([worst, total], valid)
    if rule == "strict":
        masked = torch.where(valid, margins, torch.full_like(margins, -float("inf")))
        valid = valid & (masked >= masked.amax(1, keepdim=True) - _EPS)
    return _lexicographic([worst, total], pareto_undominated(values, valid))
