"""Entry with many firms: logit equilibria of aggregative stage games, the aggregative soft Nash-Q
head, and exact best responses without joint-action tables."""

import itertools

import gymnasium as gym
import numpy as np
import pytest
import torch

from nashrl.equilibrium import solve
from nashrl.equilibrium.aggregative_logit import (
    count_index,
    rival_distributions,
    solve_aggregative_logit,
    table_deviations,
)
from nashrl.equilibrium.logit import logit_equilibrium
from nashrl.markets import make_market


def _joint(tables: torch.Tensor, index: torch.Tensor) -> torch.Tensor:
    """The joint game ``[B, N, A, ..., A]`` a count-grid table ``[B, N, A, M]`` stands for."""
    b, n, a, _ = tables.shape
    joint = torch.zeros(b, n, *([a] * n), dtype=torch.float64)
    for profile in itertools.product(range(a), repeat=n):
        steps = [int(index[j, profile[j]]) for j in range(n)]
        for i in range(n):
            joint[(slice(None), i, *profile)] = tables[:, i, profile[i], sum(steps) - steps[i]]
    return joint


def test_count_grid_is_found_where_the_knots_are_every_attainable_aggregate():
    entry = make_market({"type": "entry_exit", "n_firms": 4, "theta_fc": -1.7}).aggregation(33)
    assert count_index(entry).tolist() == [[0, 1]] * 4
    cournot = make_market(
        {"type": "cournot", "n_firms": 3, "memory": 0, "quantities": {"low": 0, "high": 4, "size": 5}}
    )
    assert count_index(cournot.aggregation(33)).tolist() == [[0, 1, 2, 3, 4]] * 3
    assert count_index(make_market({"type": "logit_bertrand", "n_firms": 3, "m": 5}).aggregation(9)) is None  # log


def test_rival_distributions_are_poisson_binomial():
    p = torch.tensor([[0.2, 0.7, 0.5]], dtype=torch.float64)
    strategies = [torch.stack([1 - p[:, j], p[:, j]], 1) for j in range(3)]
    dist = rival_distributions(strategies, torch.tensor([[0, 1]] * 3), 3)
    # firm 0's rivals: 0.7 and 0.5 -> P(0) = 0.15, P(1) = 0.5, P(2) = 0.35
    torch.testing.assert_close(dist[0, 0], torch.tensor([0.15, 0.5, 0.35], dtype=torch.float64))
    torch.testing.assert_close(dist.sum(-1), torch.ones(1, 3, dtype=torch.float64))


@pytest.mark.parametrize(
    "config, temperature",
    [
        ({"type": "entry_exit", "n_firms": 4, "theta_fc": -1.7}, 1.0),
        ({"type": "cournot", "n_firms": 3, "memory": 0, "quantities": {"low": 0, "high": 2, "size": 3}}, 1.0),
    ],
)
def test_aggregative_logit_equilibria_equal_the_joint_solver(config, temperature):
    """On the joint game the tables stand for, the general solver finds the same logit
    equilibria (principal branch) and values; the compiled and torch paths agree."""
    aggregation = make_market(config).aggregation(33)
    index = count_index(aggregation)
    n, a, m = len(aggregation.sizes), max(aggregation.sizes), aggregation.n_knots
    gen = torch.Generator().manual_seed(0)
    tables = torch.randn(40, n, a, m, generator=gen, dtype=torch.float64) * 2.0
    sol = solve_aggregative_logit(tables, aggregation, temperature)
    assert bool(sol.solved.all()) and float(sol.nash_gap.max()) <= 1e-9
    ref = solve(_joint(tables, index), concept="logit", temperature=temperature)
    for mine, theirs in zip(sol.strategies, ref.strategies):
        torch.testing.assert_close(mine, theirs, atol=1e-7, rtol=0)
    torch.testing.assert_close(sol.values, ref.values, atol=1e-7, rtol=0)
    torch_path, residual = logit_equilibrium(
        tables,
        temperature,
        tol=1e-9,
        path_steps=12,
        backend="torch",
        deviations=table_deviations(index, aggregation.sizes),
        sizes=aggregation.sizes,
    )
    assert float(residual.max()) <= 1e-9
    for mine, theirs in zip(sol.strategies, torch_path):
        torch.testing.assert_close(mine, theirs, atol=1e-7, rtol=0)


