"""Closed forms against brute-force best responses on fine grids, and the reference figures."""

import numpy as np
import pytest
from scipy.optimize import minimize_scalar

from nashrl.markets import ConfigError, make_market
from nashrl.theory import cournot, linear_bertrand, logit, stackelberg
from nashrl.theory.benchmarks import benchmarks
from nashrl.theory.capacity import solve_mpe, stage_games, target_variance
from nashrl.theory.grid import grid_equilibria, grid_subgame_perfect

FINE = 200_001


def best_response(profit_of_own, low, high):
    grid = np.linspace(low, high, FINE)
    return grid[np.argmax(profit_of_own(grid))]


def assert_is_nash(profits, actions, low, high, tol):
    for i in range(len(actions)):

        def own(x, i=i):
            joint = np.repeat(np.asarray(actions, float)[None], len(x), 0)
            joint[:, i] = x
            return profits(joint)[:, i]

        assert best_response(own, low, high) == pytest.approx(actions[i], abs=tol)


@pytest.mark.parametrize("costs", [[1.0, 1.0], [1.0, 2.0], [0.5, 1.0, 2.0], [1, 1, 1, 1, 1]])
def test_cournot_nash_is_mutual_best_response(costs):
    a, b, c = 10.0, 1.5, np.array(costs)
    q = cournot.nash(a, b, c)
    assert_is_nash(lambda joint: cournot.profits(a, b, c, joint), q, 0.0, 10.0, 1e-4)
    if np.allclose(c, c[0]):
        n = len(c)
        assert q == pytest.approx(np.full(n, (a - c[0]) / (b * (n + 1))))
        assert cournot.profits(a, b, c, q) == pytest.approx(np.full(n, (a - c[0]) ** 2 / (b * (n + 1) ** 2)))


def test_cournot_exit_and_cartel():
    q = cournot.nash(10.0, 1.0, np.array([1.0, 2.0, 9.5]))
    assert q[2] == 0.0 and q[0] > q[1] > 0
    assert_is_nash(lambda j: cournot.profits(10.0, 1.0, np.array([1.0, 2.0, 9.5]), j), q, 0.0, 10.0, 1e-4)
    qm = cournot.cartel(10.0, 1.0, np.array([1.0, 1.0]))
    joint = minimize_scalar(lambda x: -((10 - x - 1) * x), bounds=(0, 10), method="bounded").x
    assert qm.sum() == pytest.approx(joint, abs=1e-5)


def test_stackelberg_is_backward_induction():
    a, b, c_l, c_f = 12.0, 1.0, 1.0, 2.0
    q_l, q_f = stackelberg.subgame_perfect(a, b, c_l, c_f)
    leader = np.linspace(0, 12, FINE)
    follower = stackelberg.follower_best_response(a, b, c_f, leader)
    profit = (a - b * (leader + follower) - c_l) * leader
    assert leader[np.argmax(profit)] == pytest.approx(q_l, abs=1e-4)
    assert q_f == pytest.approx(best_response(lambda x: (a - b * (q_l + x) - c_f) * x, 0, 12), abs=1e-4)
    same = stackelberg.subgame_perfect(10.0, 1.0, 1.0, 1.0)
    assert same == pytest.approx([4.5, 2.25])


@pytest.mark.parametrize(
    "a, b, c_l, c_f, kind",
    [
        (10.0, 1.0, 1.0, 5.0, "deterrence"),  # limit output at the follower's shut-down point 5
        (10.0, 1.0, 1.0, 6.0, "deterrence"),  # monopoly output 4.5 already deters
        (10.0, 2.0, 1.0, 4.5, "deterrence"),
        (10.0, 1.0, 1.0, 3.5, "accommodation"),
        (10.0, 1.0, 4.0, 1.0, "accommodation"),  # a costlier leader
        (7.0, 0.5, 2.0, 2.0, "accommodation"),
    ],
)
def test_stackelberg_corners_by_brute_force(a, b, c_l, c_f, kind):
    """The leader's optimum over the follower's whole best-response function, corners included."""
    q_l, q_f = stackelberg.subgame_perfect(a, b, c_l, c_f)
    leader = np.linspace(0, a / b, 200_001)
    follower = stackelberg.follower_best_response(a, b, c_f, leader)
    profit = (np.maximum(a - b * (leader + follower), 0) - c_l) * leader
    assert q_l == pytest.approx(leader[np.argmax(profit)], abs=1e-3)
    assert stackelberg.leader_profit(a, b, c_l, c_f, q_l) >= profit.max() - 1e-9
    assert q_f == pytest.approx(best_response(lambda x: (a - b * (q_l + x) - c_f) * x, 0, a / b), abs=1e-4)
    assert stackelberg.outcome_kind(a, b, c_l, c_f) == kind


