"""Memoised stage-game solutions: a game seen before is not solved again.

Acting solves the Q stage game at every step, and learner targets solve the target
network's stage games at every next state of every batch. Between weight syncs (acting)
and between target-network updates (targets) the same games come back again and again,
most of all in markets with few states (``memory: 0`` has one). :class:`SolutionCache`
keys each game by its exact payoff bytes, so a batch's repeated games are solved once, a
hit is the very solution ``solve`` would return, and a changed network simply produces
new keys.
"""

from __future__ import annotations

from typing import Any

import torch

from nashrl.equilibrium.solver import StageGameSolution, solve


class SolutionCache:
    """Call like :func:`~nashrl.equilibrium.solve` (options fixed at construction).

    Solutions are kept in one bank of tensors (a row per distinct game, strategies padded
    to the largest action set); a batch is answered by one gather per field. When the
    bank holds ``max_games`` games it is emptied and filled again.
    """

    def __init__(self, max_games: int = 4096, **options: Any):
        self.max_games = max_games
        self.options = options
        self.hits = 0
        self.misses = 0
        self.clear()

    def clear(self) -> None:
        """Forget every stored solution."""
        self._rows: dict[bytes, int] = {}
        self._bank: dict[str, torch.Tensor] | None = None

    def __call__(self, payoffs: torch.Tensor) -> StageGameSolution:
        flat = payoffs.detach().flatten(1).cpu().numpy()
        keys = [row.tobytes() for row in flat]
        new = list(dict.fromkeys(k for k in keys if k not in self._rows))
        if len(self._rows) + len(new) > self.max_games:
            self.clear()
            new = list(dict.fromkeys(keys))
        self.misses += len(new)
        self.hits += len(keys) - len(new)
        if new:
            first = {k: i for i, k in reversed(list(enumerate(keys)))}
            index = torch.tensor([first[k] for k in new], device=payoffs.device)
            self._append(new, solve(payoffs[index], **self.options))
        rows = torch.tensor([self._rows[k] for k in keys], device=self._bank["values"].device)
        return self._gather(rows, payoffs.shape[2:])

    def _append(self, keys: list[bytes], sol: StageGameSolution) -> None:
        width = max(s.shape[1] for s in sol.strategies)
        padded = torch.stack([torch.nn.functional.pad(s, (0, width - s.shape[1])) for s in sol.strategies], 1)
        fields = {
            "strategies": padded,
            "values": sol.values,
            "nash_gap": sol.nash_gap,
            "solved": sol.solved,
            "n_equilibria": sol.n_equilibria,
        }
        if sol.correlation is not None:
            fields["correlation"] = sol.correlation
        start = len(self._rows)
        self._rows.update({k: start + i for i, k in enumerate(keys)})
        if self._bank is None:
            self._bank = fields
        else:
            self._bank = {name: torch.cat([self._bank[name], value]) for name, value in fields.items()}

    def _gather(self, rows: torch.Tensor, sizes: tuple[int, ...]) -> StageGameSolution:
        bank = {name: value[rows] for name, value in self._bank.items()}
        return StageGameSolution(
            strategies=[bank["strategies"][:, i, :n] for i, n in enumerate(sizes)],
            values=bank["values"],
            nash_gap=bank["nash_gap"],
            solved=bank["solved"],
            n_equilibria=bank["n_equilibria"],
            correlation=bank.get("correlation"),
        )