def test_hard_games_are_solved_to_logit_equilibria_of_the_joint_game():
    """At a low temperature branches fold: every game is still solved, and each solution is a
    logit equilibrium of the joint game (another branch than the joint solver's is allowed)."""
    from nashrl.equilibrium.logit import logit_residual

    config = {"type": "cournot", "n_firms": 3, "memory": 0, "quantities": {"low": 0, "high": 2, "size": 3}}
    aggregation = make_market(config).aggregation(33)
    tables = torch.randn(40, 3, 3, 5, generator=torch.Generator().manual_seed(0), dtype=torch.float64) * 2.0
    sol = solve_aggregative_logit(tables, aggregation, 0.5)
    assert bool(sol.solved.all())
    joint = _joint(tables, count_index(aggregation))
    assert float(logit_residual(joint, sol.strategies, 0.5).max()) <= 1e-8


def test_logit_is_refused_off_a_count_grid():
    aggregation = make_market({"type": "logit_bertrand", "n_firms": 3, "m": 5}).aggregation(9)
    with pytest.raises(ValueError, match="count grid"):
        solve_aggregative_logit(torch.zeros(1, 3, 5, 9, dtype=torch.float64), aggregation, 1.0)
    from nashrl.config import load_config
    from nashrl.markets.validation import ConfigError

    with pytest.raises(ConfigError, match="algorithm.solution_concept: logit with q_head 'aggregative'"):
        load_config(
            "configs/logit_bertrand_many_firms.yaml",
            ["algorithm.solution_concept=logit", "algorithm.logit_temperature=0.1"],
        )


def test_entry_exit_is_aggregative_and_exchangeable_with_one_fixed_cost():
    market = make_market({"type": "entry_exit", "n_firms": 4, "theta_fc": -1.7})
    states = market.state_array()
    rng = np.random.default_rng(0)
    for s in states[rng.choice(len(states), 20, replace=False)]:
        for profile in market.all_profiles()[::3]:
            want = market.stage_profits(s, profile)
            got = market.deviation_payoffs(s, profile)  # from aggregate_profits
            np.testing.assert_allclose(got[np.arange(4), profile], want, rtol=1e-12, atol=1e-12)
    views = market.firm_views()
    obs = market.observe(np.array([2, 1, 0, 0, 1]))
    assert obs[views[1]].tolist() == [obs[0], 0.0, 0.0, 1.0, 1.0]  # firm 1: its own, then firms 2, 3, 0
    assert make_market({"type": "entry_exit"}).firm_views() is None  # AM's five fixed costs differ


def _logit_module(config: dict, views=None):
    from nashrl.algorithms.nash_q.module import NashQTorchRLModule, aggregation_spec

    market = make_market(config)
    model = {
        "action_sizes": list(market.action_sizes),
        "hiddens": [8],
        "q_head": "aggregative",
        "aggregation": aggregation_spec(market.aggregation(33)),
        "solution_concept": "logit",
        "logit_temperature": 0.7,
        "public_size": market.public_size,
    }
    if views is not None:
        model["firm_views"] = views.tolist()
    module = NashQTorchRLModule(
        observation_space=market.observation_space("firm_0"),
        action_space=gym.spaces.Discrete(2),
        model_config=model,
    )
    return market, module


def test_aggregative_soft_head_values_equal_the_joint_game():
    """The soft head's stage game (logit equilibrium, values without the shocks' rent, deviation
    payoffs) equals the joint game its tables stand for, with one network shared by the firms."""
    config = {"type": "entry_exit", "n_firms": 4, "theta_fc": -1.7}
    market, module = _logit_module(config, make_market(config).firm_views())
    gen = torch.Generator().manual_seed(3)
    with torch.no_grad():
        for p in module.q_net.parameters():
            p.copy_(torch.randn(p.shape, generator=gen))
    obs = torch.rand(7, market.observation_size, generator=gen)
    tables = module.q_values(obs).double()
    joint = _joint(tables, count_index(module.head.aggregation))
    sol = module.solve_stage_games(tables)
    ref = solve(joint, concept="logit", temperature=0.7)
    for mine, theirs in zip(sol.strategies, ref.strategies):
        torch.testing.assert_close(mine, theirs, atol=1e-7, rtol=0)
    expected = (joint * ref.joint.unsqueeze(1)).flatten(2).sum(-1)  # E_sigma[Q_i], no entropy
    torch.testing.assert_close(module.head.values(tables, sol), expected, atol=1e-7, rtol=0)
    probs = module.choice_probabilities(tables)
    torch.testing.assert_close(probs[2], sol.strategies[2])