def test_stackelberg_limit_output_in_theory_rows():
    env = make_market({"type": "stackelberg", "a": 10.0, "costs": [1.0, 5.0]})
    row = next(r for r in benchmarks(env) if r["concept"] == "subgame_perfect")
    assert row["actions"] == pytest.approx([5.0, 0.0]) and row["outcome"] == "deterrence"
    grid = next(r for r in benchmarks(env) if r["concept"] == "grid_subgame_perfect")
    assert grid["actions"][1] == 0.0  # the grid's backward induction deters too


@pytest.mark.parametrize("gamma, n", [(0.0, 2), (0.5, 2), (0.8, 2), (0.5, 3)])
def test_singh_vives_nash_and_joint(gamma, n):
    a, c = np.ones(n), np.zeros(n)
    p = linear_bertrand.nash(a, gamma, c)
    assert_is_nash(lambda joint: linear_bertrand.profits(a, gamma, c, joint), p, 0.0, 1.0, 1e-4)
    if n == 2:
        assert p == pytest.approx(np.full(2, (1 - gamma) / (2 - gamma)))
    pm = linear_bertrand.joint_profit(a, c)
    total = lambda x: linear_bertrand.profits(a, gamma, c, np.full((1, n), x)).sum()  # noqa: E731
    best = minimize_scalar(lambda x: -total(x), bounds=(0, 1), method="bounded").x
    assert pm[0] == pytest.approx(best, abs=1e-5) and pm[0] == pytest.approx(0.5)


def test_calvano_reference_figures():
    a, c = np.array([2.0, 2.0]), np.array([1.0, 1.0])
    pn, pm = logit.nash(a, 0.0, 0.25, c), logit.joint_profit(a, 0.0, 0.25, c)
    assert pn == pytest.approx([1.47293, 1.47293], abs=5e-6)
    assert pm == pytest.approx([1.92498, 1.92498], abs=5e-6)
    assert logit.profits(a, 0.0, 0.25, c, pn) == pytest.approx([0.22293, 0.22293], abs=5e-6)
    assert logit.profits(a, 0.0, 0.25, c, pm) == pytest.approx([0.33749, 0.33749], abs=5e-6)
    assert logit.shares(a, 0.0, 0.25, pn) == pytest.approx([0.47138, 0.47138], abs=5e-6)
    assert_is_nash(lambda j: logit.profits(a, 0.0, 0.25, c, j), pn, 1.0, 3.0, 2e-5)
    for n, p_n, p_m in [(3, 1.37016, 2.0), (4, 1.33146, 2.05441)]:
        assert logit.nash(np.full(n, 2.0), 0.0, 0.25, np.ones(n))[0] == pytest.approx(p_n, abs=5e-6)
        assert logit.joint_profit(np.full(n, 2.0), 0.0, 0.25, np.ones(n))[0] == pytest.approx(p_m, abs=5e-5)


@pytest.mark.parametrize(
    "a, c", [([1.8, 2.2], [1.0, 1.0]), ([2.0, 1.81], [1.0, 1.1]), ([2.1, 1.9, 2.05], [1.0, 0.9, 1.0])]
)
def test_logit_joint_profit_with_asymmetric_firms_maximises_total_profit(a, c):
    """Asymmetric qualities and costs (the N-dimensional root search failed on [1.8, 2.2]): equal
    markups, and no price vector nearby earns more in total."""
    from scipy.optimize import minimize

    a, c = np.array(a), np.array(c)
    pm = logit.joint_profit(a, 0.0, 0.25, c)
    assert np.ptp(pm - c) < 1e-12
    best = minimize(
        lambda p: -logit.profits(a, 0.0, 0.25, c, p).sum(),
        c + 0.5,
        method="Nelder-Mead",
        options={"xatol": 1e-10, "fatol": 1e-15, "maxiter": 20_000},
    )
    assert pm == pytest.approx(best.x, abs=1e-6)
    assert logit.profits(a, 0.0, 0.25, c, pm).sum() >= -best.fun - 1e-12


