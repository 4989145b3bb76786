"""The batched stage-game solver against classic games, nashpy and brute force."""

import itertools

import nashpy
import numpy as np
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra.numpy import arrays

from nashrl.equilibrium import (
    SolutionCache,
    correlated_equilibrium,
    lemke_howson,
    maximin,
    nash_gap,
    pure_equilibrium_mask,
    solve,
)


def bimatrix(a, b):
    return np.stack([np.asarray(a, float), np.asarray(b, float)])[None]


CLASSIC = {
    "matching_pennies": bimatrix([[1, -1], [-1, 1]], [[-1, 1], [1, -1]]),
    "battle_of_sexes": bimatrix([[2, 0], [0, 1]], [[1, 0], [0, 2]]),
    "stag_hunt": bimatrix([[4, 0], [3, 3]], [[4, 3], [0, 3]]),
    "prisoners_dilemma": bimatrix([[3, 0], [5, 1]], [[3, 5], [0, 1]]),
    "rock_paper_scissors": bimatrix([[0, -1, 1], [1, 0, -1], [-1, 1, 0]], [[0, 1, -1], [-1, 0, 1], [1, -1, 0]]),
    "all_ties": bimatrix(np.zeros((3, 3)), np.zeros((3, 3))),
    "degenerate": bimatrix([[3, 3], [2, 5], [0, 6]], [[3, 2], [2, 6], [3, 1]]),
}


@pytest.mark.parametrize("name", sorted(CLASSIC))
def test_classic_games_solved_to_tolerance(name):
    sol = solve(CLASSIC[name], search_mixed="all")
    assert sol.solved.all() and float(sol.nash_gap.max()) <= 1e-9
    assert all(torch.isfinite(s).all() for s in sol.strategies)
    assert all(torch.allclose(s.sum(1), torch.ones(1, dtype=s.dtype)) for s in sol.strategies)


def test_classic_equilibria_and_selection():
    mp = solve(CLASSIC["matching_pennies"])
    assert torch.allclose(mp.strategies[0], torch.tensor([[0.5, 0.5]], dtype=torch.float64))
    rps = solve(CLASSIC["rock_paper_scissors"])
    assert torch.allclose(rps.strategies[1], torch.full((1, 3), 1 / 3, dtype=torch.float64))
    # Battle of the sexes: two pure equilibria and one mixed (x = (2/3, 1/3), y = (1/3, 2/3)).
    bos = solve(CLASSIC["battle_of_sexes"], search_mixed="all")
    assert int(bos.n_equilibria) == 3
    # Stag hunt: (stag, stag) Pareto-dominates (hare, hare).
    stag = solve(CLASSIC["stag_hunt"], selection="pareto")
    assert stag.strategies[0].argmax().item() == 0 and stag.strategies[1].argmax().item() == 0
    pd = solve(CLASSIC["prisoners_dilemma"], selection="pareto")
    assert (pd.strategies[0].argmax().item(), pd.strategies[1].argmax().item()) == (1, 1)
    assert int(pd.n_equilibria) == 1


def cournot_grid_game(a=10.0, c=1.0, grid=range(10)):
    q = np.asarray(list(grid), float)
    price = np.maximum(a - (q[:, None] + q[None, :]), 0.0)
    return np.stack([(price - c) * q[:, None], (price - c) * q[None, :]])[None]


def test_selection_rules_on_discretised_cournot():
    game = cournot_grid_game()  # pure equilibria (2,4), (3,3), (4,2) with profits (6,12), (9,9), (12,6)
    picks = {}
    for rule in ("pareto", "utilitarian", "egalitarian", "first"):
        sol = solve(game, selection=rule)
        assert int(sol.n_equilibria) == 3
        picks[rule] = (sol.strategies[0].argmax().item(), sol.strategies[1].argmax().item())
    assert picks["pareto"] == (3, 3) and picks["egalitarian"] == (3, 3)
    assert picks["first"] == (2, 4) and picks["utilitarian"] == (2, 4)  # all sums tie at 18


def brute_force_margin(game: np.ndarray, profile: tuple[int, ...]) -> float:
    """min_i [G_i(a) - max_{a_i' != a_i} G_i(a_i', a_-i)] by enumeration (inf with no alternative)."""
    low = np.inf
    for i in range(game.shape[0]):
        others = [game[(i, *profile[:i], b, *profile[i + 1 :])] for b in range(game.shape[1 + i]) if b != profile[i]]
        if others:
            low = min(low, game[(i, *profile)] - max(others))
    return low


def test_strictness_margins_and_the_strict_selection():
    from nashrl.equilibrium.pure import strictness_margins

    rng = np.random.default_rng(11)
    games = rng.integers(0, 4, size=(40, 3, 2, 3, 1)).astype(float)  # uneven sets, one player without a choice
    ids = torch.as_tensor(rng.integers(0, 6, size=(40, 5)))
    got = strictness_margins(torch.as_tensor(games), ids).numpy()
    for g in range(40):
        for k in range(5):
            profile = np.unravel_index(int(ids[g, k]), games.shape[2:])
            assert got[g, k] == brute_force_margin(games[g], tuple(int(a) for a in profile))
    # Stag hunt: (stag, stag) is Pareto-better, (hare, hare) loses 3 by a deviation against 1: strict picks hare.
    stag = solve(CLASSIC["stag_hunt"], selection="strict")
    assert (stag.strategies[0].argmax().item(), stag.strategies[1].argmax().item()) == (1, 1)
    # A weak equilibrium that a small payoff error could have made, at higher profits, beside a strict one.
    prices = np.array([[2.0, 2.5, 2.3], [1.5, 2.5, 2.6], [1.0, 2.0, 2.4]])  # row firm's profit; symmetric game
    price_game = bimatrix(prices, prices.T)
    assert int(solve(price_game).n_equilibria) == 2  # (0, 0) strict (margin 0.5), (1, 1) weak (ties at 2.5)
    for rule, pick in (("pareto", (1, 1)), ("strict", (0, 0))):
        sol = solve(price_game, selection=rule)
        assert (sol.strategies[0].argmax().item(), sol.strategies[1].argmax().item()) == pick, rule
    # Discretised Cournot: the equilibrium with the largest brute-force margin.
    game = cournot_grid_game()
    sol = solve(game, selection="strict")
    chosen = (sol.strategies[0].argmax().item(), sol.strategies[1].argmax().item())
    margins = {p: brute_force_margin(game[0], p) for p in [(2, 4), (3, 3), (4, 2)]}
    assert margins[chosen] == max(margins.values())
    # Mixed equilibria have margin 0: with every equilibrium searched, a strict pure one is chosen.
    bos = solve(CLASSIC["battle_of_sexes"], search_mixed="all", selection="strict")
    assert int(bos.n_equilibria) == 3 and sorted(bos.strategies[0][0].tolist()) == [0.0, 1.0]