def test_factored_best_responses_equal_the_enumerated_ones():
    """Without joint tables: the same gains, values and ergodic weights as nashrl.theory.ccp."""
    from nashrl.theory.ccp import CCPGame, best_response_gap
    from nashrl.theory.factored_ccp import factored_gap

    market = make_market({"type": "entry_exit"})  # AM's five heterogeneous firms
    rng = np.random.default_rng(0)
    p = rng.uniform(0.05, 0.95, (5, market.n_states))
    ccp = np.stack([1 - p, p], -1)
    want = best_response_gap(CCPGame.of(market), ccp)
    got = factored_gap(market, ccp)
    assert got["by_symmetry"] is False and got["firms"] == [0, 1, 2, 3, 4]
    np.testing.assert_allclose(got["per_firm"], want["per_firm"], rtol=1e-8)
    for key in ("dynamic_nash_gap", "relative", "ergodic_relative"):
        assert got[key] == pytest.approx(want[key], rel=1e-8)


def test_the_symmetric_mpe_is_a_best_response_to_itself_and_symmetry_is_detected():
    """8 firms (1,280 states): the symmetric MPE spread to the full state leaves no firm a gain;
    its profile is rotation-equivariant (one firm stands for all, and gives the same gap as
    computing every firm); a perturbed firm breaks the symmetry and has a gain."""
    from nashrl.theory.factored_ccp import factored_gap, rotation_equivariant
    from nashrl.theory.symmetric_entry import full_ccp, symmetric_mpe

    market = make_market({"type": "entry_exit", "n_firms": 8, "theta_fc": -1.7, "theta_rn": 1.0})
    eq = full_ccp(market, symmetric_mpe(market))
    assert rotation_equivariant(market, eq)
    one = factored_gap(market, eq)
    assert one["by_symmetry"] is True and one["firms"] == [0]
    assert one["dynamic_nash_gap"] < 1e-8
    every = factored_gap(market, eq, firms=list(range(8)))
    assert max(every["per_firm"]) < 1e-8
    bent = eq.copy()
    bent[3, :, 1] = np.clip(bent[3, :, 1] + 0.1, 0.01, 0.99)
    bent[3, :, 0] = 1 - bent[3, :, 1]
    assert not rotation_equivariant(market, bent)
    gap = factored_gap(market, bent)
    assert gap["firms"] == list(range(8)) and gap["per_firm"][3] > 1e-3


def test_long_run_entry_and_exit_of_the_mpe_and_of_a_factored_law():
    """AM's MPE: in its ergodic law the expected number active today equals the number active
    last period, and entries equal exits (both hold only at the profile's stationary law); the
    factored power iteration gives the exact law's figures; a market without entry gives None."""
    from nashrl.analysis.ccp_eval import long_run_activity
    from nashrl.theory.ccp import cached_mpe, stationary
    from nashrl.theory.factored_ccp import FactoredGame
    from nashrl.theory.factored_ccp import stationary as factored_stationary

    market = make_market({"type": "entry_exit"})
    result = cached_mpe(market)
    ccp, game = result["equilibria"][0].ccp, result["game"]
    mu = stationary(game.transition(game.joint(torch.as_tensor(ccp)))).numpy()
    got = long_run_activity(market, ccp, mu)
    incumbents = market.state_array()[:, 1:].sum(1)
    assert got["active_firms"] == pytest.approx(float(mu @ incumbents), rel=1e-9)
    assert got["entries"] == pytest.approx(got["exits"], rel=1e-9)
    assert 0.5 < got["active_firms"] < 4.5 and got["entries"] > 0.01
    uniform = long_run_activity(market, ccp, np.ones(market.n_states))  # not the stationary law
    assert abs(uniform["entries"] - uniform["exits"]) > 1e-3
    factored = factored_stationary(FactoredGame(market), torch.as_tensor(ccp)).numpy()
    for key, value in long_run_activity(market, ccp, factored).items():
        assert value == pytest.approx(got[key], rel=1e-8)
    cournot = make_market({"type": "cournot", "n_firms": 2})
    assert long_run_activity(cournot, np.ones((2, 1, 2)) / 2, np.ones(1)) is None
