"""Memoised stage-game solutions: a game seen before is not solved again.

Acting solves the Q stage game at every step, and learner targets solve the target
network's stage games at every next state of every batch. Between weight syncs (acting)
and between target-network updates (targets) the same games come back again and again,
most of all in markets with few states (``memory: 0`` has one). :class:`SolutionCache`
keeps every solution it computed, keyed by the game's exact payoffs, so a batch's repeated
games are solved once, a hit is the very solution ``solve`` would return, and a changed
network simply produces new keys.

On a GPU everything stays on the device (a GPU learner's targets never copy a batch to the
host): a game's key is an integer hash of its payoffs' bits (:func:`projection_keys`), the bank
keeps the keys sorted next to the payoffs they stand for, and a hit is confirmed by comparing the
payoffs themselves, so two games that share a key are never confused. On the CPU a dictionary of
the payoffs' bytes does the same job faster for small batches.
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from typing import Any

import torch

from nashrl.equilibrium.solver import StageGameSolution, solve

_FIELDS = ("values", "nash_gap", "solved", "n_equilibria")


@functools.lru_cache(maxsize=64)
def _hash_weights(width: int, device: torch.device) -> torch.Tensor:
    generator = torch.Generator(device="cpu").manual_seed(0x5EED)
    return (torch.randint(-(2**62), 2**62, (width,), generator=generator, dtype=torch.int64) * 2 + 1).to(device)


def projection_keys(x: torch.Tensor, weights: torch.Tensor | None = None) -> torch.Tensor:
    """``[B]`` int64 keys of the rows of ``x`` ``[B, D]``: the float64 bit patterns of each row
    times fixed random odd weights, summed with wrap-around. Integer sums do not depend on the
    order of summation, so equal rows get equal keys wherever they sit in the batch (a float
    projection does not: BLAS sums rows in different orders), and distinct rows almost never
    share one. ``weights`` ``[D]`` int64 replace the seeded ones."""
    if weights is None:
        weights = _hash_weights(x.shape[1], x.device)
    bits = x.detach().to(torch.float64).flatten(1).contiguous().view(torch.int64)
    return (bits * weights.to(x.device)).sum(1)


def distinct_rows(x: torch.Tensor, weights: torch.Tensor | None = None) -> tuple[torch.Tensor, torch.Tensor]:
    """``(rows, inverse)`` with ``rows[inverse] == x``: the distinct rows of ``x`` ``[B, D]``, in
    the order of their first appearance.

    Rows are told apart by their :func:`projection_keys` (a 1-D sort, much faster than
    ``torch.unique(dim=0)``); the result is checked exactly and, in the event of a collision,
    computed by ``torch.unique(dim=0)`` instead."""
    if x.shape[0] <= 1:
        return x, torch.zeros(x.shape[0], dtype=torch.long, device=x.device)
    _, inverse = torch.unique(projection_keys(x, weights), return_inverse=True)
    first = torch.full((int(inverse.max()) + 1,), x.shape[0], dtype=torch.long, device=x.device)
    first.scatter_reduce_(0, inverse, torch.arange(x.shape[0], device=x.device), reduce="amin")
    order = torch.argsort(first)  # first appearance order
    rank = torch.empty_like(order)
    rank[order] = torch.arange(len(order), device=x.device)
    rows, inverse = x[first[order]], rank[inverse]
    if not torch.equal(rows[inverse], x):
        rows, inverse = torch.unique(x, dim=0, return_inverse=True)
    return rows, inverse


class SolutionCache:
    """Call like :func:`~nashrl.equilibrium.solve` (options fixed at construction); ``solver`` (same
    call, default ``solve``) and ``sizes`` (the players' action counts, default the payoffs'
    trailing axes) serve games held in another form, such as aggregative Q tables.

    Solutions are kept in one bank of tensors on the payoffs' device (a row per distinct game,
    strategies padded to the largest action set); a batch is answered by one gather per field.
    Games are found in the bank by their exact payoffs: on the CPU through a dictionary of their
    bytes (the fastest for the small batches of acting), on other devices through sorted
    :func:`projection_keys` confirmed by comparing payoffs, so that nothing leaves the device.
    When the bank would hold more than ``max_games`` games it is emptied and filled again with
    the batch's games.
    """

    def __init__(
        self,
        max_games: int = 4096,
        index: str = "auto",
        solver: Callable[..., StageGameSolution] | None = None,
        sizes: tuple[int, ...] | None = None,
        **options: Any,
    ):
        if index not in ("auto", "host", "device"):
            raise ValueError(f"index: expected 'auto', 'host' or 'device', got {index!r}")
        self.solver = solve if solver is None else solver
        self.sizes = sizes
        self.max_games = max_games
        self.index = index  # auto: the host dictionary for CPU payoffs, the device index elsewhere
        self.options = options
        self.hits = 0
        self.misses = 0
        self.clear()

    def clear(self) -> None:
        """Forget every stored solution."""
        self._bank: dict[str, torch.Tensor] | None = None
        self._host_rows: dict[bytes, int] = {}

    def __len__(self) -> int:
        return 0 if self._bank is None else len(self._bank["values"])

    def __call__(self, payoffs: torch.Tensor) -> StageGameSolution:
        host = self.index == "host" or (self.index == "auto" and payoffs.device.type == "cpu")
        if host and payoffs.device.type != "cpu":
            raise ValueError("index: 'host' takes CPU payoffs")
        find = self._rows_on_host if host else self._rows_on_device
        return self._gather(find(payoffs.detach()), self.sizes or tuple(payoffs.shape[2:]))

    def _solve_new(self, payoffs: torch.Tensor, new: torch.Tensor, total: int) -> torch.Tensor:
        """Solve games ``payoffs[new]``, store them and return their bank rows (counting hits and misses)."""
        self.misses += len(new)
        self.hits += total - len(new)
        if not len(new):
            return new
        return self._append(payoffs[new], self.solver(payoffs[new], **self.options))

    def _rows_on_host(self, payoffs: torch.Tensor) -> torch.Tensor:
        keys = [row.tobytes() for row in payoffs.flatten(1).numpy()]
        stored = self._host_rows
        new = list(dict.fromkeys(k for k in keys if k not in stored))
        if len(self) + len(new) > self.max_games:
            self.clear()
            stored, new = self._host_rows, list(dict.fromkeys(keys))
        if new:
            first = {k: i for i, k in reversed(list(enumerate(keys)))}
            index = torch.tensor([first[k] for k in new], dtype=torch.long)
            stored.update(zip(new, self._solve_new(payoffs, index, len(keys)).tolist()))
        else:
            self.hits += len(keys)
        return torch.tensor([stored[k] for k in keys])

    def _rows_on_device(self, payoffs: torch.Tensor) -> torch.Tensor:
        games, inverse = distinct_rows(payoffs.flatten(1))
        keys = projection_keys(games)
        found = self._lookup(games, keys)
        new = torch.nonzero(found < 0).squeeze(1)
        if len(self) + len(new) > self.max_games:
            self.clear()
            found = torch.full_like(found, -1)
            new = torch.arange(len(games), device=games.device)
        shaped = games.view(-1, *payoffs.shape[1:])
        found[new] = self._solve_new(shaped, new, payoffs.shape[0])
        if len(new):
            self._bank["keys"] = torch.cat([self._bank.get("keys", keys[:0]), keys[new]])
            self._bank["sorted_keys"], self._bank["order"] = torch.sort(self._bank["keys"])
        return found[inverse]

    def _lookup(self, games: torch.Tensor, keys: torch.Tensor) -> torch.Tensor:
        """Bank row of each game, -1 where it is not stored (keys equal *and* payoffs equal)."""
        missing = torch.full((len(games),), -1, dtype=torch.long, device=games.device)
        if self._bank is None or "sorted_keys" not in self._bank:
            return missing
        sorted_keys, order = self._bank["sorted_keys"], self._bank["order"]
        at = torch.searchsorted(sorted_keys, keys).clamp(max=len(sorted_keys) - 1)
        rows = order[at]
        hit = (sorted_keys[at] == keys) & (self._bank["payoffs"][rows] == games).all(1)
        return torch.where(hit, rows, missing)

    def _append(self, games: torch.Tensor, sol: StageGameSolution) -> torch.Tensor:
        device = games.device
        width = max(s.shape[1] for s in sol.strategies)
        padded = torch.stack([torch.nn.functional.pad(s, (0, width - s.shape[1])) for s in sol.strategies], 1)
        fields = {"strategies": padded.to(device)}
        fields.update({name: getattr(sol, name).to(device) for name in _FIELDS})
        if self.index == "device" or device.type != "cpu":  # the device index confirms hits on the payoffs
            fields["payoffs"] = games.flatten(1)
        if sol.correlation is not None:
            fields["correlation"] = sol.correlation.to(device)
        start = len(self)
        if self._bank is None:
            self._bank = fields
        else:
            self._bank.update({name: torch.cat([self._bank[name], value]) for name, value in fields.items()})
        return torch.arange(start, start + len(games), device=device)

    def _gather(self, rows: torch.Tensor, sizes: tuple[int, ...]) -> StageGameSolution:
        bank = {name: self._bank[name][rows] for name in (*_FIELDS, "strategies", "correlation") if name in self._bank}
        return StageGameSolution(
            strategies=[bank["strategies"][:, i, :n] for i, n in enumerate(sizes)],
            values=bank["values"],
            nash_gap=bank["nash_gap"],
            solved=bank["solved"],
            n_equilibria=bank["n_equilibria"],
            correlation=bank.get("correlation"),
        )