def nashpy_equilibria(a, b):
    """Every equilibrium by nashpy's vertex enumeration.

    (nashpy's support enumeration misses equilibria of some random 3x3 games, 179 of
    the 1,500 below, and warns that it returned an even number.)
    """
    return list(nashpy.Game(a, b).vertex_enumeration())


def test_all_equilibria_match_nashpy_vertex_enumeration():
    rng = np.random.default_rng(0)
    games = rng.uniform(-1, 1, size=(1500, 2, 3, 3))
    sol = solve(games, search_mixed="all")
    assert sol.solved.all()
    counts = np.array([len(nashpy_equilibria(g[0], g[1])) for g in games])
    np.testing.assert_array_equal(sol.n_equilibria.numpy(), counts)


def test_selection_is_over_the_searched_set():
    """A mixed equilibrium (0.769, 0.733) Pareto-dominates the only pure one (0.6, 0.7): the
    default search (mixed only where no pure equilibrium exists) selects the pure one, as
    documented; 'labels' and 'all' search mixed equilibria in every game and select it."""
    game = torch.tensor(
        [
            [[[1.0, 0.0, 0.2], [0.4, 0.8, 0.6], [0.7, 1.0, 0.4]], [[0.2, 0.4, 0.6], [0.1, 0.0, 0.7], [1.0, 0.9, 0.4]]],
        ],
        dtype=torch.float64,
    )
    assert solve(game, selection="pareto").values[0].tolist() == pytest.approx([0.6, 0.7])
    for search in ("labels", "all"):
        sol = solve(game, selection="pareto", search_mixed=search)
        assert sol.values[0].tolist() == pytest.approx([10 / 13, 11 / 15]) and bool(sol.solved[0])
        assert int(sol.n_equilibria[0]) >= 2
    with pytest.raises(ValueError, match="search_mixed: expected one of"):
        solve(game, search_mixed="everything")


def test_lemke_howson_matches_nashpy_equilibrium_set():
    rng = np.random.default_rng(1)
    games = rng.uniform(0, 1, size=(300, 2, 4, 4))
    sol = solve(games)  # pure where there is one, Lemke-Howson otherwise
    for g, x, y in zip(games, sol.strategies[0].numpy(), sol.strategies[1].numpy()):
        eqs = nashpy_equilibria(g[0], g[1])
        assert any(np.allclose(x, ex, atol=1e-8) and np.allclose(y, ey, atol=1e-8) for ex, ey in eqs)


@pytest.mark.parametrize("size", [5, 15])
def test_torch_and_numba_pivoting_agree(size):
    gen = torch.Generator().manual_seed(size)
    a = torch.rand(200, size, size, generator=gen, dtype=torch.float64)
    b = torch.rand(200, size, size, generator=gen, dtype=torch.float64)
    r_torch = lemke_howson(a, b, backend="torch")
    r_numba = lemke_howson(a, b, backend="numba")
    assert r_torch.converged.all() and r_numba.converged.all()
    torch.testing.assert_close(r_torch.x, r_numba.x, atol=1e-9, rtol=0)
    torch.testing.assert_close(r_torch.y, r_numba.y, atol=1e-9, rtol=0)
    assert float(nash_gap(torch.stack([a, b], 1), [r_torch.x, r_torch.y]).max()) <= 1e-9


def test_raced_labels_return_equilibria():
    gen = torch.Generator().manual_seed(3)
    a = torch.rand(300, 8, 8, generator=gen, dtype=torch.float64)
    b = torch.rand(300, 8, 8, generator=gen, dtype=torch.float64)
    res = lemke_howson(a, b, init_pivot=(0, 1, 2), backend="torch")
    assert res.converged.all()
    assert float(nash_gap(torch.stack([a, b], 1), [res.x, res.y]).max()) <= 1e-9


payoff_arrays = st.integers(1, 6).flatmap(
    lambda m: st.integers(1, 6).flatmap(
        lambda n: arrays(
            np.float64,
            (2, 2, m, n),
            elements=st.one_of(
                st.integers(-3, 3).map(float),  # integer payoffs: ties and degeneracy
                st.floats(-100, 100, allow_nan=False, allow_infinity=False),
            ),
        )
    )
)


@settings(max_examples=300, deadline=None)
@given(payoff_arrays)
def test_property_two_player_gap_within_tolerance(games):
    """Every game solved within ``tol``, which applies in the solver's units (the game divided by
    ``max(1, max |G|)``): payoffs up to 100 may leave a gap up to 1e-4 in their own units."""
    sol = solve(games)
    assert all(torch.isfinite(s).all() for s in sol.strategies)
    assert sol.solved.all(), sol.nash_gap
    scale = np.maximum(1.0, np.abs(games).reshape(len(games), -1).max(1))
    assert float((sol.nash_gap.numpy() / scale).max()) <= 1e-6


def test_n_player_pure_equilibria_match_brute_force():
    rng = np.random.default_rng(4)
    games = rng.integers(0, 4, size=(50, 3, 3, 3, 3)).astype(float)
    mask = pure_equilibrium_mask(torch.as_tensor(games)).numpy()
    for g, m in zip(games, mask):
        for profile in itertools.product(range(3), repeat=3):
            is_ne = all(
                g[i][profile] >= max(g[i][profile[:i] + (d,) + profile[i + 1 :]] for d in range(3)) for i in range(3)
            )
            assert m[profile] == is_ne