def test_grid_equilibria_of_integer_cournot():
    env = make_market({"type": "cournot", "a": 10, "costs": 1, "quantities": list(range(10)), "memory": 0})
    eq = grid_equilibria(env, env.initial_state(np.random.default_rng(0)))
    assert sorted(map(tuple, eq["pure_profiles"])) == [(2.0, 4.0), (3.0, 3.0), (4.0, 2.0)]
    assert eq["selected_actions"] == [3.0, 3.0]


def test_grid_subgame_perfect_by_brute_force():
    env = make_market({"type": "stackelberg"})
    grid = env.grids[0]
    best, best_profit = None, -np.inf
    for i, q_l in enumerate(grid):
        follower = (env.a - env.b * (q_l + grid) - env.costs[1]) * grid
        j = np.argmax(follower)
        leader = (env.a - env.b * (q_l + grid[j]) - env.costs[0]) * q_l
        if leader > best_profit:
            best, best_profit = (i, j), leader
    assert grid_subgame_perfect(env)["indices"] == list(best)


def test_capacity_mpe_is_a_fixed_point_with_exact_stage_equilibria():
    env = make_market({"type": "capacity"})
    mpe = solve_mpe(env)
    assert mpe.converged and mpe.stage_gap.max() <= 1e-9
    games = stage_games(env, mpe.values)
    joint = mpe.strategies[0][:, :, None] * mpe.strategies[1][:, None, :]
    values = (games * joint[:, None]).reshape(len(games), 2, -1).sum(-1)
    np.testing.assert_allclose(values, mpe.values, atol=1e-6)
    # A firm invests (weakly) less the more capacity it has, facing the same rival.
    invest = mpe.expected_investment(env.grids[0]).reshape(env.levels, env.levels, 2)
    assert np.all(np.diff(invest[:, 2, 0]) <= 1e-9)


def test_capacity_target_variance_matches_sampled_transitions():
    """The TD target's variance at the MPE values equals that of targets built from the market's own
    sampled transitions (3 firms, three states and joint investments, 200k draws each)."""
    env = make_market({"type": "capacity", "n_firms": 3, "costs": [0.0, 1.0, 2.0]})
    mpe = solve_mpe(env)
    variance = target_variance(env, mpe.values)
    assert variance.shape == (len(env.state_list), *env.action_sizes, 3) and np.all(variance >= 0)
    rng = np.random.default_rng(0)
    for k, joint in ((0, (3, 3, 3)), (62, (1, 0, 2)), (124, (0, 0, 0))):
        state = np.repeat(env.state_list[k][None], 200_000, axis=0)
        nxt = env.transitions(state, np.repeat(np.array(joint)[None], len(state), axis=0), rng)
        targets = env.discount * mpe.values[env.state_index(nxt)]
        np.testing.assert_allclose(targets.var(0), variance[(k, *joint)], rtol=0.03, atol=1e-9)
    assert variance[0, 3, 3, 3].max() > 0  # growth from the lowest levels is random


@pytest.mark.parametrize(
    "kind",
    ["cournot", "linear_bertrand", "logit_bertrand", "stackelberg", "demand_shocks", "logit_segments", "capacity"],
)
def test_benchmarks_cover_every_market(kind):
    rows = benchmarks(make_market({"type": kind}))
    assert rows and all(len(r["actions"]) == len(r["profits"]) for r in rows)
    assert all(np.isfinite(r["actions"]).all() and np.isfinite(r["profits"]).all() for r in rows)


