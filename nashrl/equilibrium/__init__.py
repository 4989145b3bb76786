"""Batched stage-game equilibrium solvers (torch, any device).

Entry point: :func:`nashrl.equilibrium.solve`.
"""

from nashrl.equilibrium.cache import SolutionCache
from nashrl.equilibrium.lemke_howson import lemke_howson
from nashrl.equilibrium.lp import correlated_equilibrium, maximin
from nashrl.equilibrium.payoffs import (
    as_payoff_tensor,
    deviation_payoffs,
    expected_payoffs,
    nash_gap,
)
from nashrl.equilibrium.pure import pure_equilibrium_mask
from nashrl.equilibrium.selection import SELECTIONS
from nashrl.equilibrium.solver import CONCEPTS, SEARCHES, StageGameSolution, solve

__all__ = [
    "CONCEPTS",
    "SEARCHES",
    "SELECTIONS",
    "SolutionCache",
    "StageGameSolution",
    "as_payoff_tensor",
    "correlated_equilibrium",
    "deviation_payoffs",
    "expected_payoffs",
    "lemke_howson",
    "maximin",
    "nash_gap",
    "pure_equilibrium_mask",
    "solve",
]