def test_n_player_without_pure_equilibrium_is_flagged_or_solved():
    gen = torch.Generator().manual_seed(5)
    games = torch.rand(128, 3, 3, 3, 3, generator=gen, dtype=torch.float64)
    sol = solve(games, tol=1e-6)
    no_pure = ~pure_equilibrium_mask(games).flatten(1).any(1)
    assert bool(no_pure.any())
    assert torch.isfinite(sol.nash_gap).all()
    torch.testing.assert_close(sol.nash_gap, nash_gap(games, sol.strategies))
    assert torch.equal(sol.solved, sol.nash_gap <= 1e-6)
    assert sol.solved.all(), f"{sol.n_unsolved} unsolved"  # the logit homotopy solves every mixed-only game
    assert sol.n_unsolved == 0 and float(sol.nash_gap.max()) < 1e-12


@pytest.mark.parametrize(
    "shape, count", [((4, 4, 4), 400), ((3, 3, 3, 3), 200), ((3, 2, 3, 2, 3), 100), ((9, 9, 9), 40)]
)
def test_logit_homotopy_solves_every_random_game_without_a_pure_equilibrium(shape, count):
    """N = 3, 4, 5 players, square and uneven action sets: every game is solved to 1e-12 and the
    returned profile's gap is the true gap."""
    from nashrl.equilibrium.homotopy import logit_homotopy

    gen = torch.Generator().manual_seed(len(shape) * 100 + shape[0])
    games = torch.rand(count, len(shape), *shape, generator=gen, dtype=torch.float64)
    games = games[~pure_equilibrium_mask(games).flatten(1).any(1)]
    assert len(games) >= 10
    strategies, gap = logit_homotopy(games, 1e-12)
    assert torch.isfinite(gap).all()
    torch.testing.assert_close(gap, nash_gap(games, strategies), atol=1e-13, rtol=0)
    for s in strategies:
        assert (s >= 0).all()
        torch.testing.assert_close(s.sum(1), torch.ones(len(games), dtype=torch.float64))


@pytest.mark.parametrize("sizes", [(3, 4, 2), (2, 3, 2, 4), (3, 2, 2, 3, 2)])
def test_homotopy_derivatives_and_restricted_game_against_einsum(sizes):
    """The compiled deviation payoffs and Jacobian blocks (shared first contraction, axes from
    the first) equal numpy's contractions, and the game restricted to a support equals indexing
    the full payoff tensor, for 3, 4 and 5 players with uneven action sets."""
    from nashrl.equilibrium._homotopy_numba import _derivatives, _restrict

    rng = np.random.default_rng(len(sizes))
    n = len(sizes)
    q = rng.normal(size=(n, *sizes))
    p = [rng.dirichlet(np.ones(k)) for k in sizes]
    off = np.concatenate([[0], np.cumsum(sizes)]).astype(np.int64)
    flat_p = np.concatenate(p)
    u, jac = np.zeros(off[-1]), np.zeros((off[-1], off[-1]))
    bufs = np.zeros((3, q[0].size))
    _derivatives(q.reshape(n, -1), np.array(sizes, dtype=np.int64), off, flat_p, u, jac, bufs, True)
    letters = "abcdefgh"[:n]
    for i in range(n):
        others = [j for j in range(n) if j != i]
        expr = f"{letters}," + ",".join(letters[j] for j in others) + f"->{letters[i]}"
        np.testing.assert_allclose(u[off[i] : off[i + 1]], np.einsum(expr, q[i], *[p[j] for j in others]), atol=1e-12)
        for low in others:
            rest = [j for j in others if j != low]
            expr = f"{letters}," + ",".join(letters[j] for j in rest) + f"->{letters[i]}{letters[low]}"
            want = np.einsum(expr, q[i], *[p[j] for j in rest])
            np.testing.assert_allclose(jac[off[i] : off[i + 1], off[low] : off[low + 1]], want, atol=1e-12)
    support = rng.uniform(size=off[-1]) < 0.6
    for i in range(n):
        support[off[i]] = True  # every player keeps an action
    sub, sub_sizes, _ = _restrict(q.reshape(n, -1), np.array(sizes, dtype=np.int64), support)
    kept = [np.flatnonzero(support[off[i] : off[i + 1]]) for i in range(n)]
    assert tuple(sub_sizes) == tuple(len(k) for k in kept)
    np.testing.assert_array_equal(sub.reshape(n, *sub_sizes), q[np.ix_(range(n), *kept)])


def test_logit_homotopy_restarts_where_the_principal_branch_ends_unpolished():
    """A 3-player 15-price logit-Bertrand-shaped game of benchmarks/solver_n_player.py whose
    principal branch ends without an equilibrium: the first random-prior restart finds one, and
    solve() reports it solved."""
    from pathlib import Path

    game = np.load(Path(__file__).parent / "data" / "logit_3p_15_needs_restarts.npy")
    assert game.shape == (1, 3, 15, 15, 15) and not bool(pure_equilibrium_mask(torch.as_tensor(game)).any())
    assert _trace_game(game[0], restarts=0)[0] == np.inf
    assert _trace_game(game[0], restarts=10)[0] <= 1e-9
    sol = solve(torch.as_tensor(game))
    assert bool(sol.solved.all()) and float(sol.nash_gap.max()) <= 1e-6


def _trace_game(game: np.ndarray, restarts: int, tol: float = 1e-9) -> tuple[float, np.ndarray]:
    """The compiled tracer on one game ``[N, A_1, ..., A_N]`` (scaled to max |G| = 1): the gap and
    strategies it ends with, from uniform play and then up to ``restarts`` random priors."""
    from nashrl.equilibrium._homotopy_numba import trace_one

    sizes = np.array(game.shape[1:], dtype=np.int64)
    q = np.ascontiguousarray((game / np.abs(game).max()).reshape(game.shape[0], -1))
    x = np.zeros((len(sizes), sizes.max()))
    return trace_one(q, sizes, tol, 1e8, 5000, x, restarts)[0], x


