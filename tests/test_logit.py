"""Logit (quantal-response) equilibria: solve(concept="logit", temperature=sigma)."""

import numpy as np
import pytest
import torch

from nashrl.equilibrium import solve
from nashrl.equilibrium.logit import logit_residual


def damped_fixed_point(game: np.ndarray, sigma: float, iters: int = 20_000) -> list[np.ndarray]:
    """Independent reference: x <- (x + logit(u(x) / sigma)) / 2 from uniform play (numpy, one game)."""
    n = game.shape[0]
    xs = [np.full(a, 1.0 / a) for a in game.shape[1:]]
    for _ in range(iters):
        new = []
        for i in range(n):
            u = np.moveaxis(game[i], i, 0)
            for j, x in enumerate(xs):  # rivals' axes follow in their order after moving i first
                if j != i:
                    u = np.tensordot(u, x, axes=([1], [0]))
            z = np.exp((u - u.max()) / sigma)
            new.append(0.5 * xs[i] + 0.5 * z / z.sum())
        xs = new
    return xs


@pytest.mark.parametrize("shape", [(2, 3, 4), (3, 3, 3, 2)])
def test_logit_equilibrium_matches_a_direct_damped_iteration(shape):
    rng = np.random.default_rng(7)
    games = rng.uniform(size=(4, *shape))
    sigma = 0.5  # large enough for a unique equilibrium that plain damped iteration reaches
    sol = solve(games, concept="logit", temperature=sigma)
    assert bool(sol.solved.all()) and float(sol.nash_gap.max()) <= 1e-6
    for b in range(len(games)):
        reference = damped_fixed_point(games[b], sigma)
        for x, ref in zip(sol.strategies, reference):
            np.testing.assert_allclose(x[b].numpy(), ref, atol=1e-7)


def test_small_temperature_approaches_the_strict_nash_equilibrium():
    """Prisoner's dilemma-like games with a strict dominant-strategy equilibrium."""
    rng = np.random.default_rng(3)
    a = rng.uniform(size=(64, 3, 3))
    a[:, 2, :] += 1.0  # row 2 strictly dominant for player 1
    b = rng.uniform(size=(64, 3, 3))
    b[:, :, 0] += 1.0  # column 0 strictly dominant for player 2
    games = np.stack([a, b], 1)
    nash = solve(games)
    logit = solve(games, concept="logit", temperature=0.01)
    assert bool(logit.solved.all())
    assert (logit.strategies[0][:, 2] > 0.99).all() and (logit.strategies[1][:, 0] > 0.99).all()
    for x, y in zip(logit.strategies, nash.strategies):
        assert torch.equal(x.argmax(1), y.argmax(1))


def test_logit_values_include_the_shocks_expected_maximum_and_flags_are_consistent():
    # Payoffs that do not depend on the rival: each player's choice is a plain logit.
    game = np.zeros((1, 2, 2, 2))
    game[0, 0] = [[1.0, 1.0], [0.0, 0.0]]
    game[0, 1] = [[0.0, 2.0], [0.0, 2.0]]
    sigma = 0.5
    sol = solve(game, concept="logit", temperature=sigma)
    p = np.exp(1 / sigma) / (np.exp(1 / sigma) + 1)
    assert sol.strategies[0][0].numpy() == pytest.approx([p, 1 - p], abs=1e-9)
    assert sol.values[0].numpy() == pytest.approx(
        [sigma * np.log(np.exp(1 / sigma) + 1), sigma * np.log(1 + np.exp(2 / sigma))], abs=1e-9
    )
    games = torch.as_tensor(np.random.default_rng(0).uniform(size=(128, 2, 5, 5)))
    hard = solve(games, concept="logit", temperature=0.02)
    assert torch.equal(hard.solved, hard.nash_gap <= 1e-6)  # unsolved games are flagged, never hidden
    residual = logit_residual(games, hard.strategies, 0.02)
    torch.testing.assert_close(residual, hard.nash_gap)


def test_logit_options_are_checked():
    game = np.random.default_rng(0).uniform(size=(2, 2, 2, 2))
    with pytest.raises(ValueError, match="temperature: expected a number with concept='logit'"):
        solve(game, concept="logit")
    with pytest.raises(ValueError, match="temperature: expected a number with concept='logit'"):
        solve(game, temperature=1.0)
    with pytest.raises(ValueError, match="temperature: expected a finite number > 0"):
        solve(game, concept="logit", temperature=0.0)