def test_cournot_duopoly_config_grid_equilibria_are_as_documented():
    """configs/cournot_duopoly.yaml: (2.5, 3.5), (3, 3), (3.5, 2.5); (3, 3.5) is not one."""
    from nashrl.config import load_config

    env = make_market(load_config("configs/cournot_duopoly.yaml")["market"])
    eq = grid_equilibria(env, env.representative_states()[0])
    assert sorted(map(tuple, eq["pure_profiles"])) == [(2.5, 3.5), (3.0, 3.0), (3.5, 2.5)]
    table = env.payoff_table(env.representative_states()[0])
    i3, i35 = 6, 7  # quantities 3 and 3.5 on the 0.5-step grid
    assert table[1, i3, :].max() - table[1, i3, i35] == pytest.approx(0.25)


def test_singh_vives_refuses_a_firm_without_demand():
    """A high-cost firm with zero demand at the Nash prices is refused, naming the field."""
    with pytest.raises(ConfigError, match=r"market.costs: firm\(s\) \[2\] would sell nothing at the Nash"):
        make_market({"type": "linear_bertrand", "n_firms": 3, "gamma": 0.8, "costs": [0.0, 0.0, 0.6]})
    env = make_market({"type": "linear_bertrand", "n_firms": 3, "gamma": 0.5, "costs": [0.0, 0.0, 0.1]})
    p = linear_bertrand.nash(env.a, env.gamma, env.costs)
    q = linear_bertrand.quantities(env.a, env.gamma, p)
    assert np.all(q > 0) and np.all(p > env.costs)


HARD_CAPACITY = {
    "type": "capacity",
    "n_firms": 3,
    "capacity_levels": 3,
    "investment_cost": 0.2,
    "alpha": 0.5,
    "discount": 0.98,
    "investments": [0.0, 0.5, 1.0, 2.0, 4.0],
}


def test_capacity_mpe_policy_iteration_verified_by_best_response():
    """At beta = 0.98 value iteration needs thousands of sweeps; policy iteration a few, and the
    exact best response of every firm against the others gains nothing."""
    env = make_market(HARD_CAPACITY)
    mpe = solve_mpe(env, selection="utilitarian")
    assert mpe.converged and mpe.method == "policy_iteration" and mpe.iterations < 20
    assert mpe.best_response_gain <= 1e-8 and mpe.stage_gap.max() <= 1e-9
    # Value iteration cut short: its profile is still verified as an MPE by the best response ...
    short = solve_mpe(env, selection="utilitarian", method="value_iteration", max_iter=30)
    assert short.method.endswith("(no fixed point within the limit)") and short.converged
    np.testing.assert_allclose(short.values, mpe.values, atol=1e-8)
    # ... unless it is cut so short that it is not one: then it is flagged with its gain.
    rough = solve_mpe(env, selection="utilitarian", method="value_iteration", max_iter=1)
    assert not rough.converged and rough.best_response_gain > 1e-3


def test_non_converged_mpe_is_flagged_in_theory_output(monkeypatch, capsys, tmp_path):
    import functools
    import json

    import nashrl.theory.capacity as capacity
    from nashrl.cli import main

    monkeypatch.setattr(capacity, "solve_mpe", functools.partial(solve_mpe, method="value_iteration", max_iter=1))
    config = tmp_path / "cap.yaml"
    config.write_text(json.dumps({"market": HARD_CAPACITY}))
    assert main(["theory", str(config), "--json"]) == 0
    rows = json.loads(capsys.readouterr().out)["benchmarks"]
    assert {r["concept"] for r in rows} == {"mpe_not_converged"}
    assert all(r["converged"] is False and r["best_response_gain"] > 1e-3 for r in rows)
    assert main(["theory", str(config)]) == 0
    out = capsys.readouterr().out
    assert "WARNING: the MPE computation did not converge" in out and "\nmpe " not in out
    from nashrl.analysis.evaluation import summarize

    class Idle:
        def act(self, obs, state):
            return np.zeros(3, dtype=int)

    ev = summarize(Idle(), make_market(HARD_CAPACITY), steps=3)
    assert ev["mpe_converged"] is False and ev["mpe_best_response_gain"] > 1e-3