def test_logit_homotopy_follows_the_principal_branch_through_its_near_folds():
    """Games whose principal branch the chord-corrector tracker (before 2026-12-05) could not
    follow to the end (its steps shrank to nothing at a near-fold, and random-prior restarts then
    picked some other equilibrium): a 3-player 15-price logit-shaped game and two random 5-player
    7-action games of benchmarks/solver_n_player.py. The Newton tracker with the orientation check
    reaches an equilibrium on the principal branch itself."""
    from pathlib import Path

    game = np.load(Path(__file__).parent / "data" / "logit_3p_15_principal_branch.npy")[0]
    games = [game] + [
        np.random.default_rng([seed, 6]).uniform(0, 1, size=(16, 5, 7, 7, 7, 7, 7))[k] for seed, k in ((1, 9), (2, 7))
    ]
    for g in games:
        assert not bool(pure_equilibrium_mask(torch.as_tensor(g[None])).any())
        gap, x = _trace_game(g, restarts=0)  # the principal branch alone
        assert gap <= 1e-9
        strategies = [torch.as_tensor(x[i, : g.shape[1 + i]])[None] for i in range(g.shape[0])]
        assert float(nash_gap(torch.as_tensor(g[None]), strategies)) <= 1e-9


def test_det_sign_of_lu_factors_against_numpy():
    """The branch's orientation, sign(det [DH; t^T]), read off the compiled LU factors (diagonal
    signs times the permutation's parity), equals numpy's determinant sign."""
    from nashrl.equilibrium._homotopy_numba import _det_sign, _lu_factor

    rng = np.random.default_rng(5)
    for k in (1, 2, 3, 5, 8, 13, 40):
        for _ in range(20):
            mat = rng.normal(size=(k, k))
            lu, piv = np.zeros_like(mat), np.zeros(k, dtype=np.int64)
            assert _lu_factor(mat, lu, piv)
            assert _det_sign(lu, piv) == np.sign(np.linalg.det(mat))


def test_logit_homotopy_finds_the_unique_equilibrium_where_there_is_one():
    """2x2 games without a pure equilibrium have exactly one Nash equilibrium (mixed, in closed
    form); so does Jordan's three-player matching pennies. The homotopy, run on them, returns it."""
    from nashrl.equilibrium.homotopy import logit_homotopy

    gen = torch.Generator().manual_seed(13)
    games = torch.rand(400, 2, 2, 2, generator=gen, dtype=torch.float64)
    games = games[~pure_equilibrium_mask(games).flatten(1).any(1)]
    strategies, gap = logit_homotopy(games, 1e-12)
    a, b = games[:, 0], games[:, 1]
    # Row mixes to make the column player indifferent, and the other way round.
    p = (b[:, 1, 1] - b[:, 1, 0]) / (b[:, 0, 0] - b[:, 0, 1] - b[:, 1, 0] + b[:, 1, 1])
    q = (a[:, 1, 1] - a[:, 0, 1]) / (a[:, 0, 0] - a[:, 0, 1] - a[:, 1, 0] + a[:, 1, 1])
    torch.testing.assert_close(strategies[0][:, 0], p, atol=1e-10, rtol=0)
    torch.testing.assert_close(strategies[1][:, 0], q, atol=1e-10, rtol=0)
    pennies = torch.zeros(1, 3, 2, 2, 2, dtype=torch.float64)
    for x, y, z in itertools.product(range(2), repeat=3):
        pennies[0, 0, x, y, z] = 1.0 if x == y else -1.0
        pennies[0, 1, x, y, z] = 1.0 if y == z else -1.0
        pennies[0, 2, x, y, z] = 1.0 if z != x else -1.0
    strategies, gap = logit_homotopy(pennies, 1e-12)
    for s in strategies:
        torch.testing.assert_close(s, torch.full((1, 2), 0.5, dtype=torch.float64))


def test_n_player_search_always_selects_with_the_mixed_candidates_values():
    """3-player games with a pure equilibrium, ``search_mixed='always'``, utilitarian selection:
    the chosen profile's total payoff is at least every pure equilibrium's, and on some games the
    homotopy's mixed equilibrium wins (its values enter the selection; the solver computes them
    only where there is such a choice)."""
    gen = torch.Generator().manual_seed(3)
    games = torch.rand(400, 3, 3, 3, 3, generator=gen, dtype=torch.float64)
    mask = pure_equilibrium_mask(games)
    has_pure = mask.flatten(1).any(1)
    games, mask = games[has_pure], mask[has_pure]
    sol = solve(games, selection="utilitarian", search_mixed="always")
    assert bool(sol.solved.all())
    total = sol.values.sum(1)
    best_pure = torch.where(mask, games.sum(1), torch.tensor(-torch.inf, dtype=games.dtype)).flatten(1).amax(1)
    assert bool((total >= best_pure - 1e-9).all())
    assert int((total > best_pure + 1e-9).sum()) >= 5


def test_n_player_solution_does_not_depend_on_the_rest_of_the_batch():
    gen = torch.Generator().manual_seed(12)
    games = torch.rand(64, 3, 4, 4, 4, generator=gen, dtype=torch.float64)
    games = games[~pure_equilibrium_mask(games).flatten(1).any(1)]
    batch = solve(games)
    for k in (0, len(games) // 2, len(games) - 1):
        alone = solve(games[k : k + 1])
        for a, b in zip(alone.strategies, batch.strategies):
            torch.testing.assert_close(a[0], b[k])


@pytest.mark.parametrize("players", [2, 3])
def test_cache_solves_repeated_games_once_with_the_same_answer(players):
    gen = torch.Generator().manual_seed(7)
    distinct = torch.rand(5, players, *([4] * players), generator=gen, dtype=torch.float64)
    index = torch.tensor([3, 0, 3, 3, 1, 4, 2, 0, 3])
    batch = distinct[index]
    cache = SolutionCache()
    plain, shared = solve(batch), cache(batch)
    assert (cache.misses, cache.hits) == (5, 4)
    for a, b in zip(plain.strategies, shared.strategies):
        torch.testing.assert_close(a, b)
    torch.testing.assert_close(plain.values, shared.values)
    assert torch.equal(plain.solved, shared.solved)
    assert torch.equal(plain.n_equilibria, shared.n_equilibria)


def test_solution_cache_returns_what_solve_returns_and_counts_hits():
    gen = torch.Generator().manual_seed(8)
    distinct = torch.rand(6, 2, 3, 4, generator=gen, dtype=torch.float64)
    cache = SolutionCache(max_games=5, selection="utilitarian")
    for index in ([0, 1, 1, 2], [2, 0, 3, 3], [4, 5, 0, 1, 2]):  # the last batch overflows: bank refilled
        batch = distinct[torch.tensor(index)]
        got, want = cache(batch), solve(batch, selection="utilitarian")
        for a, b in zip(got.strategies, want.strategies):
            torch.testing.assert_close(a, b)
        torch.testing.assert_close(got.values, want.values)
        torch.testing.assert_close(got.nash_gap, want.nash_gap)
        assert torch.equal(got.solved, want.solved) and torch.equal(got.n_equilibria, want.n_equilibria)
    # first batch: 3 new; second: 2, 0 seen -> 1 new (3); third: 4 + 2 > 5 -> refill with 5 distinct
    assert (cache.misses, cache.hits) == (3 + 1 + 5, 1 + 3 + 0)


@pytest.mark.parametrize("players", [2, 3])
def test_device_index_of_the_cache_answers_like_solve_and_copies_nothing_to_the_host(players, monkeypatch):
    """The index a GPU learner uses (sorted integer hashes, hits confirmed on the payoffs), run on
    CPU tensors: same answers and hit counts as the host dictionary, and no tensor is turned into
    numpy or a list on the way (the solver itself is allowed: on a GPU it runs there)."""
    import nashrl.equilibrium.cache as cache_module

    gen = torch.Generator().manual_seed(9)
    distinct = torch.rand(6, players, *([3] * players), generator=gen, dtype=torch.float64)
    batches = [torch.tensor(i) for i in ([0, 1, 1, 2], [2, 0, 3, 3, 5], [4, 5, 0, 1, 2, 4])]
    host = SolutionCache(max_games=5)  # the third batch overflows the bank: refilled
    want = [host(distinct[i]) for i in batches]

    guarded = {"on": True}
    real_solve = cache_module.solve

    def unguarded_solve(*args, **kwargs):
        guarded["on"] = False
        try:
            return real_solve(*args, **kwargs)
        finally:
            guarded["on"] = True

    for name in ("numpy", "tolist", "cpu"):
        original = getattr(torch.Tensor, name)

        def no_copy(self, *args, _original=original, _name=name, **kwargs):
            if guarded["on"]:
                raise AssertionError(f"the device index called Tensor.{_name}")
            return _original(self, *args, **kwargs)

        monkeypatch.setattr(torch.Tensor, name, no_copy)
    monkeypatch.setattr(cache_module, "solve", unguarded_solve)
    device = SolutionCache(max_games=5, index="device")
    got = [device(distinct[i]) for i in batches]
    monkeypatch.undo()
    for g, w in zip(got, want):
        for a, b in zip(g.strategies, w.strategies):
            torch.testing.assert_close(a, b)
        torch.testing.assert_close(g.values, w.values)
        assert torch.equal(g.solved, w.solved) and torch.equal(g.n_equilibria, w.n_equilibria)
    assert (device.misses, device.hits) == (host.misses, host.hits) == (3 + 2 + 5, 1 + 3 + 1)


def test_three_player_matching_pennies_mixed():
    # Jordan's 3-player matching pennies: unique equilibrium, everyone mixes 50/50.
    g = np.zeros((3, 2, 2, 2))
    for a in itertools.product(range(2), repeat=3):
        g[0][a] = 1.0 if a[0] == a[1] else -1.0
        g[1][a] = 1.0 if a[1] == a[2] else -1.0
        g[2][a] = 1.0 if a[2] != a[0] else -1.0
    sol = solve(g[None])
    assert sol.solved.all()
    for s in sol.strategies:
        torch.testing.assert_close(s, torch.full((1, 2), 0.5, dtype=torch.float64), atol=1e-6, rtol=0)


def test_correlated_equilibrium_of_chicken_beats_nash_welfare():
    chicken = bimatrix([[6, 2], [7, 0]], [[6, 7], [2, 0]])
    joint, values = correlated_equilibrium(chicken)
    nash = solve(chicken, search_mixed="all", selection="utilitarian")
    assert float(values.sum()) >= float(nash.values.sum()) - 1e-9
    assert float(values.sum()) == pytest.approx(10.5, abs=1e-6)  # p = 1/4 on (D, D), (D, C), (C, D)... welfare 21/2
    ce = solve(chicken, concept="correlated")
    assert ce.solved.all() and float(ce.nash_gap.max()) <= 1e-9
    torch.testing.assert_close(ce.joint.sum(), torch.tensor(1.0, dtype=torch.float64))


def test_maximin_is_the_value_of_zero_sum_games():
    rng = np.random.default_rng(6)
    a = rng.uniform(-1, 1, size=(20, 4, 4))
    games = np.stack([a, -a], 1)
    strategies, values = maximin(games)
    nash = solve(games)
    torch.testing.assert_close(values[:, 0], nash.values[:, 0], atol=1e-7, rtol=0)
    torch.testing.assert_close(values[:, 1], -values[:, 0], atol=1e-7, rtol=0)


@pytest.mark.parametrize(
    "payoffs, message",
    [
        (np.zeros((2, 2)), "payoffs"),
        (np.zeros((1, 3, 2, 2)), "N=3 players"),
        (np.full((1, 2, 2, 2), np.nan), "finite"),
        (np.zeros((1, 2, 0, 2)), "at least one action"),
    ],
)
def test_bad_payoffs_are_refused(payoffs, message):
    with pytest.raises(ValueError, match=message):
        solve(payoffs)


def test_bad_options_are_refused():
    with pytest.raises(ValueError, match="selection"):
        solve(CLASSIC["stag_hunt"], selection="best")
    with pytest.raises(ValueError, match="concept"):
        solve(CLASSIC["stag_hunt"], concept="stackelberg")


def _general_path(game, selection):
    from nashrl.equilibrium.solver import _solve_scaled

    return _solve_scaled(torch.as_tensor(game), ("nash", selection, 1e-6, 1, "auto", "auto", 400))


def _assert_same_solution(fused, general, games):
    for s, r in zip(fused.strategies, general.strategies):
        torch.testing.assert_close(s, r, rtol=0, atol=1e-12)
    scale = torch.as_tensor(np.abs(games).reshape(len(games), -1).max(1)).clamp_min(1.0)  # the solver's units
    torch.testing.assert_close(fused.values / scale[:, None], general.values / scale[:, None], rtol=0, atol=1e-12)
    torch.testing.assert_close(fused.nash_gap / scale, general.nash_gap / scale, rtol=0, atol=1e-11)
    assert torch.equal(fused.solved, general.solved)
    assert torch.equal(fused.n_equilibria, general.n_equilibria)


@pytest.mark.parametrize("selection", ["pareto", "utilitarian", "egalitarian", "first", "strict"])
def test_fused_two_player_kernel_returns_the_general_paths_solution(selection):
    """The compiled two-player pass (pure mask, selection, Lemke-Howson, gap in one kernel) against
    the tensor path it replaces on CPU: random games, degenerate integer games with many pure
    equilibria (selection matters), scaled-up games, rectangular games."""
    rng = np.random.default_rng(3)
    games = np.concatenate(
        [
            rng.uniform(0, 1, (300, 2, 5, 5)),
            rng.integers(0, 3, (300, 2, 5, 5)).astype(float) * 1e3,
            rng.normal(0, 50, (300, 2, 5, 5)),
            rng.uniform(0, 1, (100, 2, 5, 5)) * 1e200,  # tol applies in the solver's units
        ]
    )
    _assert_same_solution(solve(games, selection=selection), _general_path(games, selection), games)
    rect = rng.uniform(-3, 3, (400, 2, 3, 7))
    _assert_same_solution(solve(rect, selection=selection), _general_path(rect, selection), rect)


def test_fused_kernel_hands_unfinished_paths_to_the_general_path(monkeypatch):
    """A game whose Lemke-Howson path does not end in the kernel's pivot limit goes the general
    path (which finishes it): with a limit of 0 every game without a pure equilibrium does."""
    import nashrl.equilibrium.solver as solver

    rng = np.random.default_rng(4)
    games = rng.uniform(0, 1, (400, 2, 4, 4))
    need_mixed = ~pure_equilibrium_mask(torch.as_tensor(games)).flatten(1).any(1)
    assert 50 < int(need_mixed.sum()) < 400
    monkeypatch.setattr(solver, "FUSED_PIVOTS_PER_ACTION", 0)
    sol = solve(games)
    assert bool(sol.solved.all())
    _assert_same_solution(sol, _general_path(games, "pareto"), games)


@pytest.mark.parametrize("selection", ["pareto", "utilitarian", "egalitarian", "first", "strict"])
def test_fused_n_player_kernel_returns_the_general_paths_solution(selection):
    """The compiled N-player pass (pure mask, selection, logit homotopy, gap in one kernel) against
    the tensor path it replaces on CPU: random 3- and 4-player games with and without pure
    equilibria, degenerate integer games with many pure equilibria (selection matters), scaled-up
    games, uneven action sets."""
    rng = np.random.default_rng(6)
    games = np.concatenate(
        [
            rng.uniform(0, 1, (40, 3, 3, 3, 3)),
            rng.integers(0, 2, (40, 3, 3, 3, 3)).astype(float) * 1e3,
            rng.normal(0, 50, (20, 3, 3, 3, 3)) * 1e150,  # tol applies in the solver's units
        ]
    )
    several = pure_equilibrium_mask(torch.as_tensor(games)).flatten(1).sum(1)
    assert int((several == 0).sum()) > 10 and int((several > 1).sum()) > 10
    _assert_same_solution(solve(games, selection=selection), _general_path(games, selection), games)
    uneven = rng.uniform(-3, 3, (30, 4, 2, 3, 2, 3))
    _assert_same_solution(solve(uneven, selection=selection), _general_path(uneven, selection), uneven)


def test_fused_n_player_kernel_hands_unfinished_branches_to_the_general_path(monkeypatch):
    """Games the kernel marks (a branch that ended without an equilibrium, rare: the restart test
    above) go the general path and are merged into the batch's solution: here a kernel that marks
    every game without a pure equilibrium."""
    import types

    import nashrl.equilibrium.solver as solver

    games = np.random.default_rng(7).uniform(0, 1, (60, 3, 3, 3, 3))
    no_pure = ~pure_equilibrium_mask(torch.as_tensor(games)).flatten(1).any(1).numpy()
    assert 5 < int(no_pure.sum()) < 60
    real = solver.compiled("_n_player_numba")

    def marking(*args):  # as solve_range, then the games without a pure equilibrium left unfinished
        x, out, status, lo, hi = args[-5:]
        real.solve_range(*args)
        marked = np.flatnonzero(no_pure[lo:hi]) + lo
        status[marked], x[marked], out[marked] = 1, 0.0, 0.0

    fake = types.SimpleNamespace(RULES=real.RULES, NOT_FINITE=real.NOT_FINITE, solve_range=marking)
    real_compiled = solver.compiled
    monkeypatch.setattr(solver, "compiled", lambda name: fake if name == "_n_player_numba" else real_compiled(name))
    sol = solve(games)
    assert bool(sol.solved.all())
    _assert_same_solution(sol, _general_path(games, "pareto"), games)


def test_fused_n_player_kernel_refuses_non_finite_payoffs():
    game = np.random.default_rng(8).uniform(0, 1, (8, 3, 2, 2, 2))
    for bad in (np.nan, np.inf, -np.inf):
        spoiled = game.copy()
        spoiled[5, 2, 1, 0, 1] = bad
        with pytest.raises(ValueError, match="payoffs: every payoff must be finite"):
            solve(spoiled)


def test_payoff_check_catches_every_non_finite_entry():
    game = np.random.default_rng(5).uniform(0, 1, (64, 2, 3, 3))
    for bad in (np.nan, np.inf, -np.inf):
        spoiled = game.copy()
        spoiled[37, 1, 2, 0] = bad
        with pytest.raises(ValueError, match="payoffs: every payoff must be finite"):
            solve(spoiled)


# ----- search_mixed="support": Porter-Nudelman-Shoham support enumeration (N >= 3) -----


def _no_pure(games):
    return games[~pure_equilibrium_mask(torch.as_tensor(games)).flatten(1).any(1).numpy()]


def _support_sizes(sol):
    return torch.stack([(s > 1e-9).sum(1) for s in sol.strategies], 1)


def test_support_size_profiles_in_porter_nudelman_shoham_order():
    from nashrl.equilibrium._support_numba import size_profiles

    assert size_profiles((2, 2, 2)).tolist() == [[1, 2, 2], [2, 1, 2], [2, 2, 1], [2, 2, 2]]
    profiles = size_profiles((3, 4, 2, 3))
    keys = [(sum(x), max(x) - min(x), tuple(x)) for x in profiles.tolist()]
    assert keys == sorted(keys)  # total size, then imbalance
    for x in profiles.tolist():  # no pure profile; no player with more equations than its rivals' unknowns
        assert sum(x) > len(x) and all(2 * (k - 1) <= sum(k - 1 for k in x) for k in x)
    assert all(1 <= k <= a for x in profiles.tolist() for k, a in zip(x, (3, 4, 2, 3)))
    assert len(profiles) == 46  # of 3 * 4 * 2 * 3 = 72 profiles: the pure one and 25 unbalanced ones
    assert size_profiles((3, 4, 2, 3), limit=10).tolist() == profiles[:10].tolist()
    assert len(size_profiles((13,) * 6, limit=1000)) == 1000  # listed by total size, not all 13^6


@pytest.mark.parametrize("shape, seed", [((400, 3, 4, 4, 4), 1), ((300, 4, 3, 3, 3, 3), 2), ((200, 3, 2, 3, 4), 4)])
def test_support_search_finds_the_smallest_supports_first(shape, seed):
    """Every game without a pure equilibrium solved; the equilibrium found has a total support no
    larger than the logit solution's (the enumeration tries smaller totals first), and is smaller in
    many games: another selection than the default's."""
    games = _no_pure(np.random.default_rng(seed).uniform(-1, 1, shape))
    logit = solve(games)
    first = solve(games, search_mixed="support")
    assert bool(first.solved.all()) and float(first.nash_gap.max()) <= 1e-6
    assert torch.allclose(first.nash_gap, nash_gap(torch.as_tensor(games), first.strategies), rtol=0, atol=1e-12)
    total_first, total_logit = _support_sizes(first).sum(1), _support_sizes(logit).sum(1)
    assert bool((total_first <= total_logit).all())
    assert int((total_first < total_logit).sum()) >= len(games) // 5
    for s in first.strategies:
        assert bool((s >= 0).all()) and torch.allclose(s.sum(1), torch.ones(len(games), dtype=s.dtype))


def test_support_search_three_player_matching_pennies():
    """Jordan's (1993) game (1 matches 2, 2 matches 3, 3 mismatches 1): its only equilibrium is
    (1/2, 1/2, 1/2), on the (2, 2, 2) support that the closed form solves."""
    game = np.zeros((1, 3, 2, 2, 2))
    for a1, a2, a3 in itertools.product(range(2), repeat=3):
        game[0, :, a1, a2, a3] = [a1 == a2, a2 == a3, a3 != a1]
    sol = solve(game, search_mixed="support")
    for s in sol.strategies:
        assert np.allclose(s.numpy(), 0.5, atol=1e-12)
    assert bool(sol.solved.all()) and int(sol.n_equilibria[0]) == 1


def test_support_search_keeps_pure_equilibria_and_scale():
    games = np.random.default_rng(11).uniform(-1, 1, (64, 3, 3, 3, 3))
    has_pure = pure_equilibrium_mask(torch.as_tensor(games)).flatten(1).any(1)
    assert 0 < int(has_pure.sum()) < 64
    first, logit = solve(games, search_mixed="support"), solve(games)
    for s, t in zip(first.strategies, logit.strategies):  # games with a pure equilibrium: the same selection
        assert torch.equal(s[has_pure], t[has_pure])
    scaled = solve(games * 1e6, search_mixed="support")
    for s, t in zip(first.strategies, scaled.strategies):
        assert torch.allclose(s, t, atol=1e-9)


def test_support_search_hands_what_it_cannot_find_to_the_homotopy(monkeypatch):
    """With no Newton problem allowed, every game without a pure equilibrium goes to the logit
    homotopy: the default's solution exactly."""
    import nashrl.equilibrium._support_numba as support

    games = _no_pure(np.random.default_rng(3).uniform(-1, 1, (200, 3, 4, 4, 4)))
    monkeypatch.setattr(support, "MAX_LEAVES", 0)
    starved, logit = solve(games, search_mixed="support"), solve(games)
    assert bool(starved.solved.all())
    for s, t in zip(starved.strategies, logit.strategies):
        assert torch.equal(s, t)
    monkeypatch.undo()
    assert any(not torch.equal(s, t) for s, t in zip(solve(games, search_mixed="support").strategies, logit.strategies))


def test_support_search_refuses_two_player_games():
    with pytest.raises(ValueError, match="search_mixed: 'support' is for games of 3 or more players"):
        solve(CLASSIC["matching_pennies"], search_mixed="support")


def _dominated_brute(game, player, action, allowed):
    """Whether ``action`` of ``player`` is strictly dominated on the rival profiles ``allowed`` (a
    list of per-player action lists; the player's own entry ignored), by brute force."""
    own = np.moveaxis(game[player], player, 0)  # [A_player, rivals...]
    rivals = [a for k, a in enumerate(allowed) if k != player]
    block = own[np.ix_(range(own.shape[0]), *rivals)].reshape(own.shape[0], -1)
    return any((block[b] > block[action]).all() for b in range(own.shape[0]) if b != action)


@pytest.mark.parametrize("shape, seed", [((3, 5, 5, 5), 21), ((4, 3, 4, 2, 3), 22), ((3, 8, 8, 4), 23)])
def test_support_dominance_bit_sets_equal_the_offset_lists_and_brute_force(shape, seed):
    """The search's dominance tests on 64-bit sets of rival profiles (games whose players have at most
    64 rival profiles) and on lists of offsets (larger games) agree with each other and with brute
    force, over random partial support choices of random games."""
    from nashrl.equilibrium import _support_numba as sn

    rng = np.random.default_rng(seed)
    sizes = np.array(shape[1:], dtype=np.int64)
    n = len(sizes)
    stride = np.array([int(np.prod(sizes[k + 1 :])) for k in range(n)], dtype=np.int64)
    assert sn.bits_fit(sizes)
    gt = np.zeros((n, sizes.max(), sizes.max()), dtype=np.uint64)
    rest = np.zeros(int(np.prod(sizes)), dtype=np.int64)
    cand_bits, cand_list = np.zeros((n, sizes.max()), np.int64), np.zeros((n, sizes.max()), np.int64)
    checked = pruned = 0
    for _ in range(30):
        game = rng.integers(0, 4, shape).astype(float)  # ties too: dominance is strict
        q = game.reshape(n, -1)
        sn._dominance_bits(q, sizes, stride, gt, np.zeros((sizes.max(), 64)))
        for _ in range(20):
            x = np.array([rng.integers(1, a + 1) for a in sizes], dtype=np.int64)
            comb = np.zeros((n, sizes.max()), dtype=np.int64)
            for k in range(n):
                comb[k, : x[k]] = np.sort(rng.choice(sizes[k], x[k], replace=False))
            for depth in range(n):
                allowed = [list(comb[k, : x[k]]) if k < depth else list(range(sizes[k])) for k in range(n)]
                found = sn._candidates_bits(sizes, gt, comb, x, depth, cand_bits)
                assert found == sn._candidates(q, sizes, stride, comb, x, depth, rest, cand_list)
                brute = [a for a in range(sizes[depth]) if not _dominated_brute(game, depth, a, allowed)]
                assert cand_bits[depth, :found].tolist() == cand_list[depth, :found].tolist() == brute
                allowed[depth] = list(comb[depth, : x[depth]])
                ok = sn._chosen_undominated_bits(sizes, gt, comb, x, depth)
                assert ok == sn._chosen_undominated(q, sizes, stride, comb, x, depth, rest)
                assert ok == (not any(_dominated_brute(game, j, a, allowed) for j in range(depth) for a in allowed[j]))
                checked, pruned = checked + 1, pruned + (not ok)
    assert pruned > checked // 20  # the tests prune something


def test_support_search_method_per_size_profile():
    """Which solver a size profile's supports get: the quadratic for three players mixing two
    actions each, the closed form for two mixers (others pure), one Newton step where each mixing
    player's conditions involve one mixing rival, Newton from several starts otherwise; the second
    pass skips the first three, whose roots the first pass found all of."""
    from nashrl.equilibrium import _support_numba as sn

    expected = {
        (2, 2, 2): sn.PAIRS,
        (1, 2, 2): sn.TWO_MIXERS,
        (2, 1, 2, 1): sn.TWO_MIXERS,
        (1, 3, 3): sn.LINEAR,  # a pure player has no conditions: two 3-action mixers are linear
        (2, 3, 1): sn.LINEAR,
        (2, 2, 3): sn.NEWTON,
        (1, 2, 2, 2): sn.NEWTON,
    }
    for x, method in expected.items():
        assert sn._method(np.array(x), 1) == method, x
        assert sn._method(np.array(x), 3) == (sn.NEWTON if method == sn.NEWTON else sn.SKIP), x


@pytest.mark.parametrize("shape, seed", [((3, 4, 4, 4), 31), ((4, 3, 3, 3, 3), 32)])
def test_support_two_mixers_closed_form_equals_newton(shape, seed):
    """On supports where two players mix two actions and the others are pure, the closed form and
    Newton (the general path of the search) find the same roots: every root with non-negative
    probabilities compared (a tolerance that accepts any Nash gap), and the same gaps."""
    from nashrl.equilibrium import _support_numba as sn

    rng = np.random.default_rng(seed)
    sizes = np.array(shape[1:], dtype=np.int64)
    n = len(sizes)
    stride = np.array([int(np.prod(sizes[k + 1 :])) for k in range(n)], dtype=np.int64)
    (comb, *_), leaf = sn.workspace(sizes, int(np.prod(sizes)))
    digits, flat, sigma, u = leaf[0], leaf[1], leaf[2], leaf[8]
    accepted = 0
    for _ in range(200):
        q = rng.uniform(-1, 1, shape).reshape(n, -1)
        j, k = sorted(rng.choice(n, 2, replace=False))
        x = np.ones(n, dtype=np.int64)
        x[[j, k]] = 2
        for i in range(n):
            comb[i, : x[i]] = np.sort(rng.choice(sizes[i], x[i], replace=False))
        closed, newton = np.zeros((n, sizes.max())), np.zeros((n, sizes.max()))
        count = sn._support_profiles(sizes, stride, comb, x, digits, flat)
        gap_closed = sn._two_mixers(q, sizes, stride, comb, x, sigma, np.inf, closed, digits, flat, count, u)
        gap_newton = sn._newton_starts(q, sizes, stride, comb, x, np.inf, 1, False, newton, leaf)
        assert np.isfinite(gap_closed) == np.isfinite(gap_newton)
        if np.isfinite(gap_closed):
            accepted += 1
            assert np.allclose(closed, newton, atol=1e-10) and abs(gap_closed - gap_newton) < 1e-10
    assert accepted >= 20


def test_solve_takes_payoffs_that_require_grad():
    """A payoff tensor in an autograd graph is solved as its values (the fused paths read it as an
    array): no error, and a solution outside the graph."""
    for shape in ((6, 3, 3, 3, 3), (6, 2, 3, 3)):
        game = torch.rand(shape, dtype=torch.float64, requires_grad=True)
        sol = solve(game)
        assert bool(sol.solved.all()) and not sol.values.requires_grad
        assert torch.equal(sol.values, solve(game.detach()).values)
